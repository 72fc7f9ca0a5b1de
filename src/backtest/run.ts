// runBacktest: replays every workload over N start windows of a trace with spotfleet's policy and the
// baselines, computes the offline optimum per window, and summarises per workload and policy. Pure
// (the trace is passed in); the CLI loads files and renders.
import { SpotfleetError } from '../core/errors.js';
import { HOUR_MS } from '../core/units.js';
import { sliceTrace, type SpotTrace } from '../core/trace.js';
import type { MigrationOverhead, Thresholds, WorkloadSpec } from '../spec/types.js';
import { buildGrid, egressMatrix, makeJob, medianStepMs, type Grid, type Job } from './model.js';
import { offlineOptimum } from './optimum.js';
import type { PolicySet } from '../policy/policy-set.js';
import { greedyPolicy, onDemandPolicy, spotfleetPolicy, uniformProgressPolicy } from './policies.js';
import { replayPolicy, simulate, type BacktestPolicy, type RunStats } from './simulate.js';

/** One workload to replay. */
export interface BacktestWorkload {
  /** The resolved spec (its `deadline` is rewritten per window). */
  spec: WorkloadSpec;
  /** Work to do, ms (expectedDuration). */
  workMs: number;
  /** Deadline relative to each window start, ms. */
  deadlineMs: number;
  /** Trace zones the workload may use (all trace zones when empty). */
  zones: string[];
  overhead: MigrationOverhead;
  spotPool?: string;
  onDemandPool?: string;
}

export interface BacktestOptions {
  trace: SpotTrace;
  workloads: BacktestWorkload[];
  /** ms epoch; default the trace's start / end. */
  fromMs?: number;
  toMs?: number;
  /** Start windows, spread evenly over [from, to − deadline]; default 5. */
  windows?: number;
  /** Simulated tick; default the trace's median step. */
  tickMs?: number;
  thresholds: Thresholds;
  /** Eviction notice window; default 120 s (AWS). The emergency checkpoint succeeds when checkpoint time ≤ it. */
  noticeMs?: number;
  /** Periodic checkpoint interval (what a failed emergency checkpoint falls back to); default 1 h. */
  checkpointIntervalMs?: number;
  /** Compiled policies for decideWorkload. */
  policies?: PolicySet;
  /** Compute the exact offline optimum (default true). */
  optimum?: boolean;
  /** Keep per-tick timelines in the results (for the chart); default true. */
  timelines?: boolean;
}

export interface WindowResult {
  startMs: number;
  runs: RunStats[];
}

export interface PolicySummary {
  policy: string;
  windows: number;
  meanCostUsd: number;
  meanSpotHours: number;
  meanOnDemandHours: number;
  meanMigrations: number;
  meanPreemptions: number;
  meanLostWorkHours: number;
  /** Mean USD of checkpoint egress on moves across regions (part of meanCostUsd). */
  meanEgressUsd: number;
  meanFinishHours: number | undefined;
  deadlinesMet: number;
  /** Mean cost / mean optimum cost; undefined without an optimum. */
  costOverOptimum: number | undefined;
}

export interface WorkloadResult {
  workload: string;
  gpus: number;
  workHours: number;
  deadlineHours: number;
  changeoverHours: number;
  zones: string[];
  /** Work, deadline and changeover as the simulator counts them (whole ticks). */
  ticks: { tickSeconds: number; work: number; deadline: number; changeover: number };
  emergencyCheckpointOk: boolean;
  windows: WindowResult[];
  summary: PolicySummary[];
}

export interface BacktestResult {
  trace: string;
  /** What the trace loader assumed where the trace is silent (availability, prices, start time). */
  assumptions: string[];
  traceFormat?: string;
  tickSeconds: number;
  fromMs: number;
  toMs: number;
  policies: string[];
  workloads: WorkloadResult[];
}

export const OPTIMUM = 'optimum';

/** The policies of a backtest, in display order (the optimum is added after them). */
export function backtestPolicies(w: BacktestWorkload, opts: BacktestOptions): BacktestPolicy[] {
  const sp: Parameters<typeof spotfleetPolicy>[0] = { workload: w.spec, thresholds: opts.thresholds, overhead: w.overhead, deadlineMs: w.deadlineMs };
  if (opts.policies !== undefined) sp.policies = opts.policies;
  if (w.spotPool !== undefined) sp.spotPool = w.spotPool;
  if (w.onDemandPool !== undefined) sp.onDemandPool = w.onDemandPool;
  return [spotfleetPolicy(sp), greedyPolicy(), uniformProgressPolicy(), onDemandPolicy()];
}

/** Window start times (ms epoch) for a relative deadline. */
export function windowStarts(trace: SpotTrace, deadlineMs: number, n: number, fromMs?: number, toMs?: number): number[] {
  const first = trace.times[0];
  const lastT = trace.times[trace.times.length - 1];
  if (first === undefined || lastT === undefined) throw new SpotfleetError('TRACE_INVALID', `${trace.source}: the trace has no rows`);
  const from = Math.max(first, fromMs ?? first);
  const to = Math.min(lastT, toMs ?? lastT);
  const lastStart = to - deadlineMs;
  if (lastStart < from) {
    throw new SpotfleetError('BACKTEST_RANGE', `the range ${new Date(from).toISOString()} → ${new Date(to).toISOString()} is shorter than the deadline (${deadlineMs / HOUR_MS} h)`);
  }
  if (n <= 1) return [from];
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(Math.round((from + ((lastStart - from) * i) / (n - 1)) / 1000) * 1000);
  return out;
}

/** Runs one workload in one window: every policy, then the optimum replayed through the simulator. */
export function runWindow(grid: Grid, job: Job, policies: BacktestPolicy[], withOptimum: boolean, keepTimelines: boolean): RunStats[] {
  const runs = policies.map((p) => simulate(grid, job, p));
  if (withOptimum) {
    const opt = offlineOptimum(grid, job);
    if (opt) {
      const r = simulate(grid, job, replayPolicy(OPTIMUM, opt.schedule));
      // The DP and the simulator must agree; a difference is a bug in one of them.
      if (!r.deadlineMet || Math.abs(r.costUsd - opt.costUsd) > 1e-6 * Math.max(1, opt.costUsd)) {
        throw new Error(`internal: optimum schedule replays to $${r.costUsd} (deadline met: ${String(r.deadlineMet)}), DP says $${opt.costUsd}`);
      }
      runs.push(r);
    }
  }
  if (!keepTimelines) for (const r of runs) {
    r.timeline = new Uint8Array(0);
    r.cumulativeCost = new Float64Array(0);
  }
  return runs;
}

function mean(xs: number[]): number {
  return xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length;
}

function summarise(windows: WindowResult[], names: string[]): PolicySummary[] {
  const optCosts = windows.map((w) => w.runs.find((r) => r.policy === OPTIMUM)?.costUsd);
  const optMean = optCosts.every((c) => c !== undefined) && optCosts.length > 0 ? mean(optCosts) : undefined;
  const out: PolicySummary[] = [];
  for (const name of names) {
    const runs = windows.map((w) => w.runs.find((r) => r.policy === name)).filter((r): r is RunStats => r !== undefined);
    if (runs.length === 0) continue;
    const finishes = runs.map((r) => r.finishHours);
    const meanCost = mean(runs.map((r) => r.costUsd));
    out.push({
      policy: name,
      windows: runs.length,
      meanCostUsd: meanCost,
      meanSpotHours: mean(runs.map((r) => r.spotHours)),
      meanOnDemandHours: mean(runs.map((r) => r.onDemandHours)),
      meanMigrations: mean(runs.map((r) => r.migrations)),
      meanPreemptions: mean(runs.map((r) => r.preemptions)),
      meanLostWorkHours: mean(runs.map((r) => r.lostWorkHours)),
      meanEgressUsd: mean(runs.map((r) => r.egressUsd)),
      meanFinishHours: finishes.every((f) => f !== undefined) ? mean(finishes) : undefined,
      deadlinesMet: runs.filter((r) => r.deadlineMet).length,
      costOverOptimum: optMean !== undefined && optMean > 0 ? meanCost / optMean : undefined,
    });
  }
  return out;
}

/**
 * Replays every workload over the windows with spotfleet's policy, the baselines and the optimum.
 * @example runBacktest({ trace, workloads: [w], windows: 5, thresholds }).workloads[0].summary
 */
export function runBacktest(opts: BacktestOptions): BacktestResult {
  const dt = opts.tickMs ?? medianStepMs(opts.trace);
  const notice = opts.noticeMs ?? 120_000;
  const ckInterval = opts.checkpointIntervalMs ?? HOUR_MS;
  const withOpt = opts.optimum ?? true;
  const keep = opts.timelines ?? true;
  const n = opts.windows ?? 5;
  let policyNames: string[] = [];
  const workloads: WorkloadResult[] = [];
  let fromMs = Infinity;
  let toMs = -Infinity;
  for (const w of [...opts.workloads].sort((a, b) => a.spec.name.localeCompare(b.spec.name))) {
    const trace = sliceTrace(opts.trace, w.zones.length > 0 ? { zones: w.zones } : {});
    const changeoverMs = w.overhead.checkpointMs + w.overhead.transferMs + w.overhead.restartMs;
    const job = makeJob({ workMs: w.workMs, deadlineMs: w.deadlineMs, changeoverMs, dtMs: dt, gpus: w.spec.gpus, emergencyCheckpointOk: w.overhead.checkpointMs <= notice, checkpointIntervalMs: ckInterval });
    // Room for runs that overshoot: the deadline plus the work and two changeovers on on-demand.
    const horizon = job.deadlineTicks + job.workTicks + 2 * job.changeoverTicks + 1;
    const starts = windowStarts(trace, w.deadlineMs, n, opts.fromMs, opts.toMs);
    const policies = backtestPolicies(w, opts);
    policyNames = [...policies.map((p) => p.name), ...(withOpt ? [OPTIMUM] : [])];
    const windows: WindowResult[] = [];
    for (const start of starts) {
      const grid = buildGrid(trace, start, horizon, dt);
      const eg = egressMatrix(grid, w.spec.checkpoint?.sizeGB);
      const wjob = eg ? { ...job, egressUsd: eg } : job;
      windows.push({ startMs: start, runs: runWindow(grid, wjob, policies, withOpt, keep) });
      fromMs = Math.min(fromMs, start);
      toMs = Math.max(toMs, start + w.deadlineMs);
    }
    workloads.push({
      workload: w.spec.name,
      gpus: w.spec.gpus,
      workHours: w.workMs / HOUR_MS,
      deadlineHours: w.deadlineMs / HOUR_MS,
      changeoverHours: changeoverMs / HOUR_MS,
      zones: trace.zones,
      ticks: { tickSeconds: dt / 1000, work: job.workTicks, deadline: job.deadlineTicks, changeover: job.changeoverTicks },
      emergencyCheckpointOk: job.emergencyCheckpointOk,
      windows,
      summary: summarise(windows, policyNames),
    });
  }
  const res: BacktestResult = { trace: opts.trace.source, assumptions: opts.trace.assumptions ?? [], tickSeconds: dt / 1000, fromMs, toMs, policies: policyNames, workloads };
  if (opts.trace.format) res.traceFormat = opts.trace.format;
  return res;
}
