import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { ConfigError, parseConfig } from '../../src/config/load.js';

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
  rateLimit:
    concurrency: 2
    requestsPerSecond: 5
state: { path: ./state.json }
`;
const env = { LDAP_PASSWORD: 'bind-secret-1', SCIM_TOKEN: 'scim-secret-1' };

function problems(text: string, e: NodeJS.ProcessEnv = env) {
  try {
    parseConfig(text, '/etc/ldap-scim/config.yaml', e);
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

describe('config', () => {
  it('the shipped example config/openldap.yaml is valid and states the documented defaults', () => {
    const example = fileURLToPath(new URL('../../config/openldap.yaml', import.meta.url));
    const c = parseConfig(readFileSync(example, 'utf8'), example, env);
    expect(c.safety).to.deep.equal({ maxDeactivations: 500, maxDeactivationPercent: 10, maxGroupDeletions: 50, maxShrinkPercent: 20, windowMinutes: 60 });
    expect(c.limits).to.deep.equal({ maxUsers: 1_000_000, maxGroupMembers: 290_000 });
    expect(c.target.rateLimit).to.deep.equal({ requestsPerSecond: 10, concurrency: 4 });
    expect(c.source.tls.rejectUnauthorized).to.equal(true);
  });

  it('schedules full reads every 15 minutes without polls, and hourly (the safety net) with them, unless told', () => {
    expect(parseConfig(BASE, '/etc/ldap-scim/config.yaml', env).schedule).to.equal('*/15 * * * *');
    const polling = BASE.replace(/^source:\n/m, 'source:\n  delta: { enabled: true }\n');
    expect(parseConfig(polling, '/etc/ldap-scim/config.yaml', env).schedule).to.equal('7 * * * *');
    expect(parseConfig(polling.replace(/enabled: true/, 'enabled: true, pollSeconds: 0'), '/etc/ldap-scim/config.yaml', env).schedule).to.equal('*/15 * * * *');
    expect(parseConfig(polling + 'schedule: "*/5 * * * *"\n', '/etc/ldap-scim/config.yaml', env).schedule).to.equal('*/5 * * * *');
  });

  it('loads a valid file with env substitution, defaults and paths relative to the file', () => {
    const c = parseConfig(BASE, '/etc/ldap-scim/config.yaml', env);
    expect(c.source.bindPassword).to.equal('bind-secret-1');
    expect(c.target.token).to.equal('scim-secret-1');
    expect(c.target.rateLimit).to.deep.equal({ requestsPerSecond: 5, concurrency: 2 });
    expect(c.source.pageSize).to.equal(500);
    expect(c.source.tls.rejectUnauthorized).to.equal(true);
    expect(c.source.usersFilter).to.equal('(objectClass=inetOrgPerson)');
    expect(c.state.path).to.equal('/etc/ldap-scim/state.json');
    expect(c.target.membersPerPatch).to.equal(100);
    expect(c.mapping.userAttributes).to.include.members(['mail', 'givenname', 'sn', 'displayname', 'cn', 'departmentnumber']);
  });

  it('names the allowed values of source.kind', () => {
    const [p] = problems(BASE.replace('kind: openldap', 'kind: ldap'));
    expect(p).to.deep.include({ key: 'source.kind', line: 2, message: 'must be openldap or activedirectory' });
  });

  it('the shipped config/active-directory.yaml is valid and reads the AD attributes', () => {
    const example = fileURLToPath(new URL('../../config/active-directory.yaml', import.meta.url));
    const c = parseConfig(readFileSync(example, 'utf8'), example, env);
    expect(c.source.kind).to.equal('activedirectory');
    expect(c.source.usersFilter).to.equal('(&(objectCategory=person)(objectClass=user))');
    expect(c.mapping.userAttributes).to.include.members(['mail', 'department', 'company']);
  });

  it('gives Active Directory its own defaults', () => {
    const c = parseConfig(BASE.replace('kind: openldap', 'kind: activedirectory'), '/etc/ldap-scim/config.yaml', env);
    expect(c.source.usersFilter).to.equal('(&(objectCategory=person)(objectClass=user))');
    expect(c.source.groupsFilter).to.equal('(objectClass=group)');
    expect(c.mapping.userAttributes).to.include.members(['mail', 'department', 'company']);
    expect(c.source.treatExpiredAccountsAsDisabled).to.equal(false);
  });

  it('says a required key is missing rather than that its value has the wrong type', () => {
    const all = problems(BASE.replace('baseDn: "ou=people', 'basedn: "ou=people'));
    expect(all.map((p) => `${p.key}: ${p.message}`)).to.include('source.users.baseDn: is required but missing');
    expect(all.some((p) => p.key === 'source.users.basedn' && /unknown key/.test(p.message))).to.equal(true);
  });

  it('names the key path and line of a bad value', () => {
    const bad = BASE.replace('requestsPerSecond: 5', 'requestsPerSecond: -3');
    const [p] = problems(bad);
    expect(p).to.deep.include({ key: 'target.rateLimit.requestsPerSecond', line: 13, message: 'must be a positive number' });
  });

  it('reports an unknown key (a typo) with its line', () => {
    const p = problems(BASE.replace('  bindDn:', '  bindDN:')).find((x) => /unknown key/.test(x.message));
    expect(p!.key).to.equal('source.bindDN');
    expect(p!.line).to.equal(4);
    expect(p!.message).to.match(/unknown key/);
  });

  it('reports a missing environment variable at the key that uses it', () => {
    const [p] = problems(BASE, { LDAP_PASSWORD: 'x-password' });
    expect(p).to.deep.include({ key: 'target.token', line: 10, message: 'environment variable SCIM_TOKEN is not set' });
  });

  it('reports invalid YAML with a line', () => {
    const [p] = problems(BASE + 'schedule: [unclosed\n');
    expect(p!.message).to.match(/not valid YAML/);
    expect(p!.line).to.be.within(15, 16); // the parser notices the unclosed bracket at the end
  });

  it('requires exactly one of token and tokenFile', () => {
    const both = BASE.replace('  token: ${SCIM_TOKEN}', '  token: ${SCIM_TOKEN}\n  tokenFile: /run/secrets/scim');
    expect(problems(both)[0]!.message).to.match(/exactly one of token or tokenFile/);
  });

  it('reads secrets from *File keys relative to the config file', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ldap-scim-config-'));
    writeFileSync(path.join(dir, 'ldap.pw'), 'from-file-pw\n');
    writeFileSync(path.join(dir, 'scim.key'), 'from-file-key');
    const text = BASE.replace('bindPassword: ${LDAP_PASSWORD}', 'bindPasswordFile: ldap.pw').replace('token: ${SCIM_TOKEN}', 'tokenFile: scim.key');
    const c = parseConfig(text, path.join(dir, 'config.yaml'), {});
    expect(c.source.bindPassword).to.equal('from-file-pw');
    expect(c.target.token).to.equal('from-file-key');
    expect(c.target.tokenFile).to.equal(path.join(dir, 'scim.key'));
  });

  it('names the secret file that cannot be read, not its content', () => {
    const text = BASE.replace('bindPassword: ${LDAP_PASSWORD}', 'bindPasswordFile: /nonexistent/pw');
    const [p] = problems(text);
    expect(p!.key).to.equal('source.bindPasswordFile');
    expect(p!.message).to.match(/cannot read the secret file \/nonexistent\/pw: ENOENT/);
  });

  it('rejects a mapping template that is not well formed, at its key', () => {
    const text = BASE + 'mapping:\n  user:\n    displayName: "{givenName} {sn"\n';
    const [p] = problems(text);
    expect(p!.key).to.equal('mapping.user.displayName');
    expect(p!.line).to.equal(17);
    expect(p!.message).to.match(/unbalanced braces/);
  });

  it('refuses to switch off a required mapping field', () => {
    const [p] = problems(BASE + 'mapping:\n  user:\n    email: null\n');
    expect(p!.key).to.equal('mapping.user.email');
    expect(p!.message).to.match(/required/);
  });
});
