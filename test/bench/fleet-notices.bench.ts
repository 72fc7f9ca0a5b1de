// Benchmark: 10,000 spot nodes heard through the fleet-level AWS source. The SQS fake runs in its
// own process (as SQS is elsewhere); EventBridge's Spot interruption warnings for 60 random nodes
// are put on the queue at random times over 40 s. This process is the controller's notice path:
// the aws provider (interruptionQueue, the real SDK long-polling the fake), the notice monitor
// over all 10,000 nodes, and the fast path's step (the node's workloads looked up and signalled;
// the signal itself is recorded, no process is spawned). Prints notice → signal p50/p99 (queued →
// signalled), the CPU this process used over the window (share of one core) and its peak RSS.
// It does not run the reconcile loop: see plan.bench for a plan over 10,000 nodes.
// Usage: node dist/test/bench/fleet-notices.bench.js [--nodes 10000] [--notices 60] [--seconds 40]
import { setTimeout as sleep } from 'node:timers/promises';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join, resolve } from 'node:path';
import type { NodeInfo } from '../../src/core/types.js';
import { createProvider, silentLogger } from '../../src/providers/registry.js';
import { NoticeMonitor, type SeenNotice } from '../../src/watch/notice-monitor.js';
import { benchArg, peakRssMb, report } from './util.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';

const NODES = Math.round(benchArg('nodes', 10_000));
const NOTICES = Math.min(NODES, Math.round(benchArg('notices', 60)));
const SECONDS = benchArg('seconds', 40);
const pct = (xs: number[], p: number): number => xs[Math.min(xs.length - 1, Math.max(0, Math.ceil((p / 100) * xs.length) - 1))] ?? NaN;

// The fake SQS in a child process: prints its endpoint and queue URL, then for each line
// "send INSTANCE" queues a Spot interruption warning and prints "sent INSTANCE MS".
const fakeModule = resolve(import.meta.dirname, '../fakes/sqs.js');
const childCode = `
const { startFakeSqs, spotInterruptionEvent } = await import(${JSON.stringify(fakeModule)});
const { createInterface } = await import('node:readline');
const sqs = await startFakeSqs();
const url = sqs.control.createQueue('fleet-interruptions');
console.log(JSON.stringify({ endpoint: sqs.url, url }));
createInterface({ input: process.stdin }).on('line', (l) => {
  const [cmd, id] = l.split(' ');
  if (cmd === 'send') { const at = Date.now(); sqs.control.send(url, spotInterruptionEvent(id, { at })); console.log('sent ' + id + ' ' + at); }
  if (cmd === 'quit') sqs.close().then(() => process.exit(0));
});`;
const child = spawn(process.execPath, ['--input-type=module', '-e', childCode], { stdio: ['pipe', 'pipe', 'inherit'] });
const lines = createInterface({ input: child.stdout });
const sentAt = new Map<string, number>();
let ready: ((v: { endpoint: string; url: string }) => void) | undefined;
const started = new Promise<{ endpoint: string; url: string }>((r) => (ready = r));
lines.on('line', (l) => {
  if (l.startsWith('{')) ready?.(JSON.parse(l) as { endpoint: string; url: string });
  const m = /^sent (\S+) (\d+)$/.exec(l);
  if (m?.[1] && m[2]) sentAt.set(m[1], Number(m[2]));
});

const dataDir = mkdtempSync(join(tmpdir(), 'sf-bench-fleet-'));
try {
  const { endpoint, url } = await started;
  const provider = await createProvider(
    { name: 'cloud', type: 'aws', config: { interruptionQueue: { url, endpoint, region: 'us-east-1' } } },
    { fleet: 'bench', specDir: dataDir, stateDir: dataDir, log: silentLogger, env: { AWS_ACCESS_KEY_ID: 'AKIDBENCH', AWS_SECRET_ACCESS_KEY: 'bench-secret' } },
  );
  const id = (i: number): string => `i-${i.toString(16).padStart(17, '0')}`;
  const nodes: NodeInfo[] = Array.from({ length: NODES }, (_, i) => ({ id: id(i), provider: 'cloud', gpuModel: 'V100', gpus: 1, capacity: 'spot', zone: `us-east-1${'abcd'[i % 4] as string}`, pricePerHour: 0.9, state: 'ready', leaseId: id(i) }));
  // One workload per node, as the fast path finds them (by provider and node).
  const workloads = new Map(nodes.map((n) => [n.id, [{ id: `w-${n.id}`, node: n.id, workload: `w-${n.id}` }]]));
  const signalledAt = new Map<string, number>();
  const onNotice = (s: SeenNotice): void => {
    for (const w of workloads.get(s.node.id) ?? []) if (!signalledAt.has(w.node)) signalledAt.set(w.node, Date.now());
  };
  let errors = 0;
  const monitor = new NoticeMonitor({ intervalMs: 1000, onNotice, onError: () => errors++ });
  monitor.setNodes(nodes.map((node) => ({ provider, node })));
  monitor.start();
  await sleep(2000);

  const victims = [...nodes].sort(() => Math.random() - 0.5).slice(0, NOTICES);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    victims.map(async (n) => {
      await sleep(Math.random() * SECONDS * 1000);
      child.stdin.write(`send ${n.id}\n`);
    }),
  );
  const until = Date.now() + 10_000;
  while (signalledAt.size < NOTICES && Date.now() < until) await sleep(100);
  const cpu = process.cpuUsage(cpu0);
  const wallS = (performance.now() - t0) / 1000;

  const lat: number[] = [];
  for (const n of victims) {
    const s = signalledAt.get(n.id);
    const q = sentAt.get(n.id);
    if (s !== undefined && q !== undefined) lat.push((s - q) / 1000);
  }
  lat.sort((a, b) => a - b);
  const stats = monitor.stats();
  console.log(`${NODES} spot nodes behind the SQS fake (its own process); ${NOTICES} Spot interruption warnings at random times over ${SECONDS} s; notice monitor interval 1 s`);
  report('notices signalled', lat.length, `of ${NOTICES}`);
  report('notice queued -> checkpoint signal p50', pct(lat, 50), 's');
  report('notice queued -> checkpoint signal p99', pct(lat, 99), 's', '<= 1.5 s');
  report('controller CPU over the window (share of one core)', ((cpu.user + cpu.system) / 1e6 / wallS) * 100, '%', '< 50 %');
  report('controller peak RSS', peakRssMb(), 'MB', '< 500 MB');
  report('per-node polls while the queue ran', stats.polls, '', '0 (all nodes covered)');
  report('nodes covered by the fleet source', stats.covered, `of ${NODES}`);
  report('monitor errors', errors, '');
  await monitor.stop();
  await provider.close?.();
  // For comparison, the per-node shape: the same monitor polling all nodes every second through a
  // poll that costs nothing (no metadata request at all): the monitor's own overhead alone.
  const free = { name: 'perNode', notices: { poll: async (): Promise<never[]> => Promise.resolve([]) } };
  const perNode = new NoticeMonitor({ intervalMs: 1000, onNotice: () => undefined });
  perNode.setNodes(nodes.map((node) => ({ provider: free, node })));
  perNode.start();
  await sleep(2000);
  const c1 = process.cpuUsage();
  const w1 = performance.now();
  await sleep(10_000);
  const cpuPer = process.cpuUsage(c1);
  const polls = perNode.stats().polls;
  await perNode.stop();
  report('for comparison: per-node polling (free polls), CPU', ((cpuPer.user + cpuPer.system) / 1e6 / ((performance.now() - w1) / 1000)) * 100, '%');
  report('  polls in those 12 s', polls, '');
  if (lat.length < NOTICES || errors > 0) process.exitCode = 1;
} finally {
  child.stdin.write('quit\n');
  const t = setTimeout(() => child.kill('SIGKILL'), 5000);
  await new Promise((r) => child.on('close', r));
  clearTimeout(t);
  rmSync(dataDir, { recursive: true, force: true });
}
