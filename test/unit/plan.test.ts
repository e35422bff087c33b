import { expect } from 'chai';
import type { DesiredGroup, DesiredState, DesiredUser, UserAttributes } from '../../src/model.js';
import { checkSafety } from '../../src/plan/guard.js';
import { planSync } from '../../src/plan/plan.js';
import { unseenAttributeWarnings } from '../../src/plan/mapping-warnings.js';
import { applyLimits, recommendedLimitWarnings } from '../../src/plan/caps.js';
import { removalDigest } from '../../src/plan/approval.js';
import { resolveMapping } from '../../src/mapping/rules.js';
import { emailLookup, renderPlanCsv, renderPlanJson, renderPlanTable } from '../../src/plan/render.js';
import { emptySnapshot, type SnapshotData } from '../../src/state/snapshot.js';

const opts = { membersPerPatch: 2, deprovision: 'deactivate' as const };
const attrs = (n: string, extra: Partial<UserAttributes> = {}): UserAttributes => ({ userName: `${n}@x.test`, email: `${n}@x.test`, active: true, displayName: n, ...extra });
const user = (n: string, extra: Partial<UserAttributes> = {}): DesiredUser => ({ anchor: n, dn: `uid=${n}`, attrs: attrs(n, extra) });
const group = (anchor: string, displayName: string, members: string[]): DesiredGroup => ({ anchor, dn: `cn=${displayName}`, displayName, members });

function desired(users: DesiredUser[], groups: DesiredGroup[] = [], skipped: DesiredState['skipped'] = []): DesiredState {
  return { users: new Map(users.map((u) => [u.anchor, u])), groups: new Map(groups.map((g) => [g.anchor, g])), skipped, membersOutsideScope: 0 };
}

function snapshotOf(users: [string, UserAttributes][], groups: SnapshotData['groups'] = {}): SnapshotData {
  const s = emptySnapshot();
  for (const [anchor, a] of users) s.users[anchor] = { id: `id-${anchor}`, attrs: a };
  s.groups = groups;
  return s;
}

describe('planner', () => {
  it('creates users then groups with members in batches, in that order', () => {
    const plan = planSync(desired([user('a'), user('b'), user('c')], [group('g', 'eng', ['a', 'b', 'c'])]), emptySnapshot(), opts);
    expect(plan.operations.map((o) => o.kind)).to.deep.equal(['createUser', 'createUser', 'createUser', 'createGroup', 'addMembers']);
    const create = plan.operations[3] as { members: string[] };
    expect(create.members).to.deep.equal(['a', 'b']);
    expect((plan.operations[4] as { members: string[] }).members).to.deep.equal(['c']);
  });

  it('makes no operation at all when nothing changed', () => {
    const snap = snapshotOf([['a', attrs('a')]], { g: { id: 'gid', displayName: 'eng', members: ['a'] } });
    expect(planSync(desired([user('a')], [group('g', 'eng', ['a'])]), snap, opts).operations).to.deep.equal([]);
  });

  it('patches only the changed fields, and removes a field that lost its value', () => {
    const snap = snapshotOf([['a', attrs('a', { title: 'Dev', department: 'R&D' })]]);
    const [op] = planSync(desired([user('a', { title: 'Lead' })]), snap, opts).operations;
    expect(op).to.deep.include({ kind: 'updateUser', id: 'id-a' });
    expect((op as { changes: unknown[] }).changes).to.deep.equal([
      { field: 'title', from: 'Dev', to: 'Lead' },
      { field: 'department', from: 'R&D' },
    ]);
  });

  it('deactivates users who left the scope, last, and reactivates those who come back', () => {
    const snap = snapshotOf([
      ['gone', attrs('gone')],
      ['back', attrs('back', { active: false })],
      ['stay', attrs('stay')],
    ]);
    const plan = planSync(desired([user('stay', { title: 'New' }), user('back')]), snap, opts);
    expect(plan.operations.map((o) => `${o.kind}:${'anchor' in o ? o.anchor : ''}`)).to.deep.equal([
      'updateUser:stay',
      'reactivateUser:back',
      'deactivateUser:gone',
    ]);
  });

  it('never deprovisions a user whose entry is still there but was skipped', () => {
    const snap = snapshotOf([['a', attrs('a')]]);
    const plan = planSync(desired([], [], [{ dn: 'uid=a', kind: 'user', reason: 'shared email', anchor: 'a' }]), snap, opts);
    expect(plan.operations).to.deep.equal([]);
  });

  it('keeps a skipped user in its groups, also across a group rename', () => {
    const skip = [{ dn: 'uid=a', kind: 'user' as const, reason: 'email "@SUM(1)" is not a usable address', anchor: 'a' }];
    const snap = snapshotOf([['a', attrs('a')], ['b', attrs('b')]], {
      g: { id: 'gid', displayName: 'eng', members: ['a', 'b'] },
      h: { id: 'hid', displayName: 'ops', members: ['a', 'b'] },
    });
    // The directory still lists "a" as a member, but its entry cannot be mapped, so "a" is not among the desired members.
    const plan = planSync(desired([user('b')], [group('g', 'eng', ['b']), group('h', 'ops-team', ['b'])], skip), snap, opts);
    expect(plan.operations.filter((o) => o.kind === 'removeMembers')).to.deep.equal([]);
    const created = plan.operations.find((o) => o.kind === 'createGroup') as { displayName: string; members: string[] };
    expect(created).to.deep.include({ displayName: 'ops-team' });
    expect(created.members).to.have.members(['a', 'b']);
  });

  it('does not create a disabled account that was never provisioned', () => {
    expect(planSync(desired([user('d', { active: false })]), emptySnapshot(), opts).operations).to.deep.equal([]);
  });

  it('deletes users instead when target.deprovision is delete', () => {
    const plan = planSync(desired([]), snapshotOf([['a', attrs('a')]]), { ...opts, deprovision: 'delete' });
    expect(plan.operations).to.deep.equal([{ kind: 'deleteUser', anchor: 'a', id: 'id-a', userName: 'a@x.test' }]);
  });

  it('removes, then adds members in batches against the snapshot (a group at its member cap has room only after the removals)', () => {
    const snap = snapshotOf([], { g: { id: 'gid', displayName: 'eng', members: ['a', 'b', 'c'] } });
    const plan = planSync(desired([], [group('g', 'eng', ['a', 'd', 'e', 'f'])]), snap, opts);
    expect(plan.operations.map((o) => [o.kind, (o as { members: string[] }).members])).to.deep.equal([
      ['removeMembers', ['b', 'c']],
      ['addMembers', ['d', 'e']],
      ['addMembers', ['f']],
    ]);
  });

  it('turns a rename into create + delete, with a warning about lost permissions', () => {
    const snap = snapshotOf([['a', attrs('a')]], { g: { id: 'old', displayName: 'eng', members: ['a'] } });
    const plan = planSync(desired([user('a')], [group('g', 'engineering', ['a'])]), snap, opts);
    expect(plan.operations).to.deep.equal([
      { kind: 'createGroup', anchor: 'g', dn: 'cn=engineering', displayName: 'engineering', members: ['a'], renamedFrom: { id: 'old', displayName: 'eng' } },
      { kind: 'deleteGroup', groupAnchor: 'g', id: 'old', displayName: 'eng', reason: 'renamed' },
    ]);
    expect(plan.warnings[0]).to.match(/permissions granted to "eng" are lost/);
  });

  it('keeps a group whose name changed only in letter case, with a warning', () => {
    const snap = snapshotOf([], { g: { id: 'gid', displayName: 'Eng', members: [] } });
    const plan = planSync(desired([], [group('g', 'eng', [])]), snap, opts);
    expect(plan.operations).to.deep.equal([]);
    expect(plan.warnings[0]).to.match(/letter case only/);
  });

  it('finishes a rename interrupted before the old group was deleted', () => {
    const snap = snapshotOf([], { g: { id: 'new', displayName: 'engineering', members: [], retired: [{ id: 'old', displayName: 'eng' }] } });
    const plan = planSync(desired([], [group('g', 'engineering', [])]), snap, opts);
    expect(plan.operations).to.deep.equal([{ kind: 'deleteGroup', groupAnchor: 'g', id: 'old', displayName: 'eng', reason: 'renamed' }]);
  });

  it('deletes groups that left the scope', () => {
    const snap = snapshotOf([], { g: { id: 'gid', displayName: 'eng', members: [] } });
    expect(planSync(desired([]), snap, opts).operations).to.deep.equal([
      { kind: 'deleteGroup', groupAnchor: 'g', id: 'gid', displayName: 'eng', reason: 'left the directory scope' },
    ]);
  });

  describe('safety guard', () => {
    const limits = { maxDeactivations: 1, maxGroupDeletions: 5, maxShrinkPercent: 50 };
    it('stops an empty scope whatever the thresholds, and --force cannot override it', () => {
      const snap = snapshotOf([['a', attrs('a')]]);
      const d = desired([]);
      const stops = checkSafety(planSync(d, snap, opts), d, snap, { ...limits, maxDeactivations: 100, maxShrinkPercent: 100 });
      expect(stops).to.have.length(1);
      expect(stops[0]).to.deep.include({ forceable: false });
    });
    it('stops more deactivations than allowed', () => {
      const snap = snapshotOf([['a', attrs('a')], ['b', attrs('b')], ['c', attrs('c')], ['d', attrs('d')]]);
      const d = desired([user('c'), user('d')]);
      const stops = checkSafety(planSync(d, snap, opts), d, snap, limits);
      expect(stops.map((s) => s.reason)).to.deep.equal(['2 users would be deactivated, over safety.maxDeactivations 1']);
    });
    it('holds a removal that is large for this organization with the default share, not only past the absolute count', () => {
      const people = Array.from({ length: 300 }, (_, i) => `p${i}`);
      const snap = snapshotOf(people.map((p) => [p, attrs(p)]));
      const d = desired(people.slice(45).map((p) => user(p)));
      const defaults = { maxDeactivations: 500, maxDeactivationPercent: 10, maxGroupDeletions: 50, maxShrinkPercent: 20 };
      const stops = checkSafety(planSync(d, snap, opts), d, snap, defaults);
      expect(stops.map((s) => s.reason)).to.deep.equal(['45 users would be deactivated, 15.0% of the 300 provisioned, over safety.maxDeactivationPercent 10%']);
      expect(stops[0]!.forceable).to.equal(true);
    });
    it('lets a small organization lose a few people without holding the cycle', () => {
      const people = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'];
      const snap = snapshotOf(people.map((p) => [p, attrs(p)]));
      const d = desired(people.slice(2).map((p) => user(p)));
      expect(checkSafety(planSync(d, snap, opts), d, snap, { ...limits, maxDeactivations: 500, maxDeactivationPercent: 10 })).to.deep.equal([]);
    });
    it('holds a plan in which the mapping skipped every user, even on a first run, and --force cannot override it', () => {
      const d = desired([], [], [{ kind: 'user', dn: 'uid=a', reason: 'no value for email (mail)' }]);
      const stops = checkSafety(planSync(d, emptySnapshot(), opts), d, emptySnapshot(), limits);
      expect(stops).to.have.length(1);
      expect(stops[0]).to.deep.include({ forceable: false });
      expect(stops[0]!.reason).to.match(/mapping skipped every one of the 1 user entries/);
    });
    it('lets an ordinary plan through', () => {
      const snap = snapshotOf([['a', attrs('a')]]);
      const d = desired([user('a', { title: 'x' }), user('b')]);
      expect(checkSafety(planSync(d, snap, opts), d, snap, limits)).to.deep.equal([]);
    });

    describe('with the removals of the last safety.windowMinutes', () => {
      const defaults = { maxDeactivations: 500, maxDeactivationPercent: 10, maxGroupDeletions: 50, maxShrinkPercent: 20 };
      // 260 provisioned, 10 of them gone from the directory; 40 more were deactivated in the window before.
      const people = Array.from({ length: 260 }, (_, i) => `p${i}`);
      const snap = snapshotOf(people.map((p) => [p, attrs(p)]));
      const d = desired(people.slice(10).map((p) => user(p)));
      const plan = planSync(d, snap, opts);

      it('counts them with the plan in the share, of the people provisioned before them', () => {
        expect(checkSafety(plan, d, snap, defaults)).to.deep.equal([]);
        expect(checkSafety(plan, d, snap, defaults, { users: 40, groups: 0, windowMinutes: 60 })).to.deep.equal([
          { reason: '10 users would be deactivated, and 40 were in the last 60 minutes: 50, 16.7% of the 300 provisioned before them, over safety.maxDeactivationPercent 10%', forceable: true },
        ]);
      });
      it('counts them with the plan against maxDeactivations', () => {
        expect(checkSafety(plan, d, snap, { ...defaults, maxDeactivationPercent: 100 }, { users: 491, groups: 0, windowMinutes: 30 }).map((s) => s.reason)).to.deep.equal([
          '10 users would be deactivated, and 491 were in the last 30 minutes: 501, over safety.maxDeactivations 500',
        ]);
        expect(checkSafety(plan, d, snap, { ...defaults, maxDeactivationPercent: 100 }, { users: 490, groups: 0, windowMinutes: 30 })).to.deep.equal([]);
      });
      it('keeps the per-cycle wording and outcome when the window is empty or windowMinutes is 0', () => {
        const small = { ...defaults, maxDeactivations: 9 };
        const alone = ['10 users would be deactivated, over safety.maxDeactivations 9'];
        expect(checkSafety(plan, d, snap, small, { users: 0, groups: 0, windowMinutes: 60 }).map((s) => s.reason)).to.deep.equal(alone);
        expect(checkSafety(plan, d, snap, small, { users: 5_000, groups: 500, windowMinutes: 0 }).map((s) => s.reason)).to.deep.equal(alone);
        expect(checkSafety(plan, d, snap, defaults, { users: 5_000, groups: 500, windowMinutes: 0 })).to.deep.equal([]);
      });
      it('never holds a plan that removes no one for what the window holds', () => {
        const quiet = desired(people.map((p) => user(p, { title: 'x' })));
        const updates = planSync(quiet, snap, opts);
        expect(updates.operations).to.have.length(260);
        expect(checkSafety(updates, quiet, snap, defaults, { users: 5_000, groups: 500, windowMinutes: 60 })).to.deep.equal([]);
      });
      it('counts groups deleted in the window against maxGroupDeletions, renames aside', () => {
        const groups = { g: { id: 'gid', displayName: 'eng', members: [] }, r: { id: 'new', displayName: 'ops', members: [], retired: [{ id: 'old', displayName: 'operations' }] } };
        const withGroups = snapshotOf([['a', attrs('a')]], groups);
        const keeps = desired([user('a')], [group('r', 'ops', [])]);
        const deletes = planSync(keeps, withGroups, opts);
        expect(deletes.operations.map((o) => o.kind)).to.deep.equal(['deleteGroup', 'deleteGroup']);
        expect(checkSafety(deletes, keeps, withGroups, defaults, { users: 0, groups: 50, windowMinutes: 60 }).map((s) => s.reason)).to.deep.equal([
          '1 groups would be deleted, and 50 were in the last 60 minutes: 51, over safety.maxGroupDeletions 50',
        ]);
        expect(checkSafety(deletes, keeps, withGroups, defaults, { users: 0, groups: 49, windowMinutes: 60 })).to.deep.equal([]);
        // Only the rename's old group left: not a removal, so the window does not count.
        const renameOnly = planSync(desired([user('a')], [group('r', 'ops', []), group('g', 'eng', [])]), withGroups, opts);
        expect(renameOnly.operations.map((o) => o.kind)).to.deep.equal(['deleteGroup']);
        expect(checkSafety(renameOnly, keeps, withGroups, defaults, { users: 0, groups: 500, windowMinutes: 60 })).to.deep.equal([]);
      });
    });
  });

  describe('a person re-created in the directory (new anchor, same email)', () => {
    it('takes over the account of the old entry when it left the scope: one update, no create, no deactivation', () => {
      const snap = snapshotOf([['old', attrs('jane', { title: 'Dev' })]], { g: { id: 'gid', displayName: 'eng', members: ['old'] } });
      const plan = planSync(desired([user('new', { userName: 'jane@x.test', email: 'jane@x.test', displayName: 'jane', title: 'Lead' })], [group('g', 'eng', ['new'])]), snap, opts);
      expect(plan.operations).to.have.length(1);
      expect(plan.operations[0]).to.deep.include({ kind: 'updateUser', anchor: 'new', id: 'id-old', setExternalId: true, takeOver: { anchor: 'old', userName: 'jane@x.test' } });
      expect((plan.operations[0] as { changes: unknown[] }).changes).to.deep.equal([{ field: 'title', from: 'Dev', to: 'Lead' }]);
    });
    it('reactivates the account when the old entry had been deactivated', () => {
      const snap = snapshotOf([['old', attrs('jane', { active: false })]]);
      const [op, ...rest] = planSync(desired([user('new', { userName: 'jane@x.test', email: 'jane@x.test', displayName: 'jane' })]), snap, opts).operations;
      expect(rest).to.deep.equal([]);
      expect(op).to.deep.include({ kind: 'reactivateUser', anchor: 'new', id: 'id-old', takeOver: { anchor: 'old', userName: 'jane@x.test' } });
    });
    it('never takes over an account whose old entry is still in scope or skipped', () => {
      const skipped = [{ kind: 'user' as const, dn: 'uid=old', reason: 'broken', anchor: 'old' }];
      const snap = snapshotOf([['old', attrs('jane')]]);
      const plan = planSync(desired([user('new', { userName: 'jane@x.test', email: 'jane@x.test' })], [], skipped), snap, opts);
      expect(plan.operations.map((o) => o.kind)).to.deep.equal(['createUser']);
    });
  });

  it('writes the anchor of an account linked by name, once, and of a group linked by name with no retired group left', () => {
    const snap = snapshotOf([['a', attrs('a')]], {
      g: { id: 'gid', displayName: 'eng', members: ['a'], unanchored: true },
      r: { id: 'rid', displayName: 'new-name', members: [], unanchored: true, retired: [{ id: 'old', displayName: 'old-name' }] },
    });
    snap.users.a!.unanchored = true;
    const plan = planSync(desired([user('a')], [group('g', 'eng', ['a']), group('r', 'new-name', [])]), snap, opts);
    expect(plan.operations.map((o) => o.kind)).to.deep.equal(['updateUser', 'anchorGroup', 'deleteGroup']);
    expect(plan.operations[0]).to.deep.include({ setExternalId: true, changes: [] });
    expect(plan.operations[1]).to.deep.include({ groupAnchor: 'g', id: 'gid' });
  });

  it('never reads "No changes" above a guard that holds the cycle', () => {
    const empty = planSync(desired([]), emptySnapshot(), opts);
    expect(renderPlanTable(empty)).to.match(/^No changes/);
    const held = renderPlanTable(empty, { guard: ['the mapping skipped every one of the 3 user entries read'] });
    expect(held).to.not.match(/No changes/);
    expect(held).to.match(/HELD by a safety guard: the mapping skipped every one/);
  });

  it('renders a CSV that a spreadsheet cannot execute', () => {
    const plan = planSync(desired([user('a'), user('=1+1', { title: '@SUM(A1)' })]), emptySnapshot(), opts);
    const lines = renderPlanCsv(plan).split('\n');
    expect(lines[0]).to.equal('action,type,name,member,anchor,dn,details');
    expect(lines[1]).to.equal('createUser,user,a@x.test,,a,uid=a,"userName: ""a@x.test""; active: true; displayName: ""a"""');
    expect(lines[2]).to.equal(`createUser,user,'=1+1@x.test,,'=1+1,uid==1+1,"userName: ""=1+1@x.test""; active: true; displayName: ""=1+1""; title: ""@SUM(A1)"""`);
  });

  it('names people by email and lists every member of a membership change, one CSV row each, with the skipped entries', () => {
    const snap = snapshotOf([['a', attrs('a')], ['b', attrs('b')], ['c', attrs('c')], ['gone', attrs('gone')]], {
      g: { id: 'gid', displayName: 'eng', members: ['a', 'gone'] },
    });
    const skipped = [{ kind: 'user' as const, dn: 'uid=broken', reason: 'no mail', anchor: 'broken' }];
    const d = desired([user('a'), user('b'), user('c')], [group('g', 'eng', ['a', 'b', 'c'])], skipped);
    const plan = planSync(d, snap, opts);
    const context = { emailOf: emailLookup(d, snap), skipped };
    const csv = renderPlanCsv(plan, context).trim().split('\n');
    expect(csv.filter((l) => l.startsWith('addMembers,')).map((l) => l.split(',')[3])).to.deep.equal(['b@x.test', 'c@x.test']);
    expect(csv.filter((l) => l.startsWith('removeMembers,')).map((l) => l.split(',')[3])).to.deep.equal(['gone@x.test']);
    expect(csv).to.include('skip,user,,,broken,uid=broken,no mail');
    const json = JSON.parse(renderPlanJson(plan, context)) as { operations: { kind: string; members?: { email: string }[] }[]; skipped: unknown[] };
    expect(json.operations.find((o) => o.kind === 'addMembers')?.members?.map((m) => m.email)).to.deep.equal(['b@x.test', 'c@x.test']);
    expect(json.skipped).to.deep.equal(skipped);
    const table = renderPlanTable(plan, context);
    expect(table).to.match(/addMembers +group eng +2 members added: b@x\.test, c@x\.test/);
    expect(table).to.match(/deactivateUser +user +gone@x\.test/);
    expect(table).to.include('skipped user uid=broken: no mail');
  });

  it('warns about a mapped attribute no entry has only when the plan clears that field', () => {
    const rules = resolveMapping('openldap', { user: { title: 'titel' } });
    const snap = snapshotOf([['a', attrs('a', { title: 'Dev' })], ['b', attrs('b')]]);
    const plan = planSync(desired([user('a'), user('b')]), snap, opts);
    const [warning, ...rest] = unseenAttributeWarnings(rules, ['titel', 'preferredlanguage'], plan);
    expect(rest).to.deep.equal([]);
    expect(warning).to.match(/^mapping\.user\.title reads titel, .* clears title for 1 users/);
    // Nothing to clear (first sync, or nobody had a title): no warning, whatever is unseen.
    expect(unseenAttributeWarnings(rules, ['titel'], planSync(desired([user('a')]), emptySnapshot(), opts))).to.deep.equal([]);
  });

  it('caps a group at maxGroupMembers: current members first, then by userName, the same every time', () => {
    const users = ['e', 'd', 'c', 'b', 'a'].map((n) => user(n));
    const snap = snapshotOf(users.map((u) => [u.anchor, u.attrs]), { g: { id: 'gid', displayName: 'eng', members: ['e'] } });
    const d = desired(users, [group('g', 'eng', ['a', 'b', 'c', 'd', 'e'])]);
    const warnings = applyLimits(d, snap, { maxUsers: 100, maxGroupMembers: 3 });
    expect(d.groups.get('g')!.members).to.deep.equal(['e', 'a', 'b']);
    expect(warnings).to.deep.equal(['group "eng" has 5 members, over limits.maxGroupMembers 3: 2 are left out (current members keep their place, then by userName)']);
  });

  it('caps users at maxUsers: the provisioned keep their place and the rest are held, not deprovisioned', () => {
    const snap = snapshotOf([['z', attrs('z')]]);
    const d = desired(['z', 'b', 'a'].map((n) => user(n)), [group('g', 'eng', ['z', 'a', 'b'])]);
    applyLimits(d, snap, { maxUsers: 2, maxGroupMembers: 100 });
    expect([...d.users.keys()].sort()).to.deep.equal(['a', 'z']);
    expect(d.skipped).to.deep.equal([{ dn: 'uid=b', kind: 'user', reason: 'over limits.maxUsers (2 users per Atlassian directory): not provisioned', anchor: 'b' }]);
    expect(d.groups.get('g')!.members).to.deep.equal(['z', 'a']);
    expect(planSync(d, snap, opts).operations.map((o) => o.kind)).to.deep.equal(['createUser', 'createGroup']);
  });

  it('warns above the figures Atlassian recommends (500,000 users, 250,000 in a group, 2,500,000 memberships), citing its page', () => {
    const many = Array.from({ length: 250_001 }, (_, i) => String(i));
    const d = desired([user('a')], [group('g', 'all-staff', many), ...Array.from({ length: 10 }, (_, i) => group(`h${i}`, `big-${i}`, many))]);
    const warnings = recommendedLimitWarnings(d);
    expect(warnings.filter((w) => /^members of group "all-staff": 250,001, over the 250,000/.test(w))).to.have.length(1);
    expect(warnings.at(-1)).to.equal('group memberships: 2,750,011, over the 2,500,000 Atlassian recommends staying under (support.atlassian.com/provisioning-users/docs/users-and-groups-limits)');
    expect(recommendedLimitWarnings(desired([user('a')], [group('g', 'eng', ['a'])]))).to.deep.equal([]);
  });

  it('an approval digest depends on who is removed, not on the order of the plan', () => {
    const snap = snapshotOf([['a', attrs('a')], ['b', attrs('b')], ['c', attrs('c')]]);
    const one = removalDigest(planSync(desired([user('c')]), snap, opts));
    const other = removalDigest(planSync(desired([user('b')]), snap, opts));
    expect(one.deprovisions).to.equal(2);
    expect(one.digest).to.not.equal(other.digest);
    expect(removalDigest({ operations: [...planSync(desired([user('c')]), snap, opts).operations].reverse(), warnings: [] }).digest).to.equal(one.digest);
  });
});
