import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { parse as parseCsv } from 'csv-parse/sync';
import { auditFileFor } from '../../src/audit/audit-log.js';
import type { AuditEntry } from '../../src/audit/audit-entry.js';
import { SAMPLE_SPECIAL_USERS } from '../../src/demo/sample-directory.js';
import { readDesiredState } from '../../src/directory/reader.js';
import { groupApprovalFileFor } from '../../src/plan/group-approval.js';
import { runCycle } from '../../src/sync/cycle.js';
import { assertCliBuilt, cli } from '../support/cli-run.js';
import { mailOf, rig, stopRig, userDn, type Rig } from '../support/sample-rig.js';
import { listAll, scimRequest, type ViewGroup, type ViewUser } from '../support/scim-view.js';

// Issue 17's walk, as a new admin does it on real slapd and the sandbox: review who will be provisioned, find a
// group someone made on the SCIM side beforehand left alone until approved, then answer "what happened to this
// person, and when?" from the audit trail.
describe('reviews, group conflicts and the audit trail', function () {
  this.timeout(180_000);
  let r: Rig;
  let outsiderId: string;
  let salesId: string;
  const run = (...args: string[]) => cli([...args, '--config', r.written.file]);

  before(async () => {
    assertCliBuilt();
    // "platform" is held in the organization outside the SCIM directory: Atlassian refuses its create.
    r = await rig(40, '', '', { organizationGroups: ['platform'] });
    const outsider = await scimRequest(r.scim.url, r.scim.token, 'POST', '/Users', {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
      userName: 'contractor@elsewhere.test',
      emails: [{ value: 'contractor@elsewhere.test', primary: true }],
      active: true,
    });
    outsiderId = outsider.body.id;
    // Made on the SCIM side before ldap-scim ever ran, under the name of a directory group, with another member.
    const sales = await scimRequest(r.scim.url, r.scim.token, 'POST', '/Groups', {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'],
      displayName: 'Sales',
      members: [{ value: outsiderId }],
    });
    expect(sales.status).to.equal(201);
    salesId = sales.body.id;
  });
  after(() => stopRig(r));

  const salesGroup = async () => (await listAll<ViewGroup>(r.scim.url, r.scim.token, 'Groups')).find((g) => g.id === salesId)!;
  const scimIdsOf = async (anchors: readonly string[]) => {
    const users = await listAll<ViewUser>(r.scim.url, r.scim.token, 'Users');
    return users.filter((u) => u.externalId !== undefined && anchors.includes(u.externalId)).map((u) => u.id).sort();
  };

  it('review lists every person who will be provisioned, in Atlassian\'s columns, then the skipped entries with their reason', async () => {
    const out = path.join(r.written.dir, 'users.csv');
    const review = await run('review', '--out', out);
    expect(review.code, review.stderr).to.equal(0);
    const rows = parseCsv(readFileSync(out, 'utf8'), { columns: true }) as Record<string, string>[];
    const { desired } = await readDesiredState(r.config, r.config.mapping);
    const people = rows.filter((row) => row['Email address'] && !row['Skipped because']);
    expect(people.map((p) => p['Unique identifier']).sort()).to.deep.equal([...desired.users.keys()].sort());
    const sales = desired.groups.get([...desired.groups.values()].find((g) => g.displayName === 'sales')!.anchor)!;
    for (const p of people) {
      const user = desired.users.get(p['Unique identifier']!)!;
      expect(p['Email address']).to.equal(user.attrs.email);
      expect(p['Active status']).to.equal(user.attrs.active ? 'yes' : 'no');
      expect(p['Next sync']).to.equal(user.attrs.active ? 'create' : 'none: disabled, not provisioned');
      // Flattened, as on the SCIM side; the group whose name someone else holds says it is held.
      expect(p['Group membership']!.includes('sales (held: group conflict)')).to.equal(sales.members.includes(user.anchor));
    }
    const engineer = people.find((p) => p.DN === userDn(SAMPLE_SPECIAL_USERS.directAndNested))!;
    expect(engineer['Group membership']).to.match(/engineering.*everyone.*platform/);
    const noMail = rows.find((row) => row.DN === userDn(SAMPLE_SPECIAL_USERS.noMail))!;
    expect(noMail['Skipped because']).to.match(/mail/);
    expect(noMail['Email address']).to.equal('');
    expect(r.scim.sandbox!.writeCount()).to.equal(2); // the two made by hand above: review wrote nothing
  });

  it('leaves the conflicting group as it is and shows its breakdown; a name held outside the SCIM directory is a conflict too, not a failure', async () => {
    for (let cycle = 0; cycle < 2; cycle++) {
      const { report } = await runCycle(r.config);
      expect(report.exitCode, report.error).to.equal(0);
      expect(report.failures).to.deep.equal([]);
      const sales = report.conflicts.find((c) => c.displayName === 'sales')!;
      expect(sales).to.deep.include({ scimId: salesId, status: 'awaiting approval', keep: 0 });
      expect(sales.remove.map((m) => m.id)).to.deep.equal([outsiderId]);
      expect(sales.add.length).to.be.greaterThan(0);
      const platform = report.conflicts.find((c) => c.displayName === 'platform')!;
      expect(platform.status).to.equal('outside the SCIM directory');
      expect(platform.wayOut).to.match(/rename the group in the directory, or free the name in Atlassian Administration/);
      // The refused create is not posted again by the next scheduled cycle: a quiet cycle writes nothing.
      if (cycle === 1) expect(report.calls.writes).to.equal(0);
    }
    const untouched = await salesGroup();
    expect(untouched.members?.map((m) => m.value)).to.deep.equal([outsiderId]);
    expect(untouched.externalId).to.equal(undefined);

    const plan = await run('plan', '--format', 'table');
    expect(plan.stdout).to.match(/conflict +group sales +awaiting approval: a SCIM group made outside ldap-scim .* adds \d+, removes 1, keeps 0; .*plan --approve-group "sales"/);
    const json = JSON.parse((await run('plan', '--format', 'json')).stdout) as { conflicts: { displayName: string; add: { email: string }[]; remove: { id: string }[] }[] };
    const breakdown = json.conflicts.find((c) => c.displayName === 'sales')!;
    expect(breakdown.add.every((m) => m.email.endsWith('@example.test'))).to.equal(true);
    expect(breakdown.remove.map((m) => m.id)).to.deep.equal([outsiderId]);
  });

  it('adopts the group once approved by name: its members are then the directory\'s, it carries the anchor, and the approval is used up', async () => {
    const wrong = await run('plan', '--approve-group', 'sails');
    expect(wrong.code).to.equal(2);
    expect(wrong.stderr).to.match(/"sails" is not a group conflict of this plan; the conflicts it shows are "sales" \("platform": held outside the SCIM directory, which no approval can adopt\)/);
    expect(existsSync(groupApprovalFileFor(r.config.state.path))).to.equal(false);

    const approve = await run('plan', '--approve-group', 'SALES');
    expect(approve.code, approve.stderr).to.equal(0);
    expect(approve.stderr).to.match(/approved: the next sync adopts SCIM group "sales" \(.+\): \d+ members added, 1 removed/);
    // A migration's many conflicts at once: every adoptable one, never the name held outside the SCIM directory.
    const all = await run('plan', '--approve-all-groups');
    expect(all.code, all.stderr).to.equal(0);
    expect(all.stderr.match(/^approved: /gm)).to.have.length(1);
    const approvals = JSON.parse(readFileSync(groupApprovalFileFor(r.config.state.path), 'utf8')) as { groups: { displayName: string }[] };
    expect(approvals.groups.map((g) => g.displayName)).to.deep.equal(['sales']);
    const { report } = await runCycle(r.config);
    expect(report.exitCode, report.error).to.equal(0);
    expect(report.done.adoptGroup).to.equal(1);
    const { desired } = await readDesiredState(r.config, r.config.mapping);
    const wanted = [...desired.groups.values()].find((g) => g.displayName === 'sales')!;
    const adopted = await salesGroup();
    expect(adopted.members?.map((m) => m.value).sort()).to.deep.equal(await scimIdsOf(wanted.members));
    expect(adopted.externalId).to.equal(wanted.anchor);
    expect(existsSync(groupApprovalFileFor(r.config.state.path))).to.equal(false);
    const quiet = await runCycle(r.config);
    expect(quiet.report.calls.writes, JSON.stringify(quiet.report.failures)).to.equal(0);
  });

  it('history answers what happened to a person, with old -> new values and times, and to a group', async () => {
    const edited = userDn(10);
    const leaver = userDn(11);
    const leaverMail = mailOf(r.ldif, leaver);
    await r.slapd.modify(`dn: ${edited}\nchangetype: modify\nreplace: title\ntitle: Chief Tester\n`);
    await r.slapd.modify(`dn: ${leaver}\nchangetype: delete\n`);
    const before = new Date().toISOString();
    const sync = await run('sync');
    expect(sync.code, sync.stderr + sync.stdout).to.equal(0);
    expect(sync.stdout).to.match(/audit trail: \d+ writes recorded in .*snapshot\.json\.audit\.jsonl/);
    // sync keeps its cycle report as the daemon does.
    expect(readdirSync(path.join(path.dirname(r.config.state.path), 'reports')).filter((f) => f.startsWith('cycle-'))).to.have.length(1);

    const title = await run('history', '--user', 'u0010');
    expect(title.code, title.stderr).to.equal(0);
    const titleLine = title.stdout.split('\n').find((l) => l.includes('updateUser'))!;
    expect(titleLine).to.match(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +updateUser +\S+ +title: (\(none\)|".*") -> "Chief Tester"/);
    expect(title.stdout).to.match(/createUser/); // its whole story, first provisioning included

    // The leaver's entry is gone from the directory: found by the email that was pushed.
    const gone = JSON.parse((await run('history', '--user', leaverMail, '--format', 'json', '--since', before)).stdout) as AuditEntry[];
    const deactivated = gone.find((e) => e.op === 'deactivateUser')!;
    expect(deactivated).to.deep.include({ outcome: 'ok', email: leaverMail });
    expect(deactivated.changes).to.deep.equal([{ field: 'active', from: true, to: false }]);
    expect(new Date(deactivated.time) >= new Date(before)).to.equal(true);
    const removals = gone.filter((e) => e.op === 'removeMembers');
    expect(removals.length).to.be.greaterThan(0);
    for (const e of removals) expect(e.removed?.map((m) => m.email)).to.deep.equal([leaverMail]);

    const group = await run('history', '--group', 'Sales', '--format', 'csv');
    const rows = parseCsv(group.stdout, { columns: true }) as Record<string, string>[];
    const adoption = rows.find((row) => row.operation === 'adoptGroup')!;
    expect(adoption.details).to.match(/removed contractor@elsewhere\.test|removed SCIM user/);
    expect(adoption.details).to.include('externalId');

    const none = await run('history', '--user', 'u0010', '--since', '2099-01-01');
    expect(none.stdout).to.equal('No recorded writes match.\n');
    const bad = await run('history', '--since', 'last tuesday');
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.include('--since last tuesday: must be a date');
  });

  it('keeps the trail owner-only, and no secret in it', () => {
    const file = auditFileFor(r.config.state.path);
    expect(statSync(file).mode & 0o777).to.equal(0o600);
    const text = readFileSync(file, 'utf8');
    expect(text).to.not.include(r.slapd.rootPassword);
    expect(text).to.not.include(r.scim.token);
    // Every line is a whole JSON object with the fields history relies on.
    for (const line of text.trim().split('\n')) expect(JSON.parse(line)).to.include.keys('time', 'cycle', 'op', 'type', 'name', 'anchor', 'outcome');
  });
});
