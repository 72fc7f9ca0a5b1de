// Deadline-aware strategy for workloads with `expectedDuration` and `deadline`: whether to use spot,
// wait for spot (spending slack), or go to on-demand and stay (the safety net). For such workloads
// decideWorkload follows this advice (within caps, eligibility and mandatory policies); the
// backtest measures it against the offline optimum.
//
// The strategy (tuned on the AWS V100 9-zone trace, see test/backtest): slack is free money.
// - While the slack (time left − work left) is above a reserve, run on spot whenever an allowed zone
//   has it and wait (pay nothing) when none has.
// - Stay in the current spot zone while it lasts; hop only when another zone is cheaper, after
//   expected preemptions, by more than the changeover on both sides over the expected stay there.
// - Rank zones by price × (1 + preemption rate × changeover): each preemption costs a changeover.
// - Once the slack is in reserve, bridge outages on on-demand, and leave on-demand only for spot
//   that has been up long enough to be worth the round trip (fresh capacity tends to flap).
// - When the slack falls to two changeovers plus a margin, go to on-demand and stay until done: one
//   changeover to get there, one in reserve. Slack never grows, so the net holds by itself.
import type { DecideContext, PlacementOption, Reason, WorkloadDecisionInput } from './types.js';

export interface DeadlineAdvice {
  /**
   * spot-or-wait: run on spot when some is available, otherwise wait (no cost) — slack allows it;
   * spot-or-on-demand: slack in reserve: bridge outages on on-demand, back to spot that has proven itself;
   * on-demand: the safety net: on-demand now and until done.
   */
  mode: 'spot-or-wait' | 'spot-or-on-demand' | 'on-demand';
  reason: Reason;
  /** Pin to on-demand until this time (ms epoch) — the safety net holds until the job is done. */
  pinUntil?: number;
  /**
   * The concrete placement the strategy recommends under `mode`, from `input.options`: stay where it
   * runs, place/move to `target`, or wait (not running, checkpoint and stop if running). Absent when
   * nothing fits (e.g. on-demand mode with no on-demand option): then the usual rules apply.
   */
  recommended?: { action: 'stay' | 'place' | 'move' | 'wait'; target?: PlacementOption };
}

/** Extra time kept on top of two changeovers, for decision intervals and rounding; ms. */
export const DEADLINE_MARGIN_MS = 10 * 60_000;

/** Knobs of the strategy (the defaults are what the backtest measured; see test/backtest). */
export interface DeadlineTuning {
  /** Margin on top of two changeovers before the safety net fires, ms. */
  marginMs: number;
  /** Slack reserve: below `reserveMs + reservePerWorkHour × work left`, bridge outages on on-demand instead of waiting. */
  reserveMs: number;
  reservePerWorkHour: number;
  /**
   * Leaving on-demand for spot, or taking spot instead of on-demand once the slack is in reserve:
   * the spot capacity must have been available this long (`PlacementOption.availableSince`). Capacity
   * that has just reappeared often vanishes again within a changeover or two, and the round trip
   * costs two changeovers of money and slack. ms; options without `availableSince` qualify.
   * (A threshold for leaving *idle* was measured too and did not pay: idling burns slack anyway.)
   */
  minUptimeFromOnDemandMs: number;
  /**
   * On spot, move to another zone when (price difference after expected preemptions) × expected stay
   * there exceeds `switchGain` × the changeover's cost on both sides; 0 never hops. The expected stay
   * is the work left, capped by 1 / the zone's preemption rate.
   */
  switchGain: number;
  /** Weight of the expected preemption cost (rate × changeover) when ranking spot zones; 0 ranks by price only. */
  preemptionWeight: number;
}

export const DEFAULT_DEADLINE_TUNING: DeadlineTuning = {
  marginMs: DEADLINE_MARGIN_MS,
  reserveMs: 3_600_000,
  reservePerWorkHour: 0.1,
  minUptimeFromOnDemandMs: 45 * 60_000,
  switchGain: 1,
  preemptionWeight: 1,
};

const H = 3_600_000;

/**
 * A reason whose text is formatted only when read: the backtest asks for millions of decisions and
 * reads none of their texts. `text` is a getter on the prototype (an accessor on each object literal
 * measured 3× slower to create); `toJSON` gives the plain `{ rule, text, numbers }` for plan files.
 */
class LazyReason implements Reason {
  readonly rule: string;
  readonly numbers: Record<string, number>;
  #format: (() => string) | undefined;
  #text: string | undefined;

  constructor(rule: string, numbers: Record<string, number>, format: () => string) {
    this.rule = rule;
    this.numbers = numbers;
    this.#format = format;
  }

  get text(): string {
    if (this.#text === undefined) {
      this.#text = (this.#format as () => string)();
      this.#format = undefined;
    }
    return this.#text;
  }

  toJSON(): Reason {
    return { rule: this.rule, text: this.text, numbers: this.numbers };
  }
}

/** A Reason whose text is formatted on first read (see LazyReason). */
export function lazyReason(rule: string, numbers: Record<string, number>, text: () => string): Reason {
  return new LazyReason(rule, numbers, text);
}

function fmtH(ms: number): string {
  return (ms / H).toFixed(2);
}

/**
 * Advice for a workload with a deadline; undefined when the workload has no deadline or no
 * expected duration, or is already done (then the usual rules apply).
 *
 * Numbers in `reason.numbers` (hours): timeLeft, workLeft, changeover, slack (= timeLeft − workLeft),
 * netAt (the slack at which the safety net fires: 2 × changeover + margin), reserve (below it,
 * outages are bridged on on-demand).
 * @example adviseDeadline(input, { now, thresholds })?.mode // 'spot-or-wait'
 */
export function adviseDeadline(input: WorkloadDecisionInput, ctx: DecideContext, tuning: DeadlineTuning = DEFAULT_DEADLINE_TUNING): DeadlineAdvice | undefined {
  const w = input.workload;
  if (w.deadline === undefined || w.expectedDurationMs === undefined) return undefined;
  const deadline = Date.parse(w.deadline);
  if (!Number.isFinite(deadline)) return undefined;
  const workLeft = Math.max(0, w.expectedDurationMs - input.progress.doneMs);
  if (workLeft <= 0) return undefined;
  const now = ctx.now;
  const timeLeft = deadline - now;
  const changeover = input.overhead.checkpointMs + input.overhead.transferMs + input.overhead.restartMs;
  const netAt = 2 * changeover + tuning.marginMs;
  const reserve = Math.max(netAt + changeover, tuning.reserveMs + tuning.reservePerWorkHour * workLeft);
  const slack = timeLeft - workLeft;
  const numbers = { timeLeft: timeLeft / H, workLeft: workLeft / H, changeover: changeover / H, slack: slack / H, netAt: netAt / H, reserve: reserve / H };
  const cur = input.current;
  const running = cur !== undefined && !cur.evicted;
  const onDemandNow = running && cur.capacity === 'on-demand';
  const action = cur ? 'move' : 'place';

  // One pass over the options: the cheapest on-demand, whether the current spot zone still has
  // capacity, and the best spot zone that has proven itself long enough for where we come from.
  const inReserve = slack < reserve;
  const needUptime = onDemandNow || inReserve ? tuning.minUptimeFromOnDemandMs : 0;
  const C = changeover / H;
  let od: PlacementOption | undefined;
  let best: PlacementOption | undefined;
  let bestScore = Infinity;
  let stayHere = false;
  let here: PlacementOption | undefined;
  for (const o of input.options) {
    if (!o.available) continue;
    if (o.capacity === 'on-demand') {
      if (!od || o.pricePerGpuHour < od.pricePerGpuHour || (o.pricePerGpuHour === od.pricePerGpuHour && key(o) < key(od))) od = o;
      continue;
    }
    if (running && cur.capacity === 'spot' && same(o, cur)) {
      stayHere = true;
      here = o;
      continue;
    }
    if (o.availableSince !== undefined && now - o.availableSince < needUptime) continue;
    // Each expected preemption costs a changeover of paid time without progress.
    const score = o.pricePerGpuHour * (1 + tuning.preemptionWeight * (o.preemptionRatePerHour ?? 0) * C);
    if (score < bestScore || (score === bestScore && best && key(o) < key(best))) {
      best = o;
      bestScore = score;
    }
  }

  if (slack < netAt) {
    const pinUntil = Math.max(deadline, now + workLeft + changeover);
    const reason = onDemandNow
      ? lazyReason('deadline-net', numbers, () => 'stay on on-demand until done: the deadline safety net holds')
      : lazyReason('deadline-net', numbers, () => `on-demand until done: ${fmtH(timeLeft)} h left for ${fmtH(workLeft)} h of work, under work + 2 × changeover + margin`);
    if (onDemandNow) return { mode: 'on-demand', reason, pinUntil, recommended: { action: 'stay' } };
    return od ? { mode: 'on-demand', reason, pinUntil, recommended: { action, target: od } } : { mode: 'on-demand', reason, pinUntil };
  }

  // Stay in the current spot zone while it lasts: every move costs a changeover of paid time and slack.
  // ... unless another zone is enough cheaper (after expected preemptions) that the difference
  // over the expected stay there pays for the changeover on both sides.
  if (stayHere && here && best && tuning.switchGain > 0) {
    const eHere = here.pricePerGpuHour * (1 + tuning.preemptionWeight * (here.preemptionRatePerHour ?? 0) * C);
    const rate = best.preemptionRatePerHour ?? 0;
    const stay = Math.min(workLeft / H, rate > 0 ? 1 / rate : Infinity);
    if ((eHere - bestScore) * stay > tuning.switchGain * C * (here.pricePerGpuHour + best.pricePerGpuHour)) {
      const b = best;
      return {
        mode: 'spot-or-wait',
        reason: lazyReason('deadline-slack', numbers, () => `move to spot at ${b.pool}${b.zone ? `/${b.zone}` : ''} ($${b.pricePerGpuHour}/GPU-h): cheaper than $${here.pricePerGpuHour}/GPU-h here by more than the changeover over the expected stay`),
        recommended: { action: 'move', target: b },
      };
    }
  }
  if (stayHere) {
    return { mode: 'spot-or-wait', reason: lazyReason('deadline-slack', numbers, () => `stay on spot: ${fmtH(slack)} h of slack`), recommended: { action: 'stay' } };
  }
  // Leaving on-demand for spot costs a changeover of slack; afterwards the net must still be a changeover away.
  if (onDemandNow && (!best || slack < netAt + changeover)) {
    return {
      mode: 'spot-or-on-demand',
      reason: best
        ? lazyReason('deadline-net', numbers, () => `stay on on-demand: ${fmtH(slack)} h of slack is too little to go back to spot and return`)
        : lazyReason('deadline-reserve', numbers, () => `stay on on-demand until spot returns: ${fmtH(slack)} h of slack, reserve ${fmtH(reserve)} h`),
      recommended: { action: 'stay' },
    };
  }
  if (best) {
    const b = best;
    return {
      mode: 'spot-or-wait',
      reason: lazyReason('deadline-slack', numbers, () => `spot at ${b.pool}${b.zone ? `/${b.zone}` : ''} ($${b.pricePerGpuHour}/GPU-h): ${fmtH(slack)} h of slack`),
      recommended: { action, target: b },
    };
  }
  if (inReserve && od) {
    // Slack is in reserve: bridge the outage on on-demand (slack stays put there) rather than spend it.
    return { mode: 'spot-or-on-demand', reason: lazyReason('deadline-reserve', numbers, () => `on-demand until spot returns: no spot, ${fmtH(slack)} h of slack is under the reserve ${fmtH(reserve)} h`), recommended: { action, target: od } };
  }
  return {
    mode: 'spot-or-wait',
    reason: lazyReason('deadline-slack', numbers, () => `wait for spot: none available${needUptime > 0 ? ' for long enough' : ''}, ${fmtH(slack)} h of slack left (on-demand at ${fmtH(netAt)} h)`),
    recommended: { action: 'wait' },
  };
}

function same(o: PlacementOption, cur: NonNullable<WorkloadDecisionInput['current']>): boolean {
  return o.capacity === cur.capacity && (o.zone ?? '') === (cur.zone ?? '') && (cur.pool === undefined || o.pool === cur.pool);
}

function key(o: PlacementOption): string {
  return `${o.pool}/${o.zone ?? ''}`;
}
