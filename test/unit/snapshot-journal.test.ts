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
    dry.replace({ version: 2, users: {}, groups: {} });
    expect(existsSync(journalFileFor(file)), 'a dry run leaves the journal').to.equal(true);
    await dry.save();
    dry.close();
    expect(existsSync(journalFileFor(file))).to.equal(false);
    expect((await Snapshot.open(file)).mayExist('user', 'x')).to.equal(false);
  });

  it('a large snapshot is left as it is at the end of a cycle until its journal holds a tenth as many lines', async () => {
    const users = Object.fromEntries(Array.from({ length: 12_000 }, (_, i) => [`u${i}`, { id: `id-${i}`, attrs: attrs(`u${i}`) }]));
    const s = await Snapshot.open(file);
    s.replace({ version: 2, users, groups: {} });
    await s.save();
    const written = readFileSync(file);
    s.setUser('u1', { id: 'id-1', attrs: { ...attrs('u1'), title: 'changed' } });
    expect(await s.saveAtCycleEnd(), 'one change of 12,000 records').to.equal(false);
    expect(readFileSync(file).equals(written), 'the file is untouched').to.equal(true);
    s.close();

    const next = await Snapshot.open(file);
    expect(next.data.users.u1!.attrs.title, 'the journal carries the change').to.equal('changed');
    expect(next.journalEntries).to.equal(1);
    expect(await next.saveAtCycleEnd(), 'a cycle that changed nothing').to.equal(false);
    for (let i = 2; i < 1200; i++) next.setUser(`u${i}`, { id: `id-${i}`, attrs: { ...attrs(`u${i}`), title: 'changed' } });
    expect(next.journalEntries).to.equal(1199);
    expect(await next.saveAtCycleEnd(), '1,199 lines for 12,000 records').to.equal(false);
    next.setUser('u1200', { id: 'id-1200', attrs: { ...attrs('u1200'), title: 'changed' } });
    expect(await next.saveAtCycleEnd(), '1,200 lines: a tenth').to.equal(true);
    expect(next.journalEntries).to.equal(0);
    next.close();
    expect(existsSync(journalFileFor(file)), 'the journal is folded in').to.equal(false);
    const folded = JSON.parse(readFileSync(file, 'utf8')) as { users: Record<string, { attrs: { title?: string } }> };
    expect(folded.users.u1!.attrs.title).to.equal('changed');
    expect(folded.users.u1200!.attrs.title).to.equal('changed');
  });

  it('a small snapshot is rewritten at the end of every cycle that changed it', async () => {
    const s = await Snapshot.open(file);
    s.setUser('a', { id: 'id-a', attrs: attrs('a') });
    expect(await s.saveAtCycleEnd(), 'no file yet').to.equal(true);
    expect(await s.saveAtCycleEnd(), 'nothing changed since').to.equal(false);
    s.setUser('a', { id: 'id-a', attrs: { ...attrs('a'), title: 'changed' } });
    expect(await s.saveAtCycleEnd()).to.equal(true);
    s.close();
    expect(existsSync(journalFileFor(file))).to.equal(false);
    expect((JSON.parse(readFileSync(file, 'utf8')) as { users: Record<string, { attrs: { title?: string } }> }).users.a!.attrs.title).to.equal('changed');
  });

  it('replays deletions (a user purged from every group) in order with the membership changes around them', async () => {
    const s = await Snapshot.open(file);
    s.setGroup('g', { id: 'gid', displayName: 'eng', members: ['a', 'b', 'c'] });
    s.setGroup('h', { id: 'hid', displayName: 'ops', members: ['a', 'c'] });
    await s.save();
    s.setUser('a', undefined);
    s.purgeMember('a');
    s.setUser('c', undefined);
    s.purgeMember('c');
    s.changeGroupMembers('h', 'add', ['a']); // a came back and was added again, after the purge
    s.close();
    const again = await Snapshot.open(file);
    expect(again.data.groups.g!.members).to.deep.equal(['b']);
    expect(again.data.groups.h!.members).to.deep.equal(['a']);
  });
});
