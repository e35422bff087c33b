import { expect } from 'chai';
import { DesiredStateBuilder, mapUser, type FieldWarning } from '../../src/mapping/desired-state.js';
import { dnKey } from '../../src/directory/dn.js';
import { compileExpression, evaluate, resolveMapping } from '../../src/mapping/rules.js';
import { cleanText, MAX_TEXT_LENGTH } from '../../src/mapping/sanitize.js';

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
  describe('values that LDAP stores but that do not belong in an Atlassian profile', () => {
    const mapWithWarnings = (v: Parameters<typeof mapUser>[1], r = rules) => {
      const warnings: FieldWarning[] = [];
      const attrs = mapUser(r, v, true, warnings);
      return { attrs, warnings: Object.fromEntries(warnings.map((w) => [w.field, w.message])) };
    };

    it('says exactly what is wrong with an address it refuses', () => {
      const reason = (mail: string) => mapUser(rules, values({ mail }), true);
      expect(reason('no-at.example.test')).to.equal('email "no-at.example.test" is not a usable address: it has no @');
      expect(reason('two@at@example.test')).to.equal('email "two@at@example.test" is not a usable address: it has 2 @ signs, an address has exactly one');
      expect(reason('@SUM(1)@x.test')).to.equal('email "@SUM(1)@x.test" is not a usable address: it has 2 @ signs, an address has exactly one');
      expect(reason('first last@example.test')).to.equal('email "first last@example.test" is not a usable address: it contains white space');
      expect(reason('robert(bob)@example.test')).to.equal('email "robert(bob)@example.test" is not a usable address: it contains (, which an address can carry only inside quotes');
      expect(reason('@example.test')).to.equal('email "@example.test" is not a usable address: nothing comes before the @');
      expect(reason('ada@localhost')).to.equal('email "ada@localhost" is not a usable address: its domain "localhost" is not a domain name with a dot');
      expect(reason(`${'z'.repeat(65)}@x.test`)).to.match(/its local part is 65 characters long, over the limit of 64$/);
      const long = `${'x'.repeat(250)}@x.test`;
      expect(reason(long)).to.equal(`email "${'x'.repeat(80)}…" is 257 characters long, over the limit of 254`);
    });

    it('accepts what is valid in an address even when it is an LDAP filter metacharacter (*), and non-Latin names', () => {
      const { attrs, warnings } = mapWithWarnings(values({ mail: 'Robert*Tables@Example.test', cn: 'Robert (Bob) *Tables* \\', sn: '山田', givenName: 'Дмитрий' }));
      expect(attrs).to.deep.equal({
        userName: 'robert*tables@example.test',
        email: 'robert*tables@example.test',
        active: true,
        displayName: 'Robert (Bob) *Tables* \\',
        familyName: '山田',
        givenName: 'Дмитрий',
      });
      expect(warnings).to.deep.equal({});
    });

    it('skips an entry whose email or userName holds a control character, showing it escaped', () => {
      expect(mapUser(rules, values({ mail: 'bell\u0007@example.test' }), true)).to.equal('email "bell\\u0007@example.test" contains control characters (U+0007)');
      expect(mapUser(rules, values({ mail: 'nul\u0000@example.test' }), true)).to.equal('email "nul\\u0000@example.test" contains control characters (U+0000)');
      expect(mapUser(rules, values({ mail: 'a\u0085b@example.test' }), true)).to.match(/contains control characters \(U\+0085\)$/);
      const byUid = resolveMapping('openldap', { user: { userName: 'uid' } });
      expect(mapUser(byUid, values({ mail: 'ada@example.test', uid: 'ada\u001b[31m' }), true)).to.equal('userName "ada\\u001b[31m" contains control characters (U+001B)');
      expect(mapUser(byUid, values({ mail: 'ada@example.test', uid: 'u'.repeat(256) }), true)).to.match(/^userName "u+…" is 256 characters long, over the limit of 255$/);
    });

    it('removes control characters from display fields, keeps the user, and says which it removed', () => {
      const { attrs, warnings } = mapWithWarnings(
        person('ada', { title: 'Chief\u0007 Bell \u001b[31mRed\u001b[0m Officer', displayName: 'Line One\r\nLine Two', sn: 'Love\u0000lace\u007f', o: 'Acme\u009b Corp' }),
      );
      expect(attrs).to.include({ title: 'Chief Bell Red Officer', displayName: 'Line One Line Two', familyName: 'Lovelace', organization: 'Acme Corp' });
      expect(warnings).to.deep.equal({
        title: 'the value from title: control characters removed (U+0007, U+001B)',
        displayName: 'the value from displayName: control characters removed (U+000D, U+000A)',
        familyName: 'the value from sn: control characters removed (U+0000, U+007F)',
        organization: 'the value from o: control characters removed (U+009B)',
      });
    });

    it('passes over a display value that is nothing but control characters, to the next alternative', () => {
      const { attrs, warnings } = mapWithWarnings(values({ mail: 'a@x.test', displayName: '\u0007\u001b[0m', cn: 'Ada' }));
      expect(attrs).to.include({ displayName: 'Ada' });
      expect(warnings.displayName).to.equal('the value from displayName holds nothing but control characters and was ignored; used cn instead');
    });

    it('cuts a value over 255 characters at a character boundary, with a warning, and keeps the user', () => {
      const { attrs, warnings } = mapWithWarnings(person('ada', { title: 'x'.repeat(10_000), displayName: 'Ä'.repeat(300) }));
      const a = attrs as Exclude<typeof attrs, string>;
      expect(a.title).to.equal('x'.repeat(MAX_TEXT_LENGTH));
      expect(a.displayName).to.equal('Ä'.repeat(255));
      expect(warnings).to.deep.equal({
        title: 'the value from title: cut to 255 characters (it had 10000)',
        displayName: 'the value from displayName: cut to 255 characters (it had 300)',
      });
      // Counted in code points, never splitting a surrogate pair, an emoji sequence or a letter from its accent.
      const family = '👨‍👩‍👧'; // 5 code points
      expect(cleanText('a'.repeat(252) + family).value).to.equal('a'.repeat(252));
      expect(cleanText('a'.repeat(254) + 'e\u0301').value).to.equal('a'.repeat(254));
      expect(cleanText('😀'.repeat(300)).value).to.equal('😀'.repeat(255));
      expect(cleanText('y'.repeat(255))).to.deep.equal({ value: 'y'.repeat(255), notes: [] });
    });

    it('treats bytes that were not valid UTF-8 as a missing value: the next alternative, or the field left empty', () => {
      // slapd refuses such bytes in Directory String attributes, and ldapts hands them over as a Buffer (which the
      // reader drops); decoded leniently they become U+FFFD, which is what the mapping guards against.
      const garbage = Buffer.from([0x41, 0xff, 0xfe, 0x00, 0x42]).toString('utf8');
      expect(garbage).to.include('\uFFFD');
      const { attrs, warnings } = mapWithWarnings(values({ mail: 'a@x.test', displayName: garbage, cn: 'Ada', title: garbage }));
      expect(attrs).to.include({ displayName: 'Ada' });
      expect(attrs).to.not.have.property('title');
      expect(warnings).to.deep.equal({
        displayName: 'the value from displayName holds U+FFFD (bytes that were not valid UTF-8) and was ignored; used cn instead',
        title: 'the value from title holds U+FFFD (bytes that were not valid UTF-8) and was ignored; the field is left empty',
      });
      expect(mapUser(rules, values({ mail: `a${garbage}@x.test` }), true)).to.match(/^email "a.*@x.test" contains control characters \(U\+0000\)$/);
      expect(mapUser(rules, values({ mail: 'a\uFFFD@x.test' }), true)).to.equal('email "a\uFFFD@x.test" holds U+FFFD (bytes that were not valid UTF-8)');
    });

    it('leaves clean values, and callers that pass no warning list, alone', () => {
      expect(mapUser(rules, person('ada', { title: 'Engineer' }), true)).to.include({ title: 'Engineer', displayName: 'Ada Lovelace' });
      expect(mapWithWarnings(person('ada', { title: '  Engineer  ' })).warnings).to.deep.equal({});
    });
  });

  describe('the whole scope, with hostile entries', () => {
    it('skips every entry that shares an anchor (slapd cannot produce this; a directory bug or a bad custom anchor can)', () => {
      const b = new DesiredStateBuilder(rules);
      b.addUser('uid=a,ou=people', 'same', values({ mail: 'a@example.test' }));
      b.addUser('uid=b,ou=people', 'same', values({ mail: 'b@example.test' }));
      b.addUser('uid=c,ou=people', 'same', values({ mail: 'c@example.test' }));
      b.addUser('uid=d,ou=people', undefined, values({ mail: 'd@example.test' }));
      b.addUser('uid=e,ou=people', 'e1', values({ mail: 'e@example.test' }));
      const s = b.finish();
      expect([...s.users.keys()]).to.deep.equal(['e1']);
      const reasons = Object.fromEntries(s.skipped.map((x) => [x.dn, x.reason]));
      expect(reasons).to.deep.equal({
        'uid=a,ou=people': 'anchor same is shared with another entry',
        'uid=b,ou=people': 'anchor same is shared with another entry',
        'uid=c,ou=people': 'anchor same is shared with another entry',
        'uid=d,ou=people': 'no anchor (entryUUID) returned for the entry',
      });
    });

    it('reports what it cleaned for the entries it syncs, and nothing for those it skips', () => {
      const b = new DesiredStateBuilder(rules);
      b.addUser('uid=long,ou=people', 'u1', values({ mail: 'long@example.test', title: 't'.repeat(300) }));
      b.addUser('uid=dup1,ou=people', 'u2', values({ mail: 'dup@example.test', title: 'Bell\u0007' }));
      b.addUser('uid=dup2,ou=people', 'u3', values({ mail: 'dup@example.test' }));
      b.addGroup('cn=bell,ou=groups', 'g1', values({ cn: 'Bell\u0007 Group' }), ['uid=long,ou=people']);
      b.addGroup('cn=site-admins,ou=groups', 'g2', values({ cn: 'site-admins\u0007' }), []);
      b.addGroup('cn=garbage,ou=groups', 'g3', values({ cn: 'x\uFFFD' }), []);
      const s = b.finish();
      expect(s.warnings).to.deep.equal([
        { dn: 'uid=long,ou=people', kind: 'user', anchor: 'u1', field: 'title', message: 'the value from title: cut to 255 characters (it had 300)' },
        { dn: 'cn=bell,ou=groups', kind: 'group', anchor: 'g1', field: 'displayName', message: 'the value from cn: control characters removed (U+0007)' },
      ]);
      expect(s.groups.get('g1')).to.deep.include({ displayName: 'Bell Group', members: ['u1'] });
      const reasons = Object.fromEntries(s.skipped.map((x) => [x.dn, x.reason]));
      expect(reasons['cn=site-admins,ou=groups']).to.match(/^"site-admins" is an Atlassian built-in group/);
      expect(reasons['cn=garbage,ou=groups']).to.equal(
        'no value for displayName (mapping.group.displayName): the value from cn holds U+FFFD (bytes that were not valid UTF-8) and was ignored; the field is left empty',
      );
    });

    it('resolves member DNs however they are escaped, spaced or cased', () => {
      const b = new DesiredStateBuilder(rules);
      b.addUser('uid=odd (Bob) *Tables* \\5C,ou=people,dc=x', 'meta', values({ mail: 'meta@x.test' }));
      b.addUser('uid=山田\\2C 太郎,ou=people,dc=x', 'cjk', values({ mail: 'cjk@x.test' }));
      b.addUser('uid=good,ou=people,dc=x', 'good', values({ mail: 'good@x.test' }));
      b.addGroup('cn=odd \\22quoted\\22 \\5C name,ou=groups,dc=x', 'quoted', values({ cn: 'odd "quoted" \\ name' }), ['UID=Good , OU=People,DC=X']);
      b.addGroup('cn=outer,ou=groups,dc=x', 'outer', values({ cn: 'outer' }), [
        'uid=odd (Bob) *Tables* \\\\,ou=people,dc=x',
        'uid=\\E5\\B1\\B1\\E7\\94\\B0\\, 太郎,ou=people,dc=x',
        'cn=odd \\"quoted\\" \\\\ name,ou=groups,dc=x',
      ]);
      const s = b.finish();
      expect(s.groups.get('quoted')!.members).to.deep.equal(['good']);
      expect(s.groups.get('outer')!.members).to.deep.equal(['cjk', 'good', 'meta']);
      expect(s.membersOutsideScope).to.equal(0);
    });
  });

  describe('dnKey', () => {
    it('gives one key to every spelling of one DN', () => {
      const same = (a: string, b: string) => expect(dnKey(a), `${a} vs ${b}`).to.equal(dnKey(b));
      same('uid=a\\5Cb,ou=People,dc=x', 'UID = A\\\\B , ou=people,DC=X');
      same('cn=\\22q\\22,dc=x', 'cn=\\"Q\\",dc=x');
      same('uid=a\\2C b,dc=x', 'uid=a\\, b,dc=x');
      same('uid=\\E5\\B1\\B1,dc=x', 'uid=山,dc=x');
      same('cn=a+sn=b,dc=x', 'sn=B + cn=A,dc=x');
      same('cn=John  Smith ,dc=x', 'cn=john smith,dc=x');
      same('cn=\\ lead,dc=x', 'cn=lead,dc=x');
    });

    it('keeps different DNs apart, and never matches a value that is not a DN', () => {
      const differ = (a: string, b: string) => expect(dnKey(a), `${a} vs ${b}`).to.not.equal(dnKey(b));
      differ('cn=a\\,b,dc=x', 'cn=a,b=,dc=x');
      differ('cn=a\\ ,ou=g,dc=x', 'cn=a\\,ou=g,dc=x');
      differ('cn=a\\+b,dc=x', 'cn=a+b=,dc=x');
      differ('cn=a,dc=x', 'cn=a,dc=y');
      expect(dnKey('not a dn')).to.not.equal(dnKey('cn=not a dn'));
      expect(dnKey('cn=trailing\\')).to.match(/^!/);
    });
  });
});
