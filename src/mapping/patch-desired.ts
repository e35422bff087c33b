import { dnKey } from '../directory/dn.js';
import type { ComposeIndex, MappedState, RememberedGroup, RememberedUser } from './desired-state.js';

/** One entry a poll read again, as it was remembered and as it maps now. */
export interface EntryChange<T> {
  anchor: string;
  before: T;
  after: T;
}

/** What a patch touched: the only anchors the plan then needs to look at. */
export interface Touched {
  users: ReadonlySet<string>;
  groups: ReadonlySet<string>;
}

/**
 * Applies a poll's changes to the state the last compose made, in place, when they cannot change anything beyond
 * the entries themselves and the groups that hold them; otherwise says why not, and changes nothing (the caller
 * composes everything again).
 *
 * In place:
 * - a user whose fields changed but not its DN, email, userName or active flag, who was synced and still maps:
 *   no shared email appears or goes, and no group's members change;
 * - a group whose members changed but not its DN, its name or the groups it nests: its members, and those of every
 *   group that nests it, are flattened again as flattenGroups flattens them, against the same indexes, and each
 *   stays within `maxGroupMembers`.
 * Anything else (a new, gone, renamed, skipped or re-skipped entry, a change of nesting, a cap) is the full
 * compose's. `groupsNow` gives every group entry as the poll leaves it (the changed ones as changed).
 *
 * A full compose after the same changes gives the same state: the differential tests hold it to that.
 */
export function patchDesired(
  desired: MappedState,
  changes: { users: readonly EntryChange<RememberedUser>[]; groups: readonly EntryChange<RememberedGroup>[]; gone?: readonly string[] },
  maxGroupMembers: number,
  groupsNow: (anchor: string) => RememberedGroup | undefined,
): Touched | { compose: string } {
  const index = desired.index;
  if (!index) return { compose: 'no composed state to patch' };
  for (const { anchor, before, after } of changes.users) {
    const why = userNotPatchable(desired, anchor, before, after);
    if (why) return { compose: why };
  }
  // Someone synced who left changes no one else: a skipped one might have held an email another one shares.
  const gone = new Set(changes.gone ?? []);
  for (const anchor of gone) if (!desired.users.has(anchor)) return { compose: `${anchor} left while skipped` };
  if (gone.size && changes.groups.length) return { compose: 'people left while groups changed' };
  const resolver = new MemberResolver(index, desired, groupsNow);
  let outsideDelta = 0;
  const affected = new Set<string>();
  for (const { anchor, before, after } of changes.groups) {
    if (before.dn !== after.dn || before.displayName === undefined || before.displayName !== after.displayName) return { compose: `group ${after.dn} was renamed or moved` };
    const was = resolveMembers(index, desired, before.memberDns);
    const now = resolver.direct(anchor);
    if (!sameSet(was.subgroups, now.subgroups)) return { compose: `group ${after.dn} nests other groups now` };
    outsideDelta += now.outside - was.outside;
    for (const a of [anchor, ...ancestors(index, anchor)]) affected.add(a);
  }
  const members = new Map<string, string[]>();
  for (const anchor of affected) {
    if (!desired.groups.has(anchor)) continue; // skipped, refused or shared name: it only nests
    const flat = resolver.flat(anchor);
    if (flat.length > maxGroupMembers) return { compose: `group ${desired.groups.get(anchor)!.dn} is over limits.maxGroupMembers` };
    members.set(anchor, flat);
  }

  // Every change can be patched: from here on the state changes.
  const users = new Set<string>(gone);
  const touchedGroups = new Set<string>();
  if (gone.size) outsideDelta += leave(desired, index, gone, groupsNow, touchedGroups);
  for (const { anchor, after } of changes.users) {
    const user = desired.users.get(anchor)!;
    desired.users.set(anchor, { anchor, dn: user.dn, attrs: after.attrs! });
    replaceWarnings(desired, 'user', anchor, user.dn, after.warnings);
    users.add(anchor);
  }
  for (const [anchor, flat] of members) {
    const group = desired.groups.get(anchor)!;
    if (!sameList(group.members, flat)) desired.groups.set(anchor, { ...group, members: flat });
    touchedGroups.add(anchor);
  }
  for (const { anchor, after } of changes.groups) {
    const group = desired.groups.get(anchor);
    if (group) replaceWarnings(desired, 'group', anchor, group.dn, after.warnings);
  }
  desired.membersOutsideScope += outsideDelta;
  desired.replacedUsers = [];
  return { users, groups: touchedGroups };
}

/**
 * Takes people who left out of the state: out of the users, the DN index and every group that held them (flat
 * lists: no one reaches them through nesting any more). Returns how many more member values now name no one.
 */
function leave(desired: MappedState, index: ComposeIndex, gone: ReadonlySet<string>, groupsNow: (anchor: string) => RememberedGroup | undefined, touched: Set<string>): number {
  const dns = new Set<string>();
  for (const anchor of gone) {
    const user = desired.users.get(anchor)!;
    dns.add(user.dn.toLowerCase());
    index.userAnchorByDn.delete(user.dn);
    desired.users.delete(anchor);
    if (desired.warnings.some((w) => w.kind === 'user' && w.anchor === anchor)) desired.warnings = desired.warnings.filter((w) => !(w.kind === 'user' && w.anchor === anchor));
  }
  for (const group of desired.groups.values()) {
    if (!group.members.some((m) => gone.has(m))) continue;
    desired.groups.set(group.anchor, { ...group, members: group.members.filter((m) => !gone.has(m)) });
    touched.add(group.anchor);
  }
  // Counted as flattenGroups counts: each value of a group it nests through (one with a displayName).
  let outside = 0;
  for (const [, anchor] of index.groupAnchorByDn.entries()) {
    for (const dn of groupsNow(anchor)?.memberDns ?? []) if (dns.has(dn.toLowerCase())) outside++;
  }
  return outside;
}

/** Every group that nests `anchor`, however deep (a cycle ends where it began). */
function ancestors(index: ComposeIndex, anchor: string): Set<string> {
  const found = new Set<string>();
  const stack = [anchor];
  while (stack.length) {
    for (const parent of index.parents.get(stack.pop()!) ?? []) {
      if (found.has(parent) || parent === anchor) continue;
      found.add(parent);
      stack.push(parent);
    }
  }
  return found;
}

/** Groups' members resolved once each, as the poll leaves them, and flattened as flattenGroups does. */
class MemberResolver {
  private readonly resolved = new Map<string, Resolved>();

  constructor(
    private readonly index: ComposeIndex,
    private readonly desired: MappedState,
    private readonly groupsNow: (anchor: string) => RememberedGroup | undefined,
  ) {}

  direct(anchor: string): Resolved {
    let r = this.resolved.get(anchor);
    if (!r) this.resolved.set(anchor, (r = resolveMembers(this.index, this.desired, this.groupsNow(anchor)?.memberDns ?? [])));
    return r;
  }

  /** Every user reachable from the group through nesting, sorted, each once. */
  flat(root: string): string[] {
    const members = new Set<string>();
    const seen = new Set([root]);
    const stack = [root];
    while (stack.length) {
      const r = this.direct(stack.pop()!);
      for (const user of r.users) members.add(user);
      for (const sub of r.subgroups) {
        if (seen.has(sub)) continue;
        seen.add(sub);
        stack.push(sub);
      }
    }
    return [...members].sort();
  }
}

interface Resolved {
  /** Users in scope, as named (not yet flattened). */
  users: string[];
  subgroups: string[];
  /** Values that name no user and no group. */
  outside: number;
}

function userNotPatchable(desired: MappedState, anchor: string, before: RememberedUser, after: RememberedUser): string | undefined {
  if (before.dn !== after.dn) return `${after.dn} was renamed or moved`;
  if (!before.attrs || !after.attrs) return `${after.dn} is or was skipped`;
  const user = desired.users.get(anchor);
  if (!user) return `${after.dn} is not synced`;
  const [was, now] = [user.attrs, after.attrs];
  if (was.email !== now.email || was.userName !== now.userName) return `${after.dn} has a new email or userName`;
  if (was.active !== now.active) return `${after.dn} was enabled or disabled`;
  return undefined;
}

/**
 * A group's member values as flattenGroups resolves them: a user's DN as written, then a group's, then both by
 * their RFC 4514 key. Users not in scope are no members; values that name no entry count as outside the scope.
 */
function resolveMembers(index: ComposeIndex, desired: MappedState, memberDns: readonly string[]): Resolved {
  const users: string[] = [];
  const subgroups: string[] = [];
  let outside = 0;
  for (const dn of memberDns) {
    let anchor = index.userAnchorByDn.exactly(dn);
    let group = anchor === undefined ? index.groupAnchorByDn.exactly(dn) : undefined;
    if (anchor === undefined && group === undefined) {
      const key = dnKey(dn);
      anchor = index.userAnchorByDn.byKey(key);
      if (anchor === undefined) group = index.groupAnchorByDn.byKey(key);
    }
    if (anchor !== undefined) {
      if (desired.users.has(anchor)) users.push(anchor);
    } else if (group !== undefined) subgroups.push(group);
    else outside++;
  }
  return { users, subgroups, outside };
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const x = new Set(a);
  const y = new Set(b);
  return x.size === y.size && [...x].every((v) => y.has(v));
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function replaceWarnings(desired: MappedState, kind: 'user' | 'group', anchor: string, dn: string, warnings: RememberedUser['warnings']): void {
  if (desired.warnings.some((w) => w.kind === kind && w.anchor === anchor)) desired.warnings = desired.warnings.filter((w) => !(w.kind === kind && w.anchor === anchor));
  for (const w of warnings ?? []) desired.warnings.push({ dn, kind, anchor, ...w });
}

/** patchDesired for what a daemon's poll read, when every changed entry was known before. */
export function patchedChanges(
  view: { memory: { users: Record<string, RememberedUser> }; groups: ReadonlyMap<string, RememberedGroup> },
  desired: MappedState,
  changedUsers: readonly { dn: string; anchor: string | undefined }[],
  changedGroups: readonly RememberedGroup[],
  gone: readonly string[],
  remembered: ReadonlyMap<string, RememberedUser>,
  maxGroupMembers: number,
): Touched | { compose: string } {
  const users: EntryChange<RememberedUser>[] = [];
  for (const u of changedUsers) {
    const before = u.anchor === undefined ? undefined : view.memory.users[u.anchor];
    if (!before) return { compose: `${u.dn} is new` };
    users.push({ anchor: u.anchor!, before, after: remembered.get(u.anchor!)! });
  }
  const groups: EntryChange<RememberedGroup>[] = [];
  for (const g of changedGroups) {
    const before = view.groups.get(g.anchor);
    if (!before) return { compose: `${g.dn} is new` };
    groups.push({ anchor: g.anchor, before, after: g });
  }
  const changed = new Map(changedGroups.map((g) => [g.anchor, g]));
  return patchDesired(desired, { users, groups, gone }, maxGroupMembers, (anchor) => changed.get(anchor) ?? view.groups.get(anchor));
}
