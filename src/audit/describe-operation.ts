import type { Operation, ScimMember } from '../plan/operations.js';
import type { SnapshotData } from '../state/snapshot.js';
import type { AuditEntry, AuditMember } from './audit-entry.js';

type Described = Omit<AuditEntry, 'time' | 'cycle' | 'outcome' | 'status' | 'message'>;

/**
 * What an audit line says of an operation: the person or group by name, DN, anchor and SCIM id, and each change as
 * old -> new. Read from the snapshot after the call, so that a create names the SCIM id it was given.
 */
export function describeOperation(op: Operation, data: SnapshotData): Described {
  const member = (anchor: string): AuditMember => {
    const email = data.users[anchor]?.attrs.email;
    return email ? { anchor, email } : { anchor };
  };
  const scimMember = (m: ScimMember): AuditMember => (m.anchor ? { ...member(m.anchor), scimId: m.id } : { scimId: m.id, ...(m.display ? { email: m.display } : {}) });
  switch (op.kind) {
    case 'createUser': {
      const scimId = data.users[op.anchor]?.id;
      return {
        op: op.kind,
        type: 'user',
        name: op.attrs.userName,
        email: op.attrs.email,
        dn: op.dn,
        anchor: op.anchor,
        ...(scimId ? { scimId } : {}),
        changes: Object.entries(op.attrs).map(([field, to]) => ({ field, to: to as string | boolean })),
      };
    }
    case 'updateUser':
    case 'reactivateUser':
    case 'deactivateUser':
      return {
        op: op.kind,
        type: 'user',
        name: op.userName,
        email: op.attrs.email,
        ...(op.dn ? { dn: op.dn } : {}),
        anchor: op.anchor,
        scimId: op.id,
        changes: [...op.changes, ...(op.setExternalId ? [{ field: 'externalId', to: op.anchor }] : [])],
        ...(op.takeOver ? { note: `took over the account of the deleted entry ${op.takeOver.anchor} (${op.takeOver.userName})` } : {}),
      };
    case 'deleteUser':
      return { op: op.kind, type: 'user', name: op.userName, anchor: op.anchor, scimId: op.id, note: 'SCIM record deleted (target.deprovision: delete)' };
    case 'createGroup': {
      const record = data.groups[op.anchor];
      return {
        op: op.kind,
        type: 'group',
        name: op.displayName,
        dn: op.dn,
        anchor: op.anchor,
        ...(record ? { scimId: record.id } : {}),
        added: (record?.members ?? op.members).map(member),
        ...(op.renamedFrom ? { note: `replaces "${op.renamedFrom.displayName}" (renamed in the directory)` } : {}),
      };
    }
    case 'addMembers':
    case 'removeMembers': {
      const id = data.groups[op.groupAnchor]?.id;
      return {
        op: op.kind,
        type: 'group',
        name: op.displayName,
        anchor: op.groupAnchor,
        ...(id ? { scimId: id } : {}),
        [op.kind === 'addMembers' ? 'added' : 'removed']: op.members.map(member),
      };
    }
    case 'deleteGroup':
      return { op: op.kind, type: 'group', name: op.displayName, anchor: op.groupAnchor, scimId: op.id, note: op.reason };
    case 'anchorGroup':
      return { op: op.kind, type: 'group', name: op.displayName, anchor: op.groupAnchor, scimId: op.id, changes: [{ field: 'externalId', to: op.groupAnchor }] };
    case 'adoptGroup':
      return {
        op: op.kind,
        type: 'group',
        name: op.displayName,
        dn: op.dn,
        anchor: op.anchor,
        scimId: op.id,
        removed: op.remove.map(scimMember),
        // A rename's adopted group gets the anchor only once the old group, which holds it, is deleted.
        ...(op.renamedFrom ? {} : { changes: [{ field: 'externalId', to: op.anchor }] }),
        note: `adopted the SCIM group of the same name made outside ldap-scim; ${op.keep.length} of its members stay`,
      };
  }
}
