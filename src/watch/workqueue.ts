// The controller's work queue, after controller-runtime / client-go: triggers only add keys; a key
// waiting is queued once however often it is added; a key is never handed to two workers at once
// (added while in flight, it is marked dirty and queued again when its worker is done); delayed
// adds and per-item exponential back-off for failures; shutdown lets in-flight work finish.
import { ItemBackoff, type BackoffOptions } from './backoff.js';

/** Options of a WorkQueue; every field has a default. */
export interface WorkQueueOptions {
  /** Back-off of addRateLimited: base 1 s, cap 5 min, factor 2, jitter 0.2 by default. */
  backoff?: BackoffOptions;
  /** Called whenever the number of keys ready to be handed out changes (for the depth gauge). */
  onDepthChange?: (depth: number) => void;
}

/** What a reconcile handler may ask for on success. */
export interface ReconcileResult {
  /** Reconcile this key again after this many ms (a timer, not a failure: back-off is reset). */
  requeueAfterMs?: number;
}

/** Options of WorkQueue.run. */
export interface RunOptions<K> {
  /** Workers that take keys at the same time. Default 1. */
  concurrency?: number;
  /**
   * An error for which retrying cannot help until the input changes (an invalid spec): the key is
   * forgotten instead of re-queued. Default: no error is terminal.
   */
  isTerminal?: (err: unknown) => boolean;
  /** Told about every failed reconcile; `retryInMs` is undefined for a terminal error. */
  onError?: (key: K, err: unknown, retryInMs: number | undefined) => void;
}

export interface ShutdownOptions {
  /** Wait until every key in flight is done before resolving. Default true. */
  drain?: boolean;
}

/**
 * A de-duplicating, per-key-exclusive work queue.
 * @example
 * const q = new WorkQueue<string>();
 * q.add('fleet/research');
 * const done = q.run(async (key) => { await reconcile(key); return { requeueAfterMs: 30_000 }; });
 * // on SIGTERM:
 * await q.shutdown({ drain: true }); await done;
 */
export class WorkQueue<K = string> {
  private readonly queue: K[] = [];
  /** Keys that need processing: queued, or added again while in flight. */
  private readonly dirty = new Set<K>();
  private readonly processing = new Set<K>();
  private readonly waiters: ((key: K | undefined) => void)[] = [];
  /** Keys waiting for their time: key -> due time and timer; the earliest due time wins. */
  private readonly delayed = new Map<K, { at: number; timer: NodeJS.Timeout }>();
  private readonly backoff: ItemBackoff<K>;
  private readonly onDepthChange: ((depth: number) => void) | undefined;
  private drainWaiters: (() => void)[] = [];
  private stopping = false;

  constructor(opts: WorkQueueOptions = {}) {
    this.backoff = new ItemBackoff<K>(opts.backoff ?? {});
    this.onDepthChange = opts.onDepthChange;
  }

  /** Queues `key` unless it is already waiting; ignored after shutdown. */
  add(key: K): void {
    if (this.stopping) return;
    // A pending delayed add of the same key stays armed (as in client-go): it merges with this one
    // if still queued, and otherwise brings one more, harmless, level-triggered reconcile.
    if (this.dirty.has(key)) return;
    this.dirty.add(key);
    // In flight: done() queues it again, so the same key never runs twice at once.
    if (this.processing.has(key)) return;
    this.queue.push(key);
    this.handOut();
    this.depthChanged();
  }

  /** Queues `key` after `ms` milliseconds; if it is already waiting for a later time, sooner wins. */
  addAfter(key: K, ms: number): void {
    if (this.stopping) return;
    if (ms <= 0) {
      this.add(key);
      return;
    }
    const at = Date.now() + ms;
    const prev = this.delayed.get(key);
    if (prev && prev.at <= at) return;
    if (prev) clearTimeout(prev.timer);
    const timer = setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, ms);
    this.delayed.set(key, { at, timer });
  }

  /** Queues `key` after its next back-off delay (one more failure) and returns that delay. */
  addRateLimited(key: K): number {
    const ms = this.backoff.next(key);
    this.addAfter(key, ms);
    return ms;
  }

  /** Resets the back-off of `key` (after a success). */
  forget(key: K): void {
    this.backoff.forget(key);
  }

  /** Consecutive failures of `key` since it was last forgotten. */
  numRequeues(key: K): number {
    return this.backoff.count(key);
  }

  /** Keys ready to be handed out (not counting delayed or in-flight ones). */
  len(): number {
    return this.queue.length;
  }

  /** Keys waiting for a delay (addAfter / addRateLimited). */
  delayedLen(): number {
    return this.delayed.size;
  }

  /** Keys currently held by a worker. */
  inFlight(): K[] {
    return [...this.processing];
  }

  get shuttingDown(): boolean {
    return this.stopping;
  }

  /**
   * The next key, waiting until one is ready. The caller owns it until `done(key)`.
   * Resolves undefined once the queue is shut down.
   */
  get(): Promise<K | undefined> {
    if (this.stopping) return Promise.resolve(undefined);
    if (this.queue.length > 0) return Promise.resolve(this.take());
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Marks `key` finished; if it was added meanwhile it is queued again now. */
  done(key: K): void {
    if (!this.processing.delete(key)) return;
    if (this.dirty.has(key) && !this.stopping) {
      this.queue.push(key);
      this.handOut();
      this.depthChanged();
    }
    if (this.processing.size === 0 && this.drainWaiters.length > 0) {
      const ws = this.drainWaiters;
      this.drainWaiters = [];
      for (const w of ws) w();
    }
  }

  /**
   * Stops the queue: later adds are ignored, delayed keys and keys not yet started are dropped
   * (the reconciler is level-triggered, so the next start re-reads everything), waiting workers
   * get undefined. With `drain` (the default) the promise resolves once the keys in flight are done.
   */
  shutdown(opts: ShutdownOptions = {}): Promise<void> {
    if (!this.stopping) {
      this.stopping = true;
      for (const d of this.delayed.values()) clearTimeout(d.timer);
      this.delayed.clear();
      const dropped = this.queue.length;
      this.queue.length = 0;
      this.dirty.clear();
      for (const w of this.waiters.splice(0)) w(undefined);
      if (dropped > 0) this.depthChanged();
    }
    if (opts.drain === false || this.processing.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /**
   * Runs `handler` for each key with `concurrency` workers until shutdown. Success forgets the
   * key's back-off (and re-queues after `requeueAfterMs` when asked); a thrown error re-queues it
   * with back-off, unless `isTerminal(err)`. Resolves when every worker has stopped.
   */
  async run(handler: (key: K) => Promise<ReconcileResult | void>, opts: RunOptions<K> = {}): Promise<void> {
    const n = Math.max(1, opts.concurrency ?? 1);
    const worker = async (): Promise<void> => {
      for (;;) {
        const key = await this.get();
        if (key === undefined) return;
        try {
          const r = await handler(key);
          this.forget(key);
          if (r && r.requeueAfterMs !== undefined) this.addAfter(key, r.requeueAfterMs);
        } catch (err) {
          let terminal = false;
          try {
            terminal = opts.isTerminal?.(err) ?? false;
          } catch {
            // A broken classifier must not stop the worker: treat the error as retryable.
          }
          let retry: number | undefined;
          if (terminal) this.forget(key);
          else retry = this.addRateLimited(key);
          try {
            opts.onError?.(key, err, retry);
          } catch {
            // Reporting failed (a logger that threw); the retry is already scheduled.
          }
        } finally {
          this.done(key);
        }
      }
    };
    await Promise.all(Array.from({ length: n }, () => worker()));
  }

  private take(): K {
    const key = this.queue.shift() as K;
    this.processing.add(key);
    this.dirty.delete(key);
    this.depthChanged();
    return key;
  }

  private handOut(): void {
    while (this.waiters.length > 0 && this.queue.length > 0) {
      const w = this.waiters.shift() as (key: K | undefined) => void;
      w(this.take());
    }
  }

  private depthChanged(): void {
    this.onDepthChange?.(this.queue.length);
  }
}
