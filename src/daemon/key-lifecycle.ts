import { JSONFile } from 'lowdb/node';
import { Low } from 'lowdb';

// Atlassian API keys expire a year after they are made, and there is no API to read the date. So the expiry is
// the configured date (target.tokenExpiresAt) or, failing that, an estimate: a year from the day this key was
// first seen. Each key is known by its fingerprint only, never by the key.

export const KEY_LIFETIME_DAYS = 365;
/** Days left at which an admin is warned, once per key each; 0 = the (estimated) expiry has passed. */
export const WARN_AT_DAYS = [30, 14, 7, 3, 1, 0] as const;
const DAY_MS = 86_400_000;

export interface KeyRecord {
  firstSeen: string;
  /** WARN_AT_DAYS thresholds already warned about. */
  warned: number[];
  /** The key was rejected and the admin was told (once). */
  rejectionAlerted?: boolean;
}

export interface KeyBook {
  keys: Record<string, KeyRecord>;
  /**
   * Each target.tokenExpiresAt value → the key it was first seen with. A key rotated through tokenFile while the
   * config still names the old key's date must not inherit that date.
   */
  expiryOwners?: Record<string, string>;
}

export interface KeyExpiry {
  fingerprint: string;
  expiresAt: Date;
  estimated: boolean;
  daysLeft: number;
}

export function keyBookFileFor(statePath: string): string {
  return `${statePath}.keys.json`;
}

export async function openKeyBook(statePath: string): Promise<Low<KeyBook>> {
  const db = new Low<KeyBook>(new JSONFile<KeyBook>(keyBookFileFor(statePath)), { keys: {} });
  await db.read();
  db.data.keys ??= {};
  return db;
}

export function expiryOf(fingerprint: string, record: KeyRecord, configured: string | Date | undefined, now: Date): KeyExpiry {
  const expiresAt = configured !== undefined ? new Date(configured) : new Date(new Date(record.firstSeen).getTime() + KEY_LIFETIME_DAYS * DAY_MS);
  return { fingerprint, expiresAt, estimated: configured === undefined, daysLeft: (expiresAt.getTime() - now.getTime()) / DAY_MS };
}

/**
 * The one warning due now, if any: the tightest threshold crossed and not yet warned about. All thresholds crossed
 * are then marked, so a key first seen with 5 days left warns once ("5 days"), not three times (30, 14, 7).
 */
export function dueWarning(expiry: KeyExpiry, record: KeyRecord): string | undefined {
  const crossed = WARN_AT_DAYS.filter((t) => expiry.daysLeft <= t);
  const fresh = crossed.filter((t) => !record.warned.includes(t));
  if (fresh.length === 0) return undefined;
  record.warned = [...new Set([...record.warned, ...crossed])].sort((a, b) => b - a);
  const date = expiry.expiresAt.toISOString().slice(0, 10);
  const when =
    expiry.daysLeft <= 0 ? `expired on ${date}` : expiry.daysLeft < 1 ? `expires within a day, on ${date}` : `expires in ${Math.floor(expiry.daysLeft)} days, on ${date}`;
  const basis = expiry.estimated
    ? ' (an estimate: a year after this key was first seen; set target.tokenExpiresAt to the date Atlassian Administration shows)'
    : ' (target.tokenExpiresAt)';
  return (
    `the SCIM API key (fingerprint ${expiry.fingerprint}) ${when}${basis}. Create a new key in Atlassian Administration → Security → ` +
    'Identity providers → your directory and write it to target.tokenFile (or update the config and send SIGHUP): it is picked up without a restart.'
  );
}
