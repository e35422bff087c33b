import { chmod, rm } from 'node:fs/promises';
import { Low } from 'lowdb';
import { DataFile } from 'lowdb/node';
import type { ChangeHistory } from '../directory/change-tracking.js';
import { log } from '../log.js';
import type { RememberedUser } from '../mapping/desired-state.js';
import { StateError } from './snapshot.js';


/**
 * What a delta read starts from: the cursor, and every user in scope as last read (a delta re-reads only the users
 * that changed and takes the others from here). This is what the directory said, not what the SCIM side holds
 * (that is the snapshot), so a change whose SCIM call failed is still wanted, and retried, after a delta read.
 */
export interface DirectoryMemory extends ChangeHistory {
  version: 1;
  lastFullReadAt: string;
  users: Record<string, RememberedUser>;
  /**
   * Provisioned people the last full read found gone. A delta holds everyone it did not read, except these: a
   * deactivation that failed is retried by the next cycle, not only by the next full read.
   */
  leavers?: string[];
  /** Containers in scope (`dn|change stamp`) whose change a full read has already taken in. */
  containers?: string[];
}

/** Beside the snapshot, not inside it: the snapshot is rewritten at every checkpoint, this once per cycle. */
export function directoryMemoryFileFor(statePath: string): string {
  return `${statePath}.directory.json`;
}

function fileOf(statePath: string): Low<DirectoryMemory | null> {
  return new Low<DirectoryMemory | null>(
    new DataFile<DirectoryMemory | null>(directoryMemoryFileFor(statePath), { parse: JSON.parse, stringify: (d) => JSON.stringify(d) }),
    null,
  );
}

/** Undefined when there is none or it cannot be used: the cycle then reads the whole scope, which is always safe. */
export async function loadDirectoryMemory(statePath: string): Promise<DirectoryMemory | undefined> {
  const db = fileOf(statePath);
  try {
    await db.read();
  } catch (e) {
    log.warn(`${directoryMemoryFileFor(statePath)} is not readable (${(e as Error).message}); this cycle reads the whole directory scope`);
    return undefined;
  }
  const data = db.data;
  if (data === null) return undefined;
  if (data?.version !== 1 || typeof data.users !== 'object' || typeof data.cursor?.position !== 'string') {
    log.warn(`${directoryMemoryFileFor(statePath)} is not a directory memory of this version; this cycle reads the whole directory scope`);
    return undefined;
  }
  return data;
}

export async function saveDirectoryMemory(statePath: string, memory: DirectoryMemory): Promise<void> {
  const db = fileOf(statePath);
  db.data = memory;
  try {
    await db.write();
    await chmod(directoryMemoryFileFor(statePath), 0o600);
  } catch (e) {
    throw new StateError(`cannot write ${directoryMemoryFileFor(statePath)} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

/**
 * With delta reads off, cycles change the snapshot without updating the memory; a memory left behind would, once
 * delta reads are on again, bring back people removed in between. So it goes.
 */
export async function forgetDirectoryMemory(statePath: string): Promise<void> {
  await rm(directoryMemoryFileFor(statePath), { force: true });
}
