import { expect } from 'chai';
import { DesiredStateBuilder, mapUser } from '../../src/mapping/desired-state.js';
import { compileExpression, evaluate, resolveMapping } from '../../src/mapping/rules.js';

const rules = resolveMapping('openldap', {});
const values = (o: Record<string, string | string[]>) => new Map(Object.entries(o).map(([k, v]) => [k.toLowerCase(), Array.isArray(v) ? v : [v]]));

const person = (uid: string, extra: Record<string, string> = {}) =>
  values({ mail: `${uid}@Example.test`, givenName: 'Ada', sn: 'Lovelace', cn: 'Ada Lovelace', ...extra });

describe('mapping', () => {
  it('maps an OpenLDAP person with the default rules, lower-casing userName and email', () => {
    const attrs = mapUser(rules, person('ada', { title: 'Engineer', departmentNumber: 'R&D', o: 'Acme', preferredLanguage: 'en' }), true);
    expect(attrs).to.deep.equal({
      userName: 'ada@example.test',
      email: 'ada@example.test',
      active: true,
      givenName: 'Ada',
      familyName: 'Lovelace',
      displayName: 'Ada Lovelace',
      title: 'Engineer',
      department: 'R&D',
      organization: 'Acme',
      preferredLanguage: 'en',
    });
  });

  it('falls back along a list of alternatives and templates', () => {
    const expr = compileExpression(['displayName', '{givenName} {sn}', 'cn']);
    expect(evaluate(expr, values({ displayName: 'Shown' }))).to.equal('Shown');
    expect(evaluate(expr, values({ givenName: 'Grace', sn: 'Hopper', cn: 'G H' }))).to.equal('Grace Hopper');
    expect(evaluate(expr, values({ givenName: 'Grace', cn: 'G H' }))).to.equal('G H');
    expect(evaluate(expr, values({}))).to.equal(undefined);
  });

  it('lets an admin override a field and switch one off', () => {
    const custom = resolveMapping('openldap', { user: { displayName: '{sn}, {givenName}', title: null } });
    const attrs = mapUser(custom, person('ada', { title: 'Engineer' }), true);
    expect(attrs).to.include({ displayName: 'Lovelace, Ada' });
    expect(attrs).to.not.have.property('title');
    expect(custom.userAttributes).to.not.include('title');
  });

  it('explains why an entry without a usable email is skipped', () => {
    expect(mapUser(rules, values({ cn: 'No Mail' }), true)).to.match(/no email/);
    expect(mapUser(rules, values({ mail: 'not-an-address' }), true)).to.match(/not a usable address/);
  });

  describe('the whole scope', () => {
    it('skips both entries that share an email (differing only in case) and keeps the rest', () => {
      const b = new DesiredStateBuilder(rules);
      b.addUser('uid=a,ou=people', 'a1', values({ mail: 'Dup@example.test', cn: 'A' }));
      b.addUser('uid=b,ou=people', 'b1', values({ mail: 'dup@example.test', cn: 'B' }));
      b.addUser('uid=c,ou=people', 'c1', values({ mail: 'c@example.test', cn: 'C' }));
      b.addUser('uid=d,ou=people', 'd1', values({ cn: 'D' }));
      const s = b.finish();
      expect([...s.users.keys()]).to.deep.equal(['c1']);
      expect(s.skipped.map((x) => x.dn)).to.have.members(['uid=a,ou=people', 'uid=b,ou=people', 'uid=d,ou=people']);
      const dup = s.skipped.find((x) => x.dn === 'uid=a,ou=people')!;
      expect(dup.reason).to.match(/email dup@example.test is also used by uid=b,ou=people/);
      expect(dup.anchor).to.equal('a1');
    });

    it('flattens nested groups, survives cycles, ignores members outside scope, and never pushes built-in groups', () => {
      const b = new DesiredStateBuilder(rules);
      b.addUser('uid=u1,ou=people,dc=x', 'u1', values({ mail: 'u1@x.test', cn: 'U1' }));
      b.addUser('uid=u2,ou=people,dc=x', 'u2', values({ mail: 'u2@x.test', cn: 'U2' }));
      b.addUser('uid=u3,ou=people,dc=x', 'u3', values({ mail: 'u3@x.test', cn: 'U3' }));
      // everyone ⊃ eng ⊃ platform ⊃ eng (a cycle); member DN spacing and case differ from the entries' DNs
      b.addGroup('cn=everyone,ou=groups,dc=x', 'g-all', values({ cn: 'everyone' }), ['cn=eng, ou=groups, dc=x', 'uid=ghost,ou=people,dc=x']);
      b.addGroup('cn=eng,ou=groups,dc=x', 'g-eng', values({ cn: 'eng' }), ['UID=u1,ou=people,dc=x', 'cn=platform,ou=groups,dc=x']);
      b.addGroup('cn=platform,ou=groups,dc=x', 'g-plat', values({ cn: 'platform' }), ['uid=u2,ou=people,dc=x', 'cn=eng,ou=groups,dc=x']);
      b.addGroup('cn=site-admins,ou=groups,dc=x', 'g-admins', values({ cn: 'site-admins' }), ['uid=u3,ou=people,dc=x']);
      const s = b.finish();
      expect(s.groups.get('g-all')!.members).to.deep.equal(['u1', 'u2']);
      expect(s.groups.get('g-eng')!.members).to.deep.equal(['u1', 'u2']);
      expect(s.groups.get('g-plat')!.members).to.deep.equal(['u1', 'u2']);
      expect(s.groups.has('g-admins')).to.equal(false);
      expect(s.skipped.find((x) => x.anchor === 'g-admins')!.reason).to.match(/built-in/);
      expect(s.membersOutsideScope).to.equal(1);
    });

    it('skips both groups that share a displayName', () => {
      const b = new DesiredStateBuilder(rules);
      b.addGroup('cn=Sales,ou=a', 'g1', values({ cn: 'Sales' }), []);
      b.addGroup('cn=sales,ou=b', 'g2', values({ cn: 'sales' }), []);
      const s = b.finish();
      expect(s.groups.size).to.equal(0);
      expect(s.skipped.filter((x) => x.kind === 'group')).to.have.length(2);
    });
  });
});
