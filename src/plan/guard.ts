import type { DesiredState } from '../model.js';
import type { SnapshotData } from '../state/snapshot.js';
import type { Plan } from './operations.js';

export interface SafetyLimits {
  maxDeactivations: number;
  /** Also hold when more than this share of the provisioned users would be deprovisioned (past PERCENT_FLOOR people). */
  maxDeactivationPercent?: number;
  maxGroupDeletions: number;
  maxShrinkPercent: number;
}

/**
 * Reasons to stop before the first write. A mass deprovisioning is the one mistake a connector cannot undo
 * quietly, so a suspicious plan is held for an admin to confirm with --force.
 */
export interface GuardStop {
  reason: string;
  /** An empty scope is never a change anyone means: --force does not override it. */
  forceable: boolean;
}

/**
 * The share rule holds nothing that deprovisions this many people or fewer: in an organization of 30, two leavers
 * are already 6%, and a guard that holds every ordinary week is one admins learn to --force without reading.
 */
export const PERCENT_FLOOR = 5;

/**
 * What the SCIM server confirmed removed over the last windowMinutes (see RemovalWindow): with cycles seconds apart,
 * a limit per plan lets 2,000 people go 100 at a time, so these count with the plan's own removals.
 */
export interface RecentRemovals {
  users: number;
  groups: number;
  windowMinutes: number;
}

export function checkSafety(plan: Plan, desired: DesiredState, snapshot: SnapshotData, limits: SafetyLimits, recent?: RecentRemovals): GuardStop[] {
  const stops: GuardStop[] = [];
  const reasons = { push: (reason: string, forceable = true) => stops.push({ reason, forceable }) };
  let provisioned = 0;
  for (const anchor in snapshot.users) if (snapshot.users[anchor]!.attrs.active) provisioned++; // no array of 150,000 for a count
  const inScope = desired.users.size;
  const skippedUsers = desired.skipped.filter((s) => s.kind === 'user').length;
  if (inScope === 0 && skippedUsers > 0) {
    reasons.push(`the mapping skipped every one of the ${skippedUsers} user entries read (see the skipped entries and their reasons): check mapping.user, e.g. the attribute mapped to email`, false);
  } else if (provisioned > 0 && inScope === 0) {
    reasons.push(`the directory returned no user in scope, but ${provisioned} users are provisioned: check source.users (base DN, filter) and the bind account's rights`, false);
  } else if (provisioned > 0) {
    const shrink = ((provisioned - inScope) / provisioned) * 100;
    if (shrink > limits.maxShrinkPercent) {
      reasons.push(`the user scope shrank by ${shrink.toFixed(1)}% (${provisioned} provisioned, ${inScope} in scope), over safety.maxShrinkPercent ${limits.maxShrinkPercent}%`);
    }
  }
  const deprovisions = plan.operations.filter((o) => o.kind === 'deactivateUser' || o.kind === 'deleteUser').length;
  // The window counts only with a removal in this plan: a cycle that removes no one is never held for earlier ones.
  const windowMinutes = recent?.windowMinutes ?? 0;
  const recentUsers = windowMinutes > 0 && deprovisions > 0 ? (recent?.users ?? 0) : 0;
  const users = deprovisions + recentUsers;
  // The people already deactivated are no longer in `provisioned`: the share is of those there before them.
  const base = provisioned + recentUsers;
  const userCount = recentUsers
    ? `${deprovisions} users would be deactivated, and ${recentUsers} were in the last ${windowMinutes} minutes: ${users}`
    : `${deprovisions} users would be deactivated`;
  if (users > limits.maxDeactivations) {
    reasons.push(`${userCount}, over safety.maxDeactivations ${limits.maxDeactivations}`);
  } else if (limits.maxDeactivationPercent !== undefined && base > 0 && users > PERCENT_FLOOR) {
    const share = (users / base) * 100;
    if (share > limits.maxDeactivationPercent) {
      reasons.push(`${userCount}, ${share.toFixed(1)}% of the ${base} provisioned${recentUsers ? ' before them' : ''}, over safety.maxDeactivationPercent ${limits.maxDeactivationPercent}%`);
    }
  }
  // An email moved off the verified domains costs the person every SCIM group and unlinks the account: as much a
  // removal as a deactivation, and as often a mistake (a typo in the mapping, a domain left out of the list).
  const leaving = plan.operations.flatMap((o) => ('leavesVerifiedDomains' in o && o.leavesVerifiedDomains ? [o.leavesVerifiedDomains] : []));
  if (leaving.length) {
    const shown = leaving.slice(0, 5).map((l) => `${l.from} -> ${l.to}`).join(', ');
    reasons.push(
      `${leaving.length} people's email would leave target.verifiedDomains (${shown}${leaving.length > 5 ? `, … ${leaving.length - 5} more` : ''}): ` +
        'Atlassian then removes them from every group provisioned over SCIM and unlinks their accounts',
    );
  }
  const groupDeletions = plan.operations.filter((o) => o.kind === 'deleteGroup' && o.reason !== 'renamed').length;
  const recentGroups = windowMinutes > 0 && groupDeletions > 0 ? (recent?.groups ?? 0) : 0;
  if (groupDeletions + recentGroups > limits.maxGroupDeletions) {
    const groupCount = recentGroups
      ? `${groupDeletions} groups would be deleted, and ${recentGroups} were in the last ${windowMinutes} minutes: ${groupDeletions + recentGroups}`
      : `${groupDeletions} groups would be deleted`;
    reasons.push(`${groupCount}, over safety.maxGroupDeletions ${limits.maxGroupDeletions}`);
  }
  return stops;
}
