import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import type { Config } from '../../src/config/load.js';
import { startThrowawaySlapd, type ThrowawaySlapd } from '../../src/demo/throwaway-slapd.js';
import type { MappedState } from '../../src/mapping/desired-state.js';
import { renderReport } from '../../src/sync/report.js';
import { dnKey } from '../../src/directory/dn.js';
import { scimFilterEq, SCHEMA_ENTERPRISE_USER, SCHEMA_PATCH } from '../../src/scim/atlassian-rules.js';
import { Snapshot } from '../../src/state/snapshot.js';
import { runCycle, type CycleOutcome } from '../../src/sync/cycle.js';
import { hostileDirectory, HOSTILE_SUFFIX, type ExpectedUser } from '../support/hostile-directory.js';
import { listAll, scimRequest, type ViewGroup, type ViewUser } from '../support/scim-view.js';
import { startScim, writeConfig, type ScimUnderTest } from '../support/sync-env.js';

const FIXTURE = new URL('../fixtures/hostile-entries.ldif', import.meta.url);
const corpus = hostileDirectory();
const QUOTED_GROUP = 'odd "quoted" \\ name';
const STAR_USER = 'robert*tables@example.test';

/** A SCIM user in the shape of ExpectedUser (plus active), absent fields left out. */
function shapeOf(u: ViewUser): ExpectedUser & { active: boolean; nickName?: unknown; preferredLanguage?: unknown } {
  const enterprise = u[SCHEMA_ENTERPRISE_USER] as { department?: string; organization?: string } | undefined;
  const shape = {
    userName: u.userName,
    email: u.emails?.find((e) => e.primary)?.value ?? '',
    active: u.active,
    displayName: u.displayName,
    givenName: u.name?.givenName,
    familyName: u.name?.familyName,
    title: u.title,
    department: enterprise?.department,
    organization: enterprise?.organization,
    nickName: u.nickName,
    preferredLanguage: u.preferredLanguage,
  };
  return Object.fromEntries(Object.entries(shape).filter(([, v]) => v !== undefined)) as unknown as ReturnType<typeof shapeOf>;
}

describe('hostile and broken directory entries: OpenLDAP → sandbox', function () {
  this.timeout(120_000);
  let slapd: ThrowawaySlapd;
  let scim: ScimUnderTest;
  let config: Config;
  let first: CycleOutcome;

  before(async () => {
    const ldif = readFileSync(FIXTURE, 'utf8');
    expect(ldif === corpus.ldif, 'test/fixtures/hostile-entries.ldif is stale: npx tsx test/support/hostile-directory.ts > test/fixtures/hostile-entries.ldif').to.equal(true);
    slapd = await startThrowawaySlapd({ suffix: HOSTILE_SUFFIX, ldif });
    scim = await startScim('sandbox');
    // nickName reads `audio`, the one attribute of inetOrgPerson where slapd stores bytes that are not UTF-8.
    const { load } = writeConfig({
      ldapUrl: slapd.url,
      suffix: HOSTILE_SUFFIX,
      bindDn: slapd.rootDn,
      bindPassword: slapd.rootPassword,
      scimUrl: scim.url,
      token: scim.token,
      pageSize: 7,
      extra: 'mapping:\n  user:\n    nickName: audio\n',
    });
    config = load();
    first = await runCycle(config);
  });
  after(async () => {
    await scim?.stop();
    await slapd?.stop();
  });

  it('the full sync ends with exit 0: skips are not failures', () => {
    expect(first.report.exitCode, first.report.error).to.equal(0);
    expect(first.report.failures).to.deep.equal([]);
    expect(first.report.directory).to.include({ userEntries: corpus.users.length, groupEntries: corpus.groups.length });
  });

  it('every entry that cannot be provisioned is skipped with its DN and a reason that says what is wrong', () => {
    const expected = [
      ...corpus.users.filter((u) => u.skip).map((u) => ({ dn: u.dn, kind: 'user', reason: u.skip })),
      ...corpus.groups.filter((g) => g.skip).map((g) => ({ dn: g.dn, kind: 'group', reason: g.skip })),
    ];
    const got = first.report.skipped.map((s) => ({ dn: s.dn, kind: s.kind, reason: s.reason }));
    expect(got).to.have.deep.members(expected);
    for (const s of first.report.skipped) expect(s.anchor, `anchor of ${s.dn}`).to.match(/^[0-9a-f-]{36}$/);
  });

  it('every good user and every odd-but-valid one is on the SCIM side with exactly the mapped values', async () => {
    const scimUsers = await listAll<ViewUser>(scim.url, scim.token, 'Users');
    const byUserName = new Map(scimUsers.map((u) => [u.userName, u]));
    const wanted = corpus.users.filter((u) => u.synced);
    expect([...byUserName.keys()]).to.have.members(wanted.map((u) => u.synced!.userName));
    for (const u of wanted) {
      const got = byUserName.get(u.synced!.userName)!;
      expect(shapeOf(got), `${u.uid}: ${u.why}`).to.deep.equal({ ...u.synced, active: true });
      expect(got.externalId, u.uid).to.match(/^[0-9a-f-]{36}$/);
    }
  });

  it('what the mapping cleaned is reported as a warning naming the entry and the field, and nothing else is', () => {
    const { warnings } = first.desired as MappedState;
    expect(warnings, 'DesiredStateBuilder.finish() carries the warnings').to.be.an('array');
    for (const u of corpus.users.filter((x) => x.synced)) {
      const mine = warnings.filter((w) => dnKey(w.dn) === dnKey(u.dn));
      const want = u.warnings ?? {};
      expect(mine.map((w) => w.field), u.uid).to.have.members(Object.keys(want));
      for (const w of mine) expect(w.message, `${u.uid} ${w.field}`).to.match(want[w.field]!);
    }
    expect(warnings.every((w) => w.kind === 'user')).to.equal(true);
    // ... and they reach the admin: in the cycle report, entry by entry.
    expect(first.report.adjusted.map((a) => `${a.dn} ${a.field}`)).to.have.members(warnings.map((w) => `${w.dn} ${w.field}`));
    expect(renderReport(first.report)).to.match(/adjusted values \(\d+; the entries were synced\):/);
  });

  it('groups sync flattened: self-containing and cyclic groups end, odd member spellings resolve, nothing of site-admins', async () => {
    const scimUsers = await listAll<ViewUser>(scim.url, scim.token, 'Users');
    const groups = await listAll<ViewGroup>(scim.url, scim.token, 'Groups');
    const uidByUserName = new Map(corpus.users.filter((u) => u.synced).map((u) => [u.synced!.userName, u.uid]));
    const uidById = new Map(scimUsers.map((u) => [u.id, uidByUserName.get(u.userName)!]));
    const wanted = corpus.groups.filter((g) => !g.skip);
    expect(groups.map((g) => g.displayName)).to.have.members(wanted.map((g) => g.cn));
    expect(groups.map((g) => g.displayName.toLowerCase())).to.not.include('site-admins');
    for (const g of wanted) {
      const got = groups.find((x) => x.displayName === g.cn)!;
      expect((got.members ?? []).map((m) => uidById.get(m.value)).sort(), `${g.cn}: ${g.why}`).to.deep.equal([...g.members!].sort());
    }
    expect(first.report.directory.membersOutsideScope).to.equal(corpus.membersOutsideScope);
  });

  it('names with quotes, backslashes and * come back intact through an escaped SCIM filter', async () => {
    const byName = await scimRequest(scim.url, scim.token, 'GET', `/Groups?filter=${encodeURIComponent(scimFilterEq('displayName', QUOTED_GROUP))}`);
    expect(byName.status).to.equal(200);
    expect(byName.body.Resources.map((g: ViewGroup) => g.displayName)).to.deep.equal([QUOTED_GROUP]);
    const byUserName = await scimRequest(scim.url, scim.token, 'GET', `/Users?filter=${encodeURIComponent(scimFilterEq('userName', STAR_USER))}`);
    expect(byUserName.body.Resources.map((u: ViewUser) => u.userName)).to.deep.equal([STAR_USER]);
  });

  it('a second sync makes no write', async () => {
    scim.sandbox!.resetRequests();
    const { report } = await runCycle(config);
    expect(report.exitCode, report.error).to.equal(0);
    expect(report.planned).to.deep.equal({});
    expect(report.calls.writes).to.equal(0);
    expect(scim.sandbox!.writeCount()).to.equal(0);
  });

  it('creates that meet the quoted group and the * user already there (409) find them by escaped filter and link them', async () => {
    // As if the answers to our first POSTs had been lost: the state does not know the two, and the user's SCIM
    // record lost its externalId, so only the lookups by displayName and by userName can find them.
    const desired = first.desired!;
    const groupAnchor = [...desired.groups.values()].find((g) => g.displayName === QUOTED_GROUP)!.anchor;
    const userAnchor = [...desired.users.values()].find((u) => u.attrs.email === STAR_USER)!.anchor;
    const groupsBefore = await listAll<ViewGroup>(scim.url, scim.token, 'Groups');
    const usersBefore = await listAll<ViewUser>(scim.url, scim.token, 'Users');
    const star = usersBefore.find((u) => u.userName === STAR_USER)!;
    const unlinked = await scimRequest(scim.url, scim.token, 'PATCH', `/Users/${star.id}`, { schemas: [SCHEMA_PATCH], Operations: [{ op: 'remove', path: 'externalId' }] });
    expect(unlinked.status).to.be.oneOf([200, 204]);
    const snapshot = await Snapshot.open(config.state.path);
    snapshot.setGroup(groupAnchor, undefined);
    snapshot.setUser(userAnchor, undefined);
    await snapshot.save();
    snapshot.close();

    scim.sandbox!.resetRequests();
    const { report } = await runCycle(config);
    expect(report.exitCode, report.error).to.equal(0);
    expect(report.failures).to.deep.equal([]);
    const posts = scim.sandbox!.requests.filter((r) => r.method === 'POST');
    expect(posts.map((r) => `${r.path} ${r.status}`)).to.have.members(['/scim/directory/sandbox/Users 409', '/scim/directory/sandbox/Groups 409']);
    const groupsAfter = await listAll<ViewGroup>(scim.url, scim.token, 'Groups');
    const usersAfter = await listAll<ViewUser>(scim.url, scim.token, 'Users');
    expect(groupsAfter.map((g) => g.id).sort()).to.deep.equal(groupsBefore.map((g) => g.id).sort());
    expect(usersAfter.map((u) => u.id).sort()).to.deep.equal(usersBefore.map((u) => u.id).sort());
    expect(usersAfter.find((u) => u.id === star.id)!.externalId).to.equal(userAnchor);

    scim.sandbox!.resetRequests();
    const quiet = await runCycle(config);
    expect(quiet.report.exitCode, quiet.report.error).to.equal(0);
    expect(quiet.report.calls.writes).to.equal(0);
    expect(scim.sandbox!.writeCount()).to.equal(0);
  });
});
