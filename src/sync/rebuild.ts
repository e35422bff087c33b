import type { DesiredState, UserField } from '../model.js';
import type { ScimClient } from '../scim/client.js';
import { attrsFromScimUser, type ScimGroup, type ScimUser } from '../scim/resources.js';
import { emptySnapshot, type SnapshotData, type UserRecord } from '../state/snapshot.js';

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
 * externalId, then displayName. SCIM resources that match nothing in scope are left alone, never deprovisioned:
 * without a snapshot we cannot tell them from accounts that were never ours.
 */
export async function rebuildSnapshot(
  client: ScimClient,
  desired: DesiredState,
  managedFields: ReadonlySet<UserField>,
): Promise<{ data: SnapshotData; counts: RebuildCounts }> {
  const data = emptySnapshot();
  // Of each SCIM user only its snapshot record is kept, not the whole resource (schemas, meta, name parts): at
  // 150,000 users the whole resources were about 200 MB of a rebuild's peak.
  const byExternalId = new Map<string, UserRecord>();
  const byUserName = new Map<string, UserRecord>();
  const byEmail = new Map<string, UserRecord>();
  let scimUsers = 0;
  for await (const page of client.list<ScimUser>('Users')) {
    for (const u of page) {
      scimUsers++;
      const found: UserRecord = { id: u.id, attrs: attrsFromScimUser(u, managedFields) };
      if (u.externalId) byExternalId.set(u.externalId, found);
      if (u.userName) byUserName.set(u.userName.toLowerCase(), found);
      for (const e of u.emails ?? []) if (e.value) byEmail.set(e.value.toLowerCase(), found);
    }
  }
  const claimed = new Set<string>();
  const anchorById = new Map<string, string>();
  for (const user of desired.users.values()) {
    const candidates = [byExternalId.get(user.anchor), byUserName.get(user.attrs.userName), byEmail.get(user.attrs.email)];
    const match = candidates.find((c) => c && !claimed.has(c.id));
    if (!match) continue;
    claimed.add(match.id);
    anchorById.set(match.id, user.anchor);
    data.users[user.anchor] = match;
  }

  const groupsByExternalId = new Map<string, ScimGroup>();
  const groupsByName = new Map<string, ScimGroup>();
  let scimGroups = 0;
  for await (const page of client.list<ScimGroup>('Groups')) {
    for (const g of page) {
      scimGroups++;
      if (g.externalId) groupsByExternalId.set(g.externalId, g);
      if (g.displayName) groupsByName.set(g.displayName.toLowerCase(), g);
    }
  }
  const claimedGroups = new Set<string>();
  for (const group of desired.groups.values()) {
    const match = [groupsByExternalId.get(group.anchor), groupsByName.get(group.displayName.toLowerCase())].find((g) => g && !claimedGroups.has(g.id));
    if (!match) continue;
    claimedGroups.add(match.id);
    data.groups[group.anchor] = {
      id: match.id,
      displayName: match.displayName ?? group.displayName,
      members: (match.members ?? []).flatMap((m) => anchorById.get(m.value) ?? []),
    };
  }
  return {
    data,
    counts: {
      linkedUsers: claimed.size,
      linkedGroups: claimedGroups.size,
      scimUsersNotInScope: scimUsers - claimed.size,
      scimGroupsNotInScope: scimGroups - claimedGroups.size,
    },
  };
}
