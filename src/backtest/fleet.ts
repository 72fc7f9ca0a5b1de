// Fleets, not only single jobs: many workloads replayed together on one market where each zone has a
// limited number of instances per tick (the trace's counts, e.g. the 16-node availability trace, or
// `capacityPerZone` while a zone is available). Placement decisions interact: a zone one workload
// takes is full for the next, and when capacity shrinks the newest holders are preempted first.
//
// Every workload runs the same policy (one fleet run per policy), each on its own view of the market
// in which a zone is available when it holds an instance there or there are enough free ones. The
// decision order within a tick is by workload name (a fixed priority, as a scheduler would have).
// The exact optimum of the joint problem is out of reach; the sum of each workload's own optimum on
// the uncontended market is reported instead, as a lower bound on any fleet schedule.
import { SpotfleetError } from '../core/errors.js';
import { HOUR_MS } from '../core/units.js';
import { sliceTrace } from '../core/trace.js';
import { buildGrid, egressMatrix, makeJob, medianStepMs, SPOT0, type Grid, type Job } from './model.js';
import { offlineOptimum } from './optimum.js';
import { backtestPolicies, type BacktestOptions, type BacktestWorkload } from './run.js';
import { JobRun } from './simulate.js';

export interface FleetBacktestOptions extends Omit<BacktestOptions, 'optimum' | 'timelines'> {
  /** Instances a zone offers while available, for traces without counts; default: the trace's counts (required then). */
  capacityPerZone?: number;
  /** Compute the lower bound (sum of per-workload optima without competition); default true. */
  lowerBound?: boolean;
}

export interface FleetPolicySummary {
  policy: string;
  /** Mean over windows of the whole fleet's cost. */
  meanCostUsd: number;
  /** Mean fleet cost / mean lower bound; undefined without it. */
  costOverLowerBound: number | undefined;
  /** Workload-windows that met their deadline, of `runs`. */
  deadlinesMet: number;
  runs: number;
  meanMigrations: number;
  meanPreemptions: number;
  meanSpotHours: number;
  meanOnDemandHours: number;
}

export interface FleetResult {
  workloads: number;
  zones: string[];
  /** Where the per-zone instance limits come from. */
  capacity: string;
  windows: { startMs: number; lowerBoundUsd: number | undefined; costs: Record<string, number> }[];
  /** Mean over windows of the lower bound. */
  meanLowerBoundUsd: number | undefined;
  summary: FleetPolicySummary[];
}

interface Member {
  w: BacktestWorkload;
  job: Job;
  /** Instances one copy needs. */
  need: number;
  allowed: Uint8Array;
}

/**
 * Replays all workloads together on one market with per-zone instance limits, once per policy.
 * @example runFleetBacktest({ trace, workloads, thresholds, windows: 3 }).summary
 */
export function runFleetBacktest(opts: FleetBacktestOptions): FleetResult {
  const trace = opts.trace;
  if (!trace.capacity && opts.capacityPerZone === undefined) {
    throw new SpotfleetError('BACKTEST_NO_CAPACITY', `${trace.source}: the trace does not count instances per zone; give --capacity-per-zone N for a fleet backtest`);
  }
  if (opts.workloads.length === 0) throw new SpotfleetError('BACKTEST_RANGE', 'a fleet backtest needs at least one workload');
  const dt = opts.tickMs ?? medianStepMs(trace);
  const notice = opts.noticeMs ?? 120_000;
  const ck = opts.checkpointIntervalMs ?? HOUR_MS;
  const gpi = trace.gpusPerInstance > 0 ? trace.gpusPerInstance : 1;
  const members: Member[] = [...opts.workloads].sort((a, b) => a.spec.name.localeCompare(b.spec.name)).map((w) => {
    const changeoverMs = w.overhead.checkpointMs + w.overhead.transferMs + w.overhead.restartMs;
    const allowed = new Uint8Array(trace.zones.length);
    trace.zones.forEach((z, i) => (allowed[i] = w.zones.length === 0 || w.zones.includes(z) ? 1 : 0));
    for (const z of w.zones) if (!trace.zones.includes(z)) throw new SpotfleetError('TRACE_INVALID', `zone "${z}" is not in the trace (it has ${trace.zones.join(', ')})`);
    return { w, allowed, need: Math.max(1, Math.ceil(w.spec.gpus / gpi)), job: makeJob({ workMs: w.workMs, deadlineMs: w.deadlineMs, changeoverMs, dtMs: dt, gpus: w.spec.gpus, emergencyCheckpointOk: w.overhead.checkpointMs <= notice, checkpointIntervalMs: ck }) };
  });
  const maxDeadline = Math.max(...members.map((m) => m.w.deadlineMs));
  const first = trace.times[0] as number;
  const last = trace.times[trace.times.length - 1] as number;
  const from = Math.max(first, opts.fromMs ?? first);
  const to = Math.min(last, opts.toMs ?? last);
  if (to - maxDeadline < from) throw new SpotfleetError('BACKTEST_RANGE', `the range is shorter than the longest deadline (${maxDeadline / HOUR_MS} h)`);
  const n = opts.windows ?? 1;
  const starts = n <= 1 ? [from] : Array.from({ length: n }, (_, i) => Math.round((from + ((to - maxDeadline - from) * i) / (n - 1)) / 1000) * 1000);
  const horizon = Math.max(...members.map((m) => m.job.deadlineTicks + m.job.workTicks + 2 * m.job.changeoverTicks + 1));
  const policyNames = backtestPolicies(members[0]?.w as BacktestWorkload, opts as BacktestOptions).map((p) => p.name);
  const acc = new Map<string, { cost: number[]; met: number; runs: number; mig: number; pre: number; spot: number; od: number }>();
  for (const name of policyNames) acc.set(name, { cost: [], met: 0, runs: 0, mig: 0, pre: 0, spot: 0, od: 0 });
  const windows: FleetResult['windows'] = [];
  const lbCache = new Map<string, number | undefined>();
  for (const start of starts) {
    const grid = buildGrid(trace, start, horizon, dt);
    const eg = members.map((m) => egressMatrix(grid, m.w.spec.checkpoint?.sizeGB));
    let lower: number | undefined = 0;
    if (opts.lowerBound ?? true) {
      for (const m of members) {
        const key = `${start}|${m.w.zones.join(',')}|${m.job.workTicks}|${m.job.deadlineTicks}|${m.job.changeoverTicks}|${m.job.gpus}|${m.w.spec.checkpoint?.sizeGB ?? 0}`;
        if (!lbCache.has(key)) {
          const zones = m.w.zones.length > 0 ? m.w.zones : trace.zones;
          const g = buildGrid(sliceTrace(trace, { zones }), start, horizon, dt);
          const e = egressMatrix(g, m.w.spec.checkpoint?.sizeGB);
          lbCache.set(key, offlineOptimum(g, e ? { ...m.job, egressUsd: e } : m.job)?.costUsd);
        }
        const c = lbCache.get(key);
        lower = c === undefined || lower === undefined ? undefined : lower + c;
      }
    } else lower = undefined;
    const costs: Record<string, number> = {};
    for (let pi = 0; pi < policyNames.length; pi++) {
      const runs = members.map((m, i) => {
        const view = viewOf(grid);
        const policy = backtestPolicies(m.w, opts)[pi];
        if (!policy) throw new Error('internal: policy list changed');
        const e = eg[i];
        return { m, view, run: new JobRun(view, e ? { ...m.job, egressUsd: e } : m.job, policy, horizon) };
      });
      playFleet(grid, runs, horizon, opts.capacityPerZone);
      const name = policyNames[pi] as string;
      const a = acc.get(name) as NonNullable<ReturnType<typeof acc.get>>;
      let total = 0;
      for (const r of runs) {
        const st = r.run.result();
        total += st.costUsd;
        a.runs++;
        if (st.deadlineMet) a.met++;
        a.mig += st.migrations;
        a.pre += st.preemptions;
        a.spot += st.spotHours;
        a.od += st.onDemandHours;
      }
      a.cost.push(total);
      costs[name] = total;
    }
    windows.push({ startMs: start, lowerBoundUsd: lower, costs });
  }
  const lbs = windows.map((w) => w.lowerBoundUsd);
  const meanLb = lbs.every((x) => x !== undefined) ? lbs.reduce((s, x) => s + (x), 0) / lbs.length : undefined;
  const summary: FleetPolicySummary[] = policyNames.map((name) => {
    const a = acc.get(name) as NonNullable<ReturnType<typeof acc.get>>;
    const mean = a.cost.reduce((s, x) => s + x, 0) / a.cost.length;
    return {
      policy: name,
      meanCostUsd: mean,
      costOverLowerBound: meanLb !== undefined && meanLb > 0 ? mean / meanLb : undefined,
      deadlinesMet: a.met,
      runs: a.runs,
      meanMigrations: a.mig / a.runs,
      meanPreemptions: a.pre / a.runs,
      meanSpotHours: a.spot / a.runs,
      meanOnDemandHours: a.od / a.runs,
    };
  });
  return {
    workloads: members.length,
    zones: trace.zones,
    capacity: trace.capacity ? 'the trace’s instance counts per zone' : `${opts.capacityPerZone} instance(s) per zone while available (--capacity-per-zone)`,
    windows,
    meanLowerBoundUsd: meanLb,
    summary,
  };
}

/** A workload's view of the market: shares everything but availability, which playFleet fills per tick. */
function viewOf(grid: Grid): Grid {
  return { ...grid, avail: grid.zones.map(() => new Uint8Array(grid.ticks)) };
}

/**
 * Plays all runs tick by tick: evict the newest holders where capacity shrank below what is held,
 * then let each workload (in name order) decide on a view where a zone is available if it holds it
 * or enough instances are free; what it takes or leaves changes what the next one sees.
 */
function playFleet(grid: Grid, runs: { m: Member; view: Grid; run: JobRun }[], horizon: number, capacityPerZone: number | undefined): void {
  const Z = grid.zones.length;
  const free = new Int32Array(Z);
  for (let k = 0; k < horizon; k++) {
    let alive = 0;
    for (let z = 0; z < Z; z++) {
      free[z] = grid.capacity ? ((grid.capacity[z] as Uint16Array)[k] as number) : ((grid.avail[z] as Uint8Array)[k] === 1 ? capacityPerZone ?? 0 : 0);
    }
    // Holders keep their instances oldest first; the newest lose them when capacity shrank.
    const holders = runs.filter((r) => !r.run.done && r.run.s.loc >= SPOT0).sort((a, b) => a.run.s.sinceTick - b.run.s.sinceTick || a.m.w.spec.name.localeCompare(b.m.w.spec.name));
    const keeps = new Set<JobRun>();
    for (const h of holders) {
      const z = h.run.s.loc - SPOT0;
      if ((free[z] as number) >= h.m.need) {
        free[z] = (free[z] as number) - h.m.need;
        keeps.add(h.run);
      }
    }
    for (const r of runs) {
      if (r.run.done) continue;
      alive++;
      const held = r.run.s.loc >= SPOT0 && keeps.has(r.run) ? r.run.s.loc - SPOT0 : -1;
      for (let z = 0; z < Z; z++) (r.view.avail[z] as Uint8Array)[k] = r.m.allowed[z] === 1 && (z === held || (free[z] as number) >= r.m.need) ? 1 : 0;
      r.run.step(k);
      const now = r.run.s.loc >= SPOT0 && !r.run.done ? r.run.s.loc - SPOT0 : -1;
      if (held >= 0 && now !== held) free[held] = (free[held] as number) + r.m.need;
      if (now >= 0 && now !== held) free[now] = (free[now] as number) - r.m.need;
    }
    if (alive === 0) break;
  }
}
