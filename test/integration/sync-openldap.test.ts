import { existsSync, readFileSync, rmSync } from 'node:fs';
import { expect } from 'chai';
import type { Config } from '../../src/config/load.js';
import { sampleDirectoryLdif } from '../../src/demo/sample-directory.js';
import { startThrowawaySlapd, type ThrowawaySlapd } from '../../src/demo/throwaway-slapd.js';
import { readDesiredState } from '../../src/directory/reader.js';
import { runCycle } from '../../src/sync/cycle.js';
import { renderReport } from '../../src/sync/report.js';
import { listAll, scimRequest, type ViewGroup, type ViewUser } from '../support/scim-view.js';
import { expectScimMatchesDirectory, startScim, writeConfig, type ScimUnderTest } from '../support/sync-env.js';

const SUFFIX = 'dc=example,dc=test';
const dn = (uid: string) => `uid=${uid},ou=people,${SUFFIX}`;

function person(uid: string, mail: string, title = 'Engineer'): string {
  return `dn: ${dn(uid)}
changetype: add
objectClass: inetOrgPerson
uid: ${uid}
cn: ${uid} Person
sn: Person
givenName: ${uid}
mail: ${mail}
title: ${title}
`;
}

// The same scenario against our sandbox and against an independent SCIM server (better-auth), so that the client
// is not tuned to the sandbox alone.
for (const kind of ['sandbox', 'better-auth'] as const) {
  describe(`sync cycle: OpenLDAP → ${kind}`, function () {
    this.timeout(120_000);
    let slapd: ThrowawaySlapd;
    let scim: ScimUnderTest;
    let config: Config;
    let load: () => Config;

    before(async () => {
      slapd = await startThrowawaySlapd({ suffix: SUFFIX, ldif: sampleDirectoryLdif({ suffix: SUFFIX, users: 200 }).ldif });
      scim = await startScim(kind);
      ({ load } = writeConfig({ ldapUrl: slapd.url, suffix: SUFFIX, bindDn: slapd.rootDn, bindPassword: slapd.rootPassword, scimUrl: scim.url, token: scim.token }));
      config = load();
    });
    after(async () => {
      await scim?.stop();
      await slapd?.stop();
    });

    it('first sync provisions the directory: fields, flattened groups, skips, nothing built-in', async () => {
      const { report } = await runCycle(config);
      expect(report.exitCode, report.error).to.equal(0);
      expect(report.failures).to.deep.equal([]);
      const { users, groups } = await expectScimMatchesDirectory(config, scim);
      expect(users.length).to.equal(197);
      expect(groups.map((g) => g.displayName)).to.not.include('site-admins');
      const reasons = report.skipped.map((s) => `${s.kind}: ${s.reason}`);
      expect(reasons.some((r) => /^user: no email/.test(r)), reasons.join('\n')).to.equal(true);
      expect(reasons.filter((r) => /email dup@example.test is also used by/.test(r))).to.have.length(2);
      expect(reasons.some((r) => /^group: "site-admins" is an Atlassian built-in group/.test(r))).to.equal(true);
      // "everyone" nests engineering and sales: its flat membership is theirs together.
      const byName = new Map(groups.map((g) => [g.displayName, new Set((g.members ?? []).map((m) => m.value))]));
      const union = new Set([...byName.get('engineering')!, ...byName.get('sales')!]);
      expect(byName.get('everyone')!.size).to.be.greaterThan(0);
      expect([...byName.get('everyone')!].sort()).to.deep.equal([...union].sort());
      expect(byName.get('engineering')!.size).to.be.greaterThan(byName.get('platform')!.size);
    });

    it('a cycle with no directory change makes no write call', async () => {
      scim.sandbox?.resetRequests();
      const { report } = await runCycle(config);
      expect(report.exitCode).to.equal(0);
      expect(report.calls.writes).to.equal(0);
      expect(report.planned).to.deep.equal({});
      if (scim.sandbox) expect(scim.sandbox.writeCount()).to.equal(0);
    });

    it('after titles, deletions, an addition, a new member and a group rename, converges with few writes', async () => {
      const before = await listAll<ViewGroup>(scim.url, scim.token, 'Groups');
      const oldPlatform = before.find((g) => g.displayName === 'platform')!;
      const leaving = ['u0020', 'u0021', 'u0022', 'u0023', 'u0024'];
      const { desired } = await readDesiredState(config, config.mapping);
      const leavingNames = [...desired.users.values()].filter((u) => leaving.some((x) => u.dn === dn(x))).map((u) => u.attrs.userName);
      expect(leavingNames).to.have.length(5);
      await slapd.modify(
        ['u0010', 'u0011', 'u0012', 'u0013', 'u0014', 'u0015', 'u0016', 'u0017', 'u0018', 'u0019']
          .map((u) => `dn: ${dn(u)}\nchangetype: modify\nreplace: title\ntitle: Principal ${u}\n`)
          .join('\n') +
          '\n' +
          leaving.map((u) => `dn: ${dn(u)}\nchangetype: delete\n`).join('\n') +
          '\n' +
          ['new1', 'new2', 'new3'].map((u) => person(u, `${u}@example.test`)).join('\n') +
          `\ndn: cn=sales,ou=groups,${SUFFIX}\nchangetype: modify\nadd: member\nmember: ${dn('new1')}\n` +
          `\ndn: cn=platform,ou=groups,${SUFFIX}\nchangetype: modrdn\nnewrdn: cn=platform-team\ndeleteoldrdn: 1\n`,
      );
      scim.sandbox?.resetRequests();
      const { report } = await runCycle(config);
      expect(report.exitCode, report.error).to.equal(0);
      expect(report.done).to.include({ updateUser: 10, deactivateUser: 5, createUser: 3, createGroup: 1, deleteGroup: 1 });
      expect(report.calls.writes).to.be.at.most(40);
      if (scim.sandbox) expect(scim.sandbox.writeCount()).to.equal(report.calls.writes);
      expect(report.warnings.join('\n')).to.match(/"platform" was renamed to "platform-team"/);
      const { groups, users } = await expectScimMatchesDirectory(config, scim);
      expect(groups.map((g) => g.id)).to.not.include(oldPlatform.id);
      const removed = users.filter((u) => leavingNames.includes(u.userName.toLowerCase()));
      expect(removed.map((u) => String(u.active))).to.deep.equal(['false', 'false', 'false', 'false', 'false']);

      const quiet = await runCycle(config);
      expect(quiet.report.calls.writes).to.equal(0);
    });

    it('with the snapshot lost while the directory changes, relinks instead of duplicating', async () => {
      rmSync(config.state.path);
      await slapd.modify(
        `dn: ${dn('u0030')}\nchangetype: modify\nreplace: mail\nmail: u0030.renamed@example.test\n\n` +
          `dn: ${dn('u0031')}\nchangetype: modify\nreplace: title\ntitle: Moved On\n\n` +
          person('new4', 'new4@example.test'),
      );
      const usersBefore = (await listAll<ViewUser>(scim.url, scim.token, 'Users')).length;
      scim.sandbox?.resetRequests();
      const { report } = await runCycle(config);
      expect(report.exitCode, report.error).to.equal(0);
      expect(report.rebuild!.linkedUsers).to.be.greaterThan(50);
      expect(report.calls.byMethod.POST ?? 0, 'one POST: the new person').to.equal(1);
      expect(report.done).to.include({ createUser: 1 });
      expect(report.done.createGroup ?? 0).to.equal(0);
      if (scim.sandbox) expect(scim.sandbox.requests.filter((r) => r.method === 'POST').map((r) => r.path)).to.deep.equal(['/scim/directory/sandbox/Users']);
      expect((await listAll<ViewUser>(scim.url, scim.token, 'Users')).length).to.equal(usersBefore + 1);
      await expectScimMatchesDirectory(config, scim);
      expect(existsSync(config.state.path)).to.equal(true);
    });

    it('a create that meets an existing account (409) links it instead of posting again', async () => {
      // An account made on the SCIM side by someone else, with the email of a person about to join the directory.
      const made = await scimRequest(scim.url, scim.token, 'POST', '/Users', {
        schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
        userName: 'new5@example.test',
        emails: [{ value: 'new5@example.test', primary: true, type: 'work' }],
        title: 'Set by hand',
      });
      expect(made.status).to.equal(201);
      await slapd.modify(person('new5', 'new5@example.test', 'Directory Title'));
      const { report } = await runCycle(config);
      expect(report.exitCode, report.error).to.equal(0);
      const matches = (await listAll<ViewUser>(scim.url, scim.token, 'Users')).filter((u) => u.userName.toLowerCase() === 'new5@example.test');
      expect(matches).to.have.length(1);
      expect(matches[0]!.id).to.equal(made.body.id);
      expect(matches[0]!.title).to.equal('Directory Title');
      await expectScimMatchesDirectory(config, scim);
    });

    it('an unreachable directory fails the cycle (exit 1) and leaves the snapshot byte-identical', async () => {
      const before = readFileSync(config.state.path);
      const broken = { ...config, source: { ...config.source, url: 'ldap://127.0.0.1:1', connectTimeoutSeconds: 2 } };
      const { report } = await runCycle(broken);
      expect(report.exitCode).to.equal(1);
      expect(report.result).to.equal('directory-failed');
      expect(renderReport(report)).to.match(/operations: none planned, the cycle stopped before planning/);
      expect(report.calls.requests).to.equal(0);
      expect(readFileSync(config.state.path).equals(before)).to.equal(true);
    });

    it('a rejected key stops the cycle with exit 3 and names the key by fingerprint only', async () => {
      await slapd.modify(`dn: ${dn('u0040')}\nchangetype: modify\nreplace: title\ntitle: Needs A Write\n`);
      const wrong = { ...config, target: { ...config.target, token: 'definitely-not-the-key-123' } };
      const { report } = await runCycle(wrong);
      expect(report.exitCode).to.equal(3);
      expect(report.error).to.match(/fingerprint sha256:[0-9a-f]{12}/);
      expect(JSON.stringify(report)).to.not.contain('definitely-not-the-key-123');
      expect(JSON.stringify(report)).to.not.contain(scim.token);
    });

    it('a rejected key is noticed by a cycle with nothing to do, and by plan', async () => {
      const good = await runCycle(config); // apply the pending title change, so nothing is left to do
      expect(good.report.exitCode, good.report.error).to.equal(0);
      const wrong = { ...config, target: { ...config.target, token: 'definitely-not-the-key-123' } };
      for (const options of [{}, { dryRun: true }]) {
        const { report } = await runCycle(wrong, options);
        expect(report.exitCode, JSON.stringify(options)).to.equal(3);
        expect(report.calls.writes).to.equal(0);
        expect(report.error).to.match(/API key check/);
      }
    });
  });
}
