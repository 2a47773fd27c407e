/**
 * Token buckets for the REST API's rate limits, kept in this process's memory.
 *
 * A bucket holds up to `limit` tokens and refills continuously at `limit` per minute, so a client
 * may burst up to its whole minute's allowance and then sustains `limit` requests a minute; a
 * refused client waits only for the next token (60 s / limit), not for a fixed window to end.
 *
 * Per instance, on purpose: a limit shared across instances needs a shared store on every request
 * (a database write per request, which the Neuron avoids), while the aim here is to protect each
 * process and to slow brute force, which per-instance buckets do. With N instances behind a load
 * balancer a key can reach at most N times its limit (docs/api.md).
 *
 * Pure apart from the clock passed in; no timers.
 */

export interface BucketState {
  /** Whether this request may proceed (a token was taken). */
  allowed: boolean;
  /** The bucket size (the configured per-minute limit). */
  limit: number;
  /** Whole tokens left after this request. */
  remaining: number;
  /** Seconds until the bucket is full again. */
  resetSeconds: number;
  /** Seconds until the next token, when refused. */
  retryAfterSeconds: number;
}

interface Bucket {
  tokens: number;
  updatedAt: number;
}

const MINUTE_MS = 60_000;

export class TokenBuckets {
  readonly #buckets = new Map<string, Bucket>();
  readonly #msPerToken: number;

  readonly #maxEntries: number;

  /** Tokens per minute and bucket size. */
  readonly limit: number;

  constructor(options: {
    /** Tokens per minute and bucket size. */
    limit: number;
    /**
     * Most buckets kept; beyond it, full (idle) buckets are dropped first, then the oldest, so
     * memory stays bounded however many clients or addresses appear.
     */
    maxEntries: number;
  }) {
    this.limit = options.limit;
    this.#maxEntries = options.maxEntries;
    this.#msPerToken = MINUTE_MS / options.limit;
  }

  get size(): number {
    return this.#buckets.size;
  }

  /** Takes one token for `key` if one is available. */
  take(key: string, now: number): BucketState {
    const bucket = this.#refill(key, now);
    const allowed = bucket.tokens >= 1;
    if (allowed) bucket.tokens -= 1;
    return this.#state(bucket, allowed);
  }

  /** The bucket as it is, without taking a token; `allowed` says whether a token is available. */
  peek(key: string, now: number): BucketState {
    const existing = this.#buckets.get(key);
    if (!existing) return this.#state({ tokens: this.limit, updatedAt: now }, true);
    const tokens = Math.min(this.limit, existing.tokens + (now - existing.updatedAt) / this.#msPerToken);
    return this.#state({ tokens, updatedAt: now }, tokens >= 1);
  }

  #refill(key: string, now: number): Bucket {
    let bucket = this.#buckets.get(key);
    if (!bucket) {
      if (this.#buckets.size >= this.#maxEntries) this.#evict(now);
      bucket = { tokens: this.limit, updatedAt: now };
      this.#buckets.set(key, bucket);
      return bucket;
    }
    bucket.tokens = Math.min(this.limit, bucket.tokens + Math.max(0, now - bucket.updatedAt) / this.#msPerToken);
    bucket.updatedAt = now;
    return bucket;
  }

  #state(bucket: Bucket, allowed: boolean): BucketState {
    const missing = this.limit - bucket.tokens;
    return {
      allowed,
      limit: this.limit,
      remaining: Math.max(0, Math.floor(bucket.tokens)),
      resetSeconds: Math.max(0, Math.ceil((missing * this.#msPerToken) / 1000)),
      retryAfterSeconds: allowed ? 0 : Math.max(1, Math.ceil(((1 - bucket.tokens) * this.#msPerToken) / 1000)),
    };
  }

  /** Drops buckets that have refilled completely (they carry no state), then the oldest ones. */
  #evict(now: number): void {
    for (const [key, bucket] of this.#buckets) {
      if (bucket.tokens + (now - bucket.updatedAt) / this.#msPerToken >= this.limit) this.#buckets.delete(key);
    }
    // Still full of busy buckets: drop the oldest tenth at once rather than one per insert.
    if (this.#buckets.size >= this.#maxEntries) {
      let drop = Math.max(1, Math.floor(this.#maxEntries / 10));
      for (const key of this.#buckets.keys()) {
        if (drop-- <= 0) break;
        this.#buckets.delete(key);
      }
    }
  }
}

/**
 * Most buckets (or audit marks) kept per limiter: each is ~100 bytes, so 100,000 stay under ~10 MB
 * even when an attacker rotates through many addresses; idle (full) buckets are dropped first.
 */
export const MAX_BUCKETS = 100_000;

/** A limit hit by one client is audited at most once per this interval, so a slow attacker cannot flood the log. */
export const LIMIT_AUDIT_INTERVAL_MS = 60_000;

/**
 * Answers yes at most once per key and interval (whether to audit a limit hit), in bounded memory:
 * when full, marks older than the interval are dropped, and if none are, all of them.
 */
export class OncePerInterval {
  readonly #last = new Map<string, number>();

  readonly #intervalMs: number;
  readonly #maxEntries: number;

  constructor(options: { intervalMs: number; maxEntries: number }) {
    this.#intervalMs = options.intervalMs;
    this.#maxEntries = options.maxEntries;
  }

  take(key: string, now: number): boolean {
    const previous = this.#last.get(key);
    if (previous !== undefined && now - previous < this.#intervalMs) return false;
    if (previous === undefined && this.#last.size >= this.#maxEntries) {
      for (const [other, when] of this.#last) if (now - when >= this.#intervalMs) this.#last.delete(other);
      if (this.#last.size >= this.#maxEntries) this.#last.clear();
    }
    this.#last.set(key, now);
    return true;
  }
}

/**
 * The IETF RateLimit header fields (draft-ietf-httpapi-ratelimit-headers, the `RateLimit` /
 * `RateLimit-Policy` form): `RateLimit-Policy: 100;w=60` and `RateLimit: limit=100, remaining=42, reset=17`.
 */
export function rateLimitHeaders(state: BucketState): Record<string, string> {
  return {
    'RateLimit-Policy': `${state.limit};w=60`,
    RateLimit: `limit=${state.limit}, remaining=${state.remaining}, reset=${state.resetSeconds}`,
  };
}
