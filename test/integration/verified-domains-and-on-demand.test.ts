import { readFileSync, writeFileSync } from 'node:fs';
import { expect } from 'chai';
import type { Config } from '../../src/config/load.js';
import { loadConfig } from '../../src/config/load.js';
import { readDesiredState } from '../../src/directory/reader.js';
import { runCheck } from '../../src/sync/check.js';
import { runCycle } from '../../src/sync/cycle.js';
import { assertCliBuilt, cli } from '../support/cli-run.js';
import { mailOf, rig, stopRig, SUFFIX, userDn, type Rig } from '../support/sample-rig.js';
import { listAll, type ViewGroup, type ViewUser } from '../support/scim-view.js';

const DISABLED = '(&(objectClass=inetOrgPerson)(!(employeeType=disabled)))';

// Issue 18 parts 1 and 5 on real slapd and the sandbox, which imitates Atlassian's verified domains: an email moved
// off them, or a deactivation outside them, takes the person out of every SCIM group.
describe('verified domains and provision on demand', function () {
  this.timeout(180_000);
  let r: Rig;
  let config: Config;
  const scimUser = async (mail: string) => (await listAll<ViewUser>(r.scim.url, r.scim.token, 'Users')).find((u) => u.emails?.some((e) => e.value === mail) || u.userName === mail);
  const groupsOf = async (id: string) =>
    (await listAll<ViewGroup>(r.scim.url, r.scim.token, 'Groups'))
      .filter((g) => g.members?.some((m) => m.value === id))
      .map((g) => g.displayName)
      .sort();
  const wantedGroupsOf = async (dn: string) => {
    const { desired } = await readDesiredState(config, config.mapping);
    const anchor = [...desired.users.values()].find((u) => u.dn === dn)!.anchor;
    return [...desired.groups.values()].filter((g) => g.members.includes(anchor)).map((g) => g.displayName).sort();
  };

  before(async () => {
    assertCliBuilt();
    r = await rig(24, '', '', { verifiedDomains: ['example.test'] }, '  verifiedDomains: [example.test]\n');
    // Deactivation in OpenLDAP is leaving the filter: employeeType=disabled takes a person out, and back in.
    writeFileSync(r.written.file, readFileSync(r.written.file, 'utf8').replace(/users: \{ baseDn: "([^"]+)" \}/, `users: { baseDn: "$1", filter: "${DISABLED}" }`));
    config = loadConfig(r.written.file);
    // A contractor on a partner's domain, in the sales or engineering group like the others.
    await r.slapd.modify(`dn: ${userDn(11)}\nchangetype: modify\nreplace: mail\nmail: u11@partner.test\n`);
    const first = await runCycle(config);
    expect(first.report.exitCode, first.report.error).to.equal(0);
  });
  after(() => stopRig(r));

  it('marks and counts the people outside the verified domains, in check, plan and review', async () => {
    const check = await runCheck(config);
    expect(check.lines.map((l) => l.text).join('\n')).to.match(/1 of \d+ people in scope have an email outside target\.verifiedDomains \(partner\.test\)/);
    // A misspelt domain leaves nobody on the list: check says so in as many words.
    const typo = { ...config, target: { ...config.target, verifiedDomains: ['exmaple.test'] } };
    expect((await runCheck(typo)).lines.map((l) => l.text).join('\n')).to.match(/none of the \d+ people in scope has an email on target\.verifiedDomains \(theirs: example\.test, partner\.test\): is a domain misspelt/);
    const dry = await runCycle(config, { dryRun: true });
    expect(dry.report.unmanagedUsers).to.equal(1);
    await r.slapd.modify(`dn: ${userDn(11)}\nchangetype: modify\nreplace: title\ntitle: Visiting Expert\n`);
    const plan = await cli(['plan', '--config', r.written.file]);
    expect(plan.stdout).to.match(/updateUser +user +u11@partner\.test +not managed by Atlassian \(email outside target\.verifiedDomains\): attribute changes will not apply; title: /);
    expect(plan.stderr).to.match(/not managed by Atlassian: 1 people in scope/);
    const review = await cli(['review', '--config', r.written.file]);
    expect(review.stdout.split('\n').find((l) => l.startsWith('u11@partner.test'))).to.include('no: not managed by Atlassian');
    // Decided: the update is still sent (see README): the SCIM record holds it, and the plan stops asking.
    const sync = await runCycle(config);
    expect(sync.report.done.updateUser).to.equal(1);
  });

  it('a deactivation outside the verified domains drops the groups, and the reactivation adds them back', async () => {
    const mail = 'u11@partner.test';
    const id = (await scimUser(mail))!.id;
    const groups = await wantedGroupsOf(userDn(11));
    expect(groups.length).to.be.greaterThan(0);
    expect(await groupsOf(id)).to.deep.equal(groups);
    await r.slapd.modify(`dn: ${userDn(11)}\nchangetype: modify\nadd: employeeType\nemployeeType: disabled\n`);
    const off = await runCycle(config);
    expect(off.report.done.deactivateUser, off.report.error).to.equal(1);
    expect(await groupsOf(id)).to.deep.equal([]); // Atlassian's doing (the sandbox imitates it)
    const quiet = await runCycle(config);
    expect(quiet.report.calls.writes).to.equal(0);
    await r.slapd.modify(`dn: ${userDn(11)}\nchangetype: modify\ndelete: employeeType\n`);
    const on = await runCycle(config);
    expect(on.report.exitCode, on.report.error).to.equal(0);
    expect(on.report.done.reactivateUser).to.equal(1);
    // With OpenLDAP, leaving the filter also takes the person out of the groups in the plan itself; an Active
    // Directory account disabled in place stays in its groups, where the snapshot's own forgetting matters (unit
    // test "verified domains"). The email test below depends on it here.
    expect(await groupsOf(id)).to.deep.equal(groups);
  });

  it('holds an email moving off the verified domains with exit 4, and lets it through once after plan --approve', async () => {
    const dn = userDn(10);
    const old = mailOf(r.ldif, dn);
    const id = (await scimUser(old))!.id;
    await r.slapd.modify(`dn: ${dn}\nchangetype: modify\nreplace: mail\nmail: u10@example.org\n`);
    r.scim.sandbox!.resetRequests();
    const held = await runCycle(config);
    expect(held.report.exitCode).to.equal(4);
    expect(held.report.error).to.match(new RegExp(`1 people's email would leave target\\.verifiedDomains \\(${old.replace('.', '\\.')} -> u10@example\\.org\\): Atlassian then removes them from every group`));
    expect(r.scim.sandbox!.writeCount()).to.equal(0);

    const approve = await cli(['plan', '--config', r.written.file, '--approve']);
    expect(approve.code, approve.stderr).to.equal(0);
    expect(approve.stderr).to.match(/approved: .* and 1 emails leaving the verified domains once/);
    const through = await runCycle(config);
    expect(through.report.exitCode, through.report.error).to.equal(0);
    expect((await scimUser('u10@example.org'))?.id).to.equal(id);
    // Atlassian took the person out of the SCIM groups; the directory still has them in, so the next cycle adds
    // them back, and then the SCIM side matches the directory again.
    const after = await runCycle(config);
    expect(after.report.exitCode, after.report.error).to.equal(0);
    expect(await groupsOf(id)).to.deep.equal(await wantedGroupsOf(dn));
    expect((await runCycle(config)).report.calls.writes).to.equal(0);
  });

  it('sync --user applies only what the cycle does for that person; the next full sync does the rest', async () => {
    const dns = [13, 14, 15, 16, 17].map(userDn);
    await r.slapd.modify(dns.map((dn) => `dn: ${dn}\nchangetype: modify\nreplace: title\ntitle: Changed Together\n`).join('\n'));
    r.scim.sandbox!.resetRequests();
    const one = await cli(['sync', '--config', r.written.file, '--user', 'u0014', '--json']);
    expect(one.code, one.stderr).to.equal(0);
    const report = JSON.parse(one.stdout) as { onlyUser: { id: string }; planned: Record<string, number>; calls: { writes: number } };
    expect(report.onlyUser.id).to.equal('u0014');
    expect(report.planned).to.deep.equal({ updateUser: 1 });
    expect(r.scim.sandbox!.writeCount()).to.equal(1);
    expect((await scimUser(mailOf(r.ldif, userDn(14))))!.title).to.equal('Changed Together');
    expect((await scimUser(mailOf(r.ldif, userDn(13))))!.title).to.not.equal('Changed Together');
    const history = await cli(['history', '--config', r.written.file, '--user', 'u0014', '--since', '1h']);
    expect(history.stdout).to.match(/updateUser .* -> "Changed Together"/);

    r.scim.sandbox!.resetRequests();
    const rest = await runCycle(config);
    expect(rest.report.done).to.deep.equal({ updateUser: 4 });
    expect(r.scim.sandbox!.writeCount()).to.equal(4);
  });

  it('sync --user makes a new person with their groups, each created with only them if it does not exist yet', async () => {
    const dn = `uid=newcomer,ou=people,${SUFFIX}`;
    await r.slapd.modify(
      `dn: ${dn}\nchangetype: add\nobjectClass: inetOrgPerson\nuid: newcomer\ncn: New Comer\nsn: Comer\nmail: newcomer@example.test\n\n` +
        `dn: cn=pilots,ou=groups,${SUFFIX}\nchangetype: add\nobjectClass: groupOfNames\ncn: pilots\nmember: ${dn}\nmember: ${userDn(13)}\n`,
    );
    r.scim.sandbox!.resetRequests();
    const one = await cli(['sync', '--config', r.written.file, '--user', 'newcomer@example.test']);
    expect(one.code, one.stderr + one.stdout).to.equal(0);
    expect(one.stdout).to.match(/provision on demand: only what this cycle does for newcomer@example\.test/);
    const newcomer = (await scimUser('newcomer@example.test'))!;
    const pilots = (await listAll<ViewGroup>(r.scim.url, r.scim.token, 'Groups')).find((g) => g.displayName === 'pilots')!;
    expect(pilots.members?.map((m) => m.value)).to.deep.equal([newcomer.id]);
    const rest = await runCycle(config);
    expect(rest.report.done).to.deep.equal({ addMembers: 1 });

    const nobody = await cli(['sync', '--config', r.written.file, '--user', 'nobody-here']);
    expect(nobody.code).to.equal(1);
    expect(nobody.stdout).to.match(/nobody-here: no user entry with this DN or name .* nothing was written/);
  });
});
