import { startSandbox, type RunningSandbox } from '../src/sandbox/server.js';

// The sandbox in a process of its own (forked by bench/run.ts), so that its CPU and memory are not counted as the
// connector's. Answers IPC messages: {stats: true} → pacing figures over the requests since the last reset.

export interface PacingStats {
  requests: number;
  writes: number;
  answered429: number;
  /** From the first to the last answer to a write. */
  spanMs: number;
  /** Whole seconds, between the first and last write, in which no write was answered. */
  idleSeconds: number;
  /** Writes per second over the span. */
  rate: number;
}

const rateLimit = Number(process.env.BENCH_SANDBOX_RATE ?? 0);
const sandbox: RunningSandbox = await startSandbox({
  token: process.env.BENCH_SANDBOX_TOKEN ?? 'bench-token',
  ...(rateLimit > 0 ? { rateLimit: { requestsPerSecond: rateLimit } } : {}),
});

const WRITES = new Set(['POST', 'PATCH', 'PUT', 'DELETE']);

/** Pacing is measured over the writes: the reads before them (key check, listing) are separated by the planning. */
function stats(): PacingStats {
  const requests = sandbox.requests.filter((r) => WRITES.has(r.method));
  const answered429 = sandbox.requests.filter((r) => r.status === 429).length;
  if (requests.length === 0) return { requests: sandbox.requests.length, writes: 0, answered429, spanMs: 0, idleSeconds: 0, rate: 0 };
  const first = requests[0]!.at;
  const last = requests[requests.length - 1]!.at;
  const busy = new Set(requests.map((r) => Math.floor((r.at - first) / 1000)));
  const seconds = Math.floor((last - first) / 1000);
  let idle = 0;
  for (let s = 0; s < seconds; s++) if (!busy.has(s)) idle++;
  const spanMs = Math.max(1, last - first);
  return {
    requests: sandbox.requests.length,
    writes: requests.length,
    answered429,
    spanMs,
    idleSeconds: idle,
    rate: ((requests.length - 1) * 1000) / spanMs,
  };
}

process.on('message', (m: { stats?: boolean; reset?: boolean }) => {
  if (m.stats) process.send!({ stats: stats() });
  if (m.reset) {
    sandbox.resetRequests();
    process.send!({ reset: true });
  }
});
process.once('SIGTERM', () => void sandbox.close().then(() => process.exit(0)));
process.send!({ url: sandbox.url });
