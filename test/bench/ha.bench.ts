// Benchmark: the PostgreSQL state backend and HA watch, on a real PostgreSQL (its own cluster, fsync
// on, started and stopped by PID; test/lab/postgres.ts):
//   - state write latency: one update() (read the newest state, apply, compare-and-swap write) of a
//     200-workload state, PostgreSQL against the local file backend (both fsync to disk);
//   - takeover after SIGKILL: two `spotfleet watch` replicas of a fleet of local nodes; the leader
//     is killed with SIGKILL, 20 times; the time from the kill to the standby's log line saying it
//     leads and has polled every monitored node (p50 and p99);
//   - takeover on a partition: the leader reaches PostgreSQL through a relay that stops passing
//     bytes (test/lab/tcp-proxy.ts); the time from the cut until the old leader stops acting, until
//     the standby leads, and the gap between the two (the old one must stop first: > 0).
// Usage: node dist/test/bench/ha.bench.js [--runs 20] [--partition-runs 5] [--writes 200]
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openPgStateStore } from '../../src/state/postgres.js';
import { LocalStateStore, type StateStore } from '../../src/state/store.js';
import type { WorkloadRecord } from '../../src/state/types.js';
import { PgServer, postgresUnavailableReason } from '../lab/postgres.js';
import { PartitionProxy } from '../lab/tcp-proxy.js';
import { CLI } from '../e2e/helpers.js';
import { benchArg, report } from './util.js';

const RUNS = Math.round(benchArg('runs', 20));
const PARTITION_RUNS = Math.round(benchArg('partition-runs', 5));
const WRITES = Math.round(benchArg('writes', 200));


function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] ?? NaN;
}

function workload(i: number): WorkloadRecord {
  return {
    type: 'workload', address: `workload.w${i}`, name: `w${i}`, phase: 'running', gpus: 1, doneMs: 1000, generation: 1, failures: 0, recoveries: 0, preemptions: [], moves: [],
    provider: 'lab', node: `node-${i % 20}`, instanceId: `i-${i}-0123456789`, capacity: 'spot', pricePerGpuHour: 1.1, onDemandPricePerGpuHour: 3.06, since: Date.now(), specHash: 'abcdef0123456789',
  };
}

async function writeLatency(store: StateStore): Promise<number[]> {
  await store.update((s) => {
    for (let i = 0; i < 200; i++) s.resources[`workload.w${i}`] = workload(i);
  });
  const out: number[] = [];
  for (let i = 0; i < WRITES; i++) {
    const t = performance.now();
    await store.update((s) => {
      const r = s.resources[`workload.w${i % 200}`] as WorkloadRecord;
      r.doneMs += 1;
      s.pending.push({ id: `p${i}`, address: r.address, action: 'start', startedAt: Date.now(), pid: process.pid, data: {} });
      if (s.pending.length > 5) s.pending.shift();
    });
    out.push(performance.now() - t);
  }
  return out;
}

/** A watch replica: its process and the time of its first matching log line. */
class Replica {
  readonly child: ChildProcess;
  private buf = '';
  private readonly waiters: { re: RegExp; from: number; resolve: (t: number) => void }[] = [];
  private readonly lines: { msg: string; time: number }[] = [];
  constructor(dir: string, env: Record<string, string> = {}) {
    this.child = spawn(process.execPath, [CLI, 'watch', dir, '--listen', '127.0.0.1:0', '--notice-interval', '2s', '--interval', '30s'], { cwd: dir, env: { ...process.env, NO_COLOR: '1', ...env }, stdio: ['ignore', 'pipe', 'ignore'] });
    this.child.stdout?.on('data', (d: Buffer) => {
      const parts = (this.buf + d.toString()).split('\n');
      this.buf = parts.pop() ?? '';
      for (const p of parts) {
        if (!p.startsWith('{')) continue;
        try {
          const l = JSON.parse(p) as { msg: string; time: string };
          this.lines.push({ msg: l.msg, time: Date.parse(l.time) });
        } catch {
          continue;
        }
        this.check();
      }
    });
  }
  get count(): number {
    return this.lines.length;
  }
  private check(): void {
    for (const w of [...this.waiters]) {
      const hit = this.lines.slice(w.from).find((l) => w.re.test(l.msg));
      if (hit) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(hit.time);
      }
    }
  }
  wait(re: RegExp, from = 0, timeoutMs = 60_000): Promise<number> {
    return new Promise((res, rej) => {
      const t = setTimeout(() => rej(new Error(`no log line ${String(re)} within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({ re, from, resolve: (x) => { clearTimeout(t); res(x); } });
      this.check();
    });
  }
  kill(): Promise<void> {
    return new Promise((r) => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) return r();
      this.child.once('exit', () => r());
      this.child.kill('SIGKILL');
    });
  }
}

function benchFleet(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'sf-bench-ha-'));
  const nodes = Array.from({ length: 8 }, (_, i) => `        - { name: n${i}, gpuModel: V100, gpus: 4, capacity: ${i % 2 ? 'spot' : 'on-demand'}, zone: lab, pricePerHour: ${i % 2 ? 3.67 : 12.24} }`).join('\n');
  writeFileSync(join(dir, 'fleet.yaml'), `apiVersion: spotfleet.dev/v1
kind: Fleet
metadata: { name: ${name} }
providers:
  lab:
    type: local
    config:
      nodes:
${nodes}
pools:
  - { name: od, provider: lab, capacity: on-demand, gpuModel: V100 }
workloads:
  - { name: w1, command: ["sleep", "3600"], gpus: 1, gpuModel: V100, class: batch, capacity: on-demand, expectedDuration: 1h }
backend:
  type: postgres
  url: \${SPOTFLEET_PG_URL}
`);
  return dir;
}

async function destroyFleet(dir: string): Promise<void> {
  const d = spawn(process.execPath, [CLI, 'destroy', '--auto-approve', dir], { cwd: dir, stdio: 'ignore' });
  await new Promise((r) => d.once('exit', r));
  rmSync(dir, { recursive: true, force: true });
}

async function takeover(server: PgServer): Promise<number[]> {
  const dir = benchFleet('bench-ha');
  process.env.SPOTFLEET_PG_URL = server.url();
  const times: number[] = [];
  let leader = new Replica(dir);
  await leader.wait(/^polled every monitored node after taking over$/);
  let standby = new Replica(dir);
  await standby.wait(/^serving \/healthz/);
  try {
    for (let i = 0; i < RUNS; i++) {
      await new Promise((r) => setTimeout(r, 500 + Math.random() * 1000));
      const from = standby.count;
      const t0 = Date.now();
      await leader.kill();
      const t1 = await standby.wait(/^polled every monitored node after taking over$/, from, 30_000);
      times.push(t1 - t0);
      leader = standby;
      standby = new Replica(dir);
      await standby.wait(/^serving \/healthz/);
    }
  } finally {
    await leader.kill();
    await standby.kill();
    await destroyFleet(dir);
  }
  return times;
}

/** Cut the leader off from PostgreSQL: ms from the cut until it stops acting, and until the standby leads. */
async function partition(server: PgServer): Promise<{ down: number; up: number }[]> {
  const dir = benchFleet('bench-ha-partition');
  process.env.SPOTFLEET_PG_URL = server.url();
  const out: { down: number; up: number }[] = [];
  try {
    for (let i = 0; i < PARTITION_RUNS; i++) {
      const proxy = new PartitionProxy('127.0.0.1', server.port);
      await proxy.start();
      const old = new Replica(dir, { SPOTFLEET_PG_URL: server.url(undefined, { port: proxy.port }) });
      let standby: Replica | undefined;
      try {
        await old.wait(/^polled every monitored node after taking over$/, 0, 60_000);
        standby = new Replica(dir);
        await standby.wait(/^standing by$/, 0, 60_000);
        await new Promise((r) => setTimeout(r, 500 + Math.random() * 1000));
        const fromOld = old.count;
        const fromNew = standby.count;
        const t0 = Date.now();
        proxy.cut();
        const [down, up] = await Promise.all([old.wait(/^stopped leading/, fromOld, 60_000), standby.wait(/^elected leader$/, fromNew, 60_000)]);
        out.push({ down: down - t0, up: up - t0 });
      } finally {
        await old.kill();
        await standby?.kill();
        await proxy.close();
      }
    }
  } finally {
    await destroyFleet(dir);
  }
  return out;
}

async function main(): Promise<void> {
  const why = postgresUnavailableReason();
  if (why) {
    console.log(`skipped: ${why}`);
    return;
  }
  const server = await PgServer.create({ fsync: true });
  const dir = mkdtempSync(join(tmpdir(), 'sf-bench-store-'));
  try {
    const pg = await openPgStateStore({ url: server.url(), fleet: 'bench-writes' });
    const pgMs = await writeLatency(pg);
    await pg.close();
    const fileMs = await writeLatency(new LocalStateStore(dir, 'bench-writes'));
    report('state write, PostgreSQL, p50 (200 workloads)', quantile(pgMs, 0.5), 'ms', '≤ 10 ms');
    report('state write, PostgreSQL, p99', quantile(pgMs, 0.99), 'ms', '≤ 50 ms');
    report('state write, local file, p50 (200 workloads)', quantile(fileMs, 0.5), 'ms', '≤ 10 ms');
    report('state write, local file, p99', quantile(fileMs, 0.99), 'ms', '≤ 50 ms');
    const t = await takeover(server);
    report(`takeover after SIGKILL (lease 3s, ${t.length} runs), p50`, quantile(t, 0.5) / 1000, 's', '≤ 5 s');
    report('takeover after SIGKILL, p99', quantile(t, 0.99) / 1000, 's', '≤ 5 s');
    report('takeover after SIGKILL, max', Math.max(...t) / 1000, 's', '≤ 5 s');
    const cut = await partition(server);
    report(`partition: old leader stops acting (${cut.length} runs), max`, Math.max(...cut.map((x) => x.down)) / 1000, 's', 'before the standby leads');
    report('partition: standby leads, p50', quantile(cut.map((x) => x.up), 0.5) / 1000, 's', '≤ 15 s');
    report('partition: standby leads, max', Math.max(...cut.map((x) => x.up)) / 1000, 's', '≤ 15 s');
    report('partition: gap, old stops → new leads, min', Math.min(...cut.map((x) => x.up - x.down)) / 1000, 's', '> 0 s (never two leaders)');
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
