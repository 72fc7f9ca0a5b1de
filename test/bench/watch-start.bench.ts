// Benchmark: how soon a starting `spotfleet watch` hears notices. A fleet like the e2e watch tests'
// (two `local` on-demand nodes and a `sim` spot market) is applied with WORKLOADS trainers, so sim
// leases are nodes; then watch starts (the built CLI, 1 s notice interval) and this polls its
// /status every 20 ms for the time the notice monitor had heard every node (`allReachedAt`). Prints, per run: process start →
// every node's first notice poll answered, and process start → the first reconcile finished (from
// the log). The monitor starts from the recorded state and last observation, so the first must come
// before the second. SSH nodes need the lab (network namespaces, sshd): ssh-eviction.bench.ts
// measures the same on SSH nodes, for every watch it starts.
// Usage: node dist/test/bench/watch-start.bench.js [--runs 3] [--workloads 6]
import { setTimeout as sleep } from 'node:timers/promises';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, ROOT } from '../e2e/helpers.js';
import { benchArg, report } from './util.js';


function fleetYaml(n: number): string {
  const wl = Array.from({ length: n }, (_, i) => `  - name: train-${i}
    command: ["node", ${JSON.stringify(join(ROOT, 'examples/quickstart/trainer.mjs'))}]
    gpus: 1
    gpuModel: V100
    class: training
    capacity: spot
    expectedDuration: 8h
    env: { STEP_MS: "200", CHECKPOINT_EVERY: "50" }
    fallback: { to: on-demand, minDwell: 2m }`).join('\n');
  return `apiVersion: spotfleet.dev/v1
kind: Fleet
metadata: { name: watch-start }
providers:
  lab:
    type: local
    config:
      nodes:
        - { name: od-1, gpuModel: V100, gpus: 4, capacity: on-demand, zone: lab, pricePerHour: 12.24 }
        - { name: od-2, gpuModel: V100, gpus: 4, capacity: on-demand, zone: lab, pricePerHour: 12.24 }
  market:
    type: sim
    config: { trace: ${JSON.stringify(join(ROOT, 'examples/quickstart/traces'))}, gpuModel: V100, speed: 1, noticeWindow: 120s }
pools:
  - { name: spot-v100, provider: market, capacity: spot, gpuModel: V100, maxPricePerHour: 2.0 }
  - { name: od-v100, provider: lab, capacity: on-demand, gpuModel: V100 }
defaults:
  checkpoint: { path: /checkpoints, signal: SIGUSR1, stopGrace: 10s, resumeEnv: RESUME_FROM_CHECKPOINT }
workloads:
${wl}
`;
}

function cli(args: string[], cwd: string): { code: number; out: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, timeout: 240_000 });
  return { code: r.status ?? 1, out: `${r.stdout}${r.stderr}` };
}

const RUNS = Math.round(benchArg('runs', 3));
const WORKLOADS = Math.round(benchArg('workloads', 6));
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

interface Status {
  monitor?: { nodes: number; reached: number; allReachedAt?: number };
}

const dir = mkdtempSync(join(tmpdir(), 'sf-bench-watch-start-'));
writeFileSync(join(dir, 'fleet.yaml'), fleetYaml(WORKLOADS));
const reachedMs: number[] = [];
const reconciledMs: number[] = [];
let nodes = 0;
try {
  const setup = cli(['apply', '--auto-approve', dir], dir);
  if (setup.code !== 0) throw new Error(`apply failed:\n${setup.out}`);
  for (let r = 0; r < RUNS; r++) {
    const t0 = Date.now();
    const w = spawn(process.execPath, [CLI, 'watch', dir, '--listen', '127.0.0.1:0', '--notice-interval', '1s', '--interval', '30s', '--price-interval', '5m'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    let out = '';
    let reconciledAt: number | undefined;
    w.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (reconciledAt === undefined) {
        for (const line of out.split('\n')) {
          if (!line.includes('"msg":"reconciled"')) continue;
          reconciledAt = Date.parse((JSON.parse(line) as { time: string }).time);
          break;
        }
      }
    });
    w.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise((r) => w.on('close', r));
    let listen: string | undefined;
    let reachedAt: number | undefined;
    const until = Date.now() + 120_000;
    while ((reachedAt === undefined || reconciledAt === undefined) && Date.now() < until) {
      if (w.exitCode !== null) throw new Error(`watch exited\n${out.slice(-3000)}`);
      try {
        listen ??= (JSON.parse(readFileSync(join(dir, '.spotfleet', 'watch.json'), 'utf8')) as { listen?: string }).listen;
        if (listen && reachedAt === undefined) {
          const st = (await (await fetch(`http://${listen}/status`)).json()) as Status;
          if (st.monitor?.allReachedAt !== undefined) {
            reachedAt = st.monitor.allReachedAt;
            nodes = st.monitor.nodes;
          }
        }
      } catch {
        // not up yet
      }
      await sleep(20);
    }
    w.kill('SIGTERM');
    await exited;
    if (reachedAt === undefined || reconciledAt === undefined) throw new Error(`no ${reachedAt === undefined ? 'full first poll' : 'first reconcile'} within 120 s\n${out.slice(-3000)}`);
    reachedMs.push(reachedAt - t0);
    reconciledMs.push(reconciledAt - t0);
  }
  console.log(`spotfleet watch on ${nodes} nodes (local on-demand + sim spot leases), notice interval 1 s; ${RUNS} starts`);
  report('watch start -> every node polled once, median', median(reachedMs), 'ms', 'before the first reconcile finishes');
  report('watch start -> first reconcile finished, median', median(reconciledMs), 'ms');
  report('starts where every node was polled first', reachedMs.filter((x, i) => x < (reconciledMs[i] ?? 0)).length, `of ${RUNS}`);
  for (let i = 0; i < RUNS; i++) console.log(`  run ${i + 1}: polled all ${reachedMs[i]} ms, reconciled ${reconciledMs[i]} ms`);
} catch (e) {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
} finally {
  const d = cli(['destroy', '--auto-approve', dir], dir);
  if (d.code !== 0) {
    console.error(`destroy failed (processes may be left; the fleet is in ${dir}):\n${d.out}`);
    process.exitCode = 1;
  } else rmSync(dir, { recursive: true, force: true });
}
