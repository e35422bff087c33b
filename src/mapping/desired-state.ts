import type { DesiredGroup, DesiredState, DesiredUser, Skip, UserAttributes } from '../model.js';
import { OPTIONAL_USER_FIELDS } from '../model.js';
import { refusedGroupReason } from '../scim/atlassian-rules.js';
import { candidates, evaluate, type EntryValues, type Expression, type MappingRules } from './rules.js';
import { DnIndex } from '../directory/dn.js';
import { flattenGroups } from './flatten-groups.js';
import { cleanText, cleanUrl, type CleanText, emailShapeProblem, identifierProblem, MAX_EMAIL_LENGTH, MAX_USERNAME_LENGTH, show } from './sanitize.js';

/** A value the mapping changed or left out while the entry itself still syncs (see sanitize.ts for the rules). */
export interface FieldWarning {
  /** The SCIM field: a user field name, or displayName for a group. */
  field: string;
  message: string;
}

/** One user entry as a read mapped it on its own: its fields, or why it was skipped (what a delta read carries). */
export interface RememberedUser {
  dn: string;
  attrs?: UserAttributes;
  skip?: string;
  warnings?: FieldWarning[];
}

/**
 * One group entry as a read mapped it: what a resident daemon keeps between polls, so that a poll re-reads only the
 * groups whose change stamp moved and still settles nesting over all of them.
 */
export interface RememberedGroup {
  dn: string;
  anchor: string;
  /** Undefined when the entry is skipped for it (no displayName). */
  displayName?: string;
  skip?: string;
  warnings?: FieldWarning[];
  memberDns: string[];
}

/** A FieldWarning with the entry it is about. */
export interface MappingWarning extends FieldWarning {
  dn: string;
  kind: 'user' | 'group';
  anchor: string;
}

/** The desired state, plus what the mapping adjusted in entries that are synced. */
/**
 * How the composed state resolved member values, kept by a resident daemon so that a change to one group is planned
 * without composing everything again (see patchDesired). Made by every full compose, from what it built anyway.
 */
export interface ComposeIndex {
  /** Every user entry placed, by DN (also those then dropped for a shared email: they resolve, but are not in scope). */
  userAnchorByDn: DnIndex<string>;
  /** Every group with a displayName, by DN (skipped duplicates and refused names too: they still nest). */
  groupAnchorByDn: DnIndex<string>;
  /** The groups each nested group is a member of (child anchor → parent anchors); a group not nested is absent. */
  parents: ReadonlyMap<string, ReadonlySet<string>>;
}

export type MappedState = DesiredState & {
  index?: ComposeIndex;
  warnings: MappingWarning[];
  /**
   * After a delta read: remembered users whose DN an entry read now holds under another anchor. DNs are unique, so
   * the remembered entry is gone from there (deleted, or moved out of scope: a move within it would have been read),
   * which a delta otherwise cannot see. A person deleted and made again at the same DN is the common case.
   */
  replacedUsers: string[];
};

interface GroupDraft {
  anchor: string;
  dn: string;
  displayName: string;
  memberDns: string[];
}

/**
 * Collects mapped entries page by page as the directory streams them (so no raw copy of the directory is kept),
 * then settles what needs the whole scope: duplicate emails, nested groups, members outside the scope.
 */
export class DesiredStateBuilder {
  private readonly users = new Map<string, DesiredUser>();
  private readonly userAnchorByDn = new DnIndex<string>();
  private readonly groups: GroupDraft[] = [];
  private readonly skipped: Skip[] = [];
  private readonly duplicateAnchors = new Set<string>();
  private readonly warnings: MappingWarning[] = [];
  /** Each user entry's own outcome, before the checks across entries: what a later delta read carries over. */
  private readonly remembered = new Map<string, RememberedUser>();
  /**
   * The DN of every user entry this read returned, skipped ones included, to tell a remembered entry whose DN is
   * taken. Made at the first carryUser from what was remembered until then (only this read's entries, a delta's
   * few), and compared in lower case, not parsed (DnIndex): every unchanged user is carried past it.
   */
  private readAnchorByDn: Map<string, string> | undefined;
  private readonly replaced: string[] = [];
  private readonly rememberedGroupList: RememberedGroup[] = [];

  constructor(
    private readonly rules: MappingRules,
    /** refusedGroupNames: the admin's own patterns (target.refusedGroupNames), refused as product groups are. */
    /**
     * rememberCarried false: only the entries read are remembered, not those carried over (a resident daemon keeps
     * its own memory and changes it in place; a Map of 150,000 it would throw away is not worth making).
     */
    private readonly options: { remember: boolean; rememberCarried?: boolean; refusedGroupNames?: readonly string[] } = { remember: true },
  ) {}

  addUser(dn: string, anchor: string | undefined, values: EntryValues, active = true): void {
    if (!anchor) return this.skip(dn, 'user', 'no anchor (entryUUID) returned for the entry');
    if (this.users.has(anchor) || this.duplicateAnchors.has(anchor)) {
      this.duplicateAnchors.add(anchor);
      return this.skip(dn, 'user', `anchor ${anchor} is shared with another entry`, anchor);
    }
    const fieldWarnings: FieldWarning[] = [];
    const mapped = mapUser(this.rules, values, active, fieldWarnings);
    if (typeof mapped === 'string') {
      if (this.options.remember) this.remembered.set(anchor, { dn, skip: mapped });
      return this.skip(dn, 'user', mapped, anchor);
    }
    if (this.options.remember) this.remembered.set(anchor, fieldWarnings.length ? { dn, attrs: mapped, warnings: fieldWarnings } : { dn, attrs: mapped });
    this.placeUser(anchor, dn, mapped, fieldWarnings);
  }

  /**
   * A user a delta read did not return, as the last read mapped it. Call after every addUser of the read: an entry
   * read now wins over a remembered one, by anchor and by DN (a new entry may have taken a deleted one's DN).
   */
  carryUser(anchor: string, user: RememberedUser): void {
    if (this.remembered.has(anchor) || this.users.has(anchor) || this.duplicateAnchors.has(anchor)) return;
    // Made at the first carry, from what was read until then (carried entries are not added to it).
    this.readAnchorByDn ??= new Map([...this.remembered].map(([a, u]) => [u.dn.toLowerCase(), a]));
    const successor = this.readAnchorByDn.get(user.dn.toLowerCase());
    if (successor !== undefined && successor !== anchor) {
      this.replaced.push(anchor);
      return;
    }
    if (this.options.rememberCarried !== false) this.remembered.set(anchor, user);
    if (user.skip !== undefined || !user.attrs) return this.skip(user.dn, 'user', user.skip ?? 'skipped by an earlier read', anchor);
    this.placeUser(anchor, user.dn, user.attrs, user.warnings ?? []);
  }

  private placeUser(anchor: string, dn: string, attrs: UserAttributes, fieldWarnings: FieldWarning[]): void {
    this.users.set(anchor, { anchor, dn, attrs });
    this.userAnchorByDn.add(dn, anchor);
    for (const w of fieldWarnings) this.warnings.push({ dn, kind: 'user', anchor, ...w });
  }

  /** Every user entry read or carried, by anchor, as mapped on its own. */
  rememberedUsers(): Record<string, RememberedUser> {
    return Object.fromEntries(this.remembered);
  }

  /** One user entry as read or carried (undefined when it was not, or was replaced by another at its DN). */
  rememberedUser(anchor: string): RememberedUser | undefined {
    return this.remembered.get(anchor);
  }

  addGroup(dn: string, anchor: string | undefined, values: EntryValues, memberDns: string[]): void {
    if (!anchor) return this.skip(dn, 'group', 'no anchor (entryUUID) returned for the entry');
    this.carryGroup(mapGroup(this.rules, dn, anchor, values, memberDns));
  }

  /** A group as mapped by addGroup or by an earlier read (a resident daemon's poll carries the unchanged ones). */
  carryGroup(group: RememberedGroup): void {
    if (this.options.remember) this.rememberedGroupList.push(group);
    const { dn, anchor, displayName, memberDns } = group;
    if (displayName === undefined) return this.skip(dn, 'group', group.skip ?? 'skipped by an earlier read', anchor);
    this.groups.push({ anchor, dn, displayName, memberDns });
    for (const w of group.warnings ?? []) this.warnings.push({ dn, kind: 'group', anchor, ...w });
  }

  /** Every group entry read or carried, as mapped on its own. */
  rememberedGroups(): RememberedGroup[] {
    return this.rememberedGroupList;
  }

  private skip(dn: string, kind: Skip['kind'], reason: string, anchor?: string): void {
    this.skipped.push(anchor ? { dn, kind, reason, anchor } : { dn, kind, reason });
  }

  /**
   * The desired state. `warnings` lists what the mapping adjusted (control characters removed, values cut,
   * undecodable values ignored) in the users and groups that are synced; skipped entries are in `skipped` only.
   */
  finish(): MappedState {
    this.dropDuplicateAnchors();
    this.dropSharedValues('email', 'email');
    this.dropSharedValues('userName', 'userName');
    const groups = this.settleGroups();
    const warnings = this.warnings.filter((w) => (w.kind === 'user' ? this.users.has(w.anchor) : groups.groups.has(w.anchor)));
    return { users: this.users, groups: groups.groups, skipped: this.skipped, membersOutsideScope: groups.outsideScope, warnings, replacedUsers: this.replaced, index: groups.index };
  }

  private dropDuplicateAnchors(): void {
    for (const anchor of this.duplicateAnchors) {
      const user = this.users.get(anchor);
      if (!user) continue;
      this.users.delete(anchor);
      this.skip(user.dn, 'user', `anchor ${anchor} is shared with another entry`, anchor);
    }
  }

  /** Atlassian joins accounts by email: when two entries claim one, neither is synced (never guess which is right). */
  private dropSharedValues(field: 'email' | 'userName', label: string): void {
    // mapUser lower-cases both fields. One Map entry per value, and a list only where a value is shared: at
    // 150,000 people an array for each was most of this check's cost.
    const first = new Map<string, DesiredUser>();
    const shared = new Map<string, DesiredUser[]>();
    for (const user of this.users.values()) {
      const key = user.attrs[field];
      const earlier = first.get(key);
      if (earlier === undefined) first.set(key, user);
      else shared.set(key, [...(shared.get(key) ?? [earlier]), user]);
    }
    for (const [value, list] of shared) {
      for (const user of list) {
        this.users.delete(user.anchor);
        const others = list.filter((u) => u !== user).map((u) => u.dn);
        this.skip(user.dn, 'user', `${label} ${value} is also used by ${others.join('; ')}`, user.anchor);
      }
    }
  }

  private settleGroups(): { groups: Map<string, DesiredGroup>; outsideScope: number; index: ComposeIndex } {
    const groups = new Map<string, DesiredGroup>();
    const kept: GroupDraft[] = [];
    const byName = new Map<string, GroupDraft[]>();
    for (const g of this.groups) {
      const refused = refusedGroupReason(g.displayName, this.options.refusedGroupNames);
      if (refused) {
        this.skip(g.dn, 'group', refused, g.anchor);
        continue;
      }
      const key = g.displayName.toLowerCase();
      byName.set(key, [...(byName.get(key) ?? []), g]);
    }
    for (const list of byName.values()) {
      if (list.length === 1) kept.push(list[0]!);
      else for (const g of list) this.skip(g.dn, 'group', `displayName "${g.displayName}" is also used by ${list.filter((o) => o !== g).map((o) => o.dn).join('; ')}`, g.anchor);
    }
    // Nesting is resolved over every group read, built-in or duplicate ones too, so their members still count
    // where they are nested inside a kept group.
    const flat = flattenGroups(
      this.groups.map((g) => ({ dn: g.dn, memberDns: g.memberDns })),
      this.userAnchorByDn,
      (anchor) => this.users.has(anchor),
    );
    for (const g of kept) {
      groups.set(g.anchor, { anchor: g.anchor, dn: g.dn, displayName: g.displayName, members: flat.membersOf(g.dn) });
    }
    const groupAnchorByDn = new DnIndex<string>();
    for (const g of this.groups) groupAnchorByDn.add(g.dn, g.anchor);
    const parents = new Map<string, Set<string>>();
    flat.subgroups.forEach((children, i) => {
      for (const child of children) {
        const anchor = this.groups[child]!.anchor;
        parents.set(anchor, (parents.get(anchor) ?? new Set()).add(this.groups[i]!.anchor));
      }
    });
    return { groups, outsideScope: flat.outsideScope, index: { userAnchorByDn: this.userAnchorByDn, groupAnchorByDn, parents } };
  }
}

export function mapGroup(rules: MappingRules, dn: string, anchor: string, values: EntryValues, memberDns: string[]): RememberedGroup {
  const fieldWarnings: FieldWarning[] = [];
  const displayName = mapText('displayName', rules.group.displayName, values, fieldWarnings);
  if (!displayName) {
    const why = fieldWarnings.map((w) => w.message).join('; ');
    return { dn, anchor, skip: `no value for displayName (mapping.group.displayName)${why ? `: ${why}` : ''}`, memberDns };
  }
  return fieldWarnings.length ? { dn, anchor, displayName, warnings: fieldWarnings, memberDns } : { dn, anchor, displayName, memberDns };
}

/**
 * One directory entry → the SCIM user fields, or the reason it cannot be synced. Display fields are cleaned as
 * sanitize.ts describes; what was changed is pushed to `warnings` when given.
 */
export function mapUser(rules: MappingRules, values: EntryValues, active: boolean, warnings?: FieldWarning[]): UserAttributes | string {
  const email = rules.user.email && evaluate(rules.user.email, values);
  if (!email) return 'no email (mapping.user.email gave no value)';
  const emailProblem = identifierProblem('email', email, MAX_EMAIL_LENGTH);
  if (emailProblem) return emailProblem;
  const shape = emailShapeProblem(email);
  if (shape) return `email ${show(email)} is not a usable address: ${shape}`;
  const userName = rules.user.userName && evaluate(rules.user.userName, values);
  if (!userName) return 'no userName (mapping.user.userName gave no value)';
  const userNameProblem = identifierProblem('userName', userName, MAX_USERNAME_LENGTH);
  if (userNameProblem) return userNameProblem;
  // Atlassian treats emails case-insensitively and lower-cases them itself; sending them lower-cased keeps the
  // snapshot equal to what the SCIM side shows, so case-only differences never cause a PATCH.
  const attrs: UserAttributes = { userName: userName.toLowerCase(), email: email.toLowerCase(), active };
  const notes: FieldWarning[] = [];
  for (const field of OPTIONAL_USER_FIELDS) {
    const rule = rules.user[field];
    const value = rule && mapText(field, rule, values, notes, field === 'photoUrl' ? cleanUrl : cleanText);
    if (value) attrs[field] = value;
  }
  warnings?.push(...notes);
  return attrs;
}

/**
 * The first alternative whose value is usable text, cleaned. An alternative whose value is not valid text is
 * passed over for the next one, and said so in `warnings`.
 */
function mapText(field: string, expression: Expression, values: EntryValues, warnings: FieldWarning[], clean: (raw: string) => CleanText = cleanText): string | undefined {
  const refused: string[] = [];
  let chosen: { value: string; source: string; notes: string[] } | undefined;
  for (const candidate of candidates(expression, values)) {
    const cleaned = clean(candidate.value);
    if (cleaned.value === undefined) {
      refused.push(`the value from ${candidate.source} ${cleaned.refused} and was ignored`);
      continue;
    }
    chosen = { value: cleaned.value, source: candidate.source, notes: cleaned.notes };
    break;
  }
  if (refused.length) {
    const fallback = chosen ? `; used ${chosen.source} instead` : '; the field is left empty';
    warnings.push({ field, message: refused.join('; ') + fallback });
  }
  if (chosen?.notes.length) warnings.push({ field, message: `the value from ${chosen.source}: ${chosen.notes.join('; ')}` });
  return chosen?.value;
}
