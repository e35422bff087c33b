import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { sampleDirectoryLdif } from '../../src/demo/sample-directory.js';
import { startThrowawaySlapd, type ThrowawaySlapd } from '../../src/demo/throwaway-slapd.js';
import { startScim, writeConfig, type ScimUnderTest } from '../support/sync-env.js';
import { assertCliBuilt, cli } from '../support/cli-run.js';

const SUFFIX = 'dc=example,dc=test';
// The commands as an admin runs them: the built dist/cli.js (npm test builds first), real slapd, the sandbox.
describe('ldap-scim command line', function () {
  this.timeout(60_000);
  let slapd: ThrowawaySlapd;
  let scim: ScimUnderTest;
  let config: ReturnType<typeof writeConfig>;

  before(async function () {
    assertCliBuilt();
    slapd = await startThrowawaySlapd({ suffix: SUFFIX, ldif: sampleDirectoryLdif({ suffix: SUFFIX, users: 30 }).ldif });
    scim = await startScim('sandbox');
    config = writeConfig({ ldapUrl: slapd.url, suffix: SUFFIX, bindDn: slapd.rootDn, bindPassword: slapd.rootPassword, scimUrl: scim.url, token: scim.token });
  });
  after(async () => {
    await scim?.stop();
    await slapd?.stop();
  });

  it('check binds, counts the scope, tries the key with a read, and writes nothing', async () => {
    const run = await cli(['check', '--config', config.file]);
    expect(run.code, run.stdout + run.stderr).to.equal(0);
    expect(run.stdout).to.match(/^ok +directory .*30 user entries.*27 users and 4 groups would be synced, 4 entries skipped/m);
    expect(run.stdout).to.match(/^ok +scim .*accepted the API key \(sha256:[0-9a-f]{12}\); it holds 0 users/m);
    expect(run.stdout).to.match(/^ok +state .*does not exist yet/m);
    expect(scim.sandbox!.writeCount()).to.equal(0);
    expect(existsSync(path.join(config.dir, 'state', 'snapshot.json'))).to.equal(false);
  });

  it('check with a rejected key exits 3 and shows the fingerprint, never the key', async () => {
    const other = writeConfig({ ldapUrl: slapd.url, suffix: SUFFIX, bindDn: slapd.rootDn, bindPassword: slapd.rootPassword, scimUrl: scim.url, token: 'revoked-key-0123456789' });
    const run = await cli(['check', '--config', other.file]);
    expect(run.code).to.equal(3);
    expect(run.stdout).to.match(/^FAIL scim .*rejected/m);
    expect(run.stdout + run.stderr).to.not.include('revoked-key-0123456789');
    expect(run.stdout + run.stderr).to.not.include(slapd.rootPassword);
  });

  it('check with a URL that is not a SCIM endpoint says to look at target.url', async () => {
    const other = writeConfig({ ldapUrl: slapd.url, suffix: SUFFIX, bindDn: slapd.rootDn, bindPassword: slapd.rootPassword, scimUrl: scim.url.replace(/\/scim\/.*$/, '/nothing-here'), token: scim.token });
    const run = await cli(['check', '--config', other.file]);
    expect(run.code).to.equal(1);
    expect(run.stdout).to.match(/^FAIL scim .*answered 404.*is target\.url the SCIM base URL/m);
  });

  it('plan --format csv --out writes the review file, then sync applies it and a second sync writes nothing', async () => {
    const csv = path.join(config.dir, 'plan.csv');
    const plan = await cli(['plan', '--config', config.file, '--format', 'csv', '--out', csv]);
    expect(plan.code, plan.stderr).to.equal(0);
    const rows = readFileSync(csv, 'utf8').trim().split('\n');
    expect(rows[0]).to.equal('action,type,name,member,anchor,dn,details');
    expect(rows.filter((r) => r.startsWith('createUser,'))).to.have.length(27);
    expect(scim.sandbox!.writeCount()).to.equal(0);

    const dry = await cli(['sync', '--config', config.file, '--dry-run', '--json']);
    expect(dry.code, dry.stderr).to.equal(0);
    const dryReport = JSON.parse(dry.stdout) as { result: string; plan: { operations: { kind: string }[] } };
    expect(dryReport.result).to.equal('dry-run');
    expect(dryReport.plan.operations.filter((op) => op.kind === 'createUser')).to.have.length(27);
    expect(scim.sandbox!.writeCount()).to.equal(0);
    const dryText = await cli(['sync', '--config', config.file, '--dry-run']);
    expect(dryText.stdout).to.match(/users created +planned +27$/m);
    expect(dryText.stdout).to.match(/linked from the SCIM side for this plan only \(nothing saved\)/);

    const first = await cli(['sync', '--config', config.file, '--json']);
    expect(first.code, first.stderr).to.equal(0);
    const report = JSON.parse(first.stdout) as { done: Record<string, number>; calls: { writes: number } };
    expect(report.done.createUser).to.equal(27);
    expect(scim.sandbox!.writeCount()).to.equal(report.calls.writes);

    scim.sandbox!.resetRequests();
    const second = await cli(['sync', '--config', config.file]);
    expect(second.code).to.equal(0);
    expect(second.stdout).to.match(/SCIM calls: \d+ \(0 writes\)/);
    expect(scim.sandbox!.writeCount()).to.equal(0);
  });

  it('warns when a mapped attribute that no entry has would clear a field for everyone (a typo)', async () => {
    const typo = path.join(config.dir, 'typo.yaml');
    writeFileSync(typo, readFileSync(config.file, 'utf8') + 'mapping:\n  user:\n    title: titel\n');
    const run = await cli(['sync', '--config', typo, '--dry-run']);
    expect(run.code, run.stderr).to.equal(0);
    expect(run.stdout).to.match(/warning: mapping\.user\.title reads titel, which no user entry in scope has, and this plan clears title for \d+ users/);
    expect(scim.sandbox!.writeCount()).to.equal(0);
  });

  it('explain walks one user from entry to planned operation, and says why a skipped or departed user is left', async () => {
    await slapd.modify(
      `dn: uid=u0010,ou=people,${SUFFIX}\nchangetype: modify\nreplace: title\ntitle: Explained Title\n\n` +
        `dn: uid=u0011,ou=people,${SUFFIX}\nchangetype: delete\n`,
    );
    const changed = await cli(['explain', '--config', config.file, '--user', 'u0010']);
    expect(changed.code, changed.stderr).to.equal(0);
    expect(changed.stdout).to.include(`directory entry: uid=u0010,ou=people,${SUFFIX}`);
    expect(changed.stdout).to.match(/in scope: yes/);
    expect(changed.stdout).to.match(/^ {4}title: Explained Title$/m);
    expect(changed.stdout).to.match(/last pushed .*: SCIM id \S+/);
    expect(changed.stdout).to.match(/updateUser: title "[^"]+" -> "Explained Title"/);

    const noMail = await cli(['explain', '--config', config.file, '--user', `uid=u0003,ou=people,${SUFFIX}`]);
    expect(noMail.code).to.equal(0);
    expect(noMail.stdout).to.match(/mapped for SCIM: skipped: no email/);
    expect(noMail.stdout).to.match(/planned: nothing \(the entry is skipped, so no account is created\)/);

    // Gone from the directory: found by the userName that was pushed for it.
    const report = JSON.parse((await cli(['plan', '--config', config.file, '--format', 'json'])).stdout) as { operations: { kind: string; userName?: string }[] };
    const leaver = report.operations.find((op) => op.kind === 'deactivateUser')?.userName;
    expect(leaver, 'the deleted user is planned for deactivation').to.be.a('string');
    const gone = await cli(['explain', '--config', config.file, '--user', leaver!]);
    expect(gone.code).to.equal(0);
    expect(gone.stdout).to.match(/directory: no entry found/);
    expect(gone.stdout).to.match(/deactivateUser: active true -> false \(the user left the directory scope\)/);

    const nobody = await cli(['explain', '--config', config.file, '--user', 'nobody-here']);
    expect(nobody.code).to.equal(1);
    expect(nobody.stdout).to.match(/no user entry with this DN or name/);
    expect(scim.sandbox!.writeCount()).to.equal(0);
  });

  it('a state.path that cannot be written stops sync before any SCIM call, and check says so', async () => {
    const bad = path.join(config.dir, 'unwritable-state.yaml');
    writeFileSync(bad, readFileSync(config.file, 'utf8').replace('path: state/snapshot.json', 'path: config.yaml/snapshot.json'));
    scim.sandbox!.resetRequests();
    const sync = await cli(['sync', '--config', bad]);
    expect(sync.code).to.equal(1);
    expect(sync.stdout).to.match(/error: state\.path .*config\.yaml\/snapshot\.json: .*config\.yaml is not a folder/);
    expect(sync.stderr).to.not.match(/unexpected error|at .*\.js:\d+/);
    expect(scim.sandbox!.requests).to.have.length(0);
    const check = await cli(['check', '--config', bad]);
    expect(check.code).to.equal(1);
    expect(check.stdout).to.match(/^FAIL state +state\.path .* is not a folder/m);
  });

  it('the snapshot file is readable by its owner only (it lists the whole organization)', () => {
    const mode = statSync(path.join(config.dir, 'state', 'snapshot.json')).mode & 0o777;
    expect(mode.toString(8)).to.equal('600');
  });

  it('a bad config exits 2 and names the key path and the line', async () => {
    const text = readFileSync(config.file, 'utf8').replace('requestsPerSecond: 200', 'requestsPerSecond: -3');
    const bad = path.join(config.dir, 'bad.yaml');
    writeFileSync(bad, text);
    const line = text.split('\n').findIndex((l) => l.includes('requestsPerSecond: -3')) + 1;
    const run = await cli(['sync', '--config', bad]);
    expect(run.code).to.equal(2);
    expect(run.stderr).to.include(`target.rateLimit.requestsPerSecond (line ${line}): must be a positive number`);
  });

  it('a filter with its closing ) missing is exit 2 naming the key and the line, before any SCIM call', async () => {
    const text = readFileSync(config.file, 'utf8').replace(
      'users: { baseDn: "ou=people,dc=example,dc=test" }',
      'users: { baseDn: "ou=people,dc=example,dc=test", filter: "(&(objectClass=inetOrgPerson)(!(title=Manager)" }',
    );
    expect(text).to.include('(!(title=Manager)"');
    const bad = path.join(config.dir, 'bad-filter.yaml');
    writeFileSync(bad, text);
    const line = text.split('\n').findIndex((l) => l.includes('title=Manager')) + 1;
    scim.sandbox!.resetRequests();
    for (const command of ['sync', 'plan', 'check']) {
      const run = await cli([command, '--config', bad]);
      expect(run.code, command).to.equal(2);
      expect(run.stderr).to.include(`source.users.filter (line ${line}): has 2 more ( than ): 2 ) are missing`);
    }
    expect(scim.sandbox!.requests.length).to.equal(0);
  });

  it('an unknown command or option is a usage error (exit 2)', async () => {
    expect((await cli(['synk'])).code).to.equal(2);
    expect((await cli(['sync', '--config', config.file, '--dryrun'])).code).to.equal(2);
  });
});
