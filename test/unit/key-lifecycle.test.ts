import { expect } from 'chai';
import { dueWarning, expiryOf, type KeyRecord } from '../../src/daemon/key-lifecycle.js';

const DAY = 86_400_000;

describe('API key lifecycle', () => {
  const now = new Date('2026-11-23T12:00:00Z');

  it('estimates the expiry a year after the key was first seen, and says it is an estimate', () => {
    const record: KeyRecord = { firstSeen: new Date(now.getTime() - 340 * DAY).toISOString(), warned: [] };
    const expiry = expiryOf('sha256:abc', record, undefined, now);
    expect(expiry.estimated).to.equal(true);
    expect(Math.round(expiry.daysLeft)).to.equal(25);
    expect(dueWarning(expiry, record)).to.match(/expires in 25 days, on 2026-12-18 \(an estimate: a year after this key was first seen/);
  });

  it('warns once per threshold crossed, and once only when several are crossed at first sight', () => {
    const record: KeyRecord = { firstSeen: now.toISOString(), warned: [] };
    const at = (daysLeft: number) => dueWarning(expiryOf('sha256:abc', record, new Date(now.getTime() + daysLeft * DAY), now), record);
    expect(at(40)).to.equal(undefined);
    expect(at(5)).to.match(/expires in 5 days, on .* \(target\.tokenExpiresAt\)/);
    expect(record.warned).to.deep.equal([30, 14, 7]);
    expect(at(4.5)).to.equal(undefined);
    expect(at(2.5)).to.match(/expires in 2 days/);
    expect(at(2)).to.equal(undefined);
    expect(at(0.5)).to.match(/expires within a day/);
    expect(at(-1)).to.match(/expired on/);
    expect(at(-2)).to.equal(undefined);
  });
});
