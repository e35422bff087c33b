import { appendFileSync, existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { journalFileFor } from '../../src/state/journal.js';
import { Snapshot } from '../../src/state/snapshot.js';

const attrs = (n: string) => ({ userName: `${n}@x.test`, email: `${n}@x.test`, active: true });

// What a kill -9 leaves behind: confirmed calls in the journal, creates announced but unanswered.
describe('snapshot journal', () => {
  let file: string;
  beforeEach(() => {
    file = path.join(mkdtempSync(path.join(tmpdir(), 'ldap-scim-journal-')), 'snapshot.json');
  });

  it('replays confirmed changes made after the last save, and remembers unanswered creates', async () => {
    const first = await Snapshot.open(file);
    first.setUser('a', { id: 'id-a', attrs: attrs('a') });
    await first.save();
    first.announceCreate('user', 'b');
    first.setUser('b', { id: 'id-b', attrs: attrs('b') });
    first.settleCreate('user', 'b');
    first.announceCreate('user', 'c'); // the process dies here, the POST for c unanswered
    first.setGroup('g', { id: 'gid', displayName: 'eng', members: ['a'] });
    first.changeGroupMembers('g', 'add', ['b']);
    // No save, no close: as if killed.

    const again = await Snapshot.open(file);
    expect(Object.keys(again.data.users).sort()).to.deep.equal(['a', 'b']);
    expect(again.data.groups.g!.members).to.deep.equal(['a', 'b']);
    expect(again.mayExist('user', 'c')).to.equal(true);
    expect(again.mayExist('user', 'b')).to.equal(false);
  });

  it('a save folds the journal into the snapshot and keeps only the creates still in flight', async () => {
    const s = await Snapshot.open(file);
    s.setUser('a', { id: 'id-a', attrs: attrs('a') });
    s.announceCreate('group', 'g');
    await s.save();
    s.close();
    const lines = readFileSync(journalFileFor(file), 'utf8').trim().split('\n');
    expect(lines).to.deep.equal([JSON.stringify({ intent: 'group', a: 'g' })]);
    const again = await Snapshot.open(file);
    expect(again.data.users.a!.id).to.equal('id-a');
    expect(again.mayExist('group', 'g')).to.equal(true);
  });

  it('ignores a last line cut short by the kill, and replaying twice changes nothing', async () => {
    const s = await Snapshot.open(file);
    await s.save(); // the cycle saves once before its first call, so a snapshot file is always there to replay onto
    s.setUser('a', { id: 'id-a', attrs: attrs('a') });
    s.setGroup('g', { id: 'gid', displayName: 'eng', members: [] });
    s.changeGroupMembers('g', 'add', ['a']);
    s.close();
    appendFileSync(journalFileFor(file), '{"u":"b","r":{"id":"id-');
    const once = await Snapshot.open(file);
    expect(Object.keys(once.data.users)).to.deep.equal(['a']);
    const twice = await Snapshot.open(file);
    expect(twice.data).to.deep.equal(once.data);
    expect(twice.data.groups.g!.members).to.deep.equal(['a']);
  });

  it('a rebuild from the SCIM side drops the journal at its first write, and a dry run touches no file', async () => {
    const s = await Snapshot.open(file);
    s.announceCreate('user', 'x');
    s.close();
    const dry = await Snapshot.open(file);
    dry.replace({ version: 1, users: {}, groups: {} });
    expect(existsSync(journalFileFor(file)), 'a dry run leaves the journal').to.equal(true);
    await dry.save();
    dry.close();
    expect(existsSync(journalFileFor(file))).to.equal(false);
    expect((await Snapshot.open(file)).mayExist('user', 'x')).to.equal(false);
  });
});
