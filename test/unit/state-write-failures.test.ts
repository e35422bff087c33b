import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { Journal, journalFileFor, replayJournal } from '../../src/state/journal.js';
import { emptySnapshot, Snapshot, StateError } from '../../src/state/snapshot.js';
import { SnapshotFile } from '../../src/state/snapshot-file.js';

const CHILD = fileURLToPath(new URL('../support/state-writer-child.ts', import.meta.url));
const LIMIT = 8192;

/** A real ENOSPC: /dev/full takes nothing. */
function diskFullError(): NodeJS.ErrnoException {
  try {
    writeFileSync('/dev/full', 'x');
  } catch (e) {
    return e as NodeJS.ErrnoException;
  }
  throw new Error('a write to /dev/full succeeded');
}

/** Runs the child, lowers its file size limit to LIMIT once it is ready, and returns what it reports. */
function runLimited(mode: 'journal' | 'snapshot', file: string): Promise<{ appended: number; error: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, mode, file], { env: { ...process.env, LDAP_SCIM_LOG_LEVEL: 'error' }, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out === 'ready\n') {
        execFileSync('prlimit', ['--pid', String(child.pid), `--fsize=${LIMIT}:${LIMIT}`]);
        child.stdin.end('go\n');
      }
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`the child exited with ${code}: ${err}`));
      resolve(JSON.parse(out.slice('ready\n'.length)) as { appended: number; error: string });
    });
  });
}

// A disk that fills up under the state files: what the admin reads, and that what it says is kept is kept.
describe('state files on a disk that fills up', function () {
  this.timeout(30_000);
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'ldap-scim-full-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('a snapshot that cannot be saved for lack of space says so, and where the confirmed calls are kept', () => {
    const file = path.join(dir, 'state.json');
    const error = diskFullError();
    expect(error.code).to.equal('ENOSPC');
    expect(SnapshotFile.writeFailure(file, journalFileFor(file), error, true)).to.equal(
      `state.path ${file}: the disk holding ${file} is full (ENOSPC): free space there; the calls already confirmed are kept in ${file}.journal (and ${file}.journal.saving) and the next run goes on from them`,
    );
    expect(SnapshotFile.writeFailure(file, journalFileFor(file), error, false)).to.equal(
      `state.path ${file}: the disk holding ${file} is full (ENOSPC): free space there; there is no state file yet, so the next run lists the SCIM side again and links what this run created`,
    );
  });

  it('a journal line that cannot be written for lack of space fails with what it means, before a create and after a call', () => {
    const journal = new Journal('/dev/full');
    const before = () => journal.append({ intent: 'user', a: 'uid=ann' });
    expect(before).to.throw(StateError, "state.path /dev/full: a create of user uid=ann was not sent, since it could not first be recorded in /dev/full: the disk holding /dev/full is full (ENOSPC): free space there; a later cycle sends it");
    const after = () => journal.append({ u: 'uid=ann', r: null });
    expect(after).to.throw(StateError, 'a change the SCIM side confirmed could not be recorded in /dev/full: the disk holding /dev/full is full (ENOSPC): free space there; unless a later save');
    expect(journal.entries).to.equal(0);
    journal.close();
  });

  it('a journal line the disk takes only part of is cut off again, so that lines appended later are replayed', async () => {
    const file = path.join(dir, 'state.json.journal');
    const { appended, error } = await runLimited('journal', file);
    expect(error).to.contain(`${file} reached the largest file this process may write (EFBIG)`);
    expect(appended).to.be.greaterThan(10);
    const size = statSync(file).size;
    // Lines do not end at the limit exactly: the last one was torn, and then cut off.
    expect(size).to.be.lessThan(LIMIT);
    const text = readFileSync(file, 'utf8');
    expect(text.endsWith('\n')).to.equal(true);
    expect(text.split('\n').filter(Boolean)).to.have.length(appended);

    // Space again: a line appended now is replayed with all the others, not glued to a torn one.
    const journal = new Journal(file, appended);
    journal.append({ u: 'after', r: { id: 'id-after', attrs: { userName: 'after@x.test', email: 'after@x.test', active: true } } });
    journal.close();
    const data = emptySnapshot();
    expect(replayJournal(file, data).entries).to.equal(appended + 1);
    expect(data.users.after?.id).to.equal('id-after');
  });

  it('a save that fails mid-write keeps the old file and the journal, and the next run has every confirmed call', async () => {
    const file = path.join(dir, 'state.json');
    const { error } = await runLimited('snapshot', file);
    expect(error).to.equal(
      `state.path ${file}: ${file} reached the largest file this process may write (EFBIG): raise the file size limit of the service (ulimit -f, LimitFSIZE); the calls already confirmed are kept in ${file}.journal (and ${file}.journal.saving) and the next run goes on from them`,
    );
    const next = await Snapshot.open(file);
    expect(Object.keys(next.data.users)).to.have.length(101);
    expect(next.data.users['user-100']?.id).to.equal('id-100');
    next.close();
  });
});
