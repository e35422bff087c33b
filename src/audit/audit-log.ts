import { closeSync, existsSync, fstatSync, openSync, readdirSync, readSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import { log } from '../log.js';
import type { AuditEntry } from './audit-entry.js';

// The audit trail is a JSON Lines file beside the state, written a whole line per confirmed (or failed) SCIM write
// before the next one starts, the way the journal is: a killed process loses no line it had recorded. Unlike the
// journal it is never replayed or compacted: it is rotated by size and age, and rotated files are kept for
// `keepDays`, so that "why did Jane lose Confluence on Tuesday?" still has an answer next year.

export interface AuditSettings {
  rotateMb: number;
  rotateDays: number;
  keepDays: number;
}


export function auditFileFor(statePath: string): string {
  return `${statePath}.audit.jsonl`;
}

/** Every audit file of this state, oldest first: the rotated ones (named by when they were rotated), then the current one. */
export function auditFiles(statePath: string): string[] {
  const dir = path.dirname(statePath);
  const current = path.basename(auditFileFor(statePath));
  const prefix = `${path.basename(statePath)}.audit.`;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const rotated = names.filter((n) => n.startsWith(prefix) && n.endsWith('.jsonl') && n !== current).sort();
  return [...rotated, ...(names.includes(current) ? [current] : [])].map((n) => path.join(dir, n));
}

function firstLineTime(fd: number): number | undefined {
  const buf = Buffer.alloc(256);
  const n = readSync(fd, buf, 0, buf.length, 0);
  const time = /^\{"time":"([^"]+)"/.exec(buf.subarray(0, n).toString('utf8'))?.[1];
  return time ? Date.parse(time) : undefined;
}

export class AuditLog {
  private fd: number | undefined;
  private size = 0;
  private failed = false;
  /** Entries written by this log, for the cycle report. */
  written = 0;

  private constructor(
    private readonly statePath: string,
    private readonly settings: AuditSettings,
    private readonly cycle: string,
    /** Told once when the trail cannot be written: the SCIM side changed and the admin must know the trail misses it. */
    private readonly onFailure: (message: string) => void,
  ) {}

  static open(statePath: string, settings: AuditSettings, cycle: string, onFailure: (message: string) => void): AuditLog {
    const audit = new AuditLog(statePath, settings, cycle, onFailure);
    audit.guard(() => {
      // Opened for writing at the first write: a quiet cycle leaves no file behind.
      if (existsSync(audit.file)) {
        const fd = openSync(audit.file, 'r');
        const first = firstLineTime(fd);
        const size = fstatSync(fd).size;
        closeSync(fd);
        audit.size = size;
        if (first !== undefined && Date.now() - first >= settings.rotateDays * 86_400_000) audit.rotate();
      }
      audit.prune();
    });
    return audit;
  }

  get file(): string {
    return auditFileFor(this.statePath);
  }

  record(entry: Omit<AuditEntry, 'time' | 'cycle'>): void {
    if (this.failed) return;
    this.guard(() => {
      // time and cycle first: a rotation reads the first line's time without parsing the whole line.
      const line = JSON.stringify({ time: new Date().toISOString(), cycle: this.cycle, ...entry }) + '\n';
      this.fd ??= this.openCurrent();
      this.size += writeSync(this.fd, line);
      this.written++;
      if (this.size >= this.settings.rotateMb * 1024 * 1024) this.rotate();
    });
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private openCurrent(): number {
    // 0o600: the trail names every person and what was done to them.
    this.fd = openSync(this.file, 'a', 0o600);
    this.size = fstatSync(this.fd).size;
    return this.fd;
  }

  private rotate(): void {
    this.close();
    if (this.size === 0) return;
    // Named by the time, and a number that keeps two rotations within one millisecond apart and in order.
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    let n = 0;
    const name = () => `${this.statePath}.audit.${stamp}-${String(n).padStart(3, '0')}.jsonl`;
    while (existsSync(name())) n++;
    renameSync(this.file, name());
    this.size = 0;
  }

  private prune(): void {
    const cutoff = Date.now() - this.settings.keepDays * 86_400_000;
    for (const f of auditFiles(this.statePath)) {
      if (f !== this.file && statSync(f).mtimeMs < cutoff) rmSync(f, { force: true });
    }
  }

  private guard(write: () => void): void {
    try {
      write();
    } catch (e) {
      this.failed = true;
      this.close();
      const message = `the audit trail ${this.file} cannot be written (${(e as Error).message}): the SCIM writes of this cycle go on, but from here on are not in it`;
      log.error(message);
      this.onFailure(message);
    }
  }
}
