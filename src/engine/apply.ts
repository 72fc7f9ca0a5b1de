// applyPlan: the effects. A DAG walk with bounded parallelism over the plan's actions. Before each
// side effect a pending record goes into the state; after it, the result. Every provider call is
// idempotent (acquire and start carry idempotency keys), so a crash at any point leaves a record
// and the next plan (which adopts what it finds with our labels) converges without duplicates.
// A failed action skips its dependents; independent actions go on.
import { ProviderError, SpotfleetError, errorMessage } from '../core/errors.js';
import { leaseAddress, workloadAddress } from '../core/address.js';
import type { CheckpointInfo, Lease, NodeInfo, Observed } from '../core/types.js';
import type { Provider } from '../providers/sdk.js';
import type { CheckpointContract, Fleet, WorkloadSpec } from '../spec/types.js';
import type { StateStore } from '../state/store.js';
import type { LeaseRecord, LedgerEntry, StateFile, WorkloadRecord } from '../state/types.js';
import type { AcquireAction, Action, CheckpointAction, PlacementRef, Plan, StartAction, StopAction, TransferAction } from './types.js';

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
  info?: Record<string, string | number | boolean>;
}

export type ApplyEvent =
  | { type: 'start'; action: Action; at: number }
  | { type: 'done'; action: Action; result: ActionResult }
  | { type: 'skipped'; action: Action; reason: string }
  | { type: 'warning'; address: string; message: string };

export interface ApplyOptions {
  fleet: Fleet;
  providers: ReadonlyMap<string, Provider>;
  store: StateStore;
  state: StateFile;
  /** What refresh saw (node facts for storage calls, prices for the ledger). */
  observed: Observed;
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

// Test hook for the crash-safety suite: SPOTFLEET_TEST_CRASH_AT=N kills this process with SIGKILL
// at the Nth boundary between a side effect and its record (after each state write and after each
// provider effect returns). Never set outside tests.
const crashAt = Number(process.env.SPOTFLEET_TEST_CRASH_AT ?? '0');
let crashCount = 0;
function crashPoint(): void {
  if (crashAt > 0 && ++crashCount === crashAt) process.kill(process.pid, 'SIGKILL');
}

/** Serialises state mutations: each update is written before the next begins. */
class StateWriter {
  private chain: Promise<unknown> = Promise.resolve();
  constructor(
    private readonly store: StateStore,
    public state: StateFile,
  ) {}
  update(fn: (s: StateFile) => void): Promise<void> {
    const run = async (): Promise<void> => {
      const next = structuredClone(this.state);
      fn(next);
      this.state = await this.store.write(next);
      crashPoint();
    };
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => undefined);
    return p;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function provider(opts: ApplyOptions, name: string): Provider {
  const p = opts.providers.get(name);
  if (!p) throw new SpotfleetError('PROVIDER_MISSING', `provider "${name}" is not configured in this fleet`);
  return p;
}

function checkpointOf(fleet: Fleet, workload: string): CheckpointContract | undefined {
  return fleet.workloads.find((w) => w.name === workload)?.checkpoint ?? fleet.defaults.checkpoint;
}

function onDemandPrice(observed: Observed, gpuModel: string | undefined): number {
  let best = Number.POSITIVE_INFINITY;
  for (const q of observed.prices) if (q.capacity === 'on-demand' && (!gpuModel || q.gpuModel === gpuModel)) best = Math.min(best, q.pricePerGpuHour);
  for (const n of observed.nodes) if (n.capacity === 'on-demand' && (!gpuModel || n.gpuModel === gpuModel) && n.gpus > 0) best = Math.min(best, n.pricePerHour / n.gpus);
  return Number.isFinite(best) ? best : 0;
}

/**
 * Drops the pending records a dead run left behind. Call it under the lock, after a plan was made
 * from a fresh refresh: that plan has already converged from what the providers report (adopting
 * what was started, stopping duplicates), so the records are done with; keeping them would only
 * let them pile up across crashes.
 */
export async function clearStalePending(store: StateStore, state: StateFile): Promise<StateFile> {
  if (!state.pending.some((p) => p.pid !== process.pid)) return state;
  return store.write({ ...state, pending: state.pending.filter((p) => p.pid === process.pid) });
}

/** Executes a plan. See the module comment. */
export async function applyPlan(plan: Plan, opts: ApplyOptions): Promise<ApplyResult> {
  const now = opts.now ?? Date.now;
  const writer = new StateWriter(opts.store, opts.state);
  const parallelism = Math.max(1, opts.parallelism ?? 10);
  const byId = new Map(plan.actions.map((a) => [a.id, a]));
  const results = new Map<string, ActionResult>();
  const started = new Map<string, number>();
  const startedAtOf = (id: string): number | undefined => started.get(id);
  /** Work lost per workload when no checkpoint newer than the signal verified in time. */
  const lostWork = new Map<string, number>();
  const leases = new Map<string, Lease>();
  const nodeCache = new Map<string, NodeInfo>(opts.observed.nodes.map((n) => [`${n.provider}/${n.id}`, n]));
  const emit = (e: ApplyEvent): void => opts.onEvent?.(e);

  const findNode = async (providerName: string, id: string, fresh = false): Promise<NodeInfo> => {
    const k = `${providerName}/${id}`;
    if (!fresh && nodeCache.has(k)) return nodeCache.get(k) as NodeInfo;
    const p = provider(opts, providerName);
    const list = p.nodes ? await p.nodes.list() : [];
    for (const n of list) nodeCache.set(`${providerName}/${n.id}`, { ...n, provider: providerName });
    const n = nodeCache.get(k);
    if (!n) throw new ProviderError(providerName, `node ${id} not found`, { address: `node.${providerName}.${id}` });
    return n;
  };
  const targetNode = async (t: PlacementRef): Promise<NodeInfo> => {
    if (t.node) return findNode(t.provider, t.node);
    const lease = t.leaseAction ? leases.get(t.leaseAction) : undefined;
    if (!lease?.node) throw new SpotfleetError('LEASE_NOT_READY', `the lease for ${t.pool ?? '?'} has no node`);
    return findNode(lease.provider, lease.node, !nodeCache.has(`${lease.provider}/${lease.node}`));
  };

  const run = async (a: Action): Promise<Record<string, string | number | boolean> | undefined> => {
    switch (a.kind) {
      case 'acquire':
        return doAcquire(a);
      case 'checkpoint':
        return doCheckpoint(a);
      case 'stop':
        return doStop(a);
      case 'transfer':
        return doTransfer(a);
      case 'start':
        return doStart(a);
      case 'release': {
        const p = provider(opts, a.provider);
        if (!p.capacity) throw new ProviderError(a.provider, 'has no capacity capability to release leases', { address: a.address });
        await withPending(a, { leaseId: a.leaseId }, () => p.capacity!.release(a.leaseId));
        await writer.update((s) => {
          for (const [k, r] of Object.entries(s.resources)) if (r.type === 'lease' && r.leaseId === a.leaseId && r.provider === a.provider) delete s.resources[k];
        });
        return undefined;
      }
      case 'adopt':
        await doAdopt(a);
        return undefined;
      case 'forget':
        await writer.update((s) => {
          delete s.resources[a.address];
        });
        return undefined;
    }
  };

  const withPending = async <T>(a: Action, data: Record<string, string | number | boolean>, fn: () => Promise<T>): Promise<T> => {
    await writer.update((s) => {
      s.pending.push({ id: a.id, address: a.address, action: a.kind, startedAt: now(), pid: process.pid, data });
    });
    const out = await fn();
    crashPoint();
    await writer.update((s) => {
      s.pending = s.pending.filter((p) => p.id !== a.id);
    });
    return out;
  };

  const doAcquire = async (a: AcquireAction): Promise<Record<string, string | number | boolean>> => {
    const p = provider(opts, a.provider);
    if (!p.capacity) throw new ProviderError(a.provider, 'has no capacity capability', { address: a.address });
    const lease = await withPending(a, { idempotencyKey: a.idempotencyKey, pool: a.pool }, async () => {
      let l = await p.capacity!.acquire({
        pool: a.pool,
        capacity: a.capacity,
        gpuModel: a.gpuModel,
        gpus: a.gpus,
        ...(a.zone !== undefined ? { zone: a.zone } : {}),
        ...(a.maxPricePerGpuHour !== undefined ? { maxPricePerGpuHour: a.maxPricePerGpuHour } : {}),
        ...(a.bidPerGpuHour !== undefined ? { bidPerGpuHour: a.bidPerGpuHour } : {}),
        ...(a.offerId !== undefined ? { offerId: a.offerId } : {}),
        idempotencyKey: a.idempotencyKey,
        labels: { 'spotfleet.fleet': opts.fleet.name, 'spotfleet.workload': a.forWorkload },
      });
      const deadline = now() + (opts.leaseReadyMs ?? 120_000);
      while (!l.node && now() < deadline) {
        await sleep(500);
        l = (await p.capacity!.leases()).find((x) => x.id === l.id) ?? l;
      }
      if (!l.node) throw new ProviderError(a.provider, `lease ${l.id} did not become a node in time`, { address: a.address });
      const rec: LeaseRecord = {
        type: 'lease',
        address: leaseAddress(a.pool, l.id),
        provider: a.provider,
        pool: a.pool,
        leaseId: l.id,
        node: l.node,
        capacity: l.capacity,
        gpus: l.gpus,
        pricePerHour: l.pricePerHour,
        acquiredAt: Date.parse(l.acquiredAt) || now(),
        idempotencyKey: a.idempotencyKey,
        ...(l.zone !== undefined ? { zone: l.zone } : {}),
      };
      // The lease is recorded before the pending record is cleared: a crash in between leaves both.
      await writer.update((s) => {
        s.resources[rec.address] = rec;
      });
      return { ...l, provider: a.provider };
    });
    leases.set(a.id, lease);
    return { lease: lease.id, node: lease.node ?? '' };
  };

  const doCheckpoint = async (a: CheckpointAction): Promise<Record<string, string | number | boolean>> => {
    const contract = checkpointOf(opts.fleet, a.workload);
    const p = provider(opts, a.provider);
    if (!contract || !p.runtime) return { checkpoint: 'none' };
    const node = await findNode(a.provider, a.node);
    const already = opts.signalledAt?.get(`${a.provider}/${a.instanceId}`);
    const signalAt = already ?? now();
    if (already === undefined) await withPending(a, { node: a.node, instance: a.instanceId }, () => p.runtime!.signal(a.node, a.instanceId, contract.signal));
    if (!p.storage) return { signalled: true };
    const since = new Date(signalAt - 1).toISOString();
    const deadline = signalAt + a.waitMs;
    const verifyReq = { node, workload: a.workload, ...(contract.marker ? { marker: contract.marker } : {}), ...(contract.minSizeBytes ? { minSizeBytes: contract.minSizeBytes } : {}) };
    for (;;) {
      const ck = await p.storage.verify({ ...verifyReq, since });
      if (ck) {
        await recordCheckpoint(a.workload, ck);
        return { verifiedMs: now() - signalAt };
      }
      if (now() >= deadline) break;
      await sleep(opts.pollMs ?? 200);
    }
    const newest = await p.storage.verify(verifyReq);
    const lost = newest ? signalAt - Date.parse(newest.mtime) : -1;
    emit({ type: 'warning', address: a.address, message: newest ? `no checkpoint verified within ${Math.round(a.waitMs / 1000)}s of the signal; resuming from the newest verified one (${newest.mtime}), losing about ${Math.round(lost / 1000)}s of work` : `no checkpoint verified within ${Math.round(a.waitMs / 1000)}s and none exists; the workload restarts from the beginning` });
    if (newest) await recordCheckpoint(a.workload, newest);
    if (lost > 0) lostWork.set(a.workload, lost);
    return { verified: false, lostWorkMs: lost };
  };

  const recordCheckpoint = (workload: string, ck: CheckpointInfo): Promise<void> =>
    writer.update((s) => {
      const r = s.resources[workloadAddress(workload)];
      if (r?.type === 'workload') r.lastCheckpoint = ck;
    });

  const doStop = async (a: StopAction): Promise<Record<string, string | number | boolean>> => {
    const p = provider(opts, a.provider);
    if (!p.runtime) throw new ProviderError(a.provider, 'has no runtime capability', { address: a.address });
    const res = await withPending(a, { node: a.node, instance: a.instanceId }, () => p.runtime!.stop(a.node, a.instanceId, a.graceMs));
    if (a.duplicate) return { duplicate: true };
    const at = now();
    const gpuModel = nodeCache.get(`${a.provider}/${a.node}`)?.gpuModel;
    const od = onDemandPrice(opts.observed, gpuModel);
    await writer.update((s) => {
      const r = s.resources[a.address];
      if (r?.type !== 'workload' || (r.instanceId !== undefined && r.instanceId !== a.instanceId)) return;
      if (r.since !== undefined) {
        s.ledger.push(ledgerEntry(r, r.since, at, r.onDemandPricePerGpuHour ?? od));
        r.doneMs += Math.max(0, at - r.since);
      }
      r.status = 'stopped';
      delete r.since;
      delete r.instanceId;
      if (a.removing) delete s.resources[a.address];
    });
    // The workload saves on SIGTERM too: the newest checkpoint now is the one to resume from.
    const node = nodeCache.get(`${a.provider}/${a.node}`);
    if (p.storage && node && node.state !== 'terminated') {
      try {
        const ck = await p.storage.verify({ node, workload: a.workload });
        if (ck) await recordCheckpoint(a.workload, ck);
      } catch {
        // The node may be going away; the checkpoint step already recorded one.
      }
    }
    return res.exitCode !== undefined ? { exitCode: res.exitCode } : {};
  };

  const doTransfer = async (a: TransferAction): Promise<Record<string, string | number | boolean>> => {
    const from = await findNode(a.from.provider, a.from.node);
    const to = await targetNode(a.to);
    const src = provider(opts, a.from.provider);
    const dst = provider(opts, to.provider);
    const storage = src.storage && (from.provider === to.provider || src.storage.canTransfer?.(from, to)) ? src.storage : dst.storage?.canTransfer?.(from, to) ? dst.storage : undefined;
    if (!storage || !src.storage) throw new ProviderError(a.from.provider, `cannot move checkpoints from ${from.id} to ${to.id} (${to.provider})`, { address: a.address });
    const contract = checkpointOf(opts.fleet, a.workload);
    let ck: CheckpointInfo | null;
    try {
      ck = await src.storage.verify({ node: from, workload: a.workload, ...(contract?.marker ? { marker: contract.marker } : {}) });
    } catch (e) {
      // A dead node whose storage cannot be read any more must not block the restart for ever.
      if (from.state !== 'terminated') throw e;
      emit({ type: 'warning', address: a.address, message: `the checkpoint on ${from.id} cannot be read (the node is gone: ${errorMessage(e)}); it starts from whatever checkpoint ${to.id} has` });
      return { transferred: false };
    }
    if (!ck) {
      emit({ type: 'warning', address: a.address, message: `no checkpoint of ${a.workload} on ${from.id}; it starts from the beginning on ${to.id}` });
      return { transferred: false };
    }
    const res = await withPending(a, { from: from.id, to: to.id }, () => storage.transfer({ workload: a.workload, from, to, checkpoint: ck }));
    await recordCheckpoint(a.workload, res.checkpoint);
    return { bytes: res.bytes, skipped: res.skipped, transferMs: res.durationMs };
  };

  const doStart = async (a: StartAction): Promise<Record<string, string | number | boolean>> => {
    const spec = opts.fleet.workloads.find((w) => w.name === a.workload) as WorkloadSpec;
    const node = await targetNode(a.target);
    const p = provider(opts, node.provider);
    if (!p.runtime) throw new ProviderError(node.provider, 'has no runtime capability', { address: a.address });
    let resumeFrom: { env: string; path: string } | undefined;
    if (a.resume && spec.checkpoint && p.storage) {
      const ck = await p.storage.verify({ node, workload: a.workload });
      if (ck) resumeFrom = { env: spec.checkpoint.resumeEnv, path: ck.path };
    }
    const labels: Record<string, string> = {
      ...spec.labels,
      'spotfleet.fleet': opts.fleet.name,
      'spotfleet.workload': a.workload,
      'spotfleet.spec-hash': spec.specHash,
      'spotfleet.generation': String(a.generation),
    };
    if (a.migratedFrom) labels['spotfleet.migrated-from'] = a.migratedFrom;
    if (a.originalType) labels['spotfleet.original-type'] = a.originalType;
    const inst = await withPending(a, { idempotencyKey: a.idempotencyKey, node: node.id }, async () => {
      const i = await p.runtime!.start({
        fleet: opts.fleet.name,
        workload: a.workload,
        node: node.id,
        ...(spec.image !== undefined ? { image: spec.image } : {}),
        ...(spec.command !== undefined ? { command: spec.command } : {}),
        env: spec.env,
        gpus: spec.gpus,
        ...(spec.checkpoint ? { checkpointPath: spec.checkpoint.path } : {}),
        ...(resumeFrom ? { resumeFrom } : {}),
        labels,
        specHash: spec.specHash,
        idempotencyKey: a.idempotencyKey,
      });
      const at = now();
      // Step timings of this move: its own actions plus the acquire made for it.
      const timings: Record<string, number> = {};
      let stopStart: number | undefined;
      for (const r of results.values()) {
        const src = byId.get(r.id);
        const mine = r.address === a.address || (src?.kind === 'acquire' && src.forWorkload === a.workload);
        if (!mine || r.startedAt === undefined || r.endedAt === undefined) continue;
        timings[r.kind] = r.endedAt - r.startedAt;
        if (r.kind === 'stop' && r.address === a.address) stopStart = r.startedAt;
      }
      timings.start = at - (results.get(a.id)?.startedAt ?? startedAtOf(a.id) ?? at);
      await writer.update((s) => {
        const prev = s.resources[a.address];
        const r: WorkloadRecord = prev?.type === 'workload'
          ? prev
          : { type: 'workload', address: a.address, name: a.workload, status: 'running', gpus: spec.gpus, doneMs: 0, generation: 0, preemptions: [], moves: [] };
        r.status = 'running';
        r.provider = node.provider;
        r.node = node.id;
        r.instanceId = i.id;
        r.capacity = node.capacity;
        r.gpus = spec.gpus;
        r.specHash = spec.specHash;
        r.since = at;
        r.generation = a.generation;
        // What is really paid: the lease's price when it came from one (a bid may differ from the quote).
        const lease = a.target.leaseAction ? leases.get(a.target.leaseAction) : undefined;
        r.pricePerGpuHour = lease && lease.gpus > 0 ? lease.pricePerHour / lease.gpus : a.target.pricePerGpuHour;
        r.onDemandPricePerGpuHour = onDemandPrice(opts.observed, node.gpuModel) || a.target.pricePerGpuHour;
        if (a.target.pool !== undefined) r.pool = a.target.pool;
        else delete r.pool;
        if (node.zone !== undefined) r.zone = node.zone;
        else delete r.zone;
        if (a.migratedFrom) {
          r.lastMoveAt = at;
          // Downtime: from the moment the workload stopped making progress to running again.
          r.moves.push({ at, from: a.migratedFrom, to: node.id, reason: a.moveReason ?? 'move', timings, downtimeMs: at - (stopStart ?? at), outcome: lostWork.has(a.workload) ? 'lost-work' : 'ok', ...(lostWork.has(a.workload) ? { lostWorkMs: lostWork.get(a.workload) as number } : {}) });
          if (a.evicted) {
            r.preemptions.push(at);
            if (r.preemptions.length > 50) r.preemptions.splice(0, r.preemptions.length - 50);
          }
          if (r.moves.length > 50) r.moves.splice(0, r.moves.length - 50);
        }
        s.resources[a.address] = r;
      });
      return i;
    });
    return { instance: inst.id, node: node.id, resumed: resumeFrom !== undefined };
  };

  const doAdopt = async (a: Extract<Action, { kind: 'adopt' }>): Promise<void> => {
    if (a.record === 'lease') {
      const l = opts.observed.leases.find((x) => x.id === a.leaseId && x.provider === a.provider);
      if (!l) return;
      await writer.update((s) => {
        s.resources[a.address] = {
          type: 'lease', address: a.address, provider: a.provider, pool: l.pool, leaseId: l.id, capacity: l.capacity, gpus: l.gpus, pricePerHour: l.pricePerHour,
          acquiredAt: Date.parse(l.acquiredAt) || now(), idempotencyKey: l.labels?.['spotfleet.idempotency-key'] ?? '', ...(l.node ? { node: l.node } : {}), ...(l.zone ? { zone: l.zone } : {}),
        };
      });
      return;
    }
    const inst = opts.observed.workloads.find((w) => w.id === a.instanceId && w.provider === a.provider);
    if (!inst) return;
    const node = nodeCache.get(`${a.provider}/${inst.node}`);
    await writer.update((s) => {
      const prev = s.resources[a.address];
      const r: WorkloadRecord = prev?.type === 'workload' ? prev : { type: 'workload', address: a.address, name: inst.workload, status: 'running', gpus: inst.gpus, doneMs: 0, generation: Number(inst.labels['spotfleet.generation'] ?? 0) || 0, preemptions: [], moves: [] };
      r.status = 'running';
      r.provider = inst.provider;
      r.node = inst.node;
      r.instanceId = inst.id;
      r.gpus = inst.gpus;
      if (inst.specHash) r.specHash = inst.specHash;
      r.since = Date.parse(inst.startedAt) || now();
      r.generation = Math.max(r.generation, Number(inst.labels['spotfleet.generation'] ?? 0) || 0);
      if (node) {
        r.capacity = node.capacity;
        r.pricePerGpuHour = node.gpus > 0 ? node.pricePerHour / node.gpus : node.pricePerHour;
        r.onDemandPricePerGpuHour = onDemandPrice(opts.observed, node.gpuModel) || r.pricePerGpuHour;
        if (node.zone) r.zone = node.zone;
        if (node.pool) r.pool = node.pool;
      }
      s.resources[a.address] = r;
    });
  };

  // ---- the DAG walk ----
  const pending = new Set(plan.actions.map((a) => a.id));
  const running = new Map<string, Promise<void>>();
  let cancelled = false;
  const depState = (a: Action): 'ready' | 'wait' | 'blocked' => {
    for (const d of a.deps) {
      if (!byId.has(d)) continue;
      const r = results.get(d);
      if (!r) return 'wait';
      if (r.status !== 'ok') return 'blocked';
    }
    return 'ready';
  };
  writer.state = await clearStalePending(opts.store, writer.state);
  for (;;) {
    // Yield to the event loop each round: with providers that answer without real I/O the walk
    // would otherwise run as one chain of microtasks, and a Ctrl-C would not be seen until the end.
    await new Promise<void>((r) => setImmediate(r));
    if (!cancelled && opts.shouldStop?.()) cancelled = true;
    let progressed = false;
    for (const id of [...pending]) {
      const a = byId.get(id) as Action;
      const st = depState(a);
      if (st === 'blocked' || (cancelled && st !== 'wait')) {
        pending.delete(id);
        const failedDep = a.deps.map((d) => results.get(d)).find((r) => r && r.status !== 'ok');
        const reason = cancelled && st !== 'blocked' ? 'interrupted' : `depends on ${failedDep?.address ?? '?'} (${failedDep?.kind ?? '?'}) which ${failedDep?.status === 'failed' ? 'failed' : 'did not run'}`;
        results.set(id, { id, address: a.address, kind: a.kind, summary: a.summary, status: cancelled && st !== 'blocked' ? 'cancelled' : 'skipped', error: reason });
        emit({ type: 'skipped', action: a, reason });
        progressed = true;
        continue;
      }
      if (st !== 'ready' || running.size >= parallelism || cancelled) continue;
      pending.delete(id);
      progressed = true;
      const startedAt = now();
      started.set(id, startedAt);
      emit({ type: 'start', action: a, at: startedAt });
      const task = (async () => {
        let result: ActionResult;
        try {
          const info = await run(a);
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
  return { state: writer.state, results: all, failed: all.filter((r) => r.status === 'failed'), cancelled };
}

function ledgerEntry(r: WorkloadRecord, from: number, to: number, od: number): LedgerEntry {
  const e: LedgerEntry = { workload: r.name, capacity: r.capacity ?? 'on-demand', from, to, gpus: r.gpus, pricePerGpuHour: r.pricePerGpuHour ?? 0, onDemandPricePerGpuHour: od || (r.pricePerGpuHour ?? 0) };
  if (r.pool !== undefined) e.pool = r.pool;
  if (r.node !== undefined) e.node = r.node;
  return e;
}
