// The simulated workload: replays one job on a grid tick by tick, asks a policy where to be, and
// books cost, hours, changeovers, preemptions and lost work. Pure and allocation-light so that 45
// days of ticks replay in milliseconds.
//
// Model (the offline optimum in optimum.ts is exact for exactly this model):
// - each tick the workload is idle (pays nothing), on on-demand, or on spot in one zone;
// - every start into a location (the first start, a restart after waiting or a preemption, a zone
//   change, spot ↔ on-demand) costs `changeoverTicks` ticks paid at the new location's price with no
//   progress; a voluntary move or stop checkpoints first, so it loses nothing;
// - a preemption happens when the trace says the current spot zone is unavailable in a tick; the
//   notice comes before it (AWS: 120 s): when the checkpoint time fits in the notice window the
//   emergency checkpoint succeeds and nothing is lost, else progress falls back to the last periodic
//   checkpoint (every `checkpointIntervalTicks` of progress) — except for a clairvoyant schedule
//   (the optimum), which checkpoints in the tick before a preemption it knows is coming;
// - a tick that completes the work is paid in full; the run ends there.
import { HOUR_MS } from '../core/units.js';
import { IDLE, ON_DEMAND, SPOT0, isAvailable, moveEgress, regionAfter, tickCost, type Grid, type Job } from './model.js';

/** What a policy sees at the start of a tick, before it chooses where to be. */
export interface SimState {
  /** Tick index (0 = window start). */
  k: number;
  nowMs: number;
  /** Current location; after a preemption, still the lost zone with `evicted` set. */
  loc: number;
  evicted: boolean;
  /** Ticks of changeover still to go at `loc`. */
  changeoverLeft: number;
  /** Ticks of work done. */
  progress: number;
  /** Progress saved by the newest checkpoint. */
  checkpointed: number;
  /** Tick of the last start/move into `loc`. */
  sinceTick: number;
  /** Ticks of each preemption suffered. */
  preemptionTicks: number[];
  lastMoveTick: number | undefined;
  /** Region index (grid.regions) the newest checkpoint is in. */
  checkpointRegion: number;
}

/** An online (or replayed) policy: returns the location code for this tick. */
export interface BacktestPolicy {
  readonly name: string;
  /**
   * Knows the trace (the offline optimum, brute force): checkpoints in the tick before each
   * preemption, which costs no progress in this model, so a preemption never loses work.
   */
  readonly clairvoyant?: boolean;
  /** Called once before a run, so a policy can reset per-run memory. */
  reset?(grid: Grid, job: Job): void;
  choose(state: Readonly<SimState>, grid: Grid, job: Job): number;
}

export interface RunStats {
  policy: string;
  costUsd: number;
  spotHours: number;
  onDemandHours: number;
  idleHours: number;
  /** Paid hours spent in changeovers. */
  changeoverHours: number;
  /** Changeovers after the first start (zone changes, spot ↔ on-demand, restarts). */
  migrations: number;
  /** USD of checkpoint egress paid on moves across regions (included in costUsd). */
  egressUsd: number;
  preemptions: number;
  lostWorkHours: number;
  /** Hours from the window start to completion; undefined when the run never finished. */
  finishHours: number | undefined;
  deadlineMet: boolean;
  /** Location code per tick until completion (or the horizon). */
  timeline: Uint8Array;
  /** Cumulative USD at the end of each tick of the timeline. */
  cumulativeCost: Float64Array;
}

/**
 * Simulates `policy` on `grid` for `job` for at most `horizon` ticks (default: the grid).
 * @example simulate(grid, job, greedyPolicy()).costUsd
 */
export function simulate(grid: Grid, job: Job, policy: BacktestPolicy, horizon = grid.ticks): RunStats {
  const H = Math.min(horizon, grid.ticks);
  const C = job.changeoverTicks;
  const W = job.workTicks;
  const s: SimState = { k: 0, nowMs: grid.startMs, loc: IDLE, evicted: false, changeoverLeft: 0, progress: 0, checkpointed: 0, sinceTick: 0, preemptionTicks: [], lastMoveTick: undefined, checkpointRegion: job.homeRegion ?? 0 };
  policy.reset?.(grid, job);
  const timeline = new Uint8Array(H);
  const cum = new Float64Array(H);
  let cost = 0;
  let spotT = 0;
  let odT = 0;
  let idleT = 0;
  let changeT = 0;
  let changeovers = 0;
  let lost = 0;
  let egress = 0;
  let finish = -1;
  let k = 0;
  for (; k < H; k++) {
    s.k = k;
    s.nowMs = grid.startMs + k * grid.dtMs;
    s.evicted = false;
    if (s.loc >= SPOT0 && !isAvailable(grid, s.loc, k)) {
      s.evicted = true;
      s.preemptionTicks.push(k);
      if (!job.emergencyCheckpointOk && !policy.clairvoyant && s.progress > s.checkpointed) {
        lost += s.progress - s.checkpointed;
        s.progress = s.checkpointed;
      }
      s.checkpointed = s.progress;
    }
    let choice = policy.choose(s, grid, job);
    if (!(choice >= IDLE && choice < SPOT0 + grid.zones.length) || !isAvailable(grid, choice, k)) choice = IDLE;
    if (choice !== s.loc || s.evicted) {
      // A voluntary move or stop checkpoints first; a preempted one already did (or lost work above).
      s.checkpointed = s.progress;
      if (choice !== IDLE) {
        const e = moveEgress(grid, job, s.checkpointRegion, choice);
        cost += e;
        egress += e;
        s.checkpointRegion = regionAfter(grid, s.checkpointRegion, choice);
        changeovers++;
        s.changeoverLeft = C;
        s.sinceTick = k;
        s.lastMoveTick = k;
      } else {
        s.changeoverLeft = 0;
      }
      s.loc = choice;
    }
    if (s.loc === IDLE) {
      idleT++;
    } else {
      cost += tickCost(grid, job, s.loc, k);
      if (s.loc === ON_DEMAND) odT++;
      else spotT++;
      if (s.changeoverLeft > 0) {
        s.changeoverLeft--;
        changeT++;
      } else {
        s.progress++;
        if (s.progress - s.checkpointed >= job.checkpointIntervalTicks) s.checkpointed = s.progress;
      }
    }
    timeline[k] = s.loc;
    cum[k] = cost;
    if (s.progress >= W) {
      finish = k + 1;
      k++;
      break;
    }
  }
  const h = grid.dtMs / HOUR_MS;
  return {
    policy: policy.name,
    costUsd: cost,
    spotHours: spotT * h,
    onDemandHours: odT * h,
    idleHours: idleT * h,
    changeoverHours: changeT * h,
    migrations: Math.max(0, changeovers - 1),
    egressUsd: egress,
    preemptions: s.preemptionTicks.length,
    lostWorkHours: lost * h,
    finishHours: finish >= 0 ? finish * h : undefined,
    deadlineMet: finish >= 0 && finish <= job.deadlineTicks,
    timeline: timeline.slice(0, k),
    cumulativeCost: cum.slice(0, k),
  };
}

/** A clairvoyant policy that replays a fixed schedule of location codes (idle past its end). */
export function replayPolicy(name: string, schedule: ArrayLike<number>): BacktestPolicy {
  return {
    name,
    clairvoyant: true,
    choose: (s) => (s.k < schedule.length ? (schedule[s.k] as number) : IDLE),
  };
}
