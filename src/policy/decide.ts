// decideWorkload: the placement decision for one workload (pure, no I/O). First cut: eligibility by
// class and checkpoint contract, evictions force a move along the fallback rule, spot only when it
// saves at least minSavingsPerHour, minimum dwell before reverting, cheapest option wins.
import { HOUR_MS, roundUsd } from '../core/units.js';
import type { DecideContext, PlacementOption, Reason, WorkloadDecision, WorkloadDecisionInput } from './types.js';

const SPOT_CLASSES = new Set(['training', 'batch', 'dev']);

export function isSpotEligible(input: WorkloadDecisionInput): { ok: boolean; reason: Reason } {
  const w = input.workload;
  if (w.capacity === 'on-demand') return { ok: false, reason: { rule: 'eligibility', text: 'capacity: on-demand in the spec' } };
  if (!SPOT_CLASSES.has(w.class)) return { ok: false, reason: { rule: 'eligibility', text: `class ${w.class} never runs on spot` } };
  if (!w.checkpoint) return { ok: false, reason: { rule: 'eligibility', text: 'no checkpoint contract' } };
  return { ok: true, reason: { rule: 'eligibility', text: `class ${w.class} with a checkpoint contract may run on spot` } };
}

function optionCostPerHour(o: PlacementOption, gpus: number): number {
  return o.pricePerGpuHour * gpus;
}

export function decideWorkload(input: WorkloadDecisionInput, ctx: DecideContext): WorkloadDecision {
  const w = input.workload;
  const reasons: Reason[] = [];
  const elig = isSpotEligible(input);
  reasons.push(elig.reason);
  const cur = input.current;
  const nowPerHour = cur && !cur.evicted ? roundUsd(cur.pricePerGpuHour * w.gpus) : cur ? roundUsd(cur.pricePerGpuHour * w.gpus) : 0;
  const pinned = input.history.pinnedOnDemandUntil !== undefined && input.history.pinnedOnDemandUntil > ctx.now;
  const allowSpot = elig.ok && !pinned;
  if (pinned) reasons.push({ rule: 'anti-flap', text: `pinned to on-demand until ${new Date(input.history.pinnedOnDemandUntil as number).toISOString()}: ${input.history.pinnedReason ?? 'cooldown'}` });

  let candidates = input.options.filter((o) => o.available && (o.capacity === 'on-demand' || allowSpot));
  if (w.capacity === 'spot' && !cur?.evicted) {
    const spot = candidates.filter((o) => o.capacity === 'spot');
    if (spot.length > 0) candidates = spot;
  }
  if (cur?.evicted) {
    candidates = candidates.filter((o) => o.node !== cur.node);
    const fb = w.fallback.to;
    const preferred = fb === 'on-demand' ? candidates.filter((o) => o.capacity === 'on-demand') : candidates.filter((o) => o.pool === fb);
    if (preferred.length > 0) candidates = preferred;
    reasons.push({ rule: 'fallback', text: `node ${cur.node} is being evicted; fallback to ${fb}` });
  }
  candidates.sort((a, b) => optionCostPerHour(a, w.gpus) - optionCostPerHour(b, w.gpus) || Number(Boolean(b.node)) - Number(Boolean(a.node)) || a.pool.localeCompare(b.pool) || (a.zone ?? '').localeCompare(b.zone ?? ''));
  const best = candidates[0];
  const overheadHours = (input.overhead.checkpointMs + input.overhead.transferMs + input.overhead.restartMs) / HOUR_MS;

  if (!best) {
    reasons.push({ rule: 'placement', text: 'no available capacity fits this workload' });
    return { workload: w.name, action: cur && !cur.evicted ? 'stay' : 'none', eligibleForSpot: elig.ok, reasons, money: { nowPerHour, afterPerHour: cur && !cur.evicted ? nowPerHour : 0, migrationOverheadUsd: 0 }, violations: [] };
  }
  const bestPerHour = roundUsd(optionCostPerHour(best, w.gpus));
  if (!cur) {
    reasons.push({ rule: 'placement', text: `cheapest available: ${best.pool}${best.zone ? `/${best.zone}` : ''} (${best.capacity}) at $${bestPerHour}/h` });
    return { workload: w.name, action: 'place', target: best, eligibleForSpot: elig.ok, reasons, money: { nowPerHour: 0, afterPerHour: bestPerHour, migrationOverheadUsd: 0 }, violations: [] };
  }
  const migrationOverheadUsd = roundUsd(overheadHours * bestPerHour);
  if (cur.evicted) {
    return { workload: w.name, action: 'move', target: best, eligibleForSpot: elig.ok, reasons, money: { nowPerHour, afterPerHour: bestPerHour, migrationOverheadUsd }, violations: [] };
  }
  // Running and healthy: move only when it pays and the workload has dwelled long enough.
  const savingsPerHour = roundUsd(nowPerHour - bestPerHour);
  const remainingMs = w.expectedDurationMs !== undefined ? Math.max(0, w.expectedDurationMs - input.progress.doneMs) : undefined;
  const currentStillAllowed = cur.capacity === 'on-demand' || allowSpot;
  if (currentStillAllowed && savingsPerHour < ctx.thresholds.minSavingsPerHour) {
    reasons.push({ rule: 'cost-benefit', text: `stay: moving to ${best.pool} saves $${savingsPerHour}/h, below minSavingsPerHour $${ctx.thresholds.minSavingsPerHour}/h`, numbers: { savingsPerHour, minSavingsPerHour: ctx.thresholds.minSavingsPerHour } });
    return { workload: w.name, action: 'stay', eligibleForSpot: elig.ok, reasons, money: { nowPerHour, afterPerHour: nowPerHour, migrationOverheadUsd: 0 }, violations: [] };
  }
  if (currentStillAllowed && remainingMs !== undefined && remainingMs < ctx.thresholds.minRuntimeMs) {
    reasons.push({ rule: 'cost-benefit', text: `stay: ${Math.round(remainingMs / 60_000)} min left, below minRuntime` });
    return { workload: w.name, action: 'stay', eligibleForSpot: elig.ok, reasons, money: { nowPerHour, afterPerHour: nowPerHour, migrationOverheadUsd: 0 }, violations: [] };
  }
  if (currentStillAllowed && cur.capacity === 'on-demand' && best.capacity === 'spot') {
    if (!w.fallback.revertToSpot && input.history.lastMoveAt !== undefined) {
      reasons.push({ rule: 'fallback', text: 'stay on on-demand: revertToSpot is off' });
      return { workload: w.name, action: 'stay', eligibleForSpot: elig.ok, reasons, money: { nowPerHour, afterPerHour: nowPerHour, migrationOverheadUsd: 0 }, violations: [] };
    }
    const dwell = ctx.now - cur.since;
    if (dwell < w.fallback.minDwellMs) {
      reasons.push({ rule: 'anti-flap', text: `stay: on on-demand for ${Math.round(dwell / 1000)}s, minDwell is ${Math.round(w.fallback.minDwellMs / 1000)}s` });
      return { workload: w.name, action: 'stay', eligibleForSpot: elig.ok, reasons, money: { nowPerHour, afterPerHour: nowPerHour, migrationOverheadUsd: 0 }, violations: [] };
    }
  }
  reasons.push({ rule: 'cost-benefit', text: `move to ${best.pool}${best.zone ? `/${best.zone}` : ''} (${best.capacity}): $${nowPerHour}/h → $${bestPerHour}/h, overhead $${migrationOverheadUsd}`, numbers: { savingsPerHour, migrationOverheadUsd } });
  return { workload: w.name, action: 'move', target: best, eligibleForSpot: elig.ok, reasons, money: { nowPerHour, afterPerHour: bestPerHour, migrationOverheadUsd }, violations: [] };
}
