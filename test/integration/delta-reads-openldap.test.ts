import { existsSync, statSync } from 'node:fs';
import { expect } from 'chai';
import { Client } from 'ldapts';
import type { Config } from '../../src/config/load.js';
import { sampleDirectoryLdif } from '../../src/demo/sample-directory.js';
import { startThrowawaySlapd, type ThrowawaySlapd } from '../../src/demo/throwaway-slapd.js';
import { ldifStamps } from '../../src/directory/change-tracking.js';
import { directoryMemoryFileFor } from '../../src/state/directory-memory.js';
import { runCheck } from '../../src/sync/check.js';
import { runCycle } from '../../src/sync/cycle.js';
import { listAll, type ViewUser } from '../support/scim-view.js';
import { expectScimMatchesDirectory, startScim, writeConfig, type ScimUnderTest } from '../support/sync-env.js';

const SUFFIX = 'dc=example,dc=test';
const dn = (n: number) => `uid=u${String(n).padStart(4, '0')},ou=people,${SUFFIX}`;

// Delta reads on a real slapd, by modifyTimestamp. The sample is loaded with timestamps a minute apart in 2025: a
// delta then returns what the test changes plus the newest entry of the last read (the cursor's overlap), where a
// load seconds before the first read would put every entry inside the overlap.
describe('delta reads: OpenLDAP (entryCSN)', function () {
  this.timeout(120_000);
  let slapd: ThrowawaySlapd;
  let scim: ScimUnderTest;
  let config: Config;

  before(async () => {
    const { ldif } = sampleDirectoryLdif({ suffix: SUFFIX, users: 200 });
    let minute = 0;
    const dated = ldif.replace(/^dn: .+$/gm, (line) => `${line}\n${ldifStamps(Date.UTC(2025, 0, 1) + 60_000 * minute++)}`);
    slapd = await startThrowawaySlapd({ suffix: SUFFIX, ldif: dated });
    scim = await startScim('sandbox');
    config = writeConfig({
      ldapUrl: slapd.url,
      suffix: SUFFIX,
      bindDn: slapd.rootDn,
      bindPassword: slapd.rootPassword,
      scimUrl: scim.url,
      token: scim.token,
      sourceExtra: '  delta: { enabled: true, fullReadEvery: 4 }\n',
    }).load();
  });
  after(async () => {
    await scim?.stop();
    await slapd?.stop();
  });

  let inScope = 0;
  const mails = new Map<number, string>();
  const userByName = async (n: number) => {
    const found = (await listAll<ViewUser>(scim.url, scim.token, 'Users')).find((u) => u.userName === mails.get(n));
    expect(found, `the SCIM user of ${dn(n)}`).to.not.equal(undefined);
    return found!;
  };

  it('the first cycle reads everything and remembers it, readable by the service account only', async () => {
    const client = new Client({ url: slapd.url });
    for (const n of [10, 100]) {
      const { searchEntries } = await client.search(dn(n), { scope: 'base', attributes: ['mail'] });
      mails.set(n, String(searchEntries[0]!.mail).toLowerCase());
    }
    await client.unbind();
    const { report } = await runCycle(config);
    expect(report.exitCode, report.error).to.equal(0);
    expect(report.directory.read).to.deep.equal({ kind: 'full', reason: 'no state file yet' });
    expect(report.directory.userEntries).to.equal(200);
    inScope = report.directory.usersInScope;
    expect(statSync(directoryMemoryFileFor(config.state.path)).mode & 0o777).to.equal(0o600);
  });

  it('a delta reads only the changed entry, and a deleted person stays active until the full read', async () => {
    await slapd.modify(`dn: ${dn(10)}\nchangetype: modify\nreplace: title\ntitle: Delta Title\n\ndn: ${dn(100)}\nchangetype: delete\n`);
    scim.sandbox!.resetRequests();
    const delta = await runCycle(config);
    expect(delta.report.exitCode, delta.report.error).to.equal(0);
    expect(delta.report.directory.read.kind).to.equal('delta');
    expect(delta.report.directory.userEntries, 'the changed entry and the newest of the last read').to.be.within(1, 2);
    expect(delta.report.directory.usersInScope, 'the others are carried over, the deleted one too').to.equal(inScope);
    expect(delta.report.done).to.deep.equal({ updateUser: 1 });
    expect(scim.sandbox!.writeCount()).to.equal(1);
    expect((await userByName(10)).title).to.equal('Delta Title');
    expect((await userByName(100)).active).to.equal(true);
    const { lines } = await runCheck(config);
    expect(lines.find((l) => l.what === 'state')?.text).to.match(/delta reads: 1 since the last full read \(\d{4}-.+\); a full read every 4 cycles$/);
  });

  it('a quiet delta writes nothing; every fullReadEvery-th read is full and deactivates who left, retried by a delta if it failed', async () => {
    scim.sandbox!.resetRequests();
    const quiet = await runCycle(config);
    expect(quiet.report.directory.read.kind).to.equal('delta');
    expect(quiet.report.exitCode, quiet.report.error).to.equal(0);
    expect(scim.sandbox!.writeCount()).to.equal(0);

    const third = await runCycle(config);
    expect(third.report.directory.read.kind).to.equal('delta');
    // The full read finds the deleted person gone, but the SCIM side fails that call.
    scim.sandbox!.setFaults({ errorRate: 1, kinds: ['500'] });
    const full = await runCycle(config);
    scim.sandbox!.setFaults(undefined);
    expect(full.report.directory.read.kind).to.equal('full');
    expect(full.report.directory.read.reason).to.match(/source\.delta\.fullReadEvery/);
    expect(full.report.directory.userEntries).to.equal(199);
    expect(full.report.failures.map((f) => f.operation).sort()).to.deep.equal(['deactivateUser', 'removeMembers', 'removeMembers']);
    // The next cycle is a delta again, and still deprovisions them: the full read's verdict is remembered.
    const retry = await runCycle(config);
    expect(retry.report.directory.read.kind).to.equal('delta');
    expect(retry.report.done).to.deep.equal({ deactivateUser: 1, removeMembers: 2 });
    expect((await userByName(100)).active).to.equal(false);
    await expectScimMatchesDirectory(config, scim);
  });

  it('an OU edited after the last change to any user makes one full read, not one per cycle', async () => {
    await slapd.modify(`dn: ou=people,${SUFFIX}\nchangetype: modify\nreplace: description\ndescription: edited\n`);
    const edited = await runCycle(config);
    expect(edited.report.directory.read.kind).to.equal('full');
    expect(edited.report.directory.read.reason).to.match(/^ou=people,dc=example,dc=test was created, renamed, moved or edited since the last full read/);
    // The OU is still the newest entry, inside the cursor's overlap, but its change has been taken in.
    for (let i = 0; i < 2; i++) expect((await runCycle(config)).report.directory.read.kind).to.equal('delta');
  });

  it('--full-read reads everything on request; with delta reads off the memory is dropped', async () => {
    const asked = await runCycle(config, { fullRead: true });
    expect(asked.report.directory.read).to.deep.equal({ kind: 'full', reason: 'asked for (--full-read)' });
    expect(existsSync(directoryMemoryFileFor(config.state.path))).to.equal(true);
    const off = await runCycle({ ...config, source: { ...config.source, delta: { ...config.source.delta, enabled: false, fullReadEvery: 4 } } });
    expect(off.report.exitCode, off.report.error).to.equal(0);
    expect(existsSync(directoryMemoryFileFor(config.state.path))).to.equal(false);
  });
});
