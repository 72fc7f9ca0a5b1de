// The emergency migration: a notice for node N moves every workload off N before its deadline, each
// workload as its own unit of work under its own lock, so evictions of different nodes (and
// different workloads) run at the same time and never wait for a reconcile of the rest of the fleet.
// One workload's migration is one function of named steps: the pure planner chooses the target
// (the same decision plan and apply make, so `fallback.to` holds), then
//   signal → (acquire ∥ verified checkpoint) → record the move → stop → transfer → start,
// each step handing its verified checkpoint to the next. The move is recorded in the state before
// the stop, so a watch killed between any two steps finishes it after its restart.
import { providerKey, workloadAddress } from '../core/address.js';
import { errorMessage } from '../core/errors.js';
import type { Notice, Observed, WorkloadInstance } from '../core/types.js';
import { planFleet } from '../engine/plan.js';
import {
  StepContext,
  acquireStep,
  awaitCheckpointStep,
  beginMoveStep,
  signalStep,
  startStep,
  stopStep,
  transferStep,
  type CheckpointOutcome,
  type StateRecorder,
  type StepEvent,
} from '../engine/steps.js';
import type { AcquireAction, CheckpointAction, StartAction, StopAction, TransferAction } from '../engine/types.js';
import type { ZoneStats } from '../policy/uptime.js';
import type { WorkloadRecord } from '../state/types.js';
import type { KeyedLock } from './keyed-lock.js';
import type { WatchSession } from './watch-session.js';

export interface EmergencyContext {
  session: WatchSession;
  recorder: StateRecorder;
  locks: KeyedLock;
  /** What the last reconcile saw (nodes, prices, instances), with the notices seen since. */
  observed(): Observed;
  /** Instances that got the checkpoint signal (fast path), by `provider/instanceId`. */
  signalled: Map<string, number>;
  now(): number;
  emit(e: StepEvent): void;
  /** Told about each step as it ends, for logs and metrics. */
  onStep(address: string, step: string, ms: number, info?: Record<string, unknown>): void;
}

export interface MigrationReport {
  address: string;
  outcome: 'moved' | 'lost-work' | 'not-needed' | 'finished' | 'no-target' | 'destroyed';
  from?: string;
  to?: string;
  downtimeMs?: number;
  timings: Record<string, number>;
  error?: string;
}

/** The workloads of the fleet running on the noticed node: the state's records and what was seen there. */
export function workloadsOnNode(records: readonly WorkloadRecord[], instances: readonly WorkloadInstance[], fleet: string, provider: string, node: string): string[] {
  const names = new Set<string>();
  for (const r of records) if (r.provider === provider && r.node === node && r.instanceId !== undefined) names.add(r.name);
  for (const w of instances) if (w.fleet === fleet && w.provider === provider && w.node === node && w.state === 'running') names.add(w.workload);
  return [...names].sort();
}

/**
 * Moves one workload off a noticed node. Returns what happened; throws only on a failed step (the
 * reconcile then retries from what the state and the providers say).
 */
export async function migrateWorkload(ctx: EmergencyContext, workload: string, notice: Notice): Promise<MigrationReport> {
  const address = workloadAddress(workload);
  const lock = await ctx.locks.acquire(address);
  try {
    const state = await ctx.recorder.refresh();
    const rec = state.resources[address];
    const timings: Record<string, number> = {};
    if (state.fleetMode?.mode === 'destroyed') return { address, outcome: 'destroyed', timings };
    if (rec?.type !== 'workload' || rec.provider !== notice.provider || rec.node !== notice.node || rec.instanceId === undefined) {
      return { address, outcome: 'not-needed', timings };
    }
    // A move an earlier run recorded (it may have stopped the source already) is the reconcile's to
    // finish from its record; the notice can arrive before the first reconcile has looked.
    if (rec.move) return { address, outcome: 'not-needed', timings };
    // The target: the planner's own decision for this workload alone, with the notice in view.
    let observed = withRunning(ctx.observed(), rec, ctx.session.fleet.name);
    const known = observed.nodes.find((n) => n.provider === rec.provider && n.id === rec.node);
    if (!known || known.meta?.fromState === true) {
      // A node newer than the last observation, or known only from the state's records (a watch
      // that hears the notice before its first reconcile): ask its provider, so it is not taken for
      // dead and its own facts (its checkpoint folder) are there for the steps.
      const listed = (await ctx.session.providers.get(notice.provider)?.nodes?.list()) ?? [];
      const fresh = new Set(listed.map((n) => n.id));
      observed = { ...observed, nodes: [...observed.nodes.filter((n) => !(n.provider === notice.provider && n.meta?.fromState === true && fresh.has(n.id))), ...listed.map((n) => ({ ...n, provider: notice.provider }))] };
    }
    const prep = rec.prepared;
    if (prep?.node !== undefined && !observed.nodes.some((n) => n.provider === prep.provider && n.id === prep.node)) {
      // A target prepared for an early warning since the last observation: its node and lease.
      const p = ctx.session.providers.get(prep.provider);
      const [nodes, leases] = await Promise.all([p?.nodes?.list() ?? [], p?.capacity?.leases() ?? []]);
      const seen = new Set(observed.leases.map((l) => providerKey(l.provider, l.id)));
      observed = {
        ...observed,
        nodes: [...observed.nodes.filter((n) => n.provider !== prep.provider), ...nodes.map((n) => ({ ...n, provider: prep.provider }))],
        leases: [...observed.leases, ...leases.filter((l) => !seen.has(providerKey(prep.provider, l.id))).map((l) => ({ ...l, provider: prep.provider }))],
      };
    }
    const plan = planFleet(ctx.session.fleet, observed, state, {
      now: ctx.now(),
      targets: [address],
      marketProviders: ctx.session.marketProviders,
      runtimeProviders: ctx.session.runtimeProviders,
      bidProviders: ctx.session.bidProviders,
      ...(ctx.session.policies !== undefined ? { policies: ctx.session.policies } : {}),
      ...(observed.zoneStats ? { zoneStats: observed.zoneStats as Record<string, ZoneStats> } : {}),
    });
    const mine = plan.actions;
    const checkpoint = mine.find((a): a is CheckpointAction => a.kind === 'checkpoint' && a.address === address);
    const stop = mine.find((a): a is StopAction => a.kind === 'stop' && a.address === address && !a.duplicate);
    const start = mine.find((a): a is StartAction => a.kind === 'start' && a.address === address);
    const acquire = mine.find((a): a is AcquireAction => a.kind === 'acquire' && a.forWorkload === workload);
    const transfer = mine.find((a): a is TransferAction => a.kind === 'transfer' && a.address === address);
    if (!stop || !start) {
      // No capacity the fallback rule allows: the checkpoint signal went out; the reconcile keeps trying.
      return { address, outcome: 'no-target', timings, error: plan.changes.find((c) => c.address === address)?.reasons.at(-1)?.text ?? 'no target' };
    }
    const steps = new StepContext({ fleet: ctx.session.fleet, providers: ctx.session.providers, recorder: ctx.recorder, observed, now: () => ctx.now(), emit: (e) => ctx.emit(e), mode: 'apply' });
    const timed = async <T>(step: string, fn: () => Promise<T>, info?: (out: T) => Record<string, unknown>): Promise<T> => {
      const t = ctx.now();
      const out = await fn();
      timings[step] = ctx.now() - t;
      ctx.onStep(address, step, timings[step], info ? info(out) : typeof out === 'object' && out !== null ? (out as Record<string, unknown>) : undefined);
      return out;
    };

    // 1. signal (usually already sent by the notice's fast path) and, in parallel, the target capacity.
    const signalAt = checkpoint ? await signalStep(steps, checkpoint, ctx.signalled.get(providerKey(checkpoint.provider, checkpoint.instanceId))) : ctx.now();
    if (checkpoint) ctx.signalled.set(providerKey(checkpoint.provider, checkpoint.instanceId), signalAt);
    const [, ck] = await Promise.all([
      acquire ? timed('acquire', () => acquireStep(steps, acquire)) : Promise.resolve(undefined),
      // 2. a checkpoint newer than the signal, bounded by the deadline minus the stop grace.
      checkpoint
        ? timed('checkpoint', () => awaitCheckpointStep(steps, checkpoint, signalAt, rec.since), (o) => (o.verified ? { verifiedMs: ctx.now() - signalAt } : { verified: false, ...(o.lostWorkMs !== undefined ? { lostWorkMs: o.lostWorkMs } : {}), ...(o.exited ? { exited: true } : {}) }))
        : Promise.resolve<CheckpointOutcome | undefined>(undefined),
    ]);
    if (ck?.exited?.code === 0) {
      // It finished while we waited: a job that succeeded is not moved (the reconcile records it).
      return { address, outcome: 'finished', timings };
    }
    // 3. record the move, then stop with the grace period.
    const stopAt = ctx.now();
    await beginMoveStep(steps, stop, steps.baton.get(workload), signalAt);
    await timed('stop', () => stopStep(steps, stop));
    // 4. transfer the verified checkpoint (the source copy stays until the target copy verifies).
    if (transfer) await timed('transfer', () => transferStep(steps, transfer, steps.baton.get(workload)));
    // 5. start on the target, resuming from it.
    const t5 = ctx.now();
    const started = await startStep(steps, start, steps.baton.get(workload), { timings: { ...timings }, stopStartedAt: stopAt, startedAt: t5 });
    timings.start = ctx.now() - t5;
    ctx.onStep(address, 'start', timings.start, started);
    const lost = steps.lostWork.get(workload);
    return { address, outcome: lost !== undefined && lost > 0 ? 'lost-work' : 'moved', from: notice.node, to: String(started.node ?? ''), downtimeMs: ctx.now() - stopAt, timings };
  } catch (e) {
    return Promise.reject(Object.assign(new Error(`emergency migration of ${address} failed: ${errorMessage(e)}`), { cause: e }));
  } finally {
    lock.release();
  }
}

/**
 * The planner needs the workload's instance among the running ones; the last observation may be
 * older than its start (apply started it since), so the state's record stands in for it.
 */
export function withRunning(obs: Observed, rec: WorkloadRecord, fleet: string): Observed {
  if (obs.workloads.some((w) => w.id === rec.instanceId && w.state === 'running')) return obs;
  const inst: WorkloadInstance = {
    id: rec.instanceId as string,
    provider: rec.provider as string,
    node: rec.node as string,
    fleet,
    workload: rec.name,
    state: 'running',
    startedAt: new Date(rec.since ?? Date.now()).toISOString(),
    gpus: rec.gpus,
    labels: { 'spotfleet.fleet': fleet, 'spotfleet.workload': rec.name },
    ...(rec.specHash ? { specHash: rec.specHash } : {}),
  };
  return { ...obs, workloads: [...obs.workloads.filter((w) => !(w.workload === rec.name && w.fleet === fleet)), inst] };
}
