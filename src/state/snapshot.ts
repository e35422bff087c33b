import { constants } from 'node:fs';
import { access, chmod, mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { Low } from 'lowdb';
import { DataFile } from 'lowdb/node';
import type { UserAttributes } from '../model.js';

/** What the SCIM side holds for one directory user, as last confirmed by a SCIM answer. */
export interface UserRecord {
  id: string;
  attrs: UserAttributes;
}

export interface RetiredGroup {
  id: string;
  displayName: string;
}

export interface GroupRecord {
  id: string;
  displayName: string;
  /** User anchors confirmed as members on the SCIM side. */
  members: string[];
  /**
   * SCIM groups this directory group used to be, before a rename (Atlassian cannot rename): deleted once the new
   * group holds the members. Kept here so a crash between the two steps still ends with the old group deleted.
   */
  retired?: RetiredGroup[];
}

export interface SnapshotData {
  version: 1;
  users: Record<string, UserRecord>;
  groups: Record<string, GroupRecord>;
  updatedAt?: string;
}

export const emptySnapshot = (): SnapshotData => ({ version: 1, users: {}, groups: {} });

/**
 * The lowdb snapshot: a cache of what the SCIM side holds, keyed by directory anchor. It is only changed after a
 * SCIM call was confirmed, and written atomically (lowdb writes a temp file and renames it).
 */
/** The state file cannot be read or written: stops the cycle before any SCIM write (exit 1), naming state.path. */
export class StateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StateError';
  }
}

/**
 * Whether the snapshot could be written: its folder exists and is writable, or the nearest existing folder above it
 * is. Found before a cycle writes anything to the SCIM side, not after.
 */
export async function stateWritableProblem(file: string): Promise<string | undefined> {
  let dir = path.dirname(path.resolve(file));
  for (;;) {
    const info = await stat(dir).catch((e: NodeJS.ErrnoException) => e);
    if (!(info instanceof Error)) {
      if (!info.isDirectory()) return `state.path ${file}: ${dir} is not a folder`;
      return access(dir, constants.W_OK).then(
        () => undefined,
        () => `state.path ${file}: the folder ${dir} is not writable by this user`,
      );
    }
    if (info.code !== 'ENOENT') return `state.path ${file}: cannot use ${dir} (${info.code})`;
    const parent = path.dirname(dir);
    if (parent === dir) return `state.path ${file}: no folder of it exists`;
    dir = parent;
  }
}

export class Snapshot {
  private constructor(
    private readonly db: Low<SnapshotData>,
    readonly file: string,
    /** False when there was no file: the SCIM side must be listed and linked before planning. */
    readonly existed: boolean,
  ) {}

  static async open(file: string): Promise<Snapshot> {
    const found = await stat(file).catch((e: NodeJS.ErrnoException) => e);
    if (found instanceof Error && found.code !== 'ENOENT') {
      throw new StateError((await stateWritableProblem(file)) ?? `state.path ${file}: cannot read it (${found.code})`);
    }
    if (!(found instanceof Error) && !found.isFile()) throw new StateError(`state.path ${file} is not a file`);
    const existed = !(found instanceof Error);
    // Compact JSON: at 150,000 users the indented form is twice the size and twice the write time.
    const db = new Low<SnapshotData>(new DataFile<SnapshotData>(file, { parse: JSON.parse, stringify: (d) => JSON.stringify(d) }), emptySnapshot());
    if (existed) {
      try {
        await db.read();
      } catch (e) {
        throw new StateError(`the state file ${file} is not readable JSON (${(e as Error).message}); move it away and run sync --rebuild-state`);
      }
      if (db.data?.version !== 1 || typeof db.data.users !== 'object' || typeof db.data.groups !== 'object') {
        throw new StateError(`the state file ${file} is not an ldap-scim snapshot (version 1); move it away and run sync --rebuild-state`);
      }
    }
    return new Snapshot(db, file, existed);
  }

  get data(): SnapshotData {
    return this.db.data;
  }

  replace(data: SnapshotData): void {
    this.db.data = data;
  }

  async save(): Promise<void> {
    try {
      await mkdir(path.dirname(this.file), { recursive: true });
      this.db.data.updatedAt = new Date().toISOString();
      await this.db.write();
      // Names and emails of the whole organization: readable by the service account only.
      await chmod(this.file, 0o600);
    } catch (e) {
      throw new StateError(`state.path ${this.file}: cannot write it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
  }
}
