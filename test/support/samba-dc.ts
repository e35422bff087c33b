import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from 'ldapts';

// A throwaway Samba AD DC (LDAP service only) in a temp folder, for the Active Directory tests: the machine's own
// /etc/samba is never read (provision and start both get an explicit smb.conf). Mirrors src/demo/throwaway-slapd.ts.
// Facts and traps behind the choices below: /work/shared/TEST-SERVERS.md, "Samba AD DC".
//
// Samba listens on the fixed ports 389/636 (and 3268/3269), so only one DC runs at a time on a machine (network
// namespace), and it needs root. Provisioning takes 7-12 s, so the first start provisions a template into
// os.tmpdir() (keyed by the Samba version) and every start copies it (~0.05 s) into a fresh temp folder.

export interface SambaDcOptions {
  /** Defaults to the cached template's random one (upper, lower, digit and symbol: meets Samba's complexity rules). */
  adminPassword?: string;
  /** Reuse (and create if missing) the provisioned template in os.tmpdir(). Default true; false provisions afresh. */
  cacheTemplate?: boolean;
}

export interface SambaDc {
  url: 'ldap://127.0.0.1:389';
  ldapsUrl: 'ldaps://127.0.0.1:636';
  /** PEM of the DC's self-signed CA (DIR/private/tls/ca.pem). */
  caFile: string;
  /** The certificate is CN=DC1.example.test without subject alternative names: TLS to 127.0.0.1 needs this servername. */
  tlsServername: 'DC1.example.test';
  baseDn: 'DC=example,DC=test';
  realm: 'example.test';
  adminDn: string;
  adminUpn: 'Administrator@example.test';
  adminPassword: string;
  dir: string;
  /** The samba root process (leader of its own process group). */
  pid: number;
  /** Adds LDIF content records (no changetype needed) with ldapadd over plain LDAP; members must already exist. */
  add(ldif: string): Promise<void>;
  /** Applies an LDIF of changes (changetype: add/modify/delete/modrdn) with ldapmodify. */
  modify(ldif: string): Promise<void>;
  /** Stops samba (TERM via its pid file, KILL after a bound) and deletes its folder. Safe to call twice. */
  stop(): Promise<void>;
}

const REALM = 'example.test';
const BASE_DN = 'DC=example,DC=test';
const HOST = 'DC1';
const LDAP_PORT = 389;
const LDAPS_PORT = 636;
const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;
const PROVISION_TIMEOUT_MS = 120_000;
/** Bump when the template's content or layout changes, so stale caches are not reused. */
const TEMPLATE_LAYOUT = 1;

/** What this process has under way: removed on stop(), killed and deleted on exit or a fatal signal. */
interface Running {
  lock: string;
  children: Set<ChildProcess>;
  dirs: Set<string>;
}
let current: Running | undefined;

function killGroup(pid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    return false; // ESRCH: the group is gone
  }
}

/**
 * Ports are per network namespace, so two test processes on one machine would fight over 389/636 (and a readiness
 * bind could even succeed against the other's DC, whose template has the same admin password). A lock file per
 * network namespace in os.tmpdir(), holding the owner's pid, makes the second start fail at once instead.
 */
function lockFile(): string {
  let netns = 'default';
  try {
    netns = readlinkSync('/proc/self/ns/net').replace(/[^0-9]/g, '') || netns;
  } catch {
    // no /proc: one lock for the machine
  }
  return path.join(tmpdir(), `ldap-scim-samba-dc-${netns}.lock`);
}

function acquireLock(): string {
  const file = lockFile();
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx', mode: 0o600 });
      return file;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let owner = NaN;
    try {
      owner = Number.parseInt(readFileSync(file, 'utf8'), 10);
    } catch {
      continue; // released meanwhile
    }
    if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner)) {
      throw new Error(`a Samba DC is already running for process ${owner} in this network namespace (lock ${file}): ports 389/636 are fixed, so only one DC at a time; wait for it or run in another namespace (unshare -n)`);
    }
    try {
      unlinkSync(file); // stale: its owner is gone
    } catch {
      // someone else removed it
    }
  }
  throw new Error(`could not take the Samba DC lock ${file}`);
}

function releaseLock(file: string): void {
  try {
    if (readFileSync(file, 'utf8') === String(process.pid)) unlinkSync(file);
  } catch {
    // already gone
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function emergencyCleanup(): void {
  if (!current) return;
  const { children, dirs, lock } = current;
  current = undefined;
  for (const child of children) if (child.pid) killGroup(child.pid, 'SIGKILL');
  // the killed processes may still be going away: retry a few times, synchronously (this runs in 'exit')
  for (const dir of dirs) {
    for (let attempt = 0; attempt < 20; attempt++) {
      try {
        rmSync(dir, { recursive: true, force: true });
        break;
      } catch {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
      }
    }
  }
  releaseLock(lock);
}

/** A DC left running must not keep the test process alive: 'exit' then kills it. */
function unrefChild(child: ChildProcess): void {
  child.unref();
  for (const stream of [child.stdout, child.stderr]) (stream as unknown as { unref?: () => void } | null)?.unref?.();
}
process.once('exit', emergencyCleanup);
// samba runs in its own session (setsid), so a Ctrl-C to the test run does not reach it: clean up on signals too, and
// let the signal take its default course when nobody else listens for it.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    emergencyCleanup();
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  });
}

export async function startSambaDc(options: SambaDcOptions = {}): Promise<SambaDc> {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new Error('startSambaDc needs root: Samba AD DC binds the fixed ports 389/636 and keeps root-owned databases (run the tests as root, or in `unshare -rn`)');
  }
  if (current) {
    throw new Error(`a Samba DC is already running from this process (${[...current.dirs].join(', ')}): ports 389/636 are fixed, stop() it first`);
  }
  if (options.adminPassword !== undefined && options.adminPassword.length < 7) {
    throw new Error('adminPassword must have 7+ characters from three of upper, lower, digit, symbol (Samba complexity rules)');
  }
  const samba = binary('samba', ['/usr/sbin/samba', '/usr/local/samba/sbin/samba']);
  const sambaTool = binary('samba-tool', ['/usr/bin/samba-tool', '/usr/local/samba/bin/samba-tool']);
  binary('ldapadd', ['/usr/bin/ldapadd', '/usr/local/bin/ldapadd']);

  const run: Running = { lock: acquireLock(), children: new Set(), dirs: new Set() };
  current = run;
  let dir: string | undefined;
  let child: ChildProcess | undefined;
  const release = async () => {
    if (child) await stopSamba(child, dir!);
    if (dir) rmSync(dir, { recursive: true, force: true });
    releaseLock(run.lock);
    if (current === run) current = undefined;
  };
  try {
    for (const port of [LDAP_PORT, LDAPS_PORT]) {
      if (await answers(port)) {
        throw new Error(`127.0.0.1:${port} is already taken (another Samba DC or LDAP server?): a Samba DC needs the fixed ports 389 and 636`);
      }
    }
    dir = mkdtempSync(path.join(tmpdir(), 'ldap-scim-samba-'));
    run.dirs.add(dir);
    let adminPassword: string;
    const template = options.cacheTemplate === false ? undefined : await cachedTemplate(samba, sambaTool, run);
    if (template) {
      // sockets (private/ldapi, ...) are recreated by samba and cannot be copied
      cpSync(template.dir, dir, { recursive: true, filter: (src) => !lstatSync(src).isSocket() });
      adminPassword = template.adminPassword;
    } else {
      adminPassword = randomPassword();
      await provision(sambaTool, dir, adminPassword);
    }
    rmSync(path.join(dir, 'template.json'), { force: true });
    writeSmbConf(dir);
    if (options.adminPassword !== undefined && options.adminPassword !== adminPassword) {
      await runTool(sambaTool, ['user', 'setpassword', 'Administrator', `--newpassword=${options.adminPassword}`, '-s', smbConfPath(dir)], PROVISION_TIMEOUT_MS);
      adminPassword = options.adminPassword;
    }

    child = spawnSamba(samba, dir, run);
    const started = child;
    const instanceDir = dir;
    await waitReady(started, instanceDir, adminPassword);

    const adminUpn = `Administrator@${REALM}` as const;
    let stopping: Promise<void> | undefined;
    const ldapTool = async (tool: 'ldapadd' | 'ldapmodify', ldif: string) => {
      if (stopping) throw new Error('the Samba DC is stopped');
      const file = path.join(instanceDir, `${tool}-${randomBytes(4).toString('hex')}.ldif`);
      writeFileSync(file, ldif);
      const entries = (ldif.match(/^dn:/gm) ?? []).length;
      try {
        // ldapadd -w would show the password in ps; LDAPNOINIT keeps ldap.conf/.ldaprc out of it.
        await runTool(tool, ['-x', '-H', `ldap://127.0.0.1:${LDAP_PORT}`, '-D', adminUpn, '-y', passwordFile(instanceDir, adminPassword), '-f', file], 60_000 + 100 * entries, { LDAPNOINIT: '1' });
      } finally {
        rmSync(file, { force: true });
      }
    };
    return {
      url: 'ldap://127.0.0.1:389',
      ldapsUrl: 'ldaps://127.0.0.1:636',
      caFile: path.join(instanceDir, 'private', 'tls', 'ca.pem'),
      tlsServername: 'DC1.example.test',
      baseDn: BASE_DN,
      realm: REALM,
      adminDn: `CN=Administrator,CN=Users,${BASE_DN}`,
      adminUpn,
      adminPassword,
      dir: instanceDir,
      pid: started.pid!,
      add: (ldif) => ldapTool('ldapadd', ldif),
      modify: (ldif) => ldapTool('ldapmodify', ldif),
      stop: () => (stopping ??= release()),
    };
  } catch (e) {
    await release();
    throw e;
  }
}

function spawnSamba(samba: string, dir: string, run: Running): ChildProcess {
  // detached: samba gets its own session and process group (setsid), so stop/exit can signal the whole group
  const child = spawn(samba, ['-s', smbConfPath(dir), '-F', '--debug-stdout'], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  run.children.add(child); // kept until the run ends: workers could outlive the root process
  unrefChild(child);
  let output = '';
  const keep = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-8000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  outputs.set(child, () => output);
  return child;
}
const outputs = new WeakMap<ChildProcess, () => string>();

function binary(name: string, candidates: string[]): string {
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    throw new Error(`${name} is not installed: apt-get install -y samba samba-ad-dc krb5-user winbind ldb-tools ldap-utils`);
  }
  return found;
}

/** Samba's default policy: 7+ characters from at least three of upper, lower, digit, symbol; no account name. */
function randomPassword(): string {
  return `Aa1-${randomBytes(12).toString('base64url')}`;
}

const smbConfPath = (dir: string) => path.join(dir, 'etc', 'smb.conf');

async function provision(sambaTool: string, dir: string, adminPassword: string): Promise<void> {
  // -s with an empty file: without it samba-tool merges /etc/samba/smb.conf and drops --option.
  const emptyConf = path.join(dir, 'provision-empty.conf');
  writeFileSync(emptyConf, '');
  await runTool(
    sambaTool,
    [
      'domain', 'provision', '-s', emptyConf, `--targetdir=${dir}`, `--realm=${REALM.toUpperCase()}`, '--domain=EXAMPLE',
      '--server-role=dc', '--dns-backend=NONE', '--use-rfc2307', `--host-name=${HOST.toLowerCase()}`, `--adminpass=${adminPassword}`,
    ],
    PROVISION_TIMEOUT_MS,
  );
  rmSync(emptyConf, { force: true });
}

/** Our smb.conf: the LDAP service only, on loopback, every path inside dir (none of /var/lib/samba, /run/samba). */
function writeSmbConf(dir: string): void {
  const p = (name: string) => path.join(dir, name);
  for (const sub of ['etc', 'private', 'lock', 'state', 'cache', 'bind-dns', 'pid', 'ncalrpc', 'winbindd', 'log']) mkdirSync(p(sub), { recursive: true });
  const conf = [
    '[global]',
    `\tnetbios name = ${HOST}`,
    `\trealm = ${REALM.toUpperCase()}`,
    '\tworkgroup = EXAMPLE',
    '\tserver role = active directory domain controller',
    '\tserver services = ldap',
    '\tinterfaces = lo',
    '\tbind interfaces only = yes',
    '\tldap server require strong auth = no',
    '\tidmap_ldb:use rfc2307 = yes',
    '\tldb:nosync = true',
    `\tprivate dir = ${p('private')}`,
    `\tlock directory = ${p('lock')}`,
    `\tstate directory = ${p('state')}`,
    `\tcache directory = ${p('cache')}`,
    `\tbinddns dir = ${p('bind-dns')}`,
    `\tpid directory = ${p('pid')}`,
    `\tncalrpc dir = ${p('ncalrpc')}`,
    `\twinbindd socket directory = ${p('winbindd')}`,
    `\tlog file = ${p('log/samba.log')}`,
    '',
  ];
  writeFileSync(smbConfPath(dir), conf.join('\n'));
}

interface Template {
  dir: string;
  adminPassword: string;
}

/**
 * The provisioned template in os.tmpdir(), made on first use: provision, start once so that Samba generates its TLS
 * certificate, stop. Built in a private staging folder and renamed into place, so a half-made template is never used
 * and two processes racing to build it both end up with a complete one. Returns undefined when the cache location is
 * not trustworthy (not ours, or writable by others): the caller provisions afresh.
 */
async function cachedTemplate(samba: string, sambaTool: string, run: Running): Promise<Template | undefined> {
  const version = (await runTool(samba, ['--version'], 10_000)).stdout.trim().replace(/^Version\s+/i, '').replace(/[^A-Za-z0-9._-]/g, '_');
  const templateDir = path.join(tmpdir(), `ldap-scim-samba-template-${version}-v${TEMPLATE_LAYOUT}`);
  const existing = readTemplate(templateDir);
  if (existing !== 'absent') return existing;

  const staging = mkdtempSync(path.join(tmpdir(), 'ldap-scim-samba-staging-'));
  run.dirs.add(staging);
  try {
    const adminPassword = randomPassword();
    await provision(sambaTool, staging, adminPassword);
    writeSmbConf(staging);
    const child = spawnSamba(samba, staging, run);
    try {
      await waitReady(child, staging, adminPassword);
    } finally {
      await stopSamba(child, staging);
    }
    if (!existsSync(path.join(staging, 'private', 'tls', 'ca.pem'))) throw new Error(`samba generated no TLS certificate in ${staging}/private/tls`);
    for (const transient of ['pid', 'log', 'lock', 'cache', 'ncalrpc', 'winbindd', 'private/ldapi', 'private/ldap_priv']) {
      rmSync(path.join(staging, transient), { recursive: true, force: true });
    }
    writeFileSync(path.join(staging, 'template.json'), JSON.stringify({ version, layout: TEMPLATE_LAYOUT, adminPassword }), { mode: 0o600 });
    try {
      renameSync(staging, templateDir);
    } catch {
      // another process won the race: use its template
      rmSync(staging, { recursive: true, force: true });
    }
  } catch (e) {
    rmSync(staging, { recursive: true, force: true });
    throw e;
  } finally {
    run.dirs.delete(staging);
  }
  const made = readTemplate(templateDir);
  return made === 'absent' ? undefined : made;
}

function readTemplate(templateDir: string): Template | undefined | 'absent' {
  let stat;
  try {
    stat = lstatSync(templateDir);
  } catch {
    return 'absent';
  }
  if (!stat.isDirectory() || stat.uid !== process.getuid?.() || (stat.mode & 0o022) !== 0) return undefined;
  try {
    const meta = JSON.parse(readFileSync(path.join(templateDir, 'template.json'), 'utf8')) as { adminPassword?: unknown };
    if (typeof meta.adminPassword !== 'string' || !existsSync(path.join(templateDir, 'private', 'sam.ldb'))) return undefined;
    return { dir: templateDir, adminPassword: meta.adminPassword };
  } catch {
    return undefined;
  }
}

function passwordFile(dir: string, password: string): string {
  const file = path.join(dir, 'admin.pw');
  if (!existsSync(file) || readFileSync(file, 'utf8') !== password) writeFileSync(file, password, { mode: 0o600 });
  return file;
}

/** Connects to 127.0.0.1:port; true when something accepts. */
function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Ready when an admin simple bind succeeds on 389, 636 accepts connections, and the samba we started is still alive
 * with its pid in its pid file (so the answer did not come from some other server on the fixed ports).
 */
async function waitReady(child: ChildProcess, dir: string, adminPassword: string): Promise<void> {
  const output = () => outputs.get(child)?.() ?? '';
  const deadline = Date.now() + READY_TIMEOUT_MS;
  const exited = () => (child.exitCode !== null || child.signalCode !== null ? String(child.signalCode ?? child.exitCode) : undefined);
  let lastError = 'no attempt yet';
  while (Date.now() < deadline) {
    if (exited()) throw new Error(`samba exited (${exited()}) before LDAP answered: ${output().trim() || 'no output'}`);
    const client = new Client({ url: `ldap://127.0.0.1:${LDAP_PORT}`, connectTimeout: 1000, timeout: 2000 });
    try {
      await client.bind(`Administrator@${REALM}`, adminPassword);
      if (!(await answers(LDAPS_PORT))) {
        lastError = `${LDAPS_PORT} not listening yet`;
      } else if (!exited() && readPid(dir) === child.pid) {
        return;
      } else {
        lastError = 'something answered, but not the samba started here';
      }
    } catch (e) {
      lastError = e instanceof Error ? e.message : String(e);
    } finally {
      await client.unbind().catch(() => undefined);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`samba did not answer an LDAP bind on 127.0.0.1:${LDAP_PORT} within ${READY_TIMEOUT_MS} ms (last: ${lastError}): ${output().trim() || 'no output'}`);
}

function readPid(dir: string): number | undefined {
  try {
    return Number.parseInt(readFileSync(path.join(dir, 'pid', 'samba.pid'), 'utf8').trim(), 10) || undefined;
  } catch {
    return undefined;
  }
}

/** TERM to the pid in the pid file (the samba root process), wait for its group to go, KILL the group after a bound. */
async function stopSamba(child: ChildProcess, dir: string): Promise<void> {
  const pgid = child.pid;
  if (!pgid) return;
  // the pid file names the samba root process; before it is written (samba failing early), signal the child itself
  const pid = readPid(dir) ?? pgid;
  const exited = child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => child.once('exit', () => r()));
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    // already gone
  }
  const deadline = Date.now() + STOP_TIMEOUT_MS;
  const killTimer = setTimeout(() => killGroup(pgid, 'SIGKILL'), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(killTimer);
  // the prefork workers follow their root process; make sure none holds 389/636 for the next start
  while (killGroup(pgid, 0)) {
    if (Date.now() > deadline) killGroup(pgid, 'SIGKILL');
    if (Date.now() > deadline + 5000) throw new Error(`samba process group ${pgid} did not go away after SIGKILL`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface ToolResult {
  stdout: string;
  stderr: string;
}

/** Runs a command with a time bound; keeps the tail of its output for the error message. */
function runTool(command: string, args: string[], timeoutMs: number, env: Record<string, string> = {}): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c: Buffer) => (stdout = (stdout + c.toString()).slice(-8000)));
    child.stderr!.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-8000)));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`${path.basename(command)} could not start: ${e.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) return resolve({ stdout, stderr });
      const why = timedOut ? `timed out after ${timeoutMs} ms` : `failed (${signal ?? code})`;
      const shownArgs = args.map((a) => (a.startsWith('--adminpass=') || a.startsWith('--newpassword=') ? a.replace(/=.*/, '=***') : a));
      reject(new Error(`${path.basename(command)} ${shownArgs.join(' ')} ${why}: ${(stderr.trim() || stdout.trim()).slice(-3000)}`));
    });
  });
}
