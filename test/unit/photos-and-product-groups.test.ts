import { expect } from 'chai';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import { DesiredStateBuilder, mapUser, type FieldWarning } from '../../src/mapping/desired-state.js';
import { resolveMapping } from '../../src/mapping/rules.js';
import { cleanUrl } from '../../src/mapping/sanitize.js';
import type { UserAttributes } from '../../src/model.js';
import { diffUser } from '../../src/plan/plan.js';
import { matchingPattern, PRODUCT_GROUP_PATTERNS, refusedGroupReason } from '../../src/scim/atlassian-rules.js';
import { attrsFromScimUser, userPatchOperations, userPayload, type ScimUser } from '../../src/scim/resources.js';
import { listedUser } from '../../src/scim/user-index.js';
import { PRODUCT_GROUP_NAME_PATTERNS, refusedGroupNameReason } from '../../src/sandbox/atlassian-rules.js';

// Issue 18, parts 2 and 4: directory groups named like Atlassian's product groups are refused as built-in ones
// are, and a mapped photo URL travels as `photos` both ways.

const values = (o: Record<string, string>) => new Map(Object.entries(o).map(([k, v]) => [k.toLowerCase(), [v]]));
const photoRules = resolveMapping('openldap', { user: { photoUrl: 'https://intranet.example.test/photos/{uid}.jpg' } });
const base: UserAttributes = { userName: 'ada@example.test', email: 'ada@example.test', active: true };

describe('product and site groups', () => {
  it('refuses the names Atlassian documents, in any case, and nothing merely alike', () => {
    expect(PRODUCT_GROUP_PATTERNS).to.deep.equal(['jira-*', 'confluence-*']);
    for (const name of ['confluence-users', 'jira-software-users', 'jira-servicemanagement-users', 'jira-administrators', 'Confluence-Admins-vitafleet', 'JIRA-users-acme.com', ' jira-admins ']) {
      expect(refusedGroupReason(name), name).to.match(/is named like an Atlassian product group: Atlassian accepts its create but never propagates it \("synced but empty"\); rename the group in the directory$/);
    }
    for (const name of ['jira', 'confluence', 'team-jira-users', 'my-confluence-users', 'jiraadmins', 'engineering']) {
      expect(refusedGroupReason(name), name).to.equal(undefined);
    }
    expect(refusedGroupReason('confluence-users')).to.equal(
      '"confluence-users" is named like an Atlassian product group: Atlassian accepts its create but never propagates it ("synced but empty"); rename the group in the directory',
    );
    // Built-in names keep their own reason, which earlier reports and tests rely on.
    expect(refusedGroupReason('Site-Admins')).to.match(/^"Site-Admins" is an Atlassian built-in group/);
  });

  it('adds the admin\'s own names and patterns: a trailing or inner *, literal dots, whole names only', () => {
    const admin = ['statuspage-*', 'opsgenie-users', '*-admins-acme', 'a.b'];
    expect(refusedGroupReason('Statuspage-Users', admin)).to.equal(
      '"Statuspage-Users" matches "statuspage-*" in target.refusedGroupNames, so it is never pushed; rename the group in the directory, or take the name out of that list',
    );
    expect(refusedGroupReason('opsgenie-users', admin)).to.match(/matches "opsgenie-users" in target\.refusedGroupNames/);
    expect(refusedGroupReason('trello-admins-acme', admin)).to.match(/matches "\*-admins-acme"/);
    expect(refusedGroupReason('opsgenie-users-2', admin)).to.equal(undefined);
    expect(refusedGroupReason('axb', admin)).to.equal(undefined);
    expect(refusedGroupReason('statuspage-users')).to.equal(undefined);
    // A product name is reported as a product group even when an admin pattern matches it too.
    expect(refusedGroupReason('jira-x', ['jira-*'])).to.match(/product group/);
    expect(matchingPattern('x', [])).to.equal(undefined);
  });

  it('skips such a directory group with its reason and anchor (held, not deleted), and keeps its members where it is nested', () => {
    const b = new DesiredStateBuilder(resolveMapping('openldap', {}), { remember: false, refusedGroupNames: ['statuspage-*'] });
    b.addUser('uid=a,ou=people', 'ua', values({ mail: 'a@example.test' }));
    b.addGroup('cn=confluence-users,ou=groups', 'g1', values({ cn: 'confluence-users' }), ['uid=a,ou=people']);
    b.addGroup('cn=statuspage-users,ou=groups', 'g2', values({ cn: 'statuspage-users' }), []);
    b.addGroup('cn=everyone,ou=groups', 'g3', values({ cn: 'everyone' }), ['cn=confluence-users,ou=groups']);
    const s = b.finish();
    expect([...s.groups.values()].map((g) => g.displayName)).to.deep.equal(['everyone']);
    expect(s.groups.get('g3')!.members).to.deep.equal(['ua']);
    const skips = Object.fromEntries(s.skipped.map((x) => [x.dn, x]));
    expect(skips['cn=confluence-users,ou=groups']).to.deep.include({ kind: 'group', anchor: 'g1' });
    expect(skips['cn=confluence-users,ou=groups']!.reason).to.match(/^"confluence-users" is named like an Atlassian product group/);
    expect(skips['cn=statuspage-users,ou=groups']!.reason).to.match(/target\.refusedGroupNames/);
    // Without the admin's list, statuspage-users is an ordinary group.
    const plain = new DesiredStateBuilder(resolveMapping('openldap', {}), { remember: false });
    plain.addGroup('cn=statuspage-users,ou=groups', 'g2', values({ cn: 'statuspage-users' }), []);
    expect(plain.finish().groups.size).to.equal(1);
  });

  it('the sandbox refuses product groups from the same list when told to', () => {
    expect(PRODUCT_GROUP_NAME_PATTERNS).to.equal(PRODUCT_GROUP_PATTERNS);
    expect(refusedGroupNameReason('jira-servicemanagement-users', true)).to.match(/product group/);
    expect(refusedGroupNameReason('jira-servicemanagement-users', false)).to.equal(undefined);
    expect(refusedGroupNameReason('team-jira', true)).to.equal(undefined);
  });

  it('target.refusedGroupNames is an optional list that cannot refuse everything', () => {
    const config = (list: string) => `source:
  kind: openldap
  url: ldap://127.0.0.1:3890
  bindDn: cn=admin,dc=example,dc=test
  bindPassword: x
  users: { baseDn: "ou=people,dc=example,dc=test" }
target:
  url: http://127.0.0.1:9440/scim
  token: t
${list}state: { path: ./state.json }
`;
    expect(parseConfig(config(''), '/tmp/c.yaml', {}).target.refusedGroupNames).to.equal(undefined);
    expect(parseConfig(config('  refusedGroupNames: [statuspage-*, opsgenie-users]\n'), '/tmp/c.yaml', {}).target.refusedGroupNames).to.deep.equal(['statuspage-*', 'opsgenie-users']);
    for (const bad of ['"*"', '"**"', '""']) {
      try {
        parseConfig(config(`  refusedGroupNames: [${bad}]\n`), '/tmp/c.yaml', {});
        expect.fail(`${bad} was accepted`);
      } catch (e) {
        expect(e, bad).to.be.instanceOf(ConfigError);
        expect((e as ConfigError).problems[0]!.key).to.equal('target.refusedGroupNames.0');
      }
    }
  });
});

describe('profile photos', () => {
  it('are off unless mapped, and a template gives each person their URL', () => {
    const off = mapUser(resolveMapping('openldap', {}), values({ mail: 'ada@example.test', uid: 'ada' }), true) as UserAttributes;
    expect(off).to.not.have.property('photoUrl');
    const on = mapUser(photoRules, values({ mail: 'ada@example.test', uid: 'ada' }), true) as UserAttributes;
    expect(on.photoUrl).to.equal('https://intranet.example.test/photos/ada.jpg');
    expect(photoRules.userAttributes).to.include('uid');
    // No uid: the template yields nothing, so no photo rather than a URL with a hole in it.
    expect(mapUser(photoRules, values({ mail: 'ada@example.test' }), true)).to.not.have.property('photoUrl');
  });

  it('a value that is not an http(s) URL is left out with a warning; the next alternative is used if there is one', () => {
    const rules = resolveMapping('openldap', { user: { photoUrl: ['photoLink', 'https://intranet.example.test/photos/{uid}.jpg'] } });
    const warnings: FieldWarning[] = [];
    const attrs = mapUser(rules, values({ mail: 'ada@example.test', uid: 'ada', photoLink: 'ftp://files.example.test/ada.jpg' }), true, warnings) as UserAttributes;
    expect(attrs.photoUrl).to.equal('https://intranet.example.test/photos/ada.jpg');
    expect(warnings).to.deep.equal([
      { field: 'photoUrl', message: 'the value from photoLink "ftp://files.example.test/ada.jpg" is not an http(s) URL and was ignored; used https://intranet.example.test/photos/{uid}.jpg instead' },
    ]);
    const only: FieldWarning[] = [];
    const none = mapUser(resolveMapping('openldap', { user: { photoUrl: 'photoLink' } }), values({ mail: 'ada@example.test', photoLink: 'javascript:alert(1)' }), true, only);
    expect(none).to.not.have.property('photoUrl');
    expect(only[0]!.message).to.match(/is not an http\(s\) URL and was ignored; the field is left empty$/);
  });

  it('cleanUrl refuses what Atlassian could not fetch or should not see, and writes a space as %20 with a note', () => {
    expect(cleanUrl('https://h.example.test/p/a.jpg')).to.deep.equal({ value: 'https://h.example.test/p/a.jpg', notes: [] });
    expect(cleanUrl('photos/a.jpg').refused).to.match(/not an http\(s\) URL/);
    expect(cleanUrl('https://user:secret@h.example.test/a.jpg').refused).to.match(/user name or password/);
    expect(cleanUrl('https://h.example.test/a\n.jpg').refused).to.match(/control characters \(U\+000A\)/);
    expect(cleanUrl('https://h.example.test/\uFFFD.jpg').refused).to.match(/U\+FFFD/);
    expect(cleanUrl(`https://h.example.test/${'a'.repeat(2100)}`).refused).to.match(/over the limit of 2048/);
    expect(cleanUrl('https://h.example.test/Ada Lovelace.jpg')).to.deep.equal({
      value: 'https://h.example.test/Ada%20Lovelace.jpg',
      notes: ['written as "https://h.example.test/Ada%20Lovelace.jpg"'],
    });
  });

  it('are sent on create as Atlassian documents them, and not at all when unmapped', () => {
    const body = userPayload('anchor-1', { ...base, photoUrl: 'https://h.example.test/a.jpg' });
    expect(body.photos).to.deep.equal([{ value: 'https://h.example.test/a.jpg', type: 'photo', primary: true }]);
    expect(userPayload('anchor-1', base)).to.not.have.property('photos');
  });

  it('a change replaces the photos list, a photo the mapping no longer gives is removed, an unchanged one is not sent', () => {
    const from = { ...base, photoUrl: 'https://h.example.test/old.jpg' };
    const to = { ...base, photoUrl: 'https://h.example.test/new.jpg' };
    expect(diffUser(from, to)).to.deep.equal([{ field: 'photoUrl', from: from.photoUrl, to: to.photoUrl }]);
    expect(userPatchOperations(diffUser(from, to))).to.deep.equal([
      { op: 'replace', path: 'photos', value: [{ value: 'https://h.example.test/new.jpg', type: 'photo', primary: true }] },
    ]);
    expect(userPatchOperations(diffUser(from, base))).to.deep.equal([{ op: 'remove', path: 'photos' }]);
    expect(userPatchOperations(diffUser(base, to))).to.deep.equal([
      { op: 'replace', path: 'photos', value: [{ value: 'https://h.example.test/new.jpg', type: 'photo', primary: true }] },
    ]);
    expect(diffUser(to, { ...to })).to.deep.equal([]);
  });

  it('are read back from the SCIM side (the primary photo first), only when mapped, so a rebuild does not send them again', () => {
    const scim: ScimUser = {
      id: 'id-1',
      userName: 'ada@example.test',
      emails: [{ value: 'ada@example.test', primary: true }],
      active: true,
      photos: [
        { value: 'https://h.example.test/thumb.jpg', type: 'thumbnail' },
        { value: 'https://h.example.test/a.jpg', type: 'photo', primary: true },
      ],
    };
    const managed = new Set(['userName', 'email', 'active', 'photoUrl'] as const);
    expect(attrsFromScimUser(scim, managed).photoUrl).to.equal('https://h.example.test/a.jpg');
    expect(listedUser(scim, managed).attrs.photoUrl).to.equal('https://h.example.test/a.jpg');
    expect(attrsFromScimUser(scim, new Set(['userName', 'email', 'active'] as const))).to.not.have.property('photoUrl');
    const noPrimary: ScimUser = { ...scim, photos: [{ value: 'https://h.example.test/t.jpg', type: 'thumbnail' }, { value: 'https://h.example.test/p.jpg', type: 'photo' }] };
    expect(attrsFromScimUser(noPrimary, managed).photoUrl).to.equal('https://h.example.test/p.jpg');
    // What was read back equals what the mapping wants: nothing to send.
    const wanted = mapUser(photoRules, values({ mail: 'ada@example.test', uid: 'a' }), true) as UserAttributes;
    expect(wanted.photoUrl).to.equal('https://intranet.example.test/photos/a.jpg');
    const readBack = attrsFromScimUser({ ...scim, photos: [{ value: wanted.photoUrl!, type: 'photo', primary: true }] }, managed);
    expect(diffUser(readBack, wanted)).to.deep.equal([]);
  });
});
