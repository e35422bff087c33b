import type { OperationKind } from '../plan/operations.js';

/** A person as the audit trail names them: by email where known, always by anchor. */
export interface AuditMember {
  anchor?: string;
  email?: string;
  /** Members that were never ours (a group adopted from the SCIM side) are known only by their SCIM id. */
  scimId?: string;
}

/**
 * One SCIM write, as it was confirmed or failed: the answer to "who changed what, and when". One JSON line each in
 * the audit file beside the state; `ldap-scim history` reads them back.
 */
export interface AuditEntry {
  time: string;
  /** When the cycle that made the write started: the writes of one cycle share it. */
  cycle: string;
  op: OperationKind;
  type: 'user' | 'group';
  /** userName of a person, displayName of a group. */
  name: string;
  email?: string;
  dn?: string;
  anchor: string;
  scimId?: string;
  /** Field by field, old -> new; a create has no old values. */
  changes?: { field: string; from?: string | boolean; to?: string | boolean }[];
  /** Membership: who was added to or removed from the group. */
  added?: AuditMember[];
  removed?: AuditMember[];
  /** What else an admin needs to read the line: a takeover, a rename, why a group was deleted. */
  note?: string;
  outcome: 'ok' | 'failed';
  /** The HTTP status of a failure, when the server answered. */
  status?: number;
  /** The server's message, or what went wrong, for a failure. */
  message?: string;
}
