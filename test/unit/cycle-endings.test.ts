import { expect } from 'chai';
import { DirectoryError } from '../../src/directory/connection.js';
import { KeyRejectedError } from '../../src/scim/errors.js';
import { StateError } from '../../src/state/snapshot.js';
import { endOf, EXIT } from '../../src/sync/cycle-ending.js';

// The one place that turns how a cycle ended into the report's result and the exit code admins' scripts read.
describe('how a cycle ends', () => {
  const of = (e: Parameters<typeof endOf>[0]) => {
    const { result, exitCode } = endOf(e);
    return `${result} ${exitCode}`;
  };

  it('maps every ending to its result and the documented exit code', () => {
    expect(of({ kind: 'done', failures: 0 })).to.equal(`success ${EXIT.ok}`);
    expect(of({ kind: 'done', failures: 2 })).to.equal(`completed-with-failures ${EXIT.failed}`);
    expect(of({ kind: 'stopped', reason: 'another directory' })).to.equal(`guard-stopped ${EXIT.guard}`);
    expect(of({ kind: 'held', reasons: ['too many'] })).to.equal(`guard-stopped ${EXIT.guard}`);
    expect(of({ kind: 'dry-run', held: false })).to.equal(`dry-run ${EXIT.ok}`);
    expect(of({ kind: 'dry-run', held: true })).to.equal(`dry-run ${EXIT.guard}`);
    expect(of({ kind: 'interrupted', partway: true })).to.equal(`interrupted ${EXIT.failed}`);
    expect(of({ kind: 'person-not-found', message: 'x' })).to.equal(`failed ${EXIT.failed}`);
    expect(of({ kind: 'error', error: new KeyRejectedError('Users', 'GET', 401, 'rejected', 'sha256:abc') })).to.equal(`key-rejected ${EXIT.keyRejected}`);
    expect(of({ kind: 'error', error: new DirectoryError('down') })).to.equal(`directory-failed ${EXIT.failed}`);
    expect(of({ kind: 'error', error: new StateError('read-only') })).to.equal(`failed ${EXIT.failed}`);
    expect(of({ kind: 'error', error: new Error('bug') })).to.equal(`failed ${EXIT.failed}`);
  });

  it('says why in the report, and logs each guard that holds', () => {
    expect(endOf({ kind: 'held', reasons: ['a', 'b'] })).to.deep.include({ error: 'stopped by a safety guard before any write: a; b', log: ['safety guard: a', 'safety guard: b'] });
    expect(endOf({ kind: 'interrupted', partway: false }).error).to.match(/^stopped before any write/);
    expect(endOf({ kind: 'error', error: new Error('bug') }).log?.[0]).to.match(/^unexpected error: Error: bug/);
    expect(endOf({ kind: 'done', failures: 0 }).log).to.equal(undefined);
  });
});
