import { existsSync, rmSync } from 'node:fs';
import { expect } from 'chai';
import type { Config } from '../../src/config/load.js';
import { renderPlanTable } from '../../src/plan/render.js';
import { approveGroups, groupApprovalFileFor } from '../../src/plan/group-approval.js';
import { journalFileFor } from '../../src/state/journal.js';
import { runCheck } from '../../src/sync/check.js';
import { runCycle } from '../../src/sync/cycle.js';
import { startBlindFilterProxy } from '../support/blind-filter-proxy.js';
import { mailOf, recordOf, rig, stopRig, SUFFIX, userDn, type Rig } from '../support/sample-rig.js';
import { listAll, scimRequest, type ViewGroup, type ViewUser } from '../support/scim-view.js';
import { expectScimMatchesDirectory, startScim, writeConfig, type ScimUnderTest } from '../support/sync-env.js';

/** An account made on the SCIM side by someone else (an admin by hand, another provisioning tool). */
const accountMadeByHand = (scim: ScimUnderTest, userName: string, mail: string, extra: Record<string, unknown> = {}) =>
  scimRequest(scim.url, scim.token, 'POST', '/Users', {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
    userName,
    emails: [{ value: mail, primary: true }],
    active: true,
    ...extra,
  });

const forget = (config: Config) => {
  rmSync(config.state.path, { force: true });
  rmSync(journalFileFor(config.state.path), { force: true });
};

// An ordinary admin's mistakes and migrations, each on real slapd and the sandbox: each must end in the right
// outcome or in a stop before any write that says what to do, never in a success with the wrong result.
describe('admin mistakes and migrations', function () {
  this.timeout(180_000);

  describe('a state file used against another SCIM directory', () => {
    let r: Rig;
    let second: ScimUnderTest;
    let moved: Config;
    before(async () => {
      r = await rig(60);
      second = await startScim('sandbox');
      const first = await runCycle(r.config);
      expect(first.report.exitCode, first.report.error).to.equal(0);
    });
    after(async () => {
      await second?.stop();
      await stopRig(r);
    });

    it('stops before any write when target.url names another directory, and check says so; --rebuild-state adopts it', async () => {
      moved = writeConfig(
        { ldapUrl: r.slapd.url, suffix: SUFFIX, bindDn: r.slapd.rootDn, bindPassword: r.slapd.rootPassword, scimUrl: second.url, token: second.token },
        r.written.dir,
      ).load();
      second.sandbox!.resetRequests();
      const held = await runCycle(moved);
      expect(held.report.exitCode).to.equal(4);
      expect(held.report.error).to.include(`belongs to the SCIM directory ${r.scim.url}`);
      expect(held.report.error).to.match(/its own state\.path.*sync --rebuild-state/);
      expect(second.sandbox!.writeCount()).to.equal(0);
      expect(await listAll<ViewUser>(second.url, second.token, 'Users')).to.have.length(0);

      const check = await runCheck(moved);
      expect(check.exitCode).to.not.equal(0);
      expect(check.lines.find((l) => l.what === 'state')).to.deep.include({ ok: false });

      const adopted = await runCycle(moved, { rebuildState: true });
      expect(adopted.report.exitCode, adopted.report.error).to.equal(0);
      await expectScimMatchesDirectory(moved, second);
      const quiet = await runCycle(moved);
      expect(quiet.report.exitCode, quiet.report.error).to.equal(0);
      expect(quiet.report.calls.writes).to.equal(0);
    });

    it('re-creates accounts deleted on the SCIM side behind its back, and stops when the directory was emptied', async () => {
      // Now on the second directory, which the state file was moved to above.
      const [config, scim] = [moved, second];
      const users = await listAll<ViewUser>(scim.url, scim.token, 'Users');
      for (const u of users.slice(0, 3)) expect((await scimRequest(scim.url, scim.token, 'DELETE', `/Users/${u.id}`)).status).to.equal(204);
      // Someone leaves in the same cycle: the rebuild must not forget to deactivate them.
      const leaver = users.find((u) => u.userName === mailOf(r.ldif, userDn(50)));
      expect(users.slice(0, 3)).to.not.include(leaver);
      await r.slapd.modify(`dn: ${userDn(50)}\nchangetype: delete\n`);
      const healed = await runCycle(config);
      expect(healed.report.exitCode, healed.report.error).to.equal(0);
      expect(healed.report.warnings.join('\n')).to.match(/holds \d+ users, but the state file links \d+: accounts were deleted there/);
      expect(healed.report.done.createUser).to.equal(3);
      expect(healed.report.done.deactivateUser).to.equal(1);
      await expectScimMatchesDirectory(config, scim);

      for (const u of await listAll<ViewUser>(scim.url, scim.token, 'Users')) await scimRequest(scim.url, scim.token, 'DELETE', `/Users/${u.id}`);
      scim.sandbox!.resetRequests();
      const emptied = await runCycle(config);
      expect(emptied.report.exitCode).to.equal(4);
      expect(emptied.report.error).to.match(/holds no users, but the state file links \d+: it was emptied or reset.*sync --rebuild-state/);
      expect(scim.sandbox!.writeCount()).to.equal(0);
      const plan = await runCycle(config, { dryRun: true });
      expect(plan.report.exitCode).to.equal(4);
    });
  });

  describe('default guards in a small organization', () => {
    let r: Rig;
    before(async () => {
      r = await rig(300);
      const first = await runCycle(r.config);
      expect(first.report.exitCode, first.report.error).to.equal(0);
    });
    after(() => stopRig(r));

    it('holds 15% of a 300-person directory removed, with the default settings: exit 4 and no deactivation', async () => {
      expect(r.config.safety.maxDeactivations).to.equal(500);
      await r.slapd.modify(Array.from({ length: 45 }, (_, i) => `dn: ${userDn(200 + i)}\nchangetype: delete\n`).join('\n'));
      r.scim.sandbox!.resetRequests();
      const held = await runCycle(r.config);
      expect(held.report.exitCode).to.equal(4);
      expect(held.report.error).to.match(/45 users would be deactivated, 15\.\d% of the \d+ provisioned, over safety\.maxDeactivationPercent 10%/);
      expect(r.scim.sandbox!.writeCount()).to.equal(0);
      expect((await listAll<ViewUser>(r.scim.url, r.scim.token, 'Users')).filter((u) => u.active === false)).to.have.length(0);
    });
  });

  describe('people and groups that change identity', () => {
    let r: Rig;
    before(async () => {
      r = await rig(60);
      const first = await runCycle(r.config);
      expect(first.report.exitCode, first.report.error).to.equal(0);
    });
    after(() => stopRig(r));

    const accountsOf = async (mail: string) => (await listAll<ViewUser>(r.scim.url, r.scim.token, 'Users')).filter((u) => u.userName.toLowerCase() === mail);

    it('a person deleted and re-created with the same email keeps one account, now carrying the new anchor', async () => {
      const dn = userDn(10);
      const mail = mailOf(r.ldif, dn);
      const [before] = await accountsOf(mail);
      await r.slapd.modify(`dn: ${dn}\nchangetype: delete\n`);
      await r.slapd.modify(recordOf(r.ldif, dn));
      const cycle = await runCycle(r.config);
      expect(cycle.report.exitCode, cycle.report.error).to.equal(0);
      expect(cycle.report.failures).to.deep.equal([]);
      expect(cycle.report.done.createUser ?? 0).to.equal(0);
      expect(cycle.report.done.deactivateUser ?? 0).to.equal(0);
      const after = await accountsOf(mail);
      expect(after).to.have.length(1);
      expect(after[0]!.id).to.equal(before!.id);
      expect(after[0]!.active).to.equal(true);
      expect(after[0]!.externalId).to.not.equal(before!.externalId);
      await expectScimMatchesDirectory(r.config, r.scim);
      const quiet = await runCycle(r.config);
      expect(quiet.report.calls.writes, JSON.stringify(quiet.report.planned)).to.equal(0);
    });

    it('one deactivated and later re-created is reactivated, not duplicated', async () => {
      const dn = userDn(11);
      const mail = mailOf(r.ldif, dn);
      await r.slapd.modify(`dn: ${dn}\nchangetype: delete\n`);
      const gone = await runCycle(r.config);
      expect(gone.report.done.deactivateUser).to.equal(1);
      await r.slapd.modify(recordOf(r.ldif, dn));
      const back = await runCycle(r.config);
      expect(back.report.exitCode, back.report.error).to.equal(0);
      expect(back.report.done.reactivateUser).to.equal(1);
      const after = await accountsOf(mail);
      expect(after).to.have.length(1);
      expect(after[0]!.active).to.equal(true);
      await expectScimMatchesDirectory(r.config, r.scim);
    });

    it('a group renamed twice with the state file lost in between leaves no orphan group', async () => {
      await r.slapd.modify(`dn: cn=platform,ou=groups,${SUFFIX}\nchangetype: modrdn\nnewrdn: cn=platform-2\ndeleteoldrdn: 1\n`);
      const once = await runCycle(r.config);
      expect(once.report.exitCode, once.report.error).to.equal(0);
      const renamed = (await listAll<ViewGroup>(r.scim.url, r.scim.token, 'Groups')).find((g) => g.displayName === 'platform-2');
      expect(renamed?.externalId, 'the new group carries its anchor once the old one is gone').to.be.a('string');

      forget(r.config);
      await r.slapd.modify(`dn: cn=platform-2,ou=groups,${SUFFIX}\nchangetype: modrdn\nnewrdn: cn=platform-3\ndeleteoldrdn: 1\n`);
      const twice = await runCycle(r.config);
      expect(twice.report.exitCode, twice.report.error).to.equal(0);
      const names = (await listAll<ViewGroup>(r.scim.url, r.scim.token, 'Groups')).map((g) => g.displayName).sort();
      expect(names).to.include('platform-3');
      expect(names).to.not.include('platform-2');
      await expectScimMatchesDirectory(r.config, r.scim);
    });

    it('a 409 that the server filter cannot explain is linked through the listing, not failed on every cycle', async () => {
      // Someone made the account by hand on the SCIM side, under another userName but with the email of a person
      // about to join the directory: the create answers 409 on the email, and no filter on externalId or
      // userName finds the account.
      const mail = 'newcomer@example.test';
      const made = await accountMadeByHand(r.scim, 'hand.made', mail);
      expect(made.status).to.equal(201);
      await r.slapd.modify(
        `dn: uid=newcomer,ou=people,${SUFFIX}\nchangetype: add\nobjectClass: inetOrgPerson\nuid: newcomer\ncn: New Comer\nsn: Comer\ngivenName: New\nmail: ${mail}\n`,
      );
      const cycle = await runCycle(r.config);
      expect(cycle.report.failures, JSON.stringify(cycle.report.failures)).to.deep.equal([]);
      expect(cycle.report.exitCode, cycle.report.error).to.equal(0);
      const linked = (await listAll<ViewUser>(r.scim.url, r.scim.token, 'Users')).filter((u) => u.emails?.some((e) => e.value.toLowerCase() === mail));
      expect(linked).to.have.length(1);
      expect(linked[0]!.id).to.equal(made.body.id);
      expect(linked[0]!.externalId).to.be.a('string');
      await expectScimMatchesDirectory(r.config, r.scim);
    });
  });

  describe('with delta reads on', () => {
    let r: Rig;
    before(async () => {
      r = await rig(60, '', '  delta: { enabled: true, fullReadEvery: 24 }\n');
      const first = await runCycle(r.config);
      expect(first.report.exitCode, first.report.error).to.equal(0);
    });
    after(() => stopRig(r));

    it('a person deleted and re-created at the same DN keeps one account after a delta read, not only after the next full read', async () => {
      const dn = userDn(10);
      const mail = mailOf(r.ldif, dn);
      const before = (await listAll<ViewUser>(r.scim.url, r.scim.token, 'Users')).filter((u) => u.userName === mail);
      await r.slapd.modify(`dn: ${dn}\nchangetype: delete\n`);
      await r.slapd.modify(recordOf(r.ldif, dn));
      const cycle = await runCycle(r.config);
      expect(cycle.report.directory.read.kind, JSON.stringify(cycle.report.directory.read)).to.equal('delta');
      expect(cycle.report.failures).to.deep.equal([]);
      expect(cycle.report.skipped.filter((s) => s.dn === dn), 'not skipped as two entries sharing one email').to.deep.equal([]);
      expect(cycle.report.exitCode, cycle.report.error).to.equal(0);
      const after = (await listAll<ViewUser>(r.scim.url, r.scim.token, 'Users')).filter((u) => u.userName === mail);
      expect(after.map((u) => u.id)).to.deep.equal(before.map((u) => u.id));
      expect(after[0]!.externalId).to.not.equal(before[0]!.externalId);
      expect(after[0]!.active).to.equal(true);
      const full = await runCycle(r.config, { fullRead: true });
      expect(full.report.calls.writes, JSON.stringify(full.report.planned)).to.equal(0);
    });
  });

  describe('a SCIM server whose filters find nothing (case-sensitive where RFC 7643 says not)', () => {
    let r: Rig;
    let proxy: Awaited<ReturnType<typeof startBlindFilterProxy>>;
    let config: Config;
    before(async () => {
      r = await rig(30);
      proxy = await startBlindFilterProxy(r.scim.url);
      config = { ...r.config, target: { ...r.config.target, url: proxy.url } };
      const first = await runCycle(config);
      expect(first.report.exitCode, first.report.error).to.equal(0);
    });
    after(async () => {
      await proxy?.stop();
      await stopRig(r);
    });

    it('a 409 on a user or a group is resolved through the listing: the user linked with its anchor, the group held until approved, then adopted', async () => {
      const mail = 'new.person@example.test';
      const user = await accountMadeByHand(r.scim, 'NEW.Person@example.test', mail);
      const group = await scimRequest(r.scim.url, r.scim.token, 'POST', '/Groups', { schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'], displayName: 'Contractors' });
      expect([user.status, group.status]).to.deep.equal([201, 201]);
      await r.slapd.modify(
        `dn: uid=new.person,ou=people,${SUFFIX}\nchangetype: add\nobjectClass: inetOrgPerson\nuid: new.person\ncn: New Person\nsn: Person\ngivenName: New\nmail: ${mail}\n\n` +
          `dn: cn=contractors,ou=groups,${SUFFIX}\nchangetype: add\nobjectClass: groupOfNames\ncn: contractors\nmember: uid=new.person,ou=people,${SUFFIX}\n`,
      );
      const cycle = await runCycle(config);
      expect(cycle.report.failures, JSON.stringify(cycle.report.failures)).to.deep.equal([]);
      expect(cycle.report.exitCode, cycle.report.error).to.equal(0);
      const users = (await listAll<ViewUser>(r.scim.url, r.scim.token, 'Users')).filter((u) => u.userName.toLowerCase() === mail);
      expect(users.map((u) => u.id)).to.deep.equal([user.body.id]);
      expect(users[0]!.externalId).to.be.a('string');
      // The plan's lookup saw nothing (the filter is blind): the create's 409 finds the group in the listing, made
      // by someone else, and holds it as a conflict for review instead of adopting it.
      const conflict = cycle.report.conflicts.find((c) => c.displayName === 'contractors');
      expect(conflict).to.deep.include({ scimId: group.body.id, status: 'awaiting approval', keep: 0 });
      const held = (await listAll<ViewGroup>(r.scim.url, r.scim.token, 'Groups')).find((g) => g.id === group.body.id)!;
      expect([held.externalId, held.members ?? []]).to.deep.equal([undefined, []]);
      await approveGroups(config.state.path, [conflict!]);
      const approved = await runCycle(config);
      expect(approved.report.exitCode, approved.report.error).to.equal(0);
      expect(approved.report.conflicts).to.deep.equal([]);
      expect(existsSync(groupApprovalFileFor(config.state.path)), 'the approval is used up').to.equal(false);
      const groups = (await listAll<ViewGroup>(r.scim.url, r.scim.token, 'Groups')).filter((g) => g.displayName.toLowerCase() === 'contractors');
      expect(groups.map((g) => g.id)).to.deep.equal([group.body.id]);
      expect(groups[0]!.externalId).to.be.a('string');
      expect(groups[0]!.members?.map((m) => m.value)).to.deep.equal([user.body.id]);
      const quiet = await runCycle(config);
      expect(quiet.report.calls.writes, JSON.stringify(quiet.report.planned)).to.equal(0);
    });
  });

  describe('a migration from another provisioning tool', () => {
    let r: Rig;
    before(async () => {
      r = await rig(60);
    });
    after(() => stopRig(r));

    it('accounts made before the first sync carry their anchor after it, so a lost snapshot and a new email make no duplicate', async () => {
      // The other tool made an account for every person, by email, without our anchors.
      const mails = [10, 12, 14, 16].map((n) => mailOf(r.ldif, userDn(n)));
      for (const mail of mails) {
        const made = await accountMadeByHand(r.scim, mail, mail, { externalId: `other-tool-${mail}` });
        expect(made.status).to.equal(201);
      }
      const first = await runCycle(r.config);
      expect(first.report.exitCode, first.report.error).to.equal(0);
      expect(first.report.rebuild?.linkedUsers).to.equal(4);
      const byMail = new Map((await listAll<ViewUser>(r.scim.url, r.scim.token, 'Users')).map((u) => [u.userName.toLowerCase(), u]));
      for (const mail of mails) expect(byMail.get(mail)?.externalId, mail).to.not.match(/^other-tool-/);
      await expectScimMatchesDirectory(r.config, r.scim);

      forget(r.config);
      await r.slapd.modify(`dn: ${userDn(12)}\nchangetype: modify\nreplace: mail\nmail: renamed.person@example.test\n`);
      const after = await runCycle(r.config);
      expect(after.report.exitCode, after.report.error).to.equal(0);
      expect(after.report.done.createUser ?? 0).to.equal(0);
      const users = await listAll<ViewUser>(r.scim.url, r.scim.token, 'Users');
      expect(users.filter((u) => u.userName.toLowerCase() === 'renamed.person@example.test' || u.userName.toLowerCase() === mails[1])).to.have.length(1);
      await expectScimMatchesDirectory(r.config, r.scim);
    });
  });

  describe('a mapping that skips everyone', () => {
    let r: Rig;
    before(async () => {
      r = await rig(30, 'mapping: { user: { email: employeeNumber } }\n');
    });
    after(() => stopRig(r));

    it('fails check, and plan says the cycle is held instead of "No changes"', async () => {
      const check = await runCheck(r.config);
      expect(check.exitCode).to.equal(1);
      expect(check.lines.find((l) => l.what === 'mapping')?.text).to.match(/skipped every one of the \d+ user entries/);
      const dry = await runCycle(r.config, { dryRun: true });
      expect(dry.report.exitCode).to.equal(4);
      const table = renderPlanTable(dry.plan!, { guard: dry.report.guard ?? [] });
      expect(table).to.not.match(/No changes/);
      expect(table).to.match(/HELD by a safety guard: the mapping skipped every one/);
    });
  });
});
