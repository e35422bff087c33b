import type { DirectoryRead } from '../directory/reader.js';
import type { DesiredState } from '../model.js';
import type { Plan } from '../plan/operations.js';
import type { Removal } from '../plan/removal-window.js';
import type { DirectoryMemory } from '../state/directory-memory.js';
import type { SnapshotData } from '../state/snapshot.js';
import type { CycleReport } from './report.js';

// The small decisions a cycle takes, pure so that each has unit tests: who may be deprovisioned after a delta, what
// a SCIM side with fewer users means, when the census is due and how often, when a resident daemon is settled.

/**
 * Provisioned, still active people that a full read found gone (held ones aside): the only ones a delta may
 * deprovision, so that a failed deactivation is retried. After a delta: the last full read's list, minus those
 * since deprovisioned or read again, plus those whose DN an entry read now holds (see MappedState.replacedUsers).
 */
export function leaversOf(read: DirectoryRead, memory: DirectoryMemory | undefined, desired: DesiredState, snapshot: SnapshotData): string[] {
  const stillActive = (anchor: string) => snapshot.users[anchor]?.attrs.active === true && !desired.users.has(anchor);
  if (read.read.kind === 'delta') return [...new Set([...(memory?.leavers ?? []), ...read.desired.replacedUsers])].filter(stillActive);
  const held = new Set(desired.skipped.flatMap((s) => (s.anchor ? [s.anchor] : [])));
  return Object.keys(snapshot.users).filter((anchor) => stillActive(anchor) && !held.has(anchor));
}

/**
 * The SCIM side holds fewer users than the snapshot links (deactivated ones included: they stay listed). None at
 * all is a directory emptied, reset, or another one behind the same URL: a plan made from the snapshot would say
 * "already matches" while it stays empty, so the cycle stops. Some fewer is accounts deleted in Atlassian
 * Administration: the snapshot is rebuilt by listing, which never deprovisions, and the plan re-creates them.
 */
export function scimSideLost(total: number | undefined, snapshot: SnapshotData, url: string): { stop: string } | { deleted: string } | undefined {
  if (total === undefined) return undefined;
  let linked = 0;
  for (const _ in snapshot.users) linked++; // no array of 150,000 keys for a count
  if (linked === 0 || total >= linked) return undefined;
  if (total === 0) {
    return {
      stop:
        `the SCIM directory at ${url} holds no users, but the state file links ${linked}: it was emptied or reset, or target.url names another directory. ` +
        `If it is meant to be provisioned afresh, run sync --rebuild-state; otherwise check target.url`,
    };
  }
  return { deleted: `the SCIM directory at ${url} holds ${total} users, but the state file links ${linked}: accounts were deleted there` };
}

/** A poll's census is due: the anchor census on its own interval, or at a process's first poll. */
export function censusDue(lastCensusAt: number | undefined, now: number, censusSeconds: number): boolean {
  return lastCensusAt === undefined || now - lastCensusAt >= censusSeconds * 1000;
}

/**
 * The share of a core the census may take. Its cost grows with the directory (ldapts decodes every anchor in scope:
 * measured 0.7-0.8 s of CPU at 150,000 people, with or without the anchor attribute, 1.3 s with the collection
 * after it), so past the size where one a minute fits, it runs less often instead: at a million people about every
 * three minutes. At 1.5 % the 150,000-person benchmark's census slipped to 90 s, and its deletions past 65 s.
 */
export const CENSUS_CPU_SHARE = 0.025;

/** How many seconds apart censuses run: censusSeconds, or longer when the last one cost more than its share. */
export function censusInterval(censusSeconds: number, lastCensusCpuMs: number | undefined): number {
  return Math.max(censusSeconds, Math.ceil((lastCensusCpuMs ?? 0) / 1000 / CENSUS_CPU_SHARE));
}

/**
 * A cycle that ended with nothing left to do: a poll that finds no change then needs no plan. Anything held,
 * failed or waiting for an admin is planned again, at the census's pace or when an approval is written.
 */
export function settledBy(report: CycleReport): boolean {
  return report.result === 'success' && report.failures.length === 0 && !report.guard?.length && report.conflicts.every((c) => c.status === 'approved');
}

/** The removals of the plan that the SCIM side confirmed, as the snapshot now shows them. */
export function confirmedRemovals(plan: Plan, data: SnapshotData): Removal[] {
  return plan.operations.flatMap((op): Removal[] => {
    if (op.kind === 'deactivateUser') return data.users[op.anchor]?.attrs.active === false ? [{ kind: 'user', anchor: op.anchor }] : [];
    if (op.kind === 'deleteUser') return data.users[op.anchor] ? [] : [{ kind: 'user', anchor: op.anchor }];
    if (op.kind === 'deleteGroup' && op.reason !== 'renamed') return data.groups[op.groupAnchor] ? [] : [{ kind: 'group', anchor: op.groupAnchor }];
    return [];
  });
}
