import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { ConfigError, loadConfig, parseConfig, type ConfigProblem } from '../../src/config/load.js';
import { filterProblem } from '../../src/config/filter-syntax.js';

// Line numbers in the assertions below count from this text: users is line 6, groups line 7.
const BASE = `source:
  kind: openldap
  url: ldap://127.0.0.1:3890
  bindDn: cn=admin,dc=example,dc=test
  bindPassword: \${LDAP_PASSWORD}
  users: { baseDn: "ou=people,dc=example,dc=test" }
  groups: { baseDn: "ou=groups,dc=example,dc=test" }
target:
  url: http://127.0.0.1:9440/scim/directory/sandbox
  token: \${SCIM_TOKEN}
state: { path: ./state.json }
`;
const env = { LDAP_PASSWORD: 'bind-secret-1', SCIM_TOKEN: 'scim-secret-1' };

const withUsersFilter = (filter: string) =>
  BASE.replace('users: { baseDn: "ou=people,dc=example,dc=test" }', `users: { baseDn: "ou=people,dc=example,dc=test", filter: '${filter}' }`);
const withGroupsFilter = (filter: string) =>
  BASE.replace('groups: { baseDn: "ou=groups,dc=example,dc=test" }', `groups: { baseDn: "ou=groups,dc=example,dc=test", filter: '${filter}' }`);

function problems(text: string, e: NodeJS.ProcessEnv = env): ConfigProblem[] {
  try {
    parseConfig(text, '/etc/ldap-scim/config.yaml', e);
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

/** Writes `text` as config.yaml with `mode` in a fresh folder and loads it the way the CLI does. */
function loadFile(text: string, mode: number, e: NodeJS.ProcessEnv = env) {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'ldap-scim-checks-')), 'config.yaml');
  writeFileSync(file, text);
  // chmod after writing: the process umask would otherwise decide the group/other bits.
  chmodSync(file, mode);
  return { file, config: loadConfig(file, e) };
}

describe('config: strict LDAP filters', () => {
  it('refuses a filter with a missing ), naming the key and its line (ldapts would close it silently)', () => {
    const all = problems(withUsersFilter('(&(objectClass=inetOrgPerson)(!(title=Manager))'));
    expect(all).to.have.length(1);
    expect(all[0]).to.deep.equal({ key: 'source.users.filter', line: 6, message: 'has 1 more ( than ): a ) is missing' });
  });

  it('refuses two filters side by side without & or |', () => {
    const [p] = problems(withUsersFilter('(a=1)(b=2)'));
    expect(p!.key).to.equal('source.users.filter');
    expect(p!.message).to.match(/^has text after the end of the filter at position 6; .*\(&\.\.\.\) or \(\|\.\.\.\)/);
  });

  it('refuses an extra )', () => {
    const [p] = problems(withUsersFilter('(&(objectClass=person)(mail=*)))'));
    expect(p).to.deep.include({ key: 'source.users.filter', message: 'has one ) too many at position 32 (or a ( is missing before it)' });
  });

  it('accepts a correct nested filter and one with escaped parentheses in a value', () => {
    const nested = '(&(objectClass=inetOrgPerson)(|(ou=Sales)(ou=R\\26D))(!(title=Manager)))';
    expect(parseConfig(withUsersFilter(nested), '/etc/ldap-scim/config.yaml', env).source.usersFilter).to.equal(nested);
    const escaped = '(cn=Smith \\28contractor\\29)';
    expect(parseConfig(withUsersFilter(escaped), '/etc/ldap-scim/config.yaml', env).source.usersFilter).to.equal(escaped);
  });

  it('checks source.groups.filter the same way', () => {
    const all = problems(withGroupsFilter('(|(objectClass=groupOfNames)(objectClass=group)'));
    expect(all).to.deep.equal([{ key: 'source.groups.filter', line: 7, message: 'has 1 more ( than ): a ) is missing' }]);
    const ok = parseConfig(withGroupsFilter('(|(objectClass=groupOfNames)(objectClass=group))'), '/etc/ldap-scim/config.yaml', env);
    expect(ok.source.groupsFilter).to.equal('(|(objectClass=groupOfNames)(objectClass=group))');
  });

  it('checks the filter after ${VAR} substitution', () => {
    const text = withUsersFilter('${USERS_FILTER}');
    const [p] = problems(text, { ...env, USERS_FILTER: '(&(a=1)(b=2)' });
    expect(p).to.deep.equal({ key: 'source.users.filter', line: 6, message: 'has 1 more ( than ): a ) is missing' });
    const c = parseConfig(text, '/etc/ldap-scim/config.yaml', { ...env, USERS_FILTER: '(&(a=1)(b=2))' });
    expect(c.source.usersFilter).to.equal('(&(a=1)(b=2))');
  });

  it('refuses a filter without its outer parentheses, showing the form RFC 4515 requires', () => {
    const [p] = problems(withUsersFilter('objectClass=person'));
    expect(p!.message).to.equal('must be enclosed in parentheses, as RFC 4515 requires: (objectClass=person)');
  });

  it('says what is wrong in each kind of bad filter', () => {
    expect(filterProblem('  ')).to.equal('is an empty filter');
    expect(filterProblem('(&(a=1)())')).to.equal('has an empty filter () at position 8');
    expect(filterProblem('(&)')).to.equal('has an empty filter (&) at position 1');
    expect(filterProblem('(&(a=1)(b=2)(c=3)')).to.equal('has 1 more ( than ): a ) is missing');
    expect(filterProblem('(&(|(a=1)(b=2)')).to.equal('has 2 more ( than ): 2 ) are missing');
    expect(filterProblem('(&(a=1)(!(b=2)(c=3)))')).to.match(/^has a \(! at position 8 that holds 2 filters: it negates exactly one/);
    expect(filterProblem('(& (a=1))')).to.match(/^has whitespace outside a value at position 3:/);
    expect(filterProblem('(&(a=1)(b=2))\n')).to.match(/^has whitespace outside a value at position 14:/);
    expect(filterProblem('(cn=a(b))')).to.match(/^is not a valid LDAP filter: .*unescaped character: \(/);
    expect(filterProblem('(cn=a\\zz)')).to.match(/^is not a valid LDAP filter: /);
    expect(filterProblem('(cn=John Smith)')).to.equal(undefined);
    expect(filterProblem('(cn=*)')).to.equal(undefined);
  });

  it('an empty value is reported once, by the schema', () => {
    const all = problems(withUsersFilter(''));
    expect(all).to.deep.equal([{ key: 'source.users.filter', line: 6, message: 'must not be empty' }]);
  });
});

describe('config: warnings at load', () => {
  it('a clean config has no warnings', () => {
    expect(loadFile(BASE, 0o600).config.warnings).to.deep.equal([]);
    // ${VAR} secrets in a world-readable file are fine: the file does not hold them.
    expect(loadFile(BASE, 0o644).config.warnings).to.deep.equal([]);
  });

  it('warns about a literal bind password or API key in a file group or others can read, without printing it', () => {
    const literal = BASE.replace('${LDAP_PASSWORD}', 'literal-bind-pw').replace('${SCIM_TOKEN}', 'literal-api-key');
    const { file, config } = loadFile(literal, 0o644);
    expect(config.source.bindPassword).to.equal('literal-bind-pw');
    expect(config.warnings).to.have.length(2);
    const [pw, key] = config.warnings;
    expect(pw).to.match(/^source\.bindPassword \(line 5\) holds the bind password .*\(mode 644\).*chmod 600 .*\$\{VAR\}.*source\.bindPasswordFile/);
    expect(pw).to.include(file);
    expect(key).to.match(/^target\.token \(line 10\) holds the API key .*chmod 600 .*\$\{VAR\}.*target\.tokenFile/);
    for (const w of config.warnings) expect(w).not.to.include('literal-bind-pw').and.not.to.include('literal-api-key');

    expect(loadFile(literal, 0o640).config.warnings).to.have.length(2);
    expect(loadFile(literal, 0o600).config.warnings).to.deep.equal([]);
  });

  it('warns about plain http:// to the SCIM API on another host, not on the loopback', () => {
    const to = (url: string) => loadFile(BASE.replace('http://127.0.0.1:9440/scim/directory/sandbox', url), 0o600).config.warnings;
    expect(to('http://scim.corp.example/scim/directory/abc')).to.deep.equal([
      'target.url (line 9) is plain http:// to scim.corp.example: the API key would cross the network in clear text. Use https://.',
    ]);
    for (const url of ['https://scim.corp.example/scim', 'http://127.0.0.2:9440/scim', 'http://[::1]:9440/scim', 'http://localhost:9440/scim']) {
      expect(to(url), url).to.deep.equal([]);
    }
  });

  it('warns that source.tls.caFile is ignored on plain ldap:// without startTls', () => {
    const withCa = (tls: string) => BASE.replace('  users:', `  tls: { ${tls} }\n  users:`);
    expect(loadFile(withCa('caFile: ca.pem'), 0o600).config.warnings).to.deep.equal([
      'source.tls.caFile (line 6) is set, but source.url is plain ldap:// and source.tls.startTls is false: ' +
        'the connection is not encrypted and the CA file is ignored. Use ldaps:// or set source.tls.startTls: true.',
    ]);
    expect(loadFile(withCa('caFile: ca.pem, startTls: true'), 0o600).config.warnings).to.deep.equal([]);
    const ldaps = withCa('caFile: ca.pem').replace('ldap://127.0.0.1:3890', 'ldaps://127.0.0.1:6360');
    expect(loadFile(ldaps, 0o600).config.warnings).to.deep.equal([]);
  });
});
