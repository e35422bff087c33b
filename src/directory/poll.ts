import type { Client, Entry } from 'ldapts';
import type { Config } from '../config/load.js';
import { DesiredStateBuilder, mapGroup, mapUser, type FieldWarning, type MappedState, type RememberedGroup, type RememberedUser } from '../mapping/desired-state.js';
import { patchedChanges } from '../mapping/patch-desired.js';
import type { MappingRules } from '../mapping/rules.js';
import type { DirectoryMemory } from '../state/directory-memory.js';
import { chooseRead } from './change-tracking.js';
import { followedRenames, followRenames, type RecentRenames } from './follow-renames.js';
import { describeLdapError, DirectoryError, openDirectory } from './connection.js';
import { dialectFor, type DirectoryDialect } from './dialect.js';
import { valuesOf, type RawValues } from './entry-values.js';
import {
  changedContainers,
  GROUP_PAGE_SIZE,
  memberValues,
  readSettingsFingerprint,
  remainingRanges,
  textValues,
  unique,
  type DirectoryRead,
  type ReadCounts,
} from './reader.js';

/**
 * What a resident daemon keeps of the directory between cycles: every user and group entry as last mapped, and
 * where the directory stood. A poll changes it in place; the files stay the durable truth (the directory memory
 * is written by the cycle that applies what it learned, see Reconciler).
 */
export interface ResidentView {
  memory: DirectoryMemory;
  groups: Map<string, RememberedGroup>;
  /**
   * The revision (see DirectoryDialect.revisionAttribute) of each entry the last poll's change query returned, by
   * anchor: the cursor's overlap returns them again, and only a new revision is read in full.
   */
  revisions?: { users: Map<string, string>; groups: Map<string, string> };
  /** Renames and moves seen lately, followed in group member values (see RecentRenames). */
  renames?: RecentRenames;
  /** The state the last compose made, patched in place by polls whose changes touch only themselves. */
  desired?: MappedState;
  /** The CPU this process spent on the last census (what the daemon paces the census by). */
  censusCpuMs?: number;
}

/**
 * The daemon's connection for polls, kept open between them: a connect and bind every two seconds cost the daemon
 * more than the change queries themselves. A connection found broken (the server's idle timeout, a restart) is
 * replaced once within the same poll before the poll counts as failed.
 */
export class PollConnection {
  private client: Client | undefined;
  private source: Config['source'] | undefined;

  async use<T>(source: Config['source'], work: (client: Client) => Promise<T>): Promise<T> {
    // A SIGHUP that changed the source (another server, account or password) is a new connection.
    if (this.source !== source) await this.close();
    const reused = this.client !== undefined;
    try {
      return await work(await this.open(source));
    } catch (e) {
      await this.close();
      if (!reused) throw e;
      return await work(await this.open(source));
    }
  }

  private async open(source: Config['source']): Promise<Client> {
    this.client ??= await openDirectory(source, { warn: false });
    this.source = source;
    return this.client;
  }

  async close(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.source = undefined;
    await client?.unbind().catch(() => undefined);
  }
}

export function residentViewOf(read: DirectoryRead): ResidentView | undefined {
  if (!read.memory || !read.rememberedGroups) return undefined;
  return { memory: read.memory, groups: new Map(read.rememberedGroups.map((g) => [g.anchor, g])), desired: read.desired, ...(read.revisions ? { revisions: read.revisions } : {}) };
}

export type PollOutcome =
  /** Nothing the mapping sees changed: the view's cursor moved on, nothing else. */
  | { kind: 'quiet'; returned: number }
  /** The view changed (or a plan was asked for): `read` is the whole scope as the view now holds it. */
  | { kind: 'changed'; read: DirectoryRead }
  /** A poll cannot tell: the caller reads the whole scope. */
  | { kind: 'full-read'; reason: string };

interface ReadUser {
  dn: string;
  anchor: string | undefined;
  values: Map<string, string[]>;
  active: boolean;
}

/**
 * One poll: the users and groups whose change stamp moved since the view's cursor (uSNChanged on Active Directory,
 * modifyTimestamp on OpenLDAP), and with `census` every anchor in scope, which is how people deleted, moved out of
 * the base or out of the filter are found (no change stamp shows what is gone). Entries are compared with what the
 * view holds, so the overlap a timestamp cursor re-reads every time costs a comparison, not a plan. Nothing in the
 * view changes until every query has completed: a failed poll leaves it as it was.
 */
export async function pollDirectory(
  config: Config,
  rules: MappingRules,
  view: ResidentView,
  options: { census: boolean; compose?: boolean; patch?: boolean; connection: PollConnection },
): Promise<PollOutcome> {
  return options.connection.use(config.source, (client) => pollOn(client, config, rules, view, options));
}

async function pollOn(client: Client, config: Config, rules: MappingRules, view: ResidentView, options: { census: boolean; compose?: boolean; patch?: boolean }): Promise<PollOutcome> {
  const { source } = config;
  const dialect = dialectFor(source);
  let change;
  try {
    change = await dialect.trackChanges(client, source);
  } catch (e) {
    throw new DirectoryError(`reading where ${source.url} stands (for a poll) failed: ${describeLdapError(e)}`);
  }
  const last = view.memory.cursor;
  const choice = chooseRead({ enabled: true, fullReadEvery: Infinity, history: view.memory, fingerprint: readSettingsFingerprint(config), change });
  if (choice.kind === 'full') return { kind: 'full-read', reason: choice.reason };
  const containers = await changedContainers(client, source, change.changedSince(last));
  const known = new Set(view.memory.containers ?? []);
  const fresh = containers.find((c) => !known.has(c));
  if (fresh) {
    return { kind: 'full-read', reason: `${fresh.slice(0, fresh.lastIndexOf('|'))} was created, renamed, moved or edited: the DNs of the people in it may have changed` };
  }

  const since = change.changedSince(last);
  const revisions = { users: new Map<string, string>(), groups: new Map<string, string>() };
  // What the change queries returned, read in full or not: a directory at rest returns nothing.
  let returned = 0;
  const see = (values: RawValues) => {
    returned++;
    change.see(values);
  };
  const changed = (kind: 'users' | 'groups', scope: { baseDn: string; scope: 'sub' | 'one' | 'base' }, filter: string, attributes: string[], pageSize: number) =>
    changedEntries(client, source, dialect, { scope, filter: `(&${filter}${since})`, attributes, stamps: change.attributes, pageSize, see }, view.revisions?.[kind], revisions[kind]);
  const users: ReadUser[] = [];
  const userAttributes = [...rules.userAttributes, dialect.anchorAttribute, ...dialect.userStatusAttributes];
  for await (const { dn, values } of changed('users', source.users, source.usersFilter, userAttributes, source.pageSize)) {
    users.push({ dn, anchor: dialect.anchorOf(values), values: textValues(values, dialect), active: dialect.isActive(values) });
  }
  const groups: RememberedGroup[] = [];
  if (source.groups) {
    const groupAttributes = [...rules.groupAttributes, dialect.anchorAttribute, ...dialect.memberAttributes];
    for await (const { dn, values } of changed('groups', source.groups, source.groupsFilter, groupAttributes, GROUP_PAGE_SIZE)) {
      const anchor = dialect.anchorOf(values);
      if (!anchor) continue; // a full read reports it as skipped; a poll has nothing to carry for it
      groups.push(mapGroup(rules, dn, anchor, textValues(values, dialect), await membersOf(client, source, dialect, dn, values)));
    }
  }
  const cpuBefore = process.cpuUsage();
  const census = options.census ? await takeCensus(client, source, dialect) : undefined;
  const censusCpu = process.cpuUsage(cpuBefore);
  if (census) view.censusCpuMs = (censusCpu.user + censusCpu.system) / 1000;
  const cursor = change.finish(last);
  if ('unavailable' in cursor) return { kind: 'full-read', reason: cursor.unavailable };

  // A rename or a move keeps the person in their groups: the directory rewrote the member values without a stamp.
  const renames = followedRenames(view, users, groups);
  const readGroups = new Set(groups.map((g) => g.anchor));
  const rewritten = new Map(followRenames(groups, renames).map((g) => [g.anchor, g]));
  for (let i = 0; i < groups.length; i++) groups[i] = rewritten.get(groups[i]!.anchor) ?? groups[i]!;

  // Compared before anything is changed: most polls end here.
  const remembered = new Map(users.flatMap((u) => (u.anchor ? [[u.anchor, rememberedOf(rules, u)] as const] : [])));
  const changedUsers = users.filter((u) => !u.anchor || !same(view.memory.users[u.anchor], remembered.get(u.anchor)!));
  const changedGroups = groups.filter((g) => !same(view.groups.get(g.anchor), g));
  changedGroups.push(...followRenames([...view.groups.values()].filter((g) => !readGroups.has(g.anchor)), renames));
  const read = new Set(users.flatMap((u) => (u.anchor ? [u.anchor] : [])));
  const goneUsers = census ? Object.keys(view.memory.users).filter((a) => !census.users.has(a) && !read.has(a)) : [];
  const goneGroups = census ? [...view.groups.keys()].filter((a) => !census.groups.has(a)) : [];
  if (census) {
    // Someone in scope that no change query showed: a change that moves no stamp (on Active Directory, joining the
    // group a memberOf filter names changes only the group). New entries made after the user query are not that:
    // they carry a stamp past the cursor and the next poll reads them, so only a stranger older than it counts.
    const strangers = [...census.users].filter((a) => !(a in view.memory.users) && !read.has(a));
    const strangerGroups = [...census.groups].filter((a) => !view.groups.has(a) && !groups.some((g) => g.anchor === a));
    if (strangers.length && (await olderThanCursor(client, source, dialect, strangers, since))) {
      return { kind: 'full-read', reason: `${strangers.length} people are in scope that no change query showed (e.g. added to a group the users filter names)` };
    }
    if (strangerGroups.length && (await olderThanCursor(client, source, dialect, strangerGroups, since, 'groups'))) {
      return { kind: 'full-read', reason: `${strangerGroups.length} groups are in scope that no change query showed` };
    }
  }
  view.memory.cursor = cursor;
  if (dialect.revisionAttribute) view.revisions = revisions;
  if (!changedUsers.length && !changedGroups.length && !goneUsers.length && !goneGroups.length && !options.compose) {
    return { kind: 'quiet', returned };
  }

  const counts: ReadCounts = { userEntries: users.length, groupEntries: groups.length, pages: 0, unseenUserAttributes: [] };
  const readKind = { kind: 'delta' as const, since: last.position, returned };
  // A change that touches only itself is applied to the state composed last, and planned for its anchors alone.
  if (options.patch && !options.compose && !goneGroups.length && view.desired) {
    const patched = patchedChanges(view, view.desired, changedUsers, changedGroups, goneUsers, remembered, config.limits.maxGroupMembers);
    if (!('compose' in patched)) {
      for (const u of changedUsers) view.memory.users[u.anchor!] = remembered.get(u.anchor!)!;
      for (const g of changedGroups) view.groups.set(g.anchor, g);
      for (const anchor of goneUsers) delete view.memory.users[anchor];
      // The people gone join the last full read's leavers: the only ones a delta-style plan may deprovision.
      if (goneUsers.length) view.memory.leavers = [...new Set([...(view.memory.leavers ?? []), ...goneUsers])];
      return { kind: 'changed', read: { desired: view.desired, counts, read: { ...readKind, patched: true }, memory: view.memory, touched: patched } };
    }
  }

  for (const anchor of goneUsers) delete view.memory.users[anchor];
  for (const anchor of goneGroups) view.groups.delete(anchor);
  for (const g of changedGroups) view.groups.set(g.anchor, g);
  // Composed afresh: the last state is let go first, not kept beside the new one.
  view.desired = undefined;
  const builder = new DesiredStateBuilder(rules, { remember: true, rememberCarried: false, refusedGroupNames: config.target.refusedGroupNames ?? [] });
  for (const u of users) builder.addUser(u.dn, u.anchor, u.values, u.active);
  for (const anchor in view.memory.users) builder.carryUser(anchor, view.memory.users[anchor]!);
  for (const g of view.groups.values()) builder.carryGroup(g);
  const desired = builder.finish();
  // Changed in place: a new object of 150,000 users per change cost more than the changes.
  for (const anchor of desired.replacedUsers) delete view.memory.users[anchor];
  for (const u of users) {
    const remembered = u.anchor === undefined ? undefined : builder.rememberedUser(u.anchor);
    if (remembered) view.memory.users[u.anchor!] = remembered;
  }
  // The people gone join the last full read's leavers: the only ones a delta-style plan may deprovision.
  view.memory.leavers = [...new Set([...(view.memory.leavers ?? []), ...goneUsers, ...desired.replacedUsers])];
  view.desired = desired;
  return { kind: 'changed', read: { desired, counts, read: readKind, memory: view.memory } };
}

function rememberedOf(rules: MappingRules, u: ReadUser): RememberedUser {
  const warnings: FieldWarning[] = [];
  const mapped = mapUser(rules, u.values, u.active, warnings);
  if (typeof mapped === 'string') return { dn: u.dn, skip: mapped };
  return warnings.length ? { dn: u.dn, attrs: mapped, warnings } : { dn: u.dn, attrs: mapped };
}

// Both sides come from the same mapping code, so their keys are in the same order: JSON compares them exactly.
function same<T extends RememberedUser | RememberedGroup>(kept: T | undefined, read: T): boolean {
  return kept !== undefined && JSON.stringify(kept) === JSON.stringify(read);
}

/**
 * Every user and group anchor in scope, and nothing else: the cheapest read that shows who is gone. At 150,000
 * people it is most of what an idle daemon spends (ldapts takes about a second to decode the answer), so each
 * entry's anchor is taken as it comes, without the Map of values the other reads build.
 */
async function takeCensus(client: Client, source: Config['source'], dialect: DirectoryDialect): Promise<{ users: Set<string>; groups: Set<string> }> {
  const attribute = dialect.anchorAttribute.toLowerCase();
  const anchors = async (scope: { baseDn: string; scope: 'sub' | 'one' | 'base' }, filter: string) => {
    const found = new Set<string>();
    const one = new Map<string, (string | Buffer)[]>(); // the one value anchorOf reads, in a Map made once
    for await (const entry of pagedEntries(client, source, dialect, { scope, filter, attributes: [dialect.anchorAttribute], pageSize: source.pageSize })) {
      // The server spells the attribute's name as it likes: found without regard to case, as valuesOf would.
      for (const name in entry) {
        if (name.toLowerCase() !== attribute) continue;
        const value = entry[name];
        one.set(attribute, Array.isArray(value) ? value : [value as string | Buffer]);
        const anchor = dialect.anchorOf(one);
        if (anchor) found.add(anchor);
      }
    }
    return found;
  };
  return { users: await anchors(source.users, source.usersFilter), groups: source.groups ? await anchors(source.groups, source.groupsFilter) : new Set() };
}

/**
 * Whether any of these anchors' entries did not change since the cursor (so no poll will ever show them). Asked
 * by anchor, so at most a few entries come back; for many strangers at once the answer is yes without asking.
 */
async function olderThanCursor(client: Client, source: Config['source'], dialect: DirectoryDialect, anchors: string[], since: string, kind: 'users' | 'groups' = 'users'): Promise<boolean> {
  const { anchorFilter } = dialect;
  if (anchors.length > 50 || !anchorFilter) return true;
  const scope = kind === 'users' ? source.users : source.groups!;
  const byAnchor = `(|${anchors.map(anchorFilter).join('')})`;
  const recent = new Set<string>();
  for await (const { values } of pagedSearch(client, source, dialect, { scope, filter: `(&${byAnchor}${since})`, attributes: [dialect.anchorAttribute], pageSize: source.pageSize })) {
    const anchor = dialect.anchorOf(values);
    if (anchor) recent.add(anchor);
  }
  return anchors.some((a) => !recent.has(a));
}

/**
 * The entries a change query returns, in full. With a revision attribute the query first asks for anchors and
 * revisions only, and the entries whose revision `seen` already holds are not read again: between changes, a
 * timestamp cursor keeps returning the entries of the second before the last change (after a bulk load, thousands).
 * `revisions` collects what this query saw, for the next poll.
 */
async function* changedEntries(
  client: Client,
  source: Config['source'],
  dialect: DirectoryDialect,
  query: {
    scope: { baseDn: string; scope: 'sub' | 'one' | 'base' };
    filter: string;
    attributes: string[];
    /** What the change cursor reads of every entry (see ChangeRead.attributes). */
    stamps: string[];
    pageSize: number;
    see: (values: RawValues) => void;
  },
  seen: ReadonlyMap<string, string> | undefined,
  revisions: Map<string, string>,
): AsyncGenerator<{ dn: string; values: RawValues }> {
  const revision = dialect.revisionAttribute;
  const { anchorFilter } = dialect;
  if (!revision || !anchorFilter) {
    for await (const entry of pagedSearch(client, source, dialect, { ...query, attributes: unique([...query.attributes, ...query.stamps]) })) {
      query.see(entry.values);
      yield entry;
    }
    return;
  }
  const revisionOf = (values: RawValues) => String(values.get(revision.toLowerCase())?.[0] ?? '');
  const wanted: string[] = [];
  for await (const { values } of pagedSearch(client, source, dialect, { ...query, attributes: unique([dialect.anchorAttribute, revision, ...query.stamps]), pageSize: source.pageSize })) {
    query.see(values);
    const anchor = dialect.anchorOf(values);
    if (!anchor) continue;
    const rev = revisionOf(values);
    revisions.set(anchor, rev);
    if (!rev || seen?.get(anchor) !== rev) wanted.push(anchor);
  }
  // In small batches: a filter naming hundreds of anchors is still cheap for the server to answer from its index.
  for (let i = 0; i < wanted.length; i += ANCHOR_BATCH) {
    const byAnchor = `(|${wanted.slice(i, i + ANCHOR_BATCH).map(anchorFilter).join('')})`;
    for await (const entry of pagedSearch(client, source, dialect, { ...query, filter: `(&${query.filter}${byAnchor})`, attributes: unique([...query.attributes, ...query.stamps, revision]) })) {
      const anchor = dialect.anchorOf(entry.values);
      // Read at a later revision than the first query saw (changed in between): remembered as read.
      if (anchor) revisions.set(anchor, revisionOf(entry.values));
      query.see(entry.values);
      yield entry;
    }
  }
}

const ANCHOR_BATCH = 200;

async function membersOf(client: Client, source: Config['source'], dialect: DirectoryDialect, dn: string, values: RawValues): Promise<string[]> {
  const memberDns: string[] = [];
  for (const attribute of dialect.memberAttributes) {
    const { values: found, nextFrom } = memberValues(values, attribute);
    for (const v of found) memberDns.push(dialect.memberDn(String(v)));
    if (nextFrom !== undefined) for (const v of await remainingRanges(client, source, dn, attribute, nextFrom)) memberDns.push(dialect.memberDn(v));
  }
  return memberDns;
}

/** One paged search of a poll. */
interface PagedQuery {
  scope: { baseDn: string; scope: 'sub' | 'one' | 'base' };
  filter: string;
  attributes: string[];
  pageSize: number;
}

/**
 * A paged search on the poll's own connection, page by page. A poll's answers are small (the census is anchors
 * only), so the search thread a full read uses would cost more to start than it saves.
 */
async function* pagedSearch(client: Client, source: Config['source'], dialect: DirectoryDialect, query: PagedQuery): AsyncGenerator<{ dn: string; values: RawValues }> {
  for await (const entry of pagedEntries(client, source, dialect, query)) yield { dn: entry.dn, values: valuesOf(entry) };
}

async function* pagedEntries(client: Client, source: Config['source'], dialect: DirectoryDialect, { scope, filter, attributes, pageSize }: PagedQuery): AsyncGenerator<Entry> {
  try {
    const pages = client.searchPaginated(scope.baseDn, {
      scope: scope.scope,
      filter,
      attributes,
      paged: { pageSize },
      timeLimit: source.timeLimitSeconds,
      explicitBufferAttributes: dialect.binaryAttributes,
    });
    for await (const page of pages) {
      // A referral is part of the scope this server does not hold: a census without it would look like people gone.
      if (page.searchReferences.length) throw new DirectoryError(`polling ${scope.baseDn} on ${source.url}: the server answered with a referral (${page.searchReferences[0]}); a partial read is never used`);
      yield* page.searchEntries as Entry[];
    }
  } catch (e) {
    if (e instanceof DirectoryError) throw e;
    throw new DirectoryError(`polling ${scope.baseDn} with ${filter} on ${source.url} failed: ${describeLdapError(e)}`);
  }
}
