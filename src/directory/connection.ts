import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { Client } from 'ldapts';
import type { Config } from '../config/load.js';
import { log } from '../log.js';

/** A directory problem that stops the cycle before anything is planned or written (exit 1). */
export class DirectoryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DirectoryError';
  }
}

export function tlsOptionsFor(source: Config['source']): ConnectionOptions {
  const options: ConnectionOptions = { rejectUnauthorized: source.tls.rejectUnauthorized };
  if (source.tls.caFile) {
    try {
      options.ca = [readFileSync(source.tls.caFile)];
    } catch (e) {
      throw new DirectoryError(`cannot read source.tls.caFile ${source.tls.caFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  if (source.tls.servername) options.servername = source.tls.servername;
  return options;
}

/** Connects, upgrades to TLS when asked, and binds. The caller unbinds. */
export async function openDirectory(source: Config['source']): Promise<Client> {
  const secure = source.url.toLowerCase().startsWith('ldaps://');
  const tlsOptions = secure || source.tls.startTls ? tlsOptionsFor(source) : undefined;
  if (tlsOptions && !source.tls.rejectUnauthorized) {
    log.warn('TLS certificate verification of the directory is OFF (source.tls.rejectUnauthorized: false): anyone between this host and the directory can read the bind password. Set source.tls.caFile instead.');
  }
  // Plain LDAP to the loopback (the connector on the directory host itself, or a tunnel) never leaves the machine.
  if (!secure && !source.tls.startTls && !isLoopbackUrl(source.url)) {
    log.warn(`the directory connection ${source.url} is not encrypted: the bind password and every entry cross the network in clear. Use ldaps:// or source.tls.startTls: true.`);
  }
  const client = new Client({
    url: source.url,
    connectTimeout: source.connectTimeoutSeconds * 1000,
    // Per LDAP operation (each page of a paged search); a little above the server-side time limit we ask for.
    timeout: (source.timeLimitSeconds || 600) * 1000 + 5000,
    ...(secure ? { tlsOptions } : {}),
    strictDN: false,
  });
  try {
    if (!secure && source.tls.startTls) await client.startTLS(tlsOptions);
    await client.bind(source.bindDn, source.bindPassword);
  } catch (e) {
    await client.unbind().catch(() => undefined);
    throw new DirectoryError(`cannot bind to ${source.url} as ${source.bindDn}: ${describeLdapError(e)}`);
  }
  return client;
}

function isLoopbackUrl(url: string): boolean {
  try {
    const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
    return host === 'localhost' || host === '::1' || host.startsWith('127.');
  } catch {
    return false;
  }
}

export function describeLdapError(e: unknown): string {
  const err = e as { message?: string; code?: number | string };
  const code = err.code !== undefined ? ` (${err.code})` : '';
  return `${err.message ?? String(e)}${code}`;
}
