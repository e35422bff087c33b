import { parentPort, workerData } from 'node:worker_threads';
import type { Client } from 'ldapts';
import { DirectoryError, openDirectory } from './connection.js';
import type { SearchWorkerData, SearchRequest, ToSearchWorker, FromSearchWorker } from './search-protocol.js';

// The paged searches of a read, in a thread of their own: ldapts's BER parsing and the garbage it makes are most of
// a large read's CPU, and here they overlap with the mapping on the main thread instead of adding to it, in a heap
// of their own. Entries cross as JSON; nothing is logged from here (the main thread logs, with its secret
// redaction).

const port = parentPort!;
const { source } = workerData as SearchWorkerData;
/** Messages sent and not yet taken by the main thread: about 8 pages of 1,000, so that the thread goes on while the
 * main thread maps a page, and stays within a few megabytes. */
const AHEAD = 80;
/**
 * Entries per message. A page of 1,000 entries is half a megabyte of JSON: a string that size is made in V8's
 * large-object space, which only a full collection frees, so 150 of them at 150,000 users stayed on the main
 * thread's heap as garbage until the end of the read. A tenth of that is collected young (a quiet 150,000-user
 * cycle peaked at 630 MB instead of 850-900 MB, everything else unchanged).
 */
const ENTRIES_PER_MESSAGE = 100;
let unacknowledged = 0;
let credit: (() => void) | undefined;
let client: Client | undefined;
const requests: Exclude<ToSearchWorker, { type: 'taken' }>[] = [];
let wake: (() => void) | undefined;
/** Set by 'close': a search waiting for the main thread to take its pages stops there. */
let closing = false;

port.on('message', (m: ToSearchWorker) => {
  if (m.type === 'taken') {
    unacknowledged--;
    credit?.();
  } else {
    if (m.type === 'close') closing = true;
    requests.push(m);
    wake?.();
    credit?.();
  }
});

const send = (m: FromSearchWorker) => port.postMessage(m);

async function run(request: SearchRequest): Promise<void> {
  client ??= await openDirectory(source, { warn: false });
  const pages = client.searchPaginated(request.baseDn, {
    scope: request.scope,
    filter: request.filter,
    attributes: request.attributes,
    paged: { pageSize: request.pageSize },
    timeLimit: request.timeLimit,
    sizeLimit: 0,
    explicitBufferAttributes: request.binaryAttributes,
  });
  let pending = pages.next();
  for (;;) {
    const page = await pending;
    if (page.done) break;
    // The next page is asked for before this one is converted and sent: the server works while we do.
    pending = pages.next();
    pending.catch(() => undefined);
    const { searchEntries, searchReferences } = page.value;
    if (searchReferences.length) {
      send({ type: 'referral', id: request.id, uri: String(searchReferences[0]) });
      return;
    }
    // As JSON: it is cheaper to make here and to read there than the structured clone of the entries.
    for (let at = 0; at < searchEntries.length || at === 0; at += ENTRIES_PER_MESSAGE) {
      unacknowledged++;
      const endsPage = at + ENTRIES_PER_MESSAGE >= searchEntries.length;
      send({ type: 'page', id: request.id, json: JSON.stringify(searchEntries.slice(at, at + ENTRIES_PER_MESSAGE)), endsPage });
      while (unacknowledged >= AHEAD && !closing) await new Promise<void>((resolve) => (credit = resolve));
      if (closing) return;
    }
  }
  send({ type: 'end', id: request.id });
}

for (;;) {
  if (!requests.length) await new Promise<void>((resolve) => (wake = resolve));
  const request = requests.shift();
  if (!request) continue;
  if (request.type === 'close') break;
  try {
    await run(request);
  } catch (e) {
    const err = e as { message?: string; code?: unknown };
    send({
      type: 'error',
      id: request.id,
      message: err.message ?? String(e),
      ...(typeof err.code === 'number' || typeof err.code === 'string' ? { code: err.code } : {}),
      sentence: e instanceof DirectoryError,
    });
  }
}
await client?.unbind().catch(() => undefined);
port.close();
