import { expect } from 'chai';
import { formatObjectGuid, objectGuidFilter } from '../../src/directory/dialects/active-directory.js';
import { openLdapDialect } from '../../src/directory/dialects/openldap.js';
import type { Plan } from '../../src/plan/operations.js';
import { emptySnapshot } from '../../src/state/snapshot.js';
import { censusDue, censusInterval, confirmedRemovals, settledBy } from '../../src/sync/cycle-policies.js';
import { newReport } from '../../src/sync/report.js';

// The small policy pieces the resident Reconciler calls: when a census is due, when a poll may skip planning,
// which removals count in the guard's window, and how a poll asks for one entry by its anchor.
describe('resident reconciler policies', () => {
  it('a census is due at the first poll of a process and then once per censusSeconds', () => {
    expect(censusDue(undefined, 1_000, 60)).to.equal(true);
    expect(censusDue(1_000, 60_999, 60)).to.equal(false);
    expect(censusDue(1_000, 61_000, 60)).to.equal(true);
  });

  it('runs the census less often when one costs more than its share of a core', () => {
    expect(censusInterval(60, undefined)).to.equal(60);
    expect(censusInterval(60, 1_300)).to.equal(60); // 150,000 people: 1.3 s a minute is 2.2 %
    expect(censusInterval(60, 5_000)).to.equal(200); // a million: 5 s each, at most 2.5 % of a core
    expect(censusInterval(600, 5_000)).to.equal(600);
  });

  it('only a clean success settles: a failure, a guard hold or a conflict waiting for review is planned again', () => {
    const report = () => newReport('/tmp/x');
    expect(settledBy(report())).to.equal(true);
    const failed = report();
    failed.failures.push({ operation: 'updateUser', resource: 'a', detail: '500' });
    expect(settledBy(failed)).to.equal(false);
    const held = report();
    held.result = 'guard-stopped';
    held.guard = ['too many'];
    expect(settledBy(held)).to.equal(false);
    const conflict = report();
    conflict.conflicts.push({ status: 'held' } as never);
    expect(settledBy(conflict)).to.equal(false);
    const approved = report();
    approved.conflicts.push({ status: 'approved' } as never);
    expect(settledBy(approved)).to.equal(true);
  });

  it('counts in the window only the removals the snapshot shows done, and never a rename', () => {
    const data = emptySnapshot();
    const attrs = { userName: 'a', email: 'a@x.test', active: false };
    data.users['gone'] = { id: '1', attrs } as never;
    data.users['failed'] = { id: '2', attrs: { ...attrs, active: true } } as never;
    data.groups['kept'] = { id: 'g1', displayName: 'kept', members: [] } as never;
    const plan: Plan = {
      operations: [
        { kind: 'deactivateUser', anchor: 'gone' },
        { kind: 'deactivateUser', anchor: 'failed' },
        { kind: 'deleteUser', anchor: 'deleted', id: '3', userName: 'd' },
        { kind: 'deleteGroup', groupAnchor: 'dropped', id: 'g2', displayName: 'dropped', reason: 'left the directory scope' },
        { kind: 'deleteGroup', groupAnchor: 'kept', id: 'g1', displayName: 'kept', reason: 'left the directory scope' },
        { kind: 'deleteGroup', groupAnchor: 'old-name', id: 'g3', displayName: 'old', reason: 'renamed' },
      ],
      warnings: [],
    } as unknown as Plan;
    expect(confirmedRemovals(plan, data)).to.deep.equal([
      { kind: 'user', anchor: 'gone' },
      { kind: 'user', anchor: 'deleted' },
      { kind: 'group', anchor: 'dropped' },
    ]);
  });

  it('asks for an objectGUID by its bytes on the wire, and for an entryUUID as it is; anything else is refused', () => {
    const bytes = Buffer.from('33221100554477668899aabbccddeeff', 'hex');
    const guid = formatObjectGuid(bytes)!;
    expect(objectGuidFilter(guid)).to.equal(`(objectGUID=${[...bytes].map((b) => `\\${b.toString(16).padStart(2, '0')}`).join('')})`);
    expect(() => objectGuidFilter('*)(objectClass=*')).to.throw(/not an objectGUID/);
    expect(openLdapDialect.anchorFilter!('0f6c7a3e-1b2c-4d5e-8f90-a1b2c3d4e5f6')).to.equal('(entryUUID=0f6c7a3e-1b2c-4d5e-8f90-a1b2c3d4e5f6)');
    expect(() => openLdapDialect.anchorFilter!('x)(uid=*')).to.throw(/not an entryUUID/);
  });
});
