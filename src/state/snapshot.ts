import { constants } from 'node:fs';
import { access, mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { Low } from 'lowdb';
import type { UserAttributes, UserField } from '../model.js';
import { log } from '../log.js';
import { version } from '../version.js';
import { SnapshotFile } from './snapshot-file.js';
import { StateError } from './state-error.js';
import { applyEntry, Journal, journalFileFor, replayJournal, type CreateKind, type JournalEntry } from './journal.js';

// Callers met StateError here before it had a module of its own (journal.ts needs it without importing this one).
export { StateError };

/** What the SCIM side holds for one directory user, as last confirmed by a SCIM answer. */
export interface UserRecord {
  id: string;
  attrs: UserAttributes;
  /**
   * Linked by userName or email, and the SCIM side's externalId is not (yet) the anchor: the next plan writes it,
   * so that a later loss of the snapshot links the account by anchor even after its email changed.
   */
  unanchored?: true;
  /**
   * Values a PATCH sent and the SCIM side answered without taking (its answer showed the old value; null: a removal):
   * `attrs` holds what it kept, and the plan does not send the same value again. Another value is tried once more.
   */
  notApplied?: Partial<Record<UserField, string | boolean | null>>;
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
  /** Linked by name (or created without it during a rename): its externalId is written once no retired group holds it. */
  unanchored?: true;
}

/** The state file's format. Older ones are migrated when opened (see migrate); newer ones are refused. */
export const STATE_VERSION = 2;

/** Which SCIM directory the records belong to: their ids mean nothing on another one. */
export interface StateTarget {
  /** target.url as it was when the snapshot was made. */
  url: string;
}

export interface SnapshotData {
  version: typeof STATE_VERSION;
  /** The ldap-scim version that last wrote the file, to name it when a newer file is refused. */
  writtenBy?: string;
  /** Absent only in a file of version 1 until the first cycle records the target it runs against. */
  target?: StateTarget;
  users: Record<string, UserRecord>;
  groups: Record<string, GroupRecord>;
  updatedAt?: string;
}

/** Up to this many records, the end of every cycle rewrites the snapshot (it takes a few tens of milliseconds). */
const REWRITE_ALWAYS = 10_000;
/** Above it, the snapshot is rewritten once the journal holds a 1/FOLD_FRACTION as many lines as it has records. */
const FOLD_FRACTION = 10;

const RECORD_KEYS = new Set(['users', 'groups']);

export const emptySnapshot = (): SnapshotData => ({ version: STATE_VERSION, users: {}, groups: {} });

/**
 * What names one SCIM directory in target.url: host, port and path. The scheme is left out (a move from http to
 * https behind the same name is the same directory), and so are a trailing slash and the case of the host.
 */
export function targetIdentity(url: string): string {
  try {
    const u = new URL(url);
    return `${u.host.toLowerCase()}${u.pathname.replace(/\/+$/, '')}`;
  } catch {
    return url.replace(/\/+$/, '');
  }
}

/**
 * Brings a parsed state file to this version, or says why it cannot be used. Version 1 (ldap-scim 0.1.0 before
 * December 2026) differs only in recording no target: it is taken as written for the target in use.
 */
export function migrateSnapshot(raw: unknown, file: string): { data: SnapshotData; migratedFrom?: number } {
  const data = raw as Partial<SnapshotData> & { version?: unknown } | null;
  const fresh = `move it away and run sync --rebuild-state to build a new one from the SCIM side`;
  if (!data || typeof data !== 'object' || typeof data.users !== 'object' || typeof data.groups !== 'object' || typeof data.version !== 'number') {
    throw new StateError(`the state file ${file} is not an ldap-scim snapshot: ${fresh}`);
  }
  if (data.version > STATE_VERSION) {
    throw new StateError(
      `the state file ${file} was written by ${data.writtenBy ? `ldap-scim ${data.writtenBy}` : 'a newer ldap-scim'} (state version ${data.version}); ` +
        `this is ldap-scim ${version}, which reads state versions 1 to ${STATE_VERSION}: run that version or a newer one, or ${fresh}`,
    );
  }
  if (data.version === STATE_VERSION) return { data: data as SnapshotData };
  if (data.version === 1) return { data: { ...(data as Omit<SnapshotData, 'version'>), version: STATE_VERSION }, migratedFrom: 1 };
  throw new StateError(`the state file ${file} has state version ${data.version}, which no ldap-scim wrote: ${fresh}`);
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

/**
 * The lowdb snapshot: a cache of what the SCIM side holds, keyed by directory anchor. It is only changed after a
 * SCIM call was confirmed, and written atomically (SnapshotFile writes a temporary file and renames it).
 */
export class Snapshot {
  private readonly journal: Journal;
  /** Set by replace(): journaled changes no longer apply; the journal is dropped at the first write. */
  private journalStale = false;
  private saving: Promise<void> = Promise.resolve();
  /** Whether the state file is there to replay the journal onto. */
  private onDisk: boolean;
  /** Whether the data differs from the file: a quiet cycle then rewrites nothing (150,000 records take a second). */
  private dirty: boolean;

  private constructor(
    private readonly db: Low<SnapshotData>,
    readonly file: string,
    /** False when there was no file: the SCIM side must be listed and linked before planning. */
    readonly existed: boolean,
    /** Creates announced but never confirmed ("user:<anchor>"): they may exist on the SCIM side. */
    private readonly pending: Set<string>,
    /** Journal lines replayed over the file. */
    replayedEntries: number,
    /** An older file: rewritten at the next save, however large, so that it is migrated in place. */
    private mustRewrite: boolean,
  ) {
    this.journal = new Journal(journalFileFor(file), replayedEntries);
    this.onDisk = existed;
    this.dirty = !existed || replayedEntries > 0 || mustRewrite;
  }

  /** Whether a state file is there, as open() will find it (without reading it). */
  static async exists(file: string): Promise<boolean> {
    const found = await stat(file).catch((e: NodeJS.ErrnoException) => e);
    return !(found instanceof Error && found.code === 'ENOENT');
  }

  static async open(file: string): Promise<Snapshot> {
    const found = await stat(file).catch((e: NodeJS.ErrnoException) => e);
    if (found instanceof Error && found.code !== 'ENOENT') {
      throw new StateError((await stateWritableProblem(file)) ?? `state.path ${file}: cannot read it (${found.code})`);
    }
    if (!(found instanceof Error) && !found.isFile()) throw new StateError(`state.path ${file} is not a file`);
    const existed = !(found instanceof Error);
    const db = new Low<SnapshotData>(new SnapshotFile<SnapshotData>(file, RECORD_KEYS), emptySnapshot());
    let pending = new Set<string>();
    let replayedEntries = 0;
    let migratedFrom: number | undefined;
    if (existed) {
      try {
        await db.read();
      } catch (e) {
        throw new StateError(`the state file ${file} is not readable JSON (${(e as Error).message}); move it away and run sync --rebuild-state`);
      }
      const migrated = migrateSnapshot(db.data, file);
      db.data = migrated.data;
      if (migrated.migratedFrom !== undefined) {
        migratedFrom = migrated.migratedFrom;
        log.info(`the state file ${file} is of state version ${migratedFrom}: it is rewritten as version ${STATE_VERSION} at the next save`);
      }
      const replayed = replayJournal(journalFileFor(file), db.data);
      pending = replayed.pending;
      replayedEntries = replayed.entries;
      // A journal is normal beside a large snapshot (see saveAtCycleEnd); creates never answered are the mark of a
      // run that was killed, and worth a line at the default level.
      if (pending.size) log.info(`${pending.size} creates sent by a run that ended before their answer came will be looked up before anything is sent again (${journalFileFor(file)})`);
      if (replayedEntries) log.debug(`replayed ${replayedEntries} journal entries from ${journalFileFor(file)} (changes confirmed since the snapshot file was written)`);
    }
    return new Snapshot(db, file, existed, pending, replayedEntries, migratedFrom !== undefined);
  }

  get data(): SnapshotData {
    return this.db.data;
  }

  /**
   * Why this state cannot be used against `url`: ids recorded for one SCIM directory mean nothing on another, and a
   * plan made against them would report "already matches" while the other stays empty. A file that recorded no
   * target (state version 1) fits any; the cycle then records the one in use (adoptTarget).
   */
  targetProblem(url: string): string | undefined {
    const recorded = this.data.target;
    if (!recorded || targetIdentity(recorded.url) === targetIdentity(url)) return undefined;
    return (
      `the state file ${this.file} belongs to the SCIM directory ${recorded.url}, but target.url is now ${url}: ` +
      `its ids mean nothing there. Give each SCIM directory its own state.path, or, to move this connector to the new directory, run sync --rebuild-state ` +
      `(it lists the new directory and links what it holds; nothing is deprovisioned)`
    );
  }

  /** Records the SCIM directory the records belong to (saved with the next write). */
  adoptTarget(url: string): void {
    if (this.data.target?.url === url) return;
    this.data.target = { url };
    this.dirty = true;
    this.mustRewrite = true;
  }

  /** After a rebuild from the SCIM side: journaled changes and announced creates no longer apply. */
  replace(data: SnapshotData): void {
    this.db.data = data;
    this.pending.clear();
    this.dirty = true;
    // Dropped at the first write, not here: a dry run that rebuilds in memory must leave every file as it was.
    this.journalStale = true;
  }

  private dropStaleJournal(): void {
    if (!this.journalStale) return;
    this.journal.discard();
    this.journalStale = false;
  }

  private record(entry: JournalEntry): void {
    this.dirty = true;
    this.dropStaleJournal();
    this.journal.append(entry);
  }

  // Every change of the data after a confirmed call goes through these, so that it is journaled as it happens.

  setUser(anchor: string, record: UserRecord | undefined): void {
    if (record) this.data.users[anchor] = record;
    else delete this.data.users[anchor];
    this.record({ u: anchor, r: record ?? null });
  }

  setGroup(anchor: string, record: GroupRecord | undefined): void {
    if (record) this.data.groups[anchor] = record;
    else delete this.data.groups[anchor];
    this.record({ g: anchor, r: record ?? null });
  }

  changeGroupMembers(anchor: string, how: 'add' | 'remove', members: string[]): void {
    const entry = how === 'add' ? { g: anchor, add: members } : { g: anchor, remove: members };
    applyEntry(this.data, entry, this.pending);
    this.record(entry);
  }

  /**
   * A person re-created in the directory took over the account of the old entry: the record and every group
   * membership move to the new anchor.
   */
  moveUser(from: string, to: string, record: UserRecord): void {
    delete this.data.users[from];
    this.data.users[to] = record;
    const entry = { mv: from, to };
    applyEntry(this.data, entry, this.pending);
    this.record({ u: from, r: null });
    this.record({ u: to, r: record });
    this.record(entry);
  }

  /** A user removed from the SCIM side altogether is a member of no group any more. */
  purgeMember(anchor: string): void {
    applyEntry(this.data, { purge: anchor }, this.pending);
    this.record({ purge: anchor });
  }

  /** Recorded before a create is sent: if the answer never arrives, the next run looks the resource up first. */
  announceCreate(kind: CreateKind, anchor: string): void {
    this.pending.add(`${kind}:${anchor}`);
    this.record({ intent: kind, a: anchor });
  }

  settleCreate(kind: CreateKind, anchor: string): void {
    if (!this.pending.delete(`${kind}:${anchor}`)) return;
    this.record({ settled: kind, a: anchor });
  }

  /** Whether an earlier create of this resource may have reached the SCIM side without its answer. */
  mayExist(kind: CreateKind, anchor: string): boolean {
    return this.pending.has(`${kind}:${anchor}`);
  }

  /**
   * The save that ends a cycle. Every change the cycle made is in the journal already, one line per call, so the
   * file is rewritten only when that is cheap (a snapshot of up to REWRITE_ALWAYS records) or the journal has
   * grown to a tenth of the records. At 150,000 users, a cycle that changed 1,500 of them then leaves 1,500 lines
   * for the next load to replay, instead of spending a second on rewriting the 148,500 others; a rewrite comes
   * after ten such cycles. Returns whether the file was rewritten.
   */
  async saveAtCycleEnd(): Promise<boolean> {
    if (!this.dirty) return false;
    // Counted only when there is something to save: Object.keys of 150,000 users takes about 50 ms.
    const records = Object.keys(this.data.users).length + Object.keys(this.data.groups).length;
    const journalSuffices = this.onDisk && !this.journalStale && !this.mustRewrite && records > REWRITE_ALWAYS && this.journal.entries * FOLD_FRACTION < records;
    if (journalSuffices) return false;
    await this.save();
    return true;
  }

  /** Journal lines a load would replay now. */
  get journalEntries(): number {
    return this.journal.entries;
  }

  /** Saves run one after another: a rotated journal part is dropped only by the save that serialized it. */
  save(): Promise<void> {
    const next = this.saving.catch(() => undefined).then(() => this.saveNow());
    this.saving = next;
    return next;
  }

  private async saveNow(): Promise<void> {
    if (!this.dirty) return;
    // Cleared before the data is serialized: a change recorded from here on is either in this write or marks the
    // next one as needed.
    this.dirty = false;
    try {
      await mkdir(path.dirname(this.file), { recursive: true });
      this.db.data.updatedAt = new Date().toISOString();
      this.db.data.writtenBy = version;
      this.dropStaleJournal();
      // No await between the two: the snapshot is serialized at the start of write(), exactly what was rotated.
      this.journal.rotate(this.pending);
      await this.db.write();
      this.onDisk = true;
      this.mustRewrite = false;
      this.journal.dropRotated();
    } catch (e) {
      this.dirty = true;
      throw new StateError(SnapshotFile.writeFailure(this.file, journalFileFor(this.file), e, this.onDisk));
    }
  }

  /** Ends the journal's open file; the journal itself stays until the next save folds it in. */
  close(): void {
    this.journal.close();
  }
}
