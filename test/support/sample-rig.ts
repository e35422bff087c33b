import { rmSync } from 'node:fs';
import type { Config } from '../../src/config/load.js';
import { sampleDirectoryLdif } from '../../src/demo/sample-directory.js';
import { startThrowawaySlapd, type ThrowawaySlapd } from '../../src/demo/throwaway-slapd.js';
import { ldifStamps } from '../../src/directory/change-tracking.js';
import type { SandboxOptions } from '../../src/sandbox/server.js';
import { startScim, writeConfig, type ScimUnderTest } from './sync-env.js';

// The sample directory on a throwaway slapd and the sandbox, for tests that walk what an admin does.

export const SUFFIX = 'dc=example,dc=test';
export const userDn = (n: number) => `uid=u${String(n).padStart(4, '0')},ou=people,${SUFFIX}`;

/** The LDIF record of one sample user, to make the same person again (a new entry, so a new entryUUID). */
export function recordOf(ldif: string, dn: string): string {
  const record = ldif.split('\n\n').find((r) => r.startsWith(`dn: ${dn}\n`));
  if (!record) throw new Error(`no record ${dn} in the sample`);
  return record.replace(`dn: ${dn}\n`, `dn: ${dn}\nchangetype: add\n`) + '\n';
}

export function mailOf(ldif: string, dn: string): string {
  return /^mail: (.*)$/m.exec(recordOf(ldif, dn))![1]!;
}

export interface Rig {
  slapd: ThrowawaySlapd;
  scim: ScimUnderTest;
  ldif: string;
  written: ReturnType<typeof writeConfig>;
  config: Config;
}

export async function rig(users: number, extra = '', sourceExtra = '', sandbox: Omit<SandboxOptions, 'token'> = {}, targetExtra = ''): Promise<Rig> {
  const { ldif } = sampleDirectoryLdif({ suffix: SUFFIX, users });
  // Entries dated a minute apart in 2025, as a directory in use is: loaded seconds before the first read, every
  // entry (the OUs too) would be new to it, and a delta read would fall back to a full one.
  let minute = 0;
  const dated = ldif.replace(/^dn: .+$/gm, (line) => `${line}\n${ldifStamps(Date.UTC(2025, 0, 1) + 60_000 * minute++)}`);
  const slapd = await startThrowawaySlapd({ suffix: SUFFIX, ldif: dated });
  const scim = await startScim('sandbox', sandbox);
  const written = writeConfig({ ldapUrl: slapd.url, suffix: SUFFIX, bindDn: slapd.rootDn, bindPassword: slapd.rootPassword, scimUrl: scim.url, token: scim.token, extra, sourceExtra, targetExtra });
  return { slapd, scim, ldif, written, config: written.load() };
}

export async function stopRig(r: Rig | undefined): Promise<void> {
  await r?.scim.stop();
  await r?.slapd.stop();
}

