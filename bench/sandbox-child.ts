import { startSandbox, type RunningSandbox, type SandboxOptions, type SandboxRequestRecord } from '../src/sandbox/server.js';

// The sandbox in a process of its own (forked by bench/run.ts), so that its CPU and memory are not counted as the
// connector's. Answers IPC messages: {stats: true} → pacing figures over the requests since the last reset.
// For the --watch mode: {recordBodies: true} → requests from then on keep their bodies (off by default, so that a
// first provisioning's bodies are never held); {writesSince: ms} → the writes answered at or after that time, with
// bodies; {lookup: {userNames, groupNames}} → the SCIM ids of those users (by userName or email) and groups.

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
// Kept, so that recordBodies can be turned on later (the sandbox reads it at every request).
const options: SandboxOptions = {
  token: process.env.BENCH_SANDBOX_TOKEN ?? 'bench-token',
  ...(rateLimit > 0 ? { rateLimit: { requestsPerSecond: rateLimit } } : {}),
};
const sandbox: RunningSandbox = await startSandbox(options);

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

export interface SandboxLookup {
  users: Record<string, string>;
  groups: Record<string, string>;
}

function lookup(userNames: string[], groupNames: string[]): SandboxLookup {
  const wantedUsers = new Set(userNames.map((u) => u.toLowerCase()));
  const wantedGroups = new Set(groupNames);
  const users: Record<string, string> = {};
  const groups: Record<string, string> = {};
  for (const u of sandbox.users()) {
    const names = [u.userName, ...(u.emails ?? []).map((e) => e.value)].filter((n): n is string => typeof n === 'string').map((n) => n.toLowerCase());
    for (const n of names) if (wantedUsers.has(n) && users[n] === undefined) users[n] = u.id;
  }
  for (const g of sandbox.groups()) if (wantedGroups.has(g.displayName)) groups[g.displayName] = g.id;
  return { users, groups };
}

type Message = { stats?: boolean; reset?: boolean; recordBodies?: boolean; writesSince?: number; lookup?: { userNames: string[]; groupNames: string[] } };

process.on('message', (m: Message) => {
  if (m.stats) process.send!({ stats: stats() });
  if (m.recordBodies !== undefined) {
    options.recordBodies = m.recordBodies;
    process.send!({ recordBodies: m.recordBodies });
  }
  if (m.writesSince !== undefined) {
    const since = m.writesSince;
    const writes: SandboxRequestRecord[] = sandbox.requests.filter((r) => r.at >= since && WRITES.has(r.method));
    process.send!({ writes });
  }
  if (m.lookup) process.send!({ lookup: lookup(m.lookup.userNames, m.lookup.groupNames) });
  if (m.reset) {
    sandbox.resetRequests();
    process.send!({ reset: true });
  }
});
process.once('SIGTERM', () => void sandbox.close().then(() => process.exit(0)));
process.send!({ url: sandbox.url });
