/**
 * A per-credential rate limit: one token bucket per key (a token's id, a session, or a client address for
 * sign-in), refilled continuously. In memory, per controller process: a limit on abuse, not an accounting system.
 */

export interface RateLimitOptions {
  /** requests a key may make at once (the bucket's size) */
  burst: number;
  /** requests per second the bucket refills */
  perSecond: number;
}

export interface RateDecision {
  ok: boolean;
  /** whole seconds until one request is allowed again (0 when ok) */
  retryAfter: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/** Above this many keys, full buckets (idle keys) are forgotten: they would be full again anyway. */
const PRUNE_ABOVE = 10_000;

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  constructor(private readonly opts: RateLimitOptions) {}

  /** Take one request from `key`'s bucket at time `nowMs`. */
  take(key: string, nowMs: number): RateDecision {
    const { burst, perSecond } = this.opts;
    let b = this.buckets.get(key);
    if (b === undefined) {
      if (this.buckets.size >= PRUNE_ABOVE) this.prune(nowMs);
      b = { tokens: burst, at: nowMs };
      this.buckets.set(key, b);
    } else {
      b.tokens = Math.min(burst, b.tokens + ((nowMs - b.at) / 1000) * perSecond);
      b.at = nowMs;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { ok: true, retryAfter: 0 };
    }
    return { ok: false, retryAfter: Math.max(1, Math.ceil((1 - b.tokens) / perSecond)) };
  }

  private prune(nowMs: number): void {
    const { burst, perSecond } = this.opts;
    for (const [k, b] of this.buckets) if (b.tokens + ((nowMs - b.at) / 1000) * perSecond >= burst) this.buckets.delete(k);
  }
}
