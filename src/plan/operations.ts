import type { UserAttributes, UserField } from '../model.js';

export interface FieldChange {
  field: UserField;
  from?: string | boolean;
  to?: string | boolean;
}

export type Operation =
  | { kind: 'createUser'; anchor: string; dn: string; attrs: UserAttributes }
  | { kind: 'updateUser' | 'reactivateUser' | 'deactivateUser'; anchor: string; dn?: string; id: string; userName: string; changes: FieldChange[]; attrs: UserAttributes }
  | { kind: 'deleteUser'; anchor: string; id: string; userName: string }
  | { kind: 'createGroup'; anchor: string; dn: string; displayName: string; members: string[]; renamedFrom?: { id: string; displayName: string } }
  | { kind: 'addMembers' | 'removeMembers'; groupAnchor: string; displayName: string; members: string[] }
  | { kind: 'deleteGroup'; groupAnchor: string; id: string; displayName: string; reason: 'left the directory scope' | 'renamed' };

export type OperationKind = Operation['kind'];

export const OPERATION_KINDS: readonly OperationKind[] = [
  'createUser',
  'updateUser',
  'reactivateUser',
  'createGroup',
  'addMembers',
  'removeMembers',
  'deleteGroup',
  'deactivateUser',
  'deleteUser',
];

export interface Plan {
  operations: Operation[];
  /** Things an admin must know before applying, e.g. that a rename loses product permissions. */
  warnings: string[];
}
