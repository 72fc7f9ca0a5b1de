// The backtest's simulated world: a spot trace resampled onto a uniform clock of `dtMs` ticks, and
// one job on it (work, deadline and changeover in whole ticks). The simulator, every policy and the
// offline optimum all read this one discretisation, which is what makes the optimum exact for the
// simulated model: progress is counted in ticks of work, a changeover is a whole number of ticks.
import { SpotfleetError } from '../core/errors.js';
import { egressUsd, type RegionRef } from '../core/egress.js';
import { HOUR_MS } from '../core/units.js';
import { tickAt, traceRegions, type SpotTrace } from '../core/trace.js';

/** Location codes: 0 idle (not running, pays nothing), 1 on-demand, 2 + z spot in zone z. */
export const IDLE = 0;
export const ON_DEMAND = 1;
export const SPOT0 = 2;

/** A trace on a uniform clock, restricted to the zones a workload may use. */
export interface Grid {
  /** ms epoch of tick 0. */
  startMs: number;
  dtMs: number;
  ticks: number;
  zones: string[];
  /** Per zone, 1 when spot was available during the tick. */
  avail: Uint8Array[];
  /** Per zone, spot USD per GPU-hour in force during the tick. */
  spotPerGpuHour: Float64Array[];
  /** On-demand USD per GPU-hour (the cheapest of the zones'). */
  onDemandPerGpuHour: number;
  /**
   * Availability in the `ticks` ticks before tick 0 (oldest first), on the same clock: the history an
   * online policy would have seen when the window starts (uptime, preemption rates). Absent = none.
   */
  lookback?: { ticks: number; avail: Uint8Array[] };
  /** Distinct regions of the zones, and each zone's index into them (egress on moves across regions). */
  regions?: RegionRef[];
  zoneRegion?: Uint8Array;
  /** Per zone, instances that could be had in the tick, when the trace counts them (fleet backtests). */
  capacity?: Uint16Array[];
}

/** History kept before a window's first tick by default: one day. */
export const DEFAULT_LOOKBACK_MS = 24 * HOUR_MS;

/** One job in ticks of the grid. */
export interface Job {
  /** Ticks of useful work needed (expectedDuration rounded up). */
  workTicks: number;
  /** Ticks from the start by which the work must be done (deadline rounded down). */
  deadlineTicks: number;
  /** Ticks without progress (but paid for) after every start or move (changeover rounded up). */
  changeoverTicks: number;
  gpus: number;
  /** The emergency checkpoint on a preemption notice succeeds (checkpoint time ≤ notice window). */
  emergencyCheckpointOk: boolean;
  /** Ticks of progress between periodic checkpoints (what a failed emergency checkpoint falls back to). */
  checkpointIntervalTicks: number;
  /**
   * USD to move the checkpoint from region i to region j, at [i × (R + 1) + j] (checkpoint.sizeGB ×
   * the egress price), where index R is "no checkpoint yet" (free to leave); absent = no egress.
   * On-demand runs in the region the checkpoint is in, so only starting in a spot zone of another
   * region pays it.
   */
  egressUsd?: Float64Array;
  /** Region index the checkpoint starts in; default R: none yet, so the first start pays no egress. */
  homeRegion?: number;
}

/** The region index meaning "no checkpoint yet" (grid.regions.length). */
export function noRegion(grid: Pick<Grid, 'regions'>): number {
  return grid.regions?.length ?? 0;
}

/** The egress matrix of `egressUsd` for a checkpoint of `sizeGB` over the grid's regions; undefined when nothing would be paid. */
export function egressMatrix(grid: Pick<Grid, 'regions'>, sizeGB: number | undefined): Float64Array | undefined {
  const rs = grid.regions;
  if (!rs || rs.length < 2 || sizeGB === undefined || !(sizeGB > 0)) return undefined;
  const R = rs.length;
  const N = R + 1;
  const m = new Float64Array(N * N);
  for (let i = 0; i < R; i++) for (let j = 0; j < R; j++) m[i * N + j] = egressUsd(sizeGB, rs[i] as RegionRef, rs[j] as RegionRef);
  return m;
}

/** USD of egress for a start in location `loc` with the checkpoint in region `from` (0 for idle, on-demand, same region). */
export function moveEgress(grid: Grid, job: Job, from: number, loc: number): number {
  const m = job.egressUsd;
  if (!m || loc < SPOT0 || !grid.zoneRegion || !grid.regions) return 0;
  return m[from * (grid.regions.length + 1) + (grid.zoneRegion[loc - SPOT0] as number)] as number;
}

/** The region a location leaves the checkpoint in: a spot zone's own; idle and on-demand keep `from`. */
export function regionAfter(grid: Grid, from: number, loc: number): number {
  return loc >= SPOT0 && grid.zoneRegion ? (grid.zoneRegion[loc - SPOT0] as number) : from;
}

/** The longest default tick: event traces (price changes, probes) can be hours apart, decisions are not. */
export const MAX_DEFAULT_TICK_MS = 300_000;

/**
 * The median step of a trace, rounded to whole seconds and at most 5 minutes: the natural simulated
 * tick (a price-history trace changes every few hours, but a policy decides every few minutes).
 */
export function medianStepMs(trace: SpotTrace): number {
  const n = trace.times.length;
  if (n < 2) return 195_000;
  const steps = new Float64Array(n - 1);
  for (let i = 1; i < n; i++) steps[i - 1] = (trace.times[i] as number) - (trace.times[i - 1] as number);
  steps.sort();
  return Math.min(MAX_DEFAULT_TICK_MS, Math.max(1000, Math.round((steps[(n - 1) >> 1] as number) / 1000) * 1000));
}

/**
 * Resamples `trace` onto `ticks` ticks of `dtMs` from `startMs`: tick k carries the trace row in
 * force at startMs + k·dtMs. Ticks past the end of the trace repeat its last row (only runs that
 * overshoot their deadline reach them). A zone without a price in a tick counts as unavailable.
 */
export function buildGrid(trace: SpotTrace, startMs: number, ticks: number, dtMs: number, lookbackMs = DEFAULT_LOOKBACK_MS): Grid {
  if (trace.times.length === 0) throw new SpotfleetError('TRACE_INVALID', `${trace.source}: the trace has no rows`);
  if (startMs < (trace.times[0] as number)) throw new SpotfleetError('TRACE_INVALID', `${trace.source}: start ${new Date(startMs).toISOString()} is before the trace begins`);
  const nz = trace.zones.length;
  const avail = trace.zones.map(() => new Uint8Array(ticks));
  const cap = trace.capacity ? trace.zones.map(() => new Uint16Array(ticks)) : undefined;
  const spot = trace.zones.map(() => new Float64Array(ticks));
  const gpi = trace.gpusPerInstance > 0 ? trace.gpusPerInstance : 1;
  let row = tickAt(trace, startMs);
  const last = trace.times.length - 1;
  for (let k = 0; k < ticks; k++) {
    const t = startMs + k * dtMs;
    while (row < last && (trace.times[row + 1] as number) <= t) row++;
    for (let z = 0; z < nz; z++) {
      const p = (trace.spotPrice[z] as Float64Array)[row] as number;
      const a = (trace.available[z] as Uint8Array)[row] as number;
      (avail[z] as Uint8Array)[k] = a === 1 && Number.isFinite(p) ? 1 : 0;
      (spot[z] as Float64Array)[k] = Number.isFinite(p) ? p / gpi : 0;
      if (cap) (cap[z] as Uint16Array)[k] = a === 1 && Number.isFinite(p) ? ((trace.capacity?.[z] as Uint16Array)[row] as number) : 0;
    }
  }
  const od = Math.min(...trace.onDemandPrice) / gpi;
  const grid: Grid = { startMs, dtMs, ticks, zones: [...trace.zones], avail, spotPerGpuHour: spot, onDemandPerGpuHour: od };
  const zr = traceRegions(trace);
  const regions: RegionRef[] = [];
  grid.zoneRegion = Uint8Array.from(zr.map((r) => {
    let i = regions.findIndex((x) => x.region === r.region && x.cloud === r.cloud);
    if (i < 0) i = regions.push(r) - 1;
    return i;
  }));
  grid.regions = regions;
  if (cap) grid.capacity = cap;
  const lb = Math.min(Math.floor(lookbackMs / dtMs), Math.floor((startMs - (trace.times[0] as number)) / dtMs));
  if (lb > 0) {
    const la = trace.zones.map(() => new Uint8Array(lb));
    let r = tickAt(trace, startMs - lb * dtMs);
    for (let j = 0; j < lb; j++) {
      const t = startMs - (lb - j) * dtMs;
      while (r < last && (trace.times[r + 1] as number) <= t) r++;
      for (let z = 0; z < nz; z++) {
        const ok = (trace.available[z] as Uint8Array)[r] === 1 && Number.isFinite((trace.spotPrice[z] as Float64Array)[r]);
        (la[z] as Uint8Array)[j] = ok ? 1 : 0;
      }
    }
    grid.lookback = { ticks: lb, avail: la };
  }
  return grid;
}

/** USD the workload pays for one tick at a location (0 when idle). */
export function tickCost(grid: Grid, job: Job, loc: number, k: number): number {
  if (loc === IDLE) return 0;
  const perGpuHour = loc === ON_DEMAND ? grid.onDemandPerGpuHour : ((grid.spotPerGpuHour[loc - SPOT0] as Float64Array)[k] as number);
  return perGpuHour * job.gpus * (grid.dtMs / HOUR_MS);
}

/** Whether a location can be occupied in tick k (on-demand always can; idle always can). */
export function isAvailable(grid: Grid, loc: number, k: number): boolean {
  if (loc < SPOT0) return true;
  return ((grid.avail[loc - SPOT0] as Uint8Array)[k] as number) === 1;
}

/** Human name of a location code. */
export function locationName(grid: { zones: string[] }, loc: number): string {
  if (loc === IDLE) return 'idle';
  if (loc === ON_DEMAND) return 'on-demand';
  return `spot:${grid.zones[loc - SPOT0] ?? '?'}`;
}

/** Converts durations to a Job on a grid with the rounding the simulator and the optimum share. */
export function makeJob(opts: {
  workMs: number;
  deadlineMs: number;
  changeoverMs: number;
  dtMs: number;
  gpus: number;
  emergencyCheckpointOk: boolean;
  checkpointIntervalMs: number;
}): Job {
  return {
    workTicks: Math.max(1, Math.ceil(opts.workMs / opts.dtMs - 1e-9)),
    deadlineTicks: Math.floor(opts.deadlineMs / opts.dtMs + 1e-9),
    changeoverTicks: Math.max(0, Math.ceil(opts.changeoverMs / opts.dtMs - 1e-9)),
    gpus: opts.gpus,
    emergencyCheckpointOk: opts.emergencyCheckpointOk,
    checkpointIntervalTicks: Math.max(1, Math.round(opts.checkpointIntervalMs / opts.dtMs)),
  };
}
