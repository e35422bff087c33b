import { createHash } from 'node:crypto';
import type { ScimGroup } from '../scim/resources.js';
import type { SnapshotData } from '../state/snapshot.js';
import type { GroupConflict, Operation, Plan, ScimMember } from './operations.js';
import { chunk } from './plan.js';

/** What an approval of one group covers: that SCIM group, and exactly these additions and removals. */
export function breakdownDigest(scimId: string, add: readonly string[], remove: readonly ScimMember[]): string {
  const keys = [`group:${scimId}`, ...add.map((a) => `+${a}`), ...remove.map((m) => `-${m.id}`)].sort();
  return createHash('sha256').update(keys.join('\n')).digest('hex');
}

/**
 * What overwriting a SCIM group's members with the directory's would do: the members that stay, those removed
 * (accounts this directory did not provision among them), and the directory members it lacks.
 */
export function membershipBreakdown(existing: ScimGroup, wanted: ReadonlySet<string>, anchorOf: (scimId: string) => string | undefined): { keep: string[]; remove: ScimMember[]; add: string[] } {
  const keep: string[] = [];
  const remove: ScimMember[] = [];
  for (const m of existing.members ?? []) {
    const anchor = anchorOf(m.value);
    if (anchor !== undefined && wanted.has(anchor)) keep.push(anchor);
    else remove.push({ id: m.value, ...(anchor !== undefined ? { anchor } : {}), ...(m.display ? { display: m.display } : {}) });
  }
  const kept = new Set(keep);
  return { keep, remove, add: [...wanted].filter((a) => !kept.has(a)) };
}

export type GroupApprovalState = { status: 'none' } | { status: 'matches' } | { status: 'stale'; why: string };

export interface ConflictInputs {
  /** SCIM groups by lower-cased displayName, as found for the names the plan would create. */
  found: ReadonlyMap<string, ScimGroup>;
  snapshot: SnapshotData;
  /** target.adoptExistingGroups: true approves every conflict (ldap-scim's behaviour before reviews). */
  adoptAll: boolean;
  /** `resuming`: an adoption of this group was under way when the last run stopped (see adoptGroup in apply.ts). */
  approval: (displayName: string, scimId: string, digest: string, resuming: boolean) => GroupApprovalState;
  /** An earlier run may have made this group and lost the answer (the journal's announced creates). */
  mayExist: (anchor: string) => boolean;
  membersPerPatch: number;
}

const WAY_OUT = (name: string) =>
  `to overwrite its membership with the directory's: ldap-scim plan --approve-group "${name}"; to keep the SCIM group as it is: rename the group in the directory`;

/**
 * Takes out of the plan every group create whose name a SCIM group made outside ldap-scim holds, and returns those
 * conflicts with their membership breakdown. An approved one becomes an adoptGroup operation, and the members the
 * group lacks are added by the usual addMembers batches. Pure: the SCIM side's groups are looked up by the caller.
 */
export function resolveGroupConflicts(plan: Plan, inputs: ConflictInputs): GroupConflict[] {
  const conflicts: GroupConflict[] = [];
  let anchorOfId: Map<string, string> | undefined;
  const replaced = new Map<string, Operation[]>();
  for (const op of plan.operations) {
    if (op.kind !== 'createGroup') continue;
    const existing = inputs.found.get(op.displayName.toLowerCase());
    if (!existing) continue;
    // Made by an earlier run of ours whose answer was lost: the create's own 409 handling links it.
    const ours = existing.externalId === op.anchor || (op.renamedFrom !== undefined && !existing.externalId && inputs.mayExist(op.anchor));
    if (ours) continue;
    anchorOfId ??= new Map(Object.entries(inputs.snapshot.users).map(([anchor, r]) => [r.id, anchor]));
    const wanted = new Set(op.members);
    for (const other of plan.operations) if (other.kind === 'addMembers' && other.groupAnchor === op.anchor) for (const a of other.members) wanted.add(a);
    const ids = anchorOfId;
    const { keep, remove, add } = membershipBreakdown(existing, wanted, (id) => ids.get(id));
    // An adoption cut short (members partly removed) shows a smaller breakdown than the one approved: it goes on.
    const resuming = inputs.mayExist(op.anchor);
    const approval = inputs.adoptAll ? ({ status: 'matches' } as const) : inputs.approval(op.displayName, existing.id, breakdownDigest(existing.id, add, remove), resuming);
    const approved = approval.status === 'matches';
    conflicts.push({
      anchor: op.anchor,
      dn: op.dn,
      displayName: op.displayName,
      scimId: existing.id,
      add,
      remove,
      keep: keep.length,
      status: approved ? 'approved' : 'awaiting approval',
      wayOut: approved
        ? inputs.adoptAll
          ? 'adopted: target.adoptExistingGroups is true'
          : 'adopted: approved with plan --approve-group'
        : approval.status === 'stale'
          ? `${approval.why}; ${WAY_OUT(op.displayName)}`
          : WAY_OUT(op.displayName),
    });
    const adopt: Operation[] = approved
      ? [
          {
            kind: 'adoptGroup',
            anchor: op.anchor,
            dn: op.dn,
            id: existing.id,
            displayName: op.displayName,
            keep,
            remove,
            ...(op.renamedFrom ? { renamedFrom: op.renamedFrom } : {}),
          },
          ...chunk(add, inputs.membersPerPatch).map((members): Operation => ({ kind: 'addMembers', groupAnchor: op.anchor, displayName: op.displayName, members })),
        ]
      : [];
    replaced.set(op.anchor, adopt);
  }
  replaceGroupCreates(plan, replaced);
  return conflicts;
}

/** Puts `instead` where each group's create was, and drops its other batches; an empty list holds the group. */
function replaceGroupCreates(plan: Plan, replaced: ReadonlyMap<string, Operation[]>): void {
  if (replaced.size === 0) return;
  const operations: Operation[] = [];
  for (const op of plan.operations) {
    const anchor = op.kind === 'createGroup' ? op.anchor : op.kind === 'addMembers' || op.kind === 'deleteGroup' ? op.groupAnchor : undefined;
    const instead = anchor === undefined ? undefined : replaced.get(anchor);
    if (!instead) operations.push(op);
    else if (op.kind === 'createGroup') operations.push(...instead);
    // A held rename keeps its old group: delete it only once the new name is adopted.
    else if (op.kind === 'deleteGroup' && instead.length) operations.push(op);
  }
  plan.operations = operations;
}

/** A create the SCIM side refused because a group outside the SCIM directory holds the name. */
export interface RefusedCreate {
  anchor: string;
  displayName: string;
  refusedAt: string;
}

/** How long an unattended cycle leaves a refused name alone before it asks again. */
export const REFUSED_RETRY_MS = 3600_000;

/**
 * Holds the creates the SCIM side refused lately for a name held outside the SCIM directory: asking again every
 * few minutes would get the same 409 and count as a write in every quiet cycle. `retry` (a sync run by hand, after
 * the admin freed the name) sends them anyway, as does any cycle once REFUSED_RETRY_MS has passed.
 */
export function holdRefusedCreates(plan: Plan, refused: readonly RefusedCreate[], options: { now: Date; retry: boolean }): GroupConflict[] {
  const byAnchor = new Map(refused.map((r) => [r.anchor, r]));
  const conflicts: GroupConflict[] = [];
  const held = new Map<string, Operation[]>();
  for (const op of plan.operations) {
    if (op.kind !== 'createGroup') continue;
    const last = byAnchor.get(op.anchor);
    if (!last || last.displayName.toLowerCase() !== op.displayName.toLowerCase()) continue;
    const due = options.retry || options.now.getTime() - Date.parse(last.refusedAt) >= REFUSED_RETRY_MS;
    if (due) continue;
    held.set(op.anchor, []);
    conflicts.push({
      anchor: op.anchor,
      dn: op.dn,
      displayName: op.displayName,
      add: op.members,
      remove: [],
      keep: 0,
      status: 'outside the SCIM directory',
      wayOut: `${OUTSIDE_WAY_OUT}; its create was refused at ${last.refusedAt}: a scheduled cycle asks again an hour later, ldap-scim sync at once`,
    });
  }
  replaceGroupCreates(plan, held);
  return conflicts;
}

export const OUTSIDE_WAY_OUT =
  'rename the group in the directory, or free the name in Atlassian Administration (rename or delete the group there); it cannot be adopted over SCIM';
