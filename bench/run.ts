import { execFile, fork, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs, promisify } from 'node:util';
import { startThrowawaySlapd } from '../src/demo/throwaway-slapd.js';
import type { CycleReport } from '../src/sync/report.js';
import { benchDirectory } from './directory.js';
import type { ProbeResult } from './probe.js';
import type { PacingStats, SandboxLookup } from './sandbox-child.js';
import { CHANGE_KINDS, carries, percentile, planChanges, type ChangeIds, type ChangeKind, type PlannedChange, type SandboxWrite } from './watch-changes.js';

// `npm run bench`: one run that generates a directory, loads it into a throwaway slapd, and measures the connector
// against ldapsearch (the floor) and the issue's targets. Every figure of the connector comes from the real CLI in
// a process of its own; the sandbox runs in another. Loopback only; every loop is bounded.

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));
const cli = path.join(root, 'dist', 'cli.js');
const tsxImport = ['--import', 'tsx'];

const { values: args } = parseArgs({
  options: {
    users: { type: 'string', default: '150000' },
    groups: { type: 'string', default: '2000' },
    'big-group': { type: 'string', default: '35500' },
    rate: { type: 'string', default: '500' },
    concurrency: { type: 'string', default: '8' },
    'page-size': { type: 'string', default: '1000' },
    'node-options': { type: 'string', default: '' },
    delta: { type: 'boolean', default: false },
    out: { type: 'string' },
    help: { type: 'boolean', default: false },
    // --watch: the daemon (`ldap-scim run`) against changes made at random moments.
    watch: { type: 'boolean', default: false },
    'poll-seconds': { type: 'string' },
    'census-seconds': { type: 'string' },
    schedule: { type: 'string' },
    seed: { type: 'string', default: '7' },
    edits: { type: 'string', default: '20' },
    additions: { type: 'string', default: '20' },
    deletions: { type: 'string', default: '10' },
    moves: { type: 'string', default: '5' },
    'idle-seconds': { type: 'string', default: '60' },
    'wait-seconds': { type: 'string', default: '180' },
    // The directory a new or migrated organization has: slapadd stamps every entry within the seconds of the load.
    grown: { type: 'boolean', default: false },
    'settle-seconds': { type: 'string', default: '60' },
    'trickle-batches': { type: 'string', default: '20' },
    'trickle-size': { type: 'string', default: '100' },
    'trickle-gap': { type: 'string', default: '30' },
    'profile-daemon': { type: 'string' },
  },
});
if (args.help) {
  process.stdout.write(
    'npm run bench -- [--users 150000] [--groups 2000] [--big-group 35500] [--rate 500] [--concurrency 8] [--page-size 1000]\n' +
      '                 [--node-options=--max-old-space-size=384] [--delta] [--out bench/results.json]\n' +
      'A quick run: npm run bench -- --users 5000 --groups 100 --big-group 2000\n' +
      '\n' +
      'npm run bench -- --watch [the size, rate and --node-options flags above] [--out bench/watch-results.json]\n' +
      '                 [--poll-seconds N] [--census-seconds N] [--schedule "*/5 * * * * *"] [--seed 7]\n' +
      '                 [--edits 20] [--additions 20] [--deletions 10] [--moves 5] [--idle-seconds 60] [--wait-seconds 180]\n' +
      '                 [--grown: entries stamped over a past year, as a directory that grew; default: as slapadd stamps a bulk load]\n' +
      '                 [--settle-seconds 60] [--trickle-batches 20] [--trickle-size 100] [--trickle-gap 30] (0 batches: no trickle)\n' +
      '                 [--profile-daemon DIR: a V8 CPU profile of the daemon, written to DIR when it stops]\n' +
      'The daemon with delta reads, after a first provisioning: its CPU and the writes in an idle minute, then the\n' +
      'latency of title edits, group additions, deletions and moves out of scope made 1-8 s apart, and its peak RSS.\n',
  );
  process.exit(0);
}
const num = (name: keyof typeof args) => {
  const n = Number(args[name]);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive whole number`);
  return n;
};
const users = num('users');
const groups = num('groups');
const bigGroup = num('big-group');
const rate = num('rate');
const concurrency = num('concurrency');
const pageSize = num('page-size');
const out = args.out ?? path.join(root, 'bench', args.watch ? 'watch-results.json' : 'results.json');

const say = (line: string) => process.stderr.write(`bench: ${line}\n`);
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

interface Figure {
  name: string;
  value: string;
  /** Against the ldapsearch floor, where that is the measure. */
  ratio?: number;
  target?: string;
  met?: boolean;
}

const SUFFIX = 'dc=bench,dc=example';

// --watch
const KIND_LABEL: Record<ChangeKind, string> = { edit: 'title edits', addition: 'membership additions', deletion: 'deletions', move: 'moves out of scope' };
/** p95 targets, ms: an edit or addition is read by the next poll; a removal only by the census. */
// Issue 24's targets on 2 cores: at 150,000 people, and (edits, RSS) at a million.
const KIND_TARGET_MS = (users: number): Record<ChangeKind, number> =>
  users > 500_000 ? { edit: 5_000, addition: 5_000, deletion: 65_000, move: 65_000 } : { edit: 2_500, addition: 2_500, deletion: 65_000, move: 65_000 };
const RSS_TARGET_MB = (users: number) => (users > 500_000 ? 2048 : 512);
const FIRST_CYCLE_TIMEOUT_MS = 600_000;
const DAEMON_STOP_GRACE_MS = 30_000;
const LDAP_TOOL_TIMEOUT_MS = 30_000;

const work = mkdtempSync(path.join(tmpdir(), 'ldap-scim-bench-'));
const children: ChildProcess[] = [];
let slapd: Awaited<ReturnType<typeof startThrowawaySlapd>> | undefined;

try {
  if (args.watch) await watchBench();
  else await fullBench();
} finally {
  for (const child of children) child.kill('SIGTERM');
  await slapd?.stop();
  rmSync(work, { recursive: true, force: true });
}

async function fullBench(): Promise<void> {
  const figures: Figure[] = [];
  const started = performance.now();

  say(`generating ${users} users and ${groups} groups (one of ${bigGroup} members)`);
  const directory = benchDirectory({ suffix: SUFFIX, users, groups, bigGroupMembers: bigGroup });
  const loadStarted = performance.now();
  slapd = await startThrowawaySlapd({ suffix: SUFFIX, ldif: directory.ldif });
  const loadMs = performance.now() - loadStarted;
  figures.push({ name: 'slapadd + slapd start', value: seconds(loadMs) });

  const pw = path.join(work, 'ldap.pw');
  writeFileSync(pw, slapd.rootPassword);
  const userAttributes = ['entryUUID', 'mail', 'givenName', 'sn', 'displayName', 'cn', 'title', 'preferredLanguage', 'departmentNumber', 'o'];
  const floorRuns: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    const ldapsearch = (base: string, filter: string, attributes: string[]) =>
      ldapsearchToNull(['-x', '-H', slapd!.url, '-D', slapd!.rootDn, '-y', pw, '-b', base, '-E', 'pr=1000/noprompt', '-LLL', filter, ...attributes]);
    await ldapsearch(directory.peopleDn, '(objectClass=inetOrgPerson)', userAttributes);
    await ldapsearch(directory.groupsDn, '(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))', ['entryUUID', 'cn', 'member', 'uniqueMember']);
    floorRuns.push(performance.now() - t);
  }
  const floorMs = floorRuns.sort((a, b) => a - b)[1]!;
  figures.push({ name: 'floor: ldapsearch -E pr=1000 (users + groups, median of 3)', value: seconds(floorMs), ratio: 1 });

  const token = 'bench-' + Math.random().toString(36).slice(2);
  const sandbox = await startSandboxChild(token, rate);
  const configFile = path.join(work, 'config.yaml');
  writeFileSync(path.join(work, 'scim.key'), token);
  writeFileSync(
    configFile,
    `source:
  kind: openldap
  url: ${slapd.url}
  bindDn: "${slapd.rootDn}"
  bindPasswordFile: ldap.pw
  users: { baseDn: "${directory.peopleDn}" }
  groups: { baseDn: "${directory.groupsDn}" }
  pageSize: ${pageSize}
  delta: { enabled: ${args.delta} }
target:
  url: ${sandbox.url}
  tokenFile: scim.key
  rateLimit: { requestsPerSecond: ${rate}, concurrency: ${concurrency} }
state: { path: state/snapshot.json }
safety: { maxDeactivations: ${users}, maxDeactivationPercent: 100, maxGroupDeletions: ${groups} }
`,
  );

  say('timing the stages of a cycle (read, mapping, plan, snapshot)');
  const probe = JSON.parse((await run(process.execPath, [...tsxImport, path.join(root, 'bench', 'probe.ts'), configFile], { maxBuffer: 1 << 24 })).stdout) as ProbeResult;
  figures.push({ name: 'directory read (paged, mapped as it arrives)', value: seconds(probe.readMs), ratio: probe.readMs / floorMs, target: '≤ 1.5× floor', met: probe.readMs <= 1.5 * floorMs });
  figures.push({ name: '  of which ldapts alone (users only)', value: seconds(probe.rawReadMs), ratio: probe.rawReadMs / floorMs });
  figures.push({ name: '  mapping alone (users)', value: seconds(probe.mappingMs) });
  const planMs = Math.max(probe.planFirstMs, probe.planQuietMs);
  figures.push({ name: `plan (first ${seconds(probe.planFirstMs)}, quiet ${seconds(probe.planQuietMs)})`, value: seconds(planMs), target: '≤ 1 s', met: planMs <= 1000 });
  // No target here: a cycle rewrites the whole file only once its journal holds a tenth of the records (the row
  // under the 1% cycle is what a cycle's save costs).
  figures.push({ name: `snapshot rewrite, whole (${(probe.snapshotBytes / 1e6).toFixed(1)} MB)`, value: seconds(probe.snapshotSaveMs) });
  figures.push({ name: 'snapshot load', value: seconds(probe.snapshotLoadMs) });

  say(`first provisioning at ${rate} requests/s (this is the long part)`);
  await sandbox.call({ reset: true });
  const first = await syncOnce(configFile);
  const pacing = (await sandbox.call({ stats: true })).stats as PacingStats;
  figures.push({ name: `first provisioning (${first.report.calls.writes} writes, exit ${first.report.exitCode})`, value: seconds(first.ms) });
  figures.push({
    name: `  pacing: writes/s over the writes (idle seconds ${pacing.idleSeconds}, 429s ${pacing.answered429})`,
    value: pacing.rate.toFixed(1),
    ratio: pacing.rate / rate,
    target: `≥ 97% of ${rate}, no idle second, 0 × 429`,
    met: pacing.rate >= 0.97 * rate && pacing.idleSeconds === 0 && pacing.answered429 === 0,
  });
  figures.push({ name: '  peak RSS', value: `${first.peakMb} MB`, target: '≤ 512 MB', met: first.peakMb <= 512 });

  say('a quiet cycle');
  await sandbox.call({ reset: true });
  const quiet = await syncOnce(configFile);
  const quietStats = (await sandbox.call({ stats: true })).stats as PacingStats;
  figures.push({
    name: `quiet cycle, end to end (${quietStats.writes} writes, exit ${quiet.report.exitCode})`,
    value: seconds(quiet.ms),
    ratio: quiet.ms / floorMs,
    target: '≤ 2× floor, 0 writes',
    met: quiet.ms <= 2 * floorMs && quietStats.writes === 0,
  });
  figures.push({ name: '  peak RSS', value: `${quiet.peakMb} MB`, target: '≤ 512 MB', met: quiet.peakMb <= 512 });

  const changed = Math.max(1, Math.floor(users / 100));
  say(`${changed} users changed (1%)`);
  const modify = Array.from({ length: changed }, (_, i) => `dn: ${directory.userDn(1 + i * 97 % users)}\nchangetype: modify\nreplace: title\ntitle: Bench Changed\n`);
  const modifyFile = path.join(work, 'change.ldif');
  writeFileSync(modifyFile, [...new Set(modify)].join('\n'));
  await run('ldapmodify', ['-x', '-H', slapd.url, '-D', slapd.rootDn, '-y', pw, '-f', modifyFile], { maxBuffer: 1 << 26 });
  await sandbox.call({ reset: true });
  const onePercent = await syncOnce(configFile);
  const onePercentStats = (await sandbox.call({ stats: true })).stats as PacingStats;
  figures.push({ name: `cycle after 1% changed (${onePercentStats.writes} writes, exit ${onePercent.report.exitCode})`, value: seconds(onePercent.ms), ratio: onePercent.ms / floorMs });
  const save = onePercent.report.stateSave;
  if (!save) throw new Error('the 1% cycle reported no snapshot save');
  figures.push({
    name: `  snapshot save at its end (${save.rewritten ? 'rewritten' : `journal kept, ${save.journalEntries} lines`})`,
    value: seconds(save.ms),
    target: '≤ 0.5 s',
    met: save.ms <= 500,
  });

  say('the sandbox on its own, unthrottled');
  const capacity = await sandboxCapacity();
  figures.push({ name: 'sandbox capacity: user POSTs/s, 16 at a time, no limit', value: capacity.toFixed(0), ratio: capacity / rate, target: `well above ${rate}`, met: capacity >= 1.5 * rate });

  const result = {
    at: new Date().toISOString(),
    machine: { cpus: cpus().length, node: process.version },
    size: { users, groups, bigGroupMembers: bigGroup, memberValues: directory.memberValues, nestedGroups: directory.nestedGroups, usersInScope: probe.users, groupsInScope: probe.groups },
    settings: { rate, concurrency, pageSize, nodeOptions: args['node-options'], delta: args.delta },
    floorMs,
    probe,
    runs: { first: summary(first), quiet: summary(quiet), onePercent: summary(onePercent) },
    pacing,
    figures,
    totalMs: performance.now() - started,
  };
  writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
  const flags = (args['node-options'] ? `; the connector ran with NODE_OPTIONS=${args['node-options']}` : '') + (args.delta ? '; delta reads on' : '');
  process.stdout.write(table(figures) + `\n${users} users, ${groups} groups, ${cpus().length} CPUs, ${process.version}${flags}; whole run ${seconds(result.totalMs)}; JSON in ${out}\n`);
  const missed = figures.filter((f) => f.met === false).length;
  process.exitCode = missed ? 1 : 0;
}

interface MadeChange extends PlannedChange {
  dn: string;
  /** Date.now() just before ldapmodify / ldapdelete started. */
  at: number;
  /** When the first answered request carrying it was recorded, and which. */
  arrivedAt?: number;
  latencyMs?: number;
  request?: string;
}

/**
 * `--watch`: the daemon (`ldap-scim run`, delta reads on) after a first provisioning: its CPU and the sandbox's
 * writes over an idle minute, then the latency from each change made in slapd to the first SCIM request carrying
 * it, and the daemon's peak RSS over the whole run.
 */
async function watchBench(): Promise<void> {
  const figures: Figure[] = [];
  const started = performance.now();
  const whole = (name: keyof typeof args) => {
    const n = Number(args[name]);
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a whole number`);
    return n;
  };
  const positiveSeconds = (name: 'poll-seconds' | 'census-seconds') => {
    if (args[name] === undefined) return undefined;
    const n = Number(args[name]);
    // The config's schema has the last word (pollSeconds 0 turns polling off).
    if (!(n >= 0)) throw new Error(`--${name} must be a number of seconds`);
    return n;
  };
  const counts: Record<ChangeKind, number> = { edit: whole('edits'), addition: whole('additions'), deletion: whole('deletions'), move: whole('moves') };
  const seed = whole('seed');
  const idleSeconds = num('idle-seconds');
  const settleSeconds = whole('settle-seconds');
  const trickle = { batches: whole('trickle-batches'), size: num('trickle-size'), gapSeconds: whole('trickle-gap') };
  const waitSeconds = num('wait-seconds');
  const pollSeconds = positiveSeconds('poll-seconds');
  const censusSeconds = positiveSeconds('census-seconds');

  say(`generating ${users} users and ${groups} groups (one of ${bigGroup} members)`);
  const directory = benchDirectory({ suffix: SUFFIX, users, groups, bigGroupMembers: bigGroup, ...(args.grown ? { establishedBefore: new Date() } : {}) });
  // Where the moves go: beside ou=people, outside the users' base.
  const formerDn = `ou=former,${SUFFIX}`;
  const loadStarted = performance.now();
  slapd = await startThrowawaySlapd({ suffix: SUFFIX, ldif: `${directory.ldif}\ndn: ${formerDn}\nobjectClass: organizationalUnit\nou: former\n` });
  figures.push({ name: 'slapadd + slapd start', value: seconds(performance.now() - loadStarted) });
  const ldap = slapd;

  const pw = path.join(work, 'ldap.pw');
  writeFileSync(pw, ldap.rootPassword);
  const token = 'bench-' + Math.random().toString(36).slice(2);
  const sandbox = await startSandboxChild(token, rate);
  const configFile = path.join(work, 'config.yaml');
  writeFileSync(path.join(work, 'scim.key'), token);
  // Nothing about polling unless asked: the daemon's defaults are what is measured.
  const delta = ['enabled: true', ...(pollSeconds !== undefined ? [`pollSeconds: ${pollSeconds}`] : []), ...(censusSeconds !== undefined ? [`censusSeconds: ${censusSeconds}`] : [])].join(', ');
  writeFileSync(
    configFile,
    `source:
  kind: openldap
  url: ${ldap.url}
  bindDn: "${ldap.rootDn}"
  bindPasswordFile: ldap.pw
  users: { baseDn: "${directory.peopleDn}" }
  groups: { baseDn: "${directory.groupsDn}" }
  pageSize: ${pageSize}
  delta: { ${delta} }
target:
  url: ${sandbox.url}
  tokenFile: scim.key
  rateLimit: { requestsPerSecond: ${rate}, concurrency: ${concurrency} }
state: { path: state/snapshot.json }
server: { host: 127.0.0.1, port: 0 }
` + (args.schedule ? `schedule: ${JSON.stringify(args.schedule)}\n` : ''),
  );

  say(`first provisioning at ${rate} requests/s (ldap-scim sync)`);
  await sandbox.call({ reset: true });
  const first = await syncOnce(configFile);
  figures.push({ name: `first provisioning, sync (${first.report.calls.writes} writes, exit ${first.report.exitCode})`, value: seconds(first.ms) });
  if (first.report.exitCode !== 0) throw new Error(`the first provisioning exited ${first.report.exitCode}: ${first.report.result}`);

  say('starting the daemon (ldap-scim run) and waiting for its first cycle');
  const logFile = path.join(work, 'daemon.log');
  const logFd = openSync(logFile, 'a');
  const env = { ...process.env, LDAP_SCIM_LOG_LEVEL: 'info', ...(args['node-options'] ? { NODE_OPTIONS: args['node-options'] } : {}) };
  // --cpu-prof may not go in NODE_OPTIONS: given on the command line, the profile is written when the daemon stops.
  const profile = args['profile-daemon'] ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(args['profile-daemon'])}`] : [];
  const daemon = spawn(process.execPath, [...profile, cli, 'run', '--config', configFile], { stdio: ['ignore', logFd, logFd], env });
  closeSync(logFd);
  children.push(daemon);
  const logTail = (lines = 40) => {
    try {
      return readFileSync(logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  };
  let daemonExit: string | undefined;
  const exited = new Promise<void>((resolve) =>
    daemon.once('exit', (code, signal) => {
      daemonExit = signal ? `signal ${signal}` : `code ${code}`;
      resolve();
    }),
  );
  const pid = daemon.pid!;
  let peakKb = 0;
  const rssPoll = setInterval(() => (peakKb = Math.max(peakKb, memoryKb(pid).hwm ?? 0)), 1000);

  try {
    const daemonStarted = performance.now();
    const port = await until('the daemon to listen', 60_000, 200, () => {
      if (daemonExit) throw new Error(`the daemon exited (${daemonExit}) before it listened:\n${logTail()}`);
      return listeningPorts(pid)[0];
    });
    const health = `http://127.0.0.1:${port}/healthz`;
    const cycles = async () => {
      if (daemonExit) throw new Error(`the daemon exited (${daemonExit}):\n${logTail()}`);
      try {
        const res = await fetch(health, { signal: AbortSignal.timeout(2000) });
        return Number(((await res.json()) as { cycles?: unknown }).cycles ?? 0);
      } catch {
        return 0;
      }
    };
    await until('the daemon\'s first cycle', FIRST_CYCLE_TIMEOUT_MS, 1000, async () => ((await cycles()) >= 1 ? true : undefined));
    figures.push({ name: 'daemon start to its first cycle done', value: seconds(performance.now() - daemonStarted) });
    await sleep(2000); // the end of the cycle: its report archived

    const plan = planChanges({
      users,
      plainGroups: directory.plainGroups,
      groupsOf: directory.groupsOf,
      counts,
      seed,
      minGapMs: 1000,
      maxGapMs: 8000,
    });
    const ids = (await sandbox.call({
      lookup: {
        userNames: plan.map((c) => directory.userMail(c.user)),
        groupNames: plan.flatMap((c) => (c.group === undefined ? [] : [directory.groupName(c.group)])),
      },
    })).lookup as SandboxLookup;
    const idsOf = (c: PlannedChange): ChangeIds => {
      const userId = ids.users[directory.userMail(c.user).toLowerCase()];
      const groupId = c.group === undefined ? undefined : ids.groups[directory.groupName(c.group)];
      if (!userId || (c.group !== undefined && !groupId)) throw new Error(`the sandbox holds no ${userId ? `group ${directory.groupName(c.group!)}` : `user ${directory.userMail(c.user)}`}`);
      return { userId, ...(groupId ? { groupId } : {}) };
    };
    const changeIds = plan.map(idsOf);

    const tick = await clockTicks();
    // The first minute after a full read is not the daemon at rest: V8 gives back the read's memory then (full
    // collections of a heap of some hundred megabytes). Measured, and shown apart, before the idle minute.
    const settle0 = cpuTicks(pid);
    const settleStarted = performance.now();
    if (settleSeconds > 0) {
      say(`letting the daemon settle for ${settleSeconds} s after its first cycle`);
      await sleep(settleSeconds * 1000);
    }
    const settleCpu = settleSeconds > 0 ? ((cpuTicks(pid) - settle0) / tick / ((performance.now() - settleStarted) / 1000)) * 100 : undefined;
    say(`an idle ${idleSeconds} s: the daemon's and slapd's CPU, the writes`);
    await sandbox.call({ reset: true });
    await sandbox.call({ recordBodies: true });
    const d0 = cpuTicks(pid);
    const s0 = cpuTicks(ldap.pid);
    const t0 = performance.now();
    await sleep(idleSeconds * 1000);
    const d1 = cpuTicks(pid);
    const s1 = cpuTicks(ldap.pid);
    const idleS = (performance.now() - t0) / 1000;
    const idleStats = (await sandbox.call({ stats: true })).stats as PacingStats;
    const percent = (a: number, b: number) => ((b - a) / tick / idleS) * 100;
    const daemonCpu = percent(d0, d1);
    const slapdCpu = percent(s0, s1);
    if (daemonExit) throw new Error(`the daemon exited (${daemonExit}) during the idle minute:\n${logTail()}`);

    say(`${plan.length} changes, 1-8 s apart (seed ${seed})`);
    await sandbox.call({ reset: true });
    const since = Date.now();
    const made: MadeChange[] = [];
    for (const [i, c] of plan.entries()) {
      await sleep(c.gapMs);
      const dn = directory.userDn(c.user);
      const at = Date.now();
      await applyChange(ldap, pw, c, dn, directory, formerDn, path.join(work, `change-${i}.ldif`));
      made.push({ ...c, dn, at });
    }

    say(`waiting up to ${waitSeconds} s for the changes to reach the sandbox`);
    const deadline = Date.now() + waitSeconds * 1000;
    for (;;) {
      const writes = (await sandbox.call({ writesSince: since })).writes as SandboxWrite[];
      for (const [i, c] of made.entries()) {
        if (c.arrivedAt !== undefined) continue;
        const hit = writes.find((r) => r.at >= c.at && carries(c, changeIds[i]!, r));
        if (hit) Object.assign(c, { arrivedAt: hit.at, latencyMs: hit.at - c.at, request: `${hit.method} ${hit.path}` });
      }
      if (made.every((c) => c.arrivedAt !== undefined) || Date.now() >= deadline || daemonExit) break;
      await sleep(2000);
    }

    // Then a trickle: batches of deletions a few seconds apart, each under safety.maxDeactivations (500 by default)
    // but together far over it. The guard counts them over its window and holds the daemon.
    const trickleResult = await runTrickle(trickle, {
      ldap,
      pw,
      directory,
      avoid: new Set(made.map((c) => c.user)),
      users,
      file: path.join(work, 'trickle.ldif'),
      readyz: `http://127.0.0.1:${port}/readyz`,
      deactivations: async (since: number) =>
        ((await sandbox.call({ writesSince: since })).writes as SandboxWrite[]).filter((w) => w.method === 'PATCH' && /\/Users\//.test(w.path) && JSON.stringify(w.body ?? '').includes('"active"')).length,
    });

    const mem = memoryKb(pid);
    peakKb = Math.max(peakKb, mem.hwm ?? 0);
    const peakMb = Math.round(peakKb / 1024);
    const endMb = mem.rss === undefined ? undefined : Math.round(mem.rss / 1024);

    const latency = Object.fromEntries(
      CHANGE_KINDS.map((kind) => {
        const of = made.filter((c) => c.kind === kind);
        const ms = of.flatMap((c) => (c.latencyMs === undefined ? [] : [c.latencyMs]));
        return [kind, { made: of.length, arrived: ms.length, p50Ms: percentile(ms, 50), p95Ms: percentile(ms, 95), maxMs: percentile(ms, 100) }];
      }),
    ) as Record<ChangeKind, { made: number; arrived: number; p50Ms?: number; p95Ms?: number; maxMs?: number }>;
    for (const kind of CHANGE_KINDS) {
      const l = latency[kind];
      if (l.made === 0) continue;
      const target = KIND_TARGET_MS(users)[kind];
      const s = (ms: number | undefined) => (ms === undefined ? '–' : (ms / 1000).toFixed(1));
      figures.push({
        name: `${KIND_LABEL[kind]}: p50 / p95 / max (${l.arrived} of ${l.made} arrived)`,
        value: `${s(l.p50Ms)} / ${s(l.p95Ms)} / ${s(l.maxMs)} s`,
        target: `p95 ≤ ${target / 1000} s, none missed`,
        met: l.arrived === l.made && l.p95Ms !== undefined && l.p95Ms <= target,
      });
    }
    // Issue 24's targets: 3 % right after start (at 150,000 people), 2 % once settled (3 % at a million).
    const settledTarget = users > 500_000 ? 3 : 2;
    if (settleCpu !== undefined) {
      figures.push({ name: `first ${settleSeconds} s after the first cycle: daemon CPU, % of one core`, value: `${settleCpu.toFixed(2)} %`, target: '≤ 3 %', met: settleCpu <= 3 });
    }
    figures.push({ name: `idle ${idleSeconds} s: daemon CPU, % of one core`, value: `${daemonCpu.toFixed(2)} %`, target: `≤ ${settledTarget} %`, met: daemonCpu <= settledTarget });
    figures.push({ name: `idle ${idleSeconds} s: slapd CPU, % of one core`, value: `${slapdCpu.toFixed(2)} %` });
    figures.push({ name: `idle ${idleSeconds} s: writes to the sandbox (${idleStats.requests} requests)`, value: String(idleStats.writes), target: '0', met: idleStats.writes === 0 });
    if (trickleResult) {
      figures.push({
        name: `trickle: ${trickle.batches} × ${trickle.size} deleted ${trickle.gapSeconds} s apart: deactivated, then held`,
        value: `${trickleResult.deactivated} of ${trickle.batches * trickle.size}`,
        target: 'held at safety.maxDeactivations (500)',
        met: trickleResult.held && trickleResult.deactivated <= 500,
      });
    }
    figures.push({ name: 'daemon peak RSS (VmHWM), whole run', value: `${peakMb} MB`, target: `≤ ${RSS_TARGET_MB(users)} MB`, met: peakMb > 0 && peakMb <= RSS_TARGET_MB(users) });
    figures.push({ name: '  RSS at the end', value: endMb === undefined ? '–' : `${endMb} MB` });

    const missed = made.filter((c) => c.arrivedAt === undefined);
    const result = {
      at: new Date().toISOString(),
      machine: { cpus: cpus().length, node: process.version },
      size: { users, groups, bigGroupMembers: bigGroup, memberValues: directory.memberValues, nestedGroups: directory.nestedGroups },
      settings: { rate, concurrency, pageSize, nodeOptions: args['node-options'], pollSeconds, censusSeconds, schedule: args.schedule, seed, counts, idleSeconds, waitSeconds },
      firstProvisioning: summary(first),
      trickle: trickleResult,
      settle: { seconds: settleSeconds, daemonCpuPercent: settleCpu },
      idle: { seconds: idleS, daemonCpuPercent: daemonCpu, slapdCpuPercent: slapdCpu, clockTicks: tick, requests: idleStats.requests, writes: idleStats.writes },
      latency,
      changes: made.map((c) => ({ kind: c.kind, dn: c.dn, group: c.group === undefined ? undefined : directory.groupDn(c.group), title: c.title, at: c.at, arrivedAt: c.arrivedAt, latencyMs: c.latencyMs, request: c.request })),
      missed: missed.map((c) => ({ kind: c.kind, dn: c.dn })),
      rss: { peakMb, endMb },
      daemonExit,
      figures,
      daemonLogTail: logTail(60).split('\n'),
      totalMs: performance.now() - started,
    };
    writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
    const settings = [
      pollSeconds !== undefined ? `pollSeconds ${pollSeconds}` : 'pollSeconds default',
      censusSeconds !== undefined ? `censusSeconds ${censusSeconds}` : 'censusSeconds default',
      args.schedule ? `schedule "${args.schedule}"` : 'schedule default',
      ...(args['node-options'] ? [`NODE_OPTIONS=${args['node-options']}`] : []),
    ].join(', ');
    const missedLines = missed.map((c) => `  missed: ${c.kind} ${c.dn}${c.group === undefined ? '' : ` → ${directory.groupName(c.group)}`}\n`).join('');
    process.stdout.write(
      table(figures) +
        `\n${missedLines}${users} users, ${groups} groups, ${cpus().length} CPUs, ${process.version}; daemon with delta reads (${settings}); whole run ${seconds(result.totalMs)}; JSON in ${out}\n`,
    );
    if (daemonExit) say(`the daemon exited (${daemonExit}) during the run; its log ends:\n${logTail()}`);
    process.exitCode = figures.some((f) => f.met === false) || daemonExit ? 1 : 0;
  } catch (e) {
    say(`the daemon's log ends:\n${logTail()}`);
    throw e;
  } finally {
    clearInterval(rssPoll);
    await stopDaemon(daemon, exited);
  }
}

/**
 * Deletes `batches` × `size` users (from the end of the range, none the latency phase touched), `gapSeconds`
 * apart, then waits for the daemon to settle: how many deactivations the sandbox saw, and whether /readyz says a
 * guard holds the rest.
 */
async function runTrickle(
  trickle: { batches: number; size: number; gapSeconds: number },
  o: {
    ldap: { url: string; rootDn: string };
    pw: string;
    directory: ReturnType<typeof benchDirectory>;
    avoid: Set<number>;
    users: number;
    file: string;
    readyz: string;
    deactivations: (since: number) => Promise<number>;
  },
): Promise<{ deactivated: number; held: boolean; reason?: string } | undefined> {
  if (trickle.batches === 0) return undefined;
  say(`a trickle: ${trickle.batches} batches of ${trickle.size} deletions, ${trickle.gapSeconds} s apart`);
  const since = Date.now();
  let n = o.users;
  for (let b = 0; b < trickle.batches; b++) {
    const dns: string[] = [];
    while (dns.length < trickle.size && n > 1) {
      if (!o.avoid.has(n)) dns.push(o.directory.userDn(n));
      n--;
    }
    writeFileSync(o.file, dns.map((dn) => `dn: ${dn}\nchangetype: delete\n`).join('\n'));
    await run('ldapmodify', ['-x', '-H', o.ldap.url, '-D', o.ldap.rootDn, '-y', o.pw, '-f', o.file], { timeout: LDAP_TOOL_TIMEOUT_MS, maxBuffer: 1 << 20 });
    await sleep(trickle.gapSeconds * 1000);
  }
  // Two census intervals: the last batch is found and planned, and held or applied.
  await sleep(125_000);
  const answer = await fetch(o.readyz, { signal: AbortSignal.timeout(5000) }).then(
    async (r) => ({ status: r.status, body: (await r.json()) as { reason?: string } }),
    () => undefined,
  );
  const held = answer?.status === 503 && /safety guard/.test(answer.body.reason ?? '');
  return { deactivated: await o.deactivations(since), held, ...(answer?.body.reason ? { reason: answer.body.reason } : {}) };
}

/** Makes one change with the OpenLDAP tools, bounded. */
async function applyChange(ldap: { url: string; rootDn: string }, pw: string, c: PlannedChange, dn: string, directory: ReturnType<typeof benchDirectory>, formerDn: string, file: string): Promise<void> {
  const bind = ['-x', '-H', ldap.url, '-D', ldap.rootDn, '-y', pw];
  const options = { timeout: LDAP_TOOL_TIMEOUT_MS, maxBuffer: 1 << 20 };
  if (c.kind === 'deletion') {
    await run('ldapdelete', [...bind, dn], options);
    return;
  }
  const rdn = dn.slice(0, dn.indexOf(','));
  const ldif =
    c.kind === 'edit'
      ? `dn: ${dn}\nchangetype: modify\nreplace: title\ntitle: ${c.title}\n`
      : c.kind === 'addition'
        ? `dn: ${directory.groupDn(c.group!)}\nchangetype: modify\nadd: member\nmember: ${dn}\n`
        : `dn: ${dn}\nchangetype: modrdn\nnewrdn: ${rdn}\ndeleteoldrdn: 1\nnewsuperior: ${formerDn}\n`;
  writeFileSync(file, ldif);
  await run('ldapmodify', [...bind, '-f', file], options);
}

/** SIGTERM, a bounded wait, then SIGKILL and another bounded wait. */
async function stopDaemon(daemon: ChildProcess, exited: Promise<void>): Promise<void> {
  if (daemon.exitCode !== null || daemon.signalCode !== null) return;
  daemon.kill('SIGTERM');
  const within = (ms: number) => Promise.race([exited.then(() => true), sleep(ms).then(() => false)]);
  if (await within(DAEMON_STOP_GRACE_MS)) return;
  say(`the daemon did not stop within ${DAEMON_STOP_GRACE_MS / 1000} s of SIGTERM; SIGKILL`);
  daemon.kill('SIGKILL');
  await within(5000);
}

/** Polls `probe` every `everyMs` until it gives a value (not undefined), for at most `timeoutMs`. */
async function until<T>(what: string, timeoutMs: number, everyMs: number, probe: () => T | undefined | Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() >= deadline) throw new Error(`gave up waiting for ${what} after ${timeoutMs / 1000} s`);
    await sleep(everyMs);
  }
}

/** utime + stime of a process, in clock ticks (fields 14 and 15 of /proc/PID/stat); 0 once it is gone. */
function cpuTicks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields[0] is field 3 (state)
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return 0;
  }
}

async function clockTicks(): Promise<number> {
  try {
    const n = Number((await run('getconf', ['CLK_TCK'], { timeout: 5000 })).stdout.trim());
    return Number.isInteger(n) && n > 0 ? n : 100;
  } catch {
    return 100;
  }
}

function memoryKb(pid: number): { hwm?: number; rss?: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
    const rss = /VmRSS:\s+(\d+) kB/.exec(status);
    return { ...(hwm ? { hwm: Number(hwm[1]) } : {}), ...(rss ? { rss: Number(rss[1]) } : {}) };
  } catch {
    return {};
  }
}

/** The TCP ports a process listens on, from its socket inodes and /proc/net/tcp{,6} (the daemon was given port 0). */
function listeningPorts(pid: number): number[] {
  const inodes = new Set<string>();
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m) inodes.add(m[1]!);
      } catch {
        // closed meanwhile
      }
    }
  } catch {
    return [];
  }
  const ports: number[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      // local_address is cols[1] (hex ip:port), st is cols[3] (0A = LISTEN), inode is cols[9]
      if (cols[3] === '0A' && cols[9] !== undefined && inodes.has(cols[9])) ports.push(parseInt(cols[1]!.split(':')[1]!, 16));
    }
  }
  return ports;
}

function table(figures: Figure[]): string {
  const rows = [['figure', 'value', '× floor', 'target', 'met'], ...figures.map((f) => [f.name, f.value, f.ratio === undefined ? '' : f.ratio.toFixed(2), f.target ?? '', f.met === undefined ? '' : f.met ? 'yes' : 'NO'])];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === 1 || i === 2 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n');
}

function summary(r: { ms: number; peakMb: number; report: CycleReport }) {
  return { ms: r.ms, peakMb: r.peakMb, result: r.report.result, calls: r.report.calls, done: r.report.done, read: r.report.directory.read, stateSave: r.report.stateSave };
}

/** `ldap-scim sync --json` in its own process; its peak RSS is read from /proc (VmHWM) until it exits. */
async function syncOnce(configFile: string): Promise<{ ms: number; peakMb: number; report: CycleReport }> {
  const t = performance.now();
  const env = { ...process.env, LDAP_SCIM_LOG_LEVEL: 'error', ...(args['node-options'] ? { NODE_OPTIONS: args['node-options'] } : {}) };
  const child = spawn(process.execPath, [cli, 'sync', '--config', configFile, '--json'], { stdio: ['ignore', 'pipe', 'pipe'], env });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  let peakKb = 0;
  const poll = setInterval(() => (peakKb = Math.max(peakKb, memoryKb(child.pid!).hwm ?? 0)), 50);
  const code = await new Promise<number>((resolve) => child.once('exit', (c) => resolve(c ?? 1)));
  clearInterval(poll);
  const ms = performance.now() - t;
  let report: CycleReport;
  try {
    report = JSON.parse(out) as CycleReport;
  } catch {
    throw new Error(`sync exited ${code} without a JSON report: ${err.slice(-2000)}`);
  }
  return { ms, peakMb: Math.round(peakKb / 1024), report };
}

/**
 * ldapsearch's output goes nowhere: read through a pipe into this process (execFile), 70 MB of LDIF took a second
 * longer than the search itself (2.7 s against 1.7 s at 150,000 users), and the floor is the read alone.
 */
async function ldapsearchToNull(args: string[]): Promise<void> {
  const child = spawn('ldapsearch', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve, reject) => child.once('error', reject).once('close', resolve));
  if (code !== 0) throw new Error(`ldapsearch exited with ${code}: ${stderr.trim()}`);
}

async function startSandboxChild(token: string, limit: number): Promise<{ url: string; call(m: object): Promise<Record<string, unknown>>; stop(): void }> {
  const child = fork(path.join(root, 'bench', 'sandbox-child.ts'), [], {
    execArgv: tsxImport,
    env: { ...process.env, BENCH_SANDBOX_TOKEN: token, BENCH_SANDBOX_RATE: String(limit) },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  children.push(child);
  const url = await new Promise<string>((resolve, reject) => {
    child.once('message', (m: { url?: string }) => (m.url ? resolve(m.url) : reject(new Error('the sandbox did not start'))));
    child.once('exit', (c) => reject(new Error(`the sandbox exited (${c})`)));
  });
  return {
    url,
    // One call at a time (the answer is the next message); bounded, so a sandbox that died cannot hang the run.
    call: (m) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`the sandbox did not answer ${JSON.stringify(m)} within 5 minutes`)), 300_000);
        child.once('message', (answer: Record<string, unknown>) => {
          clearTimeout(timer);
          resolve(answer);
        });
        child.send(m);
      }),
    stop: () => child.kill('SIGTERM'),
  };
}

/** User POSTs into an empty, unthrottled sandbox, 16 at a time, for a bounded count. */
async function sandboxCapacity(): Promise<number> {
  const token = 'capacity';
  const sandbox = await startSandboxChild(token, 0);
  const total = 6000;
  let next = 0;
  const t = performance.now();
  const worker = async () => {
    while (next < total) {
      const n = next++;
      const res = await fetch(`${sandbox.url}/Users`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/scim+json' },
        body: JSON.stringify({ schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], userName: `cap${n}@bench.example`, emails: [{ value: `cap${n}@bench.example`, primary: true }], active: true }),
      });
      await res.arrayBuffer();
      if (res.status !== 201) throw new Error(`the sandbox answered ${res.status} to a capacity POST`);
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  const rps = total / ((performance.now() - t) / 1000);
  sandbox.stop();
  return rps;
}
