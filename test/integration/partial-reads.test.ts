import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import type { Config } from '../../src/config/load.js';
import { sampleDirectoryLdif } from '../../src/demo/sample-directory.js';
import { startThrowawaySlapd, type ThrowawaySlapd } from '../../src/demo/throwaway-slapd.js';
import { runCycle } from '../../src/sync/cycle.js';
import { startScim, writeConfig, type ScimUnderTest } from '../support/sync-env.js';

const SUFFIX = 'dc=example,dc=test';
const READER_DN = `cn=reader,${SUFFIX}`;
const READER_LDIF = `\ndn: ${READER_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: reader\nuserPassword: reader-secret-pw\n`;

// A partial read looks exactly like people leaving. Each way a read can come back short must stop the cycle
// (exit 1) before any SCIM call, with the snapshot byte-identical.
describe('partial directory reads stop the cycle', function () {
  this.timeout(120_000);
  let scim: ScimUnderTest;
  before(async () => {
    scim = await startScim('sandbox');
  });
  after(async () => scim?.stop());

  async function expectStoppedUntouched(config: Config, pattern: RegExp): Promise<void> {
    const before = readFileSync(config.state.path);
    scim.sandbox!.resetRequests();
    const { report } = await runCycle(config);
    expect(report.exitCode, report.error).to.equal(1);
    expect(report.result).to.equal('directory-failed');
    expect(report.error).to.match(pattern);
    expect(scim.sandbox!.requests, 'no SCIM call at all').to.have.length(0);
    expect(readFileSync(config.state.path).equals(before), 'snapshot byte-identical').to.equal(true);
  }

  describe('on a server with limits and referrals', () => {
    let slapd: ThrowawaySlapd;
    let config: Config;
    before(async () => {
      // The root DN is exempt from slapd's limits; the reader account gets at most 10 entries.
      slapd = await startThrowawaySlapd({ suffix: SUFFIX, ldif: sampleDirectoryLdif({ suffix: SUFFIX, users: 40 }).ldif + READER_LDIF, globalConfig: ['sizelimit 10'] });
      config = writeConfig({ ldapUrl: slapd.url, suffix: SUFFIX, bindDn: slapd.rootDn, bindPassword: slapd.rootPassword, scimUrl: scim.url, token: scim.token, pageSize: 4 }).load();
      const first = await runCycle(config);
      expect(first.report.exitCode, first.report.error).to.equal(0);
    });
    after(async () => slapd?.stop());

    it('a size limit hit part-way (a bind account with a low limit)', async () => {
      const limited = { ...config, source: { ...config.source, bindDn: READER_DN, bindPassword: 'reader-secret-pw' } };
      await expectStoppedUntouched(limited, /\(4\): size limit exceeded: .*read would be partial/);
    });

    it('a referral inside the scope', async () => {
      await slapd.modify(
        `dn: cn=elsewhere,ou=people,${SUFFIX}\nchangetype: add\nobjectClass: referral\nobjectClass: extensibleObject\ncn: elsewhere\nref: ldap://other.example.test/ou=people,dc=other\n`,
      );
      await expectStoppedUntouched(config, /returned a referral to ldap:\/\/other\.example\.test\/.*the read would be partial/);
      await slapd.modify(`dn: cn=elsewhere,ou=people,${SUFFIX}\nchangetype: delete\n`).catch(() => undefined);
    });
  });

  it('the directory going away in the middle of a paged read', async () => {
    const slapd = await startThrowawaySlapd({ suffix: SUFFIX, ldif: sampleDirectoryLdif({ suffix: SUFFIX, users: 6000 }).ldif });
    try {
      // Sync a few people first so there is a snapshot to keep intact, then read everyone one entry per page.
      const { load } = writeConfig({ ldapUrl: slapd.url, suffix: SUFFIX, bindDn: slapd.rootDn, bindPassword: slapd.rootPassword, scimUrl: scim.url, token: scim.token, pageSize: 1 });
      const config = load();
      const small = { ...config, source: { ...config.source, usersFilter: '(uid=u000*)' } };
      expect((await runCycle(small)).report.exitCode).to.equal(0);
      const before = readFileSync(config.state.path);
      scim.sandbox!.resetRequests();
      const cycle = runCycle(config);
      // 6,000 pages take about 3 s here (bind and search start within 0.1 s): the kill lands in the middle.
      await new Promise((r) => setTimeout(r, 500));
      process.kill(slapd.pid, 'SIGKILL');
      const { report } = await cycle;
      expect(report.exitCode, report.error).to.equal(1);
      expect(report.result).to.equal('directory-failed');
      expect(report.error).to.match(/^reading ou=people/);
      expect(scim.sandbox!.requests).to.have.length(0);
      expect(readFileSync(config.state.path).equals(before)).to.equal(true);
    } finally {
      await slapd.stop();
    }
  });
});
