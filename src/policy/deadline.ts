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
//
// With `input.zoneStats` (what has been seen of each zone's availability; the backtest always has
// it, plan/watch when the lead's state records it) the zone choices rest on how long each zone is
// expected to last (uptime.ts), not on a fixed uptime threshold and a rate:
// - a zone is ranked by its cost per hour of progress: price × expected paid hours / expected
//   progress hours (+ egress / progress), so a zone that tends to vanish within a changeover or two
//   ranks as what it really costs;
// - a move away from a running placement (another zone, or on-demand → spot) happens only when the
//   price difference × the expected stay there exceeds the changeover (the paid time without
//   progress, expected), the egress of a move across regions and the risk (the extra chance that the
//   target ends before the job, forcing one more changeover) — the break-even `explain` shows;
// - taking spot after an eviction, or to start, happens only when its cost per progress beats
//   on-demand; otherwise wait while the slack is above the reserve, on-demand below it — and also
//   when the slack is below what the expected preemptions will need and the whole market has been
//   down a while (BRIDGE_AFTER_CHANGEOVERS): waiting would spend slack the preemptions need.
// How SkyNomad (NSDI'27: lifetime prediction and migration cost in one monetary model), Can't Be
// Late (NSDI'24: Uniform Progress and its safety net) and ROSS (INFOCOM'26: a deadline-to-work
// ratio that triggers on-demand) reason about moving vs staying is summarised in docs/traces.md.
import { egressUsd, regionOfZone, regionRef, type RegionRef } from '../core/egress.js';
import { poolZoneLabel } from '../core/address.js';
import type { DecideContext, PlacementOption, Reason, WorkloadDecisionInput } from './types.js';
import { availabilityFraction, estimateUptime, expectedDownHours, marketStatsKey, meanUpHours, survival, zoneStatsKey, type UptimeEstimate, type ZoneStats } from './uptime.js';

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
      if (!od || o.pricePerGpuHour < od.pricePerGpuHour || (o.pricePerGpuHour === od.pricePerGpuHour && zoneStatsKey(o) < zoneStatsKey(od))) od = o;
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
    if (score < bestScore || (score === bestScore && best && zoneStatsKey(o) < zoneStatsKey(best))) {
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

  if (input.zoneStats !== undefined) return adviseByExpectedStay(input, ctx, { numbers, slack, netAt, reserve, changeover, workLeft, od, action, onDemandNow, running });

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
        reason: lazyReason('deadline-slack', numbers, () => `move to spot at ${poolZoneLabel(b.pool, b.zone)} ($${b.pricePerGpuHour}/GPU-h): cheaper than $${here.pricePerGpuHour}/GPU-h here by more than the changeover over the expected stay`),
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
      reason: lazyReason('deadline-slack', numbers, () => `spot at ${poolZoneLabel(b.pool, b.zone)} ($${b.pricePerGpuHour}/GPU-h): ${fmtH(slack)} h of slack`),
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

/** The region of an option (its own, else its zone's); undefined when it has neither (no egress). */
export function optionRegion(o: { zone?: string | undefined; region?: string | undefined }): RegionRef | undefined {
  if (o.region !== undefined) {
    const r = regionRef(o.region);
    return r.cloud === 'unknown' && o.zone !== undefined ? { cloud: regionOfZone(o.zone).cloud, region: o.region } : r;
  }
  return o.zone !== undefined ? regionOfZone(o.zone) : undefined;
}

/** Where the newest checkpoint is: the input's, else the current placement's region. */
export function checkpointRegionOf(input: WorkloadDecisionInput): RegionRef | undefined {
  const cur = input.current;
  if (input.checkpointRegion !== undefined) return regionRef(input.checkpointRegion);
  if (!cur) return undefined;
  let region: string | undefined;
  for (const o of input.options) if (o.region !== undefined && o.pool === cur.pool && (o.zone ?? '') === (cur.zone ?? '') && o.capacity === cur.capacity) region = o.region;
  return optionRegion({ zone: cur.zone, region });
}

/** USD of egress to move the workload's checkpoint to `o` (0 without checkpoint.sizeGB or a known region). */
export function egressTo(input: WorkloadDecisionInput, o: { zone?: string | undefined; region?: string | undefined }, from: RegionRef | undefined): number {
  const size = input.checkpointSizeGB ?? input.workload.checkpoint?.sizeGB;
  if (size === undefined || from === undefined) return 0;
  const to = optionRegion(o);
  return to === undefined ? 0 : egressUsd(size, from, to);
}

interface Assessed {
  o: PlacementOption;
  est: UptimeEstimate;
  egress: number;
  /** USD per hour of progress there, changeover and egress included. */
  perProgress: number;
}

interface Ctx {
  numbers: Record<string, number>;
  slack: number;
  netAt: number;
  /** The fixed reserve; with zone statistics the reserve is at most this (see adviseByExpectedStay). */
  reserve: number;
  changeover: number;
  workLeft: number;
  od: PlacementOption | undefined;
  action: 'move' | 'place';
  onDemandNow: boolean;
  running: boolean;
}

/**
 * The break-even of moving from a placement paying `fromPrice` (per GPU-hour) to `t`: the price
 * difference over the expected stay there, against the changeover (expected paid time without
 * progress: ≤ C when the target may end during it), the egress, and the risk (the target's extra
 * chance to end before the job, each end costing one more changeover, paid where the job goes next:
 * `afterEndPrice` per GPU-hour, the target's own price when not given).
 */
export function breakEven(fromPrice: number, fromStayHours: number, fromEndProb: number, t: Assessed, gpus: number, checkpointHours: number, changeoverHours: number, slackValuePerHour: number, afterEndPrice?: number): Record<string, number> {
  const p = t.o.pricePerGpuHour;
  // The move gains the price difference only while both would have lasted: once the current
  // placement ends, the workload moves anyway and could go to the target then. E[min] of two
  // independent stays, taken as for exponentials: 1 / (1/a + 1/b); on-demand never ends.
  const tStay = t.est.progressHours;
  const stay = Number.isFinite(fromStayHours) ? (fromStayHours > 0 && tStay > 0 ? 1 / (1 / fromStayHours + 1 / tStay) : 0) : tStay;
  const gainUsd = (fromPrice - p) * gpus * stay;
  // The checkpoint runs where it is now; the rest of the changeover is paid at the target.
  const changeoverUsd = (checkpointHours * fromPrice + Math.max(0, t.est.paidHours - t.est.progressHours - checkpointHours) * p) * gpus;
  // Risk: each placement that ends before the job costs one more changeover; moving trades the
  // current one's chance for the target's (negative when the target is the safer of the two).
  const riskUsd = (t.est.endProb - fromEndProb) * changeoverHours * (afterEndPrice ?? p) * gpus;
  // Every hour without progress also spends an hour of slack, worth what it will cost to make up.
  const slackUsd = slackValuePerHour * gpus * Math.max(0, t.est.paidHours - t.est.progressHours + (t.est.endProb - fromEndProb) * changeoverHours);
  const breakEvenUsd = changeoverUsd + t.egress + riskUsd + slackUsd;
  return {
    targetExpectedUpHours: t.est.expectedUpHours,
    targetAgeHours: t.est.ageHours,
    targetUpSamples: t.est.samples,
    expectedStayHours: stay,
    targetEndProb: t.est.endProb,
    currentEndProb: fromEndProb,
    gainUsd,
    changeoverUsd,
    egressUsd: t.egress,
    riskUsd,
    slackValuePerHour,
    slackUsd,
    breakEvenUsd,
  };
}

function where(o: PlacementOption): string {
  return poolZoneLabel(o.pool, o.zone);
}

/** Delays (in changeovers) at which a move is reconsidered before it is made now. */
const PROVE_DELAYS = [1, 2, 4, 8];

/**
 * Move now, or let the target prove itself first? Heavy-tailed up-times make capacity that has just
 * appeared likely to vanish soon; waiting d hours keeps the current placement and the option to
 * move later, when the target, if still up, is expected to last longer. The value of a move after
 * d hours is P(target survives d) × (its break-even margin then − the gain forgone meanwhile);
 * the move is made now only when that is largest at d = 0 and positive.
 */
function moveNow(fromPrice: number, fromStay: number, fromEndProb: number, t: Assessed, stats: ZoneStats | undefined, now: number, C: number, W: number, G: number, ckH: number, slackValue: number, afterEndPrice?: number): { move: boolean; be: Record<string, number> } {
  const be = breakEven(fromPrice, fromStay, fromEndProb, t, G, ckH, C, slackValue, afterEndPrice);
  const v0 = (be.gainUsd as number) - (be.breakEvenUsd as number);
  if (!(v0 > 0)) return { move: false, be };
  let bestD = 0;
  let bestV = v0;
  for (const k of PROVE_DELAYS) {
    const d = k * C;
    if (d <= 0 || d >= W) continue;
    const p = survival(stats, now, d);
    if (p <= 0) continue;
    const est = estimateUptime(stats, now + d * H, C, W - d);
    const b = breakEven(fromPrice, Number.isFinite(fromStay) ? Math.max(0, fromStay - d) : fromStay, fromEndProb, { ...t, est }, G, ckH, C, slackValue, afterEndPrice);
    const v = p * ((b.gainUsd as number) - (b.breakEvenUsd as number) - (fromPrice - t.o.pricePerGpuHour) * G * d);
    if (v > bestV) {
      bestV = v;
      bestD = d;
    }
  }
  be.moveValueNowUsd = v0;
  be.bestDelayHours = bestD;
  be.moveValueAfterDelayUsd = bestV;
  return { move: bestD === 0, be };
}

function notYet(be: Record<string, number>, target: string): string {
  const gain = be.gainUsd as number;
  const cost = be.breakEvenUsd as number;
  if (gain > cost) return `moving to ${target} would pay ($${gain.toFixed(2)} over its expected stay against $${cost.toFixed(2)}), but more if it is still up in ${fmtH((be.bestDelayHours as number) * H)} h: let it prove itself`;
  return `moving to ${target} would save $${gain.toFixed(2)} over its expected stay, not more than the changeover, egress, risk and slack ($${cost.toFixed(2)})`;
}

/**
 * Fraction of the time no spot zone of the options had capacity. Measured where zoneStats has the
 * pools' market-wide records (`pool/*`, see marketStatsKey): zones of one market fail together (a
 * region outage, a capacity crunch), and multiplying their down fractions as if independent makes
 * a market that is down a fifth of the time look down never. Pools are taken as independent of
 * each other; without market records, zones are (the estimate before the records existed).
 */
export function marketDownFraction(options: readonly PlacementOption[], stats: Readonly<Record<string, ZoneStats>>, now: number): number {
  let independent = 1;
  const pools = new Set<string>();
  for (const o of options) {
    if (o.capacity !== 'spot') continue;
    independent *= 1 - availabilityFraction(stats[zoneStatsKey(o)], now);
    pools.add(o.pool);
  }
  // A young market record leans on the independent estimate (its prior), not on a blind 50%.
  const prior = pools.size > 0 ? 1 - Math.pow(independent, 1 / pools.size) : 0.5;
  let measured = 1;
  for (const p of pools) {
    const m = stats[marketStatsKey(p)];
    if (m === undefined) return independent;
    measured *= 1 - availabilityFraction(m, now, prior);
  }
  return pools.size > 0 ? measured : independent;
}

/**
 * How long a market outage has to last before it is bridged on on-demand to keep the slack the
 * preemptions will need, in changeovers. Measured on the benchmark and its held-out windows among
 * 2, 4 and 8: 2 and 4 bridged outages that ended soon after (rare-cheap p50 worse, held out too).
 */
export const BRIDGE_AFTER_CHANGEOVERS = 8;

/**
 * Hours since no spot zone of the options' pools has had capacity (the pools' market-wide records,
 * see marketStatsKey); 0 while some pool has spot, or without market records.
 */
export function marketDownForHours(options: readonly PlacementOption[], stats: Readonly<Record<string, ZoneStats>>, now: number): number {
  const pools = new Set<string>();
  for (const o of options) if (o.capacity === 'spot') pools.add(o.pool);
  if (pools.size === 0) return 0;
  let since = -Infinity;
  for (const p of pools) {
    const d = stats[marketStatsKey(p)]?.downSinceMs;
    if (d === undefined) return 0;
    since = Math.max(since, d);
  }
  return Math.max(0, (now - since) / H);
}

/** adviseDeadline's zone choices when the input carries zone statistics (see the header). */
function adviseByExpectedStay(input: WorkloadDecisionInput, ctx: DecideContext, c: Ctx): DeadlineAdvice {
  const now = ctx.now;
  const cur = input.current;
  const G = input.workload.gpus;
  const C = c.changeover / H;
  const W = c.workLeft / H;
  const ckH = input.overhead.checkpointMs / H;
  const stats = input.zoneStats ?? {};
  const from = checkpointRegionOf(input);
  const n0 = c.numbers;
  // The value of an hour of slack: what on-demand costs over spot, times the share of the slack
  // the rest of the job is expected to need anyway — for hours with no spot anywhere (the market's
  // down fraction, measured where the pool's market-wide record has it) and a changeover per
  // expected preemption — or the net plus one changeover, whichever is more. Plenty of slack in a
  // good market: nearly free; little slack, or a market that is often down: worth nearly the
  // on-demand premium.
  const odP = c.od?.pricePerGpuHour;
  const allDown = marketDownFraction(input.options, stats, now);
  let upSum = 0;
  let spotZones = 0;
  for (const o of input.options) {
    if (o.capacity !== 'spot') continue;
    upSum += meanUpHours(stats[zoneStatsKey(o)]);
    spotZones++;
  }
  const meanUp = spotZones > 0 ? upSum / spotZones : 1;
  // Each expected preemption over the work left costs a changeover of slack.
  const churnNeed = meanUp > 0 ? (W / meanUp) * C : 0;
  const needed = W * Math.min(allDown / Math.max(1e-6, 1 - allDown), 10) + churnNeed;
  // The reserve, below which outages are bridged on on-demand rather than waited out, keeps what
  // bridging needs: a changeover to on-demand and one back to spot above the net, and the
  // changeovers this job's preemptions will take over the work left. The fixed reserve (1 h + 0.1 h
  // per hour of work) is the most it keeps: where zones last long, keeping all of it bridged outages
  // on on-demand hours before the slack ran short (long-outage seed 7: 3.2 h on on-demand for an
  // outage the optimum waited out but 0.7 h of).
  // Those preemptions come at the job's own rate per hour of progress — preemptions so far over
  // work done — with the market's mean up-time as a prior worth one up-period: a fresh job
  // expects one preemption per mean up-time, as above; one that has run 20 h and been preempted
  // twice where the market's zones average 3 h expects 3 in 23 h, not one in 3 (it runs on the
  // zones that last: long-outage seed 7 bridged with 2.2 h of slack instead of 1.4 h). The rate
  // counts on-demand progress too, as the work left will. (The same rate in the slack's value and
  // in the bridging rule below was measured too; it moved windows both ways by up to 15%.)
  const doneH = input.progress.doneMs / H;
  const jobPreemptionRatePerHour = (1 + input.history.preemptions.length) / (meanUp + doneH);
  const reserve = Math.min(c.reserve, c.netAt + 2 * c.changeover + W * jobPreemptionRatePerHour * C * H);
  n0.jobPreemptionRatePerHour = jobPreemptionRatePerHour;
  const inReserve = c.slack < reserve;
  n0.reserve = reserve / H;
  // Below what the market needs, the slack is valued by the share of it needed; the floor is the
  // net plus one changeover (what must stay to leave on-demand once more), not the bridging reserve:
  // slack the market is not expected to need is worth little, and waiting for cheaper spot may spend it.
  const pressure = Math.min(1, Math.max((c.netAt + c.changeover) / H, needed) / Math.max(c.slack / H, 1e-6));
  n0.marketDownFraction = allDown;
  n0.slackNeededHours = needed;
  n0.slackPressure = pressure;
  const slackValue = (price: number): number => (odP !== undefined ? Math.max(0, odP - price) * pressure : 0);
  let here: PlacementOption | undefined;
  let best: Assessed | undefined;
  for (const o of input.options) {
    if (!o.available || o.capacity !== 'spot') continue;
    if (c.running && cur?.capacity === 'spot' && same(o, cur)) {
      here = o;
      continue;
    }
    const est = estimateUptime(stats[zoneStatsKey(o)], now, C, W);
    if (!(est.progressHours > 0)) continue;
    const egress = egressTo(input, o, from);
    const perProgress = (o.pricePerGpuHour * G * est.paidHours + egress + slackValue(o.pricePerGpuHour) * G * (est.paidHours - est.progressHours)) / (G * est.progressHours);
    if (!best || perProgress < best.perProgress || (perProgress === best.perProgress && zoneStatsKey(o) < zoneStatsKey(best.o))) best = { o, est, egress, perProgress };
  }
  // The cheapest zone that is down now, as it would be once back (for "take spot now, or wait for it").
  let cheaper: { o: PlacementOption; perProgress: number; downHours: number; egress: number; progressHours: number } | undefined;
  if (!c.running || cur?.capacity !== 'spot') {
    for (const o of input.options) {
      if (o.available || o.capacity !== 'spot') continue;
      const st = stats[zoneStatsKey(o)];
      const fresh = st ? { ...st } : undefined;
      if (fresh) delete fresh.upSinceMs;
      const est = estimateUptime(fresh, now, C, W);
      if (!(est.progressHours > 0)) continue;
      const egress = egressTo(input, o, from);
      const perProgress = (o.pricePerGpuHour * G * est.paidHours + egress) / (G * est.progressHours);
      if (!cheaper || perProgress < cheaper.perProgress) cheaper = { o, perProgress, downHours: expectedDownHours(st, now), egress, progressHours: est.progressHours };
    }
  }
  const n = c.numbers;
  const odPrice = c.od?.pricePerGpuHour;
  if (best) {
    n.targetPerProgressHour = best.perProgress;
    if (odPrice !== undefined) n.onDemandPerGpuHour = odPrice;
  }

  // Spot priced at or above on-demand (a price spike) is no place to stay: choose again below.
  if (here && odPrice !== undefined && here.pricePerGpuHour >= odPrice) {
    n.currentPerGpuHour = here.pricePerGpuHour;
    here = undefined;
  }
  // Running on spot: stay while it lasts, unless the break-even says another zone pays.
  if (here) {
    if (best) {
      const hereEst = estimateUptime(stats[zoneStatsKey(here)], now, 0, W);
      const { move, be } = moveNow(here.pricePerGpuHour, hereEst.progressHours, hereEst.endProb, best, stats[zoneStatsKey(best.o)], now, C, W, G, ckH, slackValue(best.o.pricePerGpuHour));
      Object.assign(n, { currentExpectedUpHours: hereEst.expectedUpHours }, be);
      if (move) {
        const b = best.o;
        return { mode: 'spot-or-wait', reason: lazyReason('deadline-slack', n, () => `move to spot at ${where(b)} ($${b.pricePerGpuHour}/GPU-h): over the expected stay of ${fmtH((be.expectedStayHours as number) * H)} h it saves $${(be.gainUsd as number).toFixed(2)}, more than the changeover, egress and risk ($${(be.breakEvenUsd as number).toFixed(2)})`), recommended: { action: 'move', target: b } };
      }
      return { mode: 'spot-or-wait', reason: lazyReason('deadline-slack', n, () => `stay on spot: ${notYet(be, where(best.o))}`), recommended: { action: 'stay' } };
    }
    return { mode: 'spot-or-wait', reason: lazyReason('deadline-slack', n, () => `stay on spot: ${fmtH(c.slack)} h of slack`), recommended: { action: 'stay' } };
  }

  // On on-demand: back to spot only when it pays over the expected stay, and the slack allows the round trip.
  if (c.onDemandNow) {
    if (best && c.slack >= c.netAt + c.changeover && odPrice !== undefined) {
      // When the target ends before the job, the changeover that follows is paid where the job goes
      // next: on-demand again unless another zone has spot then. The chance that none has, given
      // that the target is down, is the market's down fraction over the target's (zones of one
      // market fail together); at the target's price the round trip back looked nearly free, and
      // the job bounced between on-demand and a flickering zone until the safety net pinned it.
      const noOther = Math.min(1, allDown / Math.max(1e-6, 1 - availabilityFraction(stats[zoneStatsKey(best.o)], now)));
      const afterEnd = noOther * odPrice + (1 - noOther) * best.o.pricePerGpuHour;
      const { move, be } = moveNow(odPrice, Infinity, 0, best, stats[zoneStatsKey(best.o)], now, C, W, G, ckH, slackValue(best.o.pricePerGpuHour), afterEnd);
      Object.assign(n, be, { noOtherSpotAfterEndProb: noOther, afterEndPerGpuHour: afterEnd });
      if (move) {
        const b = best.o;
        return { mode: 'spot-or-wait', reason: lazyReason('deadline-slack', n, () => `leave on-demand for spot at ${where(b)}: saves $${(be.gainUsd as number).toFixed(2)} over the expected stay of ${fmtH((be.expectedStayHours as number) * H)} h, more than the changeover, egress and risk ($${(be.breakEvenUsd as number).toFixed(2)})`), recommended: { action: 'move', target: b } };
      }
      return { mode: 'spot-or-on-demand', reason: lazyReason('deadline-reserve', n, () => `stay on on-demand: ${notYet(be, `spot at ${where(best.o)}`)}`), recommended: { action: 'stay' } };
    }
    return {
      mode: 'spot-or-on-demand',
      reason: best
        ? lazyReason('deadline-net', n, () => `stay on on-demand: ${fmtH(c.slack)} h of slack is too little to go back to spot and return`)
        : lazyReason('deadline-reserve', n, () => `stay on on-demand until spot returns: ${fmtH(c.slack)} h of slack, reserve ${fmtH(reserve)} h`),
      recommended: { action: 'stay' },
    };
  }

  // Not running (or evicted): spot when its cost per hour of progress beats on-demand's ... which
  // starts with a changeover too, and never ends: C + W paid for W of progress. Comparing spot's
  // full cost with on-demand's bare price left a job with minutes of work to go waiting, slack to
  // spare, for spot that never looked cheap enough (its changeover dwarfs the work), until the
  // safety net sent it to on-demand anyway.
  const odPerProgress = odPrice === undefined ? undefined : (odPrice * (C + W)) / W;
  if (odPerProgress !== undefined) n.onDemandPerProgressHour = odPerProgress;
  if (best && (odPerProgress === undefined || best.perProgress < odPerProgress)) {
    const b = best;
    // ... unless a cheaper zone that is down now is worth waiting for: over the time until it is
    // expected back (or until this one ends), taking this one costs the price difference plus one
    // more changeover (to go back), and saves that time's slack; waiting must leave the slack above
    // the reserve.
    if (cheaper && cheaper.perProgress < b.perProgress) {
      const window = Math.min(cheaper.downHours, b.est.progressHours);
      // Egress is paid per move, not per hour: taking this one pays its egress now and the egress
      // from its region to the cheaper one's when going back, where waiting pays only the latter.
      const priceGap = b.perProgress - b.egress / (G * b.est.progressHours) - (cheaper.perProgress - cheaper.egress / (G * cheaper.progressHours));
      const egressUsd = b.egress + egressTo(input, cheaper.o, optionRegion(b.o)) - cheaper.egress;
      const extraUsd = priceGap * G * window + C * cheaper.o.pricePerGpuHour * G + egressUsd;
      n.takeEgressUsd = egressUsd;
      const savedUsd = slackValue(cheaper.o.pricePerGpuHour) * G * Math.max(0, window - C);
      n.waitForHours = cheaper.downHours;
      n.takeExtraUsd = extraUsd;
      n.takeSavesSlackUsd = savedUsd;
      // The wait must leave the slack the rest of the job is expected to need — unless taking this
      // one means a move across regions: that egress is certain and paid in full, and the slack the
      // market may need is already priced in savedUsd, so the comparison decides, above the reserve.
      const keepH = egressUsd > 0 ? reserve : Math.max(reserve, needed * H);
      if (extraUsd > savedUsd && c.slack - cheaper.downHours * H > keepH) {
        const y = cheaper;
        return { mode: 'spot-or-wait', reason: lazyReason('deadline-slack', n, () => `wait for spot at ${where(y.o)} (expected back in ${fmtH(y.downHours * H)} h): taking ${where(b.o)} meanwhile would cost $${extraUsd.toFixed(2)} more than the $${savedUsd.toFixed(2)} of slack it saves`), recommended: { action: 'wait' } };
      }
    }
    if (from !== undefined) n.egressUsd = b.egress;
    Object.assign(n, { targetExpectedUpHours: b.est.expectedUpHours, expectedStayHours: b.est.progressHours, targetUpSamples: b.est.samples });
    return { mode: 'spot-or-wait', reason: lazyReason('deadline-slack', n, () => `spot at ${where(b.o)} ($${b.o.pricePerGpuHour}/GPU-h, expected up ${fmtH(b.est.expectedUpHours * H)} h): $${b.perProgress.toFixed(3)} per GPU-hour of progress, ${fmtH(c.slack)} h of slack`), recommended: { action: c.action, target: b.o } };
  }
  if (inReserve && c.od) {
    return { mode: 'spot-or-on-demand', reason: lazyReason('deadline-reserve', n, () => `on-demand until spot returns: no spot that beats it per hour of progress, ${fmtH(c.slack)} h of slack is under the reserve ${fmtH(reserve)} h`), recommended: { action: c.action, target: c.od } };
  }
  // Slack the preemptions will need cannot also be spent waiting: each expected preemption over the
  // work left costs a changeover (work left / mean up-time × changeover). When the slack is below
  // that plus one changeover, and the whole market has been down long enough that the outage is
  // likely to last (up- and down-times are heavy-tailed), bridge it on on-demand, where the slack
  // stays put, rather than drain it and meet the safety net with most of the work still to do (then
  // all of it runs on on-demand). Short outages are still waited out: a bridge costs two changeovers.
  const marketDown = marketDownForHours(input.options, stats, now);
  if (c.od && c.slack < (churnNeed + C) * H && marketDown >= BRIDGE_AFTER_CHANGEOVERS * C) {
    Object.assign(n, { slackChurnNeedHours: churnNeed, marketDownForHours: marketDown, bridgeAfterHours: BRIDGE_AFTER_CHANGEOVERS * C });
    return { mode: 'spot-or-on-demand', reason: lazyReason('deadline-reserve', n, () => `on-demand until spot returns: the market has been down ${fmtH(marketDown * H)} h, and ${fmtH(c.slack)} h of slack is less than the ${fmtH((churnNeed + C) * H)} h the expected preemptions will need`), recommended: { action: c.action, target: c.od } };
  }
  return {
    mode: 'spot-or-wait',
    reason: lazyReason('deadline-slack', n, () => `wait for spot: none ${best ? 'beats on-demand per hour of progress' : 'available'}, ${fmtH(c.slack)} h of slack left (on-demand at ${fmtH(c.netAt)} h)`),
    recommended: { action: 'wait' },
  };
}
