import { expect } from 'chai';
import type { Config } from '../../src/config/load.js';
import { Reconciler } from '../../src/sync/cycle.js';
import { activeDirectoryConfig, adDirectoryLdif, type AdDirectory } from '../support/ad-directory.js';
import { startSambaDc, type SambaDc } from '../support/samba-dc.js';
import { listAll, type ViewGroup, type ViewUser } from '../support/scim-view.js';
import { startScim, writeConfig, type ScimUnderTest } from '../support/sync-env.js';

// The daemon's Reconciler, kept between cycles as `ldap-scim run` keeps it, polling a real Samba AD DC: changes by
// uSNChanged, people gone by the census of objectGUIDs. The first cycle is the only full read.
describe('the resident reconciler: polls on Active Directory (Samba AD DC)', function () {
  this.timeout(300_000);
  let dc: SambaDc;
  let scim: ScimUnderTest;
  let ad: AdDirectory;
  let config: Config;
  let reconciler: Reconciler;

  const users = () => listAll<ViewUser>(scim.url, scim.token, 'Users');
  const groups = () => listAll<ViewGroup>(scim.url, scim.token, 'Groups');
  const mailOf = (dn: string) => `${/CN=User (\d{4})/.exec(dn)![1]}`;
  const userByDn = async (dn: string) => (await users()).find((u) => u.userName.includes(`user.${mailOf(dn)}@`));
  const poll = async () => {
    const { report } = await reconciler.cycle({ poll: true });
    expect(report.exitCode, report.error).to.equal(0);
    return report;
  };

  before(async () => {
    dc = await startSambaDc();
    ad = adDirectoryLdif({ baseDn: dc.baseDn, users: 120, bigGroupMembers: 40 });
    // A second OU inside the users' scope, there before the first read: a move into it is a move within the scope.
    await dc.add(`${ad.ldif}\ndn: OU=Moved,${ad.peopleDn}\nobjectClass: top\nobjectClass: organizationalUnit\nou: Moved\n`);
    scim = await startScim('sandbox');
    const { load } = writeConfig({
      ldapUrl: dc.url,
      suffix: dc.baseDn,
      bindDn: dc.adminUpn,
      bindPassword: dc.adminPassword,
      scimUrl: scim.url,
      token: scim.token,
      pageSize: 500,
      sourceExtra: '  delta: { enabled: true, censusSeconds: 1 }\n',
    });
    config = activeDirectoryConfig(load(), ad);
    reconciler = new Reconciler(config, { resident: true });
  });
  after(async () => {
    reconciler?.close();
    await scim?.stop();
    await dc?.stop();
  });

  it('the first cycle reads everything; a poll after it finds nothing and writes nothing', async () => {
    const first = await poll();
    expect(first.directory.read.kind).to.equal('full');
    scim.sandbox!.resetRequests();
    const quiet = await poll();
    expect(quiet.directory.read.poll).to.equal('quiet');
    expect(scim.sandbox!.writeCount()).to.equal(0);
  });

  it('a title edit arrives through a poll that read only that entry', async () => {
    const dn = ad.users[10]!;
    await dc.modify(`dn: ${dn}\nchangetype: modify\nreplace: title\ntitle: Polled In AD\n`);
    const report = await poll();
    expect(report.directory.read).to.include({ kind: 'delta', poll: 'changed' });
    expect(report.directory.userEntries).to.equal(1);
    expect(report.done).to.deep.equal({ updateUser: 1 });
    expect((await userByDn(dn))?.title).to.equal('Polled In AD');
  });

  it('a member added to a nested group reaches the group that nests it', async () => {
    const leaf = ad.nesting.leaves[0]!;
    // Everyone is in the top group already (through the departments): the middle one is where a newcomer shows.
    const parentName = /^CN=([^,]+)/i.exec(ad.nesting.middle[0]!)![1]!;
    const inTop = new Set(((await groups()).find((g) => g.displayName === parentName)!.members ?? []).map((m) => m.value));
    const scimUsers = await users();
    const outsider = ad.users.find((dn) => {
      const u = scimUsers.find((v) => v.userName.includes(`user.${mailOf(dn)}@`));
      return u && u.active !== false && !inTop.has(u.id);
    });
    expect(outsider, `someone outside ${parentName}`).to.not.equal(undefined);
    const id = (await userByDn(outsider!))!.id;
    await dc.modify(`dn: ${leaf}\nchangetype: modify\nadd: member\nmember: ${outsider!}\n`);
    const report = await poll();
    expect(report.directory.read.poll).to.equal('changed');
    expect(((await groups()).find((g) => g.displayName === parentName)!.members ?? []).map((m) => m.value)).to.include(id);
  });

  it('a rename and a move within the scope keep every membership: the linked member values follow, the groups do not change', async () => {
    const memberships = async () => Object.fromEntries((await groups()).map((g) => [g.displayName, (g.members ?? []).map((m) => m.value).sort()]));
    const before = await memberships();
    const enabled = ad.groups.sales!.members.filter((u) => !ad.disabledUsers.includes(u) && u !== ad.userWithoutMail);
    const [renamed, moved] = enabled.slice(1, 3) as [string, string];
    expect(before.sales).to.include((await userByDn(renamed))!.id);
    await dc.modify(
      `dn: ${renamed}\nchangetype: modrdn\nnewrdn: ${renamed.split(',')[0]} Renamed\ndeleteoldrdn: 1\n\n` +
        `dn: ${moved}\nchangetype: modrdn\nnewrdn: ${moved.split(',')[0]}\ndeleteoldrdn: 1\nnewsuperior: OU=Moved,${ad.peopleDn}\n`,
    );
    const report = await poll();
    expect(report.directory.read).to.include({ kind: 'delta', poll: 'changed' });
    expect(await memberships()).to.deep.equal(before);
  });

  it('a deletion and a move out of scope are found by the census and deprovisioned, with no full read', async () => {
    const enabled = ad.users.filter((u) => !ad.disabledUsers.includes(u) && u !== ad.userWithoutMail);
    const [deleted, moved] = enabled.slice(50, 52) as [string, string];
    await dc.modify(`dn: ${deleted}\nchangetype: delete\n\ndn: ${moved}\nchangetype: modrdn\nnewrdn: ${moved.split(',')[0]}\ndeleteoldrdn: 1\nnewsuperior: ${ad.elsewhereDn}\n`);
    await new Promise((r) => setTimeout(r, 1_100)); // the census interval
    const report = await poll();
    expect(report.directory.read).to.include({ kind: 'delta', poll: 'changed', census: true });
    expect(report.done.deactivateUser).to.equal(2);
    expect((await userByDn(deleted))?.active).to.equal(false);
    expect((await userByDn(moved))?.active).to.equal(false);
  });
});
