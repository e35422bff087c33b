import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { SnapshotFile } from '../../src/state/snapshot-file.js';

type Data = { version: number; users: Record<string, unknown>; groups: Record<string, unknown>; updatedAt?: string };

const RECORDS = new Set(['users', 'groups']);

describe('snapshot file', () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'ldap-scim-snapfile-'));
    file = path.join(dir, 'snapshot.json');
  });

  it('writes exactly what JSON.stringify writes, across many chunks', async () => {
    const users: Record<string, unknown> = {};
    // Keys that look like numbers come first in JSON.stringify's order too; quotes, non-ASCII and an undefined
    // field must come out the same.
    for (let i = 0; i < 6000; i++) {
      users[i % 3 === 0 ? String(i) : `uid=${i}`] = { id: `id-${i}`, attrs: { displayName: `Zoë "${i}" \\ ${'x'.repeat(200)}`, title: undefined, active: i % 2 === 0 } };
    }
    const data: Data = { version: 1, users, groups: { g: { id: 'g1', displayName: 'G', members: Object.keys(users) } }, updatedAt: '2026-11-24T00:00:00.000Z' };
    await new SnapshotFile<Data>(file, RECORDS).write(data);
    const text = readFileSync(file, 'utf8');
    expect(text.length).to.be.greaterThan(1 << 20); // more than one chunk (CHUNK_CHARS)
    expect(text).to.equal(JSON.stringify(data));
    expect(await new SnapshotFile<Data>(file, RECORDS).read()).to.deep.equal(JSON.parse(JSON.stringify(data)));
  });

  it('writes a record larger than a chunk whole', async () => {
    const members = Array.from({ length: 300_000 }, (_, i) => `uid=${i}`);
    const data: Data = { version: 1, users: { a: { id: 'a' } }, groups: { big: { id: 'g', displayName: 'Big', members } } };
    await new SnapshotFile<Data>(file, RECORDS).write(data);
    const text = readFileSync(file, 'utf8');
    expect(text.length).to.be.greaterThan(3 << 20); // more than the first buffer (3 × CHUNK_CHARS)
    expect(text).to.equal(JSON.stringify(data));
  });

  it('writes empty record sets as {}', async () => {
    const data: Data = { version: 1, users: {}, groups: {} };
    await new SnapshotFile<Data>(file, RECORDS).write(data);
    expect(readFileSync(file, 'utf8')).to.equal('{"version":1,"users":{},"groups":{}}');
  });

  it('is readable by its owner only, even over a leftover temporary file of another mode', async () => {
    const temp = path.join(dir, '.snapshot.json.tmp');
    writeFileSync(temp, 'left over');
    chmodSync(temp, 0o644);
    await new SnapshotFile<Data>(file, RECORDS).write({ version: 1, users: {}, groups: {} });
    expect(statSync(file).mode & 0o777).to.equal(0o600);
    expect(existsSync(temp)).to.equal(false);
  });

  it('leaves the old file whole and no temporary file when a record cannot be written', async () => {
    await new SnapshotFile<Data>(file, RECORDS).write({ version: 1, users: { a: { id: 'a' } }, groups: {} });
    const before = readFileSync(file, 'utf8');
    const bad: Data = { version: 1, users: { a: { id: 'a' }, b: { id: 'b', n: 1n } }, groups: {} };
    let error: unknown;
    await new SnapshotFile<Data>(file, RECORDS).write(bad).catch((e: unknown) => (error = e));
    expect(error).to.be.instanceOf(TypeError);
    expect(readFileSync(file, 'utf8')).to.equal(before);
    expect(readdirSync(dir)).to.deep.equal(['snapshot.json']);
  });

  it('reads a missing file as null', async () => {
    expect(await new SnapshotFile<Data>(file, RECORDS).read()).to.equal(null);
  });
});
