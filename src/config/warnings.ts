import { BlockList, isIP } from 'node:net';
import type { RawConfig } from './schema.js';

/** Where a warning can point: the key's line in the file, when the key is there. */
type LineOf = (keyPath: string[]) => number | undefined;

/** What loadConfig knows and parseConfig does not: the file's permission bits. */
export interface FileFacts {
  file: string;
  mode: number;
}

const loopback = new BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addAddress('::1', 'ipv6');

function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === 'localhost') return true;
  const family = isIP(host);
  return family !== 0 && loopback.check(host, family === 6 ? 'ipv6' : 'ipv4');
}

/**
 * Settings that work but put a secret at risk or do not do what they seem to: the config still loads, and every
 * warning names its key and what to change. `rawYaml` is the document before ${VAR} substitution, which is the only
 * place that tells a secret typed into the file from one taken from the environment.
 */
export function configWarnings(config: RawConfig, rawYaml: unknown, lineOf: LineOf, file?: FileFacts): string[] {
  const warnings: string[] = [];
  const at = (keyPath: string[]) => {
    const line = lineOf(keyPath);
    return `${keyPath.join('.')}${line ? ` (line ${line})` : ''}`;
  };

  if (file && (file.mode & 0o044) !== 0) {
    const raw = rawYaml as { source?: { bindPassword?: unknown }; target?: { token?: unknown } } | null;
    const literal = (v: unknown) => typeof v === 'string' && !v.includes('${');
    const mode = (file.mode & 0o777).toString(8).padStart(3, '0');
    const secrets = [
      { key: ['source', 'bindPassword'], value: raw?.source?.bindPassword, what: 'the bind password', fileKey: 'source.bindPasswordFile' },
      { key: ['target', 'token'], value: raw?.target?.token, what: 'the API key', fileKey: 'target.tokenFile' },
    ];
    for (const s of secrets) {
      if (!literal(s.value)) continue;
      warnings.push(
        `${at(s.key)} holds ${s.what} written into ${file.file}, which group or others may read (mode ${mode}): ` +
          `run chmod 600 ${file.file}, or take it from the environment with \${VAR} or from a file with ${s.fileKey}.`,
      );
    }
  }

  const target = URL.canParse(config.target.url) ? new URL(config.target.url) : undefined;
  if (target?.protocol === 'http:' && !isLoopbackHost(target.hostname)) {
    warnings.push(
      `${at(['target', 'url'])} is plain http:// to ${target.hostname}: the API key would cross the network in clear text. Use https://.`,
    );
  }

  const { tls, url } = config.source;
  if (tls.caFile && !/^ldaps:/i.test(url) && !tls.startTls) {
    warnings.push(
      `${at(['source', 'tls', 'caFile'])} is set, but source.url is plain ldap:// and source.tls.startTls is false: ` +
        `the connection is not encrypted and the CA file is ignored. Use ldaps:// or set source.tls.startTls: true.`,
    );
  }
  return warnings;
}
