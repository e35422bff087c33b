import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { Client, type Entry } from 'ldapts';
import { adDirectoryLdif, type AdDirectory } from '../support/ad-directory.js';
import { startSambaDc, type SambaDc } from '../support/samba-dc.js';

// The Samba AD DC harness and the AD fixture, checked with ldapts alone (not with the product's reader), so that the
// Active Directory dialect can rely on what is asserted here.

const USER_FILTER = '(&(objectCategory=person)(objectClass=user))';
const values = (v: Entry[string] | undefined): string[] => (v === undefined ? [] : (Array.isArray(v) ? v : [v]).map(String));

describe('Samba AD DC harness with the AD fixture (1,600 users)', function () {
  this.timeout(180_000);
  let dc: SambaDc;
  let dir: AdDirectory;
  let client: Client;
  const timings: Record<string, number> = {};

  async function timed<T>(name: string, f: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    try {
      return await f();
    } finally {
      timings[name] = Math.round(performance.now() - t0);
    }
  }
  async function guidOf(dn: string): Promise<Buffer> {
    const { searchEntries } = await client.search(dn, { scope: 'base', attributes: ['objectGUID'], explicitBufferAttributes: ['objectGUID'] });
    const guid = searchEntries[0]?.objectGUID;
    if (!Buffer.isBuffer(guid)) throw new Error(`no binary objectGUID on ${dn}`);
    return guid;
  }

  before(async () => {
    dc = await timed('start', () => startSambaDc());
    dir = adDirectoryLdif({ baseDn: dc.baseDn });
    await timed('load', () => dc.add(dir.ldif));
    client = new Client({ url: dc.url, timeout: 60_000, connectTimeout: 5_000 });
    await client.bind(dc.adminUpn, dc.adminPassword);
  });
  after(async () => {
    await client?.unbind().catch(() => undefined);
    if (dc) await timed('stop', () => dc.stop());
    console.log(`      samba-dc timings (ms): ${JSON.stringify(timings)}`);
  });

  it('refuses a second DC while one runs (ports 389/636 are fixed)', async () => {
    let error: unknown;
    await startSambaDc().catch((e: unknown) => (error = e));
    expect(String(error)).to.match(/already running/);
  });

  it('a paged search finds all 1,600 users under OU=People, with the fixture attributes', async () => {
    const { searchEntries } = await client.search(dir.peopleDn, {
      scope: 'sub',
      filter: USER_FILTER,
      attributes: ['sAMAccountName', 'userPrincipalName', 'mail', 'givenName', 'sn', 'displayName', 'title', 'department', 'company', 'userAccountControl', 'objectGUID'],
      explicitBufferAttributes: ['objectGUID'],
      paged: { pageSize: 500 },
    });
    expect(searchEntries).to.have.length(1600);
    const byDn = new Map(searchEntries.map((e) => [e.dn.toLowerCase(), e]));
    for (const dn of dir.users) expect(byDn.has(dn.toLowerCase()), dn).to.equal(true);
    const first = byDn.get(dir.users[0]!.toLowerCase())!;
    expect(first).to.include({ sAMAccountName: 'user.0001', userPrincipalName: 'user.0001@example.test', mail: 'user.0001@example.test', givenName: 'User', sn: '0001', title: 'Engineer', department: 'Engineering', company: 'Example Corp', userAccountControl: '544' });
    expect(values(byDn.get(dir.userWithoutMail.toLowerCase())!.mail)).to.deep.equal([]);
    const guids = new Set(searchEntries.map((e) => (e.objectGUID as Buffer).toString('hex')));
    expect(guids.size).to.equal(1600);
  });

  it('objectGUID comes back as 16 bytes when asked for as a binary attribute', async () => {
    const guid = await guidOf(dir.users[0]!);
    expect(guid).to.have.length(16);
    expect(guid.equals(Buffer.alloc(16))).to.equal(false);
    // Without explicitBufferAttributes ldapts returns a Buffer only when the 16 bytes are not valid UTF-8 and a string
    // otherwise: it depends on the GUID, so the dialect must always ask for objectGUID as a buffer.
  });

  it('the disabled users have userAccountControl 514 (ACCOUNTDISABLE), the others 544', async () => {
    expect(dir.disabledUsers).to.have.length(16);
    const disabled = await client.search(dir.peopleDn, { scope: 'sub', filter: '(userAccountControl=514)', attributes: ['userAccountControl'] });
    expect(disabled.searchEntries.map((e) => e.dn).sort()).to.deep.equal([...dir.disabledUsers].sort());
    const bitwise = await client.search(dir.peopleDn, { scope: 'sub', filter: `(&${USER_FILTER}(userAccountControl:1.2.840.113556.1.4.803:=2))`, attributes: ['dn'] });
    expect(bitwise.searchEntries).to.have.length(16);
    const enabled = await client.search(dir.peopleDn, { scope: 'sub', filter: '(userAccountControl=544)', attributes: ['dn'], paged: { pageSize: 1000 } });
    expect(enabled.searchEntries).to.have.length(1600 - 16);
  });

  it('groups: 1,550 direct members come back at once from Samba, nesting resolves with IN_CHAIN, memberOf is set', async () => {
    const big = await client.search(dir.bigGroup.dn, { scope: 'base', attributes: ['member'] });
    expect(values(big.searchEntries[0]!.member)).to.have.length(1550);
    const chain = await client.search(dir.peopleDn, {
      scope: 'sub',
      filter: `(&${USER_FILTER}(memberOf:1.2.840.113556.1.4.1941:=${dir.groups.engineering!.dn}))`,
      attributes: ['dn'],
      paged: { pageSize: 1000 },
    });
    expect(chain.searchEntries).to.have.length(1600 / 5); // every Engineering user, through backend/frontend
    const user = await client.search(dir.users[0]!, { scope: 'base', attributes: ['memberOf'] });
    expect(values(user.searchEntries[0]!.memberOf).sort()).to.deep.equal([dir.groups.engineering!.dn, dir.siteAdmins.dn, dir.bigGroup.dn].sort());
  });

  it('LDAPS works with the CA file and servername DC1.example.test, and fails on the name without it', async () => {
    const ca = readFileSync(dc.caFile);
    const tls = new Client({ url: dc.ldapsUrl, timeout: 10_000, connectTimeout: 5_000, tlsOptions: { ca, servername: dc.tlsServername } });
    try {
      await tls.bind(dc.adminUpn, dc.adminPassword);
      const { searchEntries } = await tls.search(dir.users[1]!, { scope: 'base', attributes: ['sAMAccountName'] });
      expect(searchEntries[0]!.sAMAccountName).to.equal('user.0002');
    } finally {
      await tls.unbind().catch(() => undefined);
    }

    const noName = new Client({ url: dc.ldapsUrl, timeout: 10_000, connectTimeout: 5_000, tlsOptions: { ca } });
    let error: unknown;
    try {
      await noName.bind(dc.adminUpn, dc.adminPassword);
    } catch (e) {
      error = e;
    } finally {
      await noName.unbind().catch(() => undefined);
    }
    expect((error as { code?: string } | undefined)?.code, String(error)).to.equal('ERR_TLS_CERT_ALTNAME_INVALID');
  });

  it('modify() applies changetype LDIF (title change, then a move with ldapmodify)', async () => {
    const dn = dir.users[9]!;
    await dc.modify(`dn: ${dn}\nchangetype: modify\nreplace: title\ntitle: Moved by LDIF\n-\n`);
    const before = await guidOf(dn);
    const newDn = dn.replace(dir.peopleDn, dir.elsewhereDn);
    await dc.modify(`dn: ${dn}\nchangetype: modrdn\nnewrdn: CN=User 0010\ndeleteoldrdn: 1\nnewsuperior: ${dir.elsewhereDn}\n`);
    expect((await guidOf(newDn)).equals(before)).to.equal(true);
    const { searchEntries } = await client.search(newDn, { scope: 'base', attributes: ['title'] });
    expect(searchEntries[0]!.title).to.equal('Moved by LDIF');
  });

  it('a move to OU=Elsewhere (modrdn with newSuperior) keeps objectGUID, raises uSNChanged, and updates member values', async () => {
    const dn = dir.users[0]!;
    const { searchEntries: [old] } = await client.search(dn, { scope: 'base', attributes: ['objectGUID', 'uSNChanged'], explicitBufferAttributes: ['objectGUID'] });
    const newDn = `CN=User 0001,${dir.elsewhereDn}`;
    await client.modifyDN(dn, newDn);
    const { searchEntries: [moved] } = await client.search(newDn, { scope: 'base', attributes: ['objectGUID', 'uSNChanged'], explicitBufferAttributes: ['objectGUID'] });
    expect((moved!.objectGUID as Buffer).equals(old!.objectGUID as Buffer)).to.equal(true);
    expect(Number(moved!.uSNChanged)).to.be.greaterThan(Number(old!.uSNChanged));
    const inScope = await client.search(dir.peopleDn, { scope: 'sub', filter: USER_FILTER, attributes: ['dn'], paged: { pageSize: 1000 } });
    expect(inScope.searchEntries).to.have.length(1600 - 2); // this one and User 0010 above
    const group = await client.search(dir.siteAdmins.dn, { scope: 'base', attributes: ['member'] });
    expect(values(group.searchEntries[0]!.member)).to.include(newDn).and.not.include(dn);
  });
});
