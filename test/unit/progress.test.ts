import { expect } from 'chai';
import { formatDuration, Progress, type ProgressSink } from '../../src/progress.js';

function sink(tty: boolean) {
  const out = { lines: [] as string[], logs: [] as string[] };
  const s: ProgressSink = { tty, line: (t) => out.lines.push(t), log: (t) => out.logs.push(t) };
  return { s, out };
}

describe('progress', () => {
  it('on a terminal: a live line with count, rate, share and ETA, then a closing line', () => {
    let now = 0;
    const { s, out } = sink(true);
    const p = new Progress('SCIM calls', 1000, s, () => now);
    for (let i = 0; i < 100; i++) {
      now += 10; // 100 per second
      p.add();
    }
    expect(out.lines.at(-1)).to.equal('SCIM calls: 100 / 1,000 (10%), 100/s, ETA 9s');
    expect(out.logs).to.deep.equal([]);
    p.finish();
    expect(out.lines.at(-1)).to.equal('SCIM calls: 100 / 1,000 (10%), 100/s, in 1.0 s\n');
  });

  it('rate and ETA follow the last 30 s when the server slows down; the closing line keeps the whole run', () => {
    let now = 0;
    const { s, out } = sink(true);
    const p = new Progress('SCIM calls', 10_000, s, () => now);
    for (let i = 0; i < 3000; i++) {
      now += 10; // 100 per second for 30 s
      p.add();
    }
    for (let i = 0; i < 400; i++) {
      now += 100; // then 10 per second for 40 s
      p.add();
    }
    // 6,601 left at 10/s is 11 minutes; the average since the start (49/s) would have said 2m16s.
    expect(out.lines.at(-1)).to.equal('SCIM calls: 3,399 / 10,000 (33%), 10/s, ETA 11m00s');
    p.finish();
    expect(out.lines.at(-1)).to.equal('SCIM calls: 3,400 / 10,000 (34%), 49/s, in 70.0 s\n');
  });

  it('in a log: a line every 5 s, and nothing at all for work that ends sooner', () => {
    let now = 0;
    const quick = sink(false);
    const q = new Progress('reading', undefined, quick.s, () => now);
    for (let i = 0; i < 400; i++) {
      now += 10;
      q.add();
    }
    q.finish();
    expect(quick.out.logs).to.deep.equal([]);

    now = 0;
    const slow = sink(false);
    const p = new Progress('reading', undefined, slow.s, () => now);
    for (let i = 0; i < 1200; i++) {
      now += 10;
      p.add();
    }
    p.finish();
    expect(slow.out.logs).to.deep.equal(['reading: 500 (100/s)', 'reading: 1,000 (100/s)', 'reading: 1,200 (100/s) in 12.0 s']);
    expect(slow.out.lines).to.deep.equal([]);
  });

  it('writes durations the way people read them', () => {
    expect([formatDuration(9.4), formatDuration(225), formatDuration(7500), formatDuration(Infinity)]).to.deep.equal(['9s', '3m45s', '2h05m', '?']);
  });
});
