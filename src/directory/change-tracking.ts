import type { RawEntryValues } from './dialect.js';

/** Where the directory stood when a read began: the next delta read asks for the users changed after it. */
export interface ChangeCursor {
  /**
   * The server the position belongs to. Active Directory: the DC's invocationId (another DC, or the same one
   * restored from backup, counts its USNs differently). OpenLDAP: the URL.
   */
  server: string;
  /** Active Directory: highestCommittedUSN. OpenLDAP: a modifyTimestamp (GeneralizedTime). */
  position: string;
  /** This machine's clock when the read began. */
  readAt: string;
}

/** One read's side of change tracking, set up before the user search. */
export interface ChangeRead {
  /** The server now answering, or undefined when it offers no change tracking (every read is then a full one). */
  server: string | undefined;
  /** Why there is no server (shown in the report as the reason for a full read). */
  unavailable?: string;
  /** Extra user attributes see() needs. */
  attributes: string[];
  /** A filter clause that selects the entries changed since `previous` (a cursor of the same server). */
  changedSince(previous: ChangeCursor): string;
  /** Why this server cannot continue from `previous` although it is the same one (e.g. its counter went back). */
  cannotContinue?(previous: ChangeCursor): string | undefined;
  /** Every user entry read passes here. */
  see(values: RawEntryValues): void;
  /** After a complete read: the cursor to store, or why none can be given. */
  finish(previous: ChangeCursor | undefined): ChangeCursor | { unavailable: string };
}

/** What the last read left behind, for deciding whether this one may be a delta. */
export interface ChangeHistory {
  cursor: ChangeCursor;
  /** Hash of the settings that shape what a read maps (see readSettingsFingerprint). */
  fingerprint: string;
  deltasSinceFullRead: number;
}

export type ReadChoice = { kind: 'full'; reason: string } | { kind: 'delta'; since: ChangeCursor };

/**
 * Full or delta. Pure, so that every reason for a full read is unit-tested. Anything unsure is a full read: it
 * costs time, never correctness.
 */
export function chooseRead(input: {
  enabled: boolean;
  fullReadEvery: number;
  /** Set by the caller when it needs a full read anyway (--full-read, a missing or rebuilt snapshot). */
  forced?: string;
  history: ChangeHistory | undefined;
  fingerprint: string;
  change: Pick<ChangeRead, 'server' | 'unavailable' | 'cannotContinue'>;
}): ReadChoice {
  const full = (reason: string): ReadChoice => ({ kind: 'full', reason });
  if (!input.enabled) return full('delta reads are off (source.delta.enabled)');
  if (input.forced) return full(input.forced);
  const { history } = input;
  if (!history) return full('no earlier read to continue from');
  if (history.fingerprint !== input.fingerprint) return full('the source, mapping or ldap-scim version changed since the last read');
  if (input.change.server === undefined) return full(input.change.unavailable ?? 'the server offers no change tracking');
  if (history.cursor.server !== input.change.server) {
    return full(`another server answers now (${input.change.server}; the last read was from ${history.cursor.server})`);
  }
  const stuck = input.change.cannotContinue?.(history.cursor);
  if (stuck) return full(stuck);
  if (history.deltasSinceFullRead + 1 >= input.fullReadEvery) {
    return full(`every ${input.fullReadEvery} cycles a full read looks for people who left the scope (source.delta.fullReadEvery)`);
  }
  return { kind: 'delta', since: history.cursor };
}

const GENERALIZED_TIME = /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(?:[.,]\d+)?Z$/;

/** A UTC GeneralizedTime (`20261123120000Z`, as slapd writes modifyTimestamp) as epoch ms, whole seconds. */
export function parseGeneralizedTime(value: string): number | undefined {
  const m = GENERALIZED_TIME.exec(value);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s] = m.map(Number) as [number, number, number, number, number, number, number];
  return Date.UTC(y, mo - 1, d, h, mi, s);
}

export function formatGeneralizedTime(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/[-:T]/g, '').replace(/\.\d{3}Z$/, 'Z');
}

/**
 * OpenLDAP has no change counter, only modifyTimestamp, set by the server's clock. The cursor is taken from the
 * newest timestamp read, so a skew between the two clocks does not matter: that change was made before the read
 * ended, so the read began at most the read's duration before it, and every change made during or after the read
 * carries a timestamp at or after (newest − duration). Entries changed in that overlap are read twice, which is
 * harmless. The cursor is also kept at or before this machine's clock when the read began: taking the earlier of
 * two points is always safe, and one entry stamped in the future (an import, a clock that ran fast) would
 * otherwise carry the cursor past every real change to come.
 */
export function modifyTimestampTracking(server: string, now: () => number = Date.now): ChangeRead {
  const started = now();
  let newest: number | undefined;
  let unreadable = 0;
  return {
    server,
    attributes: ['modifyTimestamp'],
    changedSince: (previous) => `(modifyTimestamp>=${previous.position})`,
    see(values) {
      const raw = values.get('modifytimestamp')?.[0];
      const at = raw === undefined ? undefined : parseGeneralizedTime(String(raw));
      if (at === undefined) unreadable++;
      else if (newest === undefined || at > newest) newest = at;
    },
    finish(previous) {
      if (unreadable) return { unavailable: `user entries without modifyTimestamp: ${unreadable} (is lastmod off?)` };
      const last = previous ? parseGeneralizedTime(previous.position) : undefined;
      // A second of margin each way: timestamps are whole seconds.
      const fromThisRead = newest === undefined ? undefined : Math.min(newest - (now() - started) - 2000, started);
      const position = Math.max(last ?? -Infinity, fromThisRead ?? -Infinity);
      if (!Number.isFinite(position)) return { unavailable: 'no user entry was read, so there is no point to continue from' };
      return { server, position: formatGeneralizedTime(position), readAt: new Date(started).toISOString() };
    },
  };
}
