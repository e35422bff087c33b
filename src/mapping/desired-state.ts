import type { DesiredGroup, DesiredState, DesiredUser, Skip, UserAttributes } from '../model.js';
import { OPTIONAL_USER_FIELDS } from '../model.js';
import { isBuiltInGroupName } from '../scim/atlassian-rules.js';
import { normalizeDn } from '../directory/dn.js';
import { evaluate, type EntryValues, type MappingRules } from './rules.js';
import { flattenGroups } from './flatten-groups.js';

const EMAIL = /^[^\s@<>()",;]+@[^\s@<>()",;]+\.[^\s@<>()",;]+$/;

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
  private readonly userAnchorByDn = new Map<string, string>();
  private readonly groups: GroupDraft[] = [];
  private readonly skipped: Skip[] = [];
  private readonly duplicateAnchors = new Set<string>();

  constructor(private readonly rules: MappingRules) {}

  addUser(dn: string, anchor: string | undefined, values: EntryValues, active = true): void {
    if (!anchor) return this.skip(dn, 'user', 'no anchor (entryUUID) returned for the entry');
    if (this.users.has(anchor) || this.duplicateAnchors.has(anchor)) {
      this.duplicateAnchors.add(anchor);
      return this.skip(dn, 'user', `anchor ${anchor} is shared with another entry`, anchor);
    }
    const mapped = mapUser(this.rules, values, active);
    if (typeof mapped === 'string') return this.skip(dn, 'user', mapped, anchor);
    this.users.set(anchor, { anchor, dn, attrs: mapped });
    this.userAnchorByDn.set(normalizeDn(dn), anchor);
  }

  addGroup(dn: string, anchor: string | undefined, values: EntryValues, memberDns: string[]): void {
    if (!anchor) return this.skip(dn, 'group', 'no anchor (entryUUID) returned for the entry');
    const displayName = evaluate(this.rules.group.displayName, values);
    if (!displayName) return this.skip(dn, 'group', 'no value for displayName (mapping.group.displayName)', anchor);
    this.groups.push({ anchor, dn, displayName, memberDns });
  }

  private skip(dn: string, kind: Skip['kind'], reason: string, anchor?: string): void {
    this.skipped.push(anchor ? { dn, kind, reason, anchor } : { dn, kind, reason });
  }

  finish(): DesiredState {
    this.dropDuplicateAnchors();
    this.dropSharedValues('email', 'email');
    this.dropSharedValues('userName', 'userName');
    const groups = this.settleGroups();
    return { users: this.users, groups: groups.groups, skipped: this.skipped, membersOutsideScope: groups.outsideScope };
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
    const byValue = new Map<string, DesiredUser[]>();
    for (const user of this.users.values()) {
      const key = user.attrs[field].toLowerCase();
      const list = byValue.get(key);
      if (list) list.push(user);
      else byValue.set(key, [user]);
    }
    for (const [value, list] of byValue) {
      if (list.length < 2) continue;
      for (const user of list) {
        this.users.delete(user.anchor);
        const others = list.filter((u) => u !== user).map((u) => u.dn);
        this.skip(user.dn, 'user', `${label} ${value} is also used by ${others.join('; ')}`, user.anchor);
      }
    }
  }

  private settleGroups(): { groups: Map<string, DesiredGroup>; outsideScope: number } {
    const groups = new Map<string, DesiredGroup>();
    const kept: GroupDraft[] = [];
    const byName = new Map<string, GroupDraft[]>();
    for (const g of this.groups) {
      if (isBuiltInGroupName(g.displayName)) {
        this.skip(g.dn, 'group', `"${g.displayName}" is an Atlassian built-in group; it is managed by Atlassian, never from the directory`, g.anchor);
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
    return { groups, outsideScope: flat.outsideScope };
  }
}

/** One directory entry → the SCIM user fields, or the reason it cannot be synced. */
export function mapUser(rules: MappingRules, values: EntryValues, active: boolean): UserAttributes | string {
  const email = rules.user.email && evaluate(rules.user.email, values);
  if (!email) return 'no email (mapping.user.email gave no value)';
  if (!EMAIL.test(email)) return `email "${email}" is not a usable address`;
  const userName = rules.user.userName && evaluate(rules.user.userName, values);
  if (!userName) return 'no userName (mapping.user.userName gave no value)';
  // Atlassian treats emails case-insensitively and lower-cases them itself; sending them lower-cased keeps the
  // snapshot equal to what the SCIM side shows, so case-only differences never cause a PATCH.
  const attrs: UserAttributes = { userName: userName.toLowerCase(), email: email.toLowerCase(), active };
  for (const field of OPTIONAL_USER_FIELDS) {
    const rule = rules.user[field];
    const value = rule && evaluate(rule, values);
    if (value) attrs[field] = value;
  }
  return attrs;
}
