import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** How far V8 lets the old generation grow past what the last full collection kept, in percent. */
const GROWTH_PERCENT = 100;
/** The same while SCIM calls go out (see withSendingGrowth). */
const SENDING_GROWTH_PERCENT = 50;

let bounded = false;

/**
 * On a host with a few gigabytes of memory, V8 lets the old generation grow to up to four times the data that
 * survived the last full collection before it collects again: a 150,000-user first provisioning reached 850–900 MB
 * for 150–290 MB of live data. A fixed growth keeps the process near a multiple of its live data, at the cost of
 * more full collections; unlike --max-old-space-size it is no ceiling that a larger directory could run into. Set
 * at run time because NODE_OPTIONS does not accept this V8 flag; a value given on node's own command line wins.
 */
export function boundHeapGrowth(): void {
  if (process.execArgv.some((a) => a.startsWith('--heap-growing-percent'))) return;
  bounded = true;
  setGrowth(GROWTH_PERCENT);
}

/**
 * A full collection now, for a resident daemon after a cycle that planned something. Its live data (the snapshot and
 * the directory as last read, about 300 MB at 150,000 people) stays, and each change it plans makes some 100 MB
 * that lives for the few seconds of the cycle; left to V8 the process grew to 860–1,000 MB between collections. A
 * tighter growth (25 %) held it to about 740 MB, but collected in the middle of cycles, and in that one run the
 * changes were slower on their way (title edits p95 5.8 s against 4.0 s). Collected here, after the calls went
 * out, the cost is off their path.
 */
export function collectAfterCycle(): void {
  gc ??= exposeGc();
  gc();
}

let gc: (() => void) | undefined;

function exposeGc(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/**
 * Every SCIM call leaves some tens of kilobytes that outlive the young generation, so while they go out (the
 * plan's calls, or the listing of a rebuild) the old generation fills with garbage fast, and a tighter growth
 * pays. Measured at 150,000 users: the first provisioning peaked at about 405 MB with 50 and 477 MB with 100, at
 * the same pace, and a rebuild at 446–495 MB against 512 MB; but 50 throughout made a quiet cycle (the directory
 * read and the plan, which build up live data) slower, 10.4–11.0 s against 9.7–10.3 s, and held it no lower.
 */
export async function withSendingGrowth<T>(work: () => Promise<T>): Promise<T> {
  if (!bounded) return work();
  setGrowth(SENDING_GROWTH_PERCENT);
  try {
    return await work();
  } finally {
    setGrowth(GROWTH_PERCENT);
  }
}

function setGrowth(percent: number): void {
  setFlagsFromString(`--heap-growing-percent=${percent}`);
}
