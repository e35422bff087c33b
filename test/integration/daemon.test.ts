import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { sampleDirectoryLdif } from '../../src/demo/sample-directory.js';
import { freePort } from '../../src/demo/free-port.js';
import { startThrowawaySlapd, type ThrowawaySlapd } from '../../src/demo/throwaway-slapd.js';
import { keyFingerprint } from '../../src/scim/key-fingerprint.js';
import { startSandbox, type RunningSandbox } from '../../src/sandbox/server.js';
import { writeConfig } from '../support/sync-env.js';
import { waitFor } from '../support/wait-for.js';

const SUFFIX = 'dc=example,dc=test';
const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
const FIRST_KEY = 'daemon-first-key-4hq8z';
const SECOND_KEY = 'daemon-second-key-p0x7w';


// The daemon as admins run it: a real process on a two-second schedule against real slapd and the sandbox.
describe('ldap-scim run (the daemon)', function () {
  this.timeout(180_000);
  let slapd: ThrowawaySlapd;
  let sandbox: RunningSandbox;
  let daemon: ChildProcess;
  let logs = '';
  let port: number;
  let configFile: string;
  let configText: string;
  let dir: string;
  const alerts: string[] = [];
  let webhook: http.Server;

  const get = async (path: string) => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`);
    return { status: res.status, text: await res.text() };
  };
  const readyz = async () => get('/readyz');

  before(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build (npm test does)`);
    slapd = await startThrowawaySlapd({ suffix: SUFFIX, ldif: sampleDirectoryLdif({ suffix: SUFFIX, users: 60 }).ldif });
    sandbox = await startSandbox({ token: FIRST_KEY });
    webhook = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        alerts.push((JSON.parse(body) as { text: string }).text);
        res.end('ok');
      });
    });
    await new Promise<void>((r) => webhook.listen(0, '127.0.0.1', () => r()));
    port = await freePort();
    const fiveDays = new Date(Date.now() + 5 * 86_400_000 + 3_600_000).toISOString();
    const written = writeConfig({
      ldapUrl: slapd.url,
      suffix: SUFFIX,
      bindDn: slapd.rootDn,
      bindPassword: slapd.rootPassword,
      scimUrl: sandbox.url,
      token: FIRST_KEY,
      extra: `schedule: "*/2 * * * * *"\nserver: { host: 127.0.0.1, port: ${port} }\nalerts: { webhookUrl: "http://127.0.0.1:${(webhook.address() as AddressInfo).port}/hook" }\n`,
    });
    configFile = written.file;
    dir = written.dir;
    configText = readFileSync(configFile, 'utf8').replace('  tokenFile: scim.key\n', `  tokenFile: scim.key\n  tokenExpiresAt: "${fiveDays}"\n`);
    writeFileSync(configFile, configText);
    daemon = spawn(process.execPath, [CLI, 'run', '--config', configFile], { env: { ...process.env, LDAP_SCIM_LOG_LEVEL: 'info' } });
    daemon.stdout!.on('data', (d: Buffer) => (logs += d.toString()));
    daemon.stderr!.on('data', (d: Buffer) => (logs += d.toString()));
  });

  after(async () => {
    if (daemon && daemon.exitCode === null) daemon.kill('SIGKILL');
    await new Promise<void>((r) => webhook?.close(() => r()));
    await sandbox?.close();
    await slapd?.stop();
  });

  it('syncs at start and becomes ready; /healthz and /metrics answer', async () => {
    await waitFor('/readyz 200', 30_000, async () => ((await readyz().catch(() => undefined))?.status === 200 ? true : undefined));
    expect(sandbox.users()).to.have.length(57);
    expect((await get('/healthz')).status).to.equal(200);
    const metrics = (await get('/metrics')).text;
    expect(metrics).to.match(/^ldap_scim_cycles_total\{result="success"\} [1-9]/m);
    expect(metrics).to.match(/^ldap_scim_users_in_scope 57$/m);
    expect(metrics).to.match(/^ldap_scim_ready 1$/m);
  });

  it('a key that expires in 5 days: one warning (log and webhook) however many cycles, and the days left as a metric', async () => {
    await waitFor('three cycles', 20_000, async () => {
      const m = /^ldap_scim_cycles_total\{result="success"\} (\d+)/m.exec((await get('/metrics')).text);
      return m && Number(m[1]) >= 3 ? true : undefined;
    });
    const fp = keyFingerprint(FIRST_KEY);
    expect(logs.match(/expires in 5 days/g), 'warned exactly once').to.have.length(1);
    expect(alerts.filter((a) => /expires in 5 days/.test(a))).to.have.length(1);
    const reports = readdirSync(`${dir}/state/reports`).map((f) => readFileSync(`${dir}/state/reports/${f}`, 'utf8'));
    expect(reports.length, 'each cycle keeps its report').to.be.greaterThan(2);
    expect(reports.filter((r) => /expires in 5 days/.test(r)), 'the warning is in that cycle\'s report').to.have.length(1);
    const metrics = (await get('/metrics')).text;
    const days = new RegExp(`^ldap_scim_key_days_left\\{fingerprint="${fp}",estimated="false"\\} ([\\d.]+)$`, 'm').exec(metrics);
    expect(days, metrics.slice(0, 500)).to.not.equal(null);
    expect(Number(days![1])).to.be.within(5, 5.1);
  });

  it('keeps the SCIM side in step with directory edits', async () => {
    await slapd.modify(`dn: uid=u0012,ou=people,${SUFFIX}\nchangetype: modify\nreplace: title\ntitle: Edited While Running\n`);
    await waitFor('the edit on the SCIM side', 20_000, () => (sandbox.users().some((u) => u.title === 'Edited While Running') ? true : undefined));
  });

  it('a key regenerated on the SCIM side: /readyz 503 naming the key, no write with it, one alert; the new key in tokenFile recovers without a restart', async () => {
    const pid = daemon.pid;
    sandbox.setToken(SECOND_KEY);
    sandbox.resetRequests();
    await slapd.modify(`dn: uid=u0013,ou=people,${SUFFIX}\nchangetype: modify\nreplace: title\ntitle: Needs The New Key\n`);
    const notReady = await waitFor('/readyz 503', 20_000, async () => {
      const r = await readyz();
      return r.status === 503 ? r.text : undefined;
    });
    expect(notReady).to.include(keyFingerprint(FIRST_KEY));
    expect(notReady).to.match(/was rejected/);
    // Two more cycles with the dead key.
    await new Promise((r) => setTimeout(r, 4500));
    const rejected = sandbox.requests.filter((r) => r.status === 401);
    expect(rejected.length, 'it keeps checking').to.be.greaterThan(1);
    expect(rejected.every((r) => r.method === 'GET'), 'no write is sent with the dead key').to.equal(true);
    expect(alerts.filter((a) => /was rejected/.test(a)), 'alerted once').to.have.length(1);

    writeFileSync(`${dir}/scim.key`, SECOND_KEY);
    await waitFor('/readyz 200 again', 20_000, async () => ((await readyz()).status === 200 ? true : undefined));
    expect(daemon.pid).to.equal(pid);
    expect(daemon.exitCode).to.equal(null);
    await waitFor('the pending edit', 10_000, () => (sandbox.users().some((u) => u.title === 'Needs The New Key') ? true : undefined));
    expect(logs).to.include(`a new SCIM API key (fingerprint ${keyFingerprint(SECOND_KEY)}) was read from`);
  });

  it('never runs two cycles at once: a slow cycle makes the schedule skip ticks', async () => {
    sandbox.setFaults({ latencyMs: { min: 400, max: 400 } });
    await slapd.modify(
      Array.from({ length: 15 }, (_, i) => `dn: uid=u00${20 + i},ou=people,${SUFFIX}\nchangetype: modify\nreplace: title\ntitle: Slow Day ${i}\n`).join('\n'),
    );
    await waitFor('a skipped tick', 30_000, async () => {
      const m = /^ldap_scim_schedule_ticks_skipped_total (\d+)/m.exec((await get('/metrics')).text);
      return m && Number(m[1]) > 0 ? true : undefined;
    });
    expect(logs).to.match(/a scheduled cycle is skipped: the previous one is still running/);
    await waitFor('the slow cycle done', 30_000, () => (sandbox.users().filter((u) => /^Slow Day/.test(u.title ?? '')).length === 15 ? true : undefined));
    sandbox.setFaults(undefined);
  });

  it('SIGHUP with a broken config keeps running on the old one', async () => {
    writeFileSync(configFile, configText.replace('requestsPerSecond: 200', 'requestsPerSecond: fast'));
    daemon.kill('SIGHUP');
    await waitFor('the reload refused', 10_000, () => (/SIGHUP: the new config is not valid, keeping the running one: .*target\.rateLimit\.requestsPerSecond/.test(logs) ? true : undefined));
    expect(daemon.exitCode).to.equal(null);
    expect((await get('/healthz')).status).to.equal(200);
    writeFileSync(configFile, configText);
  });

  it('SIGTERM in the middle of a cycle: exits 0 within a few seconds, and a rerun converges with no duplicate', async () => {
    sandbox.setFaults({ latencyMs: { min: 300, max: 300 } });
    await slapd.modify(
      Array.from({ length: 10 }, (_, i) => `dn: uid=term${i},ou=people,${SUFFIX}\nchangetype: add\nobjectClass: inetOrgPerson\nuid: term${i}\ncn: Term ${i}\nsn: Term\nmail: term${i}@example.test\n`).join('\n'),
    );
    sandbox.resetRequests();
    await waitFor('the cycle under way', 20_000, () => (sandbox.requests.some((r) => r.method === 'POST') ? true : undefined));
    const started = Date.now();
    daemon.kill('SIGTERM');
    const code = await waitFor('the exit', 15_000, () => daemon.exitCode ?? undefined);
    expect(code).to.equal(0);
    expect(Date.now() - started).to.be.lessThan(10_000);
    expect(sandbox.users().filter((u) => u.userName.startsWith('term')).length, 'stopped part-way').to.be.lessThan(10);
    sandbox.setFaults(undefined);

    const rerun = await new Promise<number | null>((resolve) => {
      const child = spawn(process.execPath, [CLI, 'sync', '--config', configFile], { env: { ...process.env, LDAP_SCIM_LOG_LEVEL: 'error' } });
      child.on('exit', resolve);
    });
    expect(rerun).to.equal(0);
    expect(sandbox.users().filter((u) => u.userName.startsWith('term'))).to.have.length(10);
    expect(sandbox.requests.filter((r) => r.method === 'POST' && r.status === 409), 'no create sent twice').to.have.length(0);
  });

  it('never prints the bind password or a key', () => {
    expect(logs.length).to.be.greaterThan(1000);
    for (const secret of [slapd.rootPassword, FIRST_KEY, SECOND_KEY]) expect(logs).to.not.include(secret);
    for (const alert of alerts) for (const secret of [slapd.rootPassword, FIRST_KEY, SECOND_KEY]) expect(alert).to.not.include(secret);
  });
});
