// The molt provider: capacity from the molt GPU marketplace (docs/molt-api.md). Prices and offers
// come from the API; acquire bids on the cheapest fitting offer at the bid strategy's price
// (src/policy/bid.ts); every active lease is reported as a node. What runs on a molt node (the
// runtime) is out of scope: pair the pool with a runtime provider (ssh, docker) that reaches it.
import { ProviderError } from '../../src/core/errors.js';
import type { Lease, NodeInfo, Notice, Offer, PriceQuote } from '../../src/core/types.js';
import type { AcquireRequest, CapacityCapability, NodesCapability, NoticesCapability, PriceQuery, Provider, ProviderContext, ProviderFactory } from '../../src/providers/sdk.js';
import { computeBid, DEFAULT_BID_MARGIN } from '../../src/core/bid.js';
import { MoltApiError, MoltClient } from './client.js';

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
}

/** The molt API's own shapes (docs/molt-api.md). */
interface ApiPrice {
  gpuModel: string;
  zone: string;
  pricePerGpuHour: number;
  onDemandPricePerGpuHour?: number;
  preemptionRatePerHour?: number;
  offers?: number;
  at: string;
}
interface ApiOffer {
  id: string;
  gpuModel: string;
  minGpus: number;
  maxGpus: number;
  pricePerGpuHour: number;
  zone: string;
  expiresAt: string;
}
interface ApiLease {
  id: string;
  offerId: string;
  gpuModel: string;
  gpus: number;
  zone: string;
  pricePerGpuHour: number;
  pricePerHour: number;
  status: 'pending' | 'active' | 'preempting' | 'expired' | 'released';
  createdAt: string;
  startsAt: string;
  expiresAt: string;
  preemptAt?: string;
  endReason?: string;
  clientToken: string;
  labels?: Record<string, string>;
}

/** Labels spotfleet puts on every bid, so `leases()` finds its own and knows the pool. */
export const LABEL_FLEET = 'spotfleet.dev/fleet';
export const LABEL_POOL = 'spotfleet.dev/pool';

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
      pool: l.labels?.[LABEL_POOL] ?? '',
      capacity: 'spot',
      gpuModel: l.gpuModel,
      gpus: l.gpus,
      zone: l.zone,
      pricePerHour: l.pricePerHour,
      acquiredAt: l.createdAt,
      expiresAt: l.status === 'preempting' && l.preemptAt !== undefined ? l.preemptAt : l.expiresAt,
      state: toLeaseState(l.status),
      labels: { ...(l.labels ?? {}) },
    };
    if (l.status === 'active' || l.status === 'preempting') lease.node = l.id;
    return lease;
  }

  async function spotPrices(gpuModel?: string): Promise<ApiPrice[]> {
    const r = await client.request<{ prices: ApiPrice[] }>('GET', '/v1/spot-prices', { query: { gpuModel } });
    return r.prices;
  }

  async function listOffers(q: { gpuModel?: string; minGpus?: number; maxPricePerHour?: number }): Promise<ApiOffer[]> {
    const r = await client.request<{ offers: ApiOffer[] }>('GET', '/v1/offers', { query: q });
    return r.offers;
  }

  async function ownLeases(): Promise<ApiLease[]> {
    const r = await client.request<{ leases: ApiLease[] }>('GET', '/v1/leases', { query: { status: 'pending,active,preempting' } });
    return r.leases.filter((l) => l.labels?.[LABEL_FLEET] === ctx.fleet);
  }

  const capacity: CapacityCapability = {
    async prices(query: PriceQuery): Promise<PriceQuote[]> {
      // molt sells spot capacity only; it has no on-demand market to quote.
      if (query.capacity === 'on-demand') return [];
      const prices = await spotPrices(query.gpuModel);
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
      const offers = await listOffers(q);
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
      if (existing) return toLease(existing);

      const hours = req.durationHours ?? defaultHours;
      const prices = await spotPrices(req.gpuModel);
      const offerQuery: { gpuModel: string; minGpus: number; maxPricePerHour?: number } = { gpuModel: req.gpuModel, minGpus: req.gpus };
      if (req.maxPricePerGpuHour !== undefined) offerQuery.maxPricePerHour = req.maxPricePerGpuHour;
      let offers = (await listOffers(offerQuery)).filter((o) => o.minGpus <= req.gpus && o.maxGpus >= req.gpus && (req.zone === undefined || o.zone === req.zone));
      if (req.offerId !== undefined) offers = offers.filter((o) => o.id === req.offerId);
      offers.sort((a, b) => a.pricePerGpuHour - b.pricePerGpuHour || a.id.localeCompare(b.id));
      if (offers.length === 0) {
        throw new ProviderError(ctx.name, `no molt offer for ${req.gpus}× ${req.gpuModel}${req.zone ? ` in ${req.zone}` : ''}${req.maxPricePerGpuHour !== undefined ? ` at or below $${req.maxPricePerGpuHour}/GPU-h` : ''}${req.offerId ? ` with id ${req.offerId}` : ''}`, { address, retryable: true });
      }
      const refusals: string[] = [];
      for (const offer of offers) {
        let price: number;
        if (req.bidPerGpuHour !== undefined) {
          price = req.bidPerGpuHour;
        } else {
          const spot = prices.find((p) => p.gpuModel === offer.gpuModel && p.zone === offer.zone);
          const input: Parameters<typeof computeBid>[0] = { spotPricePerGpuHour: spot?.pricePerGpuHour ?? offer.pricePerGpuHour };
          if (req.maxPricePerGpuHour !== undefined) input.maxPricePerGpuHour = req.maxPricePerGpuHour;
          if (spot?.onDemandPricePerGpuHour !== undefined) input.onDemandPricePerGpuHour = spot.onDemandPricePerGpuHour;
          const decision = computeBid(input, { margin });
          if (!decision.bid) {
            refusals.push(`${offer.id}: ${decision.reason.text}`);
            continue;
          }
          price = decision.pricePerGpuHour;
        }
        if (price < offer.pricePerGpuHour) {
          refusals.push(`${offer.id}: asks $${offer.pricePerGpuHour}/GPU-h, above the bid $${price}/GPU-h`);
          continue;
        }
        try {
          const r = await client.request<{ lease: ApiLease }>('POST', '/v1/bids', {
            body: { offerId: offer.id, pricePerGpuHour: price, gpus: req.gpus, durationHours: hours, clientToken: req.idempotencyKey, labels: { ...req.labels, [LABEL_FLEET]: ctx.fleet, [LABEL_POOL]: req.pool } },
          });
          ctx.log.info('molt: bid accepted', { provider: ctx.name, pool: req.pool, offer: offer.id, lease: r.lease.id, pricePerGpuHour: price });
          return toLease(r.lease);
        } catch (e) {
          // Offers move: taken or re-priced between the listing and the bid; try the next one.
          if (e instanceof MoltApiError && e.status === 409 && (e.apiCode === 'outbid' || e.apiCode === 'offer_gone')) {
            refusals.push(`${offer.id}: ${e.apiCode}`);
            continue;
          }
          throw e;
        }
      }
      throw new ProviderError(ctx.name, `no molt offer took a bid for ${req.gpus}× ${req.gpuModel}: ${refusals.join('; ')}`, { address, retryable: true });
    },

    async release(leaseId: string): Promise<void> {
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
      return leases
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
            meta: { market: 'molt', offer: l.offerId, expiresAt: l.status === 'preempting' && l.preemptAt !== undefined ? l.preemptAt : l.expiresAt },
          };
          const pool = l.labels?.[LABEL_POOL];
          if (pool !== undefined) n.pool = pool;
          return n;
        })
        .sort((a, b) => a.id.localeCompare(b.id));
    },
  };

  // A lease the seller reclaims turns `preempting` with a deadline: that is molt's eviction notice.
  const notices: NoticesCapability = {
    async poll(node: NodeInfo): Promise<Notice[]> {
      const id = node.leaseId ?? node.id;
      let l: ApiLease;
      try {
        l = (await client.request<{ lease: ApiLease }>('GET', `/v1/leases/${encodeURIComponent(id)}`)).lease;
      } catch (e) {
        if (e instanceof MoltApiError && e.status === 404) return [];
        throw e;
      }
      if (l.status !== 'preempting' || l.preemptAt === undefined) return [];
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

  return { name: ctx.name, type: 'molt', capacity, nodes, notices };
}

/** The molt provider factory (`type: molt`). */
export const provider: ProviderFactory<MoltConfig> = {
  type: 'molt',
  description: 'molt GPU marketplace over HTTP: spot prices, offers, bids that become leases (capacity, nodes)',
  configSchema,
  create: (config, ctx) => createMoltProvider(config, ctx),
};
