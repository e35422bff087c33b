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

/**
 * Connects, upgrades to TLS when asked, and binds. The caller unbinds. `warn: false` for a second connection of the
 * same read (the search thread): the first one has warned already.
 */
export async function openDirectory(source: Config['source'], { warn = true }: { warn?: boolean } = {}): Promise<Client> {
  const secure = source.url.toLowerCase().startsWith('ldaps://');
  const tlsOptions = secure || source.tls.startTls ? tlsOptionsFor(source) : undefined;
  if (warn && tlsOptions && !source.tls.rejectUnauthorized) {
    log.warn('TLS certificate verification of the directory is OFF (source.tls.rejectUnauthorized: false): anyone between this host and the directory can read the bind password. Set source.tls.caFile instead.');
  }
  // Plain LDAP to the loopback (the connector on the directory host itself, or a tunnel) never leaves the machine.
  if (warn && !secure && !source.tls.startTls && !isLoopbackUrl(source.url)) {
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
    throw new DirectoryError(`cannot connect and bind to ${source.url} as ${source.bindDn}: ${describeLdapError(e)}`);
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

// What an admin should look at for the errors seen in practice; the LDAP result code alone says little.
const LDAP_HINTS: Record<number, string> = {
  3: 'time limit exceeded: the read would be partial; raise source.timeLimitSeconds or the server limit for the bind account',
  4: "size limit exceeded: the server hands this bind account fewer entries than the scope holds, so the read would be partial; lift the account's limit (OpenLDAP: limits ... size.prtotal=unlimited; AD: MaxPageSize is fine with paging)",
  10: 'referral: this server does not hold that part of the directory; point source.url at the server that does',
  32: 'no such object: the base DN does not exist on this server (check source.users.baseDn / source.groups.baseDn)',
  34: 'invalid DN syntax (check the DNs in source)',
  48: 'inappropriate authentication (check source.bindDn / source.bindPassword; an empty password is refused)',
  49: 'invalid credentials: check source.bindDn and the bind password (bindPassword / bindPasswordFile), and that the account is not locked',
  50: 'insufficient access: the bind account may not read this part of the directory',
  53: 'the server is unwilling to perform this (for a bind, it may require TLS: use ldaps:// or source.tls.startTls)',
  87: 'the filter is not valid LDAP (check source.users.filter / source.groups.filter)',
};

const NETWORK_HINTS: Record<string, string> = {
  ECONNREFUSED: 'nothing listens there: check source.url (host and port) and that the directory is up',
  ENOTFOUND: 'the host name does not resolve: check source.url',
  ETIMEDOUT: 'no answer in time: check source.url, firewalls, and source.connectTimeoutSeconds',
  ECONNRESET: 'the server closed the connection (ldaps:// to a plain port, or the reverse?)',
  SELF_SIGNED_CERT_IN_CHAIN: "the directory's TLS certificate is not trusted: set source.tls.caFile to the CA that signed it",
  DEPTH_ZERO_SELF_SIGNED_CERT: "the directory's TLS certificate is self-signed: set source.tls.caFile to it",
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "the directory's TLS certificate is not trusted: set source.tls.caFile to the CA that signed it",
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "the directory's TLS certificate is not trusted: set source.tls.caFile to the CA that signed it",
  CERT_HAS_EXPIRED: "the directory's TLS certificate has expired",
  ERR_TLS_CERT_ALTNAME_INVALID: 'the TLS certificate does not name the host in source.url: use the name it carries, or set source.tls.servername',
};

/** An LDAP or connection error as a sentence an admin can act on: what happened, its code, what to check. */
export function describeLdapError(e: unknown): string {
  const err = e as { message?: string; code?: number | string };
  const message = (err.message ?? String(e)).replace(/\s*Code: 0x[0-9a-f]+$/i, '').trim();
  const hint = typeof err.code === 'number' ? LDAP_HINTS[err.code] : typeof err.code === 'string' ? NETWORK_HINTS[err.code] : undefined;
  const code = err.code !== undefined ? ` (${err.code})` : '';
  return hint ? `${message}${code}: ${hint}` : `${message}${code}`;
}
