// One level-triggered reconcile of watch: under the state lock, read the state and the world, plan,
// and apply what policy allows and no emergency migration is working on — through the same plan and
// apply as the CLI. A destroyed fleet is honoured: nothing is started, anything still running is
// stopped, and watch stays idle until the next `spotfleet apply`.
import { SpotfleetError } from '../core/errors.js';
import type { Notice, Observed } from '../core/types.js';
import { applyPlan, clearStalePending, type ActionResult, type ApplyEvent } from '../engine/apply.js';
import { describeTransferProgress, progressThrottle, type ProgressEvent } from '../engine/progress.js';
import { makePlan } from '../engine/make-plan.js';
import type { StateRecorder } from '../engine/steps.js';
import type { Action, Plan, RecordAction, StartAction } from '../engine/types.js';
import type { StateStore } from '../state/store.js';
import type { StateFile, WorkloadRecord } from '../state/types.js';
import type { LogFields, Logger } from '../telemetry/logger.js';
import type { AlertFacts } from '../policy/alerts.js';
import type { KeyedLock, KeyedLockHandle } from './keyed-lock.js';
import type { WatchSession } from './watch-session.js';

export interface ReconcileInput {
  session: WatchSession;
  store: StateStore;
  recorder: StateRecorder;
  locks: KeyedLock;
  log: Logger;
  stateDir: string;
  lockTimeoutMs: number;
  parallelism: number;
  /** Notices the monitor has seen (instead of polling every node again), when it runs. */
  knownNotices: readonly Notice[] | undefined;
  signalled: ReadonlyMap<string, number>;
  shouldStop: () => boolean;
  /** Alert events found while applying (work lost, failures). */
  events: AlertFacts['events'];
}

export interface ReconcileOutput {
  state: StateFile;
  observed: Observed;
  plan: Plan;
  results: ActionResult[];
  /** The fleet is destroyed: watch does nothing until the next apply. */
  idle: boolean;
  changes: number;
}

export async function reconcileFleet(r: ReconcileInput): Promise<ReconcileOutput> {
  const { session, store, recorder, log } = r;
  const fleetName = session.fleet.name;
  const lock = await store.lock('watch', r.lockTimeoutMs);
  const held: KeyedLockHandle[] = [];
  try {
    const state = await recorder.refresh();
    const destroyed = state.fleetMode?.mode === 'destroyed';
    const { plan, observed } = await makePlan({ ...session, store }, state, {
      now: Date.now(),
      ...(destroyed ? { destroy: true } : {}),
      ...(r.knownNotices ? { knownNotices: r.knownNotices } : {}),
    });
    await store.saveObservation(observed);
    const allowed = withoutMandatoryViolations(plan, (addr, msg) => log.error(`blocked by a mandatory policy: ${msg}`, { fleet: fleetName, address: addr, action: 'policy' }));
    // Each workload is one unit of work: what an emergency migration holds is left to it.
    const runnable = withoutHeld(allowed, r.locks, held);
    for (const d of plan.drift) log.warn(d.message, { fleet: fleetName, address: d.address, action: 'drift', kind: d.kind });
    if (runnable.actions.length === 0) {
      return { state: await clearStalePending(store, state), observed, plan, results: [], idle: destroyed, changes: 0 };
    }
    for (const ch of runnable.changes) if (ch.change !== 'no-op') log.info(ch.reasons.map((x) => `${x.rule}: ${x.text}`).join('; '), { fleet: fleetName, address: ch.address, action: ch.change });
    const logProgress = transferProgressLogger(log, fleetName);
    const result = await applyPlan(runnable, {
      fleet: session.fleet,
      providers: session.providers,
      store,
      state,
      recorder,
      observed,
      mode: destroyed ? 'destroy' : 'apply',
      parallelism: r.parallelism,
      signalledAt: r.signalled,
      shouldStop: r.shouldStop,
      onEvent: (e) => logEvent(log, fleetName, e, r.events, logProgress),
    });
    for (const a of runnable.actions) {
      if (a.kind !== 'record' || a.phase !== 'failed') continue;
      r.events.push({ kind: 'workload-failed', id: `${a.address}:${a.exit?.at ?? Date.now()}`, address: a.address, message: `${a.address} ${a.message}` });
    }
    if (result.failed.length > 0) {
      for (const f of result.failed) r.events.push({ kind: 'migration-failed', id: `${f.address}:${f.kind}:${Date.now()}`, address: f.address, message: f.error ?? 'failed' });
      const err = new SpotfleetError('APPLY_FAILED', `${result.failed.length} action(s) failed: ${result.failed.map((f) => `${f.address} (${f.kind}): ${f.error ?? ''}`).join('; ')}`);
      throw Object.assign(err, { partial: { state: result.state, observed, plan: runnable, results: result.results } });
    }
    return { state: result.state, observed, plan: runnable, results: result.results, idle: destroyed, changes: runnable.actions.length };
  } finally {
    for (const h of held) h.release();
    await lock.release();
  }
}

/** How often watch logs a running transfer's figures (its first report with bytes at once). */
export const TRANSFER_PROGRESS_LOG_MS = 10_000;

/**
 * Logs a running transfer's figures as `transferring 412 MB of 1.20 GB (34%), 56.0 MB/s`, with the
 * numbers as fields for JSON readers: the first report with bytes, then one per 10 s per transfer.
 */
export function transferProgressLogger(log: Logger, fleet: string, fields: LogFields = {}): (e: ProgressEvent) => void {
  const due = progressThrottle(TRANSFER_PROGRESS_LOG_MS);
  return (e) => {
    if (!due(e)) return;
    log.info(`transferring ${describeTransferProgress(e)}`, {
      fleet,
      address: e.action.address,
      action: 'transfer',
      bytes: e.bytes,
      ...(e.totalBytes !== undefined ? { totalBytes: e.totalBytes } : {}),
      ...(e.bytesPerSec !== undefined ? { bytesPerSec: e.bytesPerSec } : {}),
      ...fields,
    });
  };
}

function logEvent(log: Logger, fleet: string, e: ApplyEvent, events: AlertFacts['events'], logProgress: (e: ProgressEvent) => void): void {
  if (e.type === 'progress') logProgress(e);
  else if (e.type === 'done') {
    log[e.result.status === 'ok' ? 'info' : 'error'](`${e.action.kind} ${e.result.status}`, { fleet, address: e.action.address, action: e.action.kind, durationMs: (e.result.endedAt ?? 0) - (e.result.startedAt ?? 0), ...(e.result.error ? { error: e.result.error } : {}), ...(e.result.info ?? {}) });
  } else if (e.type === 'warning') {
    log.warn(e.message, { fleet, address: e.address, action: 'warning' });
    if (e.kind === 'work-lost') events.push({ kind: 'work-lost', id: `${e.address}:${Date.now()}`, address: e.address, message: e.message });
  } else if (e.type === 'skipped') log.warn(`${e.action.kind} skipped: ${e.reason}`, { fleet, address: e.action.address, action: e.action.kind });
}

/** Watch applies what policy allows: changes blocked by a mandatory policy are left out (and logged). */
export function withoutMandatoryViolations(plan: Plan, report: (address: string, message: string) => void): Plan {
  const blocked = new Set<string>();
  for (const c of plan.changes) {
    const v = c.violations.filter((x) => x.level === 'mandatory');
    if (v.length === 0) continue;
    for (const x of v) report(c.address, `${x.policy}: ${x.message}`);
    for (const id of c.actions) blocked.add(id);
  }
  return dropActions(plan, blocked);
}

/**
 * Leaves out the actions of workloads an emergency migration holds, and takes the lock of every
 * other workload the plan acts on (kept in `held` until the apply is over).
 */
function withoutHeld(plan: Plan, locks: KeyedLock, held: KeyedLockHandle[]): Plan {
  const blocked = new Set<string>();
  const owners = new Map<string, string>();
  for (const a of plan.actions) owners.set(a.id, workloadOf(a));
  const taken = new Map<string, boolean>();
  for (const a of plan.actions) {
    const w = owners.get(a.id) as string;
    if (!taken.has(w)) {
      const h = locks.tryAcquire(w);
      if (h) held.push(h);
      taken.set(w, h !== undefined);
    }
    if (!taken.get(w)) blocked.add(a.id);
  }
  return dropActions(plan, blocked);
}

/** The unit an action belongs to: its workload (an acquire belongs to the workload it is for). */
function workloadOf(a: Action): string {
  if (a.kind === 'acquire' && !a.forWorkload.startsWith('standby-')) return `workload.${a.forWorkload}`;
  return a.address;
}

function dropActions(plan: Plan, blocked: Set<string>): Plan {
  if (blocked.size === 0) return plan;
  // Anything that depends on a blocked action is blocked too.
  let grew = true;
  while (grew) {
    grew = false;
    for (const a of plan.actions) if (!blocked.has(a.id) && a.deps.some((d) => blocked.has(d))) {
      blocked.add(a.id);
      grew = true;
    }
  }
  return { ...plan, actions: plan.actions.filter((a) => !blocked.has(a.id)), changes: plan.changes.filter((c) => !c.actions.some((id) => blocked.has(id))) };
}

/** Migrations and restarts the apply finished, for metrics and the event log. */
export function finishedMoves(plan: Plan, results: readonly ActionResult[], state: StateFile): { start: StartAction; result: ActionResult | undefined; record: WorkloadRecord | undefined }[] {
  const byId = new Map(results.map((x) => [x.id, x]));
  return plan.actions
    .filter((a): a is StartAction => a.kind === 'start')
    .map((a) => ({ start: a, result: byId.get(a.id), record: state.resources[a.address]?.type === 'workload' ? (state.resources[a.address] as WorkloadRecord) : undefined }));
}

export function recordedTransitions(plan: Plan): RecordAction[] {
  return plan.actions.filter((a): a is RecordAction => a.kind === 'record');
}
