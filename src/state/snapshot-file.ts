import { closeSync, fchmodSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { Adapter } from 'lowdb';
import { TextFile } from 'lowdb/node';
import { describeWriteError } from './disk-advice.js';

/** About this much JSON is serialized before it is written out. */
const CHUNK_CHARS = 1 << 20;

/**
 * lowdb's storage for the snapshot: the same compact JSON as JSON.stringify (indented, 150,000 users would take
 * twice the size and twice the time), written a record at a time. lowdb's own DataFile turns 150,000 users into one
 * 75 MB string and then into a 75 MB buffer, and at the end of a first provisioning that pair was the process's
 * peak (about 200 MB over the data itself).
 */
export class SnapshotFile<T extends object> implements Adapter<T> {
  constructor(
    private readonly file: string,
    /** Top-level keys whose values are records by key, written one record at a time. */
    private readonly recordKeys: ReadonlySet<string>,
  ) {}

  /**
   * Why a save failed and what is kept meanwhile. A failed save leaves the old file whole and every journal line
   * where it was (the rotated part stays until a save holds it), so the confirmed calls are replayed by the next
   * run; with no file yet there is nothing to replay them onto, and the next run rebuilds from the SCIM side.
   */
  static writeFailure(file: string, journalFile: string, error: unknown, fileExists: boolean): string {
    const kept = fileExists
      ? `the calls already confirmed are kept in ${journalFile} (and ${journalFile}.saving) and the next run goes on from them`
      : 'there is no state file yet, so the next run lists the SCIM side again and links what this run created';
    return `state.path ${file}: ${describeWriteError(error, file)}; ${kept}`;
  }

  async read(): Promise<T | null> {
    const text = await new TextFile(this.file).read();
    return text === null ? null : (JSON.parse(text) as T);
  }

  /**
   * Synchronous on purpose: the data is serialized as it is at the call, with no answer of a SCIM call in flight
   * changing it halfway (the journal is rotated at that same moment). A temporary file renamed over the old one
   * keeps the old file whole until the new one is.
   */
  async write(data: T): Promise<void> {
    const temp = path.join(path.dirname(this.file), `.${path.basename(this.file)}.tmp`);
    try {
      const fd = openSync(temp, 'w', 0o600);
      try {
        // Names and emails of the whole organization: readable by the service account only, even if an old
        // temporary file was there with another mode.
        fchmodSync(fd, 0o600);
        writeJson(new ChunkedWriter(fd), data, this.recordKeys);
      } finally {
        closeSync(fd);
      }
      renameSync(temp, this.file);
    } catch (e) {
      rmSync(temp, { force: true });
      throw e;
    }
  }
}

function writeJson(out: ChunkedWriter, data: object, recordKeys: ReadonlySet<string>): void {
  let separator = '{';
  for (const [key, value] of Object.entries(data)) {
    if (value === undefined) continue;
    out.add(`${separator}${JSON.stringify(key)}:`);
    separator = ',';
    if (recordKeys.has(key) && value !== null && typeof value === 'object') writeRecords(out, value as Record<string, unknown>);
    else out.add(JSON.stringify(value));
  }
  out.add(separator === '{' ? '{}' : '}');
  out.flush();
}

function writeRecords(out: ChunkedWriter, records: Record<string, unknown>): void {
  let separator = '{';
  for (const key in records) {
    const value = records[key];
    if (value === undefined) continue;
    out.add(`${separator}${JSON.stringify(key)}:${JSON.stringify(value)}`);
    separator = ',';
  }
  out.add(separator === '{' ? '{}' : '}');
}

class ChunkedWriter {
  private pending = '';
  /**
   * One buffer for every chunk: a new one per chunk is memory outside V8's heap that stays until a collection,
   * and the 75 chunks of a 150,000-user snapshot showed up as 70 MB of the process's peak.
   */
  private buffer = Buffer.alloc(0);

  constructor(private readonly fd: number) {}

  add(text: string): void {
    this.pending += text;
    if (this.pending.length >= CHUNK_CHARS) this.flush();
  }

  flush(): void {
    const length = Buffer.byteLength(this.pending);
    if (length > this.buffer.length) this.buffer = Buffer.allocUnsafe(Math.max(length, 3 * CHUNK_CHARS));
    this.buffer.write(this.pending, 0, length);
    this.pending = '';
    for (let written = 0; written < length; ) written += writeSync(this.fd, this.buffer, written, length - written);
  }
}
