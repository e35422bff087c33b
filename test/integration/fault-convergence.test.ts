import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { sampleDirectoryLdif } from '../../src/demo/sample-directory.js';
import { startThrowawaySlapd, type ThrowawaySlapd } from '../../src/demo/throwaway-slapd.js';
import { startSandbox, type RunningSandbox } from '../../src/sandbox/server.js';
import { expectScimMatchesDirectory, writeConfig } from '../support/sync-env.js';

const SUFFIX = 'dc=example,dc=test';
const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
const BIND_PASSWORD = 'bind-pw-that-must-never-show-9f3k';
const TOKEN = 'scim-key-that-must-never-show-7q2x';

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // debug: every log line there is, so the secrets check below reads as much output as the product can make.
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, LDAP_SCIM_LOG_LEVEL: 'debug' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

// A bad day on the SCIM side: 15% of writes fail (half of them after the write took effect), connections reset,
// and a rate limit tighter than the client's pace. The sync must converge within three runs with no duplicate,
// and nothing it prints or stores may contain the bind password or the API key.
describe('convergence under injected SCIM faults', function () {
  this.timeout(300_000);
  let slapd: ThrowawaySlapd;
  let sandbox: RunningSandbox;

  before(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build (npm test does)`);
    slapd = await startThrowawaySlapd({ suffix: SUFFIX, ldif: sampleDirectoryLdif({ suffix: SUFFIX, users: 200 }).ldif, rootPassword: BIND_PASSWORD });
    sandbox = await startSandbox({
      token: TOKEN,
      rateLimit: { requestsPerSecond: 60 },
      faults: { errorRate: 0.15, afterWriteRate: 0.5, kinds: ['500', '503', 'reset'], seed: 42 },
    });
  });
  after(async () => {
    await sandbox?.close();
    await slapd?.stop();
  });

  it('converges in at most three runs, with no duplicate and no secret in any output or file', async () => {
    const { file, dir, load } = writeConfig({ ldapUrl: slapd.url, suffix: SUFFIX, bindDn: slapd.rootDn, bindPassword: BIND_PASSWORD, scimUrl: sandbox.url, token: TOKEN });
    // The client paces at 100/s against a server that allows 60/s: 429s with Retry-After are part of the day.
    writeFileSync(file, readFileSync(file, 'utf8').replace('requestsPerSecond: 200', 'requestsPerSecond: 100'));
    const outputs: string[] = [];
    let runs = 0;
    let last = { code: null as number | null, stdout: '', stderr: '' };
    while (runs < 3) {
      last = await cli(['sync', '--config', file, '--json']);
      outputs.push(last.stdout, last.stderr);
      runs++;
      if (last.code === 0) break;
    }
    expect(last.code, `not converged after ${runs} runs: ${last.stdout.slice(0, 2000)}`).to.equal(0);
    const faults = sandbox.faultCount();
    expect(faults.before + faults.after, 'faults were injected').to.be.greaterThan(20);
    expect(faults.after, 'some failed after taking effect').to.be.greaterThan(5);
    expect(sandbox.requests.some((r) => r.status === 429), 'the rate limit was hit').to.equal(true);

    sandbox.setFaults(undefined);
    const config = load();
    const { users } = await expectScimMatchesDirectory(config, { kind: 'sandbox', url: sandbox.url, token: TOKEN, sandbox, stop: async () => undefined });
    expect(users).to.have.length(197);
    expect(new Set(users.map((u) => u.userName.toLowerCase())).size).to.equal(users.length);

    // Now a change under faults again, and the quiet cycle after it.
    sandbox.setFaults({ errorRate: 0.15, afterWriteRate: 0.5, seed: 43 });
    await slapd.modify([10, 11, 12, 13, 14].map((n) => `dn: uid=u00${n},ou=people,${SUFFIX}\nchangetype: modify\nreplace: title\ntitle: Faulty Day ${n}\n`).join('\n'));
    for (let i = 0; i < 3; i++) {
      last = await cli(['sync', '--config', file]);
      outputs.push(last.stdout, last.stderr);
      if (last.code === 0) break;
    }
    expect(last.code, last.stdout).to.equal(0);
    sandbox.setFaults(undefined);
    sandbox.resetRequests();
    const quiet = await cli(['sync', '--config', file]);
    outputs.push(quiet.stdout, quiet.stderr);
    expect(quiet.code).to.equal(0);
    expect(sandbox.writeCount()).to.equal(0);

    // Every other command, with their outputs, for the secrets check.
    for (const args of [['plan', '--config', file, '--format', 'csv'], ['plan', '--config', file, '--format', 'json'], ['check', '--config', file], ['explain', '--config', file, '--user', 'u0010'], ['sync', '--config', file, '--dry-run', '--json']]) {
      const run = await cli(args);
      outputs.push(run.stdout, run.stderr);
    }
    // A rejected key and a wrong bind password produce error paths of their own.
    const wrongKey = writeConfig({ ldapUrl: slapd.url, suffix: SUFFIX, bindDn: slapd.rootDn, bindPassword: BIND_PASSWORD, scimUrl: sandbox.url, token: TOKEN + '-revoked' });
    const wrongBind = writeConfig({ ldapUrl: slapd.url, suffix: SUFFIX, bindDn: slapd.rootDn, bindPassword: BIND_PASSWORD + '-old', scimUrl: sandbox.url, token: TOKEN });
    for (const f of [wrongKey.file, wrongBind.file]) {
      const run = await cli(['sync', '--config', f]);
      expect(run.code).to.be.oneOf([1, 3]);
      outputs.push(run.stdout, run.stderr);
    }
    // The state folder holds the cycle reports (reports/) and the audit trail too: every file in it is looked at.
    const files = (readdirSync(path.join(dir, 'state'), { recursive: true }) as string[])
      .map((f) => path.join(dir, 'state', f))
      .filter((f) => statSync(f).isFile())
      .map((f) => readFileSync(f, 'utf8'));
    expect(files.some((f) => f.includes('"op":"createUser"')), 'the audit trail is among the files looked at').to.equal(true);
    const everything = [...outputs, ...files].join('\n');
    expect(everything.length).to.be.greaterThan(10_000);
    for (const secret of [BIND_PASSWORD, TOKEN, BIND_PASSWORD + '-old', TOKEN + '-revoked']) {
      expect(everything.includes(secret), `a secret appears in the output or the state files`).to.equal(false);
    }
  });
});
