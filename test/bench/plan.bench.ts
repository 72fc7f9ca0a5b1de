// Benchmark: the pure planner (planFleet) on in-memory inputs: 10,000 workloads over 1,000 nodes,
// half of them already running, a spot market with four zones. Prints the time and the peak
// resident memory (targets: under 700 ms and 300 MB), then how the time grows with the fleet from
// 1,000 to 10,000 to 100,000 workloads, as ms per 1,000 workloads (target: flat, i.e. linear),
// both with nodes growing along (10 workloads a node) and with the nodes fixed at 1,000; then
// 100,000 workloads on 10,000 nodes against its own targets (under 10 s and 1.5 GB).
// Wall time and CPU time are both printed: on a loaded, shared machine the wall clock counts the
// time the planner waited for a core, CPU time only its own work (the ratios matter most).
// A size whose time, extrapolated linearly (in workloads + nodes) from the previous one, exceeds
// --budget seconds is skipped with its estimate printed.
// Usage: node dist/test/bench/plan.bench.js [--runs N] [--budget S]
//   --runs: plans per size, the median is reported (default 3; 1 once a plan takes over 5 s)
//   --budget: longest single plan to attempt, in seconds (default 60)
import { planFleet } from '../../src/engine/plan.js';
import { planFixture } from './plan-fixtures.js';
import { peakRssMb, report, timeIt } from './util.js';

function argNumber(name: string, def: number): number {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? Number(process.argv[i + 1]) : def;
  return Number.isFinite(v) && v > 0 ? v : def;
}

const RUNS = argNumber('--runs', 3);
const BUDGET_MS = argNumber('--budget', 60) * 1000;
const gc = (globalThis as { gc?: () => void }).gc;

/** Median ms of `runs` plans, each on freshly built inputs (building is not timed). */
async function measure(workloads: number, nodes: number, runs: number): Promise<{ ms: number; cpuMs: number; actions: number }> {
  const times: number[] = [];
  const cpus: number[] = [];
  let actions = 0;
  for (let r = 0; r < runs && (r === 0 || times.reduce((a, b) => a + b, 0) < 5_000); r++) {
    const f = planFixture({ workloads, nodes });
    gc?.();
    const cpu0 = process.cpuUsage();
    const { ms, value } = await timeIt(() => planFleet(f.fleet, f.observed, f.state, f.options));
    const cpu = process.cpuUsage(cpu0);
    times.push(ms);
    cpus.push((cpu.user + cpu.system) / 1000);
    actions = value.actions.length;
  }
  times.sort((a, b) => a - b);
  cpus.sort((a, b) => a - b);
  return { ms: times[Math.floor(times.length / 2)] as number, cpuMs: cpus[Math.floor(cpus.length / 2)] as number, actions };
}

// Warm-up: let the JIT see every path once.
await measure(1_000, 100, 2);

const cache = new Map<string, { ms: number; cpuMs: number }>();
const head = await measure(10_000, 1_000, RUNS);
cache.set('10000/1000', head);
console.log(`planFleet: 10,000 workloads (half running) over 1,000 nodes, 4 spot zones; ${head.actions} actions`);
report('plan time, 10,000 workloads / 1,000 nodes', head.ms, 'ms', '< 700 ms');
// CPU time too: on a shared, loaded machine wall time overstates the planner's own cost.
report('  CPU time of that plan (all threads, GC included)', head.cpuMs, 'ms');
report('peak RSS', peakRssMb(), 'MB', '< 300 MB');

const series = async (label: string, sizes: [number, number][]): Promise<void> => {
  console.log(label);
  let first: number | undefined;
  let firstCpu: number | undefined;
  let prev: { w: number; n: number; ms: number } | undefined;
  for (const [w, n] of sizes) {
    const name = `  ${w.toLocaleString('en-US')} workloads / ${n.toLocaleString('en-US')} nodes: ms per 1,000 workloads`;
    const estimate = prev ? prev.ms * ((w + n) / (prev.w + prev.n)) : 0;
    if (estimate > BUDGET_MS) {
      console.log(`${name.padEnd(56)}    skipped: about ${(estimate / 1000).toFixed(0)} s per plan by the trend (over --budget ${BUDGET_MS / 1000} s)`);
      continue;
    }
    const m = cache.get(`${w}/${n}`) ?? (await measure(w, n, RUNS));
    cache.set(`${w}/${n}`, m);
    const per = m.ms / (w / 1000);
    const perCpu = m.cpuMs / (w / 1000);
    first ??= per;
    firstCpu ??= perCpu;
    report(name, per, 'ms', `linear: about ${first.toFixed(first >= 10 ? 1 : 3)} ms`);
    report('    the same in CPU time', perCpu, 'ms', `linear: about ${firstCpu.toFixed(firstCpu >= 10 ? 1 : 3)} ms`);
    prev = { w, n, ms: m.ms };
  }
};
await series('growth with the fleet (10 workloads a node):', [[1_000, 100], [10_000, 1_000], [100_000, 10_000]]);
await series('growth with the nodes fixed at 1,000:', [[1_000, 1_000], [10_000, 1_000], [100_000, 1_000]]);
const big = cache.get('100000/10000');
if (big) {
  report('plan time, 100,000 workloads / 10,000 nodes', big.ms, 'ms', '< 10000 ms');
  report('  CPU time of that plan', big.cpuMs, 'ms');
}
report('peak RSS (whole run, up to 100,000 workloads, inputs included)', peakRssMb(), 'MB', '< 1500 MB');
