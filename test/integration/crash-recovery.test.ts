import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { sampleDirectoryLdif } from '../../src/demo/sample-directory.js';
import { startThrowawaySlapd, type ThrowawaySlapd } from '../../src/demo/throwaway-slapd.js';
import { seededRandom } from '../../src/seeded-random.js';
import { expectScimMatchesDirectory, startScim, writeConfig, type ScimUnderTest } from '../support/sync-env.js';

const SUFFIX = 'dc=example,dc=test';
const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
const KILLS = 6;

/** Runs `sync`; kills it with SIGKILL after `killAfterMs` if it is still running. Resolves with its exit. */
function syncProcess(configFile: string, killAfterMs?: number): Promise<{ code: number | null; killed: boolean; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, 'sync', '--config', configFile], { env: { ...process.env, LDAP_SCIM_LOG_LEVEL: 'warn' } });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    let killed = false;
    const timer = killAfterMs === undefined ? undefined : setTimeout(() => {
      killed = child.kill('SIGKILL');
    }, killAfterMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, killed: killed && code === null, output });
    });
  });
}

// kill -9 at any moment, then a rerun: no duplicate, no lost change, and no create sent twice, because every create
// is announced in the journal before it is sent and looked up (not re-sent) when its answer was lost.
describe('crash recovery: sync killed with -9 at random points', function () {
  this.timeout(240_000);
  let slapd: ThrowawaySlapd;
  let scim: ScimUnderTest;

  before(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build (npm test does)`);
    slapd = await startThrowawaySlapd({ suffix: SUFFIX, ldif: sampleDirectoryLdif({ suffix: SUFFIX, users: 200 }).ldif });
    scim = await startScim('sandbox');
  });
  after(async () => {
    await scim?.stop();
    await slapd?.stop();
  });

  it(`converges after ${KILLS} kills with no duplicate account and no create sent twice`, async () => {
    const { file, load } = writeConfig({ ldapUrl: slapd.url, suffix: SUFFIX, bindDn: slapd.rootDn, bindPassword: slapd.rootPassword, scimUrl: scim.url, token: scim.token });
    // Slow enough (40 calls/s, checkpoints every 20) that kills land among creates, membership changes and saves.
    writeFileSync(file, readFileSync(file, 'utf8').replace('requestsPerSecond: 200', 'requestsPerSecond: 40'));
    const random = seededRandom(7);
    let kills = 0;
    const outputs: string[] = [];
    for (let run = 0; run < 20 && kills < KILLS; run++) {
      if (run === 3) {
        // The directory keeps changing between crashes: these must not be lost either.
        await slapd.modify(`dn: uid=u0007,ou=people,${SUFFIX}\nchangetype: modify\nreplace: title\ntitle: Changed Between Crashes\n`);
        await slapd.modify(`dn: uid=u0008,ou=people,${SUFFIX}\nchangetype: delete\n`);
      }
      const result = await syncProcess(file, 150 + Math.floor(random() * 1500));
      outputs.push(result.output);
      if (result.killed) kills++;
    }
    expect(kills, 'enough runs were killed mid-way').to.equal(KILLS);

    let final = await syncProcess(file);
    for (let i = 0; i < 2 && final.code !== 0; i++) final = await syncProcess(file);
    outputs.push(final.output);
    expect(final.code, final.output).to.equal(0);

    const config = load();
    const { users } = await expectScimMatchesDirectory(config, scim);
    const u7 = users.find((u) => u.title === 'Changed Between Crashes');
    expect(u7, 'the change made between crashes arrived').to.not.equal(undefined);
    const posts = scim.sandbox!.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/Users'));
    expect(posts.filter((r) => r.status === 409), 'no user create was sent twice').to.have.length(0);
    expect(posts.filter((r) => r.status === 201).length).to.equal(users.length);
    const groupPosts = scim.sandbox!.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/Groups'));
    expect(groupPosts.filter((r) => r.status === 409), 'no group create was sent twice').to.have.length(0);
    for (const out of outputs) {
      expect(out).to.not.include(slapd.rootPassword);
      expect(out).to.not.include(scim.token);
    }
  });
});
