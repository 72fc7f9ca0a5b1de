// planFleet: spec + observed + state → Plan. Pure: no I/O, no clock (now comes in options).
// For each workload it resolves where it runs (state record vs what the runtimes report), asks the
// policy (decideWorkload) where it should run, and turns the difference into a DAG of actions:
// acquire ∥ checkpoint → stop → transfer → start, releases of idle leases, adoption of things found
// running with our labels, and stops of duplicates. Output is sorted by address.
import { createHash } from 'node:crypto';
import { compareAddress, leaseAddressForKey, nodeKey, providerKey, workloadAddress } from '../core/address.js';
import type { CapacityType, Lease, NodeInfo, Notice, Observed, WorkloadInstance } from '../core/types.js';
import { formatDuration, formatUsd, roundUsd } from '../core/units.js';
import { computeBid } from '../core/bid.js';
import { onDemandPricePerGpuHour } from '../core/on-demand.js';
import { FreeGpuIndex } from './capacity-index.js';
import { decideWorkload } from '../policy/decide.js';
import { optionRegion } from '../policy/deadline.js';
import { noticeEvicts, preparedActive, usePreparedTarget, withPoolHistory } from '../policy/warning.js';
import type { PolicySet } from '../policy/policy-set.js';
import type { ZoneStats } from '../policy/uptime.js';
import { DEFAULT_OVERHEAD, type CurrentPlacement, type PlacementOption, type WorkloadDecision, type WorkloadDecisionInput } from '../policy/types.js';
import type { Fleet, WorkloadSpec } from '../spec/types.js';
import type { ExitRecord, LeaseRecord, MoveInFlight, PendingReason, StateFile, WorkloadPhase, WorkloadRecord } from '../state/types.js';
import { afterEnd, isActive, isTerminal, judgeEnd, stoppedBySpotfleet, unreadableProviders, type EndVerdict } from './lifecycle.js';
import { ARCHIVE_NODE, ARCHIVE_PROVIDER } from './archive.js';
import {
  PLAN_FORMAT_VERSION,
  type Action,
  type ChangeKind,
  type DriftItem,
  type Plan,
  type PlacementRef,
  type RecordAction,
  type ResourceChange,
  type StartAction,
  type StopAction,
} from './types.js';

export interface PlanOptions {
  /** ms epoch. */
  now: number;
  /** Only these addresses (and what they depend on). */
  targets?: string[];
  /** Plan to stop everything the fleet owns (checkpointing first) and release every lease. */
  destroy?: boolean;
  /** Providers that have a `capacity` capability (markets): their pools acquire leases. */
  marketProviders: ReadonlySet<string>;
  /** Providers that have a `runtime` capability: only their nodes can run workloads. */
  runtimeProviders: ReadonlySet<string>;
  /** Marketplaces that take bids (capacity with offers): spot acquisitions there carry a bid. */
  bidProviders?: ReadonlySet<string>;
  /** Compiled policy set for decideWorkload. */
  policies?: PolicySet;
  /** Default wait for a verified checkpoint outside emergencies. */
  checkpointWaitMs?: number;
  /** When given, every workload's decision input and decision are put here (for `explain`). */
  captureDecisions?: Map<string, { input: WorkloadDecisionInput; decision: WorkloadDecision }>;
  /**
   * The observation is the last recorded one, not a fresh refresh (`--refresh=false`): a workload is
   * never stopped or restarted for what the skipped refresh could not see.
   */
  refreshSkipped?: boolean;
  /**
   * Leased nodes (`provider/node`) whose checkpoints can be copied to the controller's archive: a
   * workload stopped there for good (destroy, parked) has its checkpoint archived before the lease
   * is released, so the next run resumes from it.
   */
  archivable?: ReadonlySet<string>;
  /** Spot availability seen so far per pool/zone: the live history of the expected up-time estimate. */
  zoneStats?: Record<string, ZoneStats>;
  /**
   * Providers whose runtime can remove an exited instance (`runtime.remove`). There, exited
   * instances of ours are removed but each workload's newest (see planExitedRemovals); absent: none
   * is removed (emergency and early-warning plans leave the housekeeping to the next reconcile).
   */
  removableProviders?: ReadonlySet<string>;
}


export function specHashOf(fleet: Fleet): string {
  const h = createHash('sha256');
  for (const w of [...fleet.workloads].sort((a, b) => a.name.localeCompare(b.name))) h.update(`${w.name}=${w.specHash};`);
  for (const p of [...fleet.pools].sort((a, b) => a.name.localeCompare(b.name))) h.update(`${p.name}:${p.provider}:${p.capacity}:${p.gpuModel ?? ''}:${p.maxPricePerHour ?? ''};`);
  return h.digest('hex').slice(0, 16);
}

interface Ctx {
  fleet: Fleet;
  observed: Observed;
  state: StateFile;
  opts: PlanOptions;
  nodes: Map<string, NodeInfo>;
  /** Nodes by id alone (ids may repeat across providers), in observed order. */
  nodesById: Map<string, NodeInfo[]>;
  /** The spec's workloads by name. */
  specs: Map<string, WorkloadSpec>;
  notices: Map<string, Notice[]>;
  /** GPUs still free per node, updated as the plan assigns workloads. */
  free: Map<string, number>;
  /** Eligible nodes per pool, grouped and bucketed by free GPUs (built once the free counts are known). */
  index: FreeGpuIndex;
  /** Node keys reserved per workload (the inverse of `reserved`). */
  reservedFor: Map<string, string[]>;
  actions: Action[];
  changes: ResourceChange[];
  drift: DriftItem[];
  warnings: string[];
  /** Leases (by provider/leaseId) some workload keeps or gets. */
  leasesInUse: Set<string>;
  /** Idle leased nodes acquired for a workload that is not running yet: kept for that workload. */
  reserved: Map<string, string>;
  /** Stop and transfer-from actions per node key, so a lease release waits for them. */
  stopsOnNode: Map<string, string[]>;
  /** Exited instances of ours, per workload. */
  ended: Map<string, WorkloadInstance[]>;
  /** Providers whose nodes or runtime could not be read: their workloads are left as they are. */
  unknownProviders: Set<string>;
  seq: number;
}

/** Observed leases by `id\0provider\0id` and, for this fleet's, by `pool\0provider\0pool\0workload` (in observed order). */
function indexPreparedLeases(leases: readonly Lease[], fleet: string): Map<string, Lease[]> {
  const m = new Map<string, Lease[]>();
  for (const l of leases) {
    pushTo(m, `id\0${l.provider}\0${l.id}`, l);
    const w = l.labels?.['spotfleet.workload'];
    if (w !== undefined && l.labels?.['spotfleet.fleet'] === fleet) pushTo(m, `pool\0${l.provider}\0${l.pool}\0${w}`, l);
  }
  return m;
}

function pushTo<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const list = m.get(k);
  if (list) list.push(v);
  else m.set(k, [v]);
}

function nextId(ctx: Ctx, kind: string, name: string): string {
  ctx.seq += 1;
  return `${kind}:${name}:${ctx.seq}`;
}

function pricePerGpuHourOf(node: NodeInfo): number {
  return node.gpus > 0 ? node.pricePerHour / node.gpus : node.pricePerHour;
}

function isDead(node: NodeInfo | undefined): boolean {
  return !node || node.state === 'terminated';
}

/** Builds the plan. See the module comment. */
export function planFleet(fleet: Fleet, observed: Observed, state: StateFile, opts: PlanOptions): Plan {
  const ctx: Ctx = {
    fleet,
    observed,
    state,
    opts,
    nodes: new Map(observed.nodes.map((n) => [nodeKey(n.provider, n.id), n])),
    nodesById: new Map(),
    specs: new Map(fleet.workloads.map((w) => [w.name, w])),
    notices: new Map(),
    free: new Map(),
    index: undefined as unknown as FreeGpuIndex,
    reservedFor: new Map(),
    actions: [],
    changes: [],
    drift: [],
    warnings: [],
    leasesInUse: new Set(),
    reserved: new Map(),
    stopsOnNode: new Map(),
    ended: new Map(),
    unknownProviders: new Set(),
    seq: 0,
  };
  for (const n of observed.nodes) pushTo(ctx.nodesById, n.id, n);
  for (const n of observed.notices) {
    const k = nodeKey(n.provider, n.node);
    const list = ctx.notices.get(k) ?? [];
    list.push(n);
    ctx.notices.set(k, list);
  }
  for (const n of observed.nodes) ctx.free.set(nodeKey(n.provider, n.id), n.gpus);
  const running = observed.workloads.filter((w) => w.state === 'running');
  for (const w of running) {
    const k = nodeKey(w.provider, w.node);
    ctx.free.set(k, (ctx.free.get(k) ?? 0) - w.gpus);
  }
  for (const n of observed.nodes) {
    const k = nodeKey(n.provider, n.id);
    if (n.gpusFree !== undefined) ctx.free.set(k, Math.min(ctx.free.get(k) ?? 0, n.gpusFree));
  }

  const ours = running.filter((w) => w.fleet === fleet.name);
  const byWorkload = new Map<string, WorkloadInstance[]>();
  for (const w of ours) {
    const list = byWorkload.get(w.workload) ?? [];
    list.push(w);
    byWorkload.set(w.workload, list);
  }
  // Every instance of ours the runtimes still report, exited ones too: how a job ended.
  for (const w of observed.workloads) {
    if (w.fleet !== fleet.name || w.state === 'running') continue;
    const list = ctx.ended.get(w.workload) ?? [];
    list.push(w);
    ctx.ended.set(w.workload, list);
  }
  for (const p of unreadableProviders(observed)) ctx.unknownProviders.add(p);

  // A lease acquired for a workload that does not run yet (a crash between acquire and start) is
  // that workload's: its own idempotent acquire returns it, so nobody else may take its GPUs.
  for (const l of observed.leases) {
    const forW = l.labels?.['spotfleet.workload'];
    if (l.node && forW && l.labels?.['spotfleet.fleet'] === fleet.name && !byWorkload.has(forW)) ctx.reserved.set(nodeKey(l.provider, l.node), forW);
  }
  // A lease acquired for an early warning (prepare) is its workload's until the warning's window ends.
  // (Its lease is known by id once recorded, and by its labels while the acquire is under way.)
  // The leases are indexed once, when a workload is prepared at all: no scan of them per workload.
  let preparedLeases: Map<string, Lease[]> | undefined;
  for (const r of Object.values(state.resources)) {
    const p = r.type === 'workload' ? r.prepared : undefined;
    if (r.type !== 'workload' || !p || !preparedActive(p, opts.now) || opts.destroy) continue;
    preparedLeases ??= indexPreparedLeases(observed.leases, fleet.name);
    for (const l of preparedLeases.get(p.leaseId !== undefined ? `id\0${p.provider}\0${p.leaseId}` : `pool\0${p.provider}\0${p.pool}\0${r.name}`) ?? []) {
      ctx.leasesInUse.add(providerKey(l.provider, l.id));
      if (l.node !== undefined && l.node !== r.node) ctx.reserved.set(nodeKey(l.provider, l.node), r.name);
    }
  }
  for (const [k, wl] of ctx.reserved) pushTo(ctx.reservedFor, wl, k);
  ctx.index = buildIndex(ctx);
  let beforePerHour = 0;
  let afterPerHour = 0;
  /** Each workload's $/h before and after (by name), so a targeted plan counts only what it changes. */
  const perWorkload = new Map<string, { before: number; after: number }>();
  const specNames = new Set(fleet.workloads.map((w) => w.name));
  const names = new Set<string>([...specNames, ...byWorkload.keys()]);
  for (const r of Object.values(state.resources)) if (r.type === 'workload') names.add(r.name);

  for (const name of [...names].sort()) {
    const spec = opts.destroy ? undefined : ctx.specs.get(name);
    const r = planWorkload(ctx, name, spec, byWorkload.get(name) ?? []);
    beforePerHour += r.before;
    afterPerHour += r.after;
    perWorkload.set(name, r);
  }
  planLeases(ctx);
  planExitedRemovals(ctx);
  if (state.pending.length > 0) {
    const what = [...new Set(state.pending.map((p) => `${p.action} ${p.address}`))].sort().join(', ');
    ctx.warnings.push(`a previous run was interrupted during: ${what}; this plan converges from what the providers report`);
  }

  let actions = ctx.actions;
  let changes = ctx.changes;
  if (opts.targets && opts.targets.length > 0) {
    const keep = new Set<string>();
    const byId = new Map(actions.map((a) => [a.id, a]));
    const visit = (id: string): void => {
      if (keep.has(id)) return;
      keep.add(id);
      for (const d of byId.get(id)?.deps ?? []) visit(d);
    };
    for (const a of actions) if (opts.targets.includes(a.address)) visit(a.id);
    actions = actions.filter((a) => keep.has(a.id));
    const addrs = new Set(actions.map((a) => a.address));
    changes = changes.filter((c) => addrs.has(c.address) || opts.targets?.includes(c.address));
    // Untargeted workloads stay as they are: the fleet's cost after is theirs now plus the targets' after.
    afterPerHour = 0;
    for (const [name, r] of perWorkload) afterPerHour += addrs.has(workloadAddress(name)) ? r.after : r.before;
  }
  changes.sort((a, b) => compareAddress(a.address, b.address));
  ctx.drift.sort((a, b) => compareAddress(a.address, b.address) || a.kind.localeCompare(b.kind));

  const summary = { add: 0, change: 0, destroy: 0, pending: 0 };
  for (const c of changes) {
    if (c.change === 'create') summary.add++;
    else if (c.change === 'update' || c.change === 'replace') summary.change++;
    else if (c.change === 'delete') summary.destroy++;
    else if (c.change === 'pending') summary.pending++;
  }
  const plan: Plan = {
    formatVersion: PLAN_FORMAT_VERSION,
    fleet: fleet.name,
    createdAt: new Date(opts.now).toISOString(),
    state: { lineage: state.lineage, serial: state.serial },
    specHash: specHashOf(fleet),
    changes,
    actions,
    drift: ctx.drift,
    warnings: ctx.warnings.sort(),
    summary,
    cost: { beforePerHour: roundUsd(beforePerHour), afterPerHour: roundUsd(afterPerHour) },
  };
  if (opts.targets && opts.targets.length > 0) plan.targets = [...opts.targets];
  return plan;
}

/** How long an exited instance of ours is kept on its node after it ended (its logs with it). */
export const EXITED_KEPT_MS = 24 * 3_600_000;

/**
 * Exited instances of ours pile up on the nodes otherwise: one per preemption, move, retry and run.
 * Like Kubernetes' ttlSecondsAfterFinished, one that ended more than EXITED_KEPT_MS ago is removed
 * (container, or process record and output), except each workload's newest and the one its record
 * names: how its last run ended, and its logs, stay while the record does. So `logs
 * --all-instances` shows a day of restarts, and a node holds a day of exits, not all of them. The
 * removal joins the workload's change in the plan, so "No changes" still means nothing would
 * change. A workload that left the spec (its record goes) keeps none past the day; destroy keeps
 * the record, and with it the newest. Checkpoints live apart from instances and are not touched.
 */
function planExitedRemovals(ctx: Ctx): void {
  const removable = ctx.opts.removableProviders;
  if (!removable || removable.size === 0 || ctx.opts.refreshSkipped || ctx.ended.size === 0) return;
  const changeOf = new Map<string, ResourceChange>();
  for (const c of ctx.changes) changeOf.set(c.address, c);
  for (const name of [...ctx.ended.keys()].sort()) {
    const address = workloadAddress(name);
    const rec = workloadRecord(ctx, address);
    const spec = ctx.opts.destroy ? undefined : ctx.specs.get(name);
    // The record stays (in the spec, or cancelled by destroy) unless the workload left the spec.
    const recordStays = spec !== undefined || (ctx.opts.destroy === true && rec !== undefined);
    // When it ended, or when it started where the runtime does not say (it may then go sooner).
    const endOf = (i: WorkloadInstance): number => Date.parse(i.endedAt ?? i.startedAt) || 0;
    const exited = (ctx.ended.get(name) ?? []).filter((i) => i.state === 'exited');
    exited.sort((a, b) => endOf(b) - endOf(a) || (a.startedAt < b.startedAt ? 1 : a.startedAt > b.startedAt ? -1 : a.id.localeCompare(b.id)));
    const keep = new Set<string>();
    if (recordStays && exited.length > 0) {
      keep.add(providerKey((exited[0] as WorkloadInstance).provider, (exited[0] as WorkloadInstance).id));
      if (rec?.instanceId && rec.provider) keep.add(providerKey(rec.provider, rec.instanceId));
    }
    const cutoff = ctx.opts.now - EXITED_KEPT_MS;
    const gone = exited.filter((i) => removable.has(i.provider) && endOf(i) < cutoff && !keep.has(providerKey(i.provider, i.id)));
    if (gone.length === 0) continue;
    const ids: string[] = [];
    for (const i of gone) {
      const id = nextId(ctx, 'remove', name);
      ctx.actions.push({ id, kind: 'remove', address, deps: [], summary: `remove exited ${i.id} on ${i.node}`, workload: name, provider: i.provider, node: i.node, instanceId: i.id });
      ids.push(id);
    }
    const kept = recordStays ? exited.find((i) => keep.has(providerKey(i.provider, i.id))) : undefined;
    const text = `remove ${gone.length} instance${gone.length === 1 ? '' : 's'} that exited more than ${formatDuration(EXITED_KEPT_MS)} ago${kept ? ` (kept: the newest, ${kept.id} on ${kept.node})` : ''}`;
    const c = changeOf.get(address);
    if (c) {
      c.actions.push(...ids);
      c.reasons.push({ rule: 'cleanup', text });
      if (c.change === 'no-op') c.change = 'update';
    } else {
      const added: ResourceChange = { address, change: recordStays || rec ? 'update' : 'delete', reasons: [{ rule: 'cleanup', text: recordStays || rec ? text : `${text}: ${name} is in neither the spec nor the state` }], actions: ids, violations: [] };
      ctx.changes.push(added);
      changeOf.set(address, added);
    }
  }
}

function workloadRecord(ctx: Ctx, address: string): WorkloadRecord | undefined {
  const r = ctx.state.resources[address];
  return r?.type === 'workload' ? r : undefined;
}

/** Options for one workload: every pool it may use, every node with room or capacity to acquire. */
export function placementOptions(ctx: Pick<Ctx, 'fleet' | 'observed' | 'opts' | 'nodes' | 'free' | 'index' | 'reservedFor'>, w: WorkloadSpec, currentNode?: string): PlacementOption[] {
  const out: PlacementOption[] = [];
  for (const pool of ctx.fleet.pools) {
    if (w.pools && !w.pools.includes(pool.name)) continue;
    if (pool.gpuModel && w.gpuModel && pool.gpuModel !== w.gpuModel) continue;
    if (!ctx.opts.runtimeProviders.has(pool.provider)) continue;
    const gpuModel = pool.gpuModel ?? w.gpuModel ?? '';
    const zoneOk = (z: string | undefined): boolean => !pool.zones || (z !== undefined && pool.zones.includes(z));
    const nodeOption = (n: NodeInfo, price: number, available: boolean): PlacementOption => {
      const o: PlacementOption = { pool: pool.name, provider: n.provider, capacity: n.capacity, gpuModel: n.gpuModel, pricePerGpuHour: price, available, node: n.id };
      if (n.zone !== undefined) o.zone = n.zone;
      if (pool.maxPricePerHour !== undefined) o.maxPricePerHour = pool.maxPricePerHour;
      return o;
    };
    const capOk = (price: number): boolean => pool.maxPricePerHour === undefined || price <= pool.maxPricePerHour;
    // One best-fitting node per group of alike nodes (same zone, model, price).
    for (const g of ctx.index.groups(pool.name)) {
      if (gpuModel && g.gpuModel !== gpuModel) continue;
      // The node the workload runs on is its current placement, not an alternative to it.
      const fit = ctx.index.bestFit(g, w.gpus, currentNode);
      const key = fit ?? ctx.index.anyNode(g, currentNode);
      const n = key !== undefined ? ctx.nodes.get(key) : undefined;
      if (n) out.push(nodeOption(n, g.pricePerGpuHour, fit !== undefined && capOk(g.pricePerGpuHour)));
    }
    // Nodes kept for this very workload (its own lease, acquired before a crash).
    for (const k of ctx.reservedFor.get(w.name) ?? []) {
      const n = ctx.nodes.get(k);
      if (!n || n.provider !== pool.provider || n.capacity !== pool.capacity || !zoneOk(n.zone) || n.state !== 'ready') continue;
      if ((n.pool !== undefined && n.pool !== pool.name) || (gpuModel && n.gpuModel !== gpuModel)) continue;
      const price = pricePerGpuHourOf(n);
      out.push(nodeOption(n, price, (ctx.free.get(k) ?? 0) >= w.gpus && capOk(price)));
    }
    if (ctx.opts.marketProviders.has(pool.provider)) {
      for (const q of pricesOfProvider(ctx.observed, pool.provider)) {
        if (q.capacity !== pool.capacity || !zoneOk(q.zone)) continue;
        if (gpuModel && q.gpuModel !== gpuModel) continue;
        const o: PlacementOption = {
          pool: pool.name,
          provider: q.provider,
          capacity: q.capacity,
          gpuModel: q.gpuModel,
          pricePerGpuHour: q.pricePerGpuHour,
          available: q.available && (pool.maxPricePerHour === undefined || q.pricePerGpuHour <= pool.maxPricePerHour),
        };
        if (q.zone !== undefined) o.zone = q.zone;
        if (q.preemptionRatePerHour !== undefined) o.preemptionRatePerHour = q.preemptionRatePerHour;
        if (pool.maxPricePerHour !== undefined) o.maxPricePerHour = pool.maxPricePerHour;
        out.push(o);
      }
    }
  }
  return out;
}

// Per-observation indexes by provider, built once, so options are linear in the nodes of the
// workload's own pools rather than in every node of the fleet.
const nodeIndex = new WeakMap<Observed, Map<string, NodeInfo[]>>();
const priceIndex = new WeakMap<Observed, Map<string, Observed['prices']>>();

function groupBy<T extends { provider: string }>(items: readonly T[]): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const it of items) {
    const list = m.get(it.provider);
    if (list) list.push(it);
    else m.set(it.provider, [it]);
  }
  return m;
}

function nodesOfProvider(obs: Observed, provider: string): NodeInfo[] {
  let idx = nodeIndex.get(obs);
  if (!idx) nodeIndex.set(obs, (idx = groupBy(obs.nodes)));
  return idx.get(provider) ?? [];
}

function pricesOfProvider(obs: Observed, provider: string): Observed['prices'] {
  let idx = priceIndex.get(obs);
  if (!idx) priceIndex.set(obs, (idx = groupBy(obs.prices)));
  return idx.get(provider) ?? [];
}

/** Every node eligible for each pool: ready, no notice, not reserved for another workload. */
function buildIndex(ctx: Ctx): FreeGpuIndex {
  const index = new FreeGpuIndex(ctx.free);
  for (const pool of ctx.fleet.pools) {
    if (!ctx.opts.runtimeProviders.has(pool.provider)) continue;
    for (const n of nodesOfProvider(ctx.observed, pool.provider)) {
      if (n.capacity !== pool.capacity || n.state !== 'ready') continue;
      if (pool.zones && (n.zone === undefined || !pool.zones.includes(n.zone))) continue;
      if (ctx.opts.marketProviders.has(pool.provider) && n.pool !== undefined && n.pool !== pool.name) continue;
      if (pool.gpuModel && n.gpuModel !== pool.gpuModel) continue;
      const k = nodeKey(n.provider, n.id);
      if ((ctx.notices.get(k) ?? []).length > 0 || ctx.reserved.has(k)) continue;
      index.add(pool.name, k, n, pricePerGpuHourOf(n));
    }
  }
  return index;
}

function placementOf(o: PlacementOption): PlacementRef {
  const p: PlacementRef = { provider: o.provider, capacity: o.capacity, pool: o.pool, pricePerGpuHour: o.pricePerGpuHour };
  if (o.node !== undefined) p.node = o.node;
  if (o.zone !== undefined) p.zone = o.zone;
  return p;
}

function describe(p: { pool?: string; zone?: string; capacity?: CapacityType; node?: string } | undefined): string {
  if (!p) return 'nowhere';
  const where = `${p.pool ?? '?'}${p.zone ? `/${p.zone}` : ''}`;
  return `${where} (${p.capacity ?? '?'})${p.node ? ` on ${p.node}` : ''}`;
}

interface WorkloadResult {
  before: number;
  after: number;
}

/** Where a workload stands before the decision: its running instance, record, node and what ended. */
interface Situation {
  name: string;
  address: string;
  spec: WorkloadSpec | undefined;
  rec: WorkloadRecord | undefined;
  primary: WorkloadInstance | undefined;
  node: NodeInfo | undefined;
  evicted: boolean;
  adoptIds: string[];
  /** Price per hour it costs now. */
  before: number;
}

function planWorkload(ctx: Ctx, name: string, spec: WorkloadSpec | undefined, instances: WorkloadInstance[]): WorkloadResult {
  const address = workloadAddress(name);
  const rec = workloadRecord(ctx, address);
  // A provider that could not be read: what runs there is unknown, so nothing is stopped, restarted
  // or recorded for it.
  if (rec?.provider && ctx.unknownProviders.has(rec.provider) && instances.length === 0) {
    ctx.warnings.push(`${address}: ${rec.provider} could not be read; ${name} is left as it is`);
    ctx.changes.push({ address, change: 'no-op', reasons: [{ rule: 'refresh', text: `${rec.provider} could not be read: left as it is` }], actions: [], violations: [] });
    return { before: 0, after: 0 };
  }
  // Which running instance is "the" workload; any other is a duplicate to stop.
  const sorted = [...instances].sort((a, b) => (a.startedAt < b.startedAt ? 1 : a.startedAt > b.startedAt ? -1 : a.id.localeCompare(b.id)));
  let primary = rec?.instanceId ? sorted.find((i) => i.id === rec.instanceId) : undefined;
  if (!primary && sorted.length > 0) {
    primary = sorted[0];
  }
  const duplicates = sorted.filter((i) => i !== primary);
  for (const d of duplicates) {
    ctx.drift.push({ address, kind: 'duplicate', message: `a second instance ${d.id} runs on ${d.node}; it will be stopped` });
    ctx.actions.push({
      id: nextId(ctx, 'stop', name),
      kind: 'stop',
      address,
      deps: [],
      summary: `stop duplicate ${d.id} on ${d.node}`,
      workload: name,
      provider: d.provider,
      node: d.node,
      instanceId: d.id,
      graceMs: spec?.checkpoint?.stopGraceMs ?? 30_000,
      duplicate: true,
    });
  }
  const adoptIds: string[] = [];
  if (primary && rec?.instanceId !== primary.id) {
    ctx.drift.push({
      address,
      kind: rec?.instanceId ? 'moved' : 'unmanaged',
      message: `found running as ${primary.id} on ${primary.node} with spotfleet's labels; recording it in state`,
    });
    const id = nextId(ctx, 'adopt', name);
    ctx.actions.push({ id, kind: 'adopt', address, deps: [], summary: `record ${primary.id} on ${primary.node}`, record: 'workload', provider: primary.provider, node: primary.node, instanceId: primary.id });
    adoptIds.push(id);
  }

  const node = primary ? ctx.nodes.get(nodeKey(primary.provider, primary.node)) : undefined;
  const notices = primary ? ctx.notices.get(nodeKey(primary.provider, primary.node)) ?? [] : [];
  // An early warning (rebalance, maintenance) is not an eviction: watch answers it on its own.
  const evicting = notices.filter((x) => noticeEvicts(x, name));
  const evicted = primary !== undefined && (isDead(node) || evicting.length > 0);
  if (primary && evicted) {
    const n = evicting[0];
    ctx.drift.push({ address, kind: 'evicted', message: n ? `node ${primary.node} has a ${n.kind} notice (${n.source}${n.action ? ` ${n.action}` : ''}), deadline ${n.deadline}` : `node ${primary.node} is gone` });
  }
  const curPrice = node ? pricePerGpuHourOf(node) : rec?.pricePerGpuHour ?? 0;
  const before = primary ? curPrice * primary.gpus : 0;
  if (primary?.provider && node?.leaseId) ctx.leasesInUse.add(providerKey(primary.provider, node.leaseId));
  const sit: Situation = { name, address, spec, rec, primary, node, evicted, adoptIds, before };

  // The recorded instance no longer runs: find out how it ended, and record it.
  const end = primary ? undefined : endOfRecorded(ctx, sit);
  if (!spec) return planRemoval(ctx, sit, end);
  if (primary) return planRunning(ctx, sit, spec);
  return planNotRunning(ctx, sit, spec, end);
}

interface Ended {
  verdict: EndVerdict;
  exit: ExitRecord;
  /** The record action that writes the end (starts depend on it). */
  recordId?: string;
}

/** How the workload's recorded instance ended, when the record says it runs but it does not. */
function endOfRecorded(ctx: Ctx, sit: Situation): Ended | undefined {
  const rec = sit.rec;
  if (!rec?.instanceId || !isActive(rec.phase) || !rec.provider || !rec.node) return undefined;
  if (ctx.opts.refreshSkipped) return undefined;
  const inst = (ctx.ended.get(sit.name) ?? []).find((i) => i.id === rec.instanceId && i.provider === rec.provider);
  const k = nodeKey(rec.provider, rec.node);
  const verdict = judgeEnd({
    instance: inst,
    node: ctx.nodes.get(k),
    noticed: (ctx.notices.get(k) ?? []).length > 0,
    stoppedByUs: stoppedBySpotfleet(rec, rec.instanceId, ctx.state.pending),
  });
  const at = inst?.endedAt ? Date.parse(inst.endedAt) || ctx.opts.now : ctx.opts.now;
  const exit: ExitRecord = { instanceId: rec.instanceId, node: rec.node, provider: rec.provider, at, outcome: verdict };
  if (inst?.exitCode !== undefined) exit.code = inst.exitCode;
  const code = exit.code !== undefined ? ` with code ${exit.code}` : '';
  const text: Record<EndVerdict, string> = {
    succeeded: `completed: ${rec.instanceId} on ${rec.node} exited${code}`,
    failed: `failed: ${rec.instanceId} on ${rec.node} exited${code}`,
    preempted: inst ? `${rec.instanceId} on ${rec.node} was preempted (exited${code})` : `${rec.instanceId} on ${rec.node} is gone (node ${ctx.nodes.has(k) ? 'still there' : 'gone'})`,
    stopped: `${rec.instanceId} on ${rec.node} was stopped by an interrupted spotfleet run`,
  };
  ctx.drift.push({ address: sit.address, kind: verdict === 'succeeded' || verdict === 'failed' ? 'exited' : 'died', message: text[verdict] });
  return { verdict, exit };
}

function pushRecord(ctx: Ctx, sit: Situation, r: Omit<RecordAction, 'id' | 'kind' | 'address' | 'deps' | 'summary' | 'workload'>, deps: string[] = []): string {
  const id = nextId(ctx, 'record', sit.name);
  ctx.actions.push({ id, kind: 'record', address: sit.address, deps, summary: `record ${r.phase}: ${r.message}`, workload: sit.name, ...r });
  return id;
}

/** Removed from the spec (or destroy): checkpoint and stop; destroy keeps the record, cancelled. */
function planRemoval(ctx: Ctx, sit: Situation, end: Ended | undefined): WorkloadResult {
  const { name, address, rec, primary, node, before } = sit;
  const destroy = ctx.opts.destroy === true;
  if (!primary) {
    if (!rec) return { before: 0, after: 0 };
    const ids: string[] = [];
    if (end) {
      // Record how it ended first: that closes its ledger segment at the exit time.
      const phase: WorkloadPhase = end.verdict === 'succeeded' ? 'succeeded' : end.verdict === 'failed' ? 'failed' : 'cancelled';
      ids.push(pushRecord(ctx, sit, { phase, exit: end.exit, expectInstance: end.exit.instanceId, message: `${end.verdict} before it was ${destroy ? 'destroyed' : 'removed'}` }));
    }
    if (destroy) {
      if (!end && !isTerminal(rec.phase)) ids.push(pushRecord(ctx, sit, { phase: 'cancelled', clearMove: true, message: 'destroy: it will not run until the next apply' }));
      if (ids.length > 0) ctx.changes.push({ address, change: 'no-op', reasons: [{ rule: 'spec', text: 'destroy: not running; recorded as cancelled' }], actions: ids, violations: [] });
      return { before: 0, after: 0 };
    }
    ids.push(nextId(ctx, 'forget', name));
    ctx.actions.push({ id: ids[ids.length - 1] as string, kind: 'forget', address, deps: ids.slice(0, -1), summary: 'forget (not running)' });
    ctx.changes.push({ address, change: 'delete', reasons: [{ rule: 'spec', text: 'no longer in the spec and not running: forget it' }], actions: ids, violations: [] });
    return { before: 0, after: 0 };
  }
  const ids = checkpointAndStop(ctx, name, primary, undefined, sit.adoptIds, destroy ? 'cancel' : 'remove', sit.evicted);
  ctx.changes.push({
    address,
    change: 'delete',
    before: { node: primary.node, capacity: node?.capacity ?? rec?.capacity ?? 'on-demand', ...(rec?.pool ? { pool: rec.pool } : {}), pricePerHour: roundUsd(before) },
    reasons: [{ rule: 'spec', text: destroy ? 'destroy: checkpoint and stop' : 'removed from the spec: checkpoint and stop' }],
    money: { nowPerHour: roundUsd(before), afterPerHour: 0, migrationOverheadUsd: 0 },
    actions: ids,
    violations: [],
  });
  if (node?.leaseId) ctx.leasesInUse.delete(providerKey(primary.provider, node.leaseId));
  return { before, after: 0 };
}

/** Not running: record how the last instance ended, then start it again or leave it be. */
function planNotRunning(ctx: Ctx, sit: Situation, spec: WorkloadSpec, end: Ended | undefined): WorkloadResult {
  const { address, rec } = sit;
  const now = ctx.opts.now;
  const startDeps: string[] = [];
  let restart: StartAction['restart'];
  let fresh = false;
  if (end) {
    const next = afterEnd(spec, end.verdict, rec?.failures ?? 0, end.exit);
    if (next.phase === 'succeeded' || next.phase === 'failed') {
      const msg = next.phase === 'succeeded' ? `succeeded (exit ${end.exit.code ?? 0}); it does not run again unless its spec changes or \`spotfleet rerun ${address}\`` : `failed: ${next.why}`;
      const id = pushRecord(ctx, sit, { phase: next.phase, exit: end.exit, expectInstance: end.exit.instanceId, clearMove: true, ...(end.verdict === 'failed' ? { countFailure: true } : {}), message: msg });
      ctx.changes.push({ address, change: 'no-op', reasons: [{ rule: 'lifecycle', text: msg }], actions: [id], violations: [] });
      return { before: 0, after: 0 };
    }
    const waiting = next.restartAt > now;
    const reason: PendingReason = waiting
      ? { code: 'backoff', message: `${next.why}; restarts after back-off`, since: end.exit.at, until: next.restartAt }
      : { code: 'no-capacity', message: `${next.why}; restarting`, since: end.exit.at };
    end.recordId = pushRecord(ctx, sit, {
      phase: 'recovering',
      exit: end.exit,
      expectInstance: end.exit.instanceId,
      pendingReason: reason,
      ...(next.countsAsFailure ? { countFailure: true } : end.verdict === 'preempted' ? { countRecovery: true } : {}),
      message: next.why,
    });
    if (waiting) {
      ctx.changes.push({ address, change: 'pending', reasons: [{ rule: 'lifecycle', text: `${next.why}: restarts in ${formatDuration(Math.ceil((next.restartAt - now) / 1000) * 1000)} (back-off)` }], actions: [end.recordId], violations: [] });
      return { before: 0, after: 0 };
    }
    startDeps.push(end.recordId);
    restart = next.countsAsFailure ? 'failure' : 'preemption';
  } else if (rec && isTerminal(rec.phase) && rec.phase !== 'cancelled') {
    if (rec.specHash === spec.specHash) {
      const when = rec.finishedAt ? ` at ${new Date(rec.finishedAt).toISOString()}` : '';
      const text = rec.phase === 'succeeded'
        ? `succeeded${when} (exit ${rec.lastExit?.code ?? 0}); it does not run again unless its spec changes or \`spotfleet rerun ${address}\``
        : `failed${when}${rec.lastExit?.code !== undefined ? ` (exit ${rec.lastExit.code})` : ''} after ${rec.failures} failure(s); \`spotfleet rerun ${address}\` runs it again`;
      ctx.changes.push({ address, change: 'no-op', reasons: [{ rule: 'lifecycle', text }], actions: [], violations: [] });
      return { before: 0, after: 0 };
    }
    // The spec changed: a new run. A finished job starts from scratch; a failed one resumes.
    restart = 'rerun';
    fresh = rec.phase === 'succeeded';
  } else if (rec?.phase === 'recovering' && rec.pendingReason?.until !== undefined && rec.pendingReason.until > now) {
    ctx.changes.push({ address, change: 'pending', reasons: [{ rule: 'lifecycle', text: `${rec.pendingReason.message}: restarts in ${formatDuration(Math.ceil((rec.pendingReason.until - now) / 1000) * 1000)} (back-off)` }], actions: [], violations: [] });
    return { before: 0, after: 0 };
  }
  if (rec?.startFresh) fresh = true;
  return planPlacement(ctx, sit, spec, { startDeps, ...(restart ? { restart } : {}), fresh });
}

/** Running: stay, move (evicted or because it pays), park, or restart for a changed spec. */
function planRunning(ctx: Ctx, sit: Situation, spec: WorkloadSpec): WorkloadResult {
  return planPlacement(ctx, sit, spec, { startDeps: [], fresh: false });
}

interface PlacementExtras {
  startDeps: string[];
  restart?: StartAction['restart'];
  /** Start from scratch (a finished job run again), not from a checkpoint. */
  fresh: boolean;
}

function planPlacement(ctx: Ctx, sit: Situation, spec: WorkloadSpec, extras: PlacementExtras): WorkloadResult {
  const { name, rec, primary, node, evicted } = sit;
  const now = ctx.opts.now;
  const specChanged = primary !== undefined && primary.specHash !== undefined && primary.specHash !== spec.specHash;
  // A move in flight whose source no longer runs (stopped, or a crash between the stop and its
  // record): finish it, to its target or where its fallback rule allows.
  const inFlight = !primary && rec?.move ? rec.move : undefined;
  // Built field by field (no conditional spreads): this runs for every running workload.
  let current: CurrentPlacement | undefined;
  if (primary && !specChanged) {
    current = {
      provider: primary.provider,
      capacity: node?.capacity ?? rec?.capacity ?? 'on-demand',
      node: primary.node,
      pricePerGpuHour: node ? pricePerGpuHourOf(node) : rec?.pricePerGpuHour ?? 0,
      since: rec?.since ?? Date.parse(primary.startedAt),
    };
    const pool = rec?.pool ?? node?.pool;
    if (pool) current.pool = pool;
    if (node?.zone) current.zone = node.zone;
    if (evicted) current.evicted = true;
  } else if (inFlight?.from.node) {
    current = {
      provider: inFlight.from.provider,
      capacity: inFlight.from.capacity ?? 'spot',
      node: inFlight.from.node,
      pricePerGpuHour: rec?.pricePerGpuHour ?? 0,
      since: rec?.since ?? now,
      ...(inFlight.from.pool ? { pool: inFlight.from.pool } : {}),
      ...(inFlight.from.zone ? { zone: inFlight.from.zone } : {}),
      // The source no longer runs it: place it as the move's reason demands (fallback for an eviction).
      evicted: true,
    };
  }
  if (primary && specChanged) {
    // The workload will restart anyway; its own GPUs count as free for its new placement.
    const k = nodeKey(primary.provider, primary.node);
    ctx.index.setFree(k, (ctx.free.get(k) ?? 0) + primary.gpus);
  }
  const doneMs = (rec?.doneMs ?? 0) + (primary && rec?.since ? Math.max(0, now - rec.since) : 0);
  const history: WorkloadDecisionInput['history'] = { preemptions: rec?.preemptions ?? [] };
  if (rec?.lastMoveAt !== undefined) history.lastMoveAt = rec.lastMoveAt;
  if (rec?.pinnedOnDemandUntil !== undefined) history.pinnedOnDemandUntil = rec.pinnedOnDemandUntil;
  if (rec?.pinnedReason !== undefined) history.pinnedReason = rec.pinnedReason;
  const progress: WorkloadDecisionInput['progress'] = rec?.lastCheckpoint ? { doneMs, lastCheckpointAt: Date.parse(rec.lastCheckpoint.mtime) } : { doneMs };
  const input: WorkloadDecisionInput = {
    workload: spec,
    options: withPoolHistory(placementOptions(ctx, spec, primary && !specChanged ? nodeKey(primary.provider, primary.node) : undefined), ctx.state.poolHistory, now),
    history,
    progress,
    overhead: rec?.measuredOverhead ?? spec.overhead ?? DEFAULT_OVERHEAD,
  };
  if (ctx.opts.zoneStats) input.zoneStats = ctx.opts.zoneStats;
  // The checkpoint's size as measured: the newest verified checkpoint's (a drill records one, and so
  // does every move and stop). It prices moves across regions in place of the spec's sizeGB.
  const measuredBytes = rec?.lastCheckpoint?.sizeBytes;
  if (measuredBytes !== undefined && measuredBytes > 0) input.checkpointSizeGB = measuredBytes / 1e9;
  // Not running, its checkpoint is where it last ran: a start in another region pays its egress.
  // (Running, the decision takes the current placement's region; a checkpoint kept in the
  // controller's archive has no cloud region, so no egress is priced from it.)
  if (!current && rec?.lastCheckpoint && rec.provider) {
    const holder = ctx.nodes.get(nodeKey(rec.provider, rec.lastCheckpoint.node));
    const region = holder?.zone !== undefined ? optionRegion({ zone: holder.zone }) : undefined;
    if (region) input.checkpointRegion = region.region;
  }
  if (current) input.current = current;
  let decision = decideWorkload(input, { now, thresholds: ctx.fleet.defaults.thresholds, ...(ctx.opts.policies !== undefined ? { policies: ctx.opts.policies } : {}) });
  if (inFlight) decision = finishRecordedMove(inFlight, input.options, decision);
  else if (current?.evicted) decision = usePreparedTarget(rec?.prepared, input.options, decision, now);
  if (specChanged) decision.reasons.unshift({ rule: 'spec', text: 'the workload spec changed (image, command, env, GPUs or checkpoint): restart from its checkpoint' });
  ctx.opts.captureDecisions?.set(name, { input, decision });
  // Plain data from here on: lazily formatted reasons hold on to decide's inputs (every option of
  // every workload), which would keep a large plan's whole working set alive.
  // (Built without spreads: this runs for every reason of every workload.)
  decision.reasons = decision.reasons.map((r) => (r.numbers ? { rule: r.rule, text: r.text, numbers: r.numbers } : { rule: r.rule, text: r.text }));
  if (!primary && (decision.action === 'none' || decision.action === 'wait')) return planPending(ctx, sit, spec, decision, input, extras);
  return applyDecision(ctx, spec, sit, decision, specChanged, extras);
}

/**
 * A recorded move whose source is stopped goes to its recorded target when that still has room;
 * otherwise the decision (made as for an eviction, so the fallback rule holds) stands.
 */
function finishRecordedMove(move: MoveInFlight, options: readonly PlacementOption[], decision: WorkloadDecision): WorkloadDecision {
  const to = move.to;
  const same = options.find((o) => o.available && o.provider === to.provider && (to.node !== undefined ? o.node === to.node : o.pool === to.pool && (to.zone === undefined || o.zone === to.zone)));
  const reasons = [{ rule: 'migration', text: `finishing the recorded move from ${move.from.node ?? '?'} (${move.reason})` }, ...decision.reasons];
  if (same) return { ...decision, action: 'place', target: same, reasons: [...reasons, { rule: 'migration', text: `to its recorded target ${to.pool ?? to.provider}${to.node ? ` on ${to.node}` : ''}` }] };
  return { ...decision, reasons: [...reasons, { rule: 'migration', text: `its recorded target ${to.pool ?? to.provider}${to.node ? ` on ${to.node}` : ''} has no room now: ${decision.target ? 'going where the fallback rule allows' : 'waiting for capacity'}` }] };
}

/** A workload that should run and cannot now: a pending change, with why, recorded in state. */
function planPending(ctx: Ctx, sit: Situation, spec: WorkloadSpec, decision: WorkloadDecision, input: WorkloadDecisionInput, extras: PlacementExtras): WorkloadResult {
  const { address, rec } = sit;
  const code: PendingReason['code'] = ctx.opts.refreshSkipped ? 'refresh-skipped' : decision.action === 'wait' ? 'waiting-for-spot' : 'no-capacity';
  const misses = code === 'no-capacity' ? nearestMisses(ctx, spec, input.options) : [];
  const message = code === 'no-capacity' ? `no capacity fits it: ${misses.join('; ')}` : decision.reasons.at(-1)?.text ?? 'waiting';
  const reasons = [...decision.reasons, ...(code === 'no-capacity' ? misses.map((m) => ({ rule: 'placement', text: m })) : [])];
  const ids: string[] = [...extras.startDeps];
  const recorded = rec?.pendingReason;
  const phase: WorkloadPhase = rec?.phase === 'recovering' || rec?.phase === 'migrating' ? rec.phase : 'pending';
  if (!ctx.opts.refreshSkipped && (!rec || rec.phase !== phase || recorded?.code !== code || recorded.message !== message)) {
    ids.push(pushRecord(ctx, sit, { phase, pendingReason: { code, message, since: recorded?.code === code ? recorded.since : ctx.opts.now }, message }, [...extras.startDeps]));
  }
  ctx.warnings.push(`${address}: cannot run now: ${message}`);
  ctx.changes.push({ address, change: 'pending', reasons, money: decision.money, actions: ids, violations: decision.violations });
  return { before: 0, after: 0 };
}

/** For each pool the workload may use, the closest it came to fitting: what a user must change. */
function nearestMisses(ctx: Ctx, spec: WorkloadSpec, options: readonly PlacementOption[]): string[] {
  const out: string[] = [];
  for (const pool of ctx.fleet.pools) {
    if (spec.pools && !spec.pools.includes(pool.name)) continue;
    if (pool.gpuModel && spec.gpuModel && pool.gpuModel !== spec.gpuModel) {
      out.push(`pool ${pool.name}: has ${pool.gpuModel}, the workload needs ${spec.gpuModel}`);
      continue;
    }
    if (!ctx.opts.runtimeProviders.has(pool.provider)) {
      out.push(`pool ${pool.name}: provider ${pool.provider} cannot run workloads`);
      continue;
    }
    if (spec.capacity !== 'auto' && spec.capacity !== pool.capacity) {
      out.push(`pool ${pool.name}: ${pool.capacity}, the workload asks for ${spec.capacity}`);
      continue;
    }
    const mine = options.filter((o) => o.pool === pool.name);
    if (mine.length === 0) {
      out.push(`pool ${pool.name}: no ready node${ctx.opts.marketProviders.has(pool.provider) ? ' and no capacity for sale' : ''}`);
      continue;
    }
    const capped = mine.filter((o) => o.maxPricePerHour !== undefined && o.pricePerGpuHour > o.maxPricePerHour);
    if (capped.length === mine.length) {
      const cheapest = Math.min(...capped.map((o) => o.pricePerGpuHour));
      out.push(`pool ${pool.name}: cheapest ${formatUsd(cheapest)}/GPU-h is over maxPricePerHour ${formatUsd(pool.maxPricePerHour ?? 0)}`);
      continue;
    }
    const nodes = mine.filter((o) => o.node !== undefined);
    if (nodes.length > 0 && nodes.length === mine.length) {
      let most = 0;
      let where = '';
      for (const o of nodes) {
        const f = ctx.free.get(nodeKey(o.provider, o.node as string)) ?? 0;
        if (f > most || where === '') [most, where] = [f, o.node as string];
      }
      out.push(`pool ${pool.name}: needs ${spec.gpus} free GPU(s), the most free is ${Math.max(0, most)} on ${where}`);
      continue;
    }
    if (mine.every((o) => !o.available)) out.push(`pool ${pool.name}: no capacity available now`);
    else out.push(`pool ${pool.name}: not chosen (${mine.length} option(s))`);
  }
  if (out.length === 0) out.push('no pool allows it');
  return out;
}

type StopMode = 'move' | 'park' | 'remove' | 'cancel';

function checkpointAndStop(ctx: Ctx, name: string, inst: WorkloadInstance, spec: WorkloadSpec | undefined, deps: string[], mode: StopMode, evicted: boolean, move?: StopAction['move']): string[] {
  const address = workloadAddress(name);
  const ids: string[] = [];
  const graceMs = spec?.checkpoint?.stopGraceMs ?? 30_000;
  let stopDeps = [...deps];
  const nodeDead = isDead(ctx.nodes.get(nodeKey(inst.provider, inst.node)));
  if (!nodeDead) {
    const notice = (ctx.notices.get(nodeKey(inst.provider, inst.node)) ?? []).find((x) => noticeEvicts(x, name));
    let waitMs = ctx.opts.checkpointWaitMs ?? 120_000;
    if (evicted && notice) waitMs = Math.max(5_000, Math.min(waitMs, Date.parse(notice.deadline) - ctx.opts.now - graceMs));
    const cid = nextId(ctx, 'checkpoint', name);
    ctx.actions.push({ id: cid, kind: 'checkpoint', address, deps: [...deps], summary: `checkpoint on ${inst.node}`, workload: name, provider: inst.provider, node: inst.node, instanceId: inst.id, waitMs });
    ids.push(cid);
    stopDeps = [cid];
  }
  const sid = nextId(ctx, 'stop', name);
  ctx.actions.push({
    id: sid, kind: 'stop', address, deps: stopDeps, summary: `stop ${inst.id} on ${inst.node}`, workload: name, provider: inst.provider, node: inst.node, instanceId: inst.id, graceMs,
    ...(mode === 'remove' ? { removing: true } : {}),
    ...(mode === 'cancel' ? { cancel: true } : {}),
    ...(move ? { move } : {}),
  });
  ids.push(sid);
  const k = nodeKey(inst.provider, inst.node);
  pushTo(ctx.stopsOnNode, k, sid);
  // Stopped for good on a node whose lease goes back: keep its checkpoint in the archive first.
  const contract = spec?.checkpoint ?? ctx.specs.get(name)?.checkpoint;
  const archive = ctx.nodes.get(nodeKey(ARCHIVE_PROVIDER, ARCHIVE_NODE));
  if ((mode === 'cancel' || mode === 'park') && !nodeDead && contract && !contract.shared && archive && ctx.opts.archivable?.has(k)) {
    const tid = nextId(ctx, 'transfer', name);
    ctx.actions.push({ id: tid, kind: 'transfer', address, deps: [sid], summary: `keep checkpoint: ${inst.node} → the controller's archive`, workload: name, from: { provider: inst.provider, node: inst.node }, to: { provider: ARCHIVE_PROVIDER, node: ARCHIVE_NODE, capacity: 'on-demand', pricePerGpuHour: 0 } });
    ids.push(tid);
    pushTo(ctx.stopsOnNode, k, tid);
  }
  return ids;
}

function applyDecision(ctx: Ctx, spec: WorkloadSpec, sit: Situation, decision: WorkloadDecision, specChanged: boolean, extras: PlacementExtras): WorkloadResult {
  const { name, address, rec, primary, node, evicted, adoptIds, before } = sit;
  // The views and changes below are built field by field, in the order the plan file shows them:
  // conditional spreads cost a slow copy per object, and this runs for every workload.
  let beforeView: NonNullable<ResourceChange['before']> | undefined;
  if (primary) {
    const pool = rec?.pool ?? node?.pool;
    beforeView = { node: primary.node, capacity: node?.capacity ?? rec?.capacity ?? 'on-demand' };
    if (pool) beforeView.pool = pool;
    if (node?.zone) beforeView.zone = node.zone;
    beforeView.pricePerHour = roundUsd(before);
  }
  const base = { address, reasons: decision.reasons, money: decision.money, violations: decision.violations };
  const stay = (decision.action === 'stay' || (decision.action === 'none' && primary && !evicted)) && !specChanged;
  if (primary && stay) {
    const ids = [...adoptIds];
    // A move whose source still runs and that the plan no longer makes (a crash before the stop): over.
    if (rec?.move) ids.push(pushRecord(ctx, sit, { phase: 'running', clearMove: true, message: 'the recorded move is not needed any more' }, [...adoptIds]));
    const change = { address, reasons: base.reasons, money: base.money, violations: base.violations, change: 'no-op' } as ResourceChange;
    if (beforeView) {
      change.before = beforeView;
      change.after = beforeView;
    }
    change.actions = ids;
    ctx.changes.push(change);
    return { before, after: before };
  }
  if (primary && (decision.action === 'wait' || decision.action === 'none')) {
    // Park: keep the checkpoint, stop the workload; a later reconcile places it again.
    const ids = checkpointAndStop(ctx, name, primary, spec, adoptIds, 'park', evicted);
    if (node?.leaseId) ctx.leasesInUse.delete(providerKey(primary.provider, node.leaseId));
    ctx.changes.push({ ...base, change: 'update', ...(beforeView ? { before: beforeView } : {}), actions: ids });
    return { before, after: 0 };
  }
  const target = decision.target;
  if (!target) {
    ctx.changes.push({ ...base, change: 'no-op', actions: [] });
    return { before, after: before };
  }
  const gen = (rec?.generation ?? 0) + 1;
  // Keys name the lifecycle too: a workload created again never reuses an earlier one's keys.
  const incarnation = rec?.incarnation ?? `s${ctx.state.serial}`;
  const ids: string[] = [...adoptIds, ...extras.startDeps];
  const startDeps: string[] = [...adoptIds, ...extras.startDeps];
  const placement = placementOf(target);
  let acquireId: string | undefined;
  if (!target.node) {
    acquireId = nextId(ctx, 'acquire', name);
    const pool = ctx.fleet.pools.find((p) => p.name === target.pool);
    const key = `${ctx.fleet.name}:${name}:${incarnation}:g${gen}`;
    // On a marketplace that takes bids, a spot acquisition bids spot + margin, capped by the pool
    // and by on-demand; the plan shows the bid and what it will pay.
    let bid: number | undefined;
    const leaseReasons: ResourceChange['reasons'] = [{ rule: 'placement', text: `capacity for ${address}` }];
    if (target.capacity === 'spot' && ctx.opts.bidProviders?.has(target.provider)) {
      const od = onDemandPricePerGpuHour(ctx.observed, target.gpuModel);
      const b = computeBid({ spotPricePerGpuHour: target.pricePerGpuHour, ...(pool?.maxPricePerHour !== undefined ? { maxPricePerGpuHour: pool.maxPricePerHour } : {}), ...(od !== undefined ? { onDemandPricePerGpuHour: od } : {}) });
      leaseReasons.push(b.reason);
      if (b.bid) bid = b.pricePerGpuHour;
    }
    const paidPerGpuHour = bid ?? target.pricePerGpuHour;
    const leaseAddr = leaseAddressForKey(target.pool, key, `new-${name}`);
    ctx.actions.push({
      id: acquireId,
      kind: 'acquire',
      address: leaseAddr,
      deps: [],
      summary: `acquire ${spec.gpus}×${target.gpuModel} ${target.capacity} in ${target.pool}${target.zone ? `/${target.zone}` : ''} at $${roundUsd(paidPerGpuHour)}/GPU-h${bid !== undefined ? ` (bid; spot $${roundUsd(target.pricePerGpuHour)})` : ''}`,
      provider: target.provider,
      request: {
        pool: target.pool,
        capacity: target.capacity,
        gpuModel: target.gpuModel,
        gpus: spec.gpus,
        ...(target.zone !== undefined ? { zone: target.zone } : {}),
        ...(pool?.maxPricePerHour !== undefined ? { maxPricePerGpuHour: pool.maxPricePerHour } : {}),
        ...(bid !== undefined ? { bidPerGpuHour: bid } : {}),
        idempotencyKey: key,
      },
      forWorkload: name,
    });
    ctx.changes.push({
      address: leaseAddr,
      change: 'create',
      after: { capacity: target.capacity, pool: target.pool, ...(target.zone ? { zone: target.zone } : {}), pricePerHour: roundUsd(paidPerGpuHour * spec.gpus) },
      reasons: leaseReasons,
      actions: [acquireId],
      violations: [],
    });
    placement.leaseAction = acquireId;
    placement.pricePerGpuHour = paidPerGpuHour;
    startDeps.push(acquireId);
  } else {
    const k = nodeKey(target.provider, target.node);
    ctx.index.setFree(k, (ctx.free.get(k) ?? 0) - spec.gpus);
    const tn = ctx.nodes.get(k);
    if (tn?.leaseId) ctx.leasesInUse.add(providerKey(tn.provider, tn.leaseId));
  }
  const hasCheckpoint = Boolean(spec.checkpoint) && !extras.fresh && (primary !== undefined || rec?.lastCheckpoint !== undefined || rec?.node !== undefined);
  let fromNode: { provider: string; node: string } | undefined;
  if (primary) {
    const move: StopAction['move'] = {
      from: { provider: primary.provider, node: primary.node, instanceId: primary.id, ...(rec?.pool ?? node?.pool ? { pool: (rec?.pool ?? node?.pool) as string } : {}), capacity: node?.capacity ?? rec?.capacity ?? 'on-demand', ...(node?.zone ? { zone: node.zone } : {}) },
      to: { provider: target.provider, pool: target.pool, capacity: target.capacity, ...(target.node ? { node: target.node } : {}), ...(target.zone ? { zone: target.zone } : {}) },
      reason: specChanged ? 'spec changed' : decision.reasons.at(-1)?.text ?? 'move',
      evicted,
      fallback: spec.fallback.to,
    };
    const notice = (ctx.notices.get(nodeKey(primary.provider, primary.node)) ?? []).find((x) => noticeEvicts(x, name));
    if (notice) move.deadline = Date.parse(notice.deadline);
    const stopIds = checkpointAndStop(ctx, name, primary, spec, adoptIds, 'move', evicted, move);
    ids.push(...stopIds);
    startDeps.push(stopIds[stopIds.length - 1] as string);
    fromNode = { provider: primary.provider, node: primary.node };
    if (node?.leaseId) ctx.leasesInUse.delete(providerKey(primary.provider, node.leaseId));
  } else if (!extras.fresh && (rec?.lastCheckpoint || rec?.node)) {
    // Not running: resume from the last recorded checkpoint, or from whatever the node it last ran
    // on still holds (it may have died at a notice's deadline before anyone recorded a checkpoint).
    const at = rec.lastCheckpoint?.node ?? (rec.node);
    const src = ((at !== undefined ? ctx.nodesById.get(at) : undefined) ?? []).find((n) => rec.provider === undefined || rec.lastCheckpoint !== undefined || n.provider === rec.provider);
    if (src) fromNode = { provider: src.provider, node: src.id };
    else if (rec.lastCheckpoint) ctx.warnings.push(`${address}: its newest checkpoint was on ${at}, which is gone; it starts from whatever checkpoint the target has`);
  }
  const sameNode = fromNode !== undefined && target.node === fromNode.node && target.provider === fromNode.provider;
  if (hasCheckpoint && fromNode && !sameNode && !spec.checkpoint?.shared) {
    const tid = nextId(ctx, 'transfer', name);
    const deps = [...startDeps];
    ctx.actions.push({ id: tid, kind: 'transfer', address, deps, summary: `transfer checkpoint ${fromNode.node} → ${target.node ?? `new ${target.pool} node`}`, workload: name, from: fromNode, to: placement });
    // The source node (and its lease) must outlive the copy of the checkpoint.
    const fk = nodeKey(fromNode.provider, fromNode.node);
    pushTo(ctx.stopsOnNode, fk, tid);
    ids.push(tid);
    startDeps.length = 0;
    startDeps.push(tid);
  }
  const sid = nextId(ctx, 'start', name);
  const inFlight = !primary && rec?.move !== undefined;
  ctx.actions.push({
    id: sid,
    kind: 'start',
    address,
    deps: [...new Set(startDeps)],
    summary: `start on ${describe({ ...placement })}`,
    workload: name,
    target: placement,
    resume: hasCheckpoint,
    idempotencyKey: `${ctx.fleet.name}:${name}:${incarnation}:g${gen}:start`,
    generation: gen,
    incarnation,
    ...(rec?.badCheckpoints?.length ? { excludeCheckpoints: [...rec.badCheckpoints] } : {}),
    ...(extras.restart ? { restart: extras.restart } : {}),
    ...(primary ? { migratedFrom: primary.node, originalType: node?.capacity ?? rec?.capacity ?? 'on-demand' } : inFlight && rec?.move?.from.node ? { migratedFrom: rec.move.from.node, originalType: rec.move.from.capacity ?? 'spot' } : {}),
    ...(primary ? { moveReason: decision.reasons.at(-1)?.text ?? 'move' } : inFlight && rec?.move ? { moveReason: rec.move.reason } : {}),
    ...((primary && evicted) || (inFlight && rec?.move?.evicted) ? { evicted: true } : {}),
  });
  ids.push(sid);
  const after = placement.pricePerGpuHour * spec.gpus;
  const change: ChangeKind = primary ? 'replace' : 'create';
  const reasons = extras.restart === 'failure' || extras.restart === 'preemption' ? [{ rule: 'lifecycle', text: extras.restart === 'failure' ? 'restart after a failure, from its newest verified checkpoint' : 'restart after a preemption, from its newest verified checkpoint' }, ...base.reasons] : base.reasons;
  const afterView: NonNullable<ResourceChange['after']> = target.node ? { node: target.node, capacity: target.capacity } : { capacity: target.capacity };
  afterView.pool = target.pool;
  if (target.zone) afterView.zone = target.zone;
  afterView.pricePerHour = roundUsd(after);
  const changed = {
    address,
    reasons,
    // A bid pays more than the quote decide priced: show what will really be paid.
    money: placement.pricePerGpuHour !== target.pricePerGpuHour ? { ...decision.money, afterPerHour: roundUsd(after) } : decision.money,
    violations: base.violations,
    change,
  } as ResourceChange;
  if (beforeView) changed.before = beforeView;
  changed.after = afterView;
  changed.actions = ids;
  ctx.changes.push(changed);
  return { before, after };
}

/** Leases: adopt ours found running, forget vanished ones, release the idle ones. */
/** Idle nodes to keep ready per pool: the pool's warmStandby, plus one per critical workload falling back to it. */
function desiredStandby(ctx: Ctx): Map<string, number> {
  const out = new Map<string, number>();
  for (const p of ctx.fleet.pools) if (p.warmStandby) out.set(p.name, p.warmStandby);
  for (const w of ctx.fleet.workloads) {
    if (!w.critical) continue;
    const pool = ctx.fleet.pools.find((p) => p.name === w.fallback.to) ?? ctx.fleet.pools.find((p) => w.fallback.to === 'on-demand' && p.capacity === 'on-demand' && ctx.opts.marketProviders.has(p.provider) && (!w.pools || w.pools.includes(p.name)));
    if (pool && ctx.opts.marketProviders.has(pool.provider)) out.set(pool.name, (out.get(pool.name) ?? 0) + 1);
  }
  return out;
}

/** The end of the last run on each node, from the ledger (which outlives a removed workload's record). */
function lastUseByNode(ctx: Ctx): Map<string, number> {
  const out = new Map<string, number>();
  for (const e of ctx.state.ledger) if (e.node !== undefined && e.to > (out.get(e.node) ?? 0)) out.set(e.node, e.to);
  return out;
}

/**
 * Since when nothing runs on a lease: now when one of ours still runs on its node (this plan stops
 * it), else the end of the last run there, else when it was acquired.
 */
function idleSince(ctx: Ctx, l: Lease, rec: LeaseRecord | undefined, lastUse: Map<string, number>): number {
  const acquired = rec?.acquiredAt ?? (Date.parse(l.acquiredAt) || 0);
  if (!l.node) return acquired;
  if (ctx.observed.workloads.some((w) => w.provider === l.provider && w.node === l.node && w.fleet === ctx.fleet.name && w.state === 'running')) return ctx.opts.now;
  return Math.max(acquired, lastUse.get(l.node) ?? 0);
}

function planLeases(ctx: Ctx): void {
  const observedOurs = new Map<string, Lease>();
  const recorded = new Map<string, LeaseRecord>();
  for (const r of Object.values(ctx.state.resources)) if (r.type === 'lease') recorded.set(providerKey(r.provider, r.leaseId), r);
  for (const l of ctx.observed.leases) {
    if (l.state === 'terminated' || l.state === 'released') continue;
    const k = providerKey(l.provider, l.id);
    if (l.labels?.['spotfleet.fleet'] === ctx.fleet.name || recorded.has(k)) observedOurs.set(k, l);
  }
  const keepWarm = desiredStandby(ctx);
  const wanted = new Map(keepWarm);
  const idleGrace = new Map(ctx.fleet.pools.filter((p) => p.idleReleaseMs !== undefined && p.idleReleaseMs > 0).map((p) => [p.name, p.idleReleaseMs as number]));
  let lastUse: Map<string, number> | undefined;

  for (const [k, l] of [...observedOurs].sort(([a], [b]) => a.localeCompare(b))) {
    // Stable from plan to state: the address the acquire planned (from its key), or the recorded one.
    const address = recorded.get(k)?.address ?? leaseAddressForKey(l.pool, l.labels?.['spotfleet.idempotency-key'], l.id);
    if (!recorded.has(k)) {
      ctx.drift.push({ address, kind: 'unmanaged', message: `lease ${l.id} in ${l.pool} carries this fleet's labels but is not in state; recording it` });
      ctx.actions.push({ id: nextId(ctx, 'adopt', l.id), kind: 'adopt', address, deps: [], summary: `record lease ${l.id}`, record: 'lease', provider: l.provider, leaseId: l.id, pool: l.pool, ...(l.node ? { node: l.node } : {}) });
    }
    const inUse = ctx.leasesInUse.has(k);
    const warm = keepWarm.get(l.pool) ?? 0;
    if (!inUse && warm > 0 && !ctx.opts.destroy) {
      keepWarm.set(l.pool, warm - 1);
      continue;
    }
    const grace = idleGrace.get(l.pool);
    if (!inUse && grace !== undefined && !ctx.opts.destroy) {
      // pools[].idleRelease: an idle lease is kept that long after its last use, so its node can
      // take the next workload; then it is released like any idle lease.
      lastUse ??= lastUseByNode(ctx);
      const since = idleSince(ctx, l, recorded.get(k), lastUse);
      const left = since + grace - ctx.opts.now;
      if (left > 0) {
        ctx.changes.push({
          address,
          change: 'no-op',
          before: { capacity: l.capacity, pool: l.pool, ...(l.zone ? { zone: l.zone } : {}), pricePerHour: roundUsd(l.pricePerHour), ...(l.node ? { node: l.node } : {}) },
          reasons: [{ rule: 'lease', text: `nothing runs on it since ${new Date(since).toISOString()}; kept for the pool's idleRelease (${formatDuration(grace)}), released in ${formatDuration(Math.ceil(left / 1000) * 1000)}` }],
          actions: [],
          violations: [],
        });
        continue;
      }
    }
    if (!inUse) {
      const deps = l.node ? ctx.stopsOnNode.get(nodeKey(l.provider, l.node)) ?? [] : [];
      const id = nextId(ctx, 'release', l.id);
      ctx.actions.push({ id, kind: 'release', address, deps, summary: `release lease ${l.id} (${l.pool})`, provider: l.provider, pool: l.pool, leaseId: l.id });
      ctx.changes.push({
        address,
        change: 'delete',
        before: { capacity: l.capacity, pool: l.pool, ...(l.zone ? { zone: l.zone } : {}), pricePerHour: roundUsd(l.pricePerHour), ...(l.node ? { node: l.node } : {}) },
        reasons: [{ rule: 'lease', text: ctx.opts.destroy ? 'destroy: release' : 'no workload uses it any more: release it to stop paying' }],
        actions: [id],
        violations: [],
      });
    }
  }
  // Warm standby: acquire what is missing, so an eviction needs no acquire at all.
  if (!ctx.opts.destroy) {
    for (const [poolName, missing] of [...keepWarm].sort(([a], [b]) => a.localeCompare(b))) {
      const pool = ctx.fleet.pools.find((p) => p.name === poolName);
      if (!pool || missing <= 0 || !ctx.opts.marketProviders.has(pool.provider)) continue;
      const gpus = Math.max(1, ...ctx.fleet.workloads.filter((w) => !w.pools || w.pools.includes(poolName)).map((w) => w.gpus));
      const quote = ctx.observed.prices
        .filter((q) => q.provider === pool.provider && q.capacity === pool.capacity && q.available && (!pool.gpuModel || q.gpuModel === pool.gpuModel) && (!pool.zones || (q.zone !== undefined && pool.zones.includes(q.zone))) && (pool.maxPricePerHour === undefined || q.pricePerGpuHour <= pool.maxPricePerHour))
        .sort((a, b) => a.pricePerGpuHour - b.pricePerGpuHour)[0];
      if (!quote) {
        ctx.warnings.push(`pool ${poolName}: no available capacity for its warm standby`);
        continue;
      }
      for (let i = 0; i < missing; i++) {
        const standbyKey = `${ctx.fleet.name}:standby:${poolName}:s${ctx.state.serial}:${i}`;
        const address = leaseAddressForKey(poolName, standbyKey, `standby-${i + 1}`);
        const id = nextId(ctx, 'acquire', `standby-${poolName}`);
        ctx.actions.push({
          id, kind: 'acquire', address, deps: [],
          summary: `acquire a warm standby: ${gpus}×${quote.gpuModel} ${pool.capacity} in ${poolName}${quote.zone ? `/${quote.zone}` : ''}`,
          provider: pool.provider,
          request: {
            pool: poolName, capacity: pool.capacity, gpuModel: quote.gpuModel, gpus,
            ...(quote.zone !== undefined ? { zone: quote.zone } : {}),
            ...(pool.maxPricePerHour !== undefined ? { maxPricePerGpuHour: pool.maxPricePerHour } : {}),
            // The serial makes a new key once a standby was taken into use; a crash before the lease is
            // recorded is caught by adopting the lease (it carries our labels) on the next plan.
            idempotencyKey: standbyKey,
          },
          forWorkload: `standby-${poolName}`,
        });
        ctx.changes.push({
          address, change: 'create',
          after: { capacity: pool.capacity, pool: poolName, ...(quote.zone ? { zone: quote.zone } : {}), pricePerHour: roundUsd(quote.pricePerGpuHour * gpus) },
          reasons: [{ rule: 'warm-standby', text: `keep ${wanted.get(poolName) ?? 0} node(s) ready in ${poolName} so an eviction needs no acquire` }],
          actions: [id], violations: [],
        });
      }
    }
  }
  for (const [k, r] of [...recorded].sort(([a], [b]) => a.localeCompare(b))) {
    if (observedOurs.has(k)) continue;
    ctx.drift.push({ address: r.address, kind: 'vanished', message: `lease ${r.leaseId} is gone from ${r.provider}` });
    ctx.actions.push({ id: nextId(ctx, 'forget', r.leaseId), kind: 'forget', address: r.address, deps: [], summary: `forget vanished lease ${r.leaseId}` });
  }
}
