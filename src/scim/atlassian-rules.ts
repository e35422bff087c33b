// Atlassian's rules, in one place: when Atlassian changes behaviour, this is the module that changes.

/** Groups Atlassian manages itself; a directory group of the same name is never created or changed. */
export const BUILT_IN_GROUP_NAMES: readonly string[] = [
  'site-admins',
  'org-admins',
  'administrators',
  'atlassian-addons',
  'atlassian-addons-admin',
  'system-administrators',
];

export function isBuiltInGroupName(name: string): boolean {
  return BUILT_IN_GROUP_NAMES.includes(name.trim().toLowerCase());
}

/**
 * Names of Atlassian's product (default access) groups, as patterns: `*` stands for any characters, compared without
 * case. Atlassian accepts a SCIM create of such a name but never propagates the group to the site: the
 * troubleshooting table of "Understand user provisioning" (support.atlassian.com/provisioning-users/docs/
 * understand-user-provisioning/) has "A group has successfully synced, but the group is empty" for a name shared
 * with a default group, and names confluence-users and site-admins as groups SCIM cannot manage. The names come from
 * "Understand default groups" (support.atlassian.com/user-management/docs/default-groups-and-permissions/):
 * `<product>-users-<site>` and `<product>-admins-<site>` (confluence-users-vitafleet, confluence-admins-vitafleet,
 * jira-users-acme.com, Jira-Software-users-acme.com), older sites having jira-software-users, jira-administrators,
 * confluence-administrators and the like. Only Jira's and Confluence's names are documented; other products'
 * groups (Statuspage, Opsgenie, ...) are left to the admin's `target.refusedGroupNames` rather than guessed.
 */
export const PRODUCT_GROUP_PATTERNS: readonly string[] = ['jira-*', 'confluence-*'];

/** A name pattern as a whole-name, case-insensitive expression. */
export function groupNamePattern(pattern: string): RegExp {
  const parts = pattern.trim().split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${parts.join('.*')}$`, 'i');
}

/** The first pattern the name matches, or undefined. */
export function matchingPattern(name: string, patterns: readonly string[]): string | undefined {
  const trimmed = name.trim();
  return patterns.find((p) => groupNamePattern(p).test(trimmed));
}

/**
 * Why a directory group of this name is never created or changed over SCIM, or undefined. `adminPatterns` are the
 * config's `target.refusedGroupNames`.
 */
export function refusedGroupReason(name: string, adminPatterns: readonly string[] = []): string | undefined {
  if (isBuiltInGroupName(name)) return `"${name}" is an Atlassian built-in group; it is managed by Atlassian, never from the directory`;
  if (matchingPattern(name, PRODUCT_GROUP_PATTERNS)) {
    return `"${name}" is named like an Atlassian product group: Atlassian accepts its create but never propagates it ("synced but empty"); rename the group in the directory`;
  }
  const admin = matchingPattern(name, adminPatterns);
  if (admin !== undefined) {
    return `"${name}" matches "${admin}" in target.refusedGroupNames, so it is never pushed; rename the group in the directory, or take the name out of that list`;
  }
  return undefined;
}

/** Atlassian serves at most this many resources per list page. */
export const MAX_PAGE_SIZE = 100;

/**
 * Atlassian's "Users and groups limits" page (support.atlassian.com/provisioning-users/docs/users-and-groups-limits):
 * the largest directory it accepts, and the figures it recommends staying under. The older page (150,000 users,
 * 35,000 per group) is superseded.
 */
export const DIRECTORY_LIMITS = { maxUsers: 1_000_000, maxGroupMembers: 290_000, maxGroups: 250_000, maxMemberships: 8_000_000 } as const;
export const RECOMMENDED_LIMITS = { users: 500_000, groupMembers: 250_000, groups: 200_000, memberships: 2_500_000 } as const;
export const LIMITS_PAGE = 'support.atlassian.com/provisioning-users/docs/users-and-groups-limits';

export const SCHEMA_USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const SCHEMA_GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
export const SCHEMA_ENTERPRISE_USER = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
export const SCHEMA_PATCH = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
export const SCHEMA_LIST = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
export const SCHEMA_ERROR = 'urn:ietf:params:scim:api:messages:2.0:Error';

export const SCIM_CONTENT_TYPE = 'application/scim+json';

/**
 * The two remove-members forms seen in the wild; Atlassian documents neither. `filter` (the default) is what RFC
 * 7644 describes and what Okta sends, one operation per member; `value-list` is one operation with the members as its
 * value. A server that answers 400 to one is asked in the other (ScimClient.removeMembers).
 */
export type RemoveMembersForm = 'filter' | 'value-list';

export function removeMemberOperations(memberIds: readonly string[], form: RemoveMembersForm = 'filter'): object[] {
  if (form === 'value-list') return [{ op: 'remove', path: 'members', value: memberIds.map((value) => ({ value })) }];
  return memberIds.map((id) => ({ op: 'remove', path: `members[value eq ${JSON.stringify(id)}]` }));
}

export function addMembersOperation(memberIds: readonly string[]): object {
  return { op: 'add', path: 'members', value: memberIds.map((value) => ({ value })) };
}

/** A value placed inside a SCIM filter string: quoted and escaped as JSON, as RFC 7644 asks. */
export function scimFilterEq(attribute: 'userName' | 'externalId' | 'displayName' | 'emails.value', value: string): string {
  return `${attribute} eq ${JSON.stringify(value)}`;
}
