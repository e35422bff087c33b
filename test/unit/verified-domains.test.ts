import { expect } from 'chai';
import type { DesiredGroup, DesiredState, DesiredUser, UserAttributes } from '../../src/model.js';
import { removalDigest } from '../../src/plan/approval.js';
import { checkSafety } from '../../src/plan/guard.js';
import type { Operation } from '../../src/plan/operations.js';
import { onlyForPerson } from '../../src/plan/one-person.js';
import { planSync } from '../../src/plan/plan.js';
import { renderPlanTable } from '../../src/plan/render.js';
import { markVerifiedDomains, VerifiedDomains } from '../../src/plan/verified-domains.js';
import { emptySnapshot, type SnapshotData } from '../../src/state/snapshot.js';

const attrs = (mail: string, extra: Partial<UserAttributes> = {}): UserAttributes => ({ userName: mail, email: mail, active: true, ...extra });
const user = (anchor: string, mail: string, extra: Partial<UserAttributes> = {}): DesiredUser => ({ anchor, dn: `uid=${anchor}`, attrs: attrs(mail, extra) });
const group = (anchor: string, members: string[]): DesiredGroup => ({ anchor, dn: `cn=${anchor}`, displayName: anchor, members });
const desired = (users: DesiredUser[], groups: DesiredGroup[] = []): DesiredState => ({
  users: new Map(users.map((u) => [u.anchor, u])),
  groups: new Map(groups.map((g) => [g.anchor, g])),
  skipped: [],
  membersOutsideScope: 0,
});
const opts = { membersPerPatch: 100, deprovision: 'deactivate' as const };
const limits = { maxDeactivations: 500, maxDeactivationPercent: 10, maxGroupDeletions: 50, maxShrinkPercent: 20 };

function snapshot(users: [string, UserAttributes][], groups: SnapshotData['groups'] = {}): SnapshotData {
  const s = emptySnapshot();
  for (const [a, u] of users) s.users[a] = { id: `id-${a}`, attrs: u };
  s.groups = groups;
  return s;
}

describe('verified domains', () => {
  const verified = new VerifiedDomains(['Example.com']);

  it('counts a domain exactly as written after the @: a subdomain is not verified with its parent', () => {
    expect(verified.manages('jane@EXAMPLE.com')).to.equal(true);
    expect(verified.manages('jane@eu.example.com')).to.equal(false);
    expect(verified.manages('jane@example.com.evil.test')).to.equal(false);
  });

  it('holds an email leaving the verified domains like a removal, and an approval covers exactly it', () => {
    const snap = snapshot([['a', attrs('a@example.com')], ['b', attrs('b@example.com')]]);
    const plan = planSync(desired([user('a', 'a@example.org'), user('b', 'b@example.com', { title: 'New' })]), snap, opts);
    markVerifiedDomains(plan, verified);
    const [stop, ...more] = checkSafety(plan, desired([user('a', 'a@example.org'), user('b', 'b@example.com')]), snap, limits);
    expect(more).to.deep.equal([]);
    expect(stop).to.deep.include({ forceable: true });
    expect(stop!.reason).to.match(/^1 people's email would leave target\.verifiedDomains \(a@example\.com -> a@example\.org\)/);
    const digest = removalDigest(plan);
    expect(digest.emailsLeaving).to.equal(1);
    // Another destination is another change: the approval written for the first no longer matches.
    const other = planSync(desired([user('a', 'a@example.net'), user('b', 'b@example.com', { title: 'New' })]), snap, opts);
    markVerifiedDomains(other, verified);
    expect(removalDigest(other).digest).to.not.equal(digest.digest);
    expect(renderPlanTable(plan)).to.match(/email leaves target\.verifiedDomains \(a@example\.com -> a@example\.org\): Atlassian removes/);
  });

  it('marks people outside them, and says which operations cost them their SCIM groups', () => {
    const snap = snapshot([['p', attrs('p@partner.test')], ['m', attrs('m@example.com')]]);
    const plan = planSync(desired([user('p', 'p@partner.test', { active: false }), user('m', 'm@example.com', { active: false })]), snap, opts);
    markVerifiedDomains(plan, verified);
    const [partner, member] = plan.operations as Extract<Operation, { kind: 'updateUser' | 'reactivateUser' | 'deactivateUser' }>[];
    expect(partner).to.deep.include({ kind: 'deactivateUser', unmanaged: true });
    expect(member!.unmanaged).to.equal(undefined);
    expect(verified.dropsMemberships(partner!)).to.equal(true);
    expect(verified.dropsMemberships(member!)).to.equal(false);
  });

  it('does not put a deactivated person outside them back into groups Atlassian took them out of', () => {
    // An Active Directory account disabled in place stays in its groups: after Atlassian dropped them (and the
    // snapshot forgot them), the plan must not add them back while they are disabled; the reactivation does.
    const snap = snapshot([['p', attrs('p@partner.test', { active: false })]], { g: { id: 'gid', displayName: 'g', members: [] } });
    const disabled = desired([user('p', 'p@partner.test', { active: false })], [group('g', ['p'])]);
    expect(planSync(disabled, snap, { ...opts, noMembershipFor: new Set(['p']) }).operations).to.deep.equal([]);
    const back = planSync(desired([user('p', 'p@partner.test')], [group('g', ['p'])]), snap, opts);
    expect(back.operations.map((o) => o.kind)).to.deep.equal(['reactivateUser', 'addMembers']);
  });
});

describe('provision on demand (sync --user)', () => {
  it('keeps only the person: their own operation, their line of each membership change, new groups with them alone', () => {
    const snap = snapshot([['a', attrs('a@x.test')], ['b', attrs('b@x.test')]], { old: { id: 'gid', displayName: 'old', members: ['a', 'b'] } });
    const plan = planSync(
      desired([user('a', 'a@x.test', { title: 'T' }), user('b', 'b@x.test', { title: 'T' }), user('c', 'c@x.test')], [group('old', ['c']), group('new', ['a', 'b', 'c'])]),
      snap,
      opts,
    );
    const show = (ops: Operation[]) => ops.map((o) => `${o.kind}:${'members' in o ? o.members.join('+') : 'anchor' in o ? o.anchor : o.groupAnchor}`);
    expect(show(onlyForPerson(plan.operations, 'a'))).to.deep.equal(['updateUser:a', 'createGroup:a', 'removeMembers:a']);
    expect(show(onlyForPerson(plan.operations, 'c'))).to.deep.equal(['createUser:c', 'createGroup:c', 'addMembers:c']);
    expect(onlyForPerson(plan.operations, 'nobody')).to.deep.equal([]);
  });
});
