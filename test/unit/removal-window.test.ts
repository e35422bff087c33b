import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type { DesiredState, DesiredUser, UserAttributes } from '../../src/model.js';
import { checkSafety, type SafetyLimits } from '../../src/plan/guard.js';
import { planSync } from '../../src/plan/plan.js';
import { RemovalWindow, removalWindowFileFor, type Removal } from '../../src/plan/removal-window.js';
import { emptySnapshot, StateError, type SnapshotData } from '../../src/state/snapshot.js';

const opts = { membersPerPatch: 100, deprovision: 'deactivate' as const };
const limits: SafetyLimits = { maxDeactivations: 500, maxDeactivationPercent: 10, maxGroupDeletions: 50, maxShrinkPercent: 20 };
const attrs = (p: string, active = true): UserAttributes => ({ userName: `${p}@x.test`, email: `${p}@x.test`, active, displayName: p });
const user = (p: string): DesiredUser => ({ anchor: p, dn: `uid=${p}`, attrs: attrs(p) });
const desired = (people: string[]): DesiredState => ({ users: new Map(people.map((p) => [p, user(p)])), groups: new Map(), skipped: [], membersOutsideScope: 0 });
const T0 = new Date('2025-03-01T09:00:00.000Z');
const later = (ms: number) => new Date(T0.getTime() + ms);
const users = (...anchors: string[]): Removal[] => anchors.map((anchor) => ({ kind: 'user', anchor }));
const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => `p${from + i}`);

describe('removal window', () => {
  let dir: string;
  let statePath: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'ldap-scim-removals-'));
    statePath = path.join(dir, 'state.json');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /**
   * An organization of 10,000 whose directory loses 100 people before each of 20 cycles, 5 seconds apart. A cycle the
   * guard lets through deactivates everyone gone from the directory and records them as confirmed; a held one writes
   * nothing, so its people are still in the next plan.
   */
  async function trickle(windowMinutes: number) {
    const people = range(0, 10_000);
    const deactivated = new Set<string>();
    const outcomes: { cycle: number; planned: number; reasons: string[] }[] = [];
    for (let cycle = 1; cycle <= 20; cycle++) {
      const now = later(cycle * 5_000);
      // Opened every cycle, as a sync run does: what counts is what reached the file.
      const window = await RemovalWindow.open(statePath);
      const snap = emptySnapshot();
      for (const p of people) snap.users[p] = { id: `id-${p}`, attrs: attrs(p, !deactivated.has(p)) };
      const d = desired(people.slice(cycle * 100));
      const plan = planSync(d, snap, opts);
      const planned = plan.operations.flatMap((o) => (o.kind === 'deactivateUser' ? [o] : []));
      const reasons = checkSafety(plan, d, snap, limits, window.counts(now, windowMinutes)).map((s) => s.reason);
      outcomes.push({ cycle, planned: planned.length, reasons });
      if (reasons.length) continue;
      for (const op of planned) deactivated.add(op.anchor);
      await window.record(planned.map((op) => ({ kind: 'user' as const, anchor: op.anchor })), now, windowMinutes);
    }
    return { outcomes, deactivated };
  }

  it('holds the 6th cycle of a trickle of 100 a cycle against maxDeactivations 500, the 5 before it passed', async () => {
    const { outcomes, deactivated } = await trickle(60);
    expect(outcomes.slice(0, 5).map((o) => o.reasons)).to.deep.equal([[], [], [], [], []]);
    expect(outcomes[5]!.reasons).to.deep.equal(['100 users would be deactivated, and 500 were in the last 60 minutes: 600, over safety.maxDeactivations 500']);
    // Held cycles write nothing: the people pile up in the plan, and every later cycle is held too.
    expect(outcomes.slice(5).every((o) => o.reasons.length === 1)).to.equal(true);
    expect(outcomes[19]!.planned).to.equal(1500);
    expect(deactivated.size).to.equal(500);
  });

  it('holds the same 2,000 removed at once, with the per-cycle wording', async () => {
    const window = await RemovalWindow.open(statePath);
    const people = range(0, 10_000);
    const snap = emptySnapshot();
    for (const p of people) snap.users[p] = { id: `id-${p}`, attrs: attrs(p) };
    const d = desired(people.slice(2_000));
    const stops = checkSafety(planSync(d, snap, opts), d, snap, limits, window.counts(T0, 60));
    expect(stops).to.deep.equal([{ reason: '2000 users would be deactivated, over safety.maxDeactivations 500', forceable: true }]);
  });

  it('with windowMinutes 0 counts per cycle, as before: the trickle goes through and nothing is written', async () => {
    const { outcomes, deactivated } = await trickle(0);
    expect(outcomes.flatMap((o) => o.reasons)).to.deep.equal([]);
    expect(deactivated.size).to.equal(2_000);
    expect(existsSync(removalWindowFileFor(statePath))).to.equal(false);
  });

  it('stops counting removals older than the window, and drops them from the file at the next record', async () => {
    const window = await RemovalWindow.open(statePath);
    await window.record(users(...range(0, 500)), T0, 60);
    expect(window.counts(later(59 * 60_000), 60)).to.deep.equal({ users: 500, groups: 0, windowMinutes: 60, oldest: T0.toISOString() });
    expect(window.counts(later(60 * 60_000), 60)).to.deep.equal({ users: 0, groups: 0, windowMinutes: 60 });
    // A shorter window set since counts fewer of the same entries.
    expect(window.counts(later(30 * 60_000), 20).users).to.equal(0);

    // The 500 are deactivated; the directory has lost 100 more.
    const people = range(0, 10_000);
    const snap = emptySnapshot();
    people.forEach((p, i) => (snap.users[p] = { id: `id-${p}`, attrs: attrs(p, i >= 500) }));
    const d = desired(people.slice(600));
    const plan = planSync(d, snap, opts);
    expect(plan.operations.filter((o) => o.kind === 'deactivateUser')).to.have.length(100);
    expect(checkSafety(plan, d, snap, limits, window.counts(later(59 * 60_000), 60))).to.have.length(1);
    expect(checkSafety(plan, d, snap, limits, window.counts(later(61 * 60_000), 60))).to.deep.equal([]);

    await window.record(users('late'), later(61 * 60_000), 60);
    const saved = JSON.parse(readFileSync(removalWindowFileFor(statePath), 'utf8')) as { removals: { anchor: string }[] };
    expect(saved.removals.map((r) => r.anchor)).to.deep.equal(['late']);
  });

  it('counts the same user or group removed twice in the window once, also after a restart', async () => {
    const window = await RemovalWindow.open(statePath);
    await window.record([...users('a', 'b'), { kind: 'group', anchor: 'a' }], T0, 60);
    // A retry after a crash: the removal confirmed again.
    await window.record(users('a', 'a'), later(5_000), 60);
    expect(window.counts(later(10_000), 60)).to.deep.equal({ users: 2, groups: 1, windowMinutes: 60, oldest: T0.toISOString() });
    const reopened = await RemovalWindow.open(statePath);
    expect(reopened.counts(later(10_000), 60)).to.deep.include({ users: 2, groups: 1 });
    // The latest confirmation is kept: `a` counts until an hour after the retry, `b` until an hour after T0.
    expect(reopened.counts(later(60 * 60_000 + 1_000), 60)).to.deep.equal({ users: 1, groups: 0, windowMinutes: 60, oldest: later(5_000).toISOString() });
    const saved = JSON.parse(readFileSync(removalWindowFileFor(statePath), 'utf8')) as { removals: unknown[] };
    expect(saved.removals).to.have.length(3);
  });

  it('clear() forgets the removals an admin confirmed: the next cycle counts from zero, also after a restart', async () => {
    const window = await RemovalWindow.open(statePath);
    await window.record([...users(...range(0, 500)), { kind: 'group', anchor: 'g' }], T0, 60);
    expect(window.counts(later(1_000), 60)).to.deep.include({ users: 500, groups: 1 });
    await window.clear();
    expect(window.counts(later(1_000), 60)).to.deep.equal({ users: 0, groups: 0, windowMinutes: 60 });
    expect((await RemovalWindow.open(statePath)).counts(later(1_000), 60)).to.deep.equal({ users: 0, groups: 0, windowMinutes: 60 });
  });

  it('writes nothing when there is nothing to add or prune', async () => {
    const window = await RemovalWindow.open(statePath);
    await window.record([], T0, 60);
    await window.clear();
    expect(existsSync(removalWindowFileFor(statePath))).to.equal(false);
    await window.record(users('a'), T0, 60);
    // Rewritten in another layout: a write of what the window holds would show as a change of the text.
    const file = removalWindowFileFor(statePath);
    const marked = JSON.stringify(JSON.parse(readFileSync(file, 'utf8')));
    writeFileSync(file, marked);
    await window.record([], later(1_000), 60);
    expect(readFileSync(file, 'utf8')).to.equal(marked);
  });

  it('refuses a damaged file instead of taking it for an empty window', async () => {
    const file = removalWindowFileFor(statePath);
    for (const content of ['{"version":1,"removals":[{"at":"2025', '', '{"removals":[]}', '{"version":1,"removals":[{"at":"yesterday","kind":"user","anchor":"a"}]}', '{"version":1,"removals":[{"at":"2025-03-01T09:00:00Z","kind":"robot","anchor":"a"}]}']) {
      writeFileSync(file, content);
      const error = await RemovalWindow.open(statePath).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error, content).to.be.instanceOf(StateError);
      expect((error as Error).message).to.contain(file).and.match(/delete it if no recent removal is meant to count/);
    }
    rmSync(file);
    expect((await RemovalWindow.open(statePath)).counts(T0, 60)).to.deep.equal({ users: 0, groups: 0, windowMinutes: 60 });
  });

  it('keeps the file owner-only (0600) whatever the umask', async () => {
    const previous = process.umask(0);
    try {
      const window = await RemovalWindow.open(statePath);
      await window.record(users('a'), T0, 60);
      expect(statSync(removalWindowFileFor(statePath)).mode & 0o777).to.equal(0o600);
      await window.clear();
      expect(statSync(removalWindowFileFor(statePath)).mode & 0o777).to.equal(0o600);
    } finally {
      process.umask(previous);
    }
  });

  it('turns a failed write into a StateError naming the file and the error code, and still counts the removals', async () => {
    const inMissingFolder = path.join(dir, 'gone', 'state.json');
    const window = await RemovalWindow.open(inMissingFolder);
    const error = await window.record(users('a'), T0, 60).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).to.be.instanceOf(StateError);
    expect((error as Error).message).to.equal(`cannot write ${removalWindowFileFor(inMissingFolder)} (ENOENT)`);
    expect(window.counts(T0, 60).users).to.equal(1);
  });

  it('holds a group deletion on top of the groups deleted in the window, and never a plan that removes nothing', async () => {
    const window = await RemovalWindow.open(statePath);
    await window.record([...users(...range(0, 500)), ...Array.from({ length: 50 }, (_, i) => ({ kind: 'group' as const, anchor: `g${i}` }))], T0, 60);
    const snap = emptySnapshot();
    for (const p of range(500, 1_000)) snap.users[p] = { id: `id-${p}`, attrs: attrs(p) };
    snap.groups = { last: { id: 'gid', displayName: 'last', members: [] } };
    const d = desired(range(500, 1_000));
    const recent = window.counts(later(60_000), 60);

    const deletesOne = planSync(d, snap, opts);
    expect(checkSafety(deletesOne, d, snap, limits, recent).map((s) => s.reason)).to.deep.equal([
      '1 groups would be deleted, and 50 were in the last 60 minutes: 51, over safety.maxGroupDeletions 50',
    ]);

    const withGroup: SnapshotData = { ...snap, groups: {} };
    const createsAndUpdates = desired([...range(500, 1_000), 'newcomer']);
    const quiet = planSync(createsAndUpdates, withGroup, opts);
    expect(quiet.operations.length).to.be.greaterThan(0);
    expect(checkSafety(quiet, createsAndUpdates, withGroup, limits, recent)).to.deep.equal([]);
  });
});
