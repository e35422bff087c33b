import { expect } from 'chai';
import { Client, type Entry } from 'ldapts';
import { adDirectoryLdif, type AdDirectory } from '../support/ad-directory.js';
import { rangeFor, startRangingProxy, type RangingProxy } from '../support/ranging-proxy.js';
import { startSambaDc, type SambaDc } from '../support/samba-dc.js';

const asArray = (v: Entry[string] | undefined): string[] => (v === undefined ? [] : (Array.isArray(v) ? v : [v]).map(String));
// ldapts adds every requested attribute the server did not return as [] (so a ranged `member` shows up as `member: []`
// next to `member;range=0-1499`): only keys with values count.
const rangedKeys = (e: Entry) => Object.keys(e).filter((k) => /^member(;|$)/i.test(k) && asArray(e[k]).length > 0);

describe('ranging proxy: Windows AD ranged retrieval in front of Samba', function () {
  this.timeout(180_000);
  let dc: SambaDc;
  let dir: AdDirectory;
  let proxy: RangingProxy;
  let small: RangingProxy;
  const clients: Client[] = [];

  async function client(url: string): Promise<Client> {
    const c = new Client({ url, timeout: 30_000, connectTimeout: 5_000 });
    clients.push(c);
    await c.bind(dc.adminUpn, dc.adminPassword);
    return c;
  }
  async function readGroup(c: Client, attributes: string[]): Promise<Entry> {
    const { searchEntries } = await c.search(dir.bigGroup.dn, { scope: 'base', attributes });
    expect(searchEntries).to.have.length(1);
    return searchEntries[0]!;
  }

  before(async () => {
    dc = await startSambaDc();
    dir = adDirectoryLdif({ baseDn: dc.baseDn, users: 1550, bigGroupMembers: 1550 });
    await dc.add(dir.ldif);
    proxy = await startRangingProxy({ target: dc.url });
    small = await startRangingProxy({ target: dc.url, maxValues: 500 });
  });
  after(async () => {
    for (const c of clients) await c.unbind().catch(() => undefined);
    await proxy?.stop();
    await small?.stop();
    await dc?.stop();
  });

  it('Samba itself returns all 1,550 members at once, for member and for member;range=0-*', async () => {
    const c = await client(dc.url);
    const plain = await readGroup(c, ['member']);
    expect(rangedKeys(plain)).to.deep.equal(['member']);
    expect(asArray(plain.member)).to.have.length(1550);
    const ranged = await readGroup(c, ['member;range=0-*']);
    const values = rangedKeys(ranged).flatMap((k) => asArray(ranged[k]));
    expect(values).to.have.length(1550);
  });

  it('through the proxy a plain search gets member;range=0-1499 with 1,500 values, the next asks member;range=1500-*', async () => {
    const c = await client(proxy.url);
    const first = await readGroup(c, ['member', 'cn']);
    expect(rangedKeys(first)).to.deep.equal(['member;range=0-1499']);
    expect(first.member, 'ldapts placeholder for the requested, unreturned attribute').to.deep.equal([]);
    expect(first.cn).to.equal('big-group');
    const head = asArray(first['member;range=0-1499']);
    expect(head).to.have.length(1500);

    const second = await readGroup(c, ['member;range=1500-*']);
    expect(rangedKeys(second)).to.deep.equal(['member;range=1500-*']);
    const tail = asArray(second['member;range=1500-*']);
    expect(tail).to.have.length(50);

    const direct = asArray((await readGroup(await client(dc.url), ['member'])).member);
    expect([...head, ...tail]).to.deep.equal(direct); // same order as Samba's, nothing lost or repeated
    expect(new Set([...head, ...tail])).to.deep.equal(new Set(dir.bigGroup.members));
    expect(proxy.rangedEntries).to.be.greaterThanOrEqual(2);
  });

  it('middle chunks are named low-high and the last low-*, as a client loop walks them (maxValues 500)', async () => {
    const c = await client(small.url);
    const names: string[] = [];
    const all: string[] = [];
    let attribute = 'member';
    for (let round = 0; round < 10; round++) {
      const entry = await readGroup(c, [attribute]);
      const [key] = rangedKeys(entry);
      expect(key, `round ${round}`).to.be.a('string');
      names.push(key!);
      all.push(...asArray(entry[key!]));
      const m = /;range=(\d+)-(\d+|\*)$/.exec(key!);
      if (!m || m[2] === '*') break;
      attribute = `member;range=${Number(m[2]) + 1}-*`;
    }
    expect(names).to.deep.equal(['member;range=0-499', 'member;range=500-999', 'member;range=1000-1499', 'member;range=1500-*']);
    expect(all).to.have.length(1550);
    expect(new Set(all).size).to.equal(1550);
  });

  it('an explicit high bound is honoured, and a small attribute asked with a range comes back under that range', async () => {
    const c = await client(proxy.url);
    const some = await readGroup(c, ['member;range=10-19']);
    expect(rangedKeys(some)).to.deep.equal(['member;range=10-19']);
    expect(asArray(some['member;range=10-19'])).to.have.length(10);

    const { searchEntries } = await c.search(dir.siteAdmins.dn, { scope: 'base', attributes: ['member;range=0-*'] });
    expect(rangedKeys(searchEntries[0]!)).to.deep.equal(['member;range=0-*']);
    expect(asArray(searchEntries[0]!['member;range=0-*'])).to.have.length(3);
  });

  it('passes everything else through: paged subtree searches, the root DSE (empty DN), small groups unchanged', async () => {
    const c = await client(proxy.url);
    const { searchEntries } = await c.search(dir.peopleDn, {
      scope: 'sub',
      filter: '(&(objectCategory=person)(objectClass=user))',
      attributes: ['sAMAccountName', 'memberOf'],
      paged: { pageSize: 200 },
    });
    expect(searchEntries).to.have.length(1550);
    const root = await c.search('', { scope: 'base', attributes: ['defaultNamingContext', 'member;range=0-*'] });
    expect(root.searchEntries[0]!.defaultNamingContext).to.equal(dc.baseDn);
    const engineering = await c.search(dir.groups.engineering!.dn, { scope: 'base', attributes: ['member'] });
    expect(asArray(engineering.searchEntries[0]!.member)).to.have.length(3);
  });

  it('rangeFor follows the Windows naming rules', () => {
    expect(rangeFor('member', 1550, undefined, 1500)).to.deep.equal({ name: 'member;range=0-1499', start: 0, end: 1500 });
    expect(rangeFor('member', 1500, undefined, 1500)).to.equal(undefined);
    expect(rangeFor('member', 1550, { low: 1500, high: undefined }, 1500)).to.deep.equal({ name: 'member;range=1500-*', start: 1500, end: 1550 });
    expect(rangeFor('member', 4000, { low: 1500, high: undefined }, 1500)).to.deep.equal({ name: 'member;range=1500-2999', start: 1500, end: 3000 });
    expect(rangeFor('member', 1550, { low: 0, high: undefined }, 1500)).to.deep.equal({ name: 'member;range=0-1499', start: 0, end: 1500 });
    expect(rangeFor('member', 1550, { low: 1600, high: undefined }, 1500)).to.deep.equal({ name: 'member;range=1600-*', start: 1550, end: 1550 });
    expect(rangeFor('member', 1550, { low: 1400, high: 1549 }, 1500)).to.deep.equal({ name: 'member;range=1400-*', start: 1400, end: 1550 });
  });
});
