// Deadline-aware strategy for workloads with `expectedDuration` and `deadline`: whether to use spot,
// wait for spot (spending slack), or go to on-demand and stay (the safety net). Consulted by
// decideWorkload; the backtest measures it against the offline optimum.
//
// The strategy (measured on the AWS V100 9-zone trace, see test/backtest): slack is free money.
// While the time left exceeds the work left plus two changeovers and a margin, run on spot whenever
// any allowed zone has it, stay in the current zone while it lasts (no hopping for small price
// differences: every move costs a changeover), move to the cheapest available zone on a preemption,
// and wait (pay nothing) when no zone has spot. When the slack falls to two changeovers plus the
// margin, go to on-demand and stay there until done: one changeover to get there, one in reserve.
import type { DecideContext, PlacementOption, Reason, WorkloadDecisionInput } from './types.js';

export interface DeadlineAdvice {
  /**
   * spot-or-wait: run on spot when some is available, otherwise wait (no cost) — slack allows it;
   * spot-or-on-demand: the usual rules (spot when it pays, else on-demand);
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

/** Knobs of the strategy (the defaults are what the backtest measured). */
export interface DeadlineTuning {
  /** Margin on top of two changeovers before the safety net fires, ms. */
  marginMs: number;
  /** Slack reserve: below `reserveMs + reservePerWorkHour × work left`, bridge outages on on-demand instead of waiting. */
  reserveMs: number;
  reservePerWorkHour: number;
}

export const DEFAULT_DEADLINE_TUNING: DeadlineTuning = { marginMs: DEADLINE_MARGIN_MS, reserveMs: 3 * 3_600_000, reservePerWorkHour: 0.1 };

function same(o: PlacementOption, cur: NonNullable<WorkloadDecisionInput['current']>): boolean {
  return o.capacity === cur.capacity && (o.zone ?? '') === (cur.zone ?? '') && (cur.pool === undefined || o.pool === cur.pool);
}

function cheapest(options: PlacementOption[]): PlacementOption | undefined {
  let best: PlacementOption | undefined;
  for (const o of options) {
    if (!best || o.pricePerGpuHour < best.pricePerGpuHour || (o.pricePerGpuHour === best.pricePerGpuHour && `${o.pool}/${o.zone ?? ''}` < `${best.pool}/${best.zone ?? ''}`)) best = o;
  }
  return best;
}

/**
 * Advice for a workload with a deadline; undefined when the workload has no deadline or no
 * expected duration, or is already done (then the usual rules apply).
 *
 * Numbers in `reason.numbers` (hours): timeLeft, workLeft, changeover, slack (= timeLeft − workLeft),
 * netAt (the slack at which the safety net fires: 2 × changeover + margin).
 * @example adviseDeadline(input, { now, thresholds })?.mode // 'spot-or-wait'
 */
export function adviseDeadline(input: WorkloadDecisionInput, ctx: DecideContext, tuning: DeadlineTuning = DEFAULT_DEADLINE_TUNING): DeadlineAdvice | undefined {
  const w = input.workload;
  if (w.deadline === undefined || w.expectedDurationMs === undefined) return undefined;
  const deadline = Date.parse(w.deadline);
  if (!Number.isFinite(deadline)) return undefined;
  const workLeft = Math.max(0, w.expectedDurationMs - input.progress.doneMs);
  if (workLeft <= 0) return undefined;
  const timeLeft = deadline - ctx.now;
  const changeover = input.overhead.checkpointMs + input.overhead.transferMs + input.overhead.restartMs;
  const netAt = 2 * changeover + tuning.marginMs;
  const reserve = Math.max(netAt + changeover, tuning.reserveMs + tuning.reservePerWorkHour * workLeft);
  const slack = timeLeft - workLeft;
  const H = 3_600_000;
  const numbers = { timeLeft: timeLeft / H, workLeft: workLeft / H, changeover: changeover / H, slack: slack / H, netAt: netAt / H, reserve: reserve / H };
  const cur = input.current;
  const running = cur !== undefined && !cur.evicted;
  const onDemandNow = running && cur.capacity === 'on-demand';
  const pinned = input.history.pinnedOnDemandUntil !== undefined && input.history.pinnedOnDemandUntil > ctx.now;
  const available = input.options.filter((o) => o.available);

  if (slack < netAt || (onDemandNow && pinned)) {
    const pinUntil = Math.max(deadline, ctx.now + workLeft + changeover);
    const reason: Reason = onDemandNow && slack >= netAt
      ? { rule: 'deadline-net', text: 'stay on on-demand until done: the deadline safety net holds', numbers }
      : { rule: 'deadline-net', text: `on-demand until done: ${(timeLeft / H).toFixed(2)} h left for ${(workLeft / H).toFixed(2)} h of work, under work + 2 × changeover + margin`, numbers };
    if (onDemandNow) return { mode: 'on-demand', reason, pinUntil, recommended: { action: 'stay' } };
    const od = cheapest(available.filter((o) => o.capacity === 'on-demand'));
    return od
      ? { mode: 'on-demand', reason, pinUntil, recommended: { action: cur ? 'move' : 'place', target: od } }
      : { mode: 'on-demand', reason, pinUntil };
  }

  const spot = available.filter((o) => o.capacity === 'spot');
  const inReserve = slack < reserve;
  // Stay in the current spot zone while it lasts: every move costs a changeover of paid time and slack.
  if (running && cur.capacity === 'spot' && spot.some((o) => same(o, cur))) {
    return { mode: 'spot-or-wait', reason: { rule: 'deadline-slack', text: `stay on spot: ${(slack / H).toFixed(2)} h of slack`, numbers }, recommended: { action: 'stay' } };
  }
  const best = cheapest(spot);
  // Leaving on-demand for spot costs a changeover of slack; afterwards the net must still be a changeover away.
  if (best && onDemandNow && slack < netAt + changeover) {
    return { mode: 'on-demand', reason: { rule: 'deadline-net', text: `stay on on-demand: ${(slack / H).toFixed(2)} h of slack is too little to go back to spot and return`, numbers }, recommended: { action: 'stay' } };
  }
  if (best) {
    const where = `${best.pool}${best.zone ? `/${best.zone}` : ''}`;
    return {
      mode: 'spot-or-wait',
      reason: { rule: 'deadline-slack', text: `spot at ${where} ($${best.pricePerGpuHour}/GPU-h): ${(slack / H).toFixed(2)} h of slack`, numbers },
      recommended: { action: cur ? 'move' : 'place', target: best },
    };
  }
  if (inReserve) {
    // Slack is in reserve: bridge the outage on on-demand (slack stays put there) rather than spend it.
    if (onDemandNow) return { mode: 'spot-or-on-demand', reason: { rule: 'deadline-reserve', text: `stay on on-demand until spot returns: ${(slack / H).toFixed(2)} h of slack, reserve ${(reserve / H).toFixed(2)} h`, numbers }, recommended: { action: 'stay' } };
    const od = cheapest(available.filter((o) => o.capacity === 'on-demand'));
    if (od) return { mode: 'spot-or-on-demand', reason: { rule: 'deadline-reserve', text: `on-demand until spot returns: no spot, ${(slack / H).toFixed(2)} h of slack is under the reserve ${(reserve / H).toFixed(2)} h`, numbers }, recommended: { action: cur ? 'move' : 'place', target: od } };
  }
  return {
    mode: 'spot-or-wait',
    reason: { rule: 'deadline-slack', text: `wait for spot: none available, ${(slack / H).toFixed(2)} h of slack left (on-demand at ${(netAt / H).toFixed(2)} h)`, numbers },
    recommended: { action: 'wait' },
  };
}
