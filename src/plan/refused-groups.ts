import { readFile, rm, writeFile } from 'node:fs/promises';
import type { RefusedCreate } from './group-conflicts.js';

// The group creates the SCIM side refused for a name held outside the SCIM directory, beside the state: the next
// cycles hold them for a while instead of posting the same create (see holdRefusedCreates), and `plan` can show
// the conflict, which only a create attempt reveals (such a group is not listed over SCIM).

export function refusedGroupsFileFor(statePath: string): string {
  return `${statePath}.refused-groups.json`;
}

export async function readRefusedCreates(statePath: string): Promise<RefusedCreate[]> {
  try {
    const parsed = JSON.parse(await readFile(refusedGroupsFileFor(statePath), 'utf8')) as { groups?: RefusedCreate[] };
    return Array.isArray(parsed.groups) ? parsed.groups : [];
  } catch {
    // Missing or damaged: the worst that follows is one more refused create.
    return [];
  }
}

/** Keeps the refusals still pending (the group not made since) and adds this cycle's. */
export async function saveRefusedCreates(statePath: string, kept: readonly RefusedCreate[], added: readonly RefusedCreate[], stillPending: (anchor: string) => boolean): Promise<void> {
  const byAnchor = new Map<string, RefusedCreate>();
  for (const r of [...kept, ...added]) if (stillPending(r.anchor)) byAnchor.set(r.anchor, r);
  const groups = [...byAnchor.values()];
  if (groups.length === 0 && kept.length === 0) return;
  if (groups.length === 0) await rm(refusedGroupsFileFor(statePath), { force: true });
  else await writeFile(refusedGroupsFileFor(statePath), JSON.stringify({ groups }, null, 2) + '\n', { mode: 0o600 });
}
