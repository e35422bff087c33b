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

/** Atlassian serves at most this many resources per list page. */
export const MAX_PAGE_SIZE = 100;

export const SCHEMA_USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const SCHEMA_GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
export const SCHEMA_ENTERPRISE_USER = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
export const SCHEMA_PATCH = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
export const SCHEMA_LIST = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
export const SCHEMA_ERROR = 'urn:ietf:params:scim:api:messages:2.0:Error';

export const SCIM_CONTENT_TYPE = 'application/scim+json';

/**
 * The remove-members form. Atlassian does not document it; the filter path is what RFC 7644 describes and what
 * Atlassian's own IdP integrations send, one operation per member.
 */
export function removeMemberOperations(memberIds: readonly string[]): object[] {
  return memberIds.map((id) => ({ op: 'remove', path: `members[value eq ${JSON.stringify(id)}]` }));
}

export function addMembersOperation(memberIds: readonly string[]): object {
  return { op: 'add', path: 'members', value: memberIds.map((value) => ({ value })) };
}

/** A value placed inside a SCIM filter string: quoted and escaped as JSON, as RFC 7644 asks. */
export function scimFilterEq(attribute: 'userName' | 'externalId' | 'displayName' | 'emails.value', value: string): string {
  return `${attribute} eq ${JSON.stringify(value)}`;
}
