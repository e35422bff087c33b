import { readFileSync, rmSync, statSync } from 'node:fs';
import { expect } from 'chai';
import { readDesiredState } from '../../src/directory/reader.js';
import type { UserField } from '../../src/model.js';
import { startSandbox, type RunningSandbox } from '../../src/sandbox/server.js';
import { ScimTransport } from '../../src/scim/transport.js';
import { journalFileFor } from '../../src/state/journal.js';
import { scimQuirksFileFor } from '../../src/state/scim-quirks.js';
import type { SnapshotData } from '../../src/state/snapshot.js';
import { runCycle } from '../../src/sync/cycle.js';
import { mailOf, recordOf, rig, stopRig, SUFFIX, userDn, type Rig } from '../support/sample-rig.js';
import { listAll, type ViewGroup, type ViewUser } from '../support/scim-view.js';

// Issue 18, part 3: the sandbox answers as the real endpoint is described to (members dropped from a group create,
// no `active` anywhere, name parts, userName and externalId "updated" without a change, the filter form of a member
// removal refused), all at once, and the connector must still bring the SCIM side to what the directory says, say
// what it could not do, and then rest: a quiet cycle writes nothing.

const IGNORED: readonly string[] = ['name.givenName', 'name.familyName', 'nickName', 'userName', 'externalId'];
/** The connector's fields behind those paths: what the SCIM side may keep as it was, and the snapshot must say so. */
const KEPT_FIELDS: readonly UserField[] = ['givenName', 'familyName', 'userName'];

const engineering = `cn=engineering,ou=groups,${SUFFIX}`;
const sales = `cn=sales,ou=groups,${SUFFIX}`;

describe('what the SCIM side answered, checked rather than assumed', function () {
  this.timeout(180_000);
  let r: Rig;
  before(async () => {
    r = await rig(30, '', '', { ignoreMembersOnGroupCreate: true, omitActive: true, ignorePatchOf: IGNORED, refuseRemoveFilterPath: true });
  });
  after(() => stopRig(r));

  const snapshot = () => JSON.parse(readFileSync(r.config.state.path, 'utf8')) as SnapshotData;

  /**
   * expectScimMatchesDirectory's checks, adapted: the SCIM side shows no `active` (the sandbox's own store does),
   * accounts are found by email (the takeover's externalId is not taken), and a field the server keeps must be what
   * the snapshot records, with the directory's value noted as not applied.
   */
  async function expectScimHoldsDirectory(): Promise<void> {
    const { desired } = await readDesiredState(r.config, r.config.mapping);
    const listed = await listAll<ViewUser>(r.scim.url, r.scim.token, 'Users');
    for (const u of listed) expect(u, 'the sandbox leaves active out').to.not.have.property('active');
    const held = r.scim.sandbox!.users();
    const byEmail = new Map(held.map((u) => [u.emails?.find((e) => e.primary)?.value.toLowerCase() ?? '', u]));
    const state = snapshot();
    const ours = new Set<string>();
    for (const want of desired.users.values()) {
      const got = byEmail.get(want.attrs.email);
      if (!got && !want.attrs.active) continue; // a disabled account never provisioned is not created
      expect(got, `SCIM user for ${want.dn}`).to.not.equal(undefined);
      ours.add(got!.id);
      expect(got!.active, `active of ${want.dn}`).to.equal(want.attrs.active);
      expect(got!.title).to.equal(want.attrs.title);
      expect(got!.displayName).to.equal(want.attrs.displayName);
      const record = state.users[want.anchor];
      expect(record?.id, `snapshot record of ${want.dn}`).to.equal(got!.id);
      const server: Partial<Record<UserField, string | undefined>> = { userName: got!.userName.toLowerCase(), givenName: got!.name?.givenName, familyName: got!.name?.familyName };
      for (const field of KEPT_FIELDS) {
        expect(record!.attrs[field], `the snapshot's ${field} of ${want.dn} is what the SCIM side holds`).to.equal(server[field]);
        if (server[field] !== want.attrs[field]) expect(record!.notApplied?.[field], `${field} of ${want.dn}`).to.equal(want.attrs[field] ?? null);
      }
    }
    for (const u of held) if (!ours.has(u.id)) expect(u.active, `${u.userName} is out of scope and must be inactive`).to.equal(false);
    const groups = await listAll<ViewGroup>(r.scim.url, r.scim.token, 'Groups');
    const groupsByName = new Map(groups.map((g) => [g.displayName.toLowerCase(), g]));
    expect(groups.length, 'no SCIM group beyond the directory groups').to.equal(desired.groups.size);
    for (const want of desired.groups.values()) {
      const got = groupsByName.get(want.displayName.toLowerCase());
      expect(got, `SCIM group ${want.displayName}`).to.not.equal(undefined);
      const wanted = want.members.flatMap((a) => byEmail.get(desired.users.get(a)?.attrs.email ?? '')?.id ?? []);
      expect((got!.members ?? []).map((m) => m.value).sort(), `members of ${want.displayName}`).to.deep.equal(wanted.sort());
    }
  }

  async function expectQuiet(): Promise<void> {
    const quiet = await runCycle(r.config);
    expect(quiet.report.exitCode, quiet.report.error).to.equal(0);
    expect(quiet.report.calls.writes, `a quiet cycle planned ${JSON.stringify(quiet.report.planned)}`).to.equal(0);
  }

  const badRequests = () => r.scim.sandbox!.requests.filter((q) => q.status === 400);

  it('a first sync fills the groups the create left empty, and a quiet cycle after it writes nothing', async () => {
    const first = await runCycle(r.config);
    expect(first.report.exitCode, first.report.error).to.equal(0);
    expect(first.report.failures).to.deep.equal([]);
    expect(first.report.done.createGroup).to.equal(4);
    for (const g of await listAll<ViewGroup>(r.scim.url, r.scim.token, 'Groups')) expect(g.members ?? [], g.displayName).to.not.be.empty;
    await expectScimHoldsDirectory();
    await expectQuiet();
  });

  it('a change the SCIM side answers without taking is recorded as it is, warned about once, and not sent again', async () => {
    const renamed = userDn(7);
    const moved = userDn(8);
    await r.slapd.modify(
      `dn: ${renamed}\nchangetype: modify\nreplace: sn\nsn: Newname\n-\nreplace: givenName\ngivenName: Newgiven\n-\nreplace: title\ntitle: Renamed Title\n\n` +
        `dn: ${moved}\nchangetype: modify\nreplace: mail\nmail: moved.u8@example.test\n`,
    );
    const cycle = await runCycle(r.config);
    expect(cycle.report.exitCode, cycle.report.error).to.equal(0);
    expect(cycle.report.done.updateUser).to.equal(2);
    const notApplied = cycle.report.warnings.filter((w) => w.startsWith('not applied by the SCIM side: '));
    expect(notApplied.map((w) => /^not applied by the SCIM side: (\w+) of user (\S+)/.exec(w)?.slice(1, 3).join(' ')).sort()).to.deep.equal([
      `familyName ${mailOf(r.ldif, renamed)}`,
      `givenName ${mailOf(r.ldif, renamed)}`,
      'userName moved.u8@example.test',
    ]);
    const held = r.scim.sandbox!.users();
    const u7 = held.find((u) => u.emails?.[0]?.value === mailOf(r.ldif, renamed))!;
    expect(u7.title, 'a field the server does take is taken').to.equal('Renamed Title');
    expect(u7.name?.familyName).to.not.equal('Newname');
    expect(held.find((u) => u.emails?.[0]?.value === 'moved.u8@example.test')?.userName).to.equal(mailOf(r.ldif, moved));
    await expectScimHoldsDirectory();
    await expectQuiet();
  });

  it('a deprovisioning removes the member in the form the server takes, and keeps that form for later cycles', async () => {
    const gone = userDn(10);
    await r.slapd.modify(`dn: ${gone}\nchangetype: delete\n`);
    r.scim.sandbox!.resetRequests();
    const cycle = await runCycle(r.config);
    expect(cycle.report.exitCode, cycle.report.error).to.equal(0);
    expect(cycle.report.failures).to.deep.equal([]);
    expect(cycle.report.done.deactivateUser).to.equal(1);
    expect(cycle.report.done.removeMembers ?? 0).to.be.greaterThan(0);
    // Two groups lose the person (engineering, and everyone above it): the filter form is refused once, the other
    // removal waits for that one and goes in the value-list form.
    expect(cycle.report.done.removeMembers).to.equal(2);
    expect(badRequests()).to.have.length(1);
    const file = scimQuirksFileFor(r.config.state.path);
    expect(JSON.parse(readFileSync(file, 'utf8'))).to.include({ removeMembersForm: 'value-list' });
    expect(statSync(file).mode & 0o777, 'owner-only').to.equal(0o600);
    await expectScimHoldsDirectory();
    await expectQuiet();
  });

  it('the next removal is sent in the remembered form: no 400', async () => {
    await r.slapd.modify(`dn: ${sales}\nchangetype: modify\ndelete: member\nmember: ${userDn(12)}\n`);
    r.scim.sandbox!.resetRequests();
    const cycle = await runCycle(r.config);
    expect(cycle.report.exitCode, cycle.report.error).to.equal(0);
    expect(cycle.report.done.removeMembers).to.equal(2); // sales, and everyone above it
    expect(badRequests()).to.deep.equal([]);
    await expectScimHoldsDirectory();
    await expectQuiet();
  });

  it('the person back in the directory is reactivated and back in the groups', async () => {
    const dn = userDn(10);
    await r.slapd.modify(recordOf(r.ldif, dn));
    const cycle = await runCycle(r.config);
    expect(cycle.report.exitCode, cycle.report.error).to.equal(0);
    expect(cycle.report.done.reactivateUser).to.equal(1);
    // The takeover writes the new anchor as externalId, which this server keeps as it was.
    expect(cycle.report.warnings.some((w) => w.startsWith(`not applied by the SCIM side: externalId of user ${mailOf(r.ldif, dn)}`))).to.equal(true);
    const back = r.scim.sandbox!.users().filter((u) => u.emails?.[0]?.value === mailOf(r.ldif, dn));
    expect(back).to.have.length(1);
    expect(back[0]!.active).to.equal(true);
    await expectScimHoldsDirectory();
    await expectQuiet();
  });

  it('a deactivated person is reactivated even when the state is rebuilt from a listing that shows no active', async () => {
    const dn = userDn(13);
    await r.slapd.modify(`dn: ${dn}\nchangetype: delete\n`);
    const gone = await runCycle(r.config);
    expect(gone.report.done.deactivateUser).to.equal(1);
    expect(r.scim.sandbox!.users().find((u) => u.emails?.[0]?.value === mailOf(r.ldif, dn))?.active).to.equal(false);
    rmSync(r.config.state.path, { force: true });
    rmSync(journalFileFor(r.config.state.path), { force: true });
    await r.slapd.modify(recordOf(r.ldif, dn));
    const rebuilt = await runCycle(r.config);
    expect(rebuilt.report.exitCode, rebuilt.report.error).to.equal(0);
    expect(rebuilt.report.rebuild?.linkedUsers).to.be.greaterThan(0);
    expect(r.scim.sandbox!.users().find((u) => u.emails?.[0]?.value === mailOf(r.ldif, dn))?.active).to.equal(true);
    // The listing could not tell anyone's state, so every account linked was sent it once (the person back among
    // them), and recorded as sent: the quiet cycle below proves it is not sent again.
    const linked = rebuilt.report.rebuild!.linkedUsers;
    expect((rebuilt.report.done.reactivateUser ?? 0) + (rebuilt.report.done.deactivateUser ?? 0)).to.equal(linked);
    await expectScimHoldsDirectory();
    await expectQuiet();
  });
});

describe('a 429 whose X-RateLimit-Reset is no usable wait', function () {
  this.timeout(60_000);
  for (const style of ['past', 'minute'] as const) {
    it(`falls back to the exponential backoff (reset ${style === 'past' ? 'in the past' : 'cut to the minute'})`, async () => {
      const sandbox: RunningSandbox = await startSandbox({ token: 'rate-token', rateLimit: { requestsPerSecond: 4 }, rateLimitResetStyle: style });
      const transport = new ScimTransport({ baseUrl: sandbox.url, token: () => 'rate-token', requestsPerSecond: 100, concurrency: 4, timeoutSeconds: 10, maxRetries: 4, maxRetryWaitSeconds: 10 });
      try {
        const calls = Array.from({ length: 16 }, (_, i) => transport.request('GET', '/Users', `read ${i}`, undefined, { count: 1 }));
        const answers = await Promise.allSettled(calls);
        const refused = sandbox.requests.filter((q) => q.status === 429);
        expect(refused.length, 'the limiter was reached').to.be.greaterThan(0);
        const header = await fetch(`${sandbox.url}/Users`, { headers: { authorization: 'Bearer rate-token' } });
        if (header.status === 429) expect(header.headers.get('x-ratelimit-reset')).to.match(style === 'minute' ? /^\d{4}-\d\d-\d\dT\d\d:\d\dZ$/ : /Z$/);
        // Taken at its word, the reset sent each retry within a quarter of a second, into the same limit, and
        // calls failed for good once their retries were spent; backed off, every one gets through.
        expect(answers.filter((a) => a.status === 'rejected').map((a) => String((a as PromiseRejectedResult).reason))).to.deep.equal([]);
      } finally {
        transport.close();
        await sandbox.close();
      }
    });
  }
});
