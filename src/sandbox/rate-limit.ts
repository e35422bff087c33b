/**
 * A sliding window over the last accepted requests: at most `requestsPerSecond` of them in any one second (for a
 * fractional rate, one request per 1/rate seconds). Requests it refuses do not count against the window.
 */
export class SlidingWindowLimiter {
  private readonly acceptedAt: number[];
  private readonly windowMs: number;
  private oldest = 0;

  constructor(requestsPerSecond: number) {
    if (!(requestsPerSecond > 0) || !Number.isFinite(requestsPerSecond)) {
      throw new Error(`rateLimit.requestsPerSecond must be a positive number, not ${requestsPerSecond}`);
    }
    const capacity = Math.max(1, Math.floor(requestsPerSecond));
    this.windowMs = (capacity / requestsPerSecond) * 1000;
    this.acceptedAt = new Array<number>(capacity).fill(Number.NEGATIVE_INFINITY);
  }

  /** 0 when the request may go ahead (and is counted), else the whole seconds to wait (at least 1). */
  take(nowMs = performance.now()): number {
    const oldest = this.acceptedAt[this.oldest] ?? Number.NEGATIVE_INFINITY;
    const waitMs = oldest + this.windowMs - nowMs;
    if (waitMs > 0) return Math.max(1, Math.ceil(waitMs / 1000));
    this.acceptedAt[this.oldest] = nowMs;
    this.oldest = (this.oldest + 1) % this.acceptedAt.length;
    return 0;
  }
}
