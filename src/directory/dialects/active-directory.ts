import type { Client } from 'ldapts';
import type { ChangeRead } from '../change-tracking.js';
import type { DirectoryDialect } from '../dialect.js';

/** userAccountControl ACCOUNTDISABLE. */
const ACCOUNT_DISABLED = 0x2;
/** accountExpires: 100-ns intervals since 1601-01-01 UTC; 0 and 2^63-1 both mean "never". */
const NEVER_EXPIRES = new Set(['0', '9223372036854775807']);
const EPOCH_1601_TO_1970_MS = 11_644_473_600_000n;

/**
 * objectGUID (16 bytes) as Windows prints it (Get-ADUser, [guid]): the first three fields are stored
 * little-endian, so their bytes are reversed; the last two are in order. Lower case, as .NET writes it.
 */
export function formatObjectGuid(bytes: Buffer): string | undefined {
  if (bytes.length !== 16) return undefined;
  const hex = (from: number, to: number, reverse: boolean) => {
    const part = [...bytes.subarray(from, to)];
    return (reverse ? part.reverse() : part).map((b) => b.toString(16).padStart(2, '0')).join('');
  };
  return `${hex(0, 4, true)}-${hex(4, 6, true)}-${hex(6, 8, true)}-${hex(8, 10, false)}-${hex(10, 16, false)}`;
}

/** The filter for an objectGUID as formatObjectGuid writes it: its 16 bytes in wire order, each escaped. */
export function objectGuidFilter(guid: string): string {
  const m = /^([0-9a-f]{8})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{12})$/i.exec(guid);
  if (!m) throw new Error(`not an objectGUID: ${guid}`);
  const bytes = (hex: string, reverse: boolean) => {
    const list = hex.match(/../g)!;
    return reverse ? list.reverse() : list;
  };
  const wire = [...bytes(m[1]!, true), ...bytes(m[2]!, true), ...bytes(m[3]!, true), ...bytes(m[4]!, false), ...bytes(m[5]!, false)];
  return `(objectGUID=${wire.map((b) => `\\${b.toLowerCase()}`).join('')})`;
}

/** Whether accountExpires (FILETIME as decimal text) lies in the past. */
export function accountExpired(value: string | undefined, now = Date.now()): boolean {
  if (!value || NEVER_EXPIRES.has(value) || !/^\d+$/.test(value)) return false;
  const ms = BigInt(value) / 10_000n - EPOCH_1601_TO_1970_MS;
  return ms <= BigInt(now);
}

/** Epoch ms as FILETIME decimal text, the form accountExpires is compared in. */
export function filetime(ms: number): string {
  return String((BigInt(Math.floor(ms)) + EPOCH_1601_TO_1970_MS) * 10_000n);
}

const HOUR_MS = 3_600_000;

/**
 * Active Directory numbers every change on a DC with an update sequence number. highestCommittedUSN is read
 * before the search, so whatever changes during or after it has a higher uSNChanged and is in the next delta.
 * USNs are per DC: the cursor carries the DC's invocationId, which another DC, or this one restored from a backup,
 * does not share.
 */
async function usnTracking(client: Client, treatExpiredAccountsAsDisabled: boolean): Promise<ChangeRead> {
  const readAt = Date.now();
  const unavailable = (why: string): ChangeRead => ({
    server: undefined,
    unavailable: why,
    attributes: [],
    changedSince: () => {
      throw new Error('no change tracking');
    },
    see: () => undefined,
    finish: () => ({ unavailable: why }),
  });
  const { searchEntries: [root] } = await client.search('', { scope: 'base', filter: '(objectClass=*)', attributes: ['highestCommittedUSN', 'dsServiceName'] });
  const usn = String(root?.highestCommittedUSN ?? '');
  const service = String(root?.dsServiceName ?? '');
  if (!/^\d+$/.test(usn) || !service) return unavailable('the server shows no highestCommittedUSN and dsServiceName in its root DSE');
  const { searchEntries: [ntds] } = await client.search(service, { scope: 'base', filter: '(objectClass=*)', attributes: ['invocationId'], explicitBufferAttributes: ['invocationId'] });
  const raw = ntds?.invocationId;
  const invocationId = Buffer.isBuffer(raw) ? formatObjectGuid(raw) : undefined;
  if (!invocationId) return unavailable(`the server shows no invocationId on ${service}`);
  return {
    server: invocationId,
    attributes: [],
    changedSince(previous) {
      const changed = `(uSNChanged>=${BigInt(previous.position) + 1n})`;
      if (!treatExpiredAccountsAsDisabled) return changed;
      // An account expiring changes nothing on the entry, so the accounts whose accountExpires passed since the
      // last read are asked for by date (with an hour's margin for clock skew between this machine and the DC).
      const from = filetime(new Date(previous.readAt).getTime() - HOUR_MS);
      return `(|${changed}(&(accountExpires>=${from})(accountExpires<=${filetime(readAt)})))`;
    },
    // A DC reverted to a VM snapshot without VM-GenerationID keeps its invocationId but counts from an older USN.
    cannotContinue: (previous) =>
      BigInt(usn) < BigInt(previous.position)
        ? `the DC's highestCommittedUSN (${usn}) is below the last read's (${previous.position}): was it restored from a snapshot?`
        : undefined,
    see: () => undefined,
    finish: () => ({ server: invocationId, position: usn, readAt: new Date(readAt).toISOString() }),
  };
}

export function activeDirectoryDialect(options: { treatExpiredAccountsAsDisabled: boolean }): DirectoryDialect {
  return {
    anchorAttribute: 'objectGUID',
    binaryAttributes: ['objectGUID'],
    memberAttributes: ['member'],
    userStatusAttributes: ['userAccountControl', 'accountExpires'],
    lookupAttributes: ['sAMAccountName', 'userPrincipalName', 'mail', 'cn'],
    // No revisionAttribute: the uSNChanged cursor is exact (no overlap to re-read).
    anchorFilter: objectGuidFilter,
    anchorOf: (values) => {
      const v = values.get('objectguid')?.[0];
      return Buffer.isBuffer(v) ? formatObjectGuid(v) : undefined;
    },
    isActive: (values) => {
      const uac = Number(String(values.get('useraccountcontrol')?.[0] ?? '0'));
      if (uac & ACCOUNT_DISABLED) return false;
      if (options.treatExpiredAccountsAsDisabled && accountExpired(String(values.get('accountexpires')?.[0] ?? ''))) return false;
      return true;
    },
    memberDn: (value) => value,
    trackChanges: (client) => usnTracking(client, options.treatExpiredAccountsAsDisabled),
  };
}
