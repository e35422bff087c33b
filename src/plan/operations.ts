import type { UserAttributes, UserField } from '../model.js';

export interface FieldChange {
  field: UserField;
  from?: string | boolean;
  to?: string | boolean;
}

export type Operation =
  | { kind: 'createUser'; anchor: string; dn: string; attrs: UserAttributes }
  | {
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
    }
  | { kind: 'deleteUser'; anchor: string; id: string; userName: string }
  | { kind: 'createGroup'; anchor: string; dn: string; displayName: string; members: string[]; renamedFrom?: { id: string; displayName: string } }
  | { kind: 'addMembers' | 'removeMembers'; groupAnchor: string; displayName: string; members: string[] }
  | { kind: 'deleteGroup'; groupAnchor: string; id: string; displayName: string; reason: 'left the directory scope' | 'renamed' }
  /** A group linked by name (a rename's new group, an adopted one): its anchor is written as its externalId. */
  | { kind: 'anchorGroup'; groupAnchor: string; id: string; displayName: string };

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
  'deactivateUser',
  'deleteUser',
];

export interface Plan {
  operations: Operation[];
  /** Things an admin must know before applying, e.g. that a rename loses product permissions. */
  warnings: string[];
}
