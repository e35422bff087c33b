import { execFile, fork, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { startThrowawaySlapd } from '../src/demo/throwaway-slapd.js';
import type { CycleReport } from '../src/sync/report.js';
import { benchDirectory } from './directory.js';
import type { ProbeResult } from './probe.js';
import type { PacingStats } from './sandbox-child.js';

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
    out: { type: 'string', default: path.join(root, 'bench', 'results.json') },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  process.stdout.write(
    'npm run bench -- [--users 150000] [--groups 2000] [--big-group 35500] [--rate 500] [--concurrency 8] [--page-size 1000]\n' +
      '                 [--node-options=--max-old-space-size=384] [--delta] [--out bench/results.json]\n' +
      'A quick run: npm run bench -- --users 5000 --groups 100 --big-group 2000\n',
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
const work = mkdtempSync(path.join(tmpdir(), 'ldap-scim-bench-'));
const children: ChildProcess[] = [];
let slapd: Awaited<ReturnType<typeof startThrowawaySlapd>> | undefined;

try {
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
  writeFileSync(args.out!, JSON.stringify(result, null, 2) + '\n');
  const flags = (args['node-options'] ? `; the connector ran with NODE_OPTIONS=${args['node-options']}` : '') + (args.delta ? '; delta reads on' : '');
  process.stdout.write(table(figures) + `\n${users} users, ${groups} groups, ${cpus().length} CPUs, ${process.version}${flags}; whole run ${seconds(result.totalMs)}; JSON in ${args.out}\n`);
  const missed = figures.filter((f) => f.met === false).length;
  process.exitCode = missed ? 1 : 0;
} finally {
  for (const child of children) child.kill('SIGTERM');
  await slapd?.stop();
  rmSync(work, { recursive: true, force: true });
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
  const poll = setInterval(() => {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      if (m) peakKb = Math.max(peakKb, Number(m[1]));
    } catch {
      // gone already
    }
  }, 50);
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
    call: (m) =>
      new Promise((resolve) => {
        child.once('message', (answer: Record<string, unknown>) => resolve(answer));
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
