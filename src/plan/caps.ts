import type { DesiredState, DesiredUser } from '../model.js';
import type { SnapshotData } from '../state/snapshot.js';
import { LIMITS_PAGE, RECOMMENDED_LIMITS } from '../scim/atlassian-rules.js';

export interface DirectoryLimits {
  maxUsers: number;
  maxGroupMembers: number;
}

/**
 * Atlassian caps users per directory and members per group. Past a cap the SCIM side starts refusing calls, so the
 * plan stops at the cap instead, the same way every cycle: people already provisioned keep their place, the rest
 * go in by userName. Whoever is left out is reported, never silently dropped. Changes `desired` in place.
 */
export function applyLimits(desired: DesiredState, snapshot: SnapshotData, limits: DirectoryLimits): string[] {
  const warnings: string[] = [];
  if (desired.users.size > limits.maxUsers) {
    const ordered = [...desired.users.values()].sort(byPriority((u) => snapshot.users[u.anchor] !== undefined));
    const left = ordered.slice(limits.maxUsers);
    for (const user of left) {
      desired.users.delete(user.anchor);
      desired.skipped.push({
        dn: user.dn,
        kind: 'user',
        reason: `over limits.maxUsers (${limits.maxUsers} users per Atlassian directory): not provisioned`,
        anchor: user.anchor,
      });
    }
    warnings.push(
      `${ordered.length} users are in scope, over limits.maxUsers ${limits.maxUsers}: ${left.length} are left out (listed as skipped); narrow source.users or split the directory`,
    );
  }
  for (const group of desired.groups.values()) {
    // Members dropped above are no longer users in scope.
    const members = group.members.filter((a) => desired.users.has(a));
    if (members.length <= limits.maxGroupMembers) {
      group.members = members;
      continue;
    }
    const current = new Set(snapshot.groups[group.anchor]?.members ?? []);
    const userName = (a: string) => desired.users.get(a)!.attrs.userName;
    const ordered = members.sort((a, b) => Number(current.has(b)) - Number(current.has(a)) || compare(userName(a), userName(b)));
    group.members = ordered.slice(0, limits.maxGroupMembers);
    warnings.push(
      `group "${group.displayName}" has ${members.length} members, over limits.maxGroupMembers ${limits.maxGroupMembers}: ${members.length - limits.maxGroupMembers} are left out (current members keep their place, then by userName)`,
    );
  }
  return warnings;
}

function byPriority(linked: (u: DesiredUser) => boolean) {
  return (a: DesiredUser, b: DesiredUser) => Number(linked(b)) - Number(linked(a)) || compare(a.attrs.userName, b.attrs.userName);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Within the caps but past what Atlassian recommends staying under: nothing is refused, but the admin should know
 * before the organization grows into the caps.
 */
export function recommendedLimitWarnings(desired: DesiredState): string[] {
  const r = RECOMMENDED_LIMITS;
  const warnings: string[] = [];
  const over = (what: string, n: number, limit: number) => warnings.push(`${what}: ${n.toLocaleString('en')}, over the ${limit.toLocaleString('en')} Atlassian recommends staying under (${LIMITS_PAGE})`);
  if (desired.users.size > r.users) over('users in scope', desired.users.size, r.users);
  if (desired.groups.size > r.groups) over('groups in scope', desired.groups.size, r.groups);
  let memberships = 0;
  for (const group of desired.groups.values()) {
    memberships += group.members.length;
    if (group.members.length > r.groupMembers) over(`members of group "${group.displayName}"`, group.members.length, r.groupMembers);
  }
  if (memberships > r.memberships) over('group memberships', memberships, r.memberships);
  return warnings;
}
