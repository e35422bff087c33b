import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { AuditEntry } from '../../src/audit/audit-entry.js';
import { auditFileFor, auditFiles, AuditLog } from '../../src/audit/audit-log.js';
import { parseSince, readHistory, renderHistory } from '../../src/audit/history.js';

const settings = { rotateMb: 50, rotateDays: 30, keepDays: 400 };
type Written = Omit<AuditEntry, 'time' | 'cycle'>;
const user = (anchor: string, name: string, over: Partial<Written> = {}): Written => ({ op: 'updateUser', type: 'user', name, email: name, anchor, scimId: `id-${anchor}`, outcome: 'ok', ...over });

describe('audit trail', () => {
  let dir: string;
  let statePath: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'audit-'));
    statePath = path.join(dir, 'snapshot.json');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const write = (entries: Written[], cycle = '2026-12-01T00:00:00.000Z', over = settings) => {
    const audit = AuditLog.open(statePath, over, cycle, (m) => {
      throw new Error(m);
    });
    for (const e of entries) audit.record(e);
    audit.close();
    return audit;
  };

  it('writes whole JSON lines, owner-only, with the time and cycle first', () => {
    const audit = write([user('a', 'jane@x.test', { changes: [{ field: 'title', from: 'Dev', to: 'Lead' }] })]);
    expect(audit.written).to.equal(1);
    expect(statSync(auditFileFor(statePath)).mode & 0o777).to.equal(0o600);
    const line = readFileSync(auditFileFor(statePath), 'utf8');
    expect(line).to.match(/^\{"time":"[^"]+","cycle":"2026-12-01T00:00:00.000Z","op":"updateUser".*\}\n$/);
  });

  it('rotates at its size and at its age, keeps the rotated files in order, and deletes those past keepDays', () => {
    write(Array.from({ length: 30 }, (_, i) => user(`a${i}`, `p${i}@x.test`)), undefined, { ...settings, rotateMb: 0.001 });
    const rotated = auditFiles(statePath);
    expect(rotated.length).to.be.greaterThan(2);
    const lines = rotated.flatMap((f) => readFileSync(f, 'utf8').trim().split('\n').filter(Boolean)).map((l) => (JSON.parse(l) as AuditEntry).anchor);
    expect(lines).to.deep.equal(Array.from({ length: 30 }, (_, i) => `a${i}`)); // none lost, none repeated

    // A current file whose first line is older than rotateDays is rotated when the next cycle opens it.
    const old = path.join(dir, 'old.json');
    writeFileSync(auditFileFor(old), JSON.stringify({ time: '2026-10-01T00:00:00.000Z', cycle: 'c', ...user('z', 'z@x.test') }) + '\n');
    AuditLog.open(old, settings, 'c', () => undefined).close();
    expect(auditFiles(old)).to.have.length(1);
    expect(auditFiles(old)[0]).to.not.equal(auditFileFor(old));

    // Rotated files whose last write is older than keepDays go.
    const stale = auditFiles(old)[0]!;
    const longAgo = new Date(Date.now() - 401 * 86_400_000);
    utimesSync(stale, longAgo, longAgo);
    AuditLog.open(old, settings, 'c', () => undefined).close();
    expect(auditFiles(old)).to.not.include(stale);
  });

  it('says once that it cannot be written, and the cycle goes on', () => {
    const problems: string[] = [];
    const audit = AuditLog.open(path.join(dir, 'missing-folder', 'snapshot.json'), settings, 'c', (m) => problems.push(m));
    audit.record(user('a', 'a@x.test'));
    audit.record(user('b', 'b@x.test'));
    expect(problems).to.have.length(1);
    expect(problems[0]).to.match(/cannot be written \(ENOENT.*from here on are not in it/);
  });

  describe('history', () => {
    beforeEach(() =>
      write([
        user('old', 'jane@x.test', { op: 'createUser', changes: [{ field: 'title', to: 'Dev' }] }),
        { op: 'addMembers', type: 'group', name: 'confluence-users', anchor: 'g1', scimId: 'gid', added: [{ anchor: 'old', email: 'jane@x.test' }, { anchor: 'bob', email: 'bob@x.test' }], outcome: 'ok' },
        // Deleted and made again with the same email: the new entry took the account over (same SCIM id).
        user('new', 'jane@x.test', { scimId: 'id-old', note: 'took over the account of the deleted entry old' }),
        // An email change: same anchor, new name.
        user('new', 'jane.doe@x.test', { scimId: 'id-old', changes: [{ field: 'email', from: 'jane@x.test', to: 'jane.doe@x.test' }] }),
        { op: 'removeMembers', type: 'group', name: 'confluence-users', anchor: 'g1', scimId: 'gid', removed: [{ anchor: 'new', email: 'jane.doe@x.test' }, { anchor: 'bob', email: 'bob@x.test' }], outcome: 'ok' },
        user('new', 'jane.doe@x.test', { op: 'deactivateUser', scimId: 'id-old', changes: [{ field: 'active', from: true, to: false }], outcome: 'failed', status: 503, message: 'Service Unavailable' }),
        user('bob', 'bob@x.test'),
        // The group renamed: a new name, the same anchor.
        { op: 'createGroup', type: 'group', name: 'confluence-staff', anchor: 'g1', scimId: 'gid2', outcome: 'ok' },
      ]),
    );

    it('follows a person through a takeover and an email change, with only their own line of a membership change', async () => {
      const found = await readHistory(statePath, { user: { anchors: new Set(['new']), text: 'uid-not-recorded' } });
      expect(found.map((e) => `${e.op}:${e.anchor}`)).to.deep.equal(['createUser:old', 'addMembers:g1', 'updateUser:new', 'updateUser:new', 'removeMembers:g1', 'deactivateUser:new']);
      expect(found[1]!.added).to.deep.equal([{ anchor: 'old', email: 'jane@x.test' }]);
      expect(found[4]!.removed).to.deep.equal([{ anchor: 'new', email: 'jane.doe@x.test' }]);
      // Found by an email written, with no directory entry to ask (the person was deleted).
      const byMail = await readHistory(statePath, { user: { anchors: new Set(), text: 'JANE@x.test' } });
      expect(byMail.map((e) => e.op)).to.deep.equal(found.map((e) => e.op));
      const table = renderHistory(found, 'table');
      expect(table).to.match(/removeMembers +group confluence-users +removed jane\.doe@x\.test\n/);
      expect(table).to.match(/deactivateUser +jane\.doe@x\.test +FAILED \(503\): Service Unavailable; not done: active: true -> false\n/);
    });

    it('follows a group through a rename, and filters by time', async () => {
      const group = await readHistory(statePath, { group: 'CONFLUENCE-USERS' });
      expect(group.map((e) => e.op)).to.deep.equal(['addMembers', 'removeMembers', 'createGroup']);
      expect(await readHistory(statePath, { group: 'confluence-users', since: new Date(Date.now() + 60_000) })).to.deep.equal([]);
      const csv = renderHistory(group, 'csv').split('\n');
      expect(csv[0]).to.equal('time,operation,type,name,email,dn,anchor,scimId,outcome,status,details');
      expect(csv[1]).to.include('"added 2: jane@x.test, bob@x.test"');
    });

    it('reads --since as a date, an ISO time, or a span back from now, and refuses anything else', () => {
      const now = new Date('2026-12-05T12:00:00Z');
      expect(parseSince('2026-12-01', now)?.toISOString()).to.equal('2026-12-01T00:00:00.000Z');
      expect(parseSince('2026-12-01T08:30:00Z', now)?.toISOString()).to.equal('2026-12-01T08:30:00.000Z');
      expect(parseSince('7d', now)?.toISOString()).to.equal('2026-11-28T12:00:00.000Z');
      expect(parseSince('12h', now)?.toISOString()).to.equal('2026-12-05T00:00:00.000Z');
      for (const bad of ['last tuesday', '7 days', '2026-13-45', '']) expect(parseSince(bad, now), bad).to.equal(undefined);
    });
  });
});
