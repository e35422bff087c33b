import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Config } from '../config/load.js';
import { describeLdapError, DirectoryError } from './connection.js';
import { valuesOf, type RawValues } from './entry-values.js';
import type { FromSearchWorker, SearchRequest, SearchWorkerData, ToSearchWorker } from './search-protocol.js';

export interface ThreadEntry {
  dn: string;
  values: RawValues;
}

/**
 * A young generation larger than V8's default: the parse makes short-lived objects by the million, and with the
 * default most of a page outlives a scavenge and is copied to the old generation before it dies (measured on a
 * 150,000-user read: ldapts alone took 5.5 s with the default, 3.5 s with this).
 */
const YOUNG_GENERATION_MB = 96;

/**
 * The directory's paged searches, run in a worker thread (search-worker.ts) on a connection of its own, and handed
 * back page by page. One thread serves the searches of one read, one after another.
 */
export class SearchThread {
  private readonly worker: Worker;
  private readonly exited: Promise<void>;
  private nextId = 1;
  private failure: Error | undefined;
  private listener: ((m: FromSearchWorker) => void) | undefined;
  private wakeOnFailure: (() => void) | undefined;

  constructor(source: Config['source']) {
    const data: SearchWorkerData = { source };
    this.worker = startWorker(data);
    this.exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.on('message', (m: FromSearchWorker) => this.listener?.(m));
    const fail = (e: Error) => {
      this.failure ??= e;
      this.wakeOnFailure?.();
    };
    this.worker.on('error', (e) => fail(new DirectoryError(`the directory search thread failed: ${e.message}`)));
    this.worker.on('exit', (code) => fail(new DirectoryError(`the directory search thread stopped (exit code ${code})`)));
  }

  /**
   * The entries of one paged search, in the server's order, a part of a page at a time (`endsPage` on the last part
   * of each). Errors, referrals and limits end it with a DirectoryError.
   */
  async *search(request: Omit<SearchRequest, 'type' | 'id'>, describe: string): AsyncGenerator<{ entries: ThreadEntry[]; endsPage: boolean }, void, undefined> {
    const id = this.nextId++;
    const inbox: FromSearchWorker[] = [];
    let wake: (() => void) | undefined;
    this.listener = (m) => {
      if (m.id !== id) return;
      inbox.push(m);
      wake?.();
    };
    this.wakeOnFailure = () => wake?.();
    this.post({ type: 'search', id, ...request });
    try {
      for (;;) {
        while (!inbox.length && !this.failure) await new Promise<void>((resolve) => (wake = resolve));
        const m = inbox.shift();
        if (!m) throw this.failure!;
        switch (m.type) {
          case 'end':
            return;
          case 'referral':
            throw new DirectoryError(
              `the search under ${request.baseDn} returned a referral to ${m.uri}; ldap-scim does not follow referrals, so the read would be partial. Narrow the base DN to the part this server holds.`,
            );
          case 'error':
            throw new DirectoryError(m.sentence ? m.message : `${describe} failed: ${describeLdapError({ message: m.message, code: m.code })}`);
          case 'page':
            this.post({ type: 'taken' });
            yield { entries: (JSON.parse(m.json) as WireEntry[]).map((entry) => ({ dn: entry.dn, values: valuesOf(entry) })), endsPage: m.endsPage };
        }
      }
    } finally {
      this.listener = undefined;
      this.wakeOnFailure = undefined;
    }
  }

  /** Unbinds and ends the thread; a thread stuck on the server is ended without waiting. */
  async close(): Promise<void> {
    this.failure ??= new DirectoryError('the directory search thread was closed');
    this.post({ type: 'close' });
    const timer = setTimeout(() => void this.worker.terminate(), 2000);
    await this.exited;
    clearTimeout(timer);
  }

  private post(m: ToSearchWorker): void {
    this.worker.postMessage(m);
  }
}

/** An entry of a page as it crosses: ldapts's, through JSON. */
type WireEntry = { dn: string } & Parameters<typeof valuesOf>[0];

function startWorker(workerData: SearchWorkerData): Worker {
  const here = path.dirname(fileURLToPath(import.meta.url));
  // Run from the TypeScript sources (the tests, under tsx, whose loader a worker does not inherit), the thread is
  // the compiled one: `npm test` builds first.
  const entry = import.meta.url.endsWith('.ts') ? path.join(here, '..', '..', 'dist', 'directory', 'search-worker.js') : path.join(here, 'search-worker.js');
  return new Worker(entry, { workerData, resourceLimits: { maxYoungGenerationSizeMb: YOUNG_GENERATION_MB } });
}
