import type { ReadKind } from '../directory/reader.js';
import type { Skip } from '../model.js';
import { OPERATION_KINDS, type GroupConflict, type OperationKind } from '../plan/operations.js';
import type { CallStats } from '../scim/transport.js';
import { conflictDetails } from '../plan/render.js';

export type CycleResult = 'interrupted' | 'failed' | 'success' | 'completed-with-failures' | 'directory-failed' | 'scim-failed' | 'key-rejected' | 'guard-stopped' | 'dry-run';

export interface OperationFailure {
  operation: OperationKind;
  resource: string;
  status?: number;
  detail: string;
}

/** What one cycle did, for the admin: printed at the end, and the JSON form for scripts. */
export interface CycleReport {
  startedAt: string;
  durationMs: number;
  result: CycleResult;
  exitCode: number;
  error?: string;
  directory: {
    /** A delta read asks only for the users changed since `since` and takes the others from the last read. */
    read: ReadKind;
    userEntries: number;
    groupEntries: number;
    usersInScope: number;
    groupsInScope: number;
    membersOutsideScope: number;
  };
  skipped: Skip[];
  /** Values the mapping cleaned, cut or left out in entries that were synced (see src/mapping/sanitize.ts). */
  adjusted: { kind: 'user' | 'group'; dn: string; field: string; message: string }[];
  rebuild?: { linkedUsers: number; linkedGroups: number; scimUsersNotInScope: number; scimGroupsNotInScope: number };
  /** False when the cycle stopped before a plan was made (directory or SCIM failure while reading). */
  planMade: boolean;
  planned: Partial<Record<OperationKind, number>>;
  done: Partial<Record<OperationKind, number>>;
  failures: OperationFailure[];
  warnings: string[];
  /** sync --user: the cycle applied only what it does for this person. */
  onlyUser?: { id: string; anchor: string };
  /** With target.verifiedDomains: people in scope whose email is outside them (Atlassian does not manage them). */
  unmanagedUsers?: number;
  /** Directory groups whose name a SCIM group made outside ldap-scim holds: held for review, or adopted. */
  conflicts: GroupConflict[];
  guard?: string[];
  calls: CallStats;
  statePath: string;
  /** The audit trail this cycle's writes were recorded in. */
  audit?: { file: string; entries: number };
  /**
   * The save that ended the cycle: a large snapshot is rewritten only once its journal has grown to a tenth of it;
   * until then the journal (one line per confirmed call) holds the cycle's changes.
   */
  stateSave?: { ms: number; rewritten: boolean; journalEntries: number };
}

export function newReport(statePath: string): CycleReport {
  return {
    startedAt: new Date().toISOString(),
    durationMs: 0,
    result: 'success',
    exitCode: 0,
    directory: { read: { kind: 'full' }, userEntries: 0, groupEntries: 0, usersInScope: 0, groupsInScope: 0, membersOutsideScope: 0 },
    skipped: [],
    adjusted: [],
    planMade: false,
    planned: {},
    done: {},
    failures: [],
    warnings: [],
    conflicts: [],
    calls: { requests: 0, writes: 0, byMethod: {}, byStatus: {}, byMethodAndStatus: {}, rateLimited: 0, retries: 0 },
    statePath,
  };
}

export function countInto(counts: Partial<Record<OperationKind, number>>, kind: OperationKind): void {
  counts[kind] = (counts[kind] ?? 0) + 1;
}

const LABELS: Record<OperationKind, string> = {
  createUser: 'users created',
  updateUser: 'users updated',
  reactivateUser: 'users reactivated',
  createGroup: 'groups created',
  addMembers: 'member additions (batches)',
  removeMembers: 'member removals (batches)',
  deleteGroup: 'groups deleted',
  anchorGroup: 'groups given their externalId',
  adoptGroup: 'groups adopted (approved)',
  deactivateUser: 'users deactivated',
  deleteUser: 'users deleted',
};

export function renderReport(r: CycleReport): string {
  const lines: string[] = [];
  const dryRun = r.result === 'dry-run';
  lines.push(`ldap-scim cycle: ${r.result} (exit ${r.exitCode}) in ${(r.durationMs / 1000).toFixed(1)} s`);
  if (r.error) lines.push(`  error: ${r.error}`);
  const d = r.directory;
  lines.push(`  directory: ${d.userEntries} user entries, ${d.groupEntries} group entries read; ${d.usersInScope} users and ${d.groupsInScope} groups to sync`);
  if (d.read.poll) lines.push(`  poll: users and groups changed since ${d.read.since}${d.read.census ? ', and the census of every anchor in scope (who left)' : ''}; the others as kept in memory`);
  else if (d.read.kind === 'delta') lines.push(`  delta read: only users changed since ${d.read.since}; the others as last read (people who left the scope are noticed at the next full read)`);
  else if (d.read.reason) lines.push(`  full read: ${d.read.reason}`);
  if (r.rebuild) {
    lines.push(
      `  state ${dryRun ? 'linked from the SCIM side for this plan only (nothing saved)' : 'rebuilt from the SCIM side'}: ${r.rebuild.linkedUsers} users and ${r.rebuild.linkedGroups} groups linked; ` +
        `${r.rebuild.scimUsersNotInScope} SCIM users and ${r.rebuild.scimGroupsNotInScope} groups are not in the directory scope and were left alone`,
    );
  }
  if (r.onlyUser) lines.push(`  provision on demand: only what this cycle does for ${r.onlyUser.id} (${r.onlyUser.anchor}); everything else waits for the next full cycle`);
  const kinds = OPERATION_KINDS.filter((k) => r.planned[k]);
  if (!r.planMade) lines.push('  operations: none planned, the cycle stopped before planning');
  else if (kinds.length === 0) lines.push('  operations: none, the SCIM side already matches the directory');
  for (const k of kinds) {
    const planned = `  ${LABELS[k].padEnd(28)} planned ${String(r.planned[k]).padStart(6)}`;
    lines.push(dryRun ? planned : `${planned}   done ${String(r.done[k] ?? 0).padStart(6)}`);
  }
  lines.push(`  SCIM calls: ${r.calls.requests} (${r.calls.writes} writes), ${r.calls.retries} retries, ${r.calls.rateLimited} answered 429`);
  if (r.unmanagedUsers) lines.push(`  not managed by Atlassian: ${r.unmanagedUsers} people in scope have an email outside target.verifiedDomains; attribute changes will not apply to their accounts`);
  for (const g of r.guard ?? []) lines.push(`  SAFETY GUARD: ${g}`);
  for (const c of r.conflicts) lines.push(`  group conflict: "${c.displayName}" (${c.dn}): ${conflictDetails(c)}`);
  for (const w of r.warnings) lines.push(`  warning: ${w}`);
  if (r.skipped.length) {
    lines.push(`  skipped entries (${r.skipped.length}):`);
    for (const s of r.skipped.slice(0, 50)) lines.push(`    ${s.kind} ${s.dn}: ${s.reason}`);
    if (r.skipped.length > 50) lines.push(`    … ${r.skipped.length - 50} more in the JSON report (--json)`);
  }
  if (r.adjusted.length) {
    lines.push(`  adjusted values (${r.adjusted.length}; the entries were synced):`);
    for (const a of r.adjusted.slice(0, 50)) lines.push(`    ${a.kind} ${a.dn}: ${a.field}: ${a.message}`);
    if (r.adjusted.length > 50) lines.push(`    … ${r.adjusted.length - 50} more in the JSON report (--json)`);
  }
  if (r.failures.length) {
    lines.push(`  failed operations (${r.failures.length}; retried next cycle):`);
    for (const f of r.failures.slice(0, 50)) lines.push(`    ${f.operation} ${f.resource}: ${f.status ?? 'no answer'} ${f.detail}`);
  }
  const kept = r.stateSave && !r.stateSave.rewritten && r.stateSave.journalEntries ? ` (the changes since it was last rewritten are in its journal, ${r.stateSave.journalEntries} lines; it is rewritten once they reach a tenth of its records)` : '';
  lines.push(`  state: ${r.statePath}${kept}`);
  if (r.audit) lines.push(`  audit trail: ${r.audit.entries} writes recorded in ${r.audit.file} (ldap-scim history reads it)`);
  return lines.join('\n');
}

function heldConflicts(r: CycleReport): number {
  return r.conflicts.filter((c) => c.status !== 'approved').length;
}

/** One log line per cycle, for the daemon's log: result, what was done, what failed, calls. */
export function summaryLine(r: CycleReport): string {
  const done = OPERATION_KINDS.filter((k) => r.done[k]).map((k) => `${r.done[k]} ${LABELS[k]}`);
  const planned = OPERATION_KINDS.reduce((n, k) => n + (r.planned[k] ?? 0), 0);
  // A held plan is not "nothing to change": it is changes that were not made.
  const idle = !r.planMade ? 'nothing planned' : planned ? `${planned} operations planned, none done` : 'nothing to change';
  const parts = [
    `cycle ${r.result} (exit ${r.exitCode}) in ${(r.durationMs / 1000).toFixed(1)} s`,
    `${r.directory.read.poll ? `poll${r.directory.read.census ? ' with census' : ''}` : `${r.directory.read.kind} read`} of ${r.directory.userEntries} user entries`,
    done.length ? done.join(', ') : idle,
    ...(r.failures.length ? [`${r.failures.length} failed`] : []),
    ...(r.skipped.length ? [`${r.skipped.length} entries skipped`] : []),
    ...(heldConflicts(r) ? [`${heldConflicts(r)} group conflicts awaiting review (ldap-scim plan)`] : []),
    `${r.calls.requests} SCIM calls (${r.calls.writes} writes, ${r.calls.rateLimited} answered 429)`,
  ];
  return parts.join('; ') + (r.error ? `: ${r.error}` : '');
}
