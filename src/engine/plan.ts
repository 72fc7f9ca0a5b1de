// planFleet: spec + observed + state → Plan. Pure: no I/O, no clock (now comes in options).
// For each workload it resolves where it runs (state record vs what the runtimes report), asks the
// policy (decideWorkload) where it should run, and turns the difference into a DAG of actions:
// acquire ∥ checkpoint → stop → transfer → start, releases of idle leases, adoption of things found
// running with our labels, and stops of duplicates. Output is sorted by address.
import { createHash } from 'node:crypto';
import { compareAddress, leaseAddress, workloadAddress } from '../core/address.js';
import type { CapacityType, Lease, NodeInfo, Notice, Observed, WorkloadInstance } from '../core/types.js';
import { roundUsd } from '../core/units.js';
import { computeBid } from '../core/bid.js';
import { FreeGpuIndex } from './capacity-index.js';
import { decideWorkload } from '../policy/decide.js';
import { DEFAULT_OVERHEAD, type CurrentPlacement, type PlacementOption, type WorkloadDecision, type WorkloadDecisionInput } from '../policy/types.js';
import type { Fleet, WorkloadSpec } from '../spec/types.js';
import type { LeaseRecord, StateFile, WorkloadRecord } from '../state/types.js';
import {
  PLAN_FORMAT_VERSION,
  type Action,
  type ChangeKind,
  type DriftItem,
  type Plan,
  type PlacementRef,
  type ResourceChange,
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
  policies?: unknown;
  /** Default wait for a verified checkpoint outside emergencies. */
  checkpointWaitMs?: number;
  /** When given, every workload's decision input and decision are put here (for `explain`). */
  captureDecisions?: Map<string, { input: WorkloadDecisionInput; decision: WorkloadDecision }>;
}

const nodeKey = (provider: string, id: string): string => `${provider}/${id}`;

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
  seq: number;
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
    seq: 0,
  };
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

  // A lease acquired for a workload that does not run yet (a crash between acquire and start) is
  // that workload's: its own idempotent acquire returns it, so nobody else may take its GPUs.
  for (const l of observed.leases) {
    const forW = l.labels?.['spotfleet.workload'];
    if (l.node && forW && l.labels?.['spotfleet.fleet'] === fleet.name && !byWorkload.has(forW)) ctx.reserved.set(nodeKey(l.provider, l.node), forW);
  }
  for (const [k, wl] of ctx.reserved) ctx.reservedFor.set(wl, [...(ctx.reservedFor.get(wl) ?? []), k]);
  ctx.index = buildIndex(ctx);
  let beforePerHour = 0;
  let afterPerHour = 0;
  const specNames = new Set(fleet.workloads.map((w) => w.name));
  const names = new Set<string>([...specNames, ...byWorkload.keys()]);
  for (const r of Object.values(state.resources)) if (r.type === 'workload' && (r.status === 'running' || byWorkload.has(r.name))) names.add(r.name);

  const specByName = new Map(fleet.workloads.map((w) => [w.name, w]));
  for (const name of [...names].sort()) {
    const spec = opts.destroy ? undefined : specByName.get(name);
    const r = planWorkload(ctx, name, spec, byWorkload.get(name) ?? []);
    beforePerHour += r.before;
    afterPerHour += r.after;
  }
  planLeases(ctx);
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
  }
  changes.sort((a, b) => compareAddress(a.address, b.address));
  ctx.drift.sort((a, b) => compareAddress(a.address, b.address) || a.kind.localeCompare(b.kind));

  const summary = { add: 0, change: 0, destroy: 0 };
  for (const c of changes) {
    if (c.change === 'create') summary.add++;
    else if (c.change === 'update' || c.change === 'replace') summary.change++;
    else if (c.change === 'delete') summary.destroy++;
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

function workloadRecord(ctx: Ctx, name: string): WorkloadRecord | undefined {
  const r = ctx.state.resources[workloadAddress(name)];
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

function onDemandPerGpuHour(obs: Observed, gpuModel: string): number | undefined {
  let best = Number.POSITIVE_INFINITY;
  for (const q of obs.prices) if (q.capacity === 'on-demand' && q.gpuModel === gpuModel) best = Math.min(best, q.pricePerGpuHour);
  for (const n of obs.nodes) if (n.capacity === 'on-demand' && n.gpuModel === gpuModel && n.gpus > 0) best = Math.min(best, n.pricePerHour / n.gpus);
  return Number.isFinite(best) ? best : undefined;
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

function planWorkload(ctx: Ctx, name: string, spec: WorkloadSpec | undefined, instances: WorkloadInstance[]): WorkloadResult {
  const address = workloadAddress(name);
  const rec = workloadRecord(ctx, name);
  const now = ctx.opts.now;
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
  if (!primary && rec?.status === 'running') {
    ctx.drift.push({ address, kind: 'died', message: `was running on ${rec.node ?? '?'} (${rec.instanceId ?? '?'}) but no longer runs` });
  }

  const node = primary ? ctx.nodes.get(nodeKey(primary.provider, primary.node)) : undefined;
  const notices = primary ? ctx.notices.get(nodeKey(primary.provider, primary.node)) ?? [] : [];
  const evicted = primary !== undefined && (isDead(node) || notices.length > 0);
  if (primary && evicted) {
    const n = notices[0];
    ctx.drift.push({ address, kind: 'evicted', message: n ? `node ${primary.node} has a ${n.kind} notice (${n.source}${n.action ? ` ${n.action}` : ''}), deadline ${n.deadline}` : `node ${primary.node} is gone` });
  }
  const curPrice = node ? pricePerGpuHourOf(node) : rec?.pricePerGpuHour ?? 0;
  const before = primary ? curPrice * primary.gpus : 0;
  if (primary?.provider && node?.leaseId) ctx.leasesInUse.add(`${primary.provider}/${node.leaseId}`);

  // Removed from the spec (or destroy): checkpoint and stop.
  if (!spec) {
    if (!primary) {
      if (rec) ctx.changes.push({ address, change: 'delete', reasons: [{ rule: 'spec', text: 'no longer in the spec and not running: forget it' }], actions: [], violations: [] });
      if (rec) ctx.actions.push({ id: nextId(ctx, 'forget', name), kind: 'forget', address, deps: [], summary: 'forget (not running)' });
      return { before: 0, after: 0 };
    }
    const ids = checkpointAndStop(ctx, name, primary, undefined, adoptIds, true, evicted);
    ctx.changes.push({
      address,
      change: 'delete',
      before: { node: primary.node, capacity: node?.capacity ?? rec?.capacity ?? 'on-demand', ...(rec?.pool ? { pool: rec.pool } : {}), pricePerHour: roundUsd(before) },
      reasons: [{ rule: 'spec', text: ctx.opts.destroy ? 'destroy: checkpoint and stop' : 'removed from the spec: checkpoint and stop' }],
      money: { nowPerHour: roundUsd(before), afterPerHour: 0, migrationOverheadUsd: 0 },
      actions: ids,
      violations: [],
    });
    if (node?.leaseId) ctx.leasesInUse.delete(`${primary.provider}/${node.leaseId}`);
    return { before, after: 0 };
  }

  const specChanged = primary !== undefined && primary.specHash !== undefined && primary.specHash !== spec.specHash;
  const current: CurrentPlacement | undefined = primary && !specChanged
    ? {
        provider: primary.provider,
        capacity: node?.capacity ?? rec?.capacity ?? 'on-demand',
        node: primary.node,
        pricePerGpuHour: curPrice,
        since: rec?.since ?? Date.parse(primary.startedAt),
        ...(rec?.pool ?? node?.pool ? { pool: (rec?.pool ?? node?.pool) as string } : {}),
        ...(node?.zone ? { zone: node.zone } : {}),
        ...(evicted ? { evicted: true } : {}),
      }
    : undefined;
  if (primary && specChanged) {
    // The workload will restart anyway; its own GPUs count as free for its new placement.
    const k = nodeKey(primary.provider, primary.node);
    ctx.index.setFree(k, (ctx.free.get(k) ?? 0) + primary.gpus);
  }
  const doneMs = (rec?.doneMs ?? 0) + (primary && rec?.since ? Math.max(0, now - rec.since) : 0);
  const input: WorkloadDecisionInput = {
    workload: spec,
    options: placementOptions(ctx, spec, primary && !specChanged ? nodeKey(primary.provider, primary.node) : undefined),
    history: {
      preemptions: rec?.preemptions ?? [],
      ...(rec?.lastMoveAt !== undefined ? { lastMoveAt: rec.lastMoveAt } : {}),
      ...(rec?.pinnedOnDemandUntil !== undefined ? { pinnedOnDemandUntil: rec.pinnedOnDemandUntil } : {}),
      ...(rec?.pinnedReason !== undefined ? { pinnedReason: rec.pinnedReason } : {}),
    },
    progress: { doneMs, ...(rec?.lastCheckpoint ? { lastCheckpointAt: Date.parse(rec.lastCheckpoint.mtime) } : {}) },
    overhead: rec?.measuredOverhead ?? spec.overhead ?? DEFAULT_OVERHEAD,
  };
  if (current) input.current = current;
  const decision = decideWorkload(input, { now, thresholds: ctx.fleet.defaults.thresholds, ...(ctx.opts.policies !== undefined ? { policies: ctx.opts.policies } : {}) });
  if (specChanged) decision.reasons.unshift({ rule: 'spec', text: 'the workload spec changed (image, command, env, GPUs or checkpoint): restart from its checkpoint' });
  ctx.opts.captureDecisions?.set(name, { input, decision });
  // Plain data from here on: lazily formatted reasons hold on to decide's inputs (every option of
  // every workload), which would keep a large plan's whole working set alive.
  decision.reasons = decision.reasons.map((r) => ({ rule: r.rule, text: r.text, ...(r.numbers ? { numbers: r.numbers } : {}) }));
  return applyDecision(ctx, spec, primary, node, rec, decision, adoptIds, before, evicted, specChanged);
}

function checkpointAndStop(ctx: Ctx, name: string, inst: WorkloadInstance, spec: WorkloadSpec | undefined, deps: string[], removing: boolean, evicted: boolean): string[] {
  const address = workloadAddress(name);
  const ids: string[] = [];
  const graceMs = spec?.checkpoint?.stopGraceMs ?? 30_000;
  let stopDeps = [...deps];
  const nodeDead = isDead(ctx.nodes.get(nodeKey(inst.provider, inst.node)));
  if (!nodeDead) {
    const notice = (ctx.notices.get(nodeKey(inst.provider, inst.node)) ?? [])[0];
    let waitMs = ctx.opts.checkpointWaitMs ?? 120_000;
    if (evicted && notice) waitMs = Math.max(5_000, Math.min(waitMs, Date.parse(notice.deadline) - ctx.opts.now - graceMs));
    const cid = nextId(ctx, 'checkpoint', name);
    ctx.actions.push({ id: cid, kind: 'checkpoint', address, deps: [...deps], summary: `checkpoint on ${inst.node}`, workload: name, provider: inst.provider, node: inst.node, instanceId: inst.id, waitMs });
    ids.push(cid);
    stopDeps = [cid];
  }
  const sid = nextId(ctx, 'stop', name);
  ctx.actions.push({ id: sid, kind: 'stop', address, deps: stopDeps, summary: `stop ${inst.id} on ${inst.node}`, workload: name, provider: inst.provider, node: inst.node, instanceId: inst.id, graceMs, ...(removing ? { removing: true } : {}) });
  ids.push(sid);
  const k = nodeKey(inst.provider, inst.node);
  ctx.stopsOnNode.set(k, [...(ctx.stopsOnNode.get(k) ?? []), sid]);
  return ids;
}

function applyDecision(
  ctx: Ctx,
  spec: WorkloadSpec,
  primary: WorkloadInstance | undefined,
  node: NodeInfo | undefined,
  rec: WorkloadRecord | undefined,
  decision: WorkloadDecision,
  adoptIds: string[],
  before: number,
  evicted: boolean,
  specChanged: boolean,
): WorkloadResult {
  const name = spec.name;
  const address = workloadAddress(name);
  const beforeView = primary
    ? { node: primary.node, capacity: node?.capacity ?? rec?.capacity ?? ('on-demand' as CapacityType), ...(rec?.pool ?? node?.pool ? { pool: (rec?.pool ?? node?.pool) as string } : {}), ...(node?.zone ? { zone: node.zone } : {}), pricePerHour: roundUsd(before) }
    : undefined;
  const base = { address, reasons: decision.reasons, money: decision.money, violations: decision.violations };
  const stay = (decision.action === 'stay' || (decision.action === 'none' && primary && !evicted)) && !specChanged;
  if (primary && stay) {
    if (adoptIds.length > 0) ctx.changes.push({ ...base, change: 'no-op', ...(beforeView ? { before: beforeView, after: beforeView } : {}), actions: adoptIds });
    else ctx.changes.push({ ...base, change: 'no-op', ...(beforeView ? { before: beforeView, after: beforeView } : {}), actions: [] });
    return { before, after: before };
  }
  if (!primary && (decision.action === 'wait' || decision.action === 'none' || decision.action === 'stay')) {
    if (decision.action === 'none') ctx.warnings.push(`${address}: no available capacity fits it (${decision.reasons.at(-1)?.text ?? ''})`);
    ctx.changes.push({ ...base, change: 'no-op', actions: [] });
    return { before: 0, after: 0 };
  }
  if (primary && (decision.action === 'wait' || decision.action === 'none')) {
    // Park: keep the checkpoint, stop the workload; a later reconcile places it again.
    const ids = checkpointAndStop(ctx, name, primary, spec, adoptIds, false, evicted);
    if (node?.leaseId) ctx.leasesInUse.delete(`${primary.provider}/${node.leaseId}`);
    ctx.changes.push({ ...base, change: 'update', ...(beforeView ? { before: beforeView } : {}), actions: ids });
    return { before, after: 0 };
  }
  const target = decision.target;
  if (!target) {
    ctx.changes.push({ ...base, change: 'no-op', actions: [] });
    return { before, after: before };
  }
  const gen = (rec?.generation ?? 0) + 1;
  const ids: string[] = [...adoptIds];
  const startDeps: string[] = [...adoptIds];
  const placement = placementOf(target);
  let acquireId: string | undefined;
  if (!target.node) {
    acquireId = nextId(ctx, 'acquire', name);
    const pool = ctx.fleet.pools.find((p) => p.name === target.pool);
    const key = `${ctx.fleet.name}:${name}:g${gen}`;
    // On a marketplace that takes bids, a spot acquisition bids spot + margin, capped by the pool
    // and by on-demand; the plan shows the bid and what it will pay.
    let bid: number | undefined;
    const leaseReasons: ResourceChange['reasons'] = [{ rule: 'placement', text: `capacity for ${address}` }];
    if (target.capacity === 'spot' && ctx.opts.bidProviders?.has(target.provider)) {
      const od = onDemandPerGpuHour(ctx.observed, target.gpuModel);
      const b = computeBid({ spotPricePerGpuHour: target.pricePerGpuHour, ...(pool?.maxPricePerHour !== undefined ? { maxPricePerGpuHour: pool.maxPricePerHour } : {}), ...(od !== undefined ? { onDemandPricePerGpuHour: od } : {}) });
      leaseReasons.push(b.reason);
      if (b.bid) bid = b.pricePerGpuHour;
    }
    const paidPerGpuHour = bid ?? target.pricePerGpuHour;
    ctx.actions.push({
      id: acquireId,
      kind: 'acquire',
      address: leaseAddress(target.pool, `new-${name}`),
      deps: [],
      summary: `acquire ${spec.gpus}×${target.gpuModel} ${target.capacity} in ${target.pool}${target.zone ? `/${target.zone}` : ''} at $${roundUsd(paidPerGpuHour)}/GPU-h${bid !== undefined ? ` (bid; spot $${roundUsd(target.pricePerGpuHour)})` : ''}`,
      ...(bid !== undefined ? { bidPerGpuHour: bid } : {}),
      provider: target.provider,
      pool: target.pool,
      capacity: target.capacity,
      gpuModel: target.gpuModel,
      gpus: spec.gpus,
      ...(target.zone !== undefined ? { zone: target.zone } : {}),
      ...(pool?.maxPricePerHour !== undefined ? { maxPricePerGpuHour: pool.maxPricePerHour } : {}),
      idempotencyKey: key,
      forWorkload: name,
    });
    ctx.changes.push({
      address: leaseAddress(target.pool, `new-${name}`),
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
    if (tn?.leaseId) ctx.leasesInUse.add(`${tn.provider}/${tn.leaseId}`);
  }
  const hasCheckpoint = Boolean(spec.checkpoint) && (primary !== undefined || rec?.lastCheckpoint !== undefined || rec?.node !== undefined);
  let fromNode: { provider: string; node: string } | undefined;
  if (primary) {
    const stopIds = checkpointAndStop(ctx, name, primary, spec, adoptIds, false, evicted);
    ids.push(...stopIds);
    startDeps.push(stopIds[stopIds.length - 1] as string);
    fromNode = { provider: primary.provider, node: primary.node };
    if (node?.leaseId) ctx.leasesInUse.delete(`${primary.provider}/${node.leaseId}`);
  } else if (rec?.lastCheckpoint || rec?.node) {
    // Not running: resume from the last recorded checkpoint, or from whatever the node it last ran
    // on still holds (it may have died at a notice's deadline before anyone recorded a checkpoint).
    const at = rec.lastCheckpoint?.node ?? (rec.node as string);
    const src = ctx.observed.nodes.find((n) => n.id === at && (rec.provider === undefined || rec.lastCheckpoint !== undefined || n.provider === rec.provider));
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
    ctx.stopsOnNode.set(fk, [...(ctx.stopsOnNode.get(fk) ?? []), tid]);
    ids.push(tid);
    startDeps.length = 0;
    startDeps.push(tid);
  }
  const sid = nextId(ctx, 'start', name);
  ctx.actions.push({
    id: sid,
    kind: 'start',
    address,
    deps: [...new Set(startDeps)],
    summary: `start on ${describe({ ...placement })}`,
    workload: name,
    target: placement,
    resume: hasCheckpoint,
    idempotencyKey: `${ctx.fleet.name}:${name}:g${gen}:start`,
    generation: gen,
    ...(primary ? { migratedFrom: primary.node, originalType: node?.capacity ?? rec?.capacity ?? 'on-demand' } : {}),
    ...(primary ? { moveReason: decision.reasons.at(-1)?.text ?? 'move' } : {}),
    ...(primary && evicted ? { evicted: true } : {}),
  });
  ids.push(sid);
  const after = placement.pricePerGpuHour * spec.gpus;
  const change: ChangeKind = primary ? 'replace' : 'create';
  ctx.changes.push({
    ...base,
    // A bid pays more than the quote decide priced: show what will really be paid.
    money: placement.pricePerGpuHour !== target.pricePerGpuHour ? { ...decision.money, afterPerHour: roundUsd(after) } : decision.money,
    change,
    ...(beforeView ? { before: beforeView } : {}),
    after: { ...(target.node ? { node: target.node } : {}), capacity: target.capacity, pool: target.pool, ...(target.zone ? { zone: target.zone } : {}), pricePerHour: roundUsd(after) },
    actions: ids,
  });
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

function planLeases(ctx: Ctx): void {
  const observedOurs = new Map<string, Lease>();
  const recorded = new Map<string, LeaseRecord>();
  for (const r of Object.values(ctx.state.resources)) if (r.type === 'lease') recorded.set(`${r.provider}/${r.leaseId}`, r);
  for (const l of ctx.observed.leases) {
    if (l.state === 'terminated' || l.state === 'released') continue;
    const k = `${l.provider}/${l.id}`;
    if (l.labels?.['spotfleet.fleet'] === ctx.fleet.name || recorded.has(k)) observedOurs.set(k, l);
  }
  const keepWarm = desiredStandby(ctx);
  const wanted = new Map(keepWarm);

  for (const [k, l] of [...observedOurs].sort(([a], [b]) => a.localeCompare(b))) {
    const address = leaseAddress(l.pool, l.id);
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
        const address = leaseAddress(poolName, `standby-${i + 1}`);
        const id = nextId(ctx, 'acquire', `standby-${poolName}`);
        ctx.actions.push({
          id, kind: 'acquire', address, deps: [],
          summary: `acquire a warm standby: ${gpus}×${quote.gpuModel} ${pool.capacity} in ${poolName}${quote.zone ? `/${quote.zone}` : ''}`,
          provider: pool.provider, pool: poolName, capacity: pool.capacity, gpuModel: quote.gpuModel, gpus,
          ...(quote.zone !== undefined ? { zone: quote.zone } : {}),
          ...(pool.maxPricePerHour !== undefined ? { maxPricePerGpuHour: pool.maxPricePerHour } : {}),
          // The serial makes a new key once a standby was taken into use; a crash before the lease is
          // recorded is caught by adopting the lease (it carries our labels) on the next plan.
          idempotencyKey: `${ctx.fleet.name}:standby:${poolName}:s${ctx.state.serial}:${i}`,
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
