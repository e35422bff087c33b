import { createHash } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import type { Plan } from './operations.js';

// A one-time approval for a plan that a safety guard holds: `plan --approve` writes it, the next `sync` (or the
// daemon's next cycle, which has no --force) applies exactly those removals once and deletes it. It approves the
// removals themselves, not "whatever happens next": if the set of people or groups to remove changes, it no longer
// matches and the guard holds again.

export interface Approval {
  digest: string;
  deprovisions: number;
  groupDeletions: number;
  /** Emails moved off target.verifiedDomains (absent in approvals written before that key existed). */
  emailsLeaving?: number;
  createdAt: string;
  expiresAt: string;
}

export const APPROVAL_HOURS = 24;

export function approvalFileFor(statePath: string): string {
  return `${statePath}.approval.json`;
}

/** What an approval covers: the users to deprovision and the groups to delete (renames are not guarded). */
export function removalDigest(plan: Plan): { digest: string; deprovisions: number; groupDeletions: number; emailsLeaving: number } {
  const keys: string[] = [];
  let deprovisions = 0;
  let groupDeletions = 0;
  let emailsLeaving = 0;
  for (const op of plan.operations) {
    if (op.kind === 'deactivateUser' || op.kind === 'deleteUser') {
      deprovisions++;
      keys.push(`${op.kind}:${op.anchor}`);
    } else if ('leavesVerifiedDomains' in op && op.leavesVerifiedDomains) {
      emailsLeaving++;
      keys.push(`emailLeaves:${op.anchor}:${op.leavesVerifiedDomains.to}`);
    } else if (op.kind === 'deleteGroup' && op.reason !== 'renamed') {
      groupDeletions++;
      keys.push(`deleteGroup:${op.groupAnchor}`);
    }
  }
  const digest = createHash('sha256').update(keys.sort().join('\n')).digest('hex');
  return { digest, deprovisions, groupDeletions, emailsLeaving };
}

export async function writeApproval(statePath: string, plan: Plan, now = new Date()): Promise<Approval> {
  const approval: Approval = {
    ...removalDigest(plan),
    createdAt: now.toISOString(),
    expiresAt: new Date(now.getTime() + APPROVAL_HOURS * 3600_000).toISOString(),
  };
  await writeFile(approvalFileFor(statePath), JSON.stringify(approval, null, 2) + '\n', { mode: 0o600 });
  return approval;
}

export type ApprovalCheck = { status: 'none' } | { status: 'matches'; approval: Approval } | { status: 'stale'; why: string };

export async function checkApproval(statePath: string, plan: Plan, now = new Date()): Promise<ApprovalCheck> {
  let approval: Approval;
  try {
    approval = JSON.parse(await readFile(approvalFileFor(statePath), 'utf8')) as Approval;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { status: 'none' };
    return { status: 'stale', why: `the approval file ${approvalFileFor(statePath)} cannot be read (${(e as Error).message})` };
  }
  if (!(new Date(approval.expiresAt).getTime() > now.getTime())) {
    return { status: 'stale', why: `the approval written at ${approval.createdAt} expired at ${approval.expiresAt}` };
  }
  const current = removalDigest(plan);
  if (current.digest !== approval.digest) {
    return {
      status: 'stale',
      why: `the approval written at ${approval.createdAt} was for ${approval.deprovisions} deactivations and ${approval.groupDeletions} group deletions; the plan now holds ${current.deprovisions} and ${current.groupDeletions}, or other people or groups`,
    };
  }
  return { status: 'matches', approval };
}

export async function consumeApproval(statePath: string): Promise<void> {
  await rm(approvalFileFor(statePath), { force: true });
}
