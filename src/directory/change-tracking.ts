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
  /**
   * OpenLDAP's entryCSN cursor: where the next query starts while `position` is not yet known to be final (see
   * entryCsnTracking). Absent: the next query starts just after `position`.
   */
  from?: string;
  /** This machine's clock when the read that set `from` ended. */
  endedAt?: string;
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
  /**
   * After a complete read: the cursor to store, or why none can be given. `previous` is the cursor a delta read
   * started from; undefined after a full read.
   */
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

/** An OpenLDAP change sequence number, e.g. `20261208012621.510161Z#000000#000#000000`. */
const CSN = /^(\d{14})\.(\d{6})Z#[0-9a-f]{6}#[0-9a-f]{3}#[0-9a-f]{6}$/i;

/** A CSN's time as epoch microseconds; undefined when the value is not a CSN. */
export function csnMicros(csn: string): number | undefined {
  const m = CSN.exec(csn);
  if (!m) return undefined;
  const ms = parseGeneralizedTime(`${m[1]}Z`);
  return ms === undefined ? undefined : ms * 1000 + Number(m[2]);
}

/** The lowest CSN of a moment (epoch microseconds): every change made at or after it compares at or above it. */
export function csnAt(micros: number): string {
  const whole = Math.floor(micros / 1_000_000) * 1000;
  const fraction = String(Math.floor(micros) - whole * 1000).padStart(6, '0');
  return `${formatGeneralizedTime(whole).slice(0, -1)}.${fraction}Z#000000#000#000000`;
}

/**
 * How long an OpenLDAP write may sit between taking its CSN and committing, in CSN time (seconds, generously): a
 * write that took its CSN before the newest one seen may still commit after a read, and must be in the next one.
 */
export const CSN_IN_FLIGHT_MS = 5_000;
/** How long after a read its newest CSN counts as final, on this machine's clock: writes in flight then are done. */
export const CSN_SETTLE_MS = 1_000;
/** A CSN this far ahead of this machine's clock is an entry stamped in the future: it is read, but never moves the cursor. */
export const CSN_FUTURE_MS = 10 * 60_000;

/**
 * OpenLDAP's exact cursor: entryCSN, unique per change and ordered (csnOrderingMatch; it is what syncrepl resumes
 * from). The position is the newest CSN read. The next query starts just after it once it is final, so a directory
 * at rest, however it was loaded, returns nothing to a poll. Until then it starts earlier:
 * - after a full read, the read's duration plus CSN_IN_FLIGHT_MS before the newest CSN: a change made during the
 *   read to an entry already read carries a CSN at least that late (the newest one was made before the read ended,
 *   so the read began at most its duration before it);
 * - after a read that found a newer CSN, CSN_IN_FLIGHT_MS before it: a write that took an older CSN and commits
 *   later still falls in the next query.
 * A position becomes final when a read that started at or before `position − CSN_IN_FLIGHT_MS` began at least
 * CSN_SETTLE_MS after the read that set it ended and found nothing newer: every write in flight then has committed
 * and been seen. Clock skew between this machine and the server does not matter: only this machine's clock measures
 * durations, and only the server's CSNs are compared. After a bulk load (slapadd stamps every entry within seconds)
 * the first poll after the daemon's full read returns the load's last seconds once (anchors and CSNs only), and
 * no poll after it does.
 */
export function entryCsnTracking(server: string, now: () => number = Date.now): ChangeRead {
  const started = now();
  let newest: string | undefined;
  let newestMicros = -Infinity;
  let unreadable = 0;
  const futureFrom = (started + CSN_FUTURE_MS) * 1000;
  return {
    server,
    attributes: ['entryCSN'],
    changedSince: (previous) => (previous.from ? `(entryCSN>=${previous.from})` : `(&(entryCSN>=${previous.position})(!(entryCSN=${previous.position})))`),
    cannotContinue: (previous) => (csnMicros(previous.position) === undefined ? 'the change cursor was kept by an older ldap-scim (modifyTimestamp); it moves to entryCSN' : undefined),
    see(values) {
      const raw = values.get('entrycsn')?.[0];
      const micros = raw === undefined ? undefined : csnMicros(String(raw));
      if (micros === undefined) unreadable++;
      else if (micros > newestMicros && micros < futureFrom) {
        newestMicros = micros;
        newest = String(raw);
      }
    },
    finish(previous) {
      if (unreadable) return { unavailable: `entries without an entryCSN: ${unreadable} (is lastmod off?)` };
      const ended = now();
      const base = { server, readAt: new Date(started).toISOString() };
      const unsettled = (position: string, from: number) => ({ ...base, position, from: csnAt(from), endedAt: new Date(ended).toISOString() });
      if (!previous) {
        if (newest === undefined) return { unavailable: 'no entry was read, so there is no point to continue from' };
        return unsettled(newest, newestMicros - (ended - started + CSN_IN_FLIGHT_MS) * 1000);
      }
      const previousMicros = csnMicros(previous.position)!;
      if (newest !== undefined && newestMicros > previousMicros) return unsettled(newest, newestMicros - CSN_IN_FLIGHT_MS * 1000);
      if (!previous.from) return { ...base, position: previous.position };
      const coveredInFlight = csnMicros(previous.from)! <= previousMicros - CSN_IN_FLIGHT_MS * 1000;
      const settled = previous.endedAt !== undefined && started - Date.parse(previous.endedAt) >= CSN_SETTLE_MS;
      if (coveredInFlight && settled) return { ...base, position: previous.position };
      return { ...previous, readAt: base.readAt };
    },
  };
}

/**
 * The LDIF lines that date an entry for slapadd (test and benchmark directories that grew over time): without them
 * slapadd stamps every entry with the moment of the load.
 */
export function ldifStamps(ms: number): string {
  return `modifyTimestamp: ${formatGeneralizedTime(ms)}\nentryCSN: ${csnAt(ms * 1000)}`;
}
