// Benchmark: what does the notice monitor cost while it manages 1,000 spot nodes at a 2 s notice
// interval? Prints CPU as % of one core (process.cpuUsage over the measured window) and peak RSS.
// Usage: node dist/test/bench/watch-idle.bench.js [--seconds N] (default 60)
import type { NodeInfo, Notice } from '../../src/core/types.js';
import { NoticeMonitor } from '../../src/watch/notice-monitor.js';
import { peakRssMb, report } from './util.js';

function argSeconds(def: number): number {
  const i = process.argv.indexOf('--seconds');
  const v = i >= 0 ? Number(process.argv[i + 1]) : def;
  return Number.isFinite(v) && v > 0 ? v : def;
}

const NODES = 1000;
const INTERVAL_MS = 2000;
const seconds = argSeconds(60);

const none: Notice[] = [];
const provider = {
  name: 'mem',
  notices: { poll: async (_n: NodeInfo): Promise<Notice[]> => none },
};
const nodes: NodeInfo[] = Array.from({ length: NODES }, (_, i) => ({
  id: `i-${i.toString(16).padStart(8, '0')}`,
  provider: 'mem',
  gpuModel: 'A100',
  gpus: 8,
  capacity: 'spot',
  zone: `zone-${i % 4}`,
  pricePerHour: 9.5,
  state: 'ready',
  labels: { pool: 'spot-a100' },
}));

let errors = 0;
const mon = new NoticeMonitor({ intervalMs: INTERVAL_MS, onNotice: () => undefined, onError: () => errors++ });
mon.setNodes(nodes.map((node) => ({ provider, node })));
mon.start();

// One interval of warm-up (first polls, JIT), then measure.
await new Promise((r) => setTimeout(r, INTERVAL_MS));
const polls0 = mon.stats().polls;
const cpu0 = process.cpuUsage();
const t0 = performance.now();
// Replace the node set every 30 s as reconciles do (same nodes, fresh objects).
const reconcile = setInterval(() => mon.setNodes(nodes.map((node) => ({ provider, node: { ...node } }))), 30_000);
await new Promise((r) => setTimeout(r, seconds * 1000));
clearInterval(reconcile);
const cpu = process.cpuUsage(cpu0);
const wallMs = performance.now() - t0;
const polls = mon.stats().polls - polls0;
await mon.stop();

const cpuPct = ((cpu.user + cpu.system) / 1000 / wallMs) * 100;
console.log(`${NODES} in-memory spot nodes, notice interval ${INTERVAL_MS} ms, measured over ${(wallMs / 1000).toFixed(1)} s`);
report('polls per second', polls / (wallMs / 1000), '/s', `${NODES / (INTERVAL_MS / 1000)} /s`);
report('CPU, % of one core', cpuPct, '%', '< 10%');
report('peak RSS', peakRssMb(), 'MB', '< 200 MB');
if (errors > 0) {
  console.error(`${errors} poll errors`);
  process.exitCode = 1;
}
