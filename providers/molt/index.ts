// The molt provider: capacity from the molt GPU marketplace (docs/molt-api.md). Prices and offers
// come from the API; acquire bids on the cheapest fitting offer at the bid strategy's price
// (src/core/bid.ts). A pool that says how its nodes are reached (`pools[].node`) buys machines
// spotfleet runs work on: each bid carries a bootstrap script with spotfleet's login key and a host
// key made for that machine, and a lease whose seller gives a host address becomes an SSH + Docker
// node through the capacity kit (hosts.ts), as the cloud VMs do. For the reference server and
// demos, `runLocally: true` makes each lease a simulated host on this machine (local-hosts.ts):
// workloads run as local processes, checkpoints live in folders.
import { ProviderError } from '../../src/core/errors.js';
import type { Lease, NodeInfo, Notice, Offer, PriceQuote } from '../../src/core/types.js';
import type { AcquireRequest, CapacityCapability, NodesCapability, NoticesCapability, PriceQuery, Provider, RuntimeCapability, ProviderContext, ProviderFactory } from '../../src/providers/sdk.js';
import { DEFAULT_BID_MARGIN } from '../../src/core/bid.js';
import { leaseEndsAt, type ApiLease } from './api.js';
import { bidOnOffers, listOffers, spotPrices } from './bidding.js';
import { MoltApiError, MoltClient } from './client.js';
import { LocalHosts } from './local-hosts.js';
import { LeasedNodes } from '../../src/providers/kit/capacity/index.js';
// The labels spotfleet puts on every bid, so `leases()` finds its own and knows the pool.
import { createMoltDriver, leaseTerms, LABEL_FLEET, LABEL_POOL } from './hosts.js';

export interface MoltConfig {
  /** Base URL of the marketplace API, e.g. http://127.0.0.1:8089. */
  url: string;
  /** Environment variable holding the bearer token (default MOLT_TOKEN). */
  tokenEnv?: string;
  /** Per-request time-out in ms (default 10000). */
  timeoutMs?: number;
  /** Retries after the first attempt, on 5xx / time-out / connection error (default 3). */
  retries?: number;
  /** First retry back-off in ms, doubling with jitter (default 200). */
  retryBaseMs?: number;
  /** Bid margin above the spot price, as a fraction (default 0.05). */
  bidMargin?: number;
  /** Lease length when the acquire request names none, in hours (default 8). */
  defaultDurationHours?: number;
  /**
   * Leases are simulated machines on this host: workloads on them run as local processes, and their
   * checkpoints live in folders under the provider's data folder. For the reference server demo
   * only; real molt hosts are reached over SSH as the pool's `node` says. Default false.
   */
  runLocally?: boolean;
}

export const configSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  type: 'object',
  additionalProperties: false,
  required: ['url'],
  properties: {
    url: { type: 'string', pattern: '^https?://', description: 'Base URL of the molt API' },
    tokenEnv: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$', default: 'MOLT_TOKEN', description: 'Environment variable with the bearer token' },
    timeoutMs: { type: 'integer', minimum: 1, default: 10000 },
    retries: { type: 'integer', minimum: 0, maximum: 10, default: 3 },
    retryBaseMs: { type: 'integer', minimum: 0, default: 200 },
    bidMargin: { type: 'number', minimum: 0, default: DEFAULT_BID_MARGIN },
    defaultDurationHours: { type: 'number', exclusiveMinimum: 0, default: 8 },
    runLocally: {
      type: 'boolean',
      default: false,
      description:
        "Leases are simulated machines on this host: workloads on them run as local processes (checkpoints in folders). For the reference server demo only; real molt hosts are reached over SSH as the pool's `node` says.",
    },
  },
} as const;

function toLeaseState(s: ApiLease['status']): Lease['state'] {
  return s === 'expired' ? 'terminated' : s;
}

/** Builds the provider instance; exported for tests that pass a context directly. */
export function createMoltProvider(config: MoltConfig, ctx: ProviderContext): Provider {
  const tokenEnv = config.tokenEnv ?? 'MOLT_TOKEN';
  const client = new MoltClient({
    provider: ctx.name,
    baseUrl: config.url,
    token: () => {
      const t = ctx.env[tokenEnv];
      if (t === undefined || t === '') throw new ProviderError(ctx.name, `environment variable ${tokenEnv} is not set (it holds the molt API token)`);
      return t;
    },
    timeoutMs: config.timeoutMs ?? 10_000,
    retries: config.retries ?? 3,
    retryBaseMs: config.retryBaseMs ?? 200,
    log: ctx.log,
  });
  const margin = config.bidMargin ?? DEFAULT_BID_MARGIN;
  const defaultHours = config.defaultDurationHours ?? 8;

  function toLease(l: ApiLease): Lease {
    const lease: Lease = {
      id: l.id,
      provider: ctx.name,
      ...leaseTerms(l),
      acquiredAt: l.createdAt,
      expiresAt: leaseEndsAt(l),
      state: toLeaseState(l.status),
      labels: { ...(l.labels ?? {}) },
    };
    if (l.status === 'active' || l.status === 'preempting') lease.node = l.id;
    return lease;
  }

  async function listOwnLeases(status = 'pending,active,preempting'): Promise<ApiLease[]> {
    const r = await client.request<{ leases: ApiLease[] }>('GET', '/v1/leases', { query: { status } });
    return r.leases.filter((l) => l.labels?.[LABEL_FLEET] === ctx.fleet);
  }

  async function fetchLease(id: string): Promise<ApiLease | undefined> {
    try {
      return (await client.request<{ lease: ApiLease }>('GET', `/v1/leases/${encodeURIComponent(id)}`)).lease;
    } catch (e) {
      if (e instanceof MoltApiError && e.status === 404) return undefined;
      throw e;
    }
  }

  const poolOf = (l: ApiLease): string => l.labels?.[LABEL_POOL] ?? '';
  const local = config.runLocally === true
    ? new LocalHosts({ provider: ctx.name, fleet: ctx.fleet, dataDir: ctx.dataDir, cwd: ctx.specDir, env: withoutVar(ctx.env, tokenEnv), now: () => ctx.now(), fetchLease })
    : undefined;

  // A refresh lists nodes, workloads and leases at once; with local hosts each listing also settles
  // the nodes, so concurrent callers share one listing (and one settle) instead of racing.
  let inflight: Promise<ApiLease[]> | undefined;
  function ownLeases(): Promise<ApiLease[]> {
    if (!local) return listOwnLeases();
    inflight ??= (async () => {
      try {
        const live = await listOwnLeases();
        await local.sync(live, poolOf);
        return live;
      } finally {
        inflight = undefined;
      }
    })();
    return inflight;
  }

  const capacity: CapacityCapability = {
    async prices(query: PriceQuery): Promise<PriceQuote[]> {
      // molt sells spot capacity only; it has no on-demand market to quote.
      if (query.capacity === 'on-demand') return [];
      const prices = await spotPrices(client, query.gpuModel);
      return prices
        .filter((p) => query.zones === undefined || query.zones.includes(p.zone))
        .map((p) => {
          const q: PriceQuote = { provider: ctx.name, gpuModel: p.gpuModel, capacity: 'spot', zone: p.zone, pricePerGpuHour: p.pricePerGpuHour, available: (p.offers ?? 1) > 0, at: p.at };
          if (p.preemptionRatePerHour !== undefined) q.preemptionRatePerHour = p.preemptionRatePerHour;
          return q;
        })
        .sort((a, b) => a.pricePerGpuHour - b.pricePerGpuHour || a.gpuModel.localeCompare(b.gpuModel) || (a.zone ?? '').localeCompare(b.zone ?? ''));
    },

    async offers(query): Promise<Offer[]> {
      if (query.capacity === 'on-demand') return [];
      const q: { gpuModel?: string; minGpus?: number; maxPricePerHour?: number } = {};
      if (query.gpuModel !== undefined) q.gpuModel = query.gpuModel;
      if (query.minGpus !== undefined) q.minGpus = query.minGpus;
      if (query.maxPricePerGpuHour !== undefined) q.maxPricePerHour = query.maxPricePerGpuHour;
      const offers = await listOffers(client, q);
      return offers
        .filter((o) => query.zones === undefined || query.zones.includes(o.zone))
        .map((o) => ({ id: o.id, provider: ctx.name, gpuModel: o.gpuModel, minGpus: o.minGpus, maxGpus: o.maxGpus, capacity: 'spot' as const, zone: o.zone, pricePerGpuHour: o.pricePerGpuHour }))
        .sort((a, b) => a.pricePerGpuHour - b.pricePerGpuHour || a.id.localeCompare(b.id));
    },

    async acquire(req: AcquireRequest): Promise<Lease> {
      const address = `lease.${req.pool}`;
      if (req.capacity !== 'spot') throw new ProviderError(ctx.name, 'molt sells spot capacity only; use another provider for on-demand pools', { address });
      // Same key, same lease: a lease bought under this key by an earlier (maybe interrupted) apply wins.
      const existing = (await ownLeases()).find((l) => l.clientToken === req.idempotencyKey);
      if (existing) {
        await local?.track(existing, req.pool);
        return toLease(existing);
      }

      const bid = await bidOnOffers(client, req, { zone: req.zone, margin, defaultHours, carry: { clientToken: req.idempotencyKey, labels: { ...req.labels, [LABEL_FLEET]: ctx.fleet, [LABEL_POOL]: req.pool } } });
      if ('lease' in bid) {
        ctx.log.info('molt: bid accepted', { provider: ctx.name, pool: req.pool, offer: bid.offer.id, lease: bid.lease.id, pricePerGpuHour: bid.pricePerGpuHour });
        await local?.track(bid.lease, req.pool);
        return toLease(bid.lease);
      }
      if (bid.fitting === 0) {
        throw new ProviderError(ctx.name, `no molt offer for ${req.gpus}× ${req.gpuModel}${req.zone ? ` in ${req.zone}` : ''}${req.maxPricePerGpuHour !== undefined ? ` at or below $${req.maxPricePerGpuHour}/GPU-h` : ''}${req.offerId ? ` with id ${req.offerId}` : ''}`, { address, retryable: true });
      }
      throw new ProviderError(ctx.name, `no molt offer took a bid for ${req.gpus}× ${req.gpuModel}: ${bid.refusals.join('; ')}`, { address, retryable: true });
    },

    async release(leaseId: string): Promise<void> {
      // A simulated host dies with its lease: nothing of it may outlive the release.
      await local?.release(leaseId);
      try {
        await client.request('DELETE', `/v1/leases/${encodeURIComponent(leaseId)}`);
      } catch (e) {
        if (e instanceof MoltApiError && e.status === 404) return; // already gone: release is idempotent
        throw e;
      }
    },

    async leases(): Promise<Lease[]> {
      return (await ownLeases()).map(toLease).sort((a, b) => a.id.localeCompare(b.id));
    },

    async renew(leaseId: string, durationHours: number): Promise<Lease> {
      const r = await client.request<{ lease: ApiLease }>('POST', `/v1/leases/${encodeURIComponent(leaseId)}/renew`, { body: { durationHours } });
      return toLease(r.lease);
    },
  };

  const nodes: NodesCapability = {
    async list(): Promise<NodeInfo[]> {
      const leases = await ownLeases();
      const used = local ? await local.usedGpus() : undefined;
      const live = leases
        .map((l): NodeInfo => {
          const n: NodeInfo = {
            id: l.id,
            provider: ctx.name,
            gpuModel: l.gpuModel,
            gpus: l.gpus,
            capacity: 'spot',
            zone: l.zone,
            pricePerHour: l.pricePerHour,
            state: l.status === 'active' ? 'ready' : l.status === 'pending' ? 'provisioning' : 'draining',
            leaseId: l.id,
            meta: { market: 'molt', offer: l.offerId, expiresAt: leaseEndsAt(l) },
          };
          const pool = l.labels?.[LABEL_POOL];
          if (pool !== undefined) n.pool = pool;
          if (local && used) {
            // The host's own view wins: a notice drains it, a passed deadline kills it.
            const cond = local.condition(l.id);
            if (cond === 'terminated') n.state = 'terminated';
            else if (cond === 'noticed' && n.state === 'ready') n.state = 'draining';
            n.meta = { ...n.meta, ...local.meta(l.id) };
            n.gpusFree = n.state === 'terminated' ? 0 : Math.max(0, l.gpus - (used.get(l.id) ?? 0));
          }
          return n;
        });
      // Hosts whose lease ended without a release stay listed, dead, for a while (local-hosts.ts).
      const dead = local
        ? local.dead(new Set(leases.map((l) => l.id))).map((r): NodeInfo => {
            const n: NodeInfo = { id: r.id, provider: ctx.name, gpuModel: r.gpuModel, gpus: r.gpus, gpusFree: 0, capacity: 'spot', zone: r.zone, pricePerHour: r.pricePerHour, state: 'terminated', leaseId: r.id, meta: { market: 'molt', ...local.meta(r.id) } };
            if (r.pool !== '') n.pool = r.pool;
            return n;
          })
        : [];
      return [...live, ...dead].sort((a, b) => a.id.localeCompare(b.id));
    },
  };

  // A lease the seller reclaims turns `preempting` with a deadline: that is molt's eviction notice.
  const notices: NoticesCapability = {
    async poll(node: NodeInfo): Promise<Notice[]> {
      const id = node.leaseId ?? node.id;
      // A simulated host keeps the notice in its folder and dies at the deadline (local-hosts.ts).
      if (local?.record(id)) return local.poll(id);
      const l = await fetchLease(id);
      if (l?.status !== 'preempting' || l.preemptAt === undefined) return [];
      return [
        {
          id: `molt:${l.id}:preempt:${l.preemptAt}`,
          provider: ctx.name,
          node: node.id,
          source: 'molt',
          kind: 'preemption',
          action: 'preempt',
          deadline: l.preemptAt,
          receivedAt: new Date(ctx.now()).toISOString(),
          detail: { lease: l.id },
        },
      ];
    },
  };

  if (!local) {
    // Leases whose seller gives a host: bought machines spotfleet reaches over SSH and runs work on,
    // for pools that say how (`pools[].node`). The bid carries the bootstrap with spotfleet's keys.
    if (!(ctx.pools ?? []).some((x) => x.node !== undefined)) return { name: ctx.name, type: 'molt', capacity, nodes, notices };
    const leased = new LeasedNodes({ ctx, driver: createMoltDriver({ ctx, client, margin, defaultHours, ownLeases: () => listOwnLeases('pending,active,preempting,expired') }) });
    const caps = leased.capabilities();
    return {
      name: ctx.name,
      type: 'molt',
      capacity: {
        ...caps.capacity,
        // molt's own quotes (availability from open offers, preemption rates), less the zones that just had no offer.
        prices: async (q) => (await capacity.prices(q)).map((x) => (x.available && leased.missed('spot', x.gpuModel, x.zone) ? { ...x, available: false } : x)),
        offers: (q) => capacity.offers!(q),
        renew: (id, hours) => capacity.renew!(id, hours),
      },
      nodes: caps.nodes,
      runtime: caps.runtime,
      storage: caps.storage,
      notices,
      close: () => leased.close(),
    };
  }
  // Listing workloads settles the hosts first, so a host past its preemption deadline is dead (its
  // processes killed) before anyone reads what runs.
  const hosts = local;
  const runtime: RuntimeCapability = {
    ...hosts.runtime,
    list: async () => {
      await ownLeases();
      return hosts.runtime.list();
    },
  };
  return { name: ctx.name, type: 'molt', capacity, nodes, notices, runtime, storage: local.storage };
}

/** The environment without one variable: workloads on a simulated host never see the API token. */
function withoutVar(env: Readonly<Record<string, string | undefined>>, name: string): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = { ...env };
  delete out[name];
  return out;
}

/** The molt provider factory (`type: molt`). */
export const provider: ProviderFactory<MoltConfig> = {
  type: 'molt',
  description: 'molt GPU marketplace over HTTP: spot prices, offers, bids that become leases whose hosts are SSH + Docker nodes (pools[].node; runLocally for the demo)',
  configSchema,
  create: (config, ctx) => createMoltProvider(config, ctx),
  checkPool: (config, pool) => {
    if (config.runLocally === true) {
      return pool.node ? [{ path: '/node', message: 'the provider runs leases as simulated local hosts (runLocally), which are not reached over SSH', expected: 'no node: in this pool, or runLocally: false for real molt hosts' }] : [];
    }
    if (!pool.node) return [{ path: '', message: 'does not say how the molt hosts it buys are reached, so no workload could run on them', expected: 'node: { via: ssh, user: root, identityFile: ~/.ssh/id_ed25519, runtime: docker } (or runLocally: true in the provider for the reference-server demo)' }];
    if (pool.capacity !== 'spot') return [{ path: '/capacity', message: 'molt sells spot capacity only', expected: 'capacity: spot' }];
    return [];
  },
};
