// Benchmark: how long after a notice appears on a node does the notice monitor report it?
// 200 in-memory spot nodes polled every 1 s; notices appear at random times on random nodes; the
// time from appearing to the monitor's callback is the notice part of notice-to-signal.
// Usage: node dist/test/bench/notice-latency.bench.js [--seconds N] (default 30)
import type { NodeInfo, Notice } from '../../src/core/types.js';
import { NoticeMonitor } from '../../src/watch/notice-monitor.js';
import { peakRssMb, report } from './util.js';

function argSeconds(def: number): number {
  const i = process.argv.indexOf('--seconds');
  const v = i >= 0 ? Number(process.argv[i + 1]) : def;
  return Number.isFinite(v) && v > 0 ? v : def;
}

const NODES = 200;
const INTERVAL_MS = 1000;
const seconds = argSeconds(30);

/** In-memory spot market: notices posted per node, read by a poll that costs a microtask. */
const posted = new Map<string, Notice[]>();
const appearedAt = new Map<string, number>();
const provider = {
  name: 'mem',
  notices: {
    poll: async (n: NodeInfo): Promise<Notice[]> => posted.get(n.id) ?? [],
  },
};
const nodes: NodeInfo[] = Array.from({ length: NODES }, (_, i) => ({
  id: `i-${i.toString(16).padStart(8, '0')}`,
  provider: 'mem',
  gpuModel: 'V100',
  gpus: 1,
  capacity: 'spot',
  pricePerHour: 0.9,
  state: 'ready',
}));

const latencies: number[] = [];
const mon = new NoticeMonitor({
  intervalMs: INTERVAL_MS,
  onNotice: (s) => {
    const t0 = appearedAt.get(s.notice.id);
    if (t0 !== undefined) latencies.push(performance.now() - t0);
  },
  onError: (e) => console.error('poll error', e.node, e.error),
});
mon.setNodes(nodes.map((node) => ({ provider, node })));
mon.start();

// Let every node get its first poll before notices start, as in a running watch.
await new Promise((r) => setTimeout(r, INTERVAL_MS));

// ~7 notices a second at random times, each on a random node.
const events = Math.max(20, Math.round(seconds * 7));
const horizon = seconds * 1000;
let seq = 0;
const timers: Promise<void>[] = [];
for (let k = 0; k < events; k++) {
  const at = Math.random() * horizon;
  timers.push(
    new Promise<void>((resolve) =>
      setTimeout(() => {
        const node = nodes[Math.floor(Math.random() * nodes.length)] as NodeInfo;
        const id = `notice-${++seq}`;
        const notice: Notice = {
          id,
          provider: 'mem',
          node: node.id,
          source: 'sim',
          kind: 'preemption',
          deadline: new Date(Date.now() + 120_000).toISOString(),
          receivedAt: new Date().toISOString(),
        };
        appearedAt.set(id, performance.now());
        posted.set(node.id, [...(posted.get(node.id) ?? []), notice]);
        resolve();
      }, at),
    ),
  );
}
await Promise.all(timers);
// Every notice is seen within one interval plus a poll; wait for the last ones.
const deadline = performance.now() + 3 * INTERVAL_MS;
while (latencies.length < events && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
await mon.stop();

const sorted = [...latencies].sort((a, b) => a - b);
const pct = (p: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN;
console.log(`${NODES} in-memory spot nodes, notice interval ${INTERVAL_MS} ms, ${events} notices over ${seconds} s`);
report('notices seen', latencies.length, `of ${events}`);
report('notice appeared -> monitor callback p50', pct(50) / 1000, 's');
report('notice appeared -> monitor callback p99', pct(99) / 1000, 's', '<= 1.5 s');
report('notice appeared -> monitor callback max', (sorted[sorted.length - 1] ?? NaN) / 1000, 's');
report('peak RSS', peakRssMb(), 'MB');
if (latencies.length < events) {
  console.error(`missed ${events - latencies.length} notices`);
  process.exitCode = 1;
}
