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
import type { CapacityType, CheckpointInfo, Notice, NoticeKind } from '../core/types.js';
import { HOUR_MS, formatUsd, roundUsd } from '../core/units.js';
import { poolZoneKey, poolZoneLabel } from '../core/address.js';
import type { Reason, PlacementOption, WorkloadDecision, WorkloadDecisionInput, CurrentPlacement } from './types.js';

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
  /** Ids of the events already counted (newest last, bounded): a notice seen again is not counted twice. */
  seen?: string[];
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

/** The pool/zone key of `poolHistory`. */
export function poolHistoryKey(pool: string, zone?: string): string {
  return poolZoneKey(pool, zone);
}

/**
 * Records an event once per id in a `poolHistory` map (mutates it): false when that id was counted
 * already (the same notice seen again after a restart, by the monitor and the refresh both).
 */
export function recordPoolEventOnce(history: Record<string, PoolHistory>, key: string, event: Parameters<typeof recordPoolEvent>[1], id: string, now: number): boolean {
  const prev = history[key];
  if (prev?.seen?.includes(id)) return false;
  const next = recordPoolEvent(prev, event, now);
  next.seen = [...(prev?.seen ?? []), id].slice(-50);
  history[key] = next;
  return true;
}

/**
 * Lays what each pool/zone taught us over the market's own preemption rates (mutates the options):
 * the higher of the two counts, so a zone that was just preempted is priced as riskier until its
 * record decays below what the market says.
 */
export function withPoolHistory(options: PlacementOption[], history: Readonly<Record<string, PoolHistory>> | undefined, now: number): PlacementOption[] {
  if (!history) return options;
  for (const o of options) {
    const r = preemptionRateFromHistory(history[poolHistoryKey(o.pool, o.zone)], now);
    if (r !== undefined) o.preemptionRatePerHour = Math.max(o.preemptionRatePerHour ?? 0, r);
  }
  return options;
}

// ---- notice kinds ---------------------------------------------------------------------------

/** Evictions take the node: AWS instance-action, GCP preempted, Azure Preempt (and Terminate). */
export function isEvictionKind(kind: string): boolean {
  return kind === 'preemption' || kind === 'termination';
}

/** Early warnings: AWS rebalance recommendations, GCP/Azure/AWS maintenance events. */
export function isEarlyWarning(n: Pick<Notice, 'kind'>): boolean {
  return !isEvictionKind(n.kind);
}

/** A warning watch decided to act on as an eviction now (its deadline nears, or `move`): marked `detail.due`. */
export function isDueWarning(n: Pick<Notice, 'detail'>): boolean {
  return n.detail?.due === true;
}

/**
 * Does this notice force `workload` (on its node) to move now? Evictions do; warnings only once due,
 * and a due warning that names its workloads (`detail.workloads`, comma-separated: a `move` answer)
 * only those.
 */
export function noticeEvicts(n: Pick<Notice, 'kind' | 'detail'>, workload?: string): boolean {
  if (isEvictionKind(n.kind)) return true;
  if (!isDueWarning(n)) return false;
  const only = n.detail?.workloads;
  return typeof only !== 'string' || workload === undefined || only.split(',').includes(workload);
}

/** Maintenance that leaves the workload running: live migration (GCP), a short freeze (Azure), network/power work (AWS). */
const NON_STOPPING_MAINTENANCE = new Set(['MIGRATE_ON_HOST_MAINTENANCE', 'Freeze', 'system-maintenance']);

/**
 * Is the warning's deadline the moment the workload stops (a maintenance event that reboots,
 * stops or retires the machine)? A rebalance recommendation's is not: it is only the earliest an
 * interruption could come.
 */
export function warningIsBinding(n: Pick<Notice, 'kind' | 'action'>): boolean {
  return n.kind === 'maintenance' && !NON_STOPPING_MAINTENANCE.has(n.action ?? '');
}

/** How long a non-binding warning is watched for its eviction by default (watch --warning-window). */
export const DEFAULT_WARNING_WINDOW_MS = 30 * 60_000;

/**
 * Until when the warning stands: a binding one until its deadline; otherwise until its deadline
 * or `windowMs` after it was received, whichever is later (an eviction after that no longer
 * counts as its follow-up, and a lease prepared for it is released).
 */
export function warningWindowEnd(n: Pick<Notice, 'kind' | 'action' | 'deadline' | 'receivedAt'>, windowMs: number): number {
  const deadline = Date.parse(n.deadline);
  if (warningIsBinding(n)) return deadline;
  return Math.max(deadline, Date.parse(n.receivedAt) + windowMs);
}

// ---- what watch records of a warning ---------------------------------------------------------

/** The target a warning's answer acquired and pre-copied to (state: the workload's `prepared`). */
export interface PreparedMove {
  noticeId: string;
  kind: NoticeKind;
  response: 'prepare' | 'move';
  /** The warning's deadline takes the node: move before it even without an eviction notice. */
  binding: boolean;
  /** The node the workload ran on when warned. */
  fromNode: string;
  provider: string;
  pool: string;
  zone?: string;
  capacity: CapacityType;
  pricePerGpuHour: number;
  /** The target node, once there is one (an existing node, or the lease's). */
  node?: string;
  /** Set when the target was acquired for this warning: released when not needed. */
  leaseId?: string;
  leaseAddress?: string;
  /** The checkpoint as pre-copied to the target. */
  checkpoint?: CheckpointInfo;
  /** Bytes of the pre-copied checkpoint, and how many of them had to cross the link. */
  precopyBytes?: number;
  sentBytes?: number;
  precopyMs?: number;
  state: 'acquiring' | 'copying' | 'ready' | 'failed';
  error?: string;
  /** ms epoch: prepared at; held until (the warning's window end). */
  at: number;
  until: number;
}

/** The last early warning a workload got, and the answer watch gave (state: the workload's `lastWarning`). */
export interface WarningRecord {
  noticeId: string;
  kind: NoticeKind;
  source: string;
  action?: string;
  node: string;
  /** ms epoch: decided at; the warning's deadline; its window end. */
  at: number;
  deadline: number;
  windowEnd: number;
  configured: OnWarning;
  response: WarningResponse;
  target?: { pool: string; zone?: string; capacity: CapacityType; node?: string; pricePerGpuHour: number };
  numbers: WarningDecision['numbers'];
  reasons: string[];
  /** What came of it: an eviction followed, the window passed without one, or the workload was moved. */
  outcome?: 'followed' | 'not-followed' | 'moved';
}

/** A prepared target is held (its lease kept, its node reserved) until its window ends. */
export function preparedActive(p: PreparedMove | undefined, now: number): boolean {
  return p !== undefined && p.state !== 'failed' && p.until > now;
}

/**
 * An evicted workload with a target prepared for it goes there (its checkpoint is already mostly
 * there) while that target still has room; otherwise the decision (the fallback rule) stands.
 */
export function usePreparedTarget(p: PreparedMove | undefined, options: readonly PlacementOption[], decision: WorkloadDecision, now: number): WorkloadDecision {
  if (!p || !preparedActive(p, now) || p.node === undefined) return decision;
  const o = options.find((x) => x.available && x.provider === p.provider && x.node === p.node);
  if (!o) return { ...decision, reasons: [...decision.reasons, { rule: 'warning', text: `the target prepared for the ${p.kind} warning (${p.node}) has no room now: the fallback rule decides` }] };
  const copied = p.checkpoint ? `, checkpoint pre-copied ${new Date(Date.parse(p.checkpoint.mtime)).toISOString()}` : '';
  return { ...decision, action: 'move', target: o, reasons: [...decision.reasons, { rule: 'warning', text: `move to ${poolZoneLabel(o.pool, o.zone)} on ${p.node}, prepared for the ${p.kind} warning${copied}: only the delta moves now` }] };
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
  const elsewhere = input.options.filter((o) => o.available && (w.capacity === 'auto' || o.capacity === w.capacity) && !(o.pool === cur.pool && (o.zone ?? '') === (cur.zone ?? '')) && o.node !== cur.node);
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

/**
 * The warning part of `spotfleet explain`: the warning, the priced answers with their numbers, the
 * answer and why, what came of it, and the target prepared for it (plain text, stable).
 * `live` marks a decision computed now for a warning watch has not answered (yet).
 */
export function renderWarningDecision(w: WarningRecord, o: { history?: PoolHistory; prepared?: PreparedMove; live?: boolean } = {}): string {
  const iso = (ms: number): string => new Date(ms).toISOString();
  const n = w.numbers;
  const out: string[] = [];
  out.push(`early warning: ${w.kind}${w.action ? ` (${w.action})` : ''} from ${w.source} on node ${w.node}${o.live ? ' — not answered by watch yet; what it would answer now' : `, answered ${iso(w.at)}`}`);
  out.push(`  deadline ${iso(w.deadline)}; ${w.windowEnd === w.deadline ? 'the node goes then (binding)' : `watched for its eviction until ${iso(w.windowEnd)}`}`);
  const h = o.history;
  out.push(`  p(an eviction follows) = ${formatRateNum(n.followProbability)}${h ? ` (this pool/zone: ${h.warnings} warning(s), ${h.warningsFollowed} followed, ${h.evictions} eviction(s)${h.unannounced ? `, ${h.unannounced} without notice` : ''}; prior 1 in 3)` : ' (no record for this pool/zone: the 1-in-3 prior)'}`);
  out.push(`  emergency downtime ${formatRateNum(n.emergencyDowntimeHours)}h, prepared downtime ${formatRateNum(n.preparedDowntimeHours)}h, target held up to ${formatRateNum(n.holdHours)}h`);
  for (const r of w.reasons) out.push(`  ${r}`);
  const t = w.target;
  out.push(`  answer: ${w.response} (onWarning: ${w.configured})${t && w.response !== 'ignore' ? ` → ${poolZoneLabel(t.pool, t.zone)} (${t.capacity}${t.node ? `, node ${t.node}` : ', new capacity'}) at ${formatUsd(t.pricePerGpuHour)}/GPU-h` : ''}`);
  if (!o.live) out.push(`  outcome: ${w.outcome === 'followed' ? 'an eviction followed' : w.outcome === 'not-followed' ? 'no eviction within the window' : w.outcome === 'moved' ? 'moved on the warning' : 'open (within its window)'}`);
  const p = o.prepared;
  if (p) {
    const mb = (b: number | undefined): string => (b === undefined ? '?' : `${(b / 1e6).toFixed(1)} MB`);
    out.push(`  prepared: ${p.node ?? '(acquiring)'}${p.leaseId ? ` (lease ${p.leaseId})` : ''}, ${p.state}${p.checkpoint ? `, checkpoint ${p.checkpoint.path} pre-copied (${mb(p.precopyBytes)}, ${mb(p.sentBytes)} sent)` : ''}${p.error ? `; ${p.error}` : ''}; held until ${iso(p.until)}`);
  }
  return `${out.join('\n')}\n`;
}

function formatRateNum(x: number): string {
  return Number.isInteger(x) ? String(x) : String(Math.round(x * 1000) / 1000);
}
