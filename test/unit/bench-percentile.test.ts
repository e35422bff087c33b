import { expect } from 'chai';
import { carries, percentile, planChanges, type PlannedChange } from '../../bench/watch-changes.js';

describe('bench --watch helpers', () => {
  describe('percentile (nearest rank)', () => {
    it('takes the value at rank ceil(p/100 × n) of the sorted list', () => {
      const values = [15, 20, 35, 40, 50];
      expect(percentile(values, 5)).to.equal(15);
      expect(percentile(values, 30)).to.equal(20);
      expect(percentile(values, 40)).to.equal(20);
      expect(percentile(values, 50)).to.equal(35);
      expect(percentile(values, 100)).to.equal(50);
    });

    it('sorts a copy, and p95 of 20 values is the 19th', () => {
      const values = Array.from({ length: 20 }, (_, i) => 20 - i);
      expect(percentile(values, 95)).to.equal(19);
      expect(percentile(values, 50)).to.equal(10);
      expect(values[0]).to.equal(20);
    });

    it('one value is every percentile; none gives undefined', () => {
      expect(percentile([7], 1)).to.equal(7);
      expect(percentile([7], 95)).to.equal(7);
      expect(percentile([], 50)).to.equal(undefined);
    });

    it('refuses p outside (0, 100]', () => {
      expect(() => percentile([1], 0)).to.throw();
      expect(() => percentile([1], 101)).to.throw();
      expect(() => percentile([1], Number.NaN)).to.throw();
    });
  });

  describe('planChanges', () => {
    const groupsOf = (n: number) => new Set([n % 5, (n + 1) % 5]);
    const options = { users: 100, plainGroups: 5, groupsOf, counts: { edit: 4, addition: 4, deletion: 2, move: 2 }, seed: 3, minGapMs: 1000, maxGapMs: 8000 };

    it('is repeatable, one user per change (never user 1), additions to a group the user is not in', () => {
      const plan = planChanges(options);
      expect(planChanges(options)).to.deep.equal(plan);
      expect(plan).to.have.length(12);
      expect(new Set(plan.map((c) => c.user)).size).to.equal(12);
      expect(plan.some((c) => c.user === 1)).to.equal(false);
      for (const c of plan) {
        expect(c.gapMs).to.be.within(1000, 8000);
        if (c.kind === 'addition') expect(groupsOf(c.user).has(c.group!)).to.equal(false);
      }
      expect(new Set(plan.filter((c) => c.kind === 'edit').map((c) => c.title)).size).to.equal(4);
    });
  });

  describe('carries', () => {
    const at = 1000;
    const ok = (method: string, path: string, body?: unknown) => ({ method, path: `/scim/directory/sandbox${path}`, status: 200, at, body });
    const edit: PlannedChange = { kind: 'edit', user: 2, title: 'Watch edit 1 seed 7', gapMs: 0 };
    const addition: PlannedChange = { kind: 'addition', user: 2, group: 3, gapMs: 0 };
    const deletion: PlannedChange = { kind: 'deletion', user: 2, gapMs: 0 };
    const ids = { userId: 'u2', groupId: 'g3' };
    const patch = (...ops: object[]) => ({ schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'], Operations: ops });

    it('an edit: a PATCH of that user holding the new title', () => {
      expect(carries(edit, ids, ok('PATCH', '/Users/u2', patch({ op: 'replace', path: 'title', value: 'Watch edit 1 seed 7' })))).to.equal(true);
      expect(carries(edit, ids, ok('PATCH', '/Users/u9', patch({ op: 'replace', path: 'title', value: 'Watch edit 1 seed 7' })))).to.equal(false);
      expect(carries(edit, ids, ok('PATCH', '/Users/u2', patch({ op: 'replace', path: 'title', value: 'Engineer' })))).to.equal(false);
      expect(carries(edit, ids, { ...ok('PATCH', '/Users/u2', patch({ op: 'replace', path: 'title', value: 'Watch edit 1 seed 7' })), status: 429 })).to.equal(false);
    });

    it('an addition: a PATCH of that group adding the user, with a path or without', () => {
      expect(carries(addition, ids, ok('PATCH', '/Groups/g3', patch({ op: 'add', path: 'members', value: [{ value: 'u1' }, { value: 'u2' }] })))).to.equal(true);
      expect(carries(addition, ids, ok('PATCH', '/Groups/g3', patch({ op: 'Add', value: { members: [{ value: 'u2' }] } })))).to.equal(true);
      expect(carries(addition, ids, ok('PATCH', '/Groups/g3', patch({ op: 'remove', path: 'members', value: [{ value: 'u2' }] })))).to.equal(false);
      expect(carries(addition, ids, ok('PATCH', '/Groups/g4', patch({ op: 'add', path: 'members', value: [{ value: 'u2' }] })))).to.equal(false);
    });

    it('a deletion or move: the user set inactive, or deleted', () => {
      expect(carries(deletion, ids, ok('PATCH', '/Users/u2', patch({ op: 'replace', path: 'active', value: false })))).to.equal(true);
      expect(carries(deletion, ids, ok('PATCH', '/Users/u2', patch({ op: 'replace', value: { active: false } })))).to.equal(true);
      expect(carries(deletion, ids, ok('DELETE', '/Users/u2'))).to.equal(true);
      expect(carries(deletion, ids, ok('PATCH', '/Users/u2', patch({ op: 'replace', path: 'active', value: true })))).to.equal(false);
      expect(carries(deletion, ids, ok('DELETE', '/Users/u3'))).to.equal(false);
    });
  });
});
