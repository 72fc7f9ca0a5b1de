import { afterEach, describe, expect, it, vi } from 'vitest';
import { WorkQueue } from '../../src/watch/workqueue.js';

const tick = () => new Promise<void>((r) => setImmediate(r));

afterEach(() => {
  vi.useRealTimers();
});

describe('WorkQueue basics', () => {
  it('hands keys out in order and merges duplicates that are waiting', async () => {
    const q = new WorkQueue<string>();
    q.add('a');
    q.add('b');
    q.add('a');
    q.add('b');
    q.add('c');
    expect(q.len()).toBe(3);
    expect(await q.get()).toBe('a');
    expect(await q.get()).toBe('b');
    expect(await q.get()).toBe('c');
    expect(q.len()).toBe(0);
    expect(q.inFlight().sort()).toEqual(['a', 'b', 'c']);
  });

  it('a key added while in flight is queued once, only after done()', async () => {
    const q = new WorkQueue<string>();
    q.add('a');
    const k = await q.get();
    expect(k).toBe('a');
    q.add('a');
    q.add('a');
    expect(q.len()).toBe(0); // not handed out while in flight
    let second: string | undefined;
    void q.get().then((x) => (second = x));
    await tick();
    expect(second).toBeUndefined();
    q.done('a');
    await tick();
    expect(second).toBe('a');
    expect(q.len()).toBe(0); // the two adds merged into one
  });

  it('a waiting get() is woken by add()', async () => {
    const q = new WorkQueue<string>();
    const p = q.get();
    q.add('x');
    expect(await p).toBe('x');
  });

  it('reports depth changes', async () => {
    const depths: number[] = [];
    const q = new WorkQueue<string>({ onDepthChange: (d) => depths.push(d) });
    q.add('a');
    q.add('b');
    await q.get();
    expect(depths).toEqual([1, 2, 1]);
  });

  it('done() of a key that is not in flight is ignored', () => {
    const q = new WorkQueue<string>();
    q.done('nope');
    q.add('a');
    q.done('a'); // queued, not in flight
    expect(q.len()).toBe(1);
  });
});

describe('WorkQueue delays and back-off', () => {
  it('addAfter queues the key when its time comes; the sooner of two wins', async () => {
    vi.useFakeTimers();
    const q = new WorkQueue<string>();
    q.addAfter('a', 5000);
    q.addAfter('a', 1000);
    q.addAfter('a', 3000);
    expect(q.delayedLen()).toBe(1);
    vi.advanceTimersByTime(999);
    expect(q.len()).toBe(0);
    vi.advanceTimersByTime(1);
    expect(q.len()).toBe(1);
    expect(q.delayedLen()).toBe(0);
    vi.advanceTimersByTime(10_000);
    expect(q.len()).toBe(1); // later timers were replaced, not left behind
  });

  it('addAfter with 0 adds at once', () => {
    const q = new WorkQueue<string>();
    q.addAfter('a', 0);
    expect(q.len()).toBe(1);
  });

  it('addRateLimited backs off exponentially per key, forget resets', () => {
    vi.useFakeTimers();
    const q = new WorkQueue<string>({ backoff: { jitter: 0 } });
    expect(q.addRateLimited('a')).toBe(1000);
    expect(q.addRateLimited('a')).toBe(2000);
    expect(q.addRateLimited('a')).toBe(4000);
    expect(q.addRateLimited('b')).toBe(1000);
    expect(q.numRequeues('a')).toBe(3);
    q.forget('a');
    expect(q.numRequeues('a')).toBe(0);
    expect(q.addRateLimited('a')).toBe(1000);
  });

  it('caps the back-off at 5 minutes by default', () => {
    vi.useFakeTimers();
    const q = new WorkQueue<string>({ backoff: { jitter: 0 } });
    let last = 0;
    for (let i = 0; i < 30; i++) last = q.addRateLimited('a');
    expect(last).toBe(300_000);
  });
});

describe('WorkQueue.run', () => {
  it('never runs one key twice at once with two workers, and loses no add', async () => {
    const q = new WorkQueue<string>();
    const active = new Map<string, number>();
    let maxSame = 0;
    let maxTotal = 0;
    let total = 0;
    const runs = new Map<string, number>();
    const run = q.run(
      async (key) => {
        const n = (active.get(key) ?? 0) + 1;
        active.set(key, n);
        total++;
        maxSame = Math.max(maxSame, n);
        maxTotal = Math.max(maxTotal, total);
        runs.set(key, (runs.get(key) ?? 0) + 1);
        await new Promise((r) => setTimeout(r, 5));
        active.set(key, (active.get(key) ?? 1) - 1);
        total--;
      },
      { concurrency: 2 },
    );
    // Hammer two keys while they are being processed.
    for (let i = 0; i < 40; i++) {
      q.add('fleet/a');
      if (i % 2 === 0) q.add('fleet/b');
      await new Promise((r) => setTimeout(r, 1));
    }
    // Wait until everything queued has been processed.
    while (q.len() > 0 || q.inFlight().length > 0) await new Promise((r) => setTimeout(r, 5));
    await q.shutdown();
    await run;
    expect(maxSame).toBe(1);
    expect(maxTotal).toBe(2); // both workers were used, on different keys
    // Merging: far fewer runs than adds, but at least one run after the last add.
    expect(runs.get('fleet/a')).toBeGreaterThan(1);
    expect(runs.get('fleet/a')).toBeLessThan(40);
  });

  it('a key added during its run is run again afterwards (level-triggered)', async () => {
    const q = new WorkQueue<string>();
    const seen: number[] = [];
    let version = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const run = q.run(async () => {
      seen.push(version);
      if (seen.length === 1) await gate;
    });
    q.add('k');
    await tick();
    version = 1;
    q.add('k'); // while in flight
    release();
    while (seen.length < 2) await tick();
    await q.shutdown();
    await run;
    expect(seen).toEqual([0, 1]);
  });

  it('errors re-queue with back-off; success forgets; terminal errors wait', async () => {
    vi.useFakeTimers();
    const q = new WorkQueue<string>({ backoff: { jitter: 0 } });
    const errors: [string, number | undefined][] = [];
    let fail = 2;
    const calls: string[] = [];
    const run = q.run(
      async (key) => {
        calls.push(key);
        if (key === 'bad-spec') throw new Error('terminal');
        if (fail-- > 0) throw new Error('boom');
      },
      {
        isTerminal: (e) => (e as Error).message === 'terminal',
        onError: (key, _e, retry) => errors.push([key, retry]),
      },
    );
    q.add('k');
    await vi.advanceTimersByTimeAsync(0);
    expect(errors).toEqual([['k', 1000]]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(errors).toEqual([['k', 1000], ['k', 2000]]);
    await vi.advanceTimersByTimeAsync(2000);
    expect(calls).toEqual(['k', 'k', 'k']);
    expect(q.numRequeues('k')).toBe(0); // the success forgot it
    q.add('bad-spec');
    await vi.advanceTimersByTimeAsync(0);
    expect(errors[2]).toEqual(['bad-spec', undefined]);
    await vi.advanceTimersByTimeAsync(600_000);
    expect(calls.filter((c) => c === 'bad-spec')).toHaveLength(1);
    await q.shutdown();
    await run;
  });

  it('requeueAfterMs schedules the next reconcile', async () => {
    vi.useFakeTimers();
    const q = new WorkQueue<string>();
    let n = 0;
    const run = q.run(async () => {
      n++;
      return { requeueAfterMs: 30_000 };
    });
    q.add('k');
    await vi.advanceTimersByTimeAsync(0);
    expect(n).toBe(1);
    await vi.advanceTimersByTimeAsync(29_999);
    expect(n).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(n).toBe(2);
    await q.shutdown();
    await run;
  });
});

describe('WorkQueue.shutdown', () => {
  it('drain waits for work in flight, drops what has not started, ignores later adds', async () => {
    const q = new WorkQueue<string>();
    const finished: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const run = q.run(async (key) => {
      await gate;
      finished.push(key);
    });
    q.add('a');
    await tick();
    q.add('b'); // queued behind a, not started
    q.addAfter('c', 10);
    let drained = false;
    const sd = q.shutdown({ drain: true }).then(() => (drained = true));
    expect(q.shuttingDown).toBe(true);
    q.add('d');
    await tick();
    expect(drained).toBe(false); // 'a' still in flight
    release();
    await sd;
    await run;
    expect(finished).toEqual(['a']);
    expect(q.len()).toBe(0);
    expect(q.delayedLen()).toBe(0);
    expect(await q.get()).toBeUndefined();
  });

  it('without drain resolves at once; waiting workers get undefined', async () => {
    const q = new WorkQueue<string>();
    const p = q.get();
    q.add('a'); // taken by the waiter
    expect(await p).toBe('a');
    const w = q.get();
    await q.shutdown({ drain: false });
    expect(await w).toBeUndefined();
    expect(q.inFlight()).toEqual(['a']);
    q.done('a');
    expect(q.len()).toBe(0);
  });
});
