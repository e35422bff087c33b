import type { DesiredGroup, DesiredState, UserAttributes } from '../model.js';
import { OPTIONAL_USER_FIELDS } from '../model.js';
import type { GroupRecord, SnapshotData, UserRecord } from '../state/snapshot.js';
import type { FieldChange, Operation, Plan } from './operations.js';

export interface PlanOptions {
  membersPerPatch: number;
  deprovision: 'deactivate' | 'delete';
  /**
   * After a delta read, a user missing from `desired` was not read, not removed: it is held as pushed, group
   * memberships included, except those the last full read found gone. Only a full read decides who left.
   */
  holdAbsentUsers?: { except: ReadonlySet<string> };
  /**
   * Deactivated people Atlassian has taken out of the SCIM groups (outside target.verifiedDomains): they are not
   * added back while deactivated, so that their reactivation is what brings the memberships back.
   */
  noMembershipFor?: ReadonlySet<string>;
  /**
   * A resident daemon's poll whose changes were patched into the state it keeps (see patchDesired): only these
   * anchors changed since a cycle that left nothing to do, so they are the only ones planned.
   */
  only?: { users: ReadonlySet<string>; groups: ReadonlySet<string> };
}

const DIFFED_FIELDS = ['userName', 'email', ...OPTIONAL_USER_FIELDS, 'active'] as const;

/**
 * (desired, snapshot) → ordered operations. Pure: no I/O, so every rule here is unit-tested with plain objects.
 * Order: users created/updated first (groups need their ids), then groups and memberships, then group deletions,
 * deactivations last so that an interrupted cycle never leaves people deprovisioned but the rest undone.
 */
export function planSync(desired: DesiredState, snapshot: SnapshotData, options: PlanOptions): Plan {
  const skipped = new Set(desired.skipped.flatMap((s) => (s.anchor ? [s.anchor] : [])));
  const hold = options.holdAbsentUsers;
  // Asked per anchor, not listed: a plan for a few anchors never walks the 150,000 others.
  const held: Held = {
    has: (anchor) => skipped.has(anchor) || (hold !== undefined && anchor in snapshot.users && !desired.users.has(anchor) && !hold.except.has(anchor)),
  };
  const warnings: string[] = [];
  const userOps: Operation[] = [];
  const deprovisionOps: Operation[] = [];
  const takeOvers = new TakeOvers(desired, snapshot, held);
  const { only } = options;

  for (const user of only ? present(only.users, desired.users) : desired.users.values()) {
    let record = snapshot.users[user.anchor];
    const takeOver = record ? undefined : takeOvers.claim(user.anchor, user.attrs);
    if (takeOver) record = takeOver.record;
    if (!record) {
      // A disabled account that was never provisioned stays unprovisioned.
      if (user.attrs.active) userOps.push({ kind: 'createUser', anchor: user.anchor, dn: user.dn, attrs: user.attrs });
      continue;
    }
    const changes = withoutNotApplied(diffUser(record.attrs, user.attrs), record);
    const setExternalId = takeOver !== undefined || record.unanchored === true;
    if (changes.length === 0 && !setExternalId) continue;
    const activeChange = changes.find((c) => c.field === 'active');
    const kind = activeChange ? (activeChange.to ? 'reactivateUser' : 'deactivateUser') : 'updateUser';
    const op: Operation = {
      kind,
      anchor: user.anchor,
      dn: user.dn,
      id: record.id,
      userName: user.attrs.userName,
      changes,
      attrs: user.attrs,
      ...(setExternalId ? { setExternalId } : {}),
      ...(takeOver ? { takeOver: { anchor: takeOver.anchor, userName: record.attrs.userName } } : {}),
    };
    (kind === 'deactivateUser' ? deprovisionOps : userOps).push(op);
  }
  for (const anchor of only ? only.users : Object.keys(snapshot.users)) {
    const record = snapshot.users[anchor];
    if (!record || desired.users.has(anchor) || held.has(anchor) || takeOvers.moved.has(anchor) || !record.attrs.active || record.notApplied?.active === false) continue;
    deprovisionOps.push(
      options.deprovision === 'delete'
        ? { kind: 'deleteUser', anchor, id: record.id, userName: record.attrs.userName }
        : {
            kind: 'deactivateUser',
            anchor,
            id: record.id,
            userName: record.attrs.userName,
            changes: [{ field: 'active', from: true, to: false }],
            attrs: { ...record.attrs, active: false },
          },
    );
  }

  const groupOps = planGroups(desired, snapshot, held, options, warnings, takeOvers.moved);
  return { operations: [...userOps, ...groupOps.create, ...groupOps.membership, ...groupOps.remove, ...deprovisionOps], warnings };
}

/** The changes, less those of a value the SCIM side already answered without taking (UserRecord.notApplied). */
export function withoutNotApplied(changes: FieldChange[], record: UserRecord): FieldChange[] {
  const refused = record.notApplied;
  if (!refused) return changes;
  return changes.filter((c) => !(c.field in refused) || refused[c.field] !== (c.to ?? null));
}

export function diffUser(pushed: UserAttributes, wanted: UserAttributes): FieldChange[] {
  const changes: FieldChange[] = [];
  for (const field of DIFFED_FIELDS) {
    const from = pushed[field];
    const to = wanted[field];
    if (from !== to) changes.push({ field, ...(from !== undefined ? { from } : {}), ...(to !== undefined ? { to } : {}) });
  }
  return changes;
}

/**
 * A person deleted and re-created in the directory has a new anchor and the same email: the account linked to the
 * old anchor is taken over by the new one (Atlassian joins on the email, so a create would answer 409 forever).
 * Only an old anchor that has left the scope and is not held (a skipped entry is broken, not gone) can be taken
 * over; two entries in scope with one email stay the mapping's "skipped, two entries share an email" case.
 */
class TakeOvers {
  /** Old anchor → new anchor, for the takeovers planned. */
  readonly moved = new Map<string, string>();
  /**
   * The email and userName of every record whose anchor left the scope. Made at the first new user only: a quiet
   * cycle has none, and the pass over 150,000 records cost it 60 ms of a 250 ms plan.
   */
  private byName: Map<string, string> | undefined;

  constructor(
    private readonly desired: DesiredState,
    private readonly snapshot: SnapshotData,
    private readonly held: Held,
  ) {}

  private index(): Map<string, string> {
    const byName = new Map<string, string>();
    for (const anchor in this.snapshot.users) {
      if (this.desired.users.has(anchor) || this.held.has(anchor)) continue;
      const { attrs } = this.snapshot.users[anchor]!;
      // The email is the join key; userName first, since it is what the SCIM side keeps unique.
      for (const key of [attrs.email, attrs.userName]) if (key && !byName.has(key)) byName.set(key, anchor);
    }
    return byName;
  }

  claim(newAnchor: string, attrs: UserAttributes): { anchor: string; record: UserRecord } | undefined {
    this.byName ??= this.index();
    if (this.byName.size === 0) return undefined;
    for (const key of [attrs.userName, attrs.email]) {
      const anchor = this.byName.get(key);
      if (anchor === undefined || this.moved.has(anchor)) continue;
      this.moved.set(anchor, newAnchor);
      return { anchor, record: this.snapshot.users[anchor]! };
    }
    return undefined;
  }
}

/** Anchors whose state a plan keeps as pushed: skipped entries, and after a delta read those it did not read. */
interface Held {
  has(anchor: string): boolean;
}

function* present<T>(anchors: Iterable<string>, from: ReadonlyMap<string, T>): Generator<T> {
  for (const anchor of anchors) {
    const found = from.get(anchor);
    if (found !== undefined) yield found;
  }
}

function planGroups(desired: DesiredState, snapshot: SnapshotData, held: Held, options: PlanOptions, warnings: string[], moved: ReadonlyMap<string, string>) {
  const create: Operation[] = [];
  const membership: Operation[] = [];
  const remove: Operation[] = [];
  const batch = options.membersPerPatch;
  const { only } = options;

  const outOfGroups = options.noMembershipFor;
  for (const wholeGroup of only ? present(only.groups, desired.groups) : desired.groups.values()) {
    const group = outOfGroups?.size ? { ...wholeGroup, members: wholeGroup.members.filter((a) => !outOfGroups.has(a)) } : wholeGroup;
    const record = withMovedMembers(snapshot.groups[group.anchor], moved);
    const renamed = record && record.displayName !== group.displayName;
    if (renamed && record.displayName.toLowerCase() === group.displayName.toLowerCase()) {
      warnings.push(
        `group "${record.displayName}" was renamed to "${group.displayName}" in the directory: a change of letter case only, which Atlassian cannot apply (names are case-insensitive); the group keeps its old name`,
      );
    } else if (!record || renamed) {
      if (renamed) {
        warnings.push(
          `group "${record.displayName}" was renamed to "${group.displayName}": Atlassian cannot rename groups, so a new group is created with the members and the old one deleted; product permissions granted to "${record.displayName}" are lost and must be granted again`,
        );
      }
      // A held (skipped) member of the old group keeps its membership in the new one, as it would have kept it.
      const heldMembers = renamed ? record.members.filter((a) => held.has(a) && !group.members.includes(a)) : [];
      const [first = [], ...rest] = chunk([...group.members, ...heldMembers], batch);
      create.push({
        kind: 'createGroup',
        anchor: group.anchor,
        dn: group.dn,
        displayName: group.displayName,
        members: first,
        ...(renamed ? { renamedFrom: { id: record.id, displayName: record.displayName } } : {}),
      });
      for (const members of rest) membership.push({ kind: 'addMembers', groupAnchor: group.anchor, displayName: group.displayName, members });
      if (renamed) remove.push({ kind: 'deleteGroup', groupAnchor: group.anchor, id: record.id, displayName: record.displayName, reason: 'renamed' });
      continue;
    }
    membership.push(...membershipChanges(group, record.members, record.displayName, batch, held));
    // Only once no retired group holds the anchor: some servers keep externalId unique, though RFC 7643 does not.
    if (record.unanchored && !record.retired?.length) create.push({ kind: 'anchorGroup', groupAnchor: group.anchor, id: record.id, displayName: record.displayName });
  }

  for (const anchor of only ? only.groups : Object.keys(snapshot.groups)) {
    const record = snapshot.groups[anchor];
    if (!record) continue;
    for (const old of record.retired ?? []) {
      remove.push({ kind: 'deleteGroup', groupAnchor: anchor, id: old.id, displayName: old.displayName, reason: 'renamed' });
    }
    if (desired.groups.has(anchor) || held.has(anchor)) continue;
    remove.push({ kind: 'deleteGroup', groupAnchor: anchor, id: record.id, displayName: record.displayName, reason: 'left the directory scope' });
  }
  return { create, membership, remove };
}

function membershipChanges(group: DesiredGroup, current: readonly string[], displayName: string, batch: number, held: Held): Operation[] {
  const wanted = new Set(group.members);
  const have = new Set(current);
  const toAdd = group.members.filter((a) => !have.has(a));
  // A skipped user is held as pushed, memberships included: its entry is broken, not gone.
  const toRemove = current.filter((a) => !wanted.has(a) && !held.has(a));
  // Removals first: they run in this order on the group's chain, and a group at Atlassian's member cap refuses an
  // addition made before the removal that frees its place.
  return [
    ...chunk(toRemove, batch).map((members): Operation => ({ kind: 'removeMembers', groupAnchor: group.anchor, displayName, members })),
    ...chunk(toAdd, batch).map((members): Operation => ({ kind: 'addMembers', groupAnchor: group.anchor, displayName, members })),
  ];
}

/** A group's members as they will be once the planned takeovers are done (they run before any membership change). */
function withMovedMembers(record: GroupRecord | undefined, moved: ReadonlyMap<string, string>): GroupRecord | undefined {
  if (!record || moved.size === 0 || !record.members.some((m) => moved.has(m))) return record;
  return { ...record, members: [...new Set(record.members.map((m) => moved.get(m) ?? m))] };
}

export function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
