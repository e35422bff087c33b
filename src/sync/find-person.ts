import type { Config } from '../config/load.js';
import { findUserEntry, type FoundEntry } from '../directory/reader.js';
import type { DesiredState, DesiredUser } from '../model.js';
import type { SnapshotData } from '../state/snapshot.js';

export interface FoundPerson {
  /** The directory entry, when one has this DN or name. */
  entry?: FoundEntry;
  /** What the mapping made of it this cycle. */
  mapped?: DesiredUser;
  /** The anchor: of the entry, or of what was pushed under this userName or email (someone who left). */
  anchor?: string;
}

/**
 * One person as an admin names them (explain, sync --user): a DN, uid, sAMAccountName, userPrincipalName, mail or
 * cn as the directory knows them; or, for someone no longer in the directory, the userName or email pushed.
 */
export async function findPerson(config: Config, id: string, desired: DesiredState, snapshot: SnapshotData): Promise<FoundPerson> {
  const entry = await findUserEntry(config, config.mapping, id);
  const wanted = id.toLowerCase();
  const mapped =
    (entry?.anchor ? desired.users.get(entry.anchor) : undefined) ??
    [...desired.users.values()].find((u) => u.dn.toLowerCase() === wanted || u.attrs.userName === wanted || u.attrs.email === wanted);
  const anchor =
    entry?.anchor ?? mapped?.anchor ?? Object.entries(snapshot.users).find(([, r]) => r.attrs.userName === wanted || r.attrs.email === wanted)?.[0];
  return { ...(entry ? { entry } : {}), ...(mapped ? { mapped } : {}), ...(anchor ? { anchor } : {}) };
}
