// The notice monitor against in-memory providers: plain objects that implement the notices
// capability and keep their own posted notices, as the sim/local providers do.
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { NodeInfo, Notice } from '../../src/core/types.js';
import type { Provider } from '../../src/providers/sdk.js';
import {
  NoticeMonitor,
  pollPhase,
  type MonitoredNode,
  type NoticeProvider,
  type NoticeMonitorError,
  type NoticeMonitorOptions,
  type SeenNotice,
} from '../../src/watch/notice-monitor.js';

// Compile-time: a real Provider (with the SDK's optional notices.watch) is a NoticeProvider.
const _providerIsNoticeProvider = (p: Provider): NoticeProvider => p;


async function until(cond: () => boolean, what: string, limitMs = 5000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > limitMs) throw new Error(`timed out waiting for: ${what}`);
    await sleep(5);
  }
}

function node(id: string, provider = 'mem'): NodeInfo {
  return { id, provider, gpuModel: 'V100', gpus: 1, capacity: 'spot', pricePerHour: 1, state: 'ready' };
}

function notice(nodeId: string, id = `n-${nodeId}`, provider = 'mem'): Notice {
  return {
    id,
    provider,
    node: nodeId,
    source: 'sim',
    kind: 'preemption',
    deadline: new Date(Date.now() + 30_000).toISOString(),
    receivedAt: new Date().toISOString(),
  };
}

/** An in-memory provider: notices posted per node, optional per-node delay, hang or failure. */
class MemProvider {
  readonly posted = new Map<string, Notice[]>();
  readonly polls = new Map<string, number>();
  readonly active = new Map<string, number>();
  maxSameNode = 0;
  inFlight = 0;
  maxInFlight = 0;
  delayMs = 0;
  readonly hang = new Map<string, (n: Notice[]) => void>();
  readonly hanging = new Set<string>();
  readonly failing = new Set<string>();
  readonly notices = { poll: (n: NodeInfo) => this.poll(n) };
  constructor(readonly name = 'mem') {}

  post(nodeId: string, n: Notice = notice(nodeId, undefined, this.name)): void {
    this.posted.set(nodeId, [...(this.posted.get(nodeId) ?? []), n]);
  }
  count(nodeId: string): number {
    return this.polls.get(nodeId) ?? 0;
  }

  private async poll(n: NodeInfo): Promise<Notice[]> {
    this.polls.set(n.id, this.count(n.id) + 1);
    const same = (this.active.get(n.id) ?? 0) + 1;
    this.active.set(n.id, same);
    this.maxSameNode = Math.max(this.maxSameNode, same);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.hanging.has(n.id)) {
        return await new Promise<Notice[]>((resolve) => this.hang.set(n.id, resolve));
      }
      if (this.delayMs > 0) await sleep(this.delayMs);
      if (this.failing.has(n.id)) throw new Error(`metadata of ${n.id} unreachable`);
      return [...(this.posted.get(n.id) ?? [])];
    } finally {
      this.inFlight--;
      this.active.set(n.id, (this.active.get(n.id) ?? 1) - 1);
    }
  }
}

const monitors: NoticeMonitor[] = [];
afterEach(async () => {
  for (const m of monitors.splice(0)) await m.stop();
});

function monitor(opts: Partial<NoticeMonitorOptions> = {}) {
  const seen: SeenNotice[] = [];
  const errors: NoticeMonitorError[] = [];
  const m = new NoticeMonitor({
    intervalMs: 20,
    pollTimeoutMs: 100,
    onNotice: (s) => seen.push(s),
    onError: (e) => errors.push(e),
    ...opts,
  });
  monitors.push(m);
  return { m, seen, errors };
}

const entries = (p: MemProvider, ids: string[]): MonitoredNode[] => ids.map((id) => ({ provider: p, node: node(id, p.name) }));

describe('NoticeMonitor', () => {
  it('reports each notice once, however often it is polled', async () => {
    const p = new MemProvider();
    const { m, seen } = monitor();
    m.setNodes(entries(p, ['a', 'b']));
    m.start();
    p.post('a');
    await until(() => p.count('a') >= 6, 'six polls of a');
    expect(seen.map((s) => s.notice.id)).toEqual(['n-a']);
    expect(seen[0]).toMatchObject({ provider: 'mem', node: { id: 'a' }, via: 'poll' });
    expect(typeof seen[0]?.seenAt).toBe('number');
    p.post('a', notice('a', 'n-a-2'));
    p.post('b');
    await until(() => seen.length >= 3, 'two more notices');
    const more = p.count('a') + 5;
    await until(() => p.count('a') >= more, 'more polls of a');
    expect(seen.map((s) => s.notice.id).sort()).toEqual(['n-a', 'n-a-2', 'n-b']);
    expect(m.stats().noticesEmitted).toBe(3);
  });

  it('keeps the same notice id from two providers apart', async () => {
    const p1 = new MemProvider('aws-east');
    const p2 = new MemProvider('aws-west');
    const { m, seen } = monitor();
    m.setNodes([...entries(p1, ['x']), ...entries(p2, ['x'])]);
    p1.post('x', notice('x', 'same-id', 'aws-east'));
    p2.post('x', notice('x', 'same-id', 'aws-west'));
    m.start();
    await until(() => seen.length >= 2, 'both notices');
    expect(seen.map((s) => s.provider).sort()).toEqual(['aws-east', 'aws-west']);
  });

  it('never has more polls in flight than the bound, and still reaches every node', async () => {
    const p = new MemProvider();
    p.delayMs = 15;
    const ids = Array.from({ length: 60 }, (_, i) => `n${i}`);
    const { m } = monitor({ maxInFlight: 4, intervalMs: 20 });
    m.setNodes(entries(p, ids));
    m.start();
    await until(() => ids.every((id) => p.count(id) >= 2), 'every node polled twice');
    expect(p.maxInFlight).toBeLessThanOrEqual(4);
    expect(m.stats().maxInFlightSeen).toBeLessThanOrEqual(4);
    expect(p.maxInFlight).toBe(4); // the bound was actually reached: the test can fail
  });

  it('never polls one node twice at once, even when polls outlast the interval', async () => {
    const p = new MemProvider();
    p.delayMs = 50; // longer than the 20 ms interval, shorter than the timeout
    const { m } = monitor({ intervalMs: 20, pollTimeoutMs: 1000 });
    m.setNodes(entries(p, ['a', 'b', 'c']));
    m.start();
    await until(() => p.count('a') >= 4, 'four polls of a');
    expect(p.maxSameNode).toBe(1);
  });

  it('a hanging node does not block the others, is reported, and is not polled again while hung', async () => {
    const p = new MemProvider();
    p.hanging.add('dead');
    const { m, seen, errors } = monitor({ intervalMs: 20, pollTimeoutMs: 60, maxInFlight: 2 });
    m.setNodes(entries(p, ['dead', 'a', 'b', 'c']));
    m.start();
    await until(() => errors.some((e) => e.timedOut), 'a timeout report');
    p.post('c');
    await until(() => seen.length > 0, 'the notice on c');
    await until(() => ['a', 'b', 'c'].every((id) => p.count(id) >= 8), 'the others polled on');
    expect(errors[0]).toMatchObject({ provider: 'mem', node: 'dead', timedOut: true, via: 'poll' });
    expect(p.count('dead')).toBe(1); // no overlapping poll while the first one hangs
    expect(m.stats().skipped).toBeGreaterThan(0);
    expect(seen.map((s) => s.notice.id)).toEqual(['n-c']);

    // The hung poll finally answers with a notice: late news still counts, and polling resumes.
    p.hanging.delete('dead');
    p.hang.get('dead')?.([notice('dead')]);
    await until(() => seen.some((s) => s.node.id === 'dead'), 'the late notice');
    await until(() => p.count('dead') >= 2, 'dead polled again');
  });

  it('a failing poll is reported with provider and node, others go on', async () => {
    const p = new MemProvider('lab');
    p.failing.add('bad');
    const { m, seen, errors } = monitor();
    m.setNodes(entries(p, ['bad', 'good']));
    p.post('good', notice('good', 'n-good', 'lab'));
    m.start();
    await until(() => errors.length >= 2 && seen.length === 1, 'errors and the notice');
    expect(errors[0]).toMatchObject({ provider: 'lab', node: 'bad', timedOut: false, via: 'poll' });
    expect(String((errors[0]?.error as Error).message)).toContain('unreachable');
    expect(m.stats().errors).toBeGreaterThanOrEqual(2);
  });

  it('an onNotice callback that throws is reported and does not stop the monitor', async () => {
    const p = new MemProvider();
    const errors: NoticeMonitorError[] = [];
    let calls = 0;
    const m = new NoticeMonitor({
      intervalMs: 20,
      onNotice: () => {
        calls++;
        throw new Error('handler bug');
      },
      onError: (e) => errors.push(e),
    });
    monitors.push(m);
    m.setNodes(entries(p, ['a', 'b']));
    p.post('a');
    m.start();
    await until(() => errors.length === 1, 'callback error');
    p.post('b');
    await until(() => calls === 2, 'second notice');
    expect(errors[0]).toMatchObject({ via: 'callback', node: 'a' });
  });

  it('replacing the node set stops removed nodes, starts new ones, keeps the rest', async () => {
    const p = new MemProvider();
    const { m, seen } = monitor();
    m.setNodes(entries(p, ['a', 'b']));
    m.start();
    await until(() => p.count('a') >= 2 && p.count('b') >= 2, 'a and b polled');
    m.setNodes(entries(p, ['b', 'c']));
    expect(m.stats().nodes).toBe(2);
    await sleep(30); // let a poll of `a` already in flight come back
    const aAfter = p.count('a');
    p.post('a');
    await until(() => p.count('c') >= 3 && p.count('b') >= 5, 'b and c polled on');
    expect(p.count('a')).toBe(aAfter);
    expect(seen).toEqual([]); // the notice of a removed node is not reported
    m.setNodes([]);
    expect(m.stats().nodes).toBe(0);
  });

  it('a notice already reported is not reported again when its node comes back', async () => {
    const p = new MemProvider();
    const { m, seen } = monitor();
    p.post('a');
    m.setNodes(entries(p, ['a']));
    m.start();
    await until(() => seen.length === 1, 'the notice');
    m.setNodes([]);
    m.setNodes(entries(p, ['a']));
    const n = p.count('a') + 3;
    await until(() => p.count('a') >= n, 'a polled again');
    expect(seen).toHaveLength(1);
  });

  it('stop() ends polling, waits for polls in flight, and reports nothing afterwards', async () => {
    const p = new MemProvider();
    p.delayMs = 30;
    const { m, seen } = monitor({ intervalMs: 10 });
    m.setNodes(entries(p, ['a', 'b', 'c']));
    m.start();
    await until(() => p.inFlight > 0, 'a poll in flight');
    p.post('a');
    p.post('b');
    p.post('c');
    await m.stop();
    expect(p.inFlight).toBe(0);
    expect(m.isRunning).toBe(false);
    const counts = ['a', 'b', 'c'].map((id) => p.count(id));
    const emitted = seen.length;
    await sleep(80);
    expect(['a', 'b', 'c'].map((id) => p.count(id))).toEqual(counts);
    expect(seen.length).toBe(emitted);
  });

  it('uses notices.watch where a provider offers it, and falls back to polling when it fails', async () => {
    const signals: AbortSignal[] = [];
    const pushers = new Map<string, (n: Notice) => void>();
    let polls = 0;
    let failWatch = false;
    const provider = {
      name: 'push',
      notices: {
        poll: async (n: NodeInfo) => {
          polls++;
          return [notice(n.id, `polled-${n.id}`, 'push')];
        },
        watch: (n: NodeInfo, onNotice: (x: Notice) => void, signal: AbortSignal) =>
          new Promise<void>((resolve, reject) => {
            if (failWatch) {
              reject(new Error('stream refused'));
              return;
            }
            signals.push(signal);
            pushers.set(n.id, onNotice);
            signal.addEventListener('abort', () => resolve());
          }),
      },
    };
    const { m, seen, errors } = monitor();
    m.setNodes([{ provider, node: node('w1', 'push') }]);
    m.start();
    await until(() => pushers.has('w1'), 'watch started');
    expect(m.stats().watching).toBe(1);
    pushers.get('w1')?.(notice('w1', 'pushed', 'push'));
    pushers.get('w1')?.(notice('w1', 'pushed', 'push'));
    expect(seen.map((s) => [s.notice.id, s.via])).toEqual([['pushed', 'watch']]);
    await sleep(60);
    expect(polls).toBe(0);

    // Removing the node aborts its watch.
    m.setNodes([]);
    expect(signals[0]?.aborted).toBe(true);

    // A watch that fails is reported and the node is polled instead.
    failWatch = true;
    m.setNodes([{ provider, node: node('w2', 'push') }]);
    await until(() => seen.some((s) => s.notice.id === 'polled-w2'), 'polled notice of w2');
    expect(errors.some((e) => e.via === 'watch' && e.node === 'w2')).toBe(true);
    expect(seen.find((s) => s.notice.id === 'polled-w2')?.via).toBe('poll');
  });

  it('follows a reloaded provider object: from polling to its watch', async () => {
    const p = new MemProvider('gcp');
    const { m } = monitor();
    m.setNodes(entries(p, ['g1']));
    m.start();
    await until(() => p.count('g1') >= 2, 'polls of g1');
    let aborted = false;
    let watching = false;
    const reloaded = {
      name: 'gcp',
      notices: {
        poll: (n: NodeInfo) => p.notices.poll(n),
        watch: (_n: NodeInfo, _on: (x: Notice) => void, signal: AbortSignal) =>
          new Promise<void>((resolve) => {
            watching = true;
            signal.addEventListener('abort', () => {
              aborted = true;
              resolve();
            });
          }),
      },
    };
    m.setNodes([{ provider: reloaded, node: node('g1', 'gcp') }]);
    expect(watching).toBe(true);
    await sleep(40); // a poll already in flight may finish
    const n = p.count('g1');
    await sleep(100);
    expect(p.count('g1')).toBe(n); // polling stopped once the watch took over
    await m.stop();
    expect(aborted).toBe(true);
  });

  it('hears a provider with a fleet-level source through it alone, matching notices to nodes by id, lease id or meta.instanceId', async () => {
    const p = new MemProvider('cloud');
    let emit: ((n: Notice) => void) | undefined;
    let ended: ((e: Error) => void) | undefined;
    let starts = 0;
    const fleet = {
      watch: (onNotice: (n: Notice) => void, signal: AbortSignal) =>
        new Promise<void>((resolve, reject) => {
          starts++;
          emit = onNotice;
          ended = reject;
          signal.addEventListener('abort', () => resolve());
        }),
    };
    const cloud: NoticeProvider = { name: 'cloud', notices: { poll: (n) => p.notices.poll(n), fleet } };
    const other = new MemProvider('ssh');
    const { m, seen, errors } = monitor({ fleetRetryMs: 50 });
    const leased = { ...node('vm-2', 'cloud'), leaseId: 'i-0000000000000002' };
    const viaMeta = { ...node('gpu-host', 'ssh'), meta: { instanceId: 'i-0000000000000003' } };
    m.setNodes([
      { provider: cloud, node: node('i-0000000000000001', 'cloud') },
      { provider: cloud, node: leased },
      { provider: other, node: viaMeta },
    ]);
    m.start();
    await until(() => emit !== undefined, 'the fleet source started');
    await sleep(150);
    expect(p.count('i-0000000000000001') + p.count('vm-2'), 'covered nodes are not polled one by one').toBe(0);
    expect(other.count('gpu-host'), 'a node of another provider is still polled').toBeGreaterThan(0);
    expect(m.stats()).toMatchObject({ fleetSources: 1, covered: 2 });

    emit?.(notice('i-0000000000000001', 'ev-1', 'cloud'));
    emit?.(notice('i-0000000000000002', 'ev-2', 'cloud'));
    emit?.(notice('i-0000000000000003', 'ev-3', 'cloud'));
    emit?.(notice('i-0000000000000009', 'ev-9', 'cloud'));
    emit?.(notice('i-0000000000000001', 'ev-1', 'cloud'));
    expect(seen.map((x) => [x.notice.id, x.provider, x.node.id, x.via])).toEqual([
      ['ev-1', 'cloud', 'i-0000000000000001', 'watch'],
      ['ev-2', 'cloud', 'vm-2', 'watch'],
      ['ev-3', 'ssh', 'gpu-host', 'watch'],
    ]);
    expect(m.stats().unmatched).toBe(1);

    // The stream fails: its nodes are polled again at once, and the stream is tried again.
    ended?.(new Error('queue unreachable'));
    await until(() => p.count('vm-2') > 0, 'vm-2 polled after the failure');
    expect(errors.some((e) => e.provider === 'cloud' && e.node === '*' && /queue unreachable/.test(String(e.error)))).toBe(true);
    await until(() => starts === 2, 'the source started again');
    const polled = p.count('vm-2');
    await sleep(150);
    expect(p.count('vm-2') - polled, 'covered again: polling stops').toBeLessThanOrEqual(1);
  });

  it('polls every node at once when it starts (and each new node when it comes), then on its slot of the interval', async () => {
    const p = new MemProvider();
    const { m } = monitor({ intervalMs: 10_000, pollTimeoutMs: 1000 });
    const ids = Array.from({ length: 20 }, (_, i) => `n-${i}`);
    m.setNodes(entries(p, ids));
    const t0 = Date.now();
    m.start();
    await until(() => m.stats().reached === 20, 'every node polled once');
    expect(Date.now() - t0, 'not a phase of the 10 s interval later').toBeLessThan(1000);
    m.setNodes(entries(p, [...ids, 'late']));
    await until(() => p.count('late') === 1, 'the new node polled at once');
    await sleep(300);
    expect(Math.max(...[...ids, 'late'].map((id) => p.count(id))), 'then no second poll before its slot').toBe(1);
  });

  it('ignores entries whose provider cannot tell notices', () => {
    const { m } = monitor();
    m.setNodes([{ provider: { name: 'static' }, node: node('x', 'static') }]);
    expect(m.stats().nodes).toBe(0);
  });
});

describe('pollPhase', () => {
  it('is stable per key and spreads keys over the interval', () => {
    expect(pollPhase('mem/a', 2000)).toBe(pollPhase('mem/a', 2000));
    const buckets = new Array<number>(10).fill(0);
    for (let i = 0; i < 1000; i++) {
      const ph = pollPhase(`aws/i-${i.toString(16).padStart(8, '0')}`, 2000);
      expect(ph).toBeGreaterThanOrEqual(0);
      expect(ph).toBeLessThan(2000);
      buckets[Math.floor(ph / 200)]!++;
    }
    // Uniform would be 100 per bucket; all at the same instant would be 1000 in one.
    for (const b of buckets) {
      expect(b).toBeGreaterThan(50);
      expect(b).toBeLessThan(150);
    }
  });
});
