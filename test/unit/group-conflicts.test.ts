import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { DesiredGroup, DesiredState, DesiredUser } from '../../src/model.js';
import { planSync } from '../../src/plan/plan.js';
import { resolveGroupConflicts, type ConflictInputs } from '../../src/plan/group-conflicts.js';
import { approveGroups, consumeGroupApprovals, groupApprovalCheck, groupApprovalFileFor, readGroupApprovals } from '../../src/plan/group-approval.js';
import type { ScimGroup } from '../../src/scim/resources.js';
import { emptySnapshot, type SnapshotData } from '../../src/state/snapshot.js';

const user = (n: string): DesiredUser => ({ anchor: n, dn: `uid=${n}`, attrs: { userName: `${n}@x.test`, email: `${n}@x.test`, active: true } });
const group = (anchor: string, displayName: string, members: string[]): DesiredGroup => ({ anchor, dn: `cn=${displayName}`, displayName, members });
const desired = (users: DesiredUser[], groups: DesiredGroup[]): DesiredState => ({
  users: new Map(users.map((u) => [u.anchor, u])),
  groups: new Map(groups.map((g) => [g.anchor, g])),
  skipped: [],
  membersOutsideScope: 0,
});

/** a, b provisioned; c new this cycle; "outsider" a SCIM account this directory never made. */
function snapshot(): SnapshotData {
  const s = emptySnapshot();
  s.users.a = { id: 'id-a', attrs: user('a').attrs };
  s.users.b = { id: 'id-b', attrs: user('b').attrs };
  return s;
}

const existing: ScimGroup = { id: 'scim-eng', displayName: 'Engineering', externalId: 'okta-123', members: [{ value: 'id-a' }, { value: 'id-outsider', display: 'outsider@x.test' }] };

function inputs(over: Partial<ConflictInputs> = {}): ConflictInputs {
  return {
    found: new Map([['engineering', existing]]),
    snapshot: snapshot(),
    adoptAll: false,
    approval: () => ({ status: 'none' }),
    mayExist: () => false,
    membersPerPatch: 2,
    ...over,
  };
}

const planFor = () => planSync(desired([user('a'), user('b'), user('c')], [group('g', 'engineering', ['a', 'b', 'c']), group('h', 'support', ['a'])]), snapshot(), { membersPerPatch: 2, deprovision: 'deactivate' });

describe('group conflicts', () => {
  it('holds a create whose name a SCIM group made elsewhere holds, with who would be added and removed, and nothing else of it', () => {
    const plan = planFor();
    const [conflict, ...more] = resolveGroupConflicts(plan, inputs());
    expect(more).to.deep.equal([]);
    expect(conflict).to.deep.include({ displayName: 'engineering', scimId: 'scim-eng', add: ['b', 'c'], keep: 1, status: 'awaiting approval' });
    expect(conflict!.remove).to.deep.equal([{ id: 'id-outsider', display: 'outsider@x.test' }]);
    expect(conflict!.wayOut).to.include('plan --approve-group "engineering"');
    // The other group is created as usual; nothing of the held one is left in the plan (its second batch neither).
    expect(plan.operations.filter((o) => o.kind !== 'createUser').map((o) => `${o.kind}:${'displayName' in o ? o.displayName : ''}`)).to.deep.equal(['createGroup:support']);
  });

  it('adopts an approved conflict instead of creating it: removes the others, keeps who stays, adds the rest in batches', () => {
    const plan = planFor();
    const [conflict] = resolveGroupConflicts(plan, inputs({ approval: () => ({ status: 'matches' }) }));
    expect(conflict!.status).to.equal('approved');
    const ops = plan.operations.filter((o) => o.kind !== 'createUser' && !('displayName' in o && o.displayName === 'support'));
    expect(ops.map((o) => o.kind)).to.deep.equal(['adoptGroup', 'addMembers']);
    expect(ops[0]).to.deep.include({ id: 'scim-eng', keep: ['a'], remove: [{ id: 'id-outsider', display: 'outsider@x.test' }] });
    expect(ops[1]).to.deep.include({ groupAnchor: 'g', members: ['b', 'c'] });
  });

  it('leaves a group that carries our own anchor to the create (an earlier answer lost), and target.adoptExistingGroups approves all', () => {
    const ours = planFor();
    expect(resolveGroupConflicts(ours, inputs({ found: new Map([['engineering', { ...existing, externalId: 'g' }]]) }))).to.deep.equal([]);
    expect(ours.operations.some((o) => o.kind === 'createGroup' && o.displayName === 'engineering')).to.equal(true);
    const all = planFor();
    const [adopted] = resolveGroupConflicts(all, inputs({ adoptAll: true }));
    expect(adopted).to.deep.include({ status: 'approved', wayOut: 'adopted: target.adoptExistingGroups is true' });
  });

  describe('approvals (plan --approve-group)', () => {
    let dir: string;
    beforeEach(() => (dir = mkdtempSync(path.join(tmpdir(), 'group-approval-'))));
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it('match only the breakdown that was shown, expire, and are used up once adopted', async () => {
      const statePath = path.join(dir, 'state.json');
      const plan = planFor();
      const conflicts = resolveGroupConflicts(plan, inputs());
      const now = new Date('2026-12-05T10:00:00Z');
      await approveGroups(statePath, conflicts, now);
      expect(readFileSync(groupApprovalFileFor(statePath), 'utf8')).to.include('"scimId": "scim-eng"');
      const check = groupApprovalCheck(await readGroupApprovals(statePath), now);
      expect(resolveGroupConflicts(planFor(), inputs({ approval: check }))[0]!.status).to.equal('approved');
      // Someone adds a person to the SCIM group after the review: the approval no longer covers what would happen.
      const changed = { ...existing, members: [...existing.members!, { value: 'id-late' }] };
      const stale = resolveGroupConflicts(planFor(), inputs({ found: new Map([['engineering', changed]]), approval: check }))[0]!;
      expect(stale.status).to.equal('awaiting approval');
      expect(stale.wayOut).to.match(/was for 2 additions and 1 removals; the membership changed since/);
      // ...unless it is our own adoption, cut short by a crash after some removals: it goes on under the approval.
      const resumed = resolveGroupConflicts(planFor(), inputs({ found: new Map([['engineering', { ...existing, members: [{ value: 'id-a' }] }]]), approval: check, mayExist: (a) => a === 'g' }))[0]!;
      expect(resumed.status).to.equal('approved');
      const later = groupApprovalCheck(await readGroupApprovals(statePath), new Date('2026-12-06T10:00:01Z'));
      expect(later('engineering', 'scim-eng', 'x')).to.deep.include({ status: 'stale' });
      await consumeGroupApprovals(statePath, ['ENGINEERING']);
      expect(await readGroupApprovals(statePath)).to.deep.equal([]);
    });
  });
});
