// Benchmark: `spotfleet plan` through the built CLI on a local-provider fleet with 10 workloads per
// node, at 1k/100, 10k/1k and 20k/2k (workloads/nodes): load + validate, provider start, refresh
// (listing and reading every instance folder, every node's notice files), plan and text rendering.
// Half the workloads already run: each has an instance folder as the local runtime writes it (its
// supervisor pid is one long-lived `sleep` this benchmark starts, with its real start time, so the
// runtime sees it alive) and a state record, as apply would have left them.
// Prints wall and CPU time per size and the cost per 1,000 workloads (linear: flat).
// Usage: node dist/test/bench/plan-cli.bench.js [--runs N] [--sizes 1000/100,10000/1000,...] [--profile DIR]
//   --profile: write a V8 CPU profile of each CLI run into DIR (for finding where the time goes)
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadFleet } from '../../src/spec/load.js';
import { STATE_VERSION, type StateFile, type WorkloadRecord } from '../../src/state/types.js';
import { report } from './util.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const CLI = join(ROOT, 'dist/src/cli/main.js');
const argOf = (name: string): string | undefined => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const RUNS = Number(argOf('--runs') ?? 3) || 3;
const SIZES: [number, number][] = (argOf('--sizes') ?? '1000/100,10000/1000,20000/2000').split(',').map((s) => s.split('/').map(Number) as [number, number]);
const PROFILE = argOf('--profile');
const NODE_ARGS = PROFILE ? ['--cpu-prof', '--cpu-prof-dir', resolve(PROFILE)] : [];
const NOW = Date.now();
const pad = (i: number): string => String(i).padStart(6, '0');

function procStart(pid: number): string {
  const t = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return t.slice(t.lastIndexOf(')') + 2).split(' ')[19] ?? '';
}

/** Writes the fleet, the running half's instance folders and the state into `dir`. */
async function seed(dir: string, workloads: number, nodes: number, sup: { pid: number; start: string }): Promise<void> {
  const L = ['apiVersion: spotfleet.dev/v1', 'kind: Fleet', 'metadata: { name: clibench }', 'providers:', '  lab:', '    type: local', '    config:', '      nodes:'];
  for (let i = 0; i < nodes; i++) {
    L.push(`        - { name: n-${pad(i)}, gpuModel: V100, gpus: 16, capacity: ${i % 2 ? 'spot' : 'on-demand'}, zone: z${i % 4}, pricePerHour: ${i % 2 ? 16 + (i % 4) : 48} }`);
  }
  L.push(
    'pools:',
    '  - { name: spot, provider: lab, capacity: spot, gpuModel: V100 }',
    '  - { name: od, provider: lab, capacity: on-demand, gpuModel: V100 }',
    'defaults:',
    '  checkpoint: { path: /checkpoints, signal: SIGUSR1, stopGrace: 20s }',
    'workloads:',
  );
  for (let i = 0; i < workloads; i++) {
    L.push(`  - name: w-${pad(i)}`, '    command: ["node", "train.mjs"]', `    gpus: ${i % 7 === 0 ? 2 : 1}`, '    gpuModel: V100', `    class: ${i % 10 === 0 ? 'serving' : 'training'}`, `    capacity: ${i % 10 === 0 ? 'on-demand' : 'auto'}`, '    expectedDuration: 8h', '    fallback: { to: on-demand, minDwell: 30m }');
  }
  writeFileSync(join(dir, 'fleet.yaml'), `${L.join('\n')}\n`);
  // The running half runs its current spec: a steady-state plan, not a fleet-wide restart.
  const { fleet } = await loadFleet(join(dir, 'fleet.yaml'));
  const hash = new Map(fleet.workloads.map((w) => [w.name, w.specHash]));

  const state: StateFile = { version: STATE_VERSION, serial: 7, lineage: 'bench-lineage', fleet: 'clibench', resources: {}, pending: [], ledger: [], fleetMode: { mode: 'active', at: NOW, by: 'apply' } };
  const nodesRoot = join(dir, '.spotfleet/providers/lab/nodes');
  for (let i = 0; i < workloads / 2; i++) {
    const name = `w-${pad(i)}`;
    // Round robin over nodes of the right capacity: serving ones on on-demand (even) nodes.
    const odOnly = i % 10 === 0;
    const n = odOnly ? (2 * i) % nodes : ((2 * i + 1) % nodes) | 1;
    const node = `n-${pad(n % nodes)}`;
    const id = `${name}-bench${pad(i)}`;
    const inst = join(nodesRoot, node, 'workloads', id);
    mkdirSync(inst, { recursive: true });
    const since = NOW - 3_600_000;
    const ckpt = join(nodesRoot, node, 'checkpoints', name);
    writeFileSync(join(inst, 'record.json'), JSON.stringify({ version: 1, id, provider: 'lab', fleet: 'clibench', workload: name, node, argv: ['node', 'train.mjs'], envKeys: [], cwd: dir, gpus: i % 7 === 0 ? 2 : 1, labels: { 'spotfleet.fleet': 'clibench', 'spotfleet.workload': name }, specHash: hash.get(name), startedAt: new Date(since).toISOString(), checkpointDir: ckpt, supervisor: sup }));
    writeFileSync(join(inst, 'pids.json'), JSON.stringify({ supervisor: sup }));
    const spot = n % 2 === 1;
    const rec: WorkloadRecord = {
      type: 'workload', address: `workload.${name}`, name, phase: 'running', provider: 'lab', node, instanceId: id, pool: spot ? 'spot' : 'od', capacity: spot ? 'spot' : 'on-demand', zone: `z${n % 4}`,
      pricePerGpuHour: spot ? (16 + (n % 4)) / 16 : 3, onDemandPricePerGpuHour: 3, gpus: i % 7 === 0 ? 2 : 1, specHash: hash.get(name) as string, since, doneMs: 0, generation: 1, incarnation: 's1', failures: 0, recoveries: 0, preemptions: [], moves: [],
    };
    state.resources[rec.address] = rec;
  }
  writeFileSync(join(dir, '.spotfleet/state.json'), `${JSON.stringify(state)}\n`);
}

/** One `plan` run: wall ms, and CPU ms of the CLI process when /usr/bin/time is there. */
function planOnce(dir: string): { wallMs: number; cpuMs?: number; rssMb?: number; out: string } {
  const time = existsSync('/usr/bin/time');
  const statFile = join(dir, '.time');
  const argv = ['plan', '--no-lock', '--detailed-exitcode'];
  const t0 = performance.now();
  const r = time
    ? spawnSync('/usr/bin/time', ['-o', statFile, '-f', '%U %S %M', process.execPath, ...NODE_ARGS, CLI, ...argv], { cwd: dir, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, maxBuffer: 1 << 30 })
    : spawnSync(process.execPath, [...NODE_ARGS, CLI, ...argv], { cwd: dir, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, maxBuffer: 1 << 30 });
  const wallMs = performance.now() - t0;
  if (r.status !== 2) throw new Error(`plan exited ${r.status}: ${r.stderr.slice(0, 2000)}`);
  if (!time) return { wallMs, out: r.stdout };
  const [u, s, m] = readFileSync(statFile, 'utf8').trim().split('\n').at(-1)!.split(' ').map(Number) as [number, number, number];
  return { wallMs, cpuMs: (u + s) * 1000, rssMb: m / 1024, out: r.stdout };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

const sleeper = spawn('sleep', ['3600'], { stdio: 'ignore' });
const sup = { pid: sleeper.pid as number, start: procStart(sleeper.pid as number) };
const root = mkdtempSync(join(tmpdir(), 'spotfleet-plan-cli-'));
try {
  console.log(`spotfleet plan through the CLI: local provider, 10 workloads a node, half running; median of ${RUNS}`);
  let firstPer: number | undefined;
  for (const [w, n] of SIZES) {
    const dir = join(root, `${w}-${n}`);
    mkdirSync(join(dir, '.spotfleet'), { recursive: true });
    await seed(dir, w, n, sup);
    const walls: number[] = [];
    const cpus: number[] = [];
    let rss = 0;
    let last = '';
    for (let r = 0; r < RUNS; r++) {
      const x = planOnce(dir);
      walls.push(x.wallMs);
      if (x.cpuMs !== undefined) cpus.push(x.cpuMs);
      rss = Math.max(rss, x.rssMb ?? 0);
      last = x.out;
    }
    const summary = last.split('\n').find((l) => l.startsWith('Plan:')) ?? '?';
    const label = `${w.toLocaleString('en-US')} workloads / ${n.toLocaleString('en-US')} nodes`;
    const target = w === 10_000 ? '< 700 ms for the planner alone (plan bench); here: linear' : undefined;
    report(`plan ${label}, wall`, median(walls), 'ms', target);
    if (cpus.length > 0) {
      const cpu = median(cpus);
      const per = cpu / (w / 1000);
      firstPer ??= per;
      report('  CPU time of the CLI process', cpu, 'ms');
      report('  CPU ms per 1,000 workloads', per, 'ms', `linear: about ${firstPer.toFixed(0)} ms`);
      report('  peak RSS of the CLI process', rss, 'MB');
    }
    console.log(`  (${summary})`);
    rmSync(dir, { recursive: true, force: true });
  }
} finally {
  sleeper.kill();
  rmSync(root, { recursive: true, force: true });
}
