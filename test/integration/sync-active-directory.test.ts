import { Client } from 'ldapts';
import { expect } from 'chai';
import type { Config } from '../../src/config/load.js';
import { formatObjectGuid } from '../../src/directory/dialects/active-directory.js';
import { runCycle } from '../../src/sync/cycle.js';
import { adDirectoryLdif, type AdDirectory } from '../support/ad-directory.js';
import { startRangingProxy, type RangingProxy } from '../support/ranging-proxy.js';
import { startSambaDc, type SambaDc } from '../support/samba-dc.js';
import { listAll, type ViewUser } from '../support/scim-view.js';
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
    const base = load();
    config = {
      ...base,
      source: {
        ...base.source,
        kind: 'activedirectory',
        users: { baseDn: ad.peopleDn, scope: 'sub' },
        groups: { baseDn: ad.groupsDn, scope: 'sub' },
        usersFilter: '(&(objectCategory=person)(objectClass=user))',
        groupsFilter: '(objectClass=group)',
      },
      mapping: (await import('../../src/mapping/rules.js')).resolveMapping('activedirectory', {}),
      target: { ...base.target, rateLimit: { requestsPerSecond: 400, concurrency: 8 } },
    };
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
