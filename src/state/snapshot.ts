import { mkdir, access } from 'node:fs/promises';
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
export class Snapshot {
  private constructor(
    private readonly db: Low<SnapshotData>,
    readonly file: string,
    /** False when there was no file: the SCIM side must be listed and linked before planning. */
    readonly existed: boolean,
  ) {}

  static async open(file: string): Promise<Snapshot> {
    const existed = await access(file).then(
      () => true,
      () => false,
    );
    // Compact JSON: at 150,000 users the indented form is twice the size and twice the write time.
    const db = new Low<SnapshotData>(new DataFile<SnapshotData>(file, { parse: JSON.parse, stringify: (d) => JSON.stringify(d) }), emptySnapshot());
    if (existed) {
      try {
        await db.read();
      } catch (e) {
        throw new Error(`the state file ${file} is not readable JSON (${(e as Error).message}); move it away and run sync --rebuild-state`);
      }
      if (db.data?.version !== 1 || typeof db.data.users !== 'object' || typeof db.data.groups !== 'object') {
        throw new Error(`the state file ${file} is not an ldap-scim snapshot (version 1); move it away and run sync --rebuild-state`);
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
    await mkdir(path.dirname(this.file), { recursive: true });
    this.db.data.updatedAt = new Date().toISOString();
    await this.db.write();
  }
}
