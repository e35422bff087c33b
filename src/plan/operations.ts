import type { UserAttributes, UserField } from '../model.js';

export interface FieldChange {
  field: UserField;
  from?: string | boolean;
  to?: string | boolean;
}

/** Marks of target.verifiedDomains (see verified-domains.ts), set on the plan when the key is set. */
export interface DomainMarks {
  /** The email is outside the verified domains: Atlassian does not apply attribute changes to this account. */
  unmanaged?: true;
  /** The email moves out of the verified domains: Atlassian drops the person's SCIM groups and unlinks the account. */
  leavesVerifiedDomains?: { from: string; to: string };
}

export type Operation =
  | ({ kind: 'createUser'; anchor: string; dn: string; attrs: UserAttributes } & DomainMarks)
  | ({
      kind: 'updateUser' | 'reactivateUser' | 'deactivateUser';
      anchor: string;
      dn?: string;
      id: string;
      userName: string;
      changes: FieldChange[];
      attrs: UserAttributes;
      /** The account was linked by name, not by anchor: the PATCH also writes the anchor as its externalId. */
      setExternalId?: boolean;
      /** A person re-created in the directory: the new entry takes over the account linked to the old one. */
      takeOver?: { anchor: string; userName: string };
    } & DomainMarks)
  | { kind: 'deleteUser'; anchor: string; id: string; userName: string }
  | { kind: 'createGroup'; anchor: string; dn: string; displayName: string; members: string[]; renamedFrom?: { id: string; displayName: string } }
  | { kind: 'addMembers' | 'removeMembers'; groupAnchor: string; displayName: string; members: string[] }
  | { kind: 'deleteGroup'; groupAnchor: string; id: string; displayName: string; reason: 'left the directory scope' | 'renamed' }
  /** A group linked by name (a rename's new group, an adopted one): its anchor is written as its externalId. */
  | { kind: 'anchorGroup'; groupAnchor: string; id: string; displayName: string }
  /**
   * A group of the same name made outside ldap-scim, approved by the admin (see group-conflicts.ts): it is linked
   * instead of created, its other members removed and its externalId set; the members it lacks follow as addMembers.
   */
  | {
      kind: 'adoptGroup';
      anchor: string;
      dn: string;
      id: string;
      displayName: string;
      /** Directory members it has already. */
      keep: string[];
      remove: ScimMember[];
      renamedFrom?: { id: string; displayName: string };
    };

/** A member of a SCIM group as the SCIM side lists it; `anchor` when the account is one this directory provisioned. */
export interface ScimMember {
  id: string;
  anchor?: string;
  display?: string;
}

/**
 * A directory group whose name a SCIM group made outside ldap-scim already holds. It is left alone until the admin
 * approves it by name (plan --approve-group), the way Atlassian's own "review groups" asks before a sync overwrites
 * a group's members.
 */
export interface GroupConflict {
  anchor: string;
  dn: string;
  displayName: string;
  /** The existing SCIM group; absent when the name is held outside the SCIM directory (the create answered 409). */
  scimId?: string;
  /** Directory members the group lacks: adoption adds them. */
  add: string[];
  /** Members the directory group does not have: adoption removes them. */
  remove: ScimMember[];
  /** Members it has that stay. */
  keep: number;
  status: 'awaiting approval' | 'approved' | 'outside the SCIM directory';
  /** What the admin can do next. */
  wayOut: string;
}

export type OperationKind = Operation['kind'];

export const OPERATION_KINDS: readonly OperationKind[] = [
  'createUser',
  'updateUser',
  'reactivateUser',
  'createGroup',
  'addMembers',
  'removeMembers',
  'deleteGroup',
  'anchorGroup',
  'adoptGroup',
  'deactivateUser',
  'deleteUser',
];

export interface Plan {
  operations: Operation[];
  /** Things an admin must know before applying, e.g. that a rename loses product permissions. */
  warnings: string[];
  /** Groups held (or, approved, adopted) because a group of the same name exists on the SCIM side. */
  conflicts?: GroupConflict[];
}
