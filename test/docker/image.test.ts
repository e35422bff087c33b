import { execFile } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { sampleDirectoryLdif } from '../../src/demo/sample-directory.js';
import { startThrowawaySlapd, type ThrowawaySlapd } from '../../src/demo/throwaway-slapd.js';
import { freePort } from '../../src/demo/free-port.js';
import { startSandbox, type RunningSandbox } from '../../src/sandbox/server.js';
import { expectScimMatchesDirectory, writeConfig } from '../support/sync-env.js';

// The image as an admin runs it: built from this checkout's Dockerfile, started with the default command (the daemon),
// non-root, read-only root filesystem, config mounted read-only, secrets as files, state on a named volume. slapd and
// the SCIM sandbox run in this process on 127.0.0.1; the container shares the host network, so all traffic stays on
// loopback. Needs a working Docker daemon: without one this test FAILS (it is not part of `npm test`).

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const IMAGE = 'ldap-scim:test';
const SUFFIX = 'dc=example,dc=test';
const UID = 1000; // the image's `node` user
const BUILD_TIMEOUT_MS = 10 * 60_000;
const DOCKER_TIMEOUT_MS = 60_000;
const STOP_GRACE_S = 20;

interface Exec {
  code: number;
  stdout: string;
  stderr: string;
}

function sh(command: string, args: string[], timeout = DOCKER_TIMEOUT_MS): Promise<Exec> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout, maxBuffer: 64 * 1024 * 1024, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      const killed = error && (error as { killed?: boolean }).killed ? `\n(killed after ${timeout} ms)` : '';
      resolve({ code, stdout, stderr: stderr + killed + (error && code === -1 ? `\n${error.message}` : '') });
    });
  });
}

async function docker(args: string[], timeout = DOCKER_TIMEOUT_MS): Promise<string> {
  const r = await sh('docker', args, timeout);
  if (r.code !== 0) throw new Error(`docker ${args.join(' ')} exited ${r.code}: ${(r.stderr || r.stdout).trim().slice(-3000)}`);
  return r.stdout.trim();
}

async function containerLogs(name: string, lines = 60): Promise<string> {
  const r = await sh('docker', ['logs', '--tail', String(lines), name], 15_000);
  return (r.stdout + r.stderr).trim();
}

/** Polls `probe` until it returns a value other than undefined; fails after `timeoutMs` with the last observation. */
async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = 'never probed';
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
      last = 'not yet';
    } catch (e) {
      last = e instanceof Error ? e.message : String(e);
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${String(last)})`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function get(url: string): Promise<{ status: number; text: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(3000) });
  return { status: res.status, text: await res.text() };
}

describe('docker image', function () {
  this.timeout(120_000);
  const id = randomBytes(4).toString('hex');
  const volume = `ldap-scim-test-state-${id}`;
  const first = `ldap-scim-test-${id}-a`;
  const second = `ldap-scim-test-${id}-b`;
  const workDir = mkdtempSync(path.join(tmpdir(), 'ldap-scim-docker-'));
  let slapd: ThrowawaySlapd | undefined;
  let sandbox: RunningSandbox | undefined;
  let token: string;
  let port: number;
  let hostConfig: ReturnType<typeof writeConfig>;
  let firstStop: { exitCode: number; seconds: number } | undefined;

  const base = () => `http://127.0.0.1:${port}`;

  function runArgs(name: string): string[] {
    return [
      'run', '-d', '--name', name,
      '--network', 'host',
      // As docker-compose.yml runs it: nothing writable but the volume and /tmp, no capabilities.
      '--read-only', '--tmpfs', '/tmp', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges',
      '-v', `${path.join(workDir, 'etc')}:/etc/ldap-scim:ro`,
      '-v', `${path.join(workDir, 'secrets')}:/run/secrets:ro`,
      '-v', `${volume}:/var/lib/ldap-scim`,
      '-e', `LDAP_SCIM_HEALTH_PORT=${port}`,
      '-e', 'LDAP_SCIM_LOG_LEVEL=info',
      // The image's HEALTHCHECK command with a short interval, so `healthy` comes in seconds rather than 30 s.
      '--health-interval', '1s', '--health-timeout', '4s', '--health-retries', '3', '--health-start-period', '1s',
      IMAGE, // no command: the image's default `run --config /etc/ldap-scim/config.yaml`
    ];
  }

  async function cycles(): Promise<number | undefined> {
    const r = await get(`${base()}/healthz`);
    if (r.status !== 200) return undefined;
    const n = (JSON.parse(r.text) as { cycles?: unknown }).cycles;
    if (typeof n !== 'number') throw new Error(`/healthz has no numeric "cycles": ${r.text}`);
    return n;
  }

  async function stop(name: string): Promise<{ exitCode: number; seconds: number }> {
    const started = Date.now();
    await docker(['stop', '-t', String(STOP_GRACE_S), name], (STOP_GRACE_S + 30) * 1000);
    const seconds = (Date.now() - started) / 1000;
    const exitCode = Number(await docker(['inspect', '-f', '{{.State.ExitCode}}', name]));
    return { exitCode, seconds };
  }

  before(async function () {
    this.timeout(BUILD_TIMEOUT_MS + 60_000);
    const info = await sh('docker', ['info', '--format', '{{.ServerVersion}}'], 20_000);
    if (info.code !== 0) {
      throw new Error(
        'Docker is not usable here (`docker info` failed), and this test needs it: start a Docker daemon this user can ' +
          `reach (on the project's CI machines: bash ../shared/tools/docker-up.sh). docker said: ${(info.stderr || info.stdout).trim()}`,
      );
    }
    const started = Date.now();
    await docker(['build', '--network', 'host', '-t', IMAGE, ROOT], BUILD_TIMEOUT_MS);
    console.log(`      (docker build took ${((Date.now() - started) / 1000).toFixed(1)} s)`);

    const sample = sampleDirectoryLdif({ suffix: SUFFIX, users: 30 });
    slapd = await startThrowawaySlapd({ suffix: SUFFIX, ldif: sample.ldif });
    token = 'docker-test-' + randomBytes(12).toString('hex');
    sandbox = await startSandbox({ token, host: '127.0.0.1', port: 0 });
    port = await freePort();
    await docker(['volume', 'create', volume]);

    // The container's config folder and secrets, readable by uid 1000 (root-run tests hand the secrets to that uid).
    const etc = path.join(workDir, 'etc');
    const secrets = path.join(workDir, 'secrets');
    mkdirSync(etc);
    mkdirSync(secrets);
    for (const dir of [workDir, etc, secrets]) chmodSync(dir, 0o755);
    writeFileSync(
      path.join(etc, 'config.yaml'),
      `source:
  kind: openldap
  url: ${slapd.url}
  bindDn: "${slapd.rootDn}"
  bindPasswordFile: /run/secrets/ldap-password
  users: { baseDn: "ou=people,${SUFFIX}" }
  groups: { baseDn: "ou=groups,${SUFFIX}" }
  pageSize: 25
target:
  url: ${sandbox.url}
  tokenFile: /run/secrets/scim-token
  rateLimit: { requestsPerSecond: 200, concurrency: 4 }
  maxRetries: 2
state:
  path: /var/lib/ldap-scim/snapshot.json
schedule: "*/3 * * * * *"
server:
  host: 127.0.0.1
  port: ${port}
`,
      { mode: 0o644 },
    );
    for (const [file, value] of [['ldap-password', slapd.rootPassword], ['scim-token', token]] as const) {
      const p = path.join(secrets, file);
      writeFileSync(p, value + '\n');
      if (process.getuid?.() === 0) {
        chownSync(p, UID, UID);
        chmodSync(p, 0o400);
      } else {
        chmodSync(p, 0o644); // not root: cannot give the file to uid 1000, so let everyone read it (a temp dir)
      }
    }
    // The same directory and SCIM side, seen from the host, for comparing what the container synced.
    hostConfig = writeConfig(
      { ldapUrl: slapd.url, suffix: SUFFIX, bindDn: slapd.rootDn, bindPassword: slapd.rootPassword, scimUrl: sandbox.url, token },
      mkdtempSync(path.join(workDir, 'host-')),
    );
  });

  afterEach(async function () {
    if (this.currentTest?.state !== 'failed') return;
    for (const name of [first, second]) {
      const logs = await containerLogs(name, 40);
      if (logs) console.error(`--- docker logs ${name} (tail) ---\n${logs}`);
    }
  });

  after(async function () {
    this.timeout(90_000);
    await sh('docker', ['rm', '-f', '-v', first, second], 30_000);
    await sh('docker', ['volume', 'rm', '-f', volume], 30_000);
    await sandbox?.close();
    await slapd?.stop();
    rmSync(workDir, { recursive: true, force: true });
  });

  it('runs the daemon as uid 1000, PID 1, serves /healthz, becomes ready, and syncs the directory', async () => {
    await docker(runArgs(first));
    expect(await docker(['exec', first, 'id', '-u'])).to.equal(String(UID));
    const pid1 = (await docker(['exec', first, 'cat', '/proc/1/cmdline'])).split('\0').filter(Boolean);
    expect(pid1, 'PID 1 is node itself (exec form), so SIGTERM reaches the app').to.deep.equal(['node', '/app/dist/cli.js', 'run', '--config', '/etc/ldap-scim/config.yaml']);
    const pid1User = await docker(['exec', first, 'stat', '-c', '%u', '/proc/1']);
    expect(pid1User, 'the daemon process (PID 1) runs as uid 1000').to.equal(String(UID));

    await waitFor('/healthz to answer 200', 20_000, async () => ((await get(`${base()}/healthz`)).status === 200 ? true : undefined));
    const ready = await waitFor('/readyz to answer 200 after the first cycle', 60_000, async () => {
      const r = await get(`${base()}/readyz`);
      if (r.status === 200) return r;
      expect(r.status, `/readyz before ready: ${r.text}`).to.equal(503);
      expect(() => JSON.parse(r.text), '/readyz 503 carries a JSON reason').to.not.throw();
      return undefined;
    });
    expect(ready.status).to.equal(200);

    await expectScimMatchesDirectory(hostConfig.load(), { kind: 'sandbox', url: sandbox!.url, token, sandbox, stop: async () => {} });
    expect(sandbox!.users().filter((u) => u.active !== false)).to.have.length(27);
    expect(sandbox!.groups()).to.have.length(4);
    // No state file yet, so the first cycle built the snapshot by listing the SCIM side (Users and Groups).
    expect(sandbox!.requests.some((r) => r.method === 'GET' && r.path.endsWith('/Groups'))).to.equal(true);

    const metrics = await get(`${base()}/metrics`);
    expect(metrics.status).to.equal(200);
    expect(metrics.text).to.match(/^ldap_scim_\w+/m);
  });

  it('runs further cycles on the schedule and reports healthy to Docker', async () => {
    const now = await cycles();
    await waitFor('a scheduled cycle after the first', 20_000, async () => ((await cycles())! > now! ? true : undefined));
    const status = await waitFor('docker health status healthy', 30_000, async () => {
      const s = await docker(['inspect', '-f', '{{.State.Health.Status}}', first]);
      if (s === 'healthy') return s;
      throw new Error(`${s}; last checks: ${await docker(['inspect', '-f', '{{json .State.Health.Log}}', first])}`);
    });
    expect(status).to.equal('healthy');
  });

  it('SIGHUP (docker kill -s HUP, as ExecReload does) reloads the config and the daemon keeps running', async () => {
    const since = new Date().toISOString();
    await docker(['kill', '-s', 'HUP', first]);
    const line = await waitFor('a log line about the reload', 10_000, async () => {
      const r = await sh('docker', ['logs', '--since', since, first], 15_000);
      return (r.stdout + r.stderr).split('\n').find((l) => /SIGHUP/.test(l));
    });
    expect(line).to.match(/reloaded/i);
    expect(await docker(['inspect', '-f', '{{.State.Running}}', first])).to.equal('true');
    expect((await get(`${base()}/healthz`)).status).to.equal(200);
  });

  it('docker stop (SIGTERM) ends the daemon with exit code 0 within a few seconds, leaving the snapshot in the volume', async () => {
    firstStop = await stop(first);
    expect(firstStop.exitCode, await containerLogs(first, 20)).to.equal(0);
    expect(firstStop.seconds, 'stopped by SIGTERM, not by the SIGKILL after the grace period').to.be.below(10);
    const listing = await docker(['run', '--rm', '--network', 'host', '-v', `${volume}:/var/lib/ldap-scim:ro`, '--entrypoint', 'sh', IMAGE, '-c', 'stat -c "%u %s %n" /var/lib/ldap-scim/snapshot.json']);
    const [owner, size] = listing.split(' ');
    expect(owner, 'the snapshot belongs to uid 1000').to.equal(String(UID));
    expect(Number(size)).to.be.above(100);
  });

  it('a second container on the same volume makes no SCIM write and does not rebuild the snapshot', async () => {
    expect(firstStop, 'the previous test stopped the first container').to.not.equal(undefined);
    sandbox!.resetRequests();
    await docker(runArgs(second));
    await waitFor('/readyz 200 in the second container', 60_000, async () => ((await get(`${base()}/readyz`)).status === 200 ? true : undefined));
    const now = await cycles();
    await waitFor('a scheduled cycle in the second container', 20_000, async () => ((await cycles())! > now! ? true : undefined));
    expect(sandbox!.writeCount(), JSON.stringify(sandbox!.requests.filter((r) => r.method !== 'GET'))).to.equal(0);
    // A lost snapshot would be rebuilt by listing the SCIM side, Groups included: a quiet cycle only counts Users.
    expect(sandbox!.requests.filter((r) => r.path.endsWith('/Groups')), 'no listing of Groups: the snapshot was read from the volume').to.deep.equal([]);
    const logs = await containerLogs(second, 200);
    expect(logs).to.not.match(/no state file yet/);

    const stopped = await stop(second);
    expect(stopped.exitCode, await containerLogs(second, 20)).to.equal(0);
    expect(stopped.seconds).to.be.below(10);
  });
});
