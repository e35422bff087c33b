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

/** Whether accountExpires (FILETIME as decimal text) lies in the past. */
export function accountExpired(value: string | undefined, now = Date.now()): boolean {
  if (!value || NEVER_EXPIRES.has(value) || !/^\d+$/.test(value)) return false;
  const ms = BigInt(value) / 10_000n - EPOCH_1601_TO_1970_MS;
  return ms <= BigInt(now);
}

export function activeDirectoryDialect(options: { treatExpiredAccountsAsDisabled: boolean }): DirectoryDialect {
  return {
    anchorAttribute: 'objectGUID',
    binaryAttributes: ['objectGUID'],
    memberAttributes: ['member'],
    userStatusAttributes: ['userAccountControl', 'accountExpires'],
    lookupAttributes: ['sAMAccountName', 'userPrincipalName', 'mail', 'cn'],
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
  };
}
