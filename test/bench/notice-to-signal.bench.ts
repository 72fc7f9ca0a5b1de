// Benchmark: notice-to-signal latency, end to end through the built CLI's `spotfleet watch`: 200
// `local` spot nodes with one tiny workload each (a real shell process, see WORKLOAD), a 1 s notice
// interval, and eviction notices posted on random nodes at random times. Per notice:
//   - posted → the workload got the signal: from the notice's receivedAt (when it was written) to
//     the time the workload itself recorded (the name of the checkpoint its USR1 trap writes),
//     whichever path signalled it: the monitor's fast path, or a reconcile that saw it first;
//   - posted → fast-path signal sent: to watch's `checkpoint signal sent` log line;
//   - seen → signal sent: the controller's `spotfleet_notice_to_signal_seconds` histogram on
//     /metrics (p50/p99 as the upper bound of the bucket holding them), and the log's durationMs.
// Notices are posted with the same provider call `spotfleet sim evict` makes
// (`simulation.evict(node, { inMs })`, here in this process), because starting one CLI process per
// eviction would load the 2 shared cores far more than the watch under test. Their deadline is far
// off and no spare capacity exists, so nodes do not die during the run (watch checkpoints and stops
// the evicted workloads, as it would with nowhere to move them).
// Usage: node dist/test/bench/notice-to-signal.bench.js [--nodes 200] [--notices 60] [--seconds 40]
import { setTimeout as sleep } from 'node:timers/promises';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadFleet } from '../../src/spec/load.js';
import { createProvider, silentLogger } from '../../src/providers/registry.js';
import type { Provider } from '../../src/providers/sdk.js';
import { CLI } from '../e2e/helpers.js';
import { benchArg, peakRssMb, report } from './util.js';


const NODES = Math.round(benchArg('nodes', 200));
const NOTICES = Math.min(NODES, Math.round(benchArg('notices', 60)));
const SECONDS = benchArg('seconds', 40);
const INTERVAL = '1s';


/**
 * The tiny workload: a shell that idles in `wait` (no polling, no forks) and, on the checkpoint
 * signal, writes a checkpoint named after the time it got the signal (ns epoch): the workload's own
 * record of when the signal arrived, and a checkpoint that the migration after a notice (and
 * destroy) verifies at once instead of waiting out the checkpoint timeout.
 */
const WORKLOAD = [
  'mkdir -p "$CHECKPOINT_DIR"',
  'sleep 1000000 & p=$!',
  'trap \'t=$(date +%s%N); echo "$t" > "$CHECKPOINT_DIR/.c"; mv "$CHECKPOINT_DIR/.c" "$CHECKPOINT_DIR/ckpt-$t"\' USR1',
  'trap \'kill $p; exit 0\' TERM',
  'while kill -0 $p 2>/dev/null; do wait $p; done',
].join('; ');

/** When the workload on a node first got the checkpoint signal (ms epoch), from its checkpoint names. */
function firstSignalAt(dir: string, node: string): number | undefined {
  const root = join(dir, '.spotfleet', 'providers', 'lab', 'nodes', node, 'checkpoints');
  let first: number | undefined;
  for (const w of existsSync(root) ? readdirSync(root) : []) {
    for (const f of readdirSync(join(root, w))) {
      const m = /^ckpt-(\d+)$/.exec(f);
      if (m?.[1]) first = Math.min(first ?? Infinity, Number(BigInt(m[1]) / 1_000_000n));
    }
  }
  return first;
}

function fleetYaml(n: number): string {
  const nodes = Array.from({ length: n }, (_, i) => `        - { name: n-${String(i).padStart(3, '0')}, gpuModel: V100, gpus: 1, capacity: spot, zone: lab, pricePerHour: 0.9 }`).join('\n');
  const workloads = Array.from(
    { length: n },
    (_, i) => `  - name: w-${String(i).padStart(3, '0')}
    command: ["sh", "-c", ${JSON.stringify(WORKLOAD)}]
    gpus: 1
    gpuModel: V100
    class: batch
    capacity: spot
    expectedDuration: 8h`,
  ).join('\n');
  return `apiVersion: spotfleet.dev/v1
kind: Fleet
metadata: { name: notice-bench }
providers:
  lab:
    type: local
    config:
      nodes:
${nodes}
pools:
  - { name: spot-lab, provider: lab, capacity: spot, gpuModel: V100 }
defaults:
  checkpoint: { path: /checkpoints, signal: SIGUSR1, stopGrace: 5s, resumeEnv: RESUME_FROM_CHECKPOINT }
workloads:
${workloads}
`;
}

interface LogLine {
  time: string;
  msg: string;
  action?: string;
  address?: string;
  node?: string;
  durationMs?: number;
}


function cli(args: string[], cwd: string): Promise<{ code: number; out: string }> {
  return new Promise((res) => {
    const c = spawn(process.execPath, [CLI, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (out += d.toString()));
    c.on('close', (code) => res({ code: code ?? 1, out }));
  });
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN;
}

const dir = mkdtempSync(join(tmpdir(), 'sf-bench-n2s-'));
writeFileSync(join(dir, 'fleet.yaml'), fleetYaml(NODES));
const lines: LogLine[] = [];
let partial = '';
const watch = spawn(process.execPath, [CLI, 'watch', dir, '--listen', '127.0.0.1:0', '--notice-interval', INTERVAL, '--interval', '30s', '--price-interval', '5m'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
let stderr = '';
watch.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
watch.stdout.on('data', (d: Buffer) => {
  const parts = (partial + d.toString()).split('\n');
  partial = parts.pop() ?? '';
  for (const p of parts) {
    try {
      lines.push(JSON.parse(p) as LogLine);
    } catch {
      // not a log line
    }
  }
});
const exited = new Promise<number | null>((r) => watch.on('close', (code) => r(code)));

let provider: Provider | undefined;
try {
  // Wait for every workload to run (the first reconcile starts them all).
  const t0 = performance.now();
  const until = Date.now() + 300_000;
  while (lines.filter((l) => l.msg === 'start ok').length < NODES) {
    if (watch.exitCode !== null) throw new Error(`watch exited\n${stderr}`);
    if (Date.now() > until) throw new Error(`only ${lines.filter((l) => l.msg === 'start ok').length} of ${NODES} workloads started in 300 s`);
    await sleep(200);
  }
  while (!lines.some((l) => l.msg === 'reconciled')) await sleep(100);
  const startupS = (performance.now() - t0) / 1000;
  const info = JSON.parse(readFileSync(join(dir, '.spotfleet', 'watch.json'), 'utf8')) as { listen: string };
  // One interval so that every node has been polled once, as in a running watch.
  await sleep(2000);

  const { fleet } = await loadFleet(dir);
  const spec = fleet.providers[0];
  if (!spec) throw new Error('no provider');
  provider = await createProvider(spec, { fleet: fleet.name, specDir: fleet.dir, stateDir: join(dir, '.spotfleet'), log: silentLogger });
  const nodes = await provider.nodes?.list();
  if (!nodes || nodes.length !== NODES) throw new Error(`expected ${NODES} nodes`);
  // NOTICES distinct random nodes, each at a random time within SECONDS.
  const order = [...nodes].sort(() => Math.random() - 0.5).slice(0, NOTICES);
  const posted = new Map<string, number>();
  const cpu0 = process.cpuUsage();
  await Promise.all(
    order.map(async (node) => {
      await sleep(Math.random() * SECONDS * 1000);
      const n = await provider?.simulation?.evict(node, { inMs: 600_000 });
      if (n) posted.set(node.id, Date.parse(n.receivedAt));
    }),
  );
  // Every notice is signalled within an interval plus a poll; wait for the last ones.
  const deadline = Date.now() + 10_000;
  const got = (): Map<string, number> => {
    const m = new Map<string, number>();
    for (const node of posted.keys()) {
      const t = firstSignalAt(dir, node);
      if (t !== undefined) m.set(node, t);
    }
    return m;
  };
  while (got().size < posted.size && Date.now() < deadline) await sleep(200);
  await sleep(1000);

  // End to end, as the workload saw it: notice written → the workload's first checkpoint signal,
  // whichever path sent it (the monitor's fast path, or a reconcile that saw the notice first).
  const e2e: number[] = [];
  for (const [node, t] of got()) e2e.push((t - (posted.get(node) as number)) / 1000);
  e2e.sort((a, b) => a - b);
  // The fast path alone, from watch's log.
  const sent = lines.filter((l) => l.msg === 'checkpoint signal sent');
  const fast: number[] = [];
  for (const l of sent) {
    const at = l.node !== undefined ? posted.get(l.node) : undefined;
    if (at !== undefined) fast.push((Date.parse(l.time) - at) / 1000);
  }
  fast.sort((a, b) => a - b);
  const seenToSignal = sent.map((l) => (l.durationMs ?? NaN) / 1000).sort((a, b) => a - b);

  // The controller's histogram on /metrics.
  const text = await (await fetch(`http://${info.listen}/metrics`)).text();
  const buckets: { le: number; count: number }[] = [];
  let count = 0;
  for (const line of text.split('\n')) {
    const b = /^spotfleet_notice_to_signal_seconds_bucket\{le="([^"]+)"[^}]*\} (\S+)$/.exec(line);
    if (b) buckets.push({ le: b[1] === '+Inf' ? Infinity : Number(b[1]), count: Number(b[2]) });
    const c = /^spotfleet_notice_to_signal_seconds_count(?:\{[^}]*\})? (\S+)$/.exec(line);
    if (c) count += Number(c[1]);
  }
  const q = (p: number): number => buckets.find((b) => b.count >= p * count)?.le ?? NaN;
  const pollErrors = lines.filter((l) => l.msg === 'notice poll failed').length;
  // The fast path finds the workload already checkpointed and stopped when a reconcile got there first.
  const lateSignals = lines.filter((l) => l.msg === 'checkpoint signal failed').length;

  console.log(`${NODES} local spot nodes (one sh + sleep workload each, under the local runtime's supervisor), notice interval ${INTERVAL}, ${posted.size} notices at random times over ${SECONDS} s; watch started them all in ${startupS.toFixed(1)} s`);
  report('workloads that got the signal', e2e.length, `of ${posted.size}`);
  report('notice posted -> workload got signal p50', pct(e2e, 50), 's');
  report('notice posted -> workload got signal p99', pct(e2e, 99), 's', '<= 1.5 s');
  report('notice posted -> workload got signal max', e2e.at(-1) ?? NaN, 's');
  report('signals sent by the monitor fast path', fast.length, `of ${posted.size}`);
  report('  notice posted -> fast-path signal sent p50 (log)', pct(fast, 50), 's');
  report('  notice posted -> fast-path signal sent p99 (log)', pct(fast, 99), 's');
  report('  notice seen -> signal sent p50 (log)', pct(seenToSignal, 50), 's');
  report('  notice seen -> signal sent p99 (log)', pct(seenToSignal, 99), 's');
  report('  notice_to_signal_seconds p50 (/metrics bucket)', q(0.5), 's');
  report('  notice_to_signal_seconds p99 (/metrics bucket)', q(0.99), 's');
  report('fast-path signals too late (reconcile was first)', lateSignals, '');
  report('notice poll errors', pollErrors, '');
  report('bench process CPU while posting', (process.cpuUsage(cpu0).user + process.cpuUsage(cpu0).system) / 1e6, 's');
  report('bench process peak RSS', peakRssMb(), 'MB');
  if (e2e.length < posted.size || pollErrors > 0) process.exitCode = 1;
} catch (e) {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
} finally {
  await provider?.close?.();
  watch.kill('SIGTERM');
  const t = setTimeout(() => watch.kill('SIGKILL'), 30_000);
  await exited;
  clearTimeout(t);
  const d = await cli(['destroy', '--auto-approve', dir], dir);
  if (d.code !== 0) {
    console.error(`destroy failed (processes may be left; the fleet is in ${dir}):\n${d.out}`);
    process.exitCode = 1;
  } else rmSync(dir, { recursive: true, force: true });
}
