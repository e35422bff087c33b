import { createHash } from 'node:crypto';
import { EqualityFilter, OrFilter, type Client } from 'ldapts';
import type { Config } from '../config/load.js';
import type { MappedState, RememberedGroup } from '../mapping/desired-state.js';
import type { Touched } from '../mapping/patch-desired.js';
import { DesiredStateBuilder } from '../mapping/desired-state.js';
import type { MappingRules } from '../mapping/rules.js';
import { describeLdapError, DirectoryError, openDirectory } from './connection.js';
import { dialectFor, type DirectoryDialect } from './dialect.js';
import { chooseRead, type ChangeRead } from './change-tracking.js';
import type { DirectoryMemory } from '../state/directory-memory.js';
import { version } from '../version.js';
import { Progress } from '../progress.js';
import { SearchThread, type ThreadEntry } from './search-thread.js';
import { allText, valuesOf, type RawValues } from './entry-values.js';

export interface ReadCounts {
  userEntries: number;
  groupEntries: number;
  pages: number;
  /** Attributes the user mapping reads that no user entry in scope has: most often a typo in the mapping. */
  unseenUserAttributes: string[];
}

/** How a read may use what the last one left (delta reads); without it, a read is always a full one. */
export interface DeltaOptions {
  enabled: boolean;
  fullReadEvery: number;
  memory: DirectoryMemory | undefined;
  /** The reason, when the caller needs a full read anyway. */
  forced?: string;
}

export interface ReadKind {
  kind: 'full' | 'delta';
  reason?: string;
  since?: string;
  /** A resident daemon's poll: whether it found anything to plan, and whether it took the census of anchors. */
  poll?: 'quiet' | 'changed';
  census?: boolean;
  /** A poll: the entries its change queries returned (a directory at rest returns none). */
  returned?: number;
  /** A poll whose changes were patched into the state kept in memory and planned for their anchors alone. */
  patched?: boolean;
}

export interface DirectoryRead {
  desired: MappedState;
  counts: ReadCounts;
  read: ReadKind;
  /** What the next delta read starts from; undefined when delta reads are off or the server gave no cursor. */
  memory?: DirectoryMemory;
  /** Delta reads are on but cannot be used with this server or scope, and why. */
  deltaUnavailable?: string;
  /**
   * A poll whose changes were patched into the state composed last: the only anchors the plan needs to look at
   * (everything else was settled by the cycles before).
   */
  touched?: Touched;
  /** With delta reads on: every group entry as mapped, for a resident daemon's polls to carry over. */
  rememberedGroups?: RememberedGroup[];
  /**
   * With a revision attribute (OpenLDAP's entryCSN): the revision of each entry the next poll's query may return
   * again (those at or after the cursor's `from`), by anchor, so that the poll reads none of them in full.
   */
  revisions?: { users: Map<string, string>; groups: Map<string, string> };
}

/**
 * Hash of what shapes the mapped users besides the entries themselves. A delta carries users over as an earlier
 * read mapped them, which is only right while this is unchanged (an upgrade may map differently, too).
 */
export function readSettingsFingerprint(config: Config): string {
  const { source, mapping } = config;
  const shape = { version, kind: source.kind, users: source.users, filter: source.usersFilter, expired: source.treatExpiredAccountsAsDisabled, user: mapping.user };
  return createHash('sha256').update(JSON.stringify(shape)).digest('hex').slice(0, 16);
}

/**
 * Reads the scope and maps it page by page, as entries arrive: no copy of the raw directory is kept. Any error,
 * referral or limit hit aborts the read, because a partial scope would look like people leaving. A delta read
 * asks only for the users changed since the last read and takes the others from `memory`; groups are always read
 * whole (a move changes a group's members without changing the group).
 */
export async function readDesiredState(config: Config, rules: MappingRules, delta?: DeltaOptions): Promise<DirectoryRead> {
  const { source } = config;
  const dialect = dialectFor(source);
  // Only a delta read needs each entry remembered on its own.
  const builder = new DesiredStateBuilder(rules, { remember: Boolean(delta?.enabled), refusedGroupNames: config.target.refusedGroupNames ?? [] });
  const counts: ReadCounts = { userEntries: 0, groupEntries: 0, pages: 0, unseenUserAttributes: [] };
  const seen = new Set<string>();
  const revisionName = delta?.enabled ? dialect.revisionAttribute?.toLowerCase() : undefined;
  const revisions = { users: new Map<string, string>(), groups: new Map<string, string>() };
  const noteRevision = (kind: 'users' | 'groups', values: RawValues) => {
    const anchor = revisionName && dialect.anchorOf(values);
    const revision = anchor && values.get(revisionName)?.[0];
    if (anchor && revision !== undefined) revisions[kind].set(anchor, String(revision));
  };
  const client = await openDirectory(source);
  // Started now, so that its start-up overlaps with the checks below; it binds on its own connection.
  const thread = new SearchThread(source);
  const result: Omit<DirectoryRead, 'desired' | 'counts'> = { read: { kind: 'full' } };
  const progress = new Progress('reading the directory (entries)');
  try {
    let change: ChangeRead | undefined;
    if (delta?.enabled) {
      try {
        change = await dialect.trackChanges(client, source);
      } catch (e) {
        throw new DirectoryError(`reading where ${source.url} stands (for a delta read) failed: ${describeLdapError(e)}`);
      }
    }
    const fingerprint = readSettingsFingerprint(config);
    const choice = delta
      ? chooseRead({ ...delta, history: delta.memory, fingerprint, change: change ?? { server: undefined } })
      : undefined;
    let since = choice?.kind === 'delta' ? choice.since : undefined;
    // With delta reads off every read is full: no reason worth a line in every report.
    const reason = choice?.kind === 'full' && delta?.enabled ? { reason: choice.reason } : {};
    result.read = since ? { kind: 'delta', since: since.position } : { kind: 'full', ...reason };
    // Looked at before the users are read, so that a container changed during the read is still new next time. A
    // full read lists every container with its stamp, as taken in: otherwise the first delta after a bulk load
    // would find every OU "changed" since the cursor's overlap and read everything again.
    const last = delta?.memory?.cursor;
    let containers = change && last && since ? await changedContainers(client, source, change.changedSince(last)) : undefined;
    const known = new Set(delta?.memory?.containers ?? []);
    const fresh = containers?.find((c) => !known.has(c));
    if (change && (fresh || !since)) containers = await changedContainers(client, source);
    if (fresh && since) {
      since = undefined;
      result.read = {
        kind: 'full',
        reason: `${fresh.slice(0, fresh.lastIndexOf('|'))} was created, renamed, moved or edited since the last full read: the DNs of the people in it may have changed`,
      };
    }
    const usersFilter = since && change ? `(&${source.usersFilter}${change.changedSince(since)})` : source.usersFilter;

    const userAttributes = unique([...rules.userAttributes, dialect.anchorAttribute, ...dialect.userStatusAttributes, ...(change?.attributes ?? [])]);
    for await (const entry of search(thread, source, source.users, usersFilter, userAttributes, dialect, counts, source.pageSize)) {
      counts.userEntries++;
      progress.add();
      const { values } = entry;
      // ldapts lists every requested attribute, with [] where the entry has none.
      for (const [name, list] of values) if (list.length) seen.add(name);
      change?.see(values);
      noteRevision('users', values);
      builder.addUser(entry.dn, dialect.anchorOf(values), textValues(values, dialect), dialect.isActive(values));
    }
    if (since && delta?.memory) {
      for (const [anchor, user] of Object.entries(delta.memory.users)) builder.carryUser(anchor, user);
    }
    if (source.groups) {
      // With the change stamp too: a group's change moves the cursor like a user's, so a poll does not read a large
      // group again and again because no user changed after it.
      const groupAttributes = unique([...rules.groupAttributes, dialect.anchorAttribute, ...dialect.memberAttributes, ...(change?.attributes ?? [])]);
      // Groups whose members came back in ranges are completed after the paged search, not in the middle of it.
      const ranged: { dn: string; values: RawValues; memberDns: string[]; next: { attribute: string; from: number }[] }[] = [];
      for await (const entry of search(thread, source, source.groups, source.groupsFilter, groupAttributes, dialect, counts, Math.min(source.pageSize, GROUP_PAGE_SIZE))) {
        counts.groupEntries++;
        progress.add();
        const { values } = entry;
        change?.see(values);
        noteRevision('groups', values);
        const memberDns: string[] = [];
        const next: { attribute: string; from: number }[] = [];
        for (const attribute of dialect.memberAttributes) {
          const { values: found, nextFrom } = memberValues(values, attribute);
          for (const v of found) memberDns.push(dialect.memberDn(String(v)));
          if (nextFrom !== undefined) next.push({ attribute, from: nextFrom });
        }
        if (next.length) ranged.push({ dn: entry.dn, values, memberDns, next });
        else builder.addGroup(entry.dn, dialect.anchorOf(values), textValues(values, dialect), memberDns);
      }
      for (const group of ranged) {
        for (const { attribute, from } of group.next) {
          for (const v of await remainingRanges(client, source, group.dn, attribute, from)) group.memberDns.push(dialect.memberDn(v));
        }
        builder.addGroup(group.dn, dialect.anchorOf(group.values), textValues(group.values, dialect), group.memberDns);
      }
    }
    if (change && delta) {
      const cursor = change.finish(since);
      if ('unavailable' in cursor) result.deltaUnavailable = cursor.unavailable;
      else {
        const now = new Date().toISOString();
        result.memory = {
          version: 1,
          fingerprint,
          cursor,
          deltasSinceFullRead: since ? delta.memory!.deltasSinceFullRead + 1 : 0,
          lastFullReadAt: since ? delta.memory!.lastFullReadAt : now,
          users: builder.rememberedUsers(),
          // A delta keeps what the full read listed: a cursor's overlap may show a container it took in again.
          containers: since ? [...new Set([...known, ...(containers ?? [])])] : (containers ?? []),
          // A delta carries the last full read's leavers on: they are the ones it may deprovision (see leaversOf).
          ...(since && delta.memory?.leavers ? { leavers: delta.memory.leavers } : {}),
        };
        result.rememberedGroups = builder.rememberedGroups();
        if (revisionName && cursor.from) result.revisions = revisionsFrom(revisions, cursor.from);
      }
    }
  } finally {
    progress.finish();
    await Promise.all([thread.close(), client.unbind().catch(() => undefined)]);
  }
  // Only a full read shows which attributes no entry in scope has; a delta sees a handful of entries.
  if (counts.userEntries > 0 && result.read.kind === 'full') counts.unseenUserAttributes = rules.userAttributes.filter((a) => !seen.has(a));
  return { desired: builder.finish(), counts, ...result };
}

/** The revisions at or after `from` (CSNs compare as text): what the next query may return again. */
function revisionsFrom(all: { users: Map<string, string>; groups: Map<string, string> }, from: string) {
  const keep = (map: Map<string, string>) => {
    for (const [anchor, revision] of map) if (revision < from) map.delete(anchor);
    return map;
  };
  return { users: keep(all.users), groups: keep(all.groups) };
}

const CONTAINERS = '(|(objectClass=organizationalUnit)(objectClass=container)(objectClass=organization)(objectClass=domain))';

/**
 * Renaming or moving an OU changes the DN of everyone in it without changing their entries, so a delta would keep
 * their old DNs, and group members (which follow the new DNs) would no longer match them. So a container in the
 * users' scope changed since the cursor (an admin's edit of an OU too) turns the read into a full one, once: each
 * is named with its own change stamp and remembered. Without `changedSince`: every container in scope (what a full
 * read takes in).
 */
export async function changedContainers(client: Client, source: Config['source'], changedSince = ''): Promise<string[]> {
  if (source.users.scope !== 'sub') return [];
  try {
    const { searchEntries } = await client.search(source.users.baseDn, {
      scope: 'sub',
      filter: `(&${CONTAINERS}${changedSince})`,
      attributes: ['uSNChanged', 'entryCSN', 'modifyTimestamp'],
      timeLimit: source.timeLimitSeconds,
    });
    // ldapts lists every attribute asked for, with [] where the entry has none: the first one the server has.
    const stamp = (e: (typeof searchEntries)[number]) => [e.uSNChanged, e.entryCSN, e.modifyTimestamp].map((v) => String(v ?? '')).find((v) => v !== '') ?? '';
    return searchEntries.map((e) => `${e.dn}|${stamp(e)}`);
  } catch (e) {
    throw new DirectoryError(`looking for containers changed under ${source.users.baseDn} failed: ${describeLdapError(e)}`);
  }
}

/**
 * Group entries carry their members: a page of 1,000 of them held hundreds of thousands of member DNs in the search
 * thread at once (about 60 MB of a 150,000-user read's peak). Smaller pages cost only more round trips, and there
 * are few groups beside the users.
 */
export const GROUP_PAGE_SIZE = 100;

async function* search(
  thread: SearchThread,
  source: Config['source'],
  scope: { baseDn: string; scope: 'sub' | 'one' | 'base' },
  filter: string,
  attributes: string[],
  dialect: DirectoryDialect,
  counts: ReadCounts,
  pageSize: number,
): AsyncGenerator<ThreadEntry> {
  const request = {
    baseDn: scope.baseDn,
    scope: scope.scope,
    filter,
    attributes,
    pageSize,
    timeLimit: source.timeLimitSeconds,
    binaryAttributes: dialect.binaryAttributes,
  };
  for await (const part of thread.search(request, `reading ${scope.baseDn} with ${filter} from ${source.url}`)) {
    if (part.endsPage) counts.pages++;
    yield* part.entries;
  }
}

const RANGE = /^(.+);range=(\d+)-(\d+|\*)$/;

/**
 * A member attribute's values, whole or the first range of them. Active Directory hands out at most MaxValRange
 * (1,500 by default) values per entry, as `member;range=0-1499`; the rest must be asked for range by range.
 */
export function memberValues(values: RawValues, attribute: string): { values: (string | Buffer)[]; nextFrom?: number } {
  const name = attribute.toLowerCase();
  const whole = values.get(name);
  if (whole?.length) return { values: whole };
  for (const [key, list] of values) {
    const m = RANGE.exec(key);
    if (!m || m[1] !== name) continue;
    return m[3] === '*' ? { values: list } : { values: list, nextFrom: Number(m[3]) + 1 };
  }
  return { values: [] };
}

/** Asks for `attribute;range=<from>-*` until the server marks the last range with `*`. Bounded by the ranges it hands out. */
export async function remainingRanges(client: Client, source: Config['source'], dn: string, attribute: string, from: number): Promise<string[]> {
  const out: string[] = [];
  for (let start = from, rounds = 0; rounds < 100_000; rounds++) {
    let entry;
    try {
      ({ searchEntries: [entry] } = await client.search(dn, { scope: 'base', filter: '(objectClass=*)', attributes: [`${attribute};range=${start}-*`], timeLimit: source.timeLimitSeconds }));
    } catch (e) {
      throw new DirectoryError(`reading the members of ${dn} from ${start} on failed: ${describeLdapError(e)}`);
    }
    const { values, nextFrom } = memberValues(entry ? valuesOf(entry) : new Map(), attribute);
    for (const v of values) out.push(String(v));
    if (nextFrom === undefined) return out;
    if (nextFrom <= start) throw new DirectoryError(`the server handed out the members of ${dn} in a range that does not advance (${start})`);
    start = nextFrom;
  }
  throw new DirectoryError(`the members of ${dn} came in too many ranges`);
}

/** The dialect's binary attributes, lower-cased: made once per dialect, not once per entry. */
const binaryNames = new WeakMap<DirectoryDialect, ReadonlySet<string>>();

export function textValues(values: RawValues, dialect: DirectoryDialect): Map<string, string[]> {
  let binary = binaryNames.get(dialect);
  if (!binary) binaryNames.set(dialect, (binary = new Set(dialect.binaryAttributes.map((a) => a.toLowerCase()))));
  // The usual entry is text through and through: no copy (a copy per entry is a large share of a read's garbage).
  if (binary.size === 0 && everyValueText(values)) return values as Map<string, string[]>;
  const out = new Map<string, string[]>();
  for (const [name, list] of values) {
    if (binary.has(name)) continue;
    // ldapts hands an attribute over as Buffers when one of its values is not valid UTF-8. Decoded leniently, the
    // bad bytes become U+FFFD, which the mapping reports, instead of the attribute silently looking empty.
    out.set(name, list.map((v) => (typeof v === 'string' ? v : v.toString('utf8'))));
  }
  return out;
}

function everyValueText(values: RawValues): boolean {
  for (const list of values.values()) if (!allText(list)) return false;
  return true;
}

export function unique(names: string[]): string[] {
  const seen = new Map<string, string>();
  for (const n of names) if (!seen.has(n.toLowerCase())) seen.set(n.toLowerCase(), n);
  return [...seen.values()];
}

export interface FoundEntry {
  dn: string;
  anchor?: string;
  /** The attributes the mapping reads, as text. */
  values: Map<string, string[]>;
  /** Whether the entry also matches the users filter (and so is read by a cycle). */
  matchesFilter: boolean;
}

/**
 * One user entry for `explain`, by DN, or by the dialect's lookup attributes (uid, sAMAccountName, mail, cn, ...)
 * under the users base. Looked up without the users filter, so that "why is this person not synced?" can be
 * answered with "they do not match the filter".
 */
export async function findUserEntry(config: Config, rules: MappingRules, id: string): Promise<FoundEntry | undefined> {
  const { source } = config;
  const dialect = dialectFor(source);
  const attributes = unique([...rules.userAttributes, dialect.anchorAttribute, ...dialect.userStatusAttributes]);
  const looksLikeDn = /^[a-z][\w-]*=.+,/i.test(id);
  const byName = new OrFilter({ filters: dialect.lookupAttributes.map((attribute) => new EqualityFilter({ attribute, value: id })) }).toString();
  const client = await openDirectory(source);
  try {
    const search = (base: string, scope: 'base' | 'one' | 'sub', filter: string) =>
      client.search(base, { scope, filter, attributes, sizeLimit: 2, timeLimit: source.timeLimitSeconds, explicitBufferAttributes: dialect.binaryAttributes });
    let found;
    try {
      found = looksLikeDn
        ? (await search(id, 'base', '(objectClass=*)')).searchEntries
        : (await search(source.users.baseDn, source.users.scope, byName)).searchEntries;
    } catch (e) {
      if ((e as { code?: number }).code === 32) return undefined; // noSuchObject: a DN that is not there
      throw new DirectoryError(`looking up ${id} under ${source.users.baseDn} failed: ${describeLdapError(e)}`);
    }
    const entry = found[0];
    if (!entry) return undefined;
    const values = valuesOf(entry);
    const inScope = (await search(entry.dn, 'base', source.usersFilter)).searchEntries.length > 0;
    const underBase = entry.dn.toLowerCase().endsWith(source.users.baseDn.toLowerCase());
    return { dn: entry.dn, anchor: dialect.anchorOf(values), values: textValues(values, dialect), matchesFilter: inScope && underBase };
  } finally {
    await client.unbind().catch(() => undefined);
  }
}
