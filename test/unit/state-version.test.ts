import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { Snapshot, STATE_VERSION, StateError, targetIdentity } from '../../src/state/snapshot.js';
import { version } from '../../src/version.js';

// A state file written by ldap-scim 0.1.0 before state versions had a target (the demo's snapshot, as it wrote it).
const V1_FIXTURE = fileURLToPath(new URL('../fixtures/state-v1/snapshot.json', import.meta.url));
const attrs = (n: string) => ({ userName: `${n}@x.test`, email: `${n}@x.test`, active: true });

describe('state file versions and the SCIM directory they belong to', () => {
  let file: string;
  beforeEach(() => {
    file = path.join(mkdtempSync(path.join(tmpdir(), 'ldap-scim-state-')), 'snapshot.json');
  });

  it('migrates a version 1 file in place: every record kept, the target in use recorded, rewritten as the current version', async () => {
    copyFileSync(V1_FIXTURE, file);
    const before = JSON.parse(readFileSync(V1_FIXTURE, 'utf8')) as { users: object; groups: object };
    const s = await Snapshot.open(file);
    expect(s.data.version).to.equal(STATE_VERSION);
    expect(s.data.users).to.deep.equal(before.users);
    expect(s.data.groups).to.deep.equal(before.groups);
    expect(s.targetProblem('http://127.0.0.1:9440/scim/directory/a')).to.equal(undefined);
    s.adoptTarget('http://127.0.0.1:9440/scim/directory/a');
    // Large or small, a migrated file is rewritten at the end of the cycle, not left to the journal.
    expect(await s.saveAtCycleEnd()).to.equal(true);
    s.close();
    const written = JSON.parse(readFileSync(file, 'utf8')) as { version: number; writtenBy: string; target: { url: string }; users: object };
    expect(written.version).to.equal(STATE_VERSION);
    expect(written.writtenBy).to.equal(version);
    expect(written.target.url).to.equal('http://127.0.0.1:9440/scim/directory/a');
    expect(written.users).to.deep.equal(before.users);
  });

  it('refuses a file written by a newer version, naming the version that wrote it', async () => {
    writeFileSync(file, JSON.stringify({ version: STATE_VERSION + 1, writtenBy: '9.4.0', users: {}, groups: {} }));
    const opened = await Snapshot.open(file).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(opened).to.be.instanceOf(StateError);
    expect((opened as Error).message).to.include(`written by ldap-scim 9.4.0 (state version ${STATE_VERSION + 1})`);
    expect((opened as Error).message).to.include(`this is ldap-scim ${version}`);
  });

  it('refuses a JSON file that is no snapshot at all, saying how to start over', async () => {
    writeFileSync(file, JSON.stringify({ hello: 'world' }));
    const opened = await Snapshot.open(file).catch((e: unknown) => e);
    expect((opened as Error).message).to.match(/is not an ldap-scim snapshot: move it away and run sync --rebuild-state/);
  });

  it('belongs to one SCIM directory: another target.url is a stop that names both and the way out', async () => {
    const s = await Snapshot.open(file);
    s.adoptTarget('https://api.atlassian.example/scim/directory/one/');
    s.setUser('a', { id: 'id-a', attrs: attrs('a') });
    await s.save();
    s.close();
    const again = await Snapshot.open(file);
    // The same directory written slightly differently is the same directory.
    expect(again.targetProblem('https://API.atlassian.example/scim/directory/one')).to.equal(undefined);
    expect(again.targetProblem('http://api.atlassian.example/scim/directory/one')).to.equal(undefined);
    const problem = again.targetProblem('https://api.atlassian.example/scim/directory/two');
    expect(problem).to.include('belongs to the SCIM directory https://api.atlassian.example/scim/directory/one/');
    expect(problem).to.include('target.url is now https://api.atlassian.example/scim/directory/two');
    expect(problem).to.match(/its own state\.path.*sync --rebuild-state/);
    expect(targetIdentity('http://127.0.0.1:8080/scim/')).to.not.equal(targetIdentity('http://127.0.0.1:8081/scim/'));
  });

  it('replays a takeover: the new anchor holds the record and every membership of the old one', async () => {
    const s = await Snapshot.open(file);
    s.setUser('old', { id: 'id-1', attrs: attrs('jane') });
    s.setGroup('g', { id: 'gid', displayName: 'eng', members: ['old', 'b'] });
    s.setGroup('h', { id: 'hid', displayName: 'ops', members: ['new', 'old'] });
    await s.save();
    s.moveUser('old', 'new', { id: 'id-1', attrs: attrs('jane') });
    // Killed before any save: the journal alone must carry the move.
    const again = await Snapshot.open(file);
    expect(Object.keys(again.data.users)).to.deep.equal(['new']);
    expect(again.data.groups.g!.members).to.deep.equal(['new', 'b']);
    expect(again.data.groups.h!.members).to.deep.equal(['new']);
  });
});
