import { readFile, rm, writeFile } from 'node:fs/promises';
import { APPROVAL_HOURS } from './approval.js';
import { breakdownDigest, type GroupApprovalState } from './group-conflicts.js';
import type { GroupConflict } from './operations.js';

// `plan --approve-group NAME` approves overwriting one conflicting SCIM group, the way `plan --approve` approves a
// held removal: for exactly the breakdown the admin was shown (that SCIM group, those additions and removals),
// once, within APPROVAL_HOURS. If someone changes the group on either side in between, it is held again.

export interface GroupApproval {
  displayName: string;
  scimId: string;
  digest: string;
  add: number;
  remove: number;
  createdAt: string;
  expiresAt: string;
}

export function groupApprovalFileFor(statePath: string): string {
  return `${statePath}.group-approvals.json`;
}

export async function readGroupApprovals(statePath: string): Promise<GroupApproval[]> {
  try {
    const parsed = JSON.parse(await readFile(groupApprovalFileFor(statePath), 'utf8')) as { groups?: GroupApproval[] };
    return Array.isArray(parsed.groups) ? parsed.groups : [];
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    // An unreadable file approves nothing: the conflict stays held and says why.
    throw new Error(`the group approval file ${groupApprovalFileFor(statePath)} cannot be read (${(e as Error).message})`);
  }
}

async function writeGroupApprovals(statePath: string, groups: readonly GroupApproval[]): Promise<void> {
  if (groups.length === 0) await rm(groupApprovalFileFor(statePath), { force: true });
  else await writeFile(groupApprovalFileFor(statePath), JSON.stringify({ groups }, null, 2) + '\n', { mode: 0o600 });
}

/** Approves these conflicts (replacing earlier approvals of the same names); the expired ones are dropped. */
export async function approveGroups(statePath: string, conflicts: readonly GroupConflict[], now = new Date()): Promise<GroupApproval[]> {
  const names = new Set(conflicts.map((c) => c.displayName.toLowerCase()));
  const kept = (await readGroupApprovals(statePath)).filter((a) => !names.has(a.displayName.toLowerCase()) && new Date(a.expiresAt) > now);
  const added = conflicts.flatMap((c): GroupApproval[] =>
    c.scimId === undefined
      ? []
      : [
          {
            displayName: c.displayName,
            scimId: c.scimId,
            digest: breakdownDigest(c.scimId, c.add, c.remove),
            add: c.add.length,
            remove: c.remove.length,
            createdAt: now.toISOString(),
            expiresAt: new Date(now.getTime() + APPROVAL_HOURS * 3600_000).toISOString(),
          },
        ],
  );
  await writeGroupApprovals(statePath, [...kept, ...added]);
  return added;
}

/** The approval state of one conflict, for resolveGroupConflicts. */
export function groupApprovalCheck(approvals: readonly GroupApproval[], now = new Date()) {
  return (displayName: string, scimId: string, digest: string, resuming = false): GroupApprovalState => {
    const approval = approvals.find((a) => a.displayName.toLowerCase() === displayName.toLowerCase());
    if (!approval) return { status: 'none' };
    if (!(new Date(approval.expiresAt) > now)) return { status: 'stale', why: `the approval written at ${approval.createdAt} expired at ${approval.expiresAt}` };
    if (approval.scimId !== scimId) return { status: 'stale', why: `the approval written at ${approval.createdAt} was for SCIM group ${approval.scimId}, and the name is now held by ${scimId}` };
    if (approval.digest !== digest && !resuming) {
      return {
        status: 'stale',
        why: `the approval written at ${approval.createdAt} was for ${approval.add} additions and ${approval.remove} removals; the membership changed since`,
      };
    }
    return { status: 'matches' };
  };
}

/**
 * At a create's 409, when the plan's lookup did not find the group (a server whose filter misses it, or a group made
 * since): the approval of that name for that SCIM group. Its breakdown was checked where the plan could see it;
 * the create holds only the first batch of members, so the digest cannot be checked again here.
 */
export function approvedByName(approvals: readonly GroupApproval[], now = new Date()) {
  return (displayName: string, scimId: string): boolean =>
    approvals.some((a) => a.displayName.toLowerCase() === displayName.toLowerCase() && a.scimId === scimId && new Date(a.expiresAt) > now);
}

/** The approvals of the groups adopted are used up. */
export async function consumeGroupApprovals(statePath: string, displayNames: readonly string[]): Promise<void> {
  if (displayNames.length === 0) return;
  const used = new Set(displayNames.map((n) => n.toLowerCase()));
  const approvals = await readGroupApprovals(statePath);
  const left = approvals.filter((a) => !used.has(a.displayName.toLowerCase()));
  if (left.length !== approvals.length) await writeGroupApprovals(statePath, left);
}
