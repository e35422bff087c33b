import type { DesiredState, UserField } from '../model.js';
import type { ScimClient } from '../scim/client.js';
import type { ScimGroup } from '../scim/resources.js';
import { ScimUserIndex, withActiveToSend } from '../scim/user-index.js';
import { emptySnapshot, type SnapshotData } from '../state/snapshot.js';
import { log } from '../log.js';

export interface RebuildCounts {
  linkedUsers: number;
  linkedGroups: number;
  scimUsersNotInScope: number;
  scimGroupsNotInScope: number;
}

/**
 * A snapshot made from what the SCIM side holds, when the local one is missing: every SCIM user and group is
 * listed and linked to the directory entry it belongs to, so that the next plan PATCHes what differs instead of
 * POSTing duplicates. Users link by externalId, then userName, then email (Atlassian's own join key); groups by
 * externalId, or by the SCIM id the replaced snapshot gave them. A group that only shares a name is not linked:
 * it may be someone else's, and the plan shows it as a conflict for the admin to review (`groupsByName`).
 * SCIM resources that match nothing in scope are left alone, never deprovisioned: without a snapshot we cannot
 * tell them from accounts that were never ours.
 */
export async function rebuildSnapshot(
  client: ScimClient,
  desired: DesiredState,
  managedFields: ReadonlySet<UserField>,
  /**
   * The snapshot being replaced, when it belongs to the same SCIM directory: its records of people and groups no
   * longer in scope are kept where the SCIM side still holds them, so that they are still deprovisioned. Without
   * it, a rebuild forgets them and a leaver stays active for good.
   */
  previous?: SnapshotData,
): Promise<{ data: SnapshotData; counts: RebuildCounts; groupsByName: Map<string, ScimGroup> }> {
  const data = emptySnapshot();
  const index = await ScimUserIndex.list(client, managedFields);
  const claimed = new Set<string>();
  let activeUnknown = 0;
  const anchorById = new Map<string, string>();
  for (const user of desired.users.values()) {
    const match = index.candidates(user.anchor, user.attrs.userName, user.attrs.email).find((c) => c && !claimed.has(c.id));
    if (!match) continue;
    claimed.add(match.id);
    anchorById.set(match.id, user.anchor);
    if (match.activeUnknown) activeUnknown++;
    data.users[user.anchor] = { id: match.id, attrs: withActiveToSend(match, user.attrs.active), ...(match.externalId !== user.anchor ? { unanchored: true as const } : {}) };
  }
  for (const [anchor, record] of Object.entries(previous?.users ?? {})) {
    const listed = index.byId(record.id);
    if (desired.users.has(anchor) || data.users[anchor] || !listed || claimed.has(listed.id)) continue;
    claimed.add(listed.id);
    anchorById.set(listed.id, anchor);
    // Out of scope: deprovisioned, so an unknown `active` is recorded as true and the deactivation sent once more.
    if (listed.activeUnknown) activeUnknown++;
    data.users[anchor] = { id: listed.id, attrs: withActiveToSend(listed, false) };
  }

  const groupsByExternalId = new Map<string, ScimGroup>();
  const groupsById = new Map<string, ScimGroup>();
  const groupsByName = new Map<string, ScimGroup>();
  let scimGroups = 0;
  for await (const page of client.list<ScimGroup>('Groups')) {
    for (const g of page) {
      scimGroups++;
      groupsById.set(g.id, g);
      if (g.externalId) groupsByExternalId.set(g.externalId, g);
      if (g.displayName) groupsByName.set(g.displayName.toLowerCase(), g);
    }
  }
  const claimedGroups = new Set<string>();
  for (const group of desired.groups.values()) {
    const before = previous?.groups[group.anchor];
    const match = [groupsByExternalId.get(group.anchor), before && groupsById.get(before.id)].find((g) => g && !claimedGroups.has(g.id));
    if (!match) continue;
    claimedGroups.add(match.id);
    data.groups[group.anchor] = {
      id: match.id,
      displayName: match.displayName ?? group.displayName,
      members: (match.members ?? []).flatMap((m) => anchorById.get(m.value) ?? []),
      ...(match.externalId !== group.anchor ? { unanchored: true as const } : {}),
    };
  }
  for (const [anchor, record] of Object.entries(previous?.groups ?? {})) {
    const listed = groupsById.get(record.id);
    if (desired.groups.has(anchor) || data.groups[anchor] || !listed || claimedGroups.has(listed.id)) continue;
    claimedGroups.add(listed.id);
    data.groups[anchor] = { id: listed.id, displayName: listed.displayName ?? record.displayName, members: (listed.members ?? []).flatMap((m) => anchorById.get(m.value) ?? []) };
  }
  for (const [name, g] of groupsByName) if (claimedGroups.has(g.id)) groupsByName.delete(name);
  if (activeUnknown) {
    log.warn(`${activeUnknown} of the SCIM users linked showed no active state: each is sent the directory's once (counted as reactivated or deactivated), and recorded as sent`);
  }
  return {
    data,
    groupsByName,
    counts: {
      linkedUsers: claimed.size,
      linkedGroups: claimedGroups.size,
      scimUsersNotInScope: index.size - claimed.size,
      scimGroupsNotInScope: scimGroups - claimedGroups.size,
    },
  };
}
