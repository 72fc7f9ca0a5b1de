// The effectful steps of a reconcile, one function each: acquire a lease, signal and wait for a
// verified checkpoint, record a move, stop, transfer, start, release, adopt, record a lifecycle
// transition. apply's DAG walk and watch's emergency migration both call these; each hands the
// checkpoint it verified to the next, so a move verifies it once instead of at every step.
// Before each side effect a pending record goes into the state (with the step's preconditions
// checked in the same compare-and-swap write); after it, the result.
import { setTimeout as sleep } from 'node:timers/promises';
import { ProviderError, SpotfleetError, StateConflictError, errorMessage, isSignalNotReady } from '../core/errors.js';
import { nodeAddress, nodeKey, providerKey, workloadAddress } from '../core/address.js';
import { onDemandPricePerGpuHour } from '../core/on-demand.js';
import type { CheckpointInfo, Lease, NodeInfo, Observed, WorkloadInstance } from '../core/types.js';
import type { Provider, StorageCapability, TransferProgress, VerifyRequest } from '../providers/sdk.js';
import { DEFAULT_CHECKPOINT_KEEP } from '../spec/resolve.js';
import type { CheckpointContract, Fleet, WorkloadSpec } from '../spec/types.js';
import type { StateStore } from '../state/store.js';
import type { ExitRecord, InstanceRef, LeaseRecord, LedgerEntry, MoveInFlight, StateFile, WorkloadRecord } from '../state/types.js';
import { ARCHIVE_PROVIDER } from './archive.js';
import { isTerminal } from './lifecycle.js';
import type { ProgressEvent } from './progress.js';
import type { AcquireAction, AdoptAction, CheckpointAction, PlacementRef, RecordAction, ReleaseAction, RemoveAction, StartAction, StopAction, TransferAction } from './types.js';

/** What a step reports for progress lines and logs. */
export type StepInfo = Record<string, string | number | boolean>;

export type StepEvent = { type: 'warning'; address: string; message: string; kind?: 'work-lost' | 'checkpoint' } | ProgressEvent;

// Test hook for the crash-safety suite: SPOTFLEET_TEST_CRASH_AT=N kills this process with SIGKILL
// at the Nth boundary between a side effect and its record (after each state write and after each
// provider effect returns); SPOTFLEET_TEST_CRASH_AFTER=ACTION at the first effect of that step
// (`transfer`: the copy done, its pending record not cleared), wherever the count has got to by
// then. Never set outside tests.
const crashAt = Number(process.env.SPOTFLEET_TEST_CRASH_AT ?? '0');
const crashAfter = process.env.SPOTFLEET_TEST_CRASH_AFTER;
let crashCount = 0;
export function crashPoint(action?: string): void {
  if ((crashAt > 0 && ++crashCount === crashAt) || (crashAfter !== undefined && action === crashAfter)) process.kill(process.pid, 'SIGKILL');
}


/**
 * Every state write of a process goes through one recorder: writes are serialised in the process
 * (so they never race each other) and each is a compare-and-swap transaction on the newest state,
 * so a write from another process (destroy while watch runs) is never lost.
 */
export class StateRecorder {
  private chain: Promise<unknown> = Promise.resolve();
  constructor(
    private readonly store: StateStore,
    public latest: StateFile,
  ) {}

  update(fn: (s: StateFile) => void): Promise<StateFile> {
    const run = async (): Promise<StateFile> => {
      this.latest = await this.store.update(fn);
      crashPoint();
      return this.latest;
    };
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => undefined);
    return p;
  }

  /** Re-reads the state (another process may have written). */
  async refresh(): Promise<StateFile> {
    const run = async (): Promise<StateFile> => (this.latest = await this.store.read());
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => undefined);
    return p;
  }
}

export interface StepOptions {
  fleet: Fleet;
  providers: ReadonlyMap<string, Provider>;
  recorder: StateRecorder;
  observed: Observed;
  now: () => number;
  emit: (e: StepEvent) => void;
  /** How often to look for a verified checkpoint; default 200 ms. */
  pollMs?: number;
  /** How long to wait for an acquired lease to become a node; default 120 s. */
  leaseReadyMs?: number;
  /**
   * What the run may do: `apply` starts workloads only while the fleet is active (a destroy that
   * lands meanwhile wins); `destroy` only stops and releases.
   */
  mode: 'apply' | 'destroy';
}

function firstByKey<T extends { provider: string; id: string }>(items: readonly T[]): Map<string, T> {
  const m = new Map<string, T>();
  for (const x of items) if (!m.has(providerKey(x.provider, x.id))) m.set(providerKey(x.provider, x.id), x);
  return m;
}

/** The per-run context the steps share: node facts, acquired leases, the checkpoint baton. */
export class StepContext {
  readonly nodeCache: Map<string, NodeInfo>;
  readonly leases = new Map<string, Lease>();
  /** The newest verified checkpoint per workload, handed from step to step. */
  readonly baton = new Map<string, CheckpointInfo>();
  /**
   * Workloads whose baton was verified after their source instance stopped: nothing can write a
   * newer checkpoint there any more, so the transfer may take it without looking again. A baton
   * from before the stop (the checkpoint the signal asked for) may be older than the one the
   * workload wrote on SIGTERM, or than the ones it kept writing while a new leader took over.
   */
  readonly settled = new Set<string>();
  /** Work lost per workload when no checkpoint newer than the signal verified in time. */
  readonly lostWork = new Map<string, number>();
  /** Workloads whose checkpoint signal was not sent (no handler for it): why, per workload. */
  readonly unsignalled = new Map<string, string>();
  constructor(readonly o: StepOptions) {
    this.nodeCache = new Map(o.observed.nodes.map((n) => [nodeKey(n.provider, n.id), n]));
  }

  provider(name: string): Provider {
    const p = this.o.providers.get(name);
    if (!p) throw new SpotfleetError('PROVIDER_MISSING', `provider "${name}" is not configured in this fleet`);
    return p;
  }

  private specs: Map<string, WorkloadSpec> | undefined;
  private leasesByKey: Map<string, Lease> | undefined;
  private instancesByKey: Map<string, WorkloadInstance> | undefined;

  /** An observed lease by provider and id (adopting thousands stays linear). */
  observedLease(provider: string, id: string): Lease | undefined {
    this.leasesByKey ??= firstByKey(this.o.observed.leases);
    return this.leasesByKey.get(providerKey(provider, id));
  }

  /** An observed instance by provider and id. */
  observedInstance(provider: string, id: string): WorkloadInstance | undefined {
    this.instancesByKey ??= firstByKey(this.o.observed.workloads);
    return this.instancesByKey.get(providerKey(provider, id));
  }

  spec(workload: string): WorkloadSpec | undefined {
    this.specs ??= new Map(this.o.fleet.workloads.map((w) => [w.name, w]));
    return this.specs.get(workload);
  }

  contract(workload: string): CheckpointContract | undefined {
    return this.spec(workload)?.checkpoint ?? this.o.fleet.defaults.checkpoint;
  }

  async findNode(providerName: string, id: string, fresh = false): Promise<NodeInfo> {
    const k = nodeKey(providerName, id);
    if (!fresh && this.nodeCache.has(k)) return this.nodeCache.get(k) as NodeInfo;
    const p = this.provider(providerName);
    const list = p.nodes ? await p.nodes.list() : [];
    for (const n of list) this.nodeCache.set(nodeKey(providerName, n.id), { ...n, provider: providerName });
    const n = this.nodeCache.get(k);
    if (!n) throw new ProviderError(providerName, `node ${id} not found`, { address: nodeAddress(providerName, id) });
    return n;
  }

  async targetNode(t: PlacementRef): Promise<NodeInfo> {
    if (t.node) return this.findNode(t.provider, t.node);
    const lease = t.leaseAction ? this.leases.get(t.leaseAction) : undefined;
    if (!lease?.node) throw new SpotfleetError('LEASE_NOT_READY', `the lease for ${t.pool ?? '?'} has no node`);
    return this.findNode(lease.provider, lease.node, !this.nodeCache.has(nodeKey(lease.provider, lease.node)));
  }

  /** Writes a pending record (checking `pre` in the same write), runs the effect, clears the record. */
  async withPending<T>(id: string, address: string, action: string, data: StepInfo, fn: () => Promise<T>, pre?: (s: StateFile) => void): Promise<T> {
    await this.o.recorder.update((s) => {
      pre?.(s);
      s.pending.push({ id, address, action, startedAt: this.o.now(), pid: process.pid, data });
    });
    const out = await fn();
    crashPoint(action);
    await this.o.recorder.update((s) => {
      s.pending = s.pending.filter((p) => p.id !== id);
    });
    return out;
  }

  /**
   * A verify request as the workload's checkpoint contract asks: its marker and minimum size, its
   * own `verify` command and `keep`, and never a checkpoint a resume has failed on.
   */
  verifyRequest(workload: string, node: NodeInfo, extra: Partial<VerifyRequest> = {}): VerifyRequest {
    const c = this.contract(workload);
    const rec = this.o.recorder.latest.resources[workloadAddress(workload)];
    const bad = rec?.type === 'workload' ? rec.badCheckpoints ?? [] : [];
    const exclude = [...new Set([...bad, ...(extra.exclude ?? [])])];
    return {
      node,
      workload,
      ...(c?.marker ? { marker: c.marker } : {}),
      ...(c?.minSizeBytes ? { minSizeBytes: c.minSizeBytes } : {}),
      ...(c?.verify ? { command: c.verify } : {}),
      ...(c ? { keep: c.keep ?? DEFAULT_CHECKPOINT_KEEP } : {}),
      ...extra,
      ...(exclude.length > 0 ? { exclude } : {}),
    };
  }

  /** Verifies, and never returns an excluded checkpoint (an SDK 1.0 storage ignores `exclude`). */
  async verify(storage: StorageCapability, req: VerifyRequest): Promise<CheckpointInfo | null> {
    const ck = await storage.verify(req);
    return ck && req.exclude?.includes(ck.path) ? null : ck;
  }

  recordCheckpoint(workload: string, ck: CheckpointInfo): Promise<StateFile> {
    this.baton.set(workload, ck);
    return this.o.recorder.update((s) => {
      const r = s.resources[workloadAddress(workload)];
      if (r?.type === 'workload') r.lastCheckpoint = ck;
    });
  }

  /**
   * The ledger's counterfactual: the on-demand price per GPU-hour of a model as refresh saw it
   * (src/core/on-demand.ts), 0 when there is no basis (a segment then counts the price paid).
   */
  onDemandPrice(gpuModel: string | undefined): number {
    return onDemandPricePerGpuHour(this.o.observed, gpuModel) ?? 0;
  }
}

/** A start may only land while the fleet is active: a destroy recorded meanwhile wins. */
function assertActive(s: StateFile, what: string): void {
  if (s.fleetMode?.mode === 'destroyed') throw new StateConflictError(`the fleet was destroyed while this run was under way: ${what} is not done`);
}

function emptyRecord(address: string, name: string, gpus: number): WorkloadRecord {
  return { type: 'workload', address, name, phase: 'pending', gpus, doneMs: 0, generation: 0, failures: 0, recoveries: 0, preemptions: [], moves: [] };
}

function ledgerEntry(r: WorkloadRecord, from: number, to: number, od: number): LedgerEntry {
  const e: LedgerEntry = { workload: r.name, capacity: r.capacity ?? 'on-demand', from, to, gpus: r.gpus, pricePerGpuHour: r.pricePerGpuHour ?? 0, onDemandPricePerGpuHour: od || (r.pricePerGpuHour ?? 0) };
  if (r.pool !== undefined) e.pool = r.pool;
  if (r.node !== undefined) e.node = r.node;
  return e;
}

/** Closes the record's current run at `at`: its ledger segment, the work it did, its instance. */
function closeRun(s: StateFile, r: WorkloadRecord, at: number, od: number): void {
  if (r.since !== undefined) {
    const to = Math.max(r.since, at);
    s.ledger.push(ledgerEntry(r, r.since, to, r.onDemandPricePerGpuHour ?? od));
    r.doneMs += to - r.since;
  }
  const last = r.instances?.at(-1);
  if (last && last.id === r.instanceId && last.endedAt === undefined) last.endedAt = at;
  delete r.since;
  delete r.instanceId;
}

// ---- acquire --------------------------------------------------------------------------------

/** Buys the lease and waits until it is a node; a lease that never becomes one is released. */
export async function acquireStep(ctx: StepContext, a: AcquireAction): Promise<StepInfo> {
  const p = ctx.provider(a.provider);
  if (!p.capacity) throw new ProviderError(a.provider, 'has no capacity capability', { address: a.address });
  const cap = p.capacity;
  const lease = await ctx.withPending(
    a.id,
    a.address,
    'acquire',
    { idempotencyKey: a.request.idempotencyKey, pool: a.request.pool },
    async () => {
      let l = await cap.acquire({ ...a.request, labels: { 'spotfleet.fleet': ctx.o.fleet.name, 'spotfleet.workload': a.forWorkload } });
      const deadline = ctx.o.now() + (ctx.o.leaseReadyMs ?? 120_000);
      // A lease the provider listed and then stops listing has ended (a cloud that ends a machine at
      // launch may list it no more). One it never listed yet may only be slow to show (EC2's
      // listing is eventually consistent), so that waits for the deadline.
      let seen = false;
      let missing = 0;
      while (!l.node && ctx.o.now() < deadline && l.state !== 'terminated' && l.state !== 'released' && missing < 3) {
        await sleep(500);
        const now = (await cap.leases()).find((x) => x.id === l.id);
        if (now) {
          l = now;
          seen = true;
          missing = 0;
        } else if (seen) missing++;
      }
      if (!l.node) {
        // Never pay for capacity that cannot run anything: give it back before failing.
        const ended = l.state === 'terminated' || l.state === 'released';
        const why =
          missing >= 3
            ? `ended before it was ready: ${a.provider} no longer lists it`
            : ended
              ? `ended before it was ready${(l as { error?: string }).error ? `: ${(l as { error?: string }).error}` : ''}`
              : `did not become a node within ${Math.round((ctx.o.leaseReadyMs ?? 120_000) / 1000)}s`;
        await cap.release(l.id).catch(() => undefined);
        throw new ProviderError(a.provider, `lease ${l.id} ${why}; it was released`, { address: a.address });
      }
      const rec: LeaseRecord = {
        type: 'lease',
        // The address the plan showed for it: stable from plan to state.
        address: a.address,
        provider: a.provider,
        pool: a.request.pool,
        leaseId: l.id,
        node: l.node,
        capacity: l.capacity,
        gpus: l.gpus,
        pricePerHour: l.pricePerHour,
        acquiredAt: Date.parse(l.acquiredAt) || ctx.o.now(),
        idempotencyKey: a.request.idempotencyKey,
        ...(l.zone !== undefined ? { zone: l.zone } : {}),
      };
      // The lease is recorded before the pending record is cleared: a crash in between leaves both.
      await ctx.o.recorder.update((s) => {
        s.resources[rec.address] = rec;
      });
      return { ...l, provider: a.provider };
    },
    ctx.o.mode === 'apply' ? (s) => assertActive(s, `acquiring ${a.address}`) : undefined,
  );
  ctx.leases.set(a.id, lease);
  return { lease: lease.id, node: lease.node ?? '' };
}

// ---- checkpoint -----------------------------------------------------------------------------

export interface CheckpointOutcome {
  /** The checkpoint to resume from: newer than the signal when verified, else the newest there is. */
  checkpoint?: CheckpointInfo;
  /** A checkpoint newer than the signal verified in time. */
  verified: boolean;
  /** The instance stopped running while we waited (it exited on the signal, or crashed). */
  exited?: { code?: number };
  /** Work that will be redone, ms, when no checkpoint newer than the signal verified. */
  lostWorkMs?: number;
  signalAt: number;
}

/** How long a recorded checkpoint signal stands for the checkpoint it asked for (as watch's fast path). */
const SIGNAL_VALID_MS = 600_000;

/** Sends the checkpoint signal (unless already sent at `signalledAt`) and records it as pending. */
export async function signalStep(ctx: StepContext, a: CheckpointAction, signalledAt: number | undefined): Promise<number> {
  const contract = ctx.contract(a.workload);
  const p = ctx.provider(a.provider);
  if (!contract || !p.runtime) return ctx.o.now();
  if (signalledAt !== undefined) return signalledAt;
  // A signal this instance already got (recorded by a watch that died or was deposed since) is not sent again.
  const rec = ctx.o.recorder.latest.resources[a.address];
  if (rec?.type === 'workload' && rec.checkpointSignal?.instanceId === a.instanceId && ctx.o.now() - rec.checkpointSignal.at < SIGNAL_VALID_MS) return rec.checkpointSignal.at;
  const at = ctx.o.now();
  const rt = p.runtime;
  try {
    // The signal is recorded with its pending record, before it goes out: a watch that takes over
    // after a crash here waits for the checkpoint it asked for rather than asking twice.
    await ctx.withPending(a.id, a.address, 'checkpoint', { node: a.node, instance: a.instanceId }, () => rt.signal(a.node, a.instanceId, contract.signal), (s) => {
      const r = s.resources[a.address];
      if (r?.type === 'workload' && r.instanceId === a.instanceId) r.checkpointSignal = { instanceId: a.instanceId, at };
    });
  } catch (e) {
    // A workload that never installed a handler for the signal cannot checkpoint on it; waiting
    // for a checkpoint that nobody asked for would only hold the move or destroy back.
    if (!isSignalNotReady(e)) throw e;
    await ctx.o.recorder.update((s) => {
      s.pending = s.pending.filter((x) => x.id !== a.id);
      // Nothing went out: no later watch may wait on a checkpoint this signal never asked for.
      const r = s.resources[a.address];
      if (r?.type === 'workload' && r.checkpointSignal?.instanceId === a.instanceId && r.checkpointSignal.at === at) delete r.checkpointSignal;
    });
    ctx.unsignalled.set(a.workload, `it has no handler for ${contract.signal}, so no checkpoint was asked for`);
  }
  return at;
}

/** Is the instance still running? Unknown (an error) counts as running: the wait goes on. */
async function stillRunning(p: Provider, node: string, instanceId: string): Promise<WorkloadInstance | 'running' | undefined> {
  try {
    const inst = p.runtime?.inspect ? await p.runtime.inspect(node, instanceId) : (await p.runtime?.list())?.find((i) => i.id === instanceId && i.node === node);
    return inst?.state === 'running' ? 'running' : inst;
  } catch {
    return 'running';
  }
}

/**
 * Waits for a checkpoint newer than the signal, until `waitMs` after it, or until the instance
 * stops running (then there is nothing more to wait for). Falls back to the newest verified one
 * and says how much work that loses.
 */
export async function awaitCheckpointStep(ctx: StepContext, a: CheckpointAction, signalAt: number, startedAt: number | undefined): Promise<CheckpointOutcome> {
  const contract = ctx.contract(a.workload);
  const p = ctx.provider(a.provider);
  if (!contract || !p.storage) return { verified: false, signalAt };
  const node = await ctx.findNode(a.provider, a.node);
  const since = new Date(signalAt - 1).toISOString();
  const deadline = signalAt + a.waitMs;
  const verifyReq = ctx.verifyRequest(a.workload, node);
  const storage = p.storage;
  let exited: CheckpointOutcome['exited'];
  const unsignalled = ctx.unsignalled.get(a.workload);
  // A checkpoint is often written within a few tens of ms of its signal: look again soon at first,
  // then every pollMs (a verify over SSH is one round trip on the kept connection).
  const pollMs = ctx.o.pollMs ?? 200;
  let wait = Math.min(25, pollMs);
  for (let i = 0; !unsignalled; i++) {
    const ck = await ctx.verify(storage, { ...verifyReq, since });
    if (ck) {
      await ctx.recordCheckpoint(a.workload, ck);
      return { checkpoint: ck, verified: true, signalAt };
    }
    if (exited || ctx.o.now() >= deadline) break;
    // Every few polls: is it still running? A workload that exited writes no checkpoint any more.
    if (i % 3 === 2 && p.runtime) {
      const st = await stillRunning(p, a.node, a.instanceId);
      if (st !== 'running') exited = st?.exitCode !== undefined ? { code: st.exitCode } : {};
      if (exited) continue; // one last look for a checkpoint it wrote on its way out
    }
    await sleep(wait);
    wait = Math.min(pollMs, wait * 2);
  }
  const newest = await ctx.verify(storage, verifyReq);
  // Lost work: from the newest checkpoint (or the start of this run when there is none) to the signal.
  const from = newest ? Date.parse(newest.mtime) : startedAt;
  const lost = from !== undefined ? Math.max(0, signalAt - from) : undefined;
  const why = unsignalled ?? (exited ? `it exited${exited.code !== undefined ? ` with code ${exited.code}` : ''} without a checkpoint newer than the signal` : `no checkpoint verified within ${Math.round(a.waitMs / 1000)}s of the signal`);
  const verb = ctx.o.mode === 'destroy' || !ctx.spec(a.workload) ? 'the next run resumes' : 'it resumes';
  ctx.o.emit({
    type: 'warning',
    address: a.address,
    kind: 'work-lost',
    message: newest
      ? `${why}; ${verb} from the newest verified one (${newest.mtime})${lost !== undefined ? `, losing about ${Math.round(lost / 1000)}s of work` : ''}`
      : `${why} and none exists; ${ctx.o.mode === 'destroy' || !ctx.spec(a.workload) ? 'a later run starts' : 'it restarts'} from the beginning${lost !== undefined ? `, losing about ${Math.round(lost / 1000)}s of work` : ''}`,
  });
  if (newest) await ctx.recordCheckpoint(a.workload, newest);
  if (lost !== undefined) ctx.lostWork.set(a.workload, lost);
  return { ...(newest ? { checkpoint: newest } : {}), verified: false, ...(exited ? { exited } : {}), ...(lost !== undefined ? { lostWorkMs: lost } : {}), signalAt };
}

// ---- moves ----------------------------------------------------------------------------------

/**
 * Records the move in flight before the source is stopped: from, to, why, the fallback rule and
 * the checkpoint it resumes from. A crash after this is finished by the next apply or watch.
 */
export function beginMoveStep(ctx: StepContext, a: StopAction, checkpoint: CheckpointInfo | undefined, startedAt: number): Promise<StateFile> {
  const m = a.move as NonNullable<StopAction['move']>;
  return ctx.o.recorder.update((s) => {
    const r = s.resources[a.address];
    if (r?.type !== 'workload' || (r.instanceId !== undefined && r.instanceId !== a.instanceId)) return;
    const move: MoveInFlight = { ...m, startedAt, step: checkpoint ? 'checkpointed' : 'decided' };
    if (checkpoint) move.checkpoint = checkpoint;
    r.move = move;
    r.phase = 'migrating';
  });
}

// ---- stop -----------------------------------------------------------------------------------

/** Stops an instance and records what that means for the workload (moving, parked, cancelled, removed). */
export async function stopStep(ctx: StepContext, a: StopAction): Promise<StepInfo> {
  const p = ctx.provider(a.provider);
  if (!p.runtime) throw new ProviderError(a.provider, 'has no runtime capability', { address: a.address });
  const rt = p.runtime;
  const res = await ctx.withPending(a.id, a.address, 'stop', { node: a.node, instance: a.instanceId }, () => rt.stop(a.node, a.instanceId, a.graceMs));
  if (a.duplicate) return { duplicate: true };
  // The workload saves on SIGTERM too: the newest checkpoint now is the one to resume from.
  const node = ctx.nodeCache.get(nodeKey(a.provider, a.node));
  let ck: CheckpointInfo | null = null;
  if (p.storage && node && node.state !== 'terminated') {
    try {
      ck = await ctx.verify(p.storage, ctx.verifyRequest(a.workload, node));
    } catch {
      // The node may be going away; the transfer looks again (or falls back to what was recorded).
    }
  }
  if (ck) {
    ctx.baton.set(a.workload, ck);
    ctx.settled.add(a.workload);
  }
  const at = ctx.o.now();
  const od = ctx.onDemandPrice(node?.gpuModel);
  await ctx.o.recorder.update((s) => {
    const r = s.resources[a.address];
    if (r?.type !== 'workload' || (r.instanceId !== undefined && r.instanceId !== a.instanceId)) return;
    closeRun(s, r, at, od);
    if (ck) r.lastCheckpoint = ck;
    if (a.removing) {
      delete s.resources[a.address];
      return;
    }
    if (a.cancel) {
      r.phase = 'cancelled';
      r.finishedAt = at;
      delete r.move;
      delete r.pendingReason;
    } else if (r.move) {
      r.move.step = 'stopped';
      if (ck) r.move.checkpoint = ck;
    } else {
      r.phase = 'pending';
      r.pendingReason = { code: 'waiting-for-spot', message: 'stopped to wait for capacity (its checkpoint is kept)', since: at };
    }
  });
  return res.exitCode !== undefined ? { exitCode: res.exitCode } : {};
}

// ---- transfer -------------------------------------------------------------------------------

/** Copies the workload's checkpoint to the target; `checkpoint` (the baton) saves a second verify. */
export async function transferStep(ctx: StepContext, a: TransferAction, checkpoint: CheckpointInfo | undefined): Promise<StepInfo> {
  const from = await ctx.findNode(a.from.provider, a.from.node);
  const to = await ctx.targetNode(a.to);
  // The controller's archive has no provider of its own: the other side's storage moves it.
  const src = a.from.provider === ARCHIVE_PROVIDER ? undefined : ctx.provider(a.from.provider);
  const dst = to.provider === ARCHIVE_PROVIDER ? undefined : ctx.provider(to.provider);
  const storage = src?.storage && (from.provider === to.provider || src.storage.canTransfer?.(from, to)) ? src.storage : dst?.storage?.canTransfer?.(from, to) ? dst.storage : undefined;
  if (!storage) throw new ProviderError(src ? a.from.provider : to.provider, `cannot move checkpoints from ${from.id} to ${to.id} (${to.provider})`, { address: a.address });
  const reader = src?.storage ?? storage;
  // Only a checkpoint verified after the source stopped is surely its newest; any other is looked up again.
  const baton = checkpoint && checkpoint.node === from.id ? checkpoint : null;
  let ck: CheckpointInfo | null = baton && ctx.settled.has(a.workload) ? baton : null;
  if (!ck) {
    try {
      ck = (await ctx.verify(reader, ctx.verifyRequest(a.workload, from))) ?? baton;
    } catch (e) {
      // A dead node whose storage cannot be read any more must not block the restart for ever.
      if (from.state !== 'terminated') throw e;
      ctx.o.emit({ type: 'warning', address: a.address, message: `the checkpoint on ${from.id} cannot be read (the node is gone: ${errorMessage(e)}); it starts from whatever checkpoint ${to.id} has` });
      return { transferred: false };
    }
  }
  if (!ck) {
    ctx.o.emit({ type: 'warning', address: a.address, message: `no checkpoint of ${a.workload} on ${from.id}; it starts from the beginning on ${to.id}` });
    return { transferred: false };
  }
  const verified = ck;
  const onProgress = (p: TransferProgress): void => {
    try {
      ctx.o.emit({ type: 'progress', action: { id: a.id, address: a.address, kind: 'transfer' }, ...p });
    } catch {
      // progress lines never fail a transfer
    }
  };
  const res = await ctx.withPending(a.id, a.address, 'transfer', { from: from.id, to: to.id }, () => storage.transfer({ workload: a.workload, from, to, checkpoint: verified, onProgress }));
  ctx.baton.set(a.workload, res.checkpoint);
  ctx.settled.add(a.workload);
  await ctx.o.recorder.update((s) => {
    const r = s.resources[a.address];
    if (r?.type !== 'workload') return;
    r.lastCheckpoint = res.checkpoint;
    if (r.move && r.move.step === 'stopped') {
      r.move.step = 'transferred';
      r.move.checkpoint = res.checkpoint;
    }
  });
  return { bytes: res.bytes, skipped: res.skipped, transferMs: res.durationMs, ...(res.sentBytes !== undefined ? { sentBytes: res.sentBytes } : {}) };
}

// ---- start ----------------------------------------------------------------------------------

export interface StartTimings {
  /** Step timings of this move (checkpoint, acquire, stop, transfer), ms. */
  timings: Record<string, number>;
  /** When the source stopped making progress (the stop began), for the downtime. */
  stopStartedAt?: number;
  /** When this start step began. */
  startedAt: number;
}

/** Starts the workload on its target, resuming from `checkpoint` (the baton) or the newest there. */
export async function startStep(ctx: StepContext, a: StartAction, checkpoint: CheckpointInfo | undefined, t: StartTimings): Promise<StepInfo> {
  const spec = ctx.spec(a.workload);
  if (!spec) throw new SpotfleetError('SPEC_CHANGED', `${a.address} is no longer in the spec`);
  const node = await ctx.targetNode(a.target);
  const p = ctx.provider(node.provider);
  if (!p.runtime) throw new ProviderError(node.provider, 'has no runtime capability', { address: a.address });
  const rt = p.runtime;
  let resumeFrom: CheckpointInfo | undefined;
  if (a.resume && spec.checkpoint) {
    // The baton only when nothing can have written a newer one since (see `settled`).
    if (checkpoint && checkpoint.node === node.id && ctx.settled.has(a.workload) && !a.excludeCheckpoints?.includes(checkpoint.path)) resumeFrom = checkpoint;
    else if (p.storage) {
      const ck = await ctx.verify(p.storage, ctx.verifyRequest(a.workload, node, a.excludeCheckpoints?.length ? { exclude: a.excludeCheckpoints } : {}));
      if (ck && !a.excludeCheckpoints?.includes(ck.path)) resumeFrom = ck;
    }
  }
  const labels: Record<string, string> = {
    ...spec.labels,
    'spotfleet.fleet': ctx.o.fleet.name,
    'spotfleet.workload': a.workload,
    'spotfleet.spec-hash': spec.specHash,
    'spotfleet.generation': String(a.generation),
  };
  if (a.migratedFrom) labels['spotfleet.migrated-from'] = a.migratedFrom;
  if (a.originalType) labels['spotfleet.original-type'] = a.originalType;
  const pre = (s: StateFile): void => {
    if (ctx.o.mode === 'apply') assertActive(s, `starting ${a.address}`);
    const r = s.resources[a.address];
    // Someone else (watch, another apply) already started this or a later generation: re-plan.
    if (r?.type === 'workload' && r.generation >= a.generation && r.instanceId !== undefined) throw new StateConflictError(`${a.address} was started elsewhere meanwhile (generation ${r.generation})`);
  };
  const inst = await ctx.withPending(
    a.id,
    a.address,
    'start',
    { idempotencyKey: a.idempotencyKey, node: node.id },
    async () => {
      const i = await rt.start({
        fleet: ctx.o.fleet.name,
        workload: a.workload,
        node: node.id,
        ...(spec.image !== undefined ? { image: spec.image } : {}),
        ...(spec.command !== undefined ? { command: spec.command } : {}),
        env: spec.env,
        ...(spec.passEnv && spec.passEnv.length > 0 ? { passEnv: spec.passEnv } : {}),
        gpus: spec.gpus,
        ...(spec.checkpoint ? { checkpointPath: spec.checkpoint.path } : {}),
        ...(resumeFrom && spec.checkpoint ? { resumeFrom: { env: spec.checkpoint.resumeEnv, path: resumeFrom.path } } : {}),
        labels,
        specHash: spec.specHash,
        idempotencyKey: a.idempotencyKey,
      });
      const at = ctx.o.now();
      const timings = { ...t.timings, start: at - t.startedAt };
      const lease = a.target.leaseAction ? ctx.leases.get(a.target.leaseAction) : undefined;
      const lost = ctx.lostWork.get(a.workload);
      await ctx.o.recorder.update((s) => {
        const prev = s.resources[a.address];
        const r: WorkloadRecord = prev?.type === 'workload' ? prev : emptyRecord(a.address, a.workload, spec.gpus);
        if (isTerminal(r.phase) && a.restart === 'rerun') {
          r.failures = 0;
          r.recoveries = 0;
          delete r.badCheckpoints;
        }
        const wasMove = r.move;
        // A target prepared for an early warning is used now, or not needed any more.
        const prepared = r.prepared?.node === node.id && r.prepared.provider === node.provider;
        delete r.prepared;
        delete r.startFresh;
        r.phase = 'running';
        delete r.pendingReason;
        delete r.finishedAt;
        delete r.move;
        r.provider = node.provider;
        r.node = node.id;
        r.instanceId = i.id;
        r.capacity = node.capacity;
        r.gpus = spec.gpus;
        r.specHash = spec.specHash;
        r.since = at;
        r.generation = a.generation;
        r.incarnation = a.incarnation;
        if (resumeFrom) r.resumedFrom = resumeFrom;
        else delete r.resumedFrom;
        const ref: InstanceRef = { provider: node.provider, node: node.id, id: i.id, startedAt: at };
        r.instances = [...(r.instances ?? []), ref].slice(-50);
        // What is really paid: the lease's price when it came from one (a bid may differ from the quote).
        r.pricePerGpuHour = lease && lease.gpus > 0 ? lease.pricePerHour / lease.gpus : a.target.pricePerGpuHour;
        r.onDemandPricePerGpuHour = ctx.onDemandPrice(node.gpuModel) || a.target.pricePerGpuHour;
        if (a.target.pool !== undefined) r.pool = a.target.pool;
        else delete r.pool;
        if (node.zone !== undefined) r.zone = node.zone;
        else delete r.zone;
        if (a.migratedFrom) {
          r.lastMoveAt = at;
          // Downtime: from the moment the workload stopped making progress to running again.
          const stopAt = t.stopStartedAt ?? wasMove?.startedAt ?? at;
          r.moves.push({
            at,
            from: a.migratedFrom,
            to: node.id,
            reason: a.moveReason ?? 'move',
            timings,
            downtimeMs: at - stopAt,
            outcome: lost !== undefined && lost > 0 ? 'lost-work' : 'ok',
            ...(lost !== undefined && lost > 0 ? { lostWorkMs: lost } : {}),
            ...(prepared ? { prepared: true } : {}),
          });
          if (a.evicted) {
            r.preemptions.push(at);
            if (r.preemptions.length > 50) r.preemptions.splice(0, r.preemptions.length - 50);
          }
          if (r.moves.length > 50) r.moves.splice(0, r.moves.length - 50);
        }
        s.resources[a.address] = r;
      });
      return i;
    },
    pre,
  );
  return { instance: inst.id, node: node.id, resumed: resumeFrom !== undefined };
}

// ---- release, adopt, forget, record ----------------------------------------------------------

export async function releaseStep(ctx: StepContext, a: ReleaseAction): Promise<StepInfo | undefined> {
  const p = ctx.provider(a.provider);
  if (!p.capacity) throw new ProviderError(a.provider, 'has no capacity capability to release leases', { address: a.address });
  const cap = p.capacity;
  await ctx.withPending(a.id, a.address, 'release', { leaseId: a.leaseId }, () => cap.release(a.leaseId));
  await ctx.o.recorder.update((s) => {
    for (const [k, r] of Object.entries(s.resources)) if (r.type === 'lease' && r.leaseId === a.leaseId && r.provider === a.provider) delete s.resources[k];
  });
  return undefined;
}

export async function adoptStep(ctx: StepContext, a: AdoptAction): Promise<void> {
  const now = ctx.o.now();
  if (a.record === 'lease') {
    const l = a.leaseId !== undefined ? ctx.observedLease(a.provider, a.leaseId) : undefined;
    if (!l) return;
    await ctx.o.recorder.update((s) => {
      s.resources[a.address] = {
        type: 'lease', address: a.address, provider: a.provider, pool: l.pool, leaseId: l.id, capacity: l.capacity, gpus: l.gpus, pricePerHour: l.pricePerHour,
        acquiredAt: Date.parse(l.acquiredAt) || now, idempotencyKey: l.labels?.['spotfleet.idempotency-key'] ?? '', ...(l.node ? { node: l.node } : {}), ...(l.zone ? { zone: l.zone } : {}),
      };
    });
    return;
  }
  const inst = a.instanceId !== undefined ? ctx.observedInstance(a.provider, a.instanceId) : undefined;
  if (!inst) return;
  const node = ctx.nodeCache.get(nodeKey(a.provider, inst.node));
  const od = node ? ctx.onDemandPrice(node.gpuModel) : 0;
  await ctx.o.recorder.update((s) => {
    const prev = s.resources[a.address];
    const r: WorkloadRecord = prev?.type === 'workload' ? prev : emptyRecord(a.address, inst.workload, inst.gpus);
    const gen = Number(inst.labels['spotfleet.generation'] ?? 0) || 0;
    // The instance it replaces (a crash between a start and its record) ended where we found this one.
    if (r.instanceId && r.instanceId !== inst.id) closeRun(s, r, Date.parse(inst.startedAt) || now, od);
    r.phase = 'running';
    delete r.pendingReason;
    // A finished record whose rerun started before a crash: it runs again, so it is not finished.
    delete r.finishedAt;
    delete r.move;
    r.provider = inst.provider;
    r.node = inst.node;
    r.instanceId = inst.id;
    r.gpus = inst.gpus;
    if (inst.specHash) r.specHash = inst.specHash;
    r.since = Date.parse(inst.startedAt) || now;
    r.generation = Math.max(r.generation, gen);
    if (!r.instances?.some((x) => x.id === inst.id)) r.instances = [...(r.instances ?? []), { provider: inst.provider, node: inst.node, id: inst.id, startedAt: r.since }].slice(-50);
    if (node) {
      r.capacity = node.capacity;
      r.pricePerGpuHour = node.gpus > 0 ? node.pricePerHour / node.gpus : node.pricePerHour;
      r.onDemandPricePerGpuHour = od || r.pricePerGpuHour;
      if (node.zone) r.zone = node.zone;
      if (node.pool) r.pool = node.pool;
    }
    s.resources[a.address] = r;
  });
}

/** Removes an exited instance of ours (see RemoveAction); removing one already gone succeeds. */
export async function removeStep(ctx: StepContext, a: RemoveAction): Promise<void> {
  const p = ctx.provider(a.provider);
  const remove = p.runtime?.remove?.bind(p.runtime);
  if (!remove) throw new ProviderError(a.provider, 'its runtime cannot remove instances', { address: a.address });
  await ctx.withPending(a.id, a.address, 'remove', { node: a.node, instance: a.instanceId }, () => remove(a.node, a.instanceId));
  const at = ctx.o.now();
  await ctx.o.recorder.update((s) => {
    const r = s.resources[a.address];
    if (r?.type !== 'workload') return;
    for (const i of r.instances ?? []) if (i.id === a.instanceId && i.provider === a.provider) i.removedAt = at;
  });
}

export async function forgetStep(ctx: StepContext, address: string): Promise<void> {
  await ctx.o.recorder.update((s) => {
    delete s.resources[address];
  });
}

/**
 * Records a lifecycle transition. An exit closes the run's ledger segment at the exit time; a
 * failed exit of an instance that resumed from a checkpoint and wrote no newer one marks that
 * checkpoint bad, so the next restart falls back to the one before.
 */
export async function recordStep(ctx: StepContext, a: RecordAction): Promise<StepInfo> {
  let badCheckpoint: string | undefined;
  const rec0 = ctx.o.recorder.latest.resources[a.address];
  if (a.exit && a.countFailure && rec0?.type === 'workload' && rec0.resumedFrom && rec0.instanceId === a.exit.instanceId) {
    const p = ctx.o.providers.get(a.exit.provider);
    const node = ctx.nodeCache.get(nodeKey(a.exit.provider, a.exit.node));
    const since = rec0.since !== undefined ? new Date(rec0.since).toISOString() : undefined;
    try {
      const newer = p?.storage && node && since ? await ctx.verify(p.storage, ctx.verifyRequest(a.workload, node, { since, keep: 0 })) : null;
      if (!newer) badCheckpoint = rec0.resumedFrom.path;
    } catch {
      // Cannot tell: leave the checkpoint be.
    }
  }
  const node = a.exit ? ctx.nodeCache.get(nodeKey(a.exit.provider, a.exit.node)) : undefined;
  const od = ctx.onDemandPrice(node?.gpuModel);
  let skipped = false;
  await ctx.o.recorder.update((s) => {
    const prev = s.resources[a.address];
    if (prev !== undefined && prev.type !== 'workload') return;
    const spec = ctx.spec(a.workload);
    const r: WorkloadRecord = prev ?? emptyRecord(a.address, a.workload, spec?.gpus ?? 0);
    // A newer writer moved the workload on (watch restarted it, say): this observation is stale.
    if (a.expectInstance !== undefined && r.instanceId !== undefined && r.instanceId !== a.expectInstance) {
      skipped = true;
      return;
    }
    if (a.exit) {
      const exit: ExitRecord = a.exit;
      if (r.instanceId === exit.instanceId) closeRun(s, r, exit.at, od);
      r.lastExit = exit;
    }
    if (a.countFailure) r.failures += 1;
    if (a.countRecovery) r.recoveries += 1;
    if (badCheckpoint) {
      r.badCheckpoints = [...new Set([...(r.badCheckpoints ?? []), badCheckpoint])].slice(-20);
      if (r.lastCheckpoint?.path === badCheckpoint) delete r.lastCheckpoint;
    }
    if (a.clearMove) delete r.move;
    r.phase = a.phase;
    if (a.pendingReason) r.pendingReason = a.pendingReason;
    else if (a.phase !== 'pending' && a.phase !== 'recovering') delete r.pendingReason;
    if (isTerminal(a.phase)) {
      r.finishedAt = a.exit?.at ?? ctx.o.now();
      if (spec && a.phase !== 'cancelled') r.specHash = spec.specHash;
    }
    s.resources[a.address] = r;
  });
  if (badCheckpoint) ctx.o.emit({ type: 'warning', address: a.address, kind: 'checkpoint', message: `the resume from ${badCheckpoint} failed without writing a newer checkpoint: marked bad; the next restart resumes from the checkpoint before it` });
  return { phase: a.phase, ...(skipped ? { stale: true } : {}) };
}
