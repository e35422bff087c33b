import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from 'ldapts';
import { expect } from 'chai';
import type { Config } from '../../src/config/load.js';
import { filetime, formatObjectGuid } from '../../src/directory/dialects/active-directory.js';
import { directoryMemoryFileFor, type DirectoryMemory } from '../../src/state/directory-memory.js';
import { runCycle } from '../../src/sync/cycle.js';
import { activeDirectoryConfig, adDirectoryLdif, type AdDirectory } from '../support/ad-directory.js';
import { startRangingProxy, type RangingProxy } from '../support/ranging-proxy.js';
import { startSambaDc, type SambaDc } from '../support/samba-dc.js';
import { listAll, type ViewGroup, type ViewUser } from '../support/scim-view.js';
import { expectScimMatchesDirectory, startScim, writeConfig, type ScimUnderTest } from '../support/sync-env.js';

// Active Directory end to end on a real Samba AD DC. The sync reads through a proxy that hands out members the way
// Windows does (member;range=0-1499, then the rest on request), which Samba itself never does.
describe('sync cycle: Active Directory (Samba AD DC) → sandbox', function () {
  this.timeout(300_000);
  let dc: SambaDc;
  let proxy: RangingProxy;
  let scim: ScimUnderTest;
  let ad: AdDirectory;
  let config: Config;

  before(async () => {
    dc = await startSambaDc();
    ad = adDirectoryLdif({ baseDn: dc.baseDn, users: 1600, bigGroupMembers: 1550 });
    await dc.add(ad.ldif);
    proxy = await startRangingProxy({ target: dc.url });
    scim = await startScim('sandbox');
    const { load } = writeConfig({ ldapUrl: proxy.url, suffix: dc.baseDn, bindDn: dc.adminUpn, bindPassword: dc.adminPassword, scimUrl: scim.url, token: scim.token, pageSize: 500 });
    const ready = activeDirectoryConfig(load(), ad);
    config = { ...ready, target: { ...ready.target, rateLimit: { requestsPerSecond: 400, concurrency: 8 } } };
  });
  after(async () => {
    await scim?.stop();
    await proxy?.stop();
    await dc?.stop();
  });

  it('first sync: objectGUIDs in Windows form, no disabled account active, the big group whole, nesting flattened', async () => {
    const { report } = await runCycle(config);
    expect(report.exitCode, report.error).to.equal(0);
    expect(proxy.rangedEntries, 'members came in ranges').to.be.greaterThan(0);
    const { users, groups } = await expectScimMatchesDirectory(config, scim);
    expect(users.every((u) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(u.externalId ?? ''))).to.equal(true);
    expect(users.filter((u) => u.active !== false)).to.have.length(users.length);

    // The externalId of one user is its objectGUID as Windows prints it, read straight from the DC.
    const client = new Client({ url: dc.url });
    await client.bind(dc.adminUpn, dc.adminPassword);
    const { searchEntries } = await client.search(ad.users[9]!, { scope: 'base', attributes: ['objectGUID', 'mail'], explicitBufferAttributes: ['objectGUID'] });
    await client.unbind();
    const guid = formatObjectGuid(searchEntries[0]!.objectGUID as Buffer)!;
    expect(users.find((u) => u.userName === String(searchEntries[0]!.mail).toLowerCase())?.externalId).to.equal(guid);

    const big = groups.find((g) => g.displayName === 'big-group')!;
    const bigDisabled = ad.bigGroup.members.filter((m) => ad.disabledUsers.includes(m) || m === ad.userWithoutMail).length;
    expect(big.members ?? []).to.have.length(1550 - bigDisabled);
    expect(groups.map((g) => g.displayName)).to.not.include('site-admins');
    // The nesting is given as DNs: CN=<name>,OU=Groups,... and the SCIM group's name is the cn.
    const byDn = (dn: string) => groups.find((g) => g.displayName === /^CN=([^,]+)/i.exec(dn)![1])!;
    const everyone = new Set((byDn(ad.nesting.top).members ?? []).map((m) => m.value));
    const leafMembers = ad.nesting.leaves.flatMap((leaf) => (byDn(leaf).members ?? []).map((m) => m.value));
    expect(leafMembers.length, 'the leaves have members').to.be.greaterThan(0);
    for (const m of leafMembers) expect(everyone.has(m), `a member two levels down is in ${ad.nesting.top}`).to.equal(true);
    expect(report.skipped.some((s) => s.dn === ad.userWithoutMail && /no email/.test(s.reason))).to.equal(true);
  });

  it('3 disabled, 1 moved out of scope, 2 titles: at most 20 writes, exactly those 4 deactivated; then a quiet cycle', async () => {
    const enabled = ad.users.filter((u) => !ad.disabledUsers.includes(u) && u !== ad.userWithoutMail);
    const [d1, d2, d3, moved, t1, t2] = enabled.slice(100, 106) as [string, string, string, string, string, string];
    await dc.modify(
      [d1, d2, d3].map((dn) => `dn: ${dn}\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 514\n`).join('\n') +
        `\ndn: ${moved}\nchangetype: modrdn\nnewrdn: ${moved.split(',')[0]}\ndeleteoldrdn: 1\nnewsuperior: ${ad.elsewhereDn}\n` +
        [t1, t2].map((dn) => `\ndn: ${dn}\nchangetype: modify\nreplace: title\ntitle: Retitled In AD\n`).join(''),
    );
    scim.sandbox!.resetRequests();
    const { report } = await runCycle(config);
    expect(report.exitCode, report.error).to.equal(0);
    expect(report.calls.writes).to.be.at.most(20);
    expect(report.done.deactivateUser).to.equal(4);
    expect(report.done.updateUser).to.equal(2);
    expect(report.done.createUser ?? 0).to.equal(0);
    const users = await listAll<ViewUser>(scim.url, scim.token, 'Users');
    expect(users.filter((u) => u.active === false)).to.have.length(4);
    await expectScimMatchesDirectory(config, scim);

    scim.sandbox!.resetRequests();
    const quiet = await runCycle(config);
    expect(quiet.report.exitCode).to.equal(0);
    expect(scim.sandbox!.writeCount()).to.equal(0);
  });

  it('explain finds a person by sAMAccountName and shows the disabled state', async () => {
    const { explainUser } = await import('../../src/sync/explain.js');
    const disabled = ad.disabledUsers[0]!;
    const sam = `user.${/User (\d{4})/.exec(disabled)![1]}`;
    const { text, exitCode } = await explainUser(config, sam);
    expect(exitCode).to.equal(0);
    expect(text).to.include(`directory entry: ${disabled}`);
    expect(text).to.match(/^ {4}useraccountcontrol: 514$/m);
    expect(text).to.match(/^ {4}active: false$/m);
  });

  describe('delta reads (uSNChanged), then a full read', () => {
    let deltaScim: ScimUnderTest;
    let delta: Config;
    const mailOf = new Map<string, string>();
    const scimUser = async (dn: string) => {
      const found = (await listAll<ViewUser>(deltaScim.url, deltaScim.token, 'Users')).find((u) => u.userName === mailOf.get(dn));
      expect(found, `the SCIM user of ${dn}`).to.not.equal(undefined);
      return found!;
    };
    // Users no earlier test touched; 0-3 change, 4 moves out of scope, 5-6 are for the failure and the expiry.
    const pick = () => ad.users.filter((u) => !ad.disabledUsers.includes(u) && u !== ad.userWithoutMail).slice(300, 307);

    before(async () => {
      deltaScim = await startScim('sandbox');
      const dir = mkdtempSync(path.join(tmpdir(), 'ldap-scim-ad-delta-'));
      delta = {
        ...config,
        source: { ...config.source, treatExpiredAccountsAsDisabled: true, delta: { ...config.source.delta, enabled: true, fullReadEvery: 50 } },
        target: { ...config.target, url: deltaScim.url, token: deltaScim.token, maxRetries: 1 },
        state: { ...config.state, path: path.join(dir, 'snapshot.json') },
      };
      const client = new Client({ url: dc.url });
      await client.bind(dc.adminUpn, dc.adminPassword);
      for (const dn of pick()) {
        const { searchEntries } = await client.search(dn, { scope: 'base', attributes: ['mail'] });
        mailOf.set(dn, String(searchEntries[0]!.mail).toLowerCase());
      }
      await client.unbind();
      const first = await runCycle(delta);
      expect(first.report.exitCode, first.report.error).to.equal(0);
      expect(first.report.directory.read.kind).to.equal('full');
    });
    after(async () => {
      await deltaScim?.stop();
    });

    it('a delta reads exactly the changed entries in scope; a move out of scope waits for the full read', async () => {
      const [d1, d2, t1, , moved] = pick() as [string, string, string, string, string];
      await dc.modify(
        [d1, d2].map((dn) => `dn: ${dn}\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 514\n`).join('\n') +
          `\ndn: ${t1}\nchangetype: modify\nreplace: title\ntitle: Delta In AD\n` +
          `\ndn: ${moved}\nchangetype: modrdn\nnewrdn: ${moved.split(',')[0]}\ndeleteoldrdn: 1\nnewsuperior: ${ad.elsewhereDn}\n`,
      );
      deltaScim.sandbox!.resetRequests();
      const { report } = await runCycle(delta);
      expect(report.exitCode, report.error).to.equal(0);
      expect(report.directory.read.kind).to.equal('delta');
      expect(report.directory.userEntries, 'USNs are exact: no overlap').to.equal(3);
      // The two disabled people also leave their groups (removeMembers); nobody is created or deleted.
      expect(report.done).to.deep.include({ updateUser: 1, deactivateUser: 2 });
      expect(Object.keys(report.done).sort()).to.deep.equal(['deactivateUser', 'removeMembers', 'updateUser']);
      expect((await scimUser(d1)).active).to.equal(false);
      expect((await scimUser(t1)).title).to.equal('Delta In AD');
      expect((await scimUser(moved)).active, 'a delta never deactivates by absence').to.equal(true);
    });

    it('a change whose SCIM call failed is retried by the next delta, which no longer reads it', async () => {
      const t2 = pick()[5]!;
      await dc.modify(`dn: ${t2}\nchangetype: modify\nreplace: title\ntitle: Retried From Memory\n`);
      deltaScim.sandbox!.setFaults({ errorRate: 1, kinds: ['500'] });
      const failed = await runCycle(delta);
      deltaScim.sandbox!.setFaults(undefined);
      expect(failed.report.exitCode).to.equal(1);
      expect(failed.report.failures.map((f) => f.operation)).to.deep.equal(['updateUser']);
      const retried = await runCycle(delta);
      expect(retried.report.exitCode, retried.report.error).to.equal(0);
      expect(retried.report.directory.userEntries).to.equal(0);
      expect(retried.report.done).to.deep.equal({ updateUser: 1 });
      expect((await scimUser(t2)).title).to.equal('Retried From Memory');
    });

    it('an account that expires without any change is still caught by the delta (treatExpiredAccountsAsDisabled)', async () => {
      const expiring = pick()[6]!;
      await dc.modify(`dn: ${expiring}\nchangetype: modify\nreplace: accountExpires\naccountExpires: ${filetime(Date.now() + 3000)}\n`);
      const before = await runCycle(delta);
      expect(before.report.directory.userEntries).to.equal(1);
      expect(before.report.done).to.deep.equal({});
      await new Promise((r) => setTimeout(r, 3500));
      const after = await runCycle(delta);
      expect(after.report.directory.read.kind).to.equal('delta');
      expect(after.report.directory.userEntries).to.equal(1);
      expect(after.report.done).to.deep.equal({ deactivateUser: 1 });
      expect((await scimUser(expiring)).active).to.equal(false);
    });

    it('another DC (a different invocationId) forces a full read, which deactivates the one moved out', async () => {
      const memoryFile = directoryMemoryFileFor(delta.state.path);
      const memory = JSON.parse(readFileSync(memoryFile, 'utf8')) as DirectoryMemory;
      writeFileSync(memoryFile, JSON.stringify({ ...memory, cursor: { ...memory.cursor, server: '00000000-0000-0000-0000-000000000001' } }));
      const { report } = await runCycle(delta);
      expect(report.exitCode, report.error).to.equal(0);
      expect(report.directory.read.kind).to.equal('full');
      expect(report.directory.read.reason).to.match(/^another server answers now \([0-9a-f-]{36}; the last read was from 00000000-0000-0000-0000-000000000001\)$/);
      expect(report.done).to.deep.include({ deactivateUser: 1 });
      expect((await scimUser(pick()[4]!)).active).to.equal(false);
      const users = await listAll<ViewUser>(deltaScim.url, deltaScim.token, 'Users');
      // Disabled in the fixture, plus 2 disabled, 1 moved and 1 expired here.
      expect(users.filter((u) => u.active === false)).to.have.length(4);
    });

    it('an OU renamed inside the scope makes the read a full one, so its people keep their groups', async () => {
      const member = pick()[3]!;
      const inBigGroup = async () => {
        const big = (await listAll<ViewGroup>(deltaScim.url, deltaScim.token, 'Groups')).find((g) => g.displayName === 'big-group')!;
        const { id } = await scimUser(member);
        return (big.members ?? []).some((m) => m.value === id);
      };
      expect(ad.bigGroup.members).to.include(member);
      expect(await inBigGroup()).to.equal(true);
      const team = `OU=Team,${ad.peopleDn}`;
      await dc.modify(
        `dn: ${team}\nchangetype: add\nobjectClass: organizationalUnit\nou: Team\n\n` +
          `dn: ${member}\nchangetype: modrdn\nnewrdn: ${member.split(',')[0]}\ndeleteoldrdn: 1\nnewsuperior: ${team}\n`,
      );
      const created = await runCycle(delta);
      expect(created.report.directory.read).to.deep.equal({ kind: 'full', reason: `${team} was created, renamed, moved or edited since the last full read: the DNs of the people in it may have changed` });
      // Renaming the OU changes the member's DN (and the group's member value) but not the member's own entry.
      await dc.modify(`dn: ${team}\nchangetype: modrdn\nnewrdn: OU=Squad\ndeleteoldrdn: 1\n`);
      const renamed = await runCycle(delta);
      expect(renamed.report.exitCode, renamed.report.error).to.equal(0);
      expect(renamed.report.directory.read.kind).to.equal('full');
      expect(renamed.report.directory.read.reason).to.match(/^OU=Squad,OU=People,/i);
      expect(renamed.report.done).to.deep.equal({});
      expect(await inBigGroup()).to.equal(true);
      const quiet = await runCycle(delta);
      expect(quiet.report.directory.read.kind).to.equal('delta');
      expect(quiet.report.done).to.deep.equal({});
    });
  });

  it('reads over LDAPS with the DC certificate (its name via servername), and refuses it without', async () => {
    const tls = { ...config.source.tls, caFile: dc.caFile };
    const over = { ...config, source: { ...config.source, url: dc.ldapsUrl, tls: { ...tls, servername: dc.tlsServername } } };
    const { report } = await runCycle(over, { dryRun: true });
    expect(report.exitCode, report.error).to.equal(0);
    expect(report.directory.userEntries).to.equal(1599);
    const wrong = { ...config, source: { ...config.source, url: dc.ldapsUrl, tls } };
    const refused = await runCycle(wrong, { dryRun: true });
    expect(refused.report.exitCode).to.equal(1);
    expect(refused.report.error).to.match(/ERR_TLS_CERT_ALTNAME_INVALID.*source\.tls\.servername/);
  });
});
