import { expect } from 'chai';
import { chooseRead, csnAt, csnMicros, CSN_IN_FLIGHT_MS, entryCsnTracking, formatGeneralizedTime, parseGeneralizedTime, type ChangeCursor, type ChangeHistory } from '../../src/directory/change-tracking.js';
import { accountExpired, filetime } from '../../src/directory/dialects/active-directory.js';
import { DesiredStateBuilder } from '../../src/mapping/desired-state.js';
import { resolveMapping } from '../../src/mapping/rules.js';
import type { UserAttributes } from '../../src/model.js';
import { planSync } from '../../src/plan/plan.js';
import { emptySnapshot } from '../../src/state/snapshot.js';

const rules = resolveMapping('openldap', {});
const values = (o: Record<string, string>) => new Map(Object.entries(o).map(([k, v]) => [k.toLowerCase(), [v]]));
const person = (uid: string, extra: Record<string, string> = {}) => values({ mail: `${uid}@example.test`, cn: uid, ...extra });
const attrs = (uid: string, extra: Partial<UserAttributes> = {}): UserAttributes => ({ userName: `${uid}@example.test`, email: `${uid}@example.test`, active: true, displayName: uid, ...extra });
const peopleDn = (uid: string) => `uid=${uid},ou=people,dc=example,dc=test`;

describe('delta reads', () => {
  describe('choosing a full or a delta read', () => {
    const history: ChangeHistory = { cursor: { server: 'dc-a', position: '1000', readAt: '2026-11-23T10:00:00.000Z' }, fingerprint: 'f1', deltasSinceFullRead: 0 };
    const base = { enabled: true, fullReadEvery: 4, history, fingerprint: 'f1', change: { server: 'dc-a' } };
    const reason = (over: Partial<Parameters<typeof chooseRead>[0]>) => {
      const choice = chooseRead({ ...base, ...over });
      return choice.kind === 'full' ? choice.reason : 'delta';
    };

    it('reads a delta from the stored cursor when nothing speaks against it', () => {
      expect(chooseRead(base)).to.deep.equal({ kind: 'delta', since: history.cursor });
    });

    it('reads the whole scope for every reason that makes a delta unsafe', () => {
      expect(reason({ enabled: false })).to.match(/delta reads are off/);
      expect(reason({ forced: 'asked for (--full-read)' })).to.equal('asked for (--full-read)');
      expect(reason({ history: undefined })).to.match(/no earlier read/);
      expect(reason({ fingerprint: 'f2' })).to.match(/source, mapping or ldap-scim version changed/);
      expect(reason({ change: { server: undefined, unavailable: 'no USN' } })).to.equal('no USN');
      expect(reason({ change: { server: 'dc-b' } })).to.match(/another server answers now \(dc-b; the last read was from dc-a\)/);
      expect(reason({ change: { server: 'dc-a', cannotContinue: (c) => `went back from ${c.position}` } })).to.equal('went back from 1000');
    });

    it('makes every fullReadEvery-th read a full one', () => {
      // After a full read: three deltas, then the fourth read is full again.
      const kinds = [0, 1, 2, 3].map((n) => chooseRead({ ...base, history: { ...history, deltasSinceFullRead: n } }).kind);
      expect(kinds).to.deep.equal(['delta', 'delta', 'delta', 'full']);
      expect(chooseRead({ ...base, fullReadEvery: 1 }).kind).to.equal('full');
    });
  });

  describe('GeneralizedTime', () => {
    it('reads and writes GeneralizedTime', () => {
      const ms = parseGeneralizedTime('20261123103005Z')!;
      expect(new Date(ms).toISOString()).to.equal('2026-11-23T10:30:05.000Z');
      expect(formatGeneralizedTime(ms + 999)).to.equal('20261123103005Z');
      expect(parseGeneralizedTime('20261123103005.123Z')).to.equal(ms);
      expect(parseGeneralizedTime('yesterday')).to.equal(undefined);
    });
  });

  describe('the OpenLDAP cursor (entryCSN)', () => {
    const csn = (time: string, fraction = '000000') => `${time}.${fraction}Z#000000#000#000000`;
    const at = (iso: string) => Date.parse(iso);

    it('reads and writes CSNs, whose text order is their time order', () => {
      const micros = csnMicros(csn('20261123103005', '000123'))!;
      expect(micros).to.equal(at('2026-11-23T10:30:05Z') * 1000 + 123);
      expect(csnAt(micros)).to.equal(csn('20261123103005', '000123'));
      expect(csnMicros('20261123103005Z')).to.equal(undefined);
      expect(csn('20261123103005', '000123') < csn('20261123103005', '000124')).to.equal(true);
    });

    it('after a full read, starts the next query the read\'s duration plus the in-flight margin before the newest CSN, whatever this clock says', () => {
      let clock = at('2030-01-01T00:00:00Z'); // far from the server's clock: it must not matter
      const tracking = entryCsnTracking('ldap://dir', () => clock);
      tracking.see(values({ entryCSN: csn('20261123100000') }));
      tracking.see(values({ entryCSN: csn('20261123103000') }));
      clock += 10_000; // the read took 10 s
      const cursor = tracking.finish(undefined) as ChangeCursor;
      expect(cursor).to.deep.include({ server: 'ldap://dir', position: csn('20261123103000'), from: csnAt((at('2026-11-23T10:30:00Z') - 10_000 - CSN_IN_FLIGHT_MS) * 1000) });
      expect(tracking.changedSince(cursor)).to.equal(`(entryCSN>=${cursor.from})`);
    });

    it('resumes exactly after the newest CSN once a later read found nothing newer: a directory at rest returns nothing', () => {
      let clock = at('2026-11-23T10:31:00Z');
      const full = entryCsnTracking('ldap://dir', () => clock);
      full.see(values({ entryCSN: csn('20261123103000') }));
      const afterFull = full.finish(undefined) as ChangeCursor;
      clock += 2_000; // the next poll
      const poll = entryCsnTracking('ldap://dir', () => clock);
      poll.see(values({ entryCSN: csn('20261123103000') })); // the overlap, once
      const settled = poll.finish(afterFull) as ChangeCursor;
      expect(settled.from, 'final').to.equal(undefined);
      expect(settled.position).to.equal(csn('20261123103000'));
      expect(poll.changedSince(settled)).to.equal(`(&(entryCSN>=${csn('20261123103000')})(!(entryCSN=${csn('20261123103000')})))`);
    });

    it('keeps the overlap for a poll that starts too soon after the read that set it, and after a newer change', () => {
      let clock = at('2026-11-23T10:31:00Z');
      const full = entryCsnTracking('ldap://dir', () => clock);
      full.see(values({ entryCSN: csn('20261123103000') }));
      const afterFull = full.finish(undefined) as ChangeCursor;
      clock += 100; // too soon: a write in flight may not have committed
      expect((entryCsnTracking('ldap://dir', () => clock).finish(afterFull) as ChangeCursor).from).to.equal(afterFull.from);
      clock += 5_000;
      const poll = entryCsnTracking('ldap://dir', () => clock);
      poll.see(values({ entryCSN: csn('20261123103100', '500000') }));
      const moved = poll.finish(afterFull) as ChangeCursor;
      expect(moved.position).to.equal(csn('20261123103100', '500000'));
      expect(moved.from).to.equal(csnAt(at('2026-11-23T10:31:00.500Z') * 1000 - CSN_IN_FLIGHT_MS * 1000));
    });

    it('never moves the cursor back or into the future, moves an older cursor on, and refuses entries without a CSN', () => {
      const previous: ChangeCursor = { server: 'ldap://dir', position: csn('20261123110000'), readAt: '2026-11-23T11:00:00.000Z' };
      const older = entryCsnTracking('ldap://dir');
      older.see(values({ entryCSN: csn('20261123100000') }));
      expect(older.finish(previous)).to.deep.include({ position: csn('20261123110000') });
      const future = entryCsnTracking('ldap://dir', () => at('2026-11-23T11:00:00Z'));
      future.see(values({ entryCSN: csn('20350101000000') }));
      expect(future.finish(previous)).to.deep.include({ position: csn('20261123110000') });
      expect(entryCsnTracking('ldap://dir').finish(undefined)).to.have.property('unavailable');
      const blind = entryCsnTracking('ldap://dir');
      blind.see(values({ cn: 'no CSN' }));
      expect(blind.finish(undefined)).to.deep.equal({ unavailable: 'entries without an entryCSN: 1 (is lastmod off?)' });
      expect(entryCsnTracking('ldap://dir').cannotContinue!({ ...previous, position: '20261123110000Z' })).to.match(/older ldap-scim/);
    });
  });

  it('writes accountExpires-style FILETIME values that accountExpired reads back', () => {
    const at = Date.parse('2026-11-23T12:00:00Z');
    expect(filetime(0)).to.equal('116444736000000000');
    expect(accountExpired(filetime(at), at + 1)).to.equal(true);
    expect(accountExpired(filetime(at), at - 1000)).to.equal(false);
  });

  describe('carrying users a delta did not read', () => {
    it('a user read now wins over the remembered one; the others are taken as they were mapped', () => {
      const first = new DesiredStateBuilder(rules);
      first.addUser(peopleDn('ann'), 'a1', person('ann', { title: 'Old' }));
      first.addUser(peopleDn('bob'), 'b1', person('bob'));
      first.addUser(peopleDn('nomail'), 'n1', values({ cn: 'nomail' }));
      const memory = first.rememberedUsers();
      expect(memory['n1']).to.deep.equal({ dn: peopleDn('nomail'), skip: 'no email (mapping.user.email gave no value)' });

      const delta = new DesiredStateBuilder(rules);
      delta.addUser(peopleDn('ann'), 'a1', person('ann', { title: 'New' }));
      for (const [anchor, user] of Object.entries(memory)) delta.carryUser(anchor, user);
      const state = delta.finish();
      expect(state.users.get('a1')?.attrs.title).to.equal('New');
      expect(state.users.get('b1')?.attrs).to.deep.equal(memory['b1']!.attrs);
      // The skipped entry stays skipped, with its anchor: the planner holds what was pushed for it.
      expect(state.skipped).to.deep.equal([{ dn: peopleDn('nomail'), kind: 'user', reason: 'no email (mapping.user.email gave no value)', anchor: 'n1' }]);
      expect(delta.rememberedUsers()['a1']!.attrs?.title).to.equal('New');
    });

    it('settles shared emails across read and carried users: neither is synced', () => {
      const first = new DesiredStateBuilder(rules);
      first.addUser(peopleDn('ann'), 'a1', person('ann'));
      const delta = new DesiredStateBuilder(rules);
      delta.addUser(peopleDn('cat'), 'c1', person('cat', { mail: 'ann@example.test' }));
      for (const [anchor, user] of Object.entries(first.rememberedUsers())) delta.carryUser(anchor, user);
      const state = delta.finish();
      expect(state.users.size).to.equal(0);
      expect(state.skipped.map((s) => s.anchor).sort()).to.deep.equal(['a1', 'c1']);
      // Remembered on their own, so that when one of them changes, the other is synced again without a full read.
      expect(Object.keys(delta.rememberedUsers()).sort()).to.deep.equal(['a1', 'c1']);
    });

    it('a new entry that took a deleted person\'s DN gets that DN\'s group memberships, not the remembered person', () => {
      const first = new DesiredStateBuilder(rules);
      first.addUser(peopleDn('pat'), 'old', person('pat'));
      const delta = new DesiredStateBuilder(rules);
      delta.addUser(peopleDn('pat'), 'new', person('pat2'));
      for (const [anchor, user] of Object.entries(first.rememberedUsers())) delta.carryUser(anchor, user);
      delta.addGroup('cn=eng,ou=groups,dc=example,dc=test', 'g1', values({ cn: 'eng' }), [peopleDn('pat')]);
      expect(delta.finish().groups.get('g1')?.members).to.deep.equal(['new']);
    });
  });

  it('after a delta read, a pushed user missing from the desired state is held, memberships included', () => {
    const snapshot = emptySnapshot();
    snapshot.users['a'] = { id: 'ida', attrs: attrs('a') };
    snapshot.users['b'] = { id: 'idb', attrs: attrs('b') };
    snapshot.groups['g'] = { id: 'idg', displayName: 'eng', members: ['a', 'b'] };
    const desired = {
      users: new Map([['a', { anchor: 'a', dn: peopleDn('a'), attrs: attrs('a') }]]),
      groups: new Map([['g', { anchor: 'g', dn: 'cn=eng', displayName: 'eng', members: ['a'] }]]),
      skipped: [],
      membersOutsideScope: 0,
    };
    const options = { membersPerPatch: 100, deprovision: 'deactivate' as const };
    expect(planSync(desired, snapshot, { ...options, holdAbsentUsers: { except: new Set() } }).operations).to.deep.equal([]);
    // The same state after a full read: b left the scope.
    expect(planSync(desired, snapshot, options).operations.map((o) => o.kind)).to.deep.equal(['removeMembers', 'deactivateUser']);
    // A delta after a full read whose deactivation of b failed: b is a known leaver, so the delta retries it.
    expect(planSync(desired, snapshot, { ...options, holdAbsentUsers: { except: new Set(['b']) } }).operations.map((o) => o.kind)).to.deep.equal([
      'removeMembers',
      'deactivateUser',
    ]);
  });
});
