import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { sampleDirectoryLdif } from '../../src/demo/sample-directory.js';
import { startThrowawaySlapd, type ThrowawaySlapd } from '../../src/demo/throwaway-slapd.js';
import { startSandbox, type RunningSandbox } from '../../src/sandbox/server.js';
import { writeConfig } from '../support/sync-env.js';

const SUFFIX = 'dc=example,dc=test';
const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
const RATE = 100;

// The pace is a sliding window a little longer than a second; a server whose limit is exactly the configured rate
// must never have a reason to answer 429, however many calls are in flight at once.
describe('pacing against a server whose limit is the configured rate', function () {
  this.timeout(120_000);
  let slapd: ThrowawaySlapd;
  let sandbox: RunningSandbox;

  before(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build (npm test does)`);
    slapd = await startThrowawaySlapd({ suffix: SUFFIX, ldif: sampleDirectoryLdif({ suffix: SUFFIX, users: 400 }).ldif });
    sandbox = await startSandbox({ token: 'pacing-token', rateLimit: { requestsPerSecond: RATE } });
  });
  after(async () => {
    await sandbox?.close();
    await slapd?.stop();
  });

  it('provisions several seconds of writes with 16 in flight and no 429', async () => {
    const { file } = writeConfig({ ldapUrl: slapd.url, suffix: SUFFIX, bindDn: slapd.rootDn, bindPassword: slapd.rootPassword, scimUrl: sandbox.url, token: 'pacing-token' });
    writeFileSync(file, readFileSync(file, 'utf8').replace('rateLimit: { requestsPerSecond: 200, concurrency: 4 }', `rateLimit: { requestsPerSecond: ${RATE}, concurrency: 16 }`));
    const run = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
      const child = spawn(process.execPath, [CLI, 'sync', '--config', file, '--json'], { env: { ...process.env, LDAP_SCIM_LOG_LEVEL: 'error' } });
      let stdout = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.on('exit', (code) => resolve({ code, stdout }));
    });
    expect(run.code, run.stdout.slice(0, 2000)).to.equal(0);
    const writes = sandbox.requests.filter((r) => r.method !== 'GET');
    expect(writes.length, 'enough writes to span several seconds').to.be.greaterThan(3 * RATE);
    expect(sandbox.requests.filter((r) => r.status === 429)).to.deep.equal([]);
  });
});
