import { chmod } from 'node:fs/promises';
import { Low } from 'lowdb';
import { DataFile } from 'lowdb/node';
import { StateError } from '../state/state-error.js';
import type { RecentRemovals } from './guard.js';

// The removals the SCIM server confirmed over the last safety.windowMinutes, beside the state: with cycles seconds
// apart, a guard that counts one plan at a time lets 2,000 people go 100 at a time. checkSafety adds these counts
// to the plan's own. Only confirmed removals are recorded: a planned one that failed is retried and counted then.

export interface Removal {
  kind: 'user' | 'group';
  anchor: string;
}

export interface RemovalEntry extends Removal {
  /** When the SCIM server confirmed it (ISO 8601). */
  at: string;
}

interface RemovalFile {
  version: 1;
  removals: RemovalEntry[];
}

export function removalWindowFileFor(statePath: string): string {
  return `${statePath}.removals.json`;
}

const keyOf = (r: Removal) => `${r.kind}\u0000${r.anchor}`;

function isEntry(e: unknown): e is RemovalEntry {
  if (!e || typeof e !== 'object') return false;
  const r = e as Record<string, unknown>;
  return (r.kind === 'user' || r.kind === 'group') && typeof r.anchor === 'string' && typeof r.at === 'string' && !Number.isNaN(Date.parse(r.at));
}

export class RemovalWindow {
  /**
   * One entry per removed user or group (kind + anchor), the latest confirmation only: a removal retried after a
   * crash, or confirmed twice, counts once. Insertion order is time order, a repeat moving to the end.
   */
  private readonly entries = new Map<string, RemovalEntry & { ms: number }>();
  /** The last write failed: the file is behind memory, and the next record() or clear() writes even if unchanged. */
  private unsaved = false;

  private constructor(
    readonly file: string,
    private readonly db: Low<RemovalFile | null>,
  ) {}

  /**
   * Reads the file once; counts() works from memory after that (the daemon consults it every cycle, and holds the
   * state lock for its whole life, so no other process writes the file meanwhile). A missing file is an empty
   * window. A file that cannot be read or is not a removal record is a StateError, not an empty window: taking it
   * for empty would let the very mass removal the window exists to catch through, without a word. The admin who
   * knows nothing is pending deletes it.
   */
  static async open(statePath: string): Promise<RemovalWindow> {
    const file = removalWindowFileFor(statePath);
    const db = new Low<RemovalFile | null>(
      new DataFile<RemovalFile | null>(file, { parse: JSON.parse, stringify: (d) => JSON.stringify(d, null, 2) + '\n' }),
      null,
    );
    const advice = `it holds the removals of the last safety.windowMinutes, which the safety guard counts; delete it if no recent removal is meant to count`;
    try {
      await db.read();
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code) throw new StateError(`cannot read ${file} (${code}): ${advice}`);
      throw new StateError(`${file} is damaged (${(e as Error).message}): ${advice}`);
    }
    const window = new RemovalWindow(file, db);
    const data = db.data as unknown;
    if (data === null) return window;
    const removals = (data as Partial<RemovalFile> | undefined)?.removals;
    if (typeof data !== 'object' || (data as Partial<RemovalFile>).version !== 1 || !Array.isArray(removals)) {
      throw new StateError(`${file} is not a removal record of this version: ${advice}`);
    }
    const bad = removals.findIndex((r) => !isEntry(r));
    if (bad >= 0) throw new StateError(`${file} is damaged (entry ${bad} is not {at, kind, anchor}): ${advice}`);
    for (const r of [...removals].sort((a, b) => Date.parse(a.at) - Date.parse(b.at))) window.put(r);
    return window;
  }

  private put(r: RemovalEntry): void {
    const key = keyOf(r);
    this.entries.delete(key);
    this.entries.set(key, { at: r.at, kind: r.kind, anchor: r.anchor, ms: Date.parse(r.at) });
  }

  /**
   * The distinct users and groups removed in the windowMinutes before now, and when the oldest of them was (the
   * window frees up windowMinutes after that). An entry dated after now (the clock stepped back) still counts.
   * windowMinutes 0 counts nothing.
   */
  counts(now: Date, windowMinutes: number): RecentRemovals & { oldest?: string } {
    const result: RecentRemovals & { oldest?: string } = { users: 0, groups: 0, windowMinutes };
    if (windowMinutes <= 0) return result;
    const cutoff = now.getTime() - windowMinutes * 60_000;
    let oldest = Infinity;
    for (const e of this.entries.values()) {
      if (e.ms <= cutoff) continue;
      if (e.kind === 'user') result.users++;
      else result.groups++;
      if (e.ms < oldest) {
        oldest = e.ms;
        result.oldest = e.at;
      }
    }
    return result;
  }

  /**
   * Adds removals the SCIM server confirmed at `at`, drops the entries older than the window, and writes the file
   * once; nothing is written when there is nothing to add or drop. With windowMinutes 0 nothing is kept. The
   * removals count in memory even when the write fails (a StateError naming the file): they did happen.
   */
  async record(removals: readonly Removal[], at: Date, windowMinutes: number): Promise<void> {
    const cutoff = at.getTime() - windowMinutes * 60_000;
    let changed = false;
    for (const [key, e] of this.entries) {
      if (e.ms <= cutoff) {
        this.entries.delete(key);
        changed = true;
      }
    }
    if (windowMinutes > 0) {
      const iso = at.toISOString();
      for (const r of removals) this.put({ at: iso, kind: r.kind, anchor: r.anchor });
      if (removals.length) changed = true;
    }
    if (changed || this.unsaved) await this.save();
  }

  /**
   * Forgets every recorded removal: for when an admin confirmed a held plan (sync --force, or the `plan --approve`
   * the cycle matched), whose removals are then reviewed. Call it after recording that cycle's removals, or they
   * count against the next cycle.
   */
  async clear(): Promise<void> {
    if (this.entries.size === 0 && !this.db.data?.removals.length && !this.unsaved) return;
    this.entries.clear();
    await this.save();
  }

  private async save(): Promise<void> {
    this.db.data = { version: 1, removals: [...this.entries.values()].map(({ at, kind, anchor }) => ({ at, kind, anchor })) };
    try {
      await this.db.write();
      // lowdb writes a temporary file and renames it over this one, with the process's umask: owner-only after.
      await chmod(this.file, 0o600);
      this.unsaved = false;
    } catch (e) {
      this.unsaved = true;
      throw new StateError(`cannot write ${this.file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
  }
}
