// One reconcile's read half, shared by plan, apply and watch: refresh (or reuse the state's view
// with --refresh=false) and plan. Saved plans live in saved-plan.ts, their staleness check in
// plan-staleness.ts, the mandatory-policy gate in policy-gate.ts.
import type { NodeInfo, Notice, Observed } from '../core/types.js';
import type { StateFile } from '../state/types.js';
import { nodeKey } from '../core/address.js';
import { archiveNode } from './archive.js';
import { advanceZoneStats, type AvailabilityObservation, type ZoneStats } from '../policy/uptime.js';
import { planFleet, type PlanOptions } from './plan.js';
import { evaluatePlanRules } from '../policy/policy-set.js';
import { planJsonObject } from './render.js';
import { refreshFleet, type RefreshOptions } from './refresh.js';
import type { FleetSession } from './session.js';
import type { Plan } from './types.js';

export interface MakePlanOptions {
  now: number;
  refresh?: boolean;
  targets?: string[];
  destroy?: boolean;
  refreshOptions?: RefreshOptions;
  /**
   * The observation to plan from instead of a refresh: drill refreshes first, to find the workload
   * and add the eviction notice it rehearses.
   */
  observed?: Observed;
  /** Collects each workload's decision input and decision (for `explain`). */
  captureDecisions?: PlanOptions['captureDecisions'];
  /**
   * Notices already known (watch's notice monitor polls every node on its own schedule): used
   * instead of polling every node again during the refresh.
   */
  knownNotices?: readonly Notice[];
}

/**
 * The world as last recorded, for `plan --refresh=false`: the last observation apply or watch saved
 * (nodes, prices, leases), with the workloads and leases the state says it runs since. A node a
 * recorded workload runs on is taken to be there, so a skipped refresh never looks like a dead node.
 */
export function observedFromState(state: StateFile, fleet: string, now: number, last?: Observed): Observed {
  const obs: Observed = {
    at: last?.at ?? new Date(now).toISOString(),
    nodes: [...(last?.nodes ?? [])],
    workloads: [],
    leases: [],
    prices: [...(last?.prices ?? [])],
    offers: [...(last?.offers ?? [])],
    notices: [],
    unknown: [],
  };
  const nodes = new Set(obs.nodes.map((n) => nodeKey(n.provider, n.id)));
  const ensureNode = (provider: string, id: string, n: Omit<NodeInfo, 'id' | 'provider' | 'state'>): void => {
    const k = nodeKey(provider, id);
    if (nodes.has(k)) return;
    nodes.add(k);
    // Marked: only the state's record stands behind it, none of the provider's own facts (its
    // checkpoint folder, its address), so a caller about to act on the node asks the provider.
    obs.nodes.push({ id, provider, state: 'ready', ...n, meta: { fromState: true } });
  };
  for (const r of Object.values(state.resources)) {
    if (r.type === 'workload' && r.instanceId && r.node && r.provider && r.since !== undefined) {
      obs.workloads.push({
        id: r.instanceId, provider: r.provider, node: r.node, fleet, workload: r.name, state: 'running', startedAt: new Date(r.since).toISOString(), gpus: r.gpus,
        ...(r.specHash ? { specHash: r.specHash } : {}), labels: { 'spotfleet.fleet': fleet, 'spotfleet.workload': r.name },
      });
      ensureNode(r.provider, r.node, { gpuModel: '', gpus: r.gpus, capacity: r.capacity ?? 'on-demand', pricePerHour: (r.pricePerGpuHour ?? 0) * r.gpus, ...(r.zone ? { zone: r.zone } : {}), ...(r.pool ? { pool: r.pool } : {}) });
    } else if (r.type === 'lease') {
      obs.leases.push({ id: r.leaseId, provider: r.provider, pool: r.pool, capacity: r.capacity, gpuModel: '', gpus: r.gpus, pricePerHour: r.pricePerHour, acquiredAt: new Date(r.acquiredAt).toISOString(), state: 'active', ...(r.node ? { node: r.node } : {}), labels: { 'spotfleet.fleet': fleet } });
      if (r.node) ensureNode(r.provider, r.node, { gpuModel: '', gpus: r.gpus, capacity: r.capacity, pricePerHour: r.pricePerHour, leaseId: r.leaseId, pool: r.pool, ...(r.zone ? { zone: r.zone } : {}) });
    }
  }
  return obs;
}

/**
 * The one way every command plans (plan, apply, destroy, drill, explain, watch's reconciles):
 * observe (refresh, the state's last view with `refresh: false`, or `observed`), then plan with the
 * fleet's policy set as loadFleet compiled it, plan-scoped policies included.
 */
export async function makePlan(session: FleetSession, state: StateFile, opts: MakePlanOptions): Promise<{ plan: Plan; observed: Observed }> {
  const last = await session.store.readObservation();
  const observed =
    opts.refresh === false
      ? observedFromState(state, session.fleet.name, opts.now, last)
      : opts.observed ?? await refreshFleet(session.providers, { ...opts.refreshOptions, ...(opts.knownNotices ? { notices: false } : {}) });
  // The market's history: what this refresh saw of each spot pool/zone, on top of what was seen before.
  observed.zoneStats = opts.refresh === false ? last?.zoneStats ?? {} : advanceZoneStats(last?.zoneStats as Record<string, ZoneStats> | undefined, spotAvailability(session.fleet, observed, opts.now));
  if (opts.knownNotices && opts.refresh !== false) {
    const live = new Set(observed.nodes.filter((n) => n.state !== 'terminated').map((n) => nodeKey(n.provider, n.id)));
    observed.notices = opts.knownNotices.filter((n) => live.has(nodeKey(n.provider, n.node))).sort((a, b) => a.node.localeCompare(b.node) || a.id.localeCompare(b.id));
  }
  const policies = session.policies;
  // The checkpoint archive is a node the plan can copy checkpoints to (before a lease is given back)
  // and restore them from; which leased nodes can reach it is each provider's storage's call.
  const archive = archiveNode(session.stateDir);
  const archivable = new Set<string>();
  for (const n of observed.nodes) {
    const st = session.providers.get(n.provider)?.storage;
    if (n.leaseId && st?.canTransfer?.(n, archive)) archivable.add(nodeKey(n.provider, n.id));
  }
  observed.nodes.push(archive);
  const plan = planFleet(session.fleet, observed, state, {
    now: opts.now,
    marketProviders: session.marketProviders,
    runtimeProviders: session.runtimeProviders,
    bidProviders: session.bidProviders,
    ...(opts.targets ? { targets: opts.targets } : {}),
    ...(opts.destroy ? { destroy: true } : {}),
    ...(policies !== undefined ? { policies } : {}),
    ...(opts.captureDecisions ? { captureDecisions: opts.captureDecisions } : {}),
    ...(opts.refresh === false ? { refreshSkipped: true } : {}),
    archivable,
    zoneStats: observed.zoneStats as Record<string, ZoneStats>,
    removableProviders: session.removableProviders,
  });
  if (opts.refresh === false) plan.warnings.push('refresh skipped (--refresh=false): the plan reflects the last recorded observation and the state');
  if (policies !== undefined && policies.planRules.length > 0) plan.policyViolations = evaluatePlanRules(policies, planJsonObject(plan));
  return { plan, observed };
}

/** One availability observation per spot pool and zone the fleet may use, from the refresh's quotes. */
export function spotAvailability(fleet: FleetSession['fleet'], observed: Observed, now: number): AvailabilityObservation[] {
  const out: AvailabilityObservation[] = [];
  for (const pool of fleet.pools) {
    if (pool.capacity !== 'spot') continue;
    const seen = new Map<string, boolean>();
    for (const q of observed.prices) {
      if (q.provider !== pool.provider || q.capacity !== 'spot' || (pool.gpuModel && q.gpuModel !== pool.gpuModel)) continue;
      if (pool.zones && (q.zone === undefined || !pool.zones.includes(q.zone))) continue;
      seen.set(q.zone ?? '', (seen.get(q.zone ?? '') ?? false) || q.available);
    }
    for (const [zone, available] of seen) out.push({ at: now, pool: pool.name, ...(zone ? { zone } : {}), available });
  }
  return out;
}
