// decideWorkload: the placement decision for one workload (pure, no I/O). Plan, watch and the
// backtest all call it, the backtest every tick for every workload, so it allocates little and
// runs no CEL unless a policy set is loaded. Order of reasoning:
//   1. eligibility (class, checkpoint contract, capacity preference, remaining runtime);
//   2. pins: the deadline safety net (deadline.ts) and the preemption budget (anti-flap cooldown);
//   3. candidates: available, under the pool's price cap, not excluded by a mandatory policy;
//   4. eviction → fallback rule; not running → place; running → move only when the cost model
//      (cost.ts) says it pays at least minSavingsPerHour and, towards spot, after minDwell;
//   5. advisory policies on the result become warnings; mandatory ones that cannot be met,
//      violations that block apply.
// Hysteresis: a voluntary move in either direction must clear minSavingsPerHour after paying the
// migration overhead on both sides, so prices must swing by more than that band to flip back.
import { HOUR_MS, formatDuration, formatRate, formatUsd, formatUsdRate, roundUsd } from '../core/units.js';
import { adviseDeadline, checkpointRegionOf, egressTo, lazyReason, type DeadlineAdvice } from './deadline.js';
import { effectivePerHour, priceMove, type CostNumbers } from './cost.js';
import {
  evaluateRules,
  matchingRules,
  type CompiledRule,
  type PolicyActivation,
  type PolicyCurrentFacts,
  type PolicyTargetFacts,
  type PolicyWorkloadFacts,
} from './policy-set.js';
import { capList, capMap } from './cel.js';
import { estimateUptime, zoneStatsKey } from './uptime.js';
import type { DecideContext, PlacementOption, Reason, Violation, WorkloadDecision, WorkloadDecisionInput } from './types.js';

const SPOT_CLASSES: ReadonlySet<string> = new Set(['training', 'batch', 'dev']);
// Shared, frozen: every decision of an eligible workload carries one (no string building per call).
const ELIGIBLE_REASON: Readonly<Record<string, Reason>> = Object.fromEntries(
  [...SPOT_CLASSES].map((c) => [c, Object.freeze({ rule: 'eligibility', text: `class ${c} with a checkpoint contract may run on spot` })]),
);

/** Remaining runtime assumed for a workload without expectedDuration (open-ended services, dev boxes). */
export const OPEN_ENDED_HORIZON_HOURS = 24;

/** Whether the workload may run on spot at all: class, checkpoint contract, capacity preference. */
export function isSpotEligible(input: WorkloadDecisionInput): { ok: boolean; reason: Reason } {
  const w = input.workload;
  if (w.capacity === 'on-demand') return { ok: false, reason: { rule: 'eligibility', text: 'capacity: on-demand in the spec' } };
  if (!SPOT_CLASSES.has(w.class)) return { ok: false, reason: { rule: 'eligibility', text: `class ${w.class} never runs on spot` } };
  if (!w.checkpoint) return { ok: false, reason: { rule: 'eligibility', text: 'no checkpoint contract: work would be lost on eviction' } };
  return { ok: true, reason: ELIGIBLE_REASON[w.class] ?? { rule: 'eligibility', text: `class ${w.class} with a checkpoint contract may run on spot` } };
}

interface Candidate {
  o: PlacementOption;
  eff: number;
}

function where(o: { pool?: string | undefined; zone?: string | undefined; capacity: string }): string {
  return `${o.pool ?? '?'}${o.zone ? `/${o.zone}` : ''} (${o.capacity})`;
}

function better(a: Candidate, b: Candidate): boolean {
  if (a.eff !== b.eff) return a.eff < b.eff;
  const an = a.o.node ? 1 : 0;
  const bn = b.o.node ? 1 : 0;
  if (an !== bn) return an > bn; // an existing node needs no acquire
  if (a.o.pool !== b.o.pool) return a.o.pool < b.o.pool;
  return (a.o.zone ?? '') < (b.o.zone ?? '');
}

function bestOf(list: readonly Candidate[], pred?: (c: Candidate) => boolean): Candidate | undefined {
  let best: Candidate | undefined;
  for (const c of list) if ((!pred || pred(c)) && (!best || better(c, best))) best = c;
  return best;
}

/**
 * Decides where one workload should run now, with the reasons and the money that decided it.
 * Pure: the same input and context give the same decision.
 * @example
 * const d = decideWorkload(input, { now: Date.now(), thresholds, policies: loadPolicySet([DEFAULT_POLICY_FILE]) });
 * if (d.action === 'move') plan.migrate(d.target)
 */
export function decideWorkload(input: WorkloadDecisionInput, ctx: DecideContext): WorkloadDecision {
  const w = input.workload;
  const G = w.gpus;
  const now = ctx.now;
  const th = ctx.thresholds;
  const cur = input.current;
  const running = cur !== undefined && !cur.evicted;
  const reasons: Reason[] = [];
  const violations: Violation[] = [];
  const elig = isSpotEligible(input);
  reasons.push(elig.reason);

  // --- time and overhead -------------------------------------------------------------------
  const openEnded = w.expectedDurationMs === undefined;
  const remainingMs = openEnded ? OPEN_ENDED_HORIZON_HOURS * HOUR_MS : Math.max(0, (w.expectedDurationMs as number) - input.progress.doneMs);
  const R = remainingMs / HOUR_MS;
  const ov = input.overhead;
  const changeoverHours = (ov.checkpointMs + ov.transferMs + ov.restartMs) / HOUR_MS;
  const lastCkpt = input.progress.lastCheckpointAt;
  const lostWorkHours = cur ? Math.max(0, now - (lastCkpt ?? cur.since)) / HOUR_MS : 0;
  const lostPerPreemptionHours = w.checkpoint?.maxAgeMs !== undefined ? w.checkpoint.maxAgeMs / 2 / HOUR_MS : 0;
  let odPrice = Infinity;
  for (const o of input.options) if (o.available && o.capacity === 'on-demand' && o.pricePerGpuHour < odPrice) odPrice = o.pricePerGpuHour;
  // After a preemption the workload falls back: to on-demand when there is some, else it pays about the same.
  const fallbackPrice = Number.isFinite(odPrice) ? odPrice : cur?.pricePerGpuHour ?? 0;
  // Without a known rate, zone statistics give one: 1 / the expected up-time from now.
  const rateFor = (o: PlacementOption): number => {
    if (o.preemptionRatePerHour !== undefined || input.zoneStats === undefined) return o.preemptionRatePerHour ?? 0;
    const up = estimateUptime(input.zoneStats[zoneStatsKey(o)], now, 0, R).expectedUpHours;
    return up > 0 ? 1 / up : 0;
  };
  const curRate = cur && cur.capacity === 'spot' ? rateOf(input.options, cur) : 0;

  // --- pins: deadline safety net, preemption budget ------------------------------------------
  // A workload with a deadline and spot eligibility is governed by the deadline strategy: its own
  // safety net keeps the deadline, and it already avoids flapping (stays in a zone while it lasts,
  // leaves on-demand only for capacity that has proven itself). The generic preemption budget would
  // only fight it: pinning to on-demand for a cooldown spends money the slack could have saved.
  const advice: DeadlineAdvice | undefined = adviseDeadline(input, ctx);
  if (advice) reasons.push(advice.reason);
  const governs = advice !== undefined && elig.ok;
  let pinUntil: number | undefined;
  const histPin = input.history.pinnedOnDemandUntil;
  let pinned = false;
  if (histPin !== undefined && histPin > now) {
    if (governs) {
      reasons.push(lazyReason('anti-flap', { pinnedUntilMs: histPin }, () => `earlier pin to on-demand until ${new Date(histPin).toISOString()} (${input.history.pinnedReason ?? 'cooldown'}) left to the deadline strategy`));
    } else {
      pinned = true;
      reasons.push(lazyReason('anti-flap', { pinnedUntilMs: histPin }, () => `pinned to on-demand until ${new Date(histPin).toISOString()}: ${input.history.pinnedReason ?? 'cooldown'}`));
    }
  }
  if (!governs) {
    let recent = 0;
    let latest = 0;
    for (const t of input.history.preemptions) {
      if (t > now - th.preemptionWindowMs && t <= now) {
        recent++;
        if (t > latest) latest = t;
      }
    }
    if (recent > th.maxPreemptions && latest + th.cooldownMs > now) {
      const until = latest + th.cooldownMs;
      pinUntil = until;
      pinned = true;
      reasons.push(lazyReason(
        'anti-flap',
        { preemptionsInWindow: recent, maxPreemptions: th.maxPreemptions, preemptionWindowHours: th.preemptionWindowMs / HOUR_MS, cooldownHours: th.cooldownMs / HOUR_MS, pinnedUntilMs: until },
        () => `${recent} preemptions in the last ${formatDuration(th.preemptionWindowMs)} exceed the budget of ${th.maxPreemptions}: on-demand until ${new Date(until).toISOString()} (cooldown ${formatDuration(th.cooldownMs)})`,
      ));
    }
  }
  const deadlineOnDemand = advice?.mode === 'on-demand';
  if (deadlineOnDemand && advice.pinUntil !== undefined) pinUntil = Math.max(pinUntil ?? 0, advice.pinUntil);
  const spotOkToStay = elig.ok && !pinned && !deadlineOnDemand;
  const shortJob = !openEnded && remainingMs <= th.minRuntimeMs;
  // The minRuntime rule is a cost guess for open-ended work; a governed workload's strategy knows its slack.
  const spotOkToStart = spotOkToStay && (governs || w.capacity === 'spot' || !shortJob);
  if (spotOkToStay && !spotOkToStart) {
    reasons.push(lazyReason('eligibility', { remainingHours: roundUsd(R), minRuntimeHours: th.minRuntimeMs / HOUR_MS }, () => `${formatDuration(remainingMs)} of work left is not more than minRuntime ${formatDuration(th.minRuntimeMs)}: not worth starting on spot`));
  }
  if (w.capacity === 'spot' && !elig.ok) {
    violations.push({ policy: 'eligibility', level: 'mandatory', message: `capacity: spot, but ${elig.reason.text}` });
  }

  // --- policies (only when a set is loaded) ------------------------------------------------
  let rules: CompiledRule[] | undefined;
  let wFacts: PolicyWorkloadFacts | undefined;
  let cFacts: PolicyCurrentFacts | undefined;
  if (ctx.policies !== undefined) {
    wFacts = workloadFacts(input, R, now);
    rules = matchingRules(ctx.policies, wFacts);
    if (rules.length === 0) rules = undefined;
    cFacts = currentFacts(input);
  }
  const hasMandatory = rules?.some((r) => r.enforcement === 'mandatory') ?? false;
  const ckRegion = checkpointRegionOf(input);
  const price = (o: PlacementOption, migrating: boolean, baseline: number, baseRate: number): CostNumbers =>
    priceMove({
      gpus: G,
      remainingHours: R,
      running: migrating,
      currentPricePerGpuHour: baseline,
      currentPreemptionRatePerHour: baseRate,
      targetPricePerGpuHour: o.pricePerGpuHour,
      targetPreemptionRatePerHour: o.capacity === 'spot' ? rateFor(o) : 0,
      fallbackPricePerGpuHour: fallbackPrice,
      checkpointMs: ov.checkpointMs,
      transferMs: ov.transferMs,
      restartMs: ov.restartMs,
      lostWorkHours,
      lostPerPreemptionHours,
      egressUsd: egressTo(input, o, ckRegion),
    });
  const activation = (o: PlacementOption, action: string, n: CostNumbers): PolicyActivation => ({
    workload: wFacts as PolicyWorkloadFacts,
    target: targetFacts(o, G),
    current: cFacts as PolicyCurrentFacts,
    action,
    numbers: { ...n, minSavingsPerHour: th.minSavingsPerHour, minRuntimeHours: th.minRuntimeMs / HOUR_MS },
  });
  const baseline = cur ? cur.pricePerGpuHour : 0;
  const candAction = cur ? 'move' : 'place';

  // --- candidates ----------------------------------------------------------------------------
  const cands: Candidate[] = [];
  const excluded: { o: PlacementOption; v: Violation[] }[] = [];
  let overCap = 0;
  for (const o of input.options) {
    if (!o.available) continue;
    if (cur && o.node !== undefined && o.node === cur.node) continue;
    if (w.gpuModel !== undefined && o.gpuModel !== w.gpuModel) continue;
    if (o.capacity === 'spot' && !spotOkToStart) continue;
    if (o.maxPricePerHour !== undefined && o.pricePerGpuHour > o.maxPricePerHour) {
      overCap++;
      continue;
    }
    if (hasMandatory && rules) {
      const v = evaluateRules(rules, activation(o, candAction, price(o, running, baseline, curRate)), 'mandatory');
      if (v.length > 0) {
        excluded.push({ o, v });
        continue;
      }
    }
    const rate = o.capacity === 'spot' ? rateFor(o) : 0;
    cands.push({ o, eff: effectivePerHour(o.pricePerGpuHour, rate, G, changeoverHours, fallbackPrice, lostPerPreemptionHours) });
  }
  if (overCap > 0) reasons.push({ rule: 'price-cap', text: `${overCap} option(s) priced above their pool's maxPricePerHour left out`, numbers: { optionsOverCap: overCap } });
  for (const x of excluded) reasons.push({ rule: 'policy', text: `${where(x.o)} excluded by ${x.v.map((v) => v.policy).join(', ')}: ${x.v.map((v) => v.message).join('; ')}` });

  const nowPerHour = cur ? roundUsd(cur.pricePerGpuHour * G) : 0;
  const decision = (action: WorkloadDecision['action'], target: PlacementOption | undefined, n: CostNumbers | undefined): WorkloadDecision => {
    const afterPerHour = target ? roundUsd(target.pricePerGpuHour * G) : action === 'stay' ? nowPerHour : 0;
    const d: WorkloadDecision = {
      workload: w.name,
      action,
      eligibleForSpot: elig.ok,
      reasons,
      money: { nowPerHour, afterPerHour, migrationOverheadUsd: n && action === 'move' ? n.migrationOverheadUsd : 0 },
      violations,
    };
    if (n && (action === 'move' || action === 'place')) d.money.expectedSavingsUsd = n.netSavingsUsd;
    if (target) d.target = target;
    if (pinUntil !== undefined) d.pinOnDemandUntil = pinUntil;
    // Advisory rules on the outcome (the current placement when staying); mandatory ones were
    // applied to the candidates, and to the current placement below.
    if (rules && (target || (action === 'stay' && cur))) {
      const o = target ?? currentAsOption(input);
      const v = evaluateRules(rules, activation(o, action, n ?? price(o, false, baseline, curRate)), 'advisory');
      for (const x of v) violations.push(x);
    }
    return d;
  };
  const costReason = (text: string | (() => string), n: CostNumbers): void => {
    // `n` is this decision's own (a fresh priceMove result, read only by decision() after this):
    // the threshold is added to it rather than to a copy of its 24 numbers, for every workload.
    const numbers = n as unknown as Record<string, number>;
    numbers.minSavingsPerHour = th.minSavingsPerHour;
    reasons.push(typeof text === 'string' ? { rule: 'cost-benefit', text, numbers } : lazyReason('cost-benefit', numbers, text));
  };
  const noCapacity = (): WorkloadDecision => {
    reasons.push({ rule: 'placement', text: 'no available capacity fits this workload' });
    // What the spec demands may be forbidden outright: the mandatory policies that removed options block apply.
    for (const x of excluded) for (const v of x.v) if (!violations.some((y) => y.policy === v.policy)) violations.push(v);
    return decision(running ? 'stay' : 'none', undefined, undefined);
  };
  const spotWanted = (list: Candidate[]): Candidate[] => {
    if (w.capacity !== 'spot') return list;
    const s = list.filter((c) => c.o.capacity === 'spot');
    if (s.length === 0) {
      for (const x of excluded) if (x.o.capacity === 'spot') for (const v of x.v) if (!violations.some((y) => y.policy === v.policy)) violations.push(v);
      return list;
    }
    return s;
  };
  const spotOrWait = advice?.mode === 'spot-or-wait' && elig.ok;
  // The deadline strategy may name a concrete option; take it when our filters (caps, policies, pins) allow it.
  const recTarget = advice?.recommended?.target;
  const pick = (pool: Candidate[]): Candidate | undefined => (recTarget && pool.find((c) => c.o === recTarget)) || bestOf(pool);
  if (advice?.mode === 'spot-or-wait' && !elig.ok) reasons.push({ rule: 'deadline', text: 'deadline strategy would wait for spot, but the workload may not run on spot: usual rules apply' });

  // --- governed by the deadline strategy: take its recommendation --------------------------------
  let curViolations: Violation[] = [];
  if (running && hasMandatory && rules) {
    const o = currentAsOption(input);
    curViolations = evaluateRules(rules, activation(o, 'stay', price(o, false, baseline, curRate)), 'mandatory');
  }
  const rec = governs ? advice.recommended : undefined;
  if (rec && curViolations.length === 0) {
    if (rec.action === 'stay' && running) return decision('stay', undefined, undefined);
    if (rec.action === 'wait') return decision('wait', undefined, undefined);
    const t = rec.target;
    if (t) {
      // The strategy saw every option; ours are filtered (GPU model, price caps, mandatory policies):
      // take its target when allowed, else the best allowed option of the same capacity.
      let c: Candidate | undefined;
      for (const x of cands) if (x.o === t) c = x;
      c ??= bestOf(cands, (x) => x.o.capacity === t.capacity);
      if (c) {
        const o = c.o;
        const n = cur ? price(o, true, baseline, curRate) : price(o, false, Number.isFinite(odPrice) ? odPrice : 0, 0);
        const act = cur ? 'move' : 'place';
        costReason(() => `${act === 'move' ? 'move' : 'place'} on ${where(o)} at ${formatUsdRate(n.afterPerHour)}/h: the deadline strategy's choice`, n);
        return decision(act, o, n);
      }
      if (t.capacity === 'spot' && advice?.mode === 'spot-or-wait') {
        reasons.push(lazyReason('deadline', {}, () => 'the spot the deadline strategy chose is not allowed here, and slack allows waiting: wait'));
        return decision('wait', undefined, undefined);
      }
    }
    // Nothing it recommends is allowed: the usual rules below.
  }

  // --- evicted: follow the fallback rule ----------------------------------------------------
  if (cur?.evicted) {
    const fb = w.fallback.to;
    let pool: Candidate[];
    let label: string;
    if (pinned || deadlineOnDemand) {
      pool = cands.filter((c) => c.o.capacity === 'on-demand');
      label = 'on-demand (pinned)';
    } else if (spotOrWait) {
      pool = cands.filter((c) => c.o.capacity === 'spot');
      label = 'spot (deadline slack allows waiting)';
    } else if (fb === 'on-demand') {
      pool = cands.filter((c) => c.o.capacity === 'on-demand');
      label = 'on-demand';
    } else {
      pool = cands.filter((c) => c.o.pool === fb);
      label = `pool ${fb}`;
    }
    let best = pinned || deadlineOnDemand || spotOrWait ? pick(pool) : bestOf(pool);
    if (!best && spotOrWait) {
      reasons.push({ rule: 'deadline', text: `node ${cur.node} is being evicted and no spot is available: wait (deadline slack allows it)` });
      return decision('wait', undefined, undefined);
    }
    if (!best) {
      best = bestOf(cands);
      if (best) reasons.push({ rule: 'fallback', text: `fallback ${label} has no available capacity: cheapest allowed option instead` });
    }
    if (!best) return noCapacity();
    const n = price(best.o, true, baseline, curRate);
    reasons.push({ rule: 'fallback', text: `node ${cur.node} is being evicted: move to ${where(best.o)} (fallback.to: ${fb})` });
    costReason(() => `forced move: ${formatUsdRate(nowPerHour)}/h → ${formatUsdRate(n.afterPerHour)}/h, migration overhead ${formatUsd(n.migrationOverheadUsd)}`, n);
    return decision('move', best.o, n);
  }

  // --- not running: place ---------------------------------------------------------------------
  if (!cur) {
    if (spotOrWait) {
      const best = pick(cands.filter((c) => c.o.capacity === 'spot'));
      if (!best) {
        reasons.push({ rule: 'deadline', text: 'no spot available and the deadline leaves slack: wait' });
        return decision('wait', undefined, undefined);
      }
      const n = price(best.o, false, Number.isFinite(odPrice) ? odPrice : 0, 0);
      costReason(() => `place on ${where(best.o)} at ${formatUsdRate(n.afterPerHour)}/h`, n);
      return decision('place', best.o, n);
    }
    const set = spotWanted(cands);
    const best = deadlineOnDemand ? pick(set) : bestOf(set);
    if (!best) return noCapacity();
    const bestOd = bestOf(set, (c) => c.o.capacity === 'on-demand');
    if (best.o.capacity === 'spot' && bestOd && w.capacity === 'auto') {
      // Spot must beat the best on-demand option by minSavingsPerHour after its expected preemption cost.
      const n = price(best.o, false, bestOd.o.pricePerGpuHour, 0);
      if (n.savingsPerHour < th.minSavingsPerHour) {
        const m = price(bestOd.o, false, bestOd.o.pricePerGpuHour, 0);
        costReason(() => `place on ${where(bestOd.o)}: spot ${where(best.o)} would save ${formatUsdRate(n.savingsPerHour)}/h, below minSavingsPerHour ${formatUsdRate(th.minSavingsPerHour)}/h`, n);
        return decision('place', bestOd.o, m);
      }
      costReason(() => `place on ${where(best.o)}: saves ${formatUsdRate(n.savingsPerHour)}/h over ${where(bestOd.o)} after expected preemptions (≥ ${formatUsdRate(th.minSavingsPerHour)}/h)`, n);
      return decision('place', best.o, n);
    }
    const n = price(best.o, false, bestOd ? bestOd.o.pricePerGpuHour : best.o.pricePerGpuHour, 0);
    costReason(() => `place on ${where(best.o)}: cheapest allowed at ${formatUsdRate(n.afterPerHour)}/h`, n);
    return decision('place', best.o, n);
  }

  // --- running: forced moves -----------------------------------------------------------------
  const forced = (cur.capacity === 'spot' && !spotOkToStay) || curViolations.length > 0 || (spotOrWait && cur.capacity === 'on-demand');
  if (forced) {
    let why: string;
    let pool: Candidate[];
    if (curViolations.length > 0) {
      why = `the current placement violates ${curViolations.map((v) => v.policy).join(', ')}`;
      pool = cands;
    } else if (spotOrWait) {
      why = 'the deadline leaves slack: spot or wait, not on-demand';
      pool = cands.filter((c) => c.o.capacity === 'spot');
    } else {
      why = pinned || deadlineOnDemand ? 'spot is not allowed now (pinned to on-demand)' : 'this workload may not stay on spot';
      pool = cands.filter((c) => c.o.capacity === 'on-demand');
    }
    const best = pick(pool);
    if (!best) {
      if (spotOrWait) {
        reasons.push({ rule: 'deadline', text: `${why}; no spot available: wait` });
        return decision('wait', undefined, undefined);
      }
      for (const v of curViolations) violations.push(v);
      reasons.push({ rule: 'placement', text: `${why}, but no allowed capacity is available: stay for now` });
      return decision('stay', undefined, undefined);
    }
    const n = price(best.o, true, baseline, curRate);
    costReason(() => `must move (${why}) to ${where(best.o)}: ${formatUsdRate(nowPerHour)}/h → ${formatUsdRate(n.afterPerHour)}/h, migration overhead ${formatUsd(n.migrationOverheadUsd)}`, n);
    return decision('move', best.o, n);
  }

  // --- running: voluntary moves must pay ---------------------------------------------------
  if (spotOrWait && cur.capacity === 'spot' && advice?.recommended?.action === 'stay') {
    reasons.push({ rule: 'deadline', text: `stay on ${where(cur)}: the deadline strategy keeps the current spot zone while it lasts` });
    return decision('stay', undefined, undefined);
  }
  const best = bestOf(spotWanted(cands));
  if (!best) {
    reasons.push({ rule: 'placement', text: `stay on ${where(cur)}: no other allowed capacity is available` });
    return decision('stay', undefined, undefined);
  }
  const n = price(best.o, true, baseline, curRate);
  const dwell = now - cur.since;
  // After a move (an eviction's above all), no voluntary move until minDwell has passed, whatever
  // the target: a workload just moved to its fallback must not be moved on at the next reconcile.
  const justMoved = input.history.lastMoveAt !== undefined && dwell < w.fallback.minDwellMs;
  if (best.o.capacity === 'spot' || justMoved) {
    if (best.o.capacity === 'spot' && cur.capacity === 'on-demand' && !w.fallback.revertToSpot && input.history.lastMoveAt !== undefined) {
      reasons.push({ rule: 'fallback', text: `stay on ${where(cur)}: fallback.revertToSpot is off` });
      return decision('stay', undefined, undefined);
    }
    if (dwell < w.fallback.minDwellMs || justMoved) {
      // The numbers of the move it passes up, for `explain`, then why it stays.
      costReason(() => `moving to ${where(best.o)} would net ${formatUsd(n.netSavingsUsd)} over ${roundUsd(R)}h = ${formatUsd(n.savingsPerHour)}/h`, n);
      reasons.push({ rule: 'anti-flap', text: `stay on ${where(cur)}: there for ${formatDuration(dwell)}, minDwell is ${formatDuration(w.fallback.minDwellMs)}`, numbers: { dwellHours: roundUsd(dwell / HOUR_MS), minDwellHours: w.fallback.minDwellMs / HOUR_MS } });
      return decision('stay', undefined, n);
    }
  }
  if (n.savingsPerHour < th.minSavingsPerHour) {
    costReason(() => `stay on ${where(cur)}: moving to ${where(best.o)} nets ${formatUsd(n.netSavingsUsd)} over ${formatRate(R)}h = ${formatUsdRate(n.savingsPerHour)}/h, below minSavingsPerHour ${formatUsdRate(th.minSavingsPerHour)}/h`, n);
    return decision('stay', undefined, n);
  }
  costReason(() => `move to ${where(best.o)}: nets ${formatUsd(n.netSavingsUsd)} over ${formatRate(R)}h = ${formatUsdRate(n.savingsPerHour)}/h ≥ minSavingsPerHour ${formatUsdRate(th.minSavingsPerHour)}/h`, n);
  return decision('move', best.o, n);
}

/** Preemption rate of the option that matches where the workload runs now (0 when unknown). */
function rateOf(options: readonly PlacementOption[], cur: { pool?: string; zone?: string; capacity: string }): number {
  for (const o of options) if (o.pool === cur.pool && (o.zone ?? '') === (cur.zone ?? '') && o.capacity === cur.capacity) return o.preemptionRatePerHour ?? 0;
  return 0;
}

/** The current placement seen as an option (for policies on `stay`); cap and rate from its pool's option. */
function currentAsOption(input: WorkloadDecisionInput): PlacementOption {
  const cur = input.current as NonNullable<WorkloadDecisionInput['current']>;
  const o: PlacementOption = { pool: cur.pool ?? '', provider: cur.provider, capacity: cur.capacity, gpuModel: input.workload.gpuModel ?? '', pricePerGpuHour: cur.pricePerGpuHour, available: true, node: cur.node };
  if (cur.zone !== undefined) o.zone = cur.zone;
  for (const x of input.options) {
    if (x.pool === cur.pool && (x.zone ?? '') === (cur.zone ?? '') && x.capacity === cur.capacity) {
      if (x.maxPricePerHour !== undefined) o.maxPricePerHour = x.maxPricePerHour;
      if (x.preemptionRatePerHour !== undefined) o.preemptionRatePerHour = x.preemptionRatePerHour;
      if (!o.gpuModel) o.gpuModel = x.gpuModel;
      break;
    }
  }
  return o;
}

function workloadFacts(input: WorkloadDecisionInput, remainingHours: number, now: number): PolicyWorkloadFacts {
  const w = input.workload;
  const dl = w.deadline !== undefined ? Date.parse(w.deadline) : NaN;
  return {
    name: w.name,
    class: w.class,
    gpus: BigInt(Math.trunc(w.gpus)),
    gpuModel: w.gpuModel ?? '',
    capacity: w.capacity,
    labels: capMap(w.labels),
    pools: capList(w.pools),
    hasCheckpoint: w.checkpoint !== undefined,
    expectedDurationHours: w.expectedDurationMs !== undefined ? w.expectedDurationMs / HOUR_MS : 0,
    remainingHours,
    hasDeadline: Number.isFinite(dl),
    deadline: w.deadline ?? '',
    hoursToDeadline: Number.isFinite(dl) ? (dl - now) / HOUR_MS : 0,
    critical: w.critical,
    fallbackTo: w.fallback.to,
    revertToSpot: w.fallback.revertToSpot,
  };
}

function currentFacts(input: WorkloadDecisionInput): PolicyCurrentFacts {
  const c = input.current;
  if (!c) return { running: false, evicted: false, capacity: '', pool: '', zone: '', node: '', pricePerGpuHour: 0 };
  return { running: !c.evicted, evicted: c.evicted === true, capacity: c.capacity, pool: c.pool ?? '', zone: c.zone ?? '', node: c.node, pricePerGpuHour: c.pricePerGpuHour };
}

function targetFacts(o: PlacementOption, gpus: number): PolicyTargetFacts {
  return {
    pool: o.pool,
    provider: o.provider,
    capacity: o.capacity,
    zone: o.zone ?? '',
    gpuModel: o.gpuModel,
    pricePerGpuHour: o.pricePerGpuHour,
    pricePerHour: roundUsd(o.pricePerGpuHour * gpus),
    maxPricePerHour: o.maxPricePerHour ?? 0,
    hasMaxPrice: o.maxPricePerHour !== undefined,
    preemptionRatePerHour: o.preemptionRatePerHour ?? 0,
    existingNode: o.node !== undefined,
    warm: o.warm === true,
  };
}
