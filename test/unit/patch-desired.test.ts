import { expect } from 'chai';
import { DesiredStateBuilder, mapGroup, mapUser, type MappedState, type RememberedGroup, type RememberedUser } from '../../src/mapping/desired-state.js';
import { patchDesired, type EntryChange } from '../../src/mapping/patch-desired.js';
import { resolveMapping } from '../../src/mapping/rules.js';
import { planSync } from '../../src/plan/plan.js';
import { emptySnapshot, type SnapshotData } from '../../src/state/snapshot.js';
import { seededRandom } from '../../src/seeded-random.js';

const rules = resolveMapping('openldap', {});
const userDn = (n: number) => `uid=u${n},ou=people,dc=example,dc=test`;
const groupDn = (n: number) => `cn=g${n},ou=groups,dc=example,dc=test`;

interface Entry {
  dn: string;
  values: Record<string, string>;
}

function rememberedUser(e: Entry): RememberedUser {
  const warnings: NonNullable<RememberedUser['warnings']> = [];
  const values = new Map(Object.entries(e.values).map(([k, v]) => [k.toLowerCase(), [v]]));
  const mapped = mapUser(rules, values, true, warnings);
  if (typeof mapped === 'string') return { dn: e.dn, skip: mapped };
  return warnings.length ? { dn: e.dn, attrs: mapped, warnings } : { dn: e.dn, attrs: mapped };
}

function rememberedGroup(anchor: string, dn: string, cn: string, memberDns: string[]): RememberedGroup {
  return mapGroup(rules, dn, anchor, new Map([['cn', [cn]]]), memberDns);
}

function compose(users: Map<string, RememberedUser>, groups: Map<string, RememberedGroup>): MappedState {
  const builder = new DesiredStateBuilder(rules, { remember: true, rememberCarried: false });
  for (const [anchor, u] of users) builder.carryUser(anchor, u);
  for (const g of groups.values()) builder.carryGroup(g);
  return builder.finish();
}

/** What a plan sees of a state, in a form that compares whole (order of skips and warnings aside). */
function shape(d: MappedState) {
  return {
    users: [...d.users.values()].sort((a, b) => a.anchor.localeCompare(b.anchor)),
    groups: [...d.groups.values()].sort((a, b) => a.anchor.localeCompare(b.anchor)),
    skipped: d.skipped.map((s) => JSON.stringify(s)).sort(),
    warnings: d.warnings.map((w) => JSON.stringify(w)).sort(),
    membersOutsideScope: d.membersOutsideScope,
  };
}

describe('patching the composed state in place (a resident daemon\'s poll)', () => {
  it('gives, after any seeded sequence of changes, what composing from scratch gives, and refuses what it cannot patch without changing anything', () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const random = seededRandom(seed);
      const pick = (n: number) => Math.floor(random() * n);
      const entries = new Map<string, Entry>();
      for (let n = 0; n < 40; n++) {
        const values: Record<string, string> = { mail: `u${n}@example.test`, cn: `User ${n}`, sn: 'Person', title: `T${n % 3}` };
        // Two people share an email: both skipped, and they stay so (their email never changes below).
        if (n === 39) values.mail = 'u38@example.test';
        // A title with a control character: a warning the patch must carry along.
        if (n === 7) values.title = 'Bad\u0007Title';
        entries.set(`a${n}`, { dn: userDn(n), values });
      }
      const users = new Map([...entries].map(([anchor, e]) => [anchor, rememberedUser(e)]));
      const groups = new Map<string, RememberedGroup>();
      for (let g = 0; g < 6; g++) {
        const members = [...new Set(Array.from({ length: 8 }, () => userDn(pick(40))))];
        if (g === 0) members.push('uid=nobody,ou=people,dc=example,dc=test'); // outside the scope
        if (g === 1) members.push(groupDn(2)); // g1 nests g2
        groups.set(`g${g}`, rememberedGroup(`g${g}`, groupDn(g), `g${g}`, members));
      }
      let desired = compose(users, groups);
      let patched = 0;
      let composed = 0;
      for (let step = 0; step < 60; step++) {
        const kind = pick(6);
        const userChanges: EntryChange<RememberedUser>[] = [];
        const groupChanges: EntryChange<RememberedGroup>[] = [];
        const gone: string[] = [];
        if (kind === 5) {
          // Someone leaves (deleted, or moved out of the scope): the census finds them gone.
          const present = [...users.keys()];
          if (present.length > 5) gone.push(present[pick(present.length)]!);
        } else if (kind <= 1) {
          // An edit of a few people: titles, or (kind 1) an email now and then.
          for (let i = 0; i < 1 + pick(3); i++) {
            const anchor = `a${pick(38)}`;
            if (!users.has(anchor)) continue; // left in an earlier step
            const e = entries.get(anchor)!;
            const next = { ...e, values: { ...e.values, title: `Step ${step} ${i}`, ...(kind === 1 && pick(3) === 0 ? { mail: `moved${step}@example.test` } : {}) } };
            entries.set(anchor, next);
            userChanges.push({ anchor, before: users.get(anchor)!, after: rememberedUser(next) });
          }
        } else {
          // A group's members: some added, some removed; now and then a nested group or a rename.
          const anchor = `g${pick(6)}`;
          const before = groups.get(anchor)!;
          let members = before.memberDns.filter(() => pick(4) > 0);
          for (let i = 0; i < pick(4); i++) members.push(userDn(pick(40)));
          if (kind === 4 && pick(2) === 0) members.push(groupDn(pick(6)));
          members = [...new Set(members)];
          const dn = kind === 4 && pick(4) === 0 ? groupDn(100 + step) : before.dn;
          groupChanges.push({ anchor, before, after: rememberedGroup(anchor, dn, before.displayName ?? anchor, members) });
        }
        // Several changes to one entry in a step: the last one stands, from the first one's "before".
        const lastUser = new Map(userChanges.map((c) => [c.anchor, c]));
        const firstUser = new Map([...userChanges].reverse().map((c) => [c.anchor, c]));
        const merged = [...lastUser.values()].map((c) => ({ ...c, before: firstUser.get(c.anchor)!.before }));
        const before = JSON.stringify(shape(desired));
        const now = (anchor: string) => groupChanges.find((c) => c.anchor === anchor)?.after ?? groups.get(anchor);
        const result = patchDesired(desired, { users: merged, groups: groupChanges, gone }, 1000, now);
        for (const anchor of gone) users.delete(anchor);
        for (const c of merged) users.set(c.anchor, c.after);
        for (const c of groupChanges) groups.set(c.anchor, c.after);
        const fresh = compose(users, groups);
        if ('compose' in result) {
          expect(JSON.stringify(shape(desired)), `seed ${seed} step ${step}: a refused patch changed the state`).to.equal(before);
          desired = fresh;
          composed++;
        } else {
          expect(shape(desired), `seed ${seed} step ${step}: patched state differs from a fresh compose`).to.deep.equal(shape(fresh));
          patched++;
        }
      }
      expect(patched, `seed ${seed}: patched steps`).to.be.greaterThan(10);
      expect(composed, `seed ${seed}: composed steps`).to.be.greaterThan(3);
    }
  });

  it('plans for the touched anchors alone exactly what a whole plan finds after a settled cycle', () => {
    const entries = Array.from({ length: 20 }, (_, n) => ({ dn: userDn(n), values: { mail: `u${n}@example.test`, cn: `User ${n}`, sn: 'P', title: 'T' } }));
    const users = new Map(entries.map((e, n) => [`a${n}`, rememberedUser(e)]));
    const groups = new Map([['g0', rememberedGroup('g0', groupDn(0), 'g0', [userDn(1), userDn(2), userDn(3)])]]);
    const desired = compose(users, groups);
    // The snapshot of a settled cycle: everything pushed as desired.
    const snapshot: SnapshotData = emptySnapshot();
    for (const u of desired.users.values()) snapshot.users[u.anchor] = { id: `id-${u.anchor}`, attrs: u.attrs };
    for (const g of desired.groups.values()) snapshot.groups[g.anchor] = { id: `gid-${g.anchor}`, displayName: g.displayName, members: g.members };
    const opts = { membersPerPatch: 100, deprovision: 'deactivate' as const };
    expect(planSync(desired, snapshot, opts).operations).to.deep.equal([]);
    const after = rememberedUser({ ...entries[5]!, values: { ...entries[5]!.values, title: 'New' } });
    const touched = patchDesired(
      desired,
      {
        users: [{ anchor: 'a5', before: users.get('a5')!, after }],
        groups: [{ anchor: 'g0', before: groups.get('g0')!, after: rememberedGroup('g0', groupDn(0), 'g0', [userDn(1), userDn(4)]) }],
      },
      1000,
      (anchor) => (anchor === 'g0' ? rememberedGroup('g0', groupDn(0), 'g0', [userDn(1), userDn(4)]) : groups.get(anchor)),
    );
    if ('compose' in touched) throw new Error(touched.compose);
    const whole = planSync(desired, snapshot, opts).operations;
    expect(whole.map((o) => o.kind)).to.deep.equal(['updateUser', 'removeMembers', 'addMembers']);
    expect(planSync(desired, snapshot, { ...opts, only: touched }).operations).to.deep.equal(whole);
  });
});
