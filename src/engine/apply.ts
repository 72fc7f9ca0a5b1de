// applyPlan: the effects, as a DAG walk with bounded parallelism over the plan's actions. Each
// action runs one step of steps.ts (which writes its pending record before the side effect and its
// result after), so a crash at any point leaves a record and the next plan (which adopts what it
// finds with our labels and finishes recorded moves) converges without duplicates. A failed action
// skips its dependents; independent actions go on. The first Ctrl-C (shouldStop) starts nothing new,
// except the rest of a workload's move that has already begun: a stopped workload is never left down.
import { setTimeout as sleep } from 'node:timers/promises';
import { providerKey } from '../core/address.js';
import { errorMessage } from '../core/errors.js';
import type { Observed } from '../core/types.js';
import type { Provider } from '../providers/sdk.js';
import type { Fleet } from '../spec/types.js';
import type { StateStore } from '../state/store.js';
import type { StateFile } from '../state/types.js';
import {
  StateRecorder,
  StepContext,
  acquireStep,
  adoptStep,
  awaitCheckpointStep,
  beginMoveStep,
  forgetStep,
  recordStep,
  releaseStep,
  removeStep,
  signalStep,
  startStep,
  stopStep,
  transferStep,
  type StepEvent,
  type StepInfo,
} from './steps.js';
import type { Action, Plan } from './types.js';

export type ActionStatus = 'ok' | 'failed' | 'skipped' | 'cancelled';

export interface ActionResult {
  id: string;
  address: string;
  kind: Action['kind'];
  summary: string;
  status: ActionStatus;
  error?: string;
  startedAt?: number;
  endedAt?: number;
  /** Extra facts (lost work, bytes moved...). */
  info?: StepInfo;
}

export type ApplyEvent =
  | { type: 'start'; action: Action; at: number }
  | { type: 'done'; action: Action; result: ActionResult }
  | { type: 'skipped'; action: Action; reason: string }
  | StepEvent;

export interface ApplyOptions {
  fleet: Fleet;
  providers: ReadonlyMap<string, Provider>;
  store: StateStore;
  state: StateFile;
  /** Shared by every writer of this process (watch's reconcile and its emergency migrations). */
  recorder?: StateRecorder;
  /** What refresh saw (node facts for storage calls, prices for the ledger). */
  observed: Observed;
  /** `destroy` never starts anything; `apply` starts only while the fleet is active. Default apply. */
  mode?: 'apply' | 'destroy';
  /** Default 10. */
  parallelism?: number;
  now?: () => number;
  onEvent?: (e: ApplyEvent) => void;
  /** Polled between actions: true stops scheduling new ones (first Ctrl-C). */
  shouldStop?: () => boolean;
  /** How often to look for a verified checkpoint; default 200 ms. */
  pollMs?: number;
  /** How long to wait for an acquired lease to become a node; default 120 s. */
  leaseReadyMs?: number;
  /**
   * Instances (`provider/instanceId`) that already got the checkpoint signal at the given time
   * (ms epoch): watch signals at once when a notice arrives, before the reconcile runs, so the
   * checkpoint step only waits for a checkpoint newer than that.
   */
  signalledAt?: ReadonlyMap<string, number>;
}

export interface ApplyResult {
  state: StateFile;
  results: ActionResult[];
  failed: ActionResult[];
  cancelled: boolean;
}

/**
 * Drops the pending records a dead run left behind. Call it under the lock, after a plan was made
 * from a fresh refresh: that plan has already converged from what the providers report (adopting
 * what was started, stopping duplicates, finishing recorded moves), so the records are done with;
 * keeping them would only let them pile up across crashes.
 */
export async function clearStalePending(store: StateStore, state: StateFile): Promise<StateFile> {
  if (!state.pending.some((p) => p.pid !== process.pid)) return state;
  return store.update((s) => {
    s.pending = s.pending.filter((p) => p.pid === process.pid);
  });
}

/** Executes a plan. See the module comment. */
export async function applyPlan(plan: Plan, opts: ApplyOptions): Promise<ApplyResult> {
  const now = opts.now ?? Date.now;
  const recorder = opts.recorder ?? new StateRecorder(opts.store, opts.state);
  const parallelism = Math.max(1, opts.parallelism ?? 10);
  const byId = new Map(plan.actions.map((a) => [a.id, a]));
  const results = new Map<string, ActionResult>();
  const emit = (e: ApplyEvent): void => opts.onEvent?.(e);
  const ctx = new StepContext({
    fleet: opts.fleet,
    providers: opts.providers,
    recorder,
    observed: opts.observed,
    now,
    emit: (e) => emit(e),
    mode: opts.mode ?? 'apply',
    ...(opts.pollMs !== undefined ? { pollMs: opts.pollMs } : {}),
    ...(opts.leaseReadyMs !== undefined ? { leaseReadyMs: opts.leaseReadyMs } : {}),
  });
  /** When each workload's source stopped making progress (its stop began), for the downtime. */
  const stopStartedAt = new Map<string, number>();

  /** Timings of a workload's move so far: its own actions plus the acquire made for it. */
  const timingsOf = (workload: string, address: string): Record<string, number> => {
    const t: Record<string, number> = {};
    for (const r of results.values()) {
      const src = byId.get(r.id);
      const mine = r.address === address || (src?.kind === 'acquire' && src.forWorkload === workload);
      if (mine && r.startedAt !== undefined && r.endedAt !== undefined && r.kind !== 'start') t[r.kind] = r.endedAt - r.startedAt;
    }
    return t;
  };

  const run = async (a: Action, startedAt: number): Promise<StepInfo | undefined> => {
    switch (a.kind) {
      case 'acquire':
        return acquireStep(ctx, a);
      case 'checkpoint': {
        const signalAt = await signalStep(ctx, a, opts.signalledAt?.get(providerKey(a.provider, a.instanceId)));
        const rec = recorder.latest.resources[a.address];
        const out = await awaitCheckpointStep(ctx, a, signalAt, rec?.type === 'workload' && rec.instanceId === a.instanceId ? rec.since : undefined);
        return out.verified ? { verifiedMs: now() - signalAt } : { verified: false, ...(out.lostWorkMs !== undefined ? { lostWorkMs: out.lostWorkMs } : {}), ...(out.exited ? { exited: true } : {}) };
      }
      case 'stop':
        if (a.move) await beginMoveStep(ctx, a, ctx.baton.get(a.workload), startedAt);
        if (!a.duplicate) stopStartedAt.set(a.workload, startedAt);
        return stopStep(ctx, a);
      case 'transfer':
        return transferStep(ctx, a, ctx.baton.get(a.workload));
      case 'start': {
        const stopAt = stopStartedAt.get(a.workload);
        return startStep(ctx, a, ctx.baton.get(a.workload), { timings: timingsOf(a.workload, a.address), startedAt, ...(stopAt !== undefined ? { stopStartedAt: stopAt } : {}) });
      }
      case 'release':
        return releaseStep(ctx, a);
      case 'adopt':
        await adoptStep(ctx, a);
        return undefined;
      case 'forget':
        await forgetStep(ctx, a.address);
        return undefined;
      case 'record':
        return recordStep(ctx, a);
      case 'remove':
        await removeStep(ctx, a);
        return undefined;
    }
  };

  // ---- the DAG walk ----
  const pending = new Set(plan.actions.map((a) => a.id));
  const running = new Map<string, Promise<void>>();
  let cancelled = false;
  /** Workloads whose stop has begun: the rest of their move runs even after a Ctrl-C. */
  const committed = new Set<string>();
  const depState = (a: Action): 'ready' | 'wait' | 'blocked' => {
    for (const d of a.deps) {
      if (!byId.has(d)) continue;
      const r = results.get(d);
      if (!r) return 'wait';
      if (r.status !== 'ok') return 'blocked';
    }
    return 'ready';
  };
  recorder.latest = await clearStalePending(opts.store, recorder.latest);
  for (;;) {
    // Yield to the event loop each round: with providers that answer without real I/O the walk
    // would otherwise run as one chain of microtasks, and a Ctrl-C would not be seen until the end.
    await new Promise<void>((r) => setImmediate(r));
    if (!cancelled && opts.shouldStop?.()) cancelled = true;
    let progressed = false;
    for (const id of [...pending]) {
      const a = byId.get(id) as Action;
      const st = depState(a);
      const mustFinish = committed.has(a.address);
      if (st === 'blocked' || (cancelled && !mustFinish && st !== 'wait')) {
        pending.delete(id);
        const failedDep = a.deps.map((d) => results.get(d)).find((r) => r && r.status !== 'ok');
        const reason = cancelled && st !== 'blocked' ? 'interrupted' : `depends on ${failedDep?.address ?? '?'} (${failedDep?.kind ?? '?'}) which ${failedDep?.status === 'failed' ? 'failed' : 'did not run'}`;
        results.set(id, { id, address: a.address, kind: a.kind, summary: a.summary, status: cancelled && st !== 'blocked' ? 'cancelled' : 'skipped', error: reason });
        emit({ type: 'skipped', action: a, reason });
        progressed = true;
        continue;
      }
      if (st !== 'ready' || running.size >= parallelism || (cancelled && !mustFinish)) continue;
      pending.delete(id);
      if (a.kind === 'stop' && !a.duplicate) committed.add(a.address);
      progressed = true;
      const startedAt = now();
      emit({ type: 'start', action: a, at: startedAt });
      const task = (async () => {
        let result: ActionResult;
        try {
          const info = await run(a, startedAt);
          result = { id, address: a.address, kind: a.kind, summary: a.summary, status: 'ok', startedAt, endedAt: now(), ...(info ? { info } : {}) };
        } catch (e) {
          result = { id, address: a.address, kind: a.kind, summary: a.summary, status: 'failed', error: errorMessage(e), startedAt, endedAt: now() };
        }
        results.set(id, result);
        running.delete(id);
        emit({ type: 'done', action: a, result });
      })();
      running.set(id, task);
    }
    if (pending.size === 0 && running.size === 0) break;
    // Cancelled with only waiting actions of moves not begun left: they are skipped next round.
    if (!progressed) {
      if (running.size > 0) await Promise.race([...running.values(), sleep(100)]);
      else if (pending.size > 0 && !cancelled) {
        // Only waiting actions remain with nothing running: a cycle, which planFleet never makes.
        for (const id of pending) {
          const a = byId.get(id) as Action;
          results.set(id, { id, address: a.address, kind: a.kind, summary: a.summary, status: 'skipped', error: 'unsatisfiable dependency' });
        }
        pending.clear();
      }
    }
  }
  const all = plan.actions.map((a) => results.get(a.id) as ActionResult);
  return { state: recorder.latest, results: all, failed: all.filter((r) => r.status === 'failed'), cancelled };
}
