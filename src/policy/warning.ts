// Early warnings (AWS rebalance recommendations, GCP and Azure maintenance events) get a priced
// response, not a panic move (pure). For a workload on a warned node it prices three answers:
//   ignore  — stay; if the eviction comes (probability p), pay the emergency move then:
//             p × (emergency downtime × G × pTarget + the work at risk);
//   prepare — acquire the target now and pre-copy the newest checkpoint, move only when the
//             eviction notice comes (or the warning's own deadline nears): pay for the idle target
//             while waiting, and on an eviction only the short prepared downtime;
//   move    — move now to the cheapest target the cost model allows (another spot pool when it
//             pays, not only the fallback): pay the changeover now, and the price difference after.
// p is what this pool/zone taught us: warnings followed by an eviction, with a prior (1 in 3) so a
// pool with no history is neither trusted nor feared. Each pool may force an answer (`onWarning`);
// the numbers are computed and shown either way (`explain`).
import { HOUR_MS, formatUsd, roundUsd } from '../core/units.js';
import type { Reason, PlacementOption, WorkloadDecisionInput, CurrentPlacement } from './types.js';

export type WarningResponse = 'prepare' | 'move' | 'ignore';
export type OnWarning = 'auto' | WarningResponse;

/**
 * What spotfleet remembers of one pool/zone's preemptions (state `poolHistory`, keyed `pool/zone`):
 * counts, and an exponentially decayed count of evictions for a rate that forgets.
 */
export interface PoolHistory {
  /** Eviction notices (and preemptions that came without one). */
  evictions: number;
  /** Preemptions that came with no notice at all (the node simply died). */
  unannounced: number;
  /** Early warnings (rebalance, maintenance). */
  warnings: number;
  /** Warnings followed by an eviction of the same node within their window. */
  warningsFollowed: number;
  /** ms epoch of the last eviction and the last warning. */
  lastEvictionAt?: number;
  lastWarningAt?: number;
  /** Decayed eviction count at `decayedAt` (half-life POOL_HISTORY_HALF_LIFE_MS). */
  decayed: number;
  decayedAt: number;
  /** ms epoch of the first record: the time the rate is measured over. */
  since: number;
}

/** A preemption's weight halves every 6 h: a zone that was just preempted is priced as riskier, for a while. */
export const POOL_HISTORY_HALF_LIFE_MS = 6 * HOUR_MS;
/** Prior for P(eviction | warning): one in three (AWS: many rebalance recommendations are never followed). */
export const WARNING_PRIOR = { followed: 1, total: 3 };

export function emptyPoolHistory(now: number): PoolHistory {
  return { evictions: 0, unannounced: 0, warnings: 0, warningsFollowed: 0, decayed: 0, decayedAt: now, since: now };
}

function decay(h: PoolHistory, now: number): number {
  return h.decayed * 0.5 ** (Math.max(0, now - h.decayedAt) / POOL_HISTORY_HALF_LIFE_MS);
}

/** The record after one more event (a copy). */
export function recordPoolEvent(prev: PoolHistory | undefined, event: 'eviction' | 'unannounced' | 'warning' | 'warning-followed', now: number): PoolHistory {
  const h: PoolHistory = { ...(prev ?? emptyPoolHistory(now)) };
  if (event === 'warning') {
    h.warnings += 1;
    h.lastWarningAt = now;
    return h;
  }
  if (event === 'warning-followed') {
    h.warningsFollowed = Math.min(h.warnings, h.warningsFollowed + 1);
    return h;
  }
  h.evictions += 1;
  if (event === 'unannounced') h.unannounced += 1;
  h.lastEvictionAt = now;
  h.decayed = decay(h, now) + 1;
  h.decayedAt = now;
  return h;
}

/**
 * Preemptions per hour this pool/zone has shown, decayed: recent evictions weigh most. Undefined
 * with no eviction on record (then the market's own rate, if any, stands).
 */
export function preemptionRateFromHistory(h: PoolHistory | undefined, now: number): number | undefined {
  if (!h || h.evictions === 0) return undefined;
  // The decayed count spread over one half-life window (at least the time observed).
  const windowH = Math.max(1, Math.min(POOL_HISTORY_HALF_LIFE_MS, now - h.since + HOUR_MS) / HOUR_MS);
  return decay(h, now) / windowH;
}

/** P(an eviction follows a warning) for this pool/zone, with the prior. */
export function warningFollowProbability(h: PoolHistory | undefined): number {
  return ((h?.warningsFollowed ?? 0) + WARNING_PRIOR.followed) / ((h?.warnings ?? 0) + WARNING_PRIOR.total);
}

export interface WarningDecisionInput extends WorkloadDecisionInput {
  current: CurrentPlacement;
  notice: { kind: string; deadline: number; receivedAt: number };
  /** The pool's `onWarning`; `auto` (default) picks the cheapest answer. */
  configured: OnWarning;
  /** What this pool/zone taught us (state `poolHistory`). */
  poolHistory?: PoolHistory;
}

export interface WarningDecision {
  workload: string;
  response: WarningResponse;
  /** Where prepare acquires, or move moves, to. */
  target?: PlacementOption;
  reasons: Reason[];
  numbers: {
    followProbability: number;
    ignoreUsd: number;
    prepareUsd: number;
    moveUsd: number;
    emergencyDowntimeHours: number;
    preparedDowntimeHours: number;
    holdHours: number;
  };
}

/** How long the prepared target may have to wait idle: until the warning's deadline, at most 2 h. */
const MAX_HOLD_MS = 2 * HOUR_MS;

/** Prices ignore, prepare and move for a workload on a warned node. See the module comment. */
export function decideWarning(input: WarningDecisionInput, now: number): WarningDecision {
  const w = input.workload;
  const cur = input.current;
  const G = Math.max(1, w.gpus);
  const p = warningFollowProbability(input.poolHistory);
  const oh = input.overhead;
  const C = (oh.checkpointMs + oh.transferMs + oh.restartMs) / HOUR_MS;
  // Capacity elsewhere: not the warned pool/zone; cheapest effective first (price, then known risk).
  const elsewhere = input.options.filter((o) => o.available && !(o.pool === cur.pool && (o.zone ?? '') === (cur.zone ?? '')) && o.node !== cur.node);
  const ranked = [...elsewhere].sort((a, b) => a.pricePerGpuHour * (1 + (a.preemptionRatePerHour ?? 0)) - b.pricePerGpuHour * (1 + (b.preemptionRatePerHour ?? 0)));
  const target = ranked[0];
  const pT = target?.pricePerGpuHour ?? cur.pricePerGpuHour;
  const remainingH = Math.max(0, ((w.expectedDurationMs ?? 8 * HOUR_MS) - input.progress.doneMs) / HOUR_MS);
  const sinceCkH = input.progress.lastCheckpointAt !== undefined ? Math.max(0, now - input.progress.lastCheckpointAt) / HOUR_MS : 0;
  // An emergency pays the acquire (when the target is new capacity) and the whole transfer after the
  // notice; a prepared one only a delta and the restart.
  const acquireH = target && target.node === undefined ? oh.restartMs / HOUR_MS : 0;
  const emergencyDowntimeH = acquireH + (oh.transferMs + oh.restartMs) / HOUR_MS;
  const preparedDowntimeH = (oh.transferMs * 0.1 + oh.restartMs) / HOUR_MS;
  const holdH = Math.max(0, Math.min(MAX_HOLD_MS, input.notice.deadline - now)) / HOUR_MS;
  // The work at risk when the eviction comes: a checkpoint on the notice usually saves it; count a
  // tenth of the work since the last checkpoint as the chance it does not.
  const atRiskUsd = 0.1 * sinceCkH * G * cur.pricePerGpuHour;
  const ignoreUsd = p * (emergencyDowntimeH * G * pT + atRiskUsd);
  const prepareUsd = (target ? holdH * G * pT * (target.node === undefined ? 1 : 0) : Infinity) + p * preparedDowntimeH * G * pT;
  // Moving now: the changeover on both sides, then the price difference for what is left (cheaper
  // spot elsewhere earns it back), and no eviction risk from this warning any more.
  const moveUsd = target ? C * G * (cur.pricePerGpuHour + pT) + (pT - cur.pricePerGpuHour) * G * remainingH : Infinity;
  const numbers = {
    followProbability: roundUsd(p),
    ignoreUsd: roundUsd(ignoreUsd),
    prepareUsd: Number.isFinite(prepareUsd) ? roundUsd(prepareUsd) : -1,
    moveUsd: Number.isFinite(moveUsd) ? roundUsd(moveUsd) : -1,
    emergencyDowntimeHours: roundUsd(emergencyDowntimeH),
    preparedDowntimeHours: roundUsd(preparedDowntimeH),
    holdHours: roundUsd(holdH),
  };
  const costs: [WarningResponse, number][] = [
    ['ignore', ignoreUsd],
    ['prepare', prepareUsd],
    ['move', moveUsd],
  ];
  const cheapest = costs.reduce((a, b) => (b[1] < a[1] ? b : a));
  let response: WarningResponse = input.configured === 'auto' ? cheapest[0] : input.configured;
  const reasons: Reason[] = [
    {
      rule: 'warning',
      text: `${input.notice.kind} warning on ${cur.node}: an eviction follows with p=${numbers.followProbability}; ignore ${formatUsd(ignoreUsd)}, prepare ${Number.isFinite(prepareUsd) ? formatUsd(prepareUsd) : 'n/a'}, move now ${Number.isFinite(moveUsd) ? formatUsd(moveUsd) : 'n/a'} (expected)`,
      numbers,
    },
  ];
  if ((response === 'prepare' || response === 'move') && !target) {
    reasons.push({ rule: 'warning', text: `no other capacity is available to ${response} to: ignore for now` });
    response = 'ignore';
  }
  reasons.push({ rule: 'warning', text: input.configured === 'auto' ? `${response}: the cheapest answer` : `${response}: the pool's onWarning says so` });
  return { workload: w.name, response, ...(target && response !== 'ignore' ? { target } : {}), reasons, numbers };
}
