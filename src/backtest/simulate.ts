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
import { IDLE, ON_DEMAND, SPOT0, isAvailable, moveEgress, noRegion, regionAfter, tickCost, type Grid, type Job } from './model.js';

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
  /** Region index (grid.regions) the newest checkpoint is in; grid.regions.length: none yet. */
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
 * One job's run, tick by tick: `step(k)` for k = 0, 1, … until it returns true (done) or the horizon.
 * `simulate` drives one; the fleet backtest drives many on per-workload views of one market.
 */
export class JobRun {
  readonly s: SimState;
  private readonly H: number;
  private readonly timeline: Uint8Array;
  private readonly cum: Float64Array;
  private cost = 0;
  private spotT = 0;
  private odT = 0;
  private idleT = 0;
  private changeT = 0;
  private changeovers = 0;
  private lost = 0;
  private egress = 0;
  private finish = -1;
  private ticks = 0;

  constructor(
    private readonly grid: Grid,
    private readonly job: Job,
    private readonly policy: BacktestPolicy,
    horizon = grid.ticks,
  ) {
    this.H = Math.min(horizon, grid.ticks);
    this.s = { k: 0, nowMs: grid.startMs, loc: IDLE, evicted: false, changeoverLeft: 0, progress: 0, checkpointed: 0, sinceTick: 0, preemptionTicks: [], lastMoveTick: undefined, checkpointRegion: job.homeRegion ?? noRegion(grid) };
    policy.reset?.(grid, job);
    this.timeline = new Uint8Array(this.H);
    this.cum = new Float64Array(this.H);
  }

  get done(): boolean {
    return this.finish >= 0 || this.ticks >= this.H;
  }

  /** Plays tick k (the next one); returns true when the job is done or the horizon reached. */
  step(k: number): boolean {
    const { grid, job, policy, s } = this;
    if (this.done) return true;
    s.k = k;
    s.nowMs = grid.startMs + k * grid.dtMs;
    s.evicted = false;
    if (s.loc >= SPOT0 && !isAvailable(grid, s.loc, k)) {
      s.evicted = true;
      s.preemptionTicks.push(k);
      if (!job.emergencyCheckpointOk && !policy.clairvoyant && s.progress > s.checkpointed) {
        this.lost += s.progress - s.checkpointed;
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
        this.cost += e;
        this.egress += e;
        s.checkpointRegion = regionAfter(grid, s.checkpointRegion, choice);
        this.changeovers++;
        s.changeoverLeft = job.changeoverTicks;
        s.sinceTick = k;
        s.lastMoveTick = k;
      } else {
        s.changeoverLeft = 0;
      }
      s.loc = choice;
    }
    if (s.loc === IDLE) {
      this.idleT++;
    } else {
      this.cost += tickCost(grid, job, s.loc, k);
      if (s.loc === ON_DEMAND) this.odT++;
      else this.spotT++;
      if (s.changeoverLeft > 0) {
        s.changeoverLeft--;
        this.changeT++;
      } else {
        s.progress++;
        if (s.progress - s.checkpointed >= job.checkpointIntervalTicks) s.checkpointed = s.progress;
      }
    }
    this.timeline[k] = s.loc;
    this.cum[k] = this.cost;
    this.ticks = k + 1;
    if (s.progress >= job.workTicks) this.finish = k + 1;
    return this.done;
  }

  result(): RunStats {
    const h = this.grid.dtMs / HOUR_MS;
    const f = this.finish;
    return {
      policy: this.policy.name,
      costUsd: this.cost,
      spotHours: this.spotT * h,
      onDemandHours: this.odT * h,
      idleHours: this.idleT * h,
      changeoverHours: this.changeT * h,
      migrations: Math.max(0, this.changeovers - 1),
      egressUsd: this.egress,
      preemptions: this.s.preemptionTicks.length,
      lostWorkHours: this.lost * h,
      finishHours: f >= 0 ? f * h : undefined,
      deadlineMet: f >= 0 && f <= this.job.deadlineTicks,
      timeline: this.timeline.slice(0, this.ticks),
      cumulativeCost: this.cum.slice(0, this.ticks),
    };
  }
}

/**
 * Simulates `policy` on `grid` for `job` for at most `horizon` ticks (default: the grid).
 * @example simulate(grid, job, greedyPolicy()).costUsd
 */
export function simulate(grid: Grid, job: Job, policy: BacktestPolicy, horizon = grid.ticks): RunStats {
  const run = new JobRun(grid, job, policy, horizon);
  for (let k = 0; !run.step(k); k++);
  return run.result();
}

/** A clairvoyant policy that replays a fixed schedule of location codes (idle past its end). */
export function replayPolicy(name: string, schedule: ArrayLike<number>): BacktestPolicy {
  return {
    name,
    clairvoyant: true,
    choose: (s) => (s.k < schedule.length ? (schedule[s.k] as number) : IDLE),
  };
}
