import { log } from './log.js';

/** Where progress goes: a live line on a terminal, else a log line now and then. Replaceable in tests. */
export interface ProgressSink {
  tty: boolean;
  /** Rewrites the live line (terminal only). */
  line(text: string): void;
  log(text: string): void;
}

const defaultSink: ProgressSink = {
  tty: Boolean(process.stderr.isTTY),
  line: (text) => process.stderr.write(`\r\x1b[2K${text}`),
  log: (text) => log.info(text),
};

const TTY_EVERY_MS = 250;
const LOG_EVERY_MS = 5000;
/**
 * The rate shown, and the ETA, are over about the last 30 s: a server that slows down as it fills (one measured
 * went from 46 to 3 calls a second) made an ETA from the average since the start a fraction of the real one.
 */
const RECENT_MS = 30_000;

/**
 * Long work said as it goes: the directory read (a count and a rate) and the SCIM calls (also the share done and an
 * ETA). On a terminal, one line on stderr rewritten four times a second; otherwise (the daemon, a pipe) one log line
 * every 5 s, and none for work that ends sooner. Never on stdout, where reports and JSON go.
 */
export class Progress {
  private done = 0;
  private readonly started: number;
  private shownAt: number;
  private shown = false;
  /** (time, done) when shown, oldest first, back to RECENT_MS before the last: where the recent rate starts. */
  private readonly marks: { at: number; done: number }[] = [];

  constructor(
    private readonly what: string,
    private readonly total?: number,
    private readonly sink: ProgressSink = defaultSink,
    private readonly now: () => number = Date.now,
  ) {
    this.started = now();
    this.shownAt = this.started;
  }

  add(n = 1): void {
    this.done += n;
    const at = this.now();
    if (at - this.shownAt < (this.sink.tty ? TTY_EVERY_MS : LOG_EVERY_MS)) return;
    this.shownAt = at;
    this.show(at);
  }

  /** Ends the live line; work that was shown gets a closing line. */
  finish(): void {
    if (!this.shown) return;
    const text = this.describe(this.now(), true);
    if (this.sink.tty) this.sink.line(text + '\n');
    else this.sink.log(text);
  }

  private show(at: number): void {
    this.shown = true;
    this.marks.push({ at, done: this.done });
    while (this.marks.length > 1 && at - this.marks[1]!.at >= RECENT_MS) this.marks.shift();
    const text = this.describe(at, false);
    if (this.sink.tty) this.sink.line(text);
    else this.sink.log(text);
  }

  describe(at: number, final: boolean): string {
    const seconds = Math.max(0.001, (at - this.started) / 1000);
    // From the start while the work is young, and for the closing line: the whole run's rate.
    const from = !final && this.marks.length > 1 && at - this.started >= RECENT_MS ? this.marks[0]! : { at: this.started, done: 0 };
    const rate = (this.done - from.done) / Math.max(0.001, (at - from.at) / 1000);
    const count = this.done.toLocaleString('en-US');
    if (this.total === undefined || this.total === 0) return `${this.what}: ${count} (${Math.round(rate)}/s)${final ? ` in ${seconds.toFixed(1)} s` : ''}`;
    const share = Math.floor((100 * this.done) / this.total);
    const left = rate > 0 ? (this.total - this.done) / rate : Infinity;
    const tail = final ? `in ${seconds.toFixed(1)} s` : `ETA ${formatDuration(left)}`;
    return `${this.what}: ${count} / ${this.total.toLocaleString('en-US')} (${share}%), ${Math.round(rate)}/s, ${tail}`;
  }
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
