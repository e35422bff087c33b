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
 * the entries themselves; otherwise says why not, and changes nothing (the caller composes everything again).
 *
 * In place:
 * - a user whose fields changed but not its DN, email, userName or active flag, who was synced and still maps:
 *   no shared email appears or goes, and no group's members change;
 * - a group whose members changed but not its DN or name, that nests no group and is nested in none, and stays
 *   within `maxGroupMembers`: its members are resolved as flattenGroups resolves them, against the same indexes.
 * Anything else (a new, gone, renamed, skipped or re-skipped entry, nesting, a cap) is the full compose's.
 *
 * A full compose after the same changes gives the same state: the differential tests hold it to that.
 */
export function patchDesired(
  desired: MappedState,
  changes: { users: readonly EntryChange<RememberedUser>[]; groups: readonly EntryChange<RememberedGroup>[] },
  maxGroupMembers: number,
): Touched | { compose: string } {
  const index = desired.index;
  if (!index) return { compose: 'no composed state to patch' };
  for (const { anchor, before, after } of changes.users) {
    const why = userNotPatchable(desired, anchor, before, after);
    if (why) return { compose: why };
  }
  const groups: { change: EntryChange<RememberedGroup>; members: string[]; outsideBefore: number; outsideAfter: number }[] = [];
  for (const change of changes.groups) {
    const { anchor, before, after } = change;
    if (before.dn !== after.dn || before.displayName === undefined || before.displayName !== after.displayName) return { compose: `group ${after.dn} was renamed or moved` };
    if (!desired.groups.has(anchor)) return { compose: `group ${after.dn} is not synced` };
    if (index.nestedGroups.has(anchor)) return { compose: `group ${after.dn} is nested in another` };
    const was = resolveMembers(index, desired, before.memberDns);
    const now = resolveMembers(index, desired, after.memberDns);
    if (was.nests || now.nests) return { compose: `group ${after.dn} nests groups` };
    if (now.members.length > maxGroupMembers) return { compose: `group ${after.dn} is over limits.maxGroupMembers` };
    groups.push({ change, members: now.members, outsideBefore: was.outside, outsideAfter: now.outside });
  }

  // Every change can be patched: from here on the state changes.
  const users = new Set<string>();
  for (const { anchor, after } of changes.users) {
    const user = desired.users.get(anchor)!;
    desired.users.set(anchor, { anchor, dn: user.dn, attrs: after.attrs! });
    replaceWarnings(desired, 'user', anchor, user.dn, after.warnings);
    users.add(anchor);
  }
  const touchedGroups = new Set<string>();
  for (const { change, members, outsideBefore, outsideAfter } of groups) {
    const group = desired.groups.get(change.anchor)!;
    desired.groups.set(change.anchor, { ...group, members });
    desired.membersOutsideScope += outsideAfter - outsideBefore;
    replaceWarnings(desired, 'group', change.anchor, group.dn, change.after.warnings);
    touchedGroups.add(change.anchor);
  }
  desired.replacedUsers = [];
  return { users, groups: touchedGroups };
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
function resolveMembers(index: ComposeIndex, desired: MappedState, memberDns: readonly string[]): { members: string[]; outside: number; nests: boolean } {
  const members = new Set<string>();
  let outside = 0;
  let nests = false;
  for (const dn of memberDns) {
    let anchor = index.userAnchorByDn.exactly(dn);
    let group = anchor === undefined ? index.groupAnchorByDn.exactly(dn) : undefined;
    if (anchor === undefined && group === undefined) {
      const key = dnKey(dn);
      anchor = index.userAnchorByDn.byKey(key);
      if (anchor === undefined) group = index.groupAnchorByDn.byKey(key);
    }
    if (anchor !== undefined) {
      if (desired.users.has(anchor)) members.add(anchor);
    } else if (group !== undefined) nests = true;
    else outside++;
  }
  return { members: [...members].sort(), outside, nests };
}

function replaceWarnings(desired: MappedState, kind: 'user' | 'group', anchor: string, dn: string, warnings: RememberedUser['warnings']): void {
  if (desired.warnings.some((w) => w.kind === kind && w.anchor === anchor)) desired.warnings = desired.warnings.filter((w) => !(w.kind === kind && w.anchor === anchor));
  for (const w of warnings ?? []) desired.warnings.push({ dn, kind, anchor, ...w });
}
