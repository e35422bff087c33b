import { existsSync } from 'node:fs';
import { expect } from 'chai';
import { readDesiredState } from '../../src/directory/reader.js';
import { DirectoryError } from '../../src/directory/connection.js';
import { sampleDirectoryLdif } from '../../src/demo/sample-directory.js';
import { startThrowawaySlapd, type ThrowawaySlapd } from '../../src/demo/throwaway-slapd.js';
import { writeConfig } from '../support/sync-env.js';

const SUFFIX = 'dc=example,dc=test';

// The reader against a real slapd: paging, TLS both ways with certificate checks on, and the failures that must
// stop a cycle rather than look like an empty directory.
describe('directory reader on a throwaway slapd', function () {
  this.timeout(60_000);
  let slapd: ThrowawaySlapd;
  const sample = sampleDirectoryLdif({ suffix: SUFFIX, users: 40 });

  before(async () => {
    slapd = await startThrowawaySlapd({ suffix: SUFFIX, ldif: sample.ldif, tls: true });
  });
  after(async () => slapd?.stop());

  const configFor = (url: string, source = '', pageSize?: number) =>
    writeConfig({ ldapUrl: url, suffix: SUFFIX, bindDn: slapd.rootDn, bindPassword: slapd.rootPassword, scimUrl: 'http://127.0.0.1:9/scim', token: 't', sourceExtra: source, pageSize }).load();

  it('reads every entry in pages and maps them, skipping the awkward ones with reasons', async () => {
    const config = configFor(slapd.url, '', 7);
    const { desired, counts } = await readDesiredState(config, config.mapping);
    expect(counts.userEntries).to.equal(40);
    // 40 users in pages of 7 is 6 pages; the 5 groups fit in one.
    expect(counts.pages).to.equal(7);
    // u0003 has no mail, u0004/u0005 share one: 37 users can be provisioned.
    expect(desired.users.size).to.equal(37);
    const engineering = [...desired.groups.values()].find((g) => g.displayName === 'engineering');
    expect(engineering, 'engineering group').to.not.equal(undefined);
    const platform = [...desired.groups.values()].find((g) => g.displayName === 'platform')!;
    for (const member of platform.members) expect(engineering!.members).to.include(member);
  });

  it('hands a page larger than one message over whole, counted as one page', async () => {
    // The search thread sends at most 100 entries per message; 250 users in one page cross as three.
    const big = await startThrowawaySlapd({ suffix: SUFFIX, ldif: sampleDirectoryLdif({ suffix: SUFFIX, users: 250 }).ldif });
    try {
      const config = writeConfig({ ldapUrl: big.url, suffix: SUFFIX, bindDn: big.rootDn, bindPassword: big.rootPassword, scimUrl: 'http://127.0.0.1:9/scim', token: 't', pageSize: 250 }).load();
      const { desired, counts } = await readDesiredState(config, config.mapping);
      expect(counts.userEntries).to.equal(250);
      expect(counts.pages, 'one page of users, one of groups').to.equal(2);
      const skippedUsers = desired.skipped.filter((s) => s.kind === 'user').length;
      expect(desired.users.size + skippedUsers).to.equal(250);
      expect(new Set([...desired.users.values()].map((u) => u.dn)).size).to.equal(desired.users.size);
    } finally {
      await big.stop();
    }
  });

  it('reads over ldaps:// and over StartTLS with the CA file, verifying the certificate', async () => {
    expect(existsSync(slapd.caFile!)).to.equal(true);
    const caYaml = `  tls: { caFile: "${slapd.caFile}" }\n`;
    const overLdaps = configFor(slapd.ldapsUrl!, caYaml);
    expect((await readDesiredState(overLdaps, overLdaps.mapping)).counts.userEntries).to.equal(40);
    const overStartTls = configFor(slapd.url, `  tls: { caFile: "${slapd.caFile}", startTls: true }\n`);
    expect((await readDesiredState(overStartTls, overStartTls.mapping)).counts.userEntries).to.equal(40);
  });

  it('refuses a certificate it cannot verify, by default', async () => {
    const config = configFor(slapd.ldapsUrl!);
    const error = await readDesiredState(config, config.mapping).then(() => undefined, (e: unknown) => e);
    expect(error).to.be.instanceOf(DirectoryError);
    expect(String(error)).to.match(/cannot connect and bind to ldaps:\/\/127\.0\.0\.1/);
    expect(String(error)).to.match(/set source\.tls\.caFile/);
    expect(String(error)).to.not.include(slapd.rootPassword);
  });

  it('stops on a wrong bind password without naming it', async () => {
    const config = writeConfig({ ldapUrl: slapd.url, suffix: SUFFIX, bindDn: slapd.rootDn, bindPassword: 'not-the-password', scimUrl: 'http://127.0.0.1:9/scim', token: 't' }).load();
    const error = await readDesiredState(config, config.mapping).then(() => undefined, (e: unknown) => e);
    expect(error).to.be.instanceOf(DirectoryError);
    expect(String(error)).to.match(/\(49\): invalid credentials: check source\.bindDn and the bind password/);
    expect(String(error)).to.not.include('not-the-password');
  });

  it('a base DN that does not exist stops the read and says which key to check', async () => {
    const config = writeConfig({ ldapUrl: slapd.url, suffix: SUFFIX, bindDn: slapd.rootDn, bindPassword: slapd.rootPassword, scimUrl: 'http://127.0.0.1:9/scim', token: 't' }).load();
    const wrong = { ...config, source: { ...config.source, users: { ...config.source.users, baseDn: `ou=peple,${SUFFIX}` } } };
    const error = await readDesiredState(wrong, wrong.mapping).then(() => undefined, (e: unknown) => e);
    expect(error).to.be.instanceOf(DirectoryError);
    expect(String(error)).to.match(/reading ou=peple,dc=example,dc=test .*\(32\): no such object: .*source\.users\.baseDn/);
  });

  it('sees changes applied to the running server', async () => {
    await slapd.modify(`dn: uid=u0010,ou=people,${SUFFIX}\nchangetype: modify\nreplace: title\ntitle: Changed Title\n`);
    const config = configFor(slapd.url);
    const { desired } = await readDesiredState(config, config.mapping);
    const u10 = [...desired.users.values()].find((u) => u.dn.startsWith('uid=u0010,'));
    expect(u10?.attrs.title).to.equal('Changed Title');
  });
});
