import type { Operation } from './operations.js';

/**
 * Provision on demand (sync --user): of the plan, only what it does for one person. Their own account's create,
 * update, deactivation or reactivation, and their memberships: a change of membership carries them alone, a group
 * that does not exist yet is created with them as its only member (the next full cycle adds the others). Group-level
 * work (deletions, adoptions, anchors, a rename's old group) waits for the next full cycle.
 */
export function onlyForPerson(operations: readonly Operation[], anchor: string): Operation[] {
  return operations.flatMap((op): Operation[] => {
    switch (op.kind) {
      case 'createUser':
      case 'updateUser':
      case 'reactivateUser':
      case 'deactivateUser':
      case 'deleteUser':
        return op.anchor === anchor ? [op] : [];
      case 'createGroup':
      case 'addMembers':
      case 'removeMembers':
        return op.members.includes(anchor) ? [{ ...op, members: [anchor] }] : [];
      case 'deleteGroup':
      case 'anchorGroup':
      case 'adoptGroup':
        return [];
    }
  });
}
