import { closeSync, existsSync, fstatSync, ftruncateSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { describeWriteError } from './disk-advice.js';
import type { GroupRecord, SnapshotData, UserRecord } from './snapshot.js';
import { StateError } from './state-error.js';

// The snapshot file is rewritten whole, so it is written only every few hundred calls, and a large one not even at
// the end of every cycle (Snapshot.saveAtCycleEnd). In between, each confirmed call is appended here as one line,
// and each create is announced before it is sent: after a kill -9 the next run replays the confirmed changes and
// knows which creates may have reached the SCIM side unanswered, and looks those up instead of posting them again.
// Appends go to the kernel before the call returns, so a killed process loses nothing; only a power cut could (and
// then the lookup after a 409 still prevents duplicates).

export type CreateKind = 'user' | 'group';

export type JournalEntry =
  | { u: string; r: UserRecord | null }
  | { g: string; r: GroupRecord | null }
  | { g: string; add: string[] }
  | { g: string; remove: string[] }
  /** A user left SCIM for good (deleteUser): drop it from every group. */
  | { purge: string }
  /** A re-created person's new anchor took over the old one's account: memberships move with it. */
  | { mv: string; to: string }
  | { intent: CreateKind; a: string }
  | { settled: CreateKind; a: string };

export function journalFileFor(statePath: string): string {
  return `${statePath}.journal`;
}

/** Applies one entry to the data; every entry is idempotent, so replaying over a newer snapshot is harmless. */
export function applyEntry(data: SnapshotData, e: JournalEntry, pending: Set<string>): void {
  if ('intent' in e) pending.add(`${e.intent}:${e.a}`);
  else if ('settled' in e) pending.delete(`${e.settled}:${e.a}`);
  else if ('purge' in e) purgeMembers(data, new Set([e.purge]));
  else if ('mv' in e) {
    for (const g of Object.values(data.groups)) {
      if (!g.members.includes(e.mv)) continue;
      g.members = [...new Set(g.members.map((m) => (m === e.mv ? e.to : m)))];
    }
  }
  else if ('u' in e) {
    if (e.r) data.users[e.u] = e.r;
    else delete data.users[e.u];
  } else if ('r' in e) {
    if (e.r) data.groups[e.g] = e.r;
    else delete data.groups[e.g];
  } else {
    const group = data.groups[e.g];
    if (!group) return;
    if ('add' in e) {
      // In place, against a set kept beside the list: a set made from the whole list for each batch of 100 made
      // the 2,900 additions that fill a 290,000-member group quadratic (minutes of CPU at a million people).
      const set = memberSets.get(group.members) ?? new Set(group.members);
      for (const a of e.add) {
        if (set.has(a)) continue;
        set.add(a);
        group.members.push(a);
      }
      memberSets.set(group.members, set);
    } else {
      const gone = new Set(e.remove);
      group.members = group.members.filter((m) => !gone.has(m));
    }
  }
}

/**
 * The members of a group as a set, by the list it mirrors: valid while only additions change that list in place
 * (every other change makes a new list, which finds no set here).
 */
const memberSets = new WeakMap<string[], Set<string>>();

/** Users gone from the SCIM side are members of no group. */
function purgeMembers(data: SnapshotData, gone: ReadonlySet<string>): void {
  for (const g of Object.values(data.groups)) g.members = g.members.filter((m) => !gone.has(m));
}

/**
 * Replays the journal onto the data, the rotated part first (left by a save that did not finish); returns the creates
 * announced but never settled ("user:<anchor>", ...).
 */
export function replayJournal(file: string, data: SnapshotData): { pending: Set<string>; entries: number } {
  const pending = new Set<string>();
  let entries = 0;
  // A purge walks every group's members; the purges of a cycle's deletions come one after another, between lines
  // that touch no group, so they are applied together, before the next line that does (or at the end).
  const purged = new Set<string>();
  const purge = () => {
    if (!purged.size) return;
    purgeMembers(data, purged);
    purged.clear();
  };
  for (const part of [rotatedFileFor(file), file]) {
    if (!existsSync(part)) continue;
    for (const line of readFileSync(part, 'utf8').split('\n')) {
      if (!line) continue;
      let entry: JournalEntry;
      try {
        entry = JSON.parse(line) as JournalEntry;
      } catch {
        break; // the last line of a process killed while writing it; everything before it is whole
      }
      if ('purge' in entry) purged.add(entry.purge);
      else {
        if ('g' in entry || 'mv' in entry) purge();
        applyEntry(data, entry, pending);
      }
      entries++;
    }
  }
  purge();
  return { pending, entries };
}

function rotatedFileFor(file: string): string {
  return `${file}.saving`;
}

export class Journal {
  private fd: number | undefined;

  constructor(
    readonly file: string,
    /** Lines already in the file (replayed when the snapshot was opened). */
    private lines = 0,
  ) {}

  /** Lines a load would replay now. */
  get entries(): number {
    return this.lines;
  }

  /**
   * A line that cannot be written (disk full) is not written at all, and throws a StateError that says what it
   * means: an intent fails before its create is sent; any other entry fails after its SCIM call was confirmed, and
   * the change is then only in memory, in the next save of the snapshot if one succeeds.
   */
  append(entry: JournalEntry): void {
    try {
      this.write(entry);
    } catch (e) {
      const statePath = this.file.replace(/\.journal$/, '');
      const consequence =
        'intent' in entry
          ? `a create of ${entry.intent} ${entry.a} was not sent, since it could not first be recorded in ${this.file}: ${describeWriteError(e, this.file)}; a later cycle sends it`
          : `a change the SCIM side confirmed could not be recorded in ${this.file}: ${describeWriteError(e, this.file)}; unless a later save of the snapshot in this run succeeds, the next run makes that change again, which is safe (a user or group that exists already is found and linked, not created twice)`;
      throw new StateError(`state.path ${statePath}: ${consequence}`);
    }
    this.lines++;
  }

  private write(entry: JournalEntry): void {
    this.fd ??= openSync(this.file, 'a', 0o600);
    writeWhole(this.fd, JSON.stringify(entry) + '\n');
  }

  /**
   * Called right before the snapshot is serialized: what is journaled so far moves aside and is deleted once the
   * snapshot file holds it (dropRotated); calls confirmed while the file is being written go to a fresh journal.
   * The creates still in flight are announced again in the fresh one, since the rotated part will go.
   */
  rotate(stillPending: Iterable<string>): void {
    this.close();
    const rotated = rotatedFileFor(this.file);
    if (existsSync(this.file)) {
      // A previous save failed and left its rotated part: keep both, in order.
      if (existsSync(rotated)) appendWholeFile(rotated, readFileSync(this.file));
      else renameSync(this.file, rotated);
      rmSync(this.file, { force: true });
    }
    this.lines = 0;
    // Written raw: a failure here fails the save, whose own message says what is kept (the rotated part is).
    for (const key of stillPending) {
      const at = key.indexOf(':');
      this.write({ intent: key.slice(0, at) as CreateKind, a: key.slice(at + 1) });
      this.lines++;
    }
  }

  dropRotated(): void {
    rmSync(rotatedFileFor(this.file), { force: true });
  }

  /** The snapshot was rebuilt from the SCIM side: nothing journaled before applies to it. */
  discard(): void {
    this.close();
    this.lines = 0;
    rmSync(this.file, { force: true });
    rmSync(rotatedFileFor(this.file), { force: true });
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

/**
 * Writes all of the text or none of it. A disk that fills up mid-line takes part of it (a short write) and refuses
 * the rest; that part is cut off again: replay of a journal file stops at its first line that does not parse, and a
 * whole line appended after a torn one would be glued to it and lost, with every line after it.
 */
function writeWhole(fd: number, text: string | Buffer): void {
  const data = typeof text === 'string' ? Buffer.from(text) : text;
  let written = 0;
  try {
    while (written < data.length) written += writeSync(fd, data, written, data.length - written);
  } catch (e) {
    if (written > 0) {
      try {
        ftruncateSync(fd, fstatSync(fd).size - written);
      } catch {
        // The torn line stays; replay then stops there, as after a kill in mid-write.
      }
    }
    throw e;
  }
}

function appendWholeFile(file: string, data: Buffer): void {
  const fd = openSync(file, 'a', 0o600);
  try {
    writeWhole(fd, data);
  } finally {
    closeSync(fd);
  }
}
