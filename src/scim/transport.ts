import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import got, { HTTPError, RequestError, type Got, type Method, type RetryObject } from 'got';
import PQueue from 'p-queue';
import { SCIM_CONTENT_TYPE } from './atlassian-rules.js';
import { CancelledError, detailOf, KeyRejectedError, ScimError } from './errors.js';
import { keyFingerprint } from './key-fingerprint.js';
import { describeNoAnswer, type AdviceTarget } from './network-advice.js';
import { log } from '../log.js';

export interface TransportOptions {
  baseUrl: string;
  /** Read on every request, so a rotated key is used from the next call on. */
  token: () => string;
  requestsPerSecond: number;
  concurrency: number;
  timeoutSeconds: number;
  maxRetries: number;
  maxRetryWaitSeconds: number;
  userAgent?: string;
}

export interface CallStats {
  requests: number;
  writes: number;
  byMethod: Record<string, number>;
  byStatus: Record<string, number>;
  /** "METHOD status", e.g. "POST 201", for metrics by both. */
  byMethodAndStatus: Record<string, number>;
  rateLimited: number;
  retries: number;
}

export interface ScimResponse<T> {
  status: number;
  body: T;
}

const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const RETRY_STATUSES = [408, 429, 500, 502, 503, 504, 521, 522, 524];
/** How much longer the pacing window is than the rate asks: room for calls that reach the server closer together than they left. */
const JITTER_MARGIN = 1.02;
/**
 * Before the server has answered once, a refused connection or an unknown host name is a wrong target.url far more
 * often than a server restarting: it gets this many retries, not the full backoff of target.maxRetries (about 17 s
 * at the default 5, spent before saying what is wrong). Once the server has answered, a refusal may be a restart,
 * and gets them all.
 */
const RETRIES_BEFORE_FIRST_ANSWER = 1;
const WRONG_TARGET_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND']);

/** What the hooks need to know of the call they run for (got's `context`, a plain record). */
type CallContext = {
  method: Method;
  path: string;
  resource: string;
  started: number;
};

/**
 * Every SCIM call, reads included, goes through this one queue: one budget of requests per second and concurrency.
 * got retries 5xx, 429 and lost connections with capped exponential backoff and jitter; a 429 also pauses the whole
 * queue for the server's Retry-After (or X-RateLimit-Reset), so that no other request walks into the same limit.
 * Writes are retried too: every operation the connector sends is safe to repeat (a repeated POST answers 409, which
 * the caller resolves by looking the resource up). Each retry is logged at warn level when it is decided; a call that
 * fails for good says in its ScimError what happened and what to check (network-advice.ts).
 */
export class ScimTransport {
  readonly stats: CallStats = { requests: 0, writes: 0, byMethod: {}, byStatus: {}, byMethodAndStatus: {}, rateLimited: 0, retries: 0 };
  private readonly queue: PQueue;
  private resumeAt = 0;
  private resumeTimer: NodeJS.Timeout | undefined;
  /** Whether any call got an HTTP answer (of any status): the server is there, at the URL given. */
  private answered = false;
  private rateLimitWarned = 0;
  private readonly target: AdviceTarget;

  // Kept-alive connections, no more than the calls in flight: a TLS handshake per call would cost more than the call.
  private readonly agent: { http: HttpAgent; https: HttpsAgent };
  private readonly http: Got;

  constructor(private readonly options: TransportOptions) {
    this.target = { url: options.baseUrl, timeoutSeconds: options.timeoutSeconds };
    this.agent = {
      http: new HttpAgent({ keepAlive: true, maxSockets: options.concurrency }),
      https: new HttpsAgent({ keepAlive: true, maxSockets: options.concurrency }),
    };
    // Everything that is the same for every call is merged once here; got merges a call's own options into these,
    // which at 150,000 calls is a real share of the connector's CPU.
    this.http = got.extend({
      headers: { accept: `${SCIM_CONTENT_TYPE}, application/json`, 'user-agent': options.userAgent ?? 'ldap-scim' },
      responseType: 'text',
      agent: this.agent,
      timeout: { request: options.timeoutSeconds * 1000 },
      retry: {
        limit: options.maxRetries,
        methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
        statusCodes: RETRY_STATUSES,
        maxRetryAfter: Number.POSITIVE_INFINITY,
        calculateDelay: (retry) => this.retryDelay(retry),
      },
      hooks: {
        afterResponse: [
          (res) => {
            const call = res.request.options.context as unknown as CallContext;
            this.answered = true;
            this.count(call.method, res.statusCode);
            log.debug(`SCIM ${call.method} ${call.path} answered ${res.statusCode} after ${Date.now() - call.started} ms (${call.resource})`);
            return res;
          },
        ],
        beforeError: [
          (error) => {
            const call = error.options.context as unknown as CallContext;
            if (!error.response) {
              this.count(call.method, 'network');
              log.debug(`SCIM ${call.method} ${call.path} failed after ${Date.now() - call.started} ms: ${error.code} (${call.resource})`);
            }
            return error;
          },
        ],
        beforeRetry: [() => void this.stats.retries++],
      },
    });
    // A sliding window (p-queue's strict mode) of a twentieth of a second, stretched by JITTER_MARGIN. Any second
    // then holds fewer calls than the rate even when they reach the server somewhat closer together than they
    // left, so a server-side limiter of the same rate has no reason to answer 429. Measured at 500/s on 2 cores: one
    // call per 2 ms came out as 420/s (a timer that short fires late, and each late start delays all after it);
    // windows of a fifth of a second or more let bursts through that the server's limiter saw as too many (429s);
    // a twentieth gave 470/s and no 429.
    const { requestsPerSecond: rate } = options;
    const intervalCap = Math.max(1, Math.round(rate / 20));
    this.queue = new PQueue({ concurrency: options.concurrency, interval: ((1000 * intervalCap) / rate) * JITTER_MARGIN, intervalCap, strict: true });
  }

  /** Closes the kept-alive connections; the transport is not used after this. */
  close(): void {
    this.agent.http.destroy();
    this.agent.https.destroy();
  }

  /** How many calls may be in flight at once. */
  get concurrency(): number {
    return this.options.concurrency;
  }

  /** Calls not yet answered (queued or in flight). */
  get pending(): number {
    return this.queue.size + this.queue.pending;
  }

  async request<T>(method: Method, path: string, resource: string, body?: unknown, searchParams?: Record<string, string | number>): Promise<ScimResponse<T>> {
    // One controller per call while it waits: cancelQueued() aborts those, never a call already sent, whose
    // answer must still be recorded.
    const waiting = new AbortController();
    this.waiting.add(waiting);
    try {
      return (await this.queue.add(
        () => {
          this.waiting.delete(waiting);
          return this.send<T>(method, path, resource, body, searchParams);
        },
        { signal: waiting.signal },
      )) as ScimResponse<T>;
    } catch (e) {
      if (waiting.signal.aborted) throw new CancelledError(resource, method);
      throw e;
    } finally {
      this.waiting.delete(waiting);
    }
  }

  private readonly waiting = new Set<AbortController>();

  /** Drops the calls still waiting in the queue (they reject with CancelledError); calls in flight finish. */
  cancelQueued(): void {
    for (const c of this.waiting) c.abort();
    this.waiting.clear();
  }

  private async send<T>(method: Method, path: string, resource: string, body: unknown, searchParams?: Record<string, string | number>): Promise<ScimResponse<T>> {
    const url = this.options.baseUrl.replace(/\/+$/, '') + path;
    const started = Date.now();
    try {
      const context: CallContext = { method, path, resource, started };
      const response = await this.http(url, {
        method,
        searchParams,
        body: body === undefined ? undefined : JSON.stringify(body),
        headers: { authorization: `Bearer ${this.options.token()}`, ...(body === undefined ? {} : { 'content-type': SCIM_CONTENT_TYPE }) },
        context,
      });
      return { status: response.statusCode, body: parseBody<T>(response.body) };
    } catch (e) {
      throw this.failure(e, method, resource);
    }
  }

  private count(method: string, status: number | 'network'): void {
    this.stats.requests++;
    if (WRITE_METHODS.has(method)) this.stats.writes++;
    this.stats.byMethod[method] = (this.stats.byMethod[method] ?? 0) + 1;
    this.stats.byStatus[String(status)] = (this.stats.byStatus[String(status)] ?? 0) + 1;
    const both = `${method} ${status}`;
    this.stats.byMethodAndStatus[both] = (this.stats.byMethodAndStatus[both] ?? 0) + 1;
    if (status === 429) this.stats.rateLimited++;
  }

  private retryDelay({ attemptCount, error, retryAfter, computedValue }: RetryObject): number {
    if (computedValue === 0) return 0; // got's rules: retries used up, or not a retryable failure
    const limit = !this.answered && WRONG_TARGET_CODES.has(error.code) ? Math.min(this.options.maxRetries, RETRIES_BEFORE_FIRST_ANSWER) : this.options.maxRetries;
    if (attemptCount > limit) return 0;
    const cap = this.options.maxRetryWaitSeconds * 1000;
    const jitter = Math.random() * 250;
    const backoff = Math.min(2 ** (attemptCount - 1) * 500, cap) + jitter;
    let wait = backoff;
    if (error.response?.statusCode === 429) {
      wait = Math.min(serverRateLimitWait(retryAfter, error.response.headers['x-ratelimit-reset']) ?? backoff, cap) + jitter;
      this.pauseFor(wait);
    }
    this.warnRetry(error, attemptCount, limit, wait);
    return wait;
  }

  // Logged here, where got decides on the retry and its wait, not in its beforeRetry hook: that hook runs after the
  // wait, which for a 429 can be target.maxRetryWaitSeconds of silence before the admin learns why.
  private warnRetry(error: RequestError, attempt: number, limit: number, wait: number): void {
    const call = error.options.context as unknown as CallContext;
    const status = error.response?.statusCode;
    const reason =
      status === undefined
        ? this.noAnswer(error)
        : `answered ${status}${status === 429 ? ' (rate limited)' : ''}: ${detailOf(String(error.response?.body ?? '')) || error.response?.statusMessage || 'no detail'}`;
    const seconds = (wait / 1000).toFixed(1);
    const then = status === 429 ? `all SCIM calls wait ${seconds} s, then this one is sent again` : `retrying in ${seconds} s`;
    // A server that paces us answers 429 many times a cycle: the first says so, the rest are in the report's count.
    const level = status === 429 && this.rateLimitWarned++ > 0 ? 'debug' : 'warn';
    log.log(level, `SCIM ${call.method} ${call.path} (${call.resource}): attempt ${attempt} of ${limit + 1} failed: ${reason}; ${then}`);
  }

  private noAnswer(error: RequestError): string {
    return describeNoAnswer({ code: error.code, message: error.message, connected: error.timings?.connect !== undefined, answeredBefore: this.answered }, this.target);
  }

  private pauseFor(ms: number): void {
    const until = Date.now() + ms;
    if (until <= this.resumeAt) return;
    this.resumeAt = until;
    this.queue.pause();
    clearTimeout(this.resumeTimer);
    this.resumeTimer = setTimeout(() => this.queue.start(), ms);
    this.resumeTimer.unref();
  }

  private failure(e: unknown, method: string, resource: string): Error {
    if (e instanceof HTTPError) {
      const status = e.response.statusCode;
      const detail = detailOf(String(e.response.body ?? ''));
      if (status === 401 || status === 403) return new KeyRejectedError(resource, method, status, detail, keyFingerprint(this.options.token()));
      return new ScimError(resource, method, status, detail || e.response.statusMessage || '');
    }
    if (e instanceof RequestError) return new ScimError(resource, method, undefined, this.noAnswer(e));
    return e instanceof Error ? e : new Error(String(e));
  }
}

function parseBody<T>(text: string): T {
  if (!text) return undefined as T;
  try {
    return JSON.parse(text) as T;
  } catch {
    return text as T;
  }
}

/**
 * Below this, a wait the server gave is no advice but an artefact: a reset time already past (clocks apart), or one
 * cut to the minute as Jira's X-RateLimit-Reset is. Taken at its word it sent the retry a millisecond later, into the
 * same limit; the exponential backoff is used instead.
 */
const MIN_SERVER_WAIT_MS = 1000;

/**
 * The wait a 429 asks for, in ms: got's reading of Retry-After (which makes a past date 1 ms), else X-RateLimit-Reset;
 * undefined when neither gives a usable one, and the caller backs off on its own.
 */
export function serverRateLimitWait(retryAfter: number | undefined, resetHeader: string | string[] | undefined, now = Date.now()): number | undefined {
  return [retryAfter, rateLimitResetWait(resetHeader, now)].find((wait) => wait !== undefined && wait >= MIN_SERVER_WAIT_MS);
}

/** X-RateLimit-Reset is a timestamp: epoch seconds, epoch milliseconds, or an ISO time. The result may be negative. */
export function rateLimitResetWait(header: string | string[] | undefined, now = Date.now()): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (!value) return undefined;
  const n = Number(value);
  const at = Number.isNaN(n) ? Date.parse(value) : n > 1e12 ? n : n > 1e9 ? n * 1000 : now + n * 1000;
  if (Number.isNaN(at)) return undefined;
  return at - now;
}
