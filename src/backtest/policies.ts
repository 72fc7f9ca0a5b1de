// The policies a backtest compares: spotfleet's own (the same `decideWorkload` plan and watch call,
// fed PlacementOptions built from the trace), and the baselines: all on-demand, greedy, and Uniform
// Progress with its safety net (Wu et al., "Can't Be Late", NSDI 2024).
import { adviseDeadline } from '../policy/deadline.js';
import { decideWorkload } from '../policy/decide.js';
import type { PolicySet } from '../policy/policy-set.js';
import type { CurrentPlacement, DecideContext, PlacementOption, WorkloadDecision, WorkloadDecisionInput, WorkloadHistory } from '../policy/types.js';
import type { MigrationOverhead, Thresholds, WorkloadSpec } from '../spec/types.js';
import { ZoneStatsTracker, marketStatsKey, zoneStatsKey, type ZoneStats } from '../policy/uptime.js';
import { IDLE, ON_DEMAND, SPOT0, isAvailable, type Grid } from './model.js';
import type { BacktestPolicy, SimState } from './simulate.js';

/** The cheapest spot zone available in tick k, as a location code; -1 when none. */
function cheapestSpot(grid: Grid, k: number): number {
  let best = -1;
  let price = Infinity;
  for (let z = 0; z < grid.zones.length; z++) {
    if (((grid.avail[z] as Uint8Array)[k] as number) !== 1) continue;
    const p = (grid.spotPerGpuHour[z] as Float64Array)[k] as number;
    if (p < price) {
      price = p;
      best = SPOT0 + z;
    }
  }
  return best;
}

function onSpotHere(s: Readonly<SimState>, grid: Grid): boolean {
  return s.loc >= SPOT0 && !s.evicted && isAvailable(grid, s.loc, s.k);
}

/** Everything on on-demand from the first tick. */
export function onDemandPolicy(): BacktestPolicy {
  return { name: 'on-demand', choose: () => ON_DEMAND };
}

/**
 * Greedy: spot whenever some allowed zone has it (stay in the current zone while it lasts, else the
 * cheapest available zone), on-demand otherwise, and back to spot as soon as any returns.
 */
export function greedyPolicy(): BacktestPolicy {
  return {
    name: 'greedy',
    choose(s, grid) {
      if (onSpotHere(s, grid)) return s.loc;
      const z = cheapestSpot(grid, s.k);
      return z >= 0 ? z : ON_DEMAND;
    },
  };
}

/**
 * Uniform Progress (Can't Be Late, NSDI'24): spot whenever available; when none is, on-demand if the
 * job is behind the uniform-progress line (work × elapsed / deadline), idle if ahead. Hysteresis:
 * off on-demand only once ahead of the line by one changeover. Safety net: once the time left is
 * less than the work left plus two changeovers (one tick of margin), on-demand until done.
 */
export function uniformProgressPolicy(): BacktestPolicy {
  let pinned = false;
  return {
    name: 'uniform-progress',
    reset() {
      pinned = false;
    },
    choose(s, grid, job) {
      const C = job.changeoverTicks;
      const left = job.deadlineTicks - s.k;
      const work = job.workTicks - s.progress;
      if (pinned || left < work + 2 * C + 1) {
        pinned = true;
        return ON_DEMAND;
      }
      const line = (job.workTicks * s.k) / job.deadlineTicks;
      if (onSpotHere(s, grid)) return s.loc;
      const z = cheapestSpot(grid, s.k);
      if (s.loc === ON_DEMAND && !s.evicted) {
        if (s.progress < line + C) return ON_DEMAND;
        return z >= 0 ? z : IDLE;
      }
      if (z >= 0) return z;
      return s.progress < line ? ON_DEMAND : IDLE;
    },
  };
}

/** Options for the spotfleet policy adapter. */
export interface SpotfleetPolicyOptions {
  /** Workload as the spec resolves it; `deadline` is rewritten per window to start + relative deadline. */
  workload: WorkloadSpec;
  thresholds: Thresholds;
  overhead: MigrationOverhead;
  /** Compiled policy set passed through to decideWorkload. */
  policies?: PolicySet;
  /** Pool names for the PlacementOptions (defaults `spot` and `on-demand`). */
  spotPool?: string;
  onDemandPool?: string;
  provider?: string;
  gpuModel?: string;
  /** Relative deadline in ms (from the window start); undefined keeps the workload's own. */
  deadlineMs?: number;
  /** Name in the results; default `spotfleet`. */
  name?: string;
  /** How zone preemption rates are estimated from the trace seen so far; default DEFAULT_RATE_ESTIMATE. */
  rateEstimate?: RateEstimate;
  /** The decision function; default `decideWorkload` (tests pass `decideByDeadlineAdvice`). */
  decide?: (input: WorkloadDecisionInput, ctx: DecideContext) => WorkloadDecision;
  /**
   * Pass what has been seen of each zone's availability as `zoneStats` (default true): the deadline
   * strategy then decides by expected up-time. false measures the strategy without it.
   */
  zoneStats?: boolean;
}

/**
 * The deadline strategy on its own: `adviseDeadline`'s recommendation taken as the decision, and
 * `decideWorkload` only when it has none. Measures the strategy independently of how the policy
 * engine combines it with its other rules.
 */
export function decideByDeadlineAdvice(input: WorkloadDecisionInput, ctx: DecideContext): WorkloadDecision {
  const a = adviseDeadline(input, ctx);
  if (!a?.recommended) return decideWorkload(input, ctx);
  const d: WorkloadDecision = {
    workload: input.workload.name,
    action: a.recommended.action,
    eligibleForSpot: true,
    reasons: [a.reason],
    money: { nowPerHour: 0, afterPerHour: 0, migrationOverheadUsd: 0 },
    violations: [],
  };
  if (a.recommended.target) d.target = a.recommended.target;
  if (a.pinUntil !== undefined) d.pinOnDemandUntil = a.pinUntil;
  return d;
}

/** How the adapter estimates a zone's preemption rate from the history it has seen (see `ZoneHistory`). */
export interface RateEstimate {
  /** Half-life of the exponentially weighted history, ms. */
  halfLifeMs: number;
  /** Prior: preemptions and available hours added to the weighted counts (rate with no history = events / hours). */
  priorEvents: number;
  priorHours: number;
}

export const DEFAULT_RATE_ESTIMATE: RateEstimate = { halfLifeMs: 12 * 3_600_000, priorEvents: 0.5, priorHours: 5 };

/**
 * What an online policy can know about each zone from the trace so far, updated tick by tick: since
 * when spot has been continuously available, and an exponentially weighted preemption rate
 * (available → unavailable transitions per available hour). Fed from the grid's lookback first.
 */
class ZoneHistory {
  readonly upSince: Float64Array;
  private readonly upHours: Float64Array;
  private readonly events: Float64Array;
  private readonly prev: Uint8Array;
  private decay = 1;
  private hours = 0;

  constructor(
    zones: number,
    private readonly est: RateEstimate,
  ) {
    this.upSince = new Float64Array(zones).fill(NaN);
    this.upHours = new Float64Array(zones);
    this.events = new Float64Array(zones);
    this.prev = new Uint8Array(zones);
  }

  reset(grid: Grid): void {
    this.upSince.fill(NaN);
    this.upHours.fill(0);
    this.events.fill(0);
    this.prev.fill(0);
    this.decay = Math.pow(0.5, grid.dtMs / this.est.halfLifeMs);
    this.hours = grid.dtMs / 3_600_000;
    const lb = grid.lookback;
    if (lb) for (let j = 0; j < lb.ticks; j++) this.step(grid.startMs - (lb.ticks - j) * grid.dtMs, lb.avail, j);
  }

  /** Takes in tick `k` of `avail` (starting at `atMs`). */
  step(atMs: number, avail: Uint8Array[], k: number): void {
    for (let z = 0; z < this.upSince.length; z++) {
      const a = (avail[z] as Uint8Array)[k] as number;
      const was = this.prev[z] as number;
      this.upHours[z] = (this.upHours[z] as number) * this.decay + (a === 1 ? this.hours : 0);
      this.events[z] = (this.events[z] as number) * this.decay + (was === 1 && a !== 1 ? 1 : 0);
      if (a === 1 && was !== 1) this.upSince[z] = atMs;
      else if (a !== 1) this.upSince[z] = NaN;
      this.prev[z] = a;
    }
  }

  rate(z: number): number {
    return ((this.events[z] as number) + this.est.priorEvents) / ((this.upHours[z] as number) + this.est.priorHours);
  }
}

/** Tick `k` of `avail` into the tracker: each zone, then the market (entry `avail.length`: some zone up). */
function observeAll(tracker: ZoneStatsTracker, atMs: number, avail: Uint8Array[], k: number): void {
  let any = false;
  for (let z = 0; z < avail.length; z++) {
    const a = (avail[z] as Uint8Array)[k] === 1;
    any ||= a;
    tracker.observe(atMs, z, a);
  }
  tracker.observe(atMs, avail.length, any);
}

/**
 * spotfleet's policy: per tick, PlacementOptions from the trace (one per allowed zone, plus
 * on-demand, with each zone's uptime and preemption rate as seen so far) go into the same
 * `decideWorkload` that plan and watch call, and the decision is applied: stay, place/move to the
 * target, or wait/none (not running). The options and history objects are reused from tick to tick
 * (decide is pure and keeps no reference), so the hot loop allocates only what decide does.
 */
export function spotfleetPolicy(opts: SpotfleetPolicyOptions): BacktestPolicy {
  const spotPool = opts.spotPool ?? 'spot';
  const odPool = opts.onDemandPool ?? 'on-demand';
  const provider = opts.provider ?? 'backtest';
  const gpuModel = opts.gpuModel ?? opts.workload.gpuModel ?? 'gpu';
  const decide = opts.decide ?? decideWorkload;
  const est = opts.rateEstimate ?? DEFAULT_RATE_ESTIMATE;
  let workload: WorkloadSpec = opts.workload;
  let history: WorkloadHistory = { preemptions: [] };
  let ctx: DecideContext = { now: 0, thresholds: opts.thresholds };
  let seenPreemptions = 0;
  let options: PlacementOption[] = [];
  let zh = new ZoneHistory(0, est);
  let tracker = new ZoneStatsTracker(0);
  const withStats = opts.zoneStats ?? true;
  let lastK = -1;
  let lastCheckpointAt: number | undefined;
  const input: WorkloadDecisionInput = { workload, options, history, progress: { doneMs: 0 }, overhead: opts.overhead };
  return {
    name: opts.name ?? 'spotfleet',
    reset(grid) {
      workload = opts.deadlineMs !== undefined ? { ...opts.workload, deadline: new Date(grid.startMs + opts.deadlineMs).toISOString() } : opts.workload;
      history = { preemptions: [] };
      ctx = { now: grid.startMs, thresholds: opts.thresholds };
      if (opts.policies !== undefined) ctx.policies = opts.policies;
      seenPreemptions = 0;
      lastCheckpointAt = undefined;
      options = grid.zones.map((zone, z) => {
        const o: PlacementOption = { pool: spotPool, provider, capacity: 'spot', zone, gpuModel, pricePerGpuHour: 0, available: false };
        const r = grid.regions?.[grid.zoneRegion?.[z] ?? 0];
        if (r) o.region = r.region;
        return o;
      });
      options.push({ pool: odPool, provider, capacity: 'on-demand', gpuModel, pricePerGpuHour: grid.onDemandPerGpuHour, available: true });
      zh = new ZoneHistory(grid.zones.length, est);
      zh.reset(grid);
      // One tracker entry per zone, and the last for the market as a whole (some zone available).
      const nz = grid.zones.length;
      tracker = new ZoneStatsTracker(nz + 1);
      const lb = grid.lookback;
      if (lb) for (let j = 0; j < lb.ticks; j++) observeAll(tracker, grid.startMs - (lb.ticks - j) * grid.dtMs, lb.avail, j);
      lastK = -1;
      input.workload = workload;
      input.options = options;
      input.history = history;
      delete input.current;
      delete input.checkpointRegion;
      if (withStats) {
        const stats: Record<string, ZoneStats> = {};
        grid.zones.forEach((zone, z) => (stats[zoneStatsKey({ pool: spotPool, zone })] = tracker.stats[z] as ZoneStats));
        stats[marketStatsKey(spotPool)] = tracker.stats[nz] as ZoneStats;
        input.zoneStats = stats;
      } else delete input.zoneStats;
    },
    choose(s, grid) {
      const now = s.nowMs;
      ctx.now = now;
      while (lastK < s.k) {
        lastK++;
        zh.step(grid.startMs + lastK * grid.dtMs, grid.avail, lastK);
        observeAll(tracker, grid.startMs + lastK * grid.dtMs, grid.avail, lastK);
      }
      const home = grid.regions?.[s.checkpointRegion];
      if (home) input.checkpointRegion = home.region;
      else delete input.checkpointRegion;
      for (let z = 0; z < grid.zones.length; z++) {
        const o = options[z] as PlacementOption;
        o.pricePerGpuHour = (grid.spotPerGpuHour[z] as Float64Array)[s.k] as number;
        o.available = ((grid.avail[z] as Uint8Array)[s.k] as number) === 1;
        o.preemptionRatePerHour = zh.rate(z);
        const since = zh.upSince[z] as number;
        if (o.available && !Number.isNaN(since)) o.availableSince = since;
        else delete o.availableSince;
      }
      while (seenPreemptions < s.preemptionTicks.length) {
        history.preemptions.push(grid.startMs + (s.preemptionTicks[seenPreemptions] as number) * grid.dtMs);
        seenPreemptions++;
      }
      if (s.lastMoveTick !== undefined) history.lastMoveAt = grid.startMs + s.lastMoveTick * grid.dtMs;
      if (s.checkpointed > 0) lastCheckpointAt ??= now;
      input.progress = lastCheckpointAt !== undefined ? { doneMs: s.progress * grid.dtMs, lastCheckpointAt } : { doneMs: s.progress * grid.dtMs };
      if (s.loc !== IDLE) {
        const spot = s.loc >= SPOT0;
        const cur: CurrentPlacement = {
          pool: spot ? spotPool : odPool,
          provider,
          capacity: spot ? 'spot' : 'on-demand',
          node: `backtest-${s.loc}-${s.sinceTick}`,
          pricePerGpuHour: spot ? ((grid.spotPerGpuHour[s.loc - SPOT0] as Float64Array)[s.k] as number) : grid.onDemandPerGpuHour,
          since: grid.startMs + s.sinceTick * grid.dtMs,
        };
        if (spot) cur.zone = grid.zones[s.loc - SPOT0] as string;
        if (s.evicted) cur.evicted = true;
        input.current = cur;
      } else delete input.current;
      const d = decide(input, ctx);
      if (d.pinOnDemandUntil !== undefined) {
        history.pinnedOnDemandUntil = d.pinOnDemandUntil;
        const why = d.reasons.find((r) => r.rule.includes('deadline'));
        history.pinnedReason = why?.text ?? 'pinned by the policy';
      }
      switch (d.action) {
        case 'stay':
          return s.evicted ? IDLE : s.loc;
        case 'place':
        case 'move': {
          const t = d.target;
          if (!t) return IDLE;
          if (t.capacity === 'on-demand') return ON_DEMAND;
          const z = t.zone === undefined ? -1 : grid.zones.indexOf(t.zone);
          return z >= 0 ? SPOT0 + z : IDLE;
        }
        default:
          return IDLE;
      }
    },
  };
}
