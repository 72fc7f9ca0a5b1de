// Per-item exponential back-off: how long a failing key waits before it is retried. Pure arithmetic
// plus a small per-key failure counter, in the style of controller-runtime's
// ItemExponentialFailureRateLimiter, so that one broken fleet retries slowly while others do not.

/** How retries of one key are spaced. */
export interface BackoffOptions {
  /** Delay after the first failure. Default 1000 ms. */
  baseMs?: number;
  /** The delay never exceeds this. Default 300000 ms (5 min). */
  capMs?: number;
  /** Growth per consecutive failure. Default 2. */
  factor?: number;
  /**
   * Fraction of the delay taken off at random, in [0, 1]: the delay is `d * (1 - jitter * r)`
   * with r uniform in [0, 1). Spreads retries of many keys that failed together. Default 0.2;
   * tests pass 0 for exact delays.
   */
  jitter?: number;
  /** Source of randomness for the jitter. Default Math.random. */
  random?: () => number;
}

export const DEFAULT_BACKOFF = { baseMs: 1000, capMs: 300_000, factor: 2, jitter: 0.2 } as const;

/**
 * The delay before retry number `failures` (1 = the first failure): `base * factor^(failures-1)`,
 * capped, then jittered downwards (never above the cap).
 * @example backoffDelay(3, { jitter: 0 }) // 4000
 */
export function backoffDelay(failures: number, opts: BackoffOptions = {}): number {
  const base = opts.baseMs ?? DEFAULT_BACKOFF.baseMs;
  const cap = opts.capMs ?? DEFAULT_BACKOFF.capMs;
  const factor = opts.factor ?? DEFAULT_BACKOFF.factor;
  const jitter = Math.min(1, Math.max(0, opts.jitter ?? DEFAULT_BACKOFF.jitter));
  const n = Math.max(1, Math.floor(failures));
  // Computing factor^(n-1) for a large n overflows to Infinity, which min() then caps: fine.
  const raw = Math.min(cap, base * Math.pow(factor, n - 1));
  if (jitter === 0) return Math.round(raw);
  const r = (opts.random ?? Math.random)();
  return Math.round(raw * (1 - jitter * r));
}

/** Counts consecutive failures per key and hands out the next back-off delay. */
export class ItemBackoff<K = string> {
  private readonly failures = new Map<K, number>();
  constructor(private readonly opts: BackoffOptions = {}) {}

  /** Records one more failure of `key` and returns how long it should wait. */
  next(key: K): number {
    const n = (this.failures.get(key) ?? 0) + 1;
    this.failures.set(key, n);
    return backoffDelay(n, this.opts);
  }

  /** Consecutive failures recorded for `key` since the last forget. */
  count(key: K): number {
    return this.failures.get(key) ?? 0;
  }

  /** Resets `key` after a success, so its next failure starts at the base delay again. */
  forget(key: K): void {
    this.failures.delete(key);
  }
}
