import { randomUUID } from "node:crypto";
import { mkdir, open, readFile, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

/** The file's text, or undefined when there is no file yet (a first start). */
export async function readDataFile(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

/** Temp file in the same directory, fsync, then rename: a reader sees the old file or the new one, never half. */
export async function writeFileAtomically(file: string, text: string): Promise<void> {
  const temp = join(dirname(file), `.${basename(file)}.${process.pid}.${randomUUID()}.tmp`);
  try {
    await mkdir(dirname(file), { recursive: true });
    const handle = await open(temp, "w");
    try {
      await handle.writeFile(text, "utf8");
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, file);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

/**
 * Saves after writes, once they pause for `delayMs`; a steady stream of writes still saves every `maxDelayMs`, so a
 * crash during a long sync loses seconds, not the sync. Saves never overlap.
 */
export class DebouncedSaver {
  private timer: NodeJS.Timeout | undefined;
  private dirtySince: number | undefined;
  private saving: Promise<void> = Promise.resolve();

  constructor(
    private readonly file: string,
    private readonly serialize: () => string,
    private readonly onError: (error: unknown) => void,
    private readonly delayMs = 200,
    private readonly maxDelayMs = 2000,
  ) {}

  schedule(): void {
    const now = Date.now();
    this.dirtySince ??= now;
    clearTimeout(this.timer);
    const delay = Math.min(this.delayMs, Math.max(0, this.dirtySince + this.maxDelayMs - now));
    this.timer = setTimeout(() => this.flush().catch(this.onError), delay);
  }

  /** Saves now if anything changed since the last save; resolves when every save so far is on disk. */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.dirtySince !== undefined) {
      this.dirtySince = undefined;
      // Serialise now, synchronously, so the file holds the state as of this moment.
      const text = this.serialize();
      this.saving = this.saving
        .catch(() => undefined)
        .then(() => writeFileAtomically(this.file, text))
        .catch((error: unknown) => {
          this.dirtySince ??= Date.now(); // so that the next flush (at close at the latest) tries again
          throw error;
        });
    }
    return this.saving;
  }
}
