// molt leases as machines spotfleet runs work on: a cloud driver of the capacity kit for the molt
// marketplace. A bid carries the bootstrap script (spotfleet's login key and a host key it made
// for that machine) for the seller to run when it provisions the host; a lease that carries a
// `host` (address and SSH port) is then reached like any bought VM: a node once SSH answers with
// that host key and docker and nvidia-smi respond. The host key's public half rides in the lease's
// labels. Offerings are the spot prices per GPU model and zone; a launch bids on the cheapest
// fitting offer of its zone at the bid strategy's price, and a zone with no offer that takes the
// bid is a capacity miss (the next zone is tried). Notices come from the API (a preempting lease),
// not from a metadata service, so the driver names no cloud. A preempting lease's machine runs
// until its deadline, so it stays a node (the workload is checkpointed there); a lease that ended
// without a release (preempted, expired, or its machine could not be provisioned) is listed
// `terminated`, with why, for an hour, so an acquire waiting on it fails with the reason.
import { ProviderError } from '../../src/core/errors.js';
import type { Lease } from '../../src/core/types.js';
import type { PriceQuery, ProviderContext } from '../../src/providers/sdk.js';
import { idempotencyDigest, type CapacityErrorInfo, type CloudDriver, type CloudInstance, type CloudOffering, type LaunchRequest } from '../../src/providers/kit/capacity/index.js';
import { leaseEndsAt, type ApiLease } from './api.js';
import { bidOnOffers, listOffers, spotPrices } from './bidding.js';
import { MoltApiError, type MoltClient } from './client.js';

export const LABEL_FLEET = 'spotfleet.dev/fleet';
export const LABEL_POOL = 'spotfleet.dev/pool';
export const LABEL_HOST_KEY = 'spotfleet.dev/host-key';
export const LABEL_KEY = 'spotfleet.dev/key';
const OURS = new Set([LABEL_FLEET, LABEL_POOL, LABEL_HOST_KEY, LABEL_KEY]);

/** How long a lease that ended without a release stays listed (as `terminated`, with why). */
export const ENDED_LISTED_MS = 3_600_000;

/** What a lease and the machine it bought both say of it: its pool (spotfleet's label), spot capacity, GPUs, zone and price. */
export function leaseTerms(l: ApiLease): Pick<Lease, 'pool' | 'capacity' | 'gpuModel' | 'gpus' | 'zone' | 'pricePerHour'> {
  return { pool: l.labels?.[LABEL_POOL] ?? '', capacity: 'spot', gpuModel: l.gpuModel, gpus: l.gpus, zone: l.zone, pricePerHour: l.pricePerHour };
}

/** No offer in the zone took the bid: a capacity miss for that zone. */
class NoOfferError extends Error {
  readonly code = 'NoOffer';
}

export interface MoltDriverOptions {
  ctx: ProviderContext;
  client: MoltClient;
  margin: number;
  defaultHours: number;
  /** This fleet's leases that are not over (pending, active, preempting), and the expired ones. */
  ownLeases: () => Promise<ApiLease[]>;
}

/** Creates the molt driver. */
export function createMoltDriver(o: MoltDriverOptions): CloudDriver {
  const { ctx, client } = o;

  function toInstance(l: ApiLease): CloudInstance {
    const labels: Record<string, string> = {};
    for (const [k, v] of Object.entries(l.labels ?? {})) if (!OURS.has(k)) labels[k] = v;
    // A preempting lease's machine runs until its deadline: still a node, so the work is checkpointed there.
    const up = (l.status === 'active' || l.status === 'preempting') && l.host !== undefined;
    const inst: CloudInstance = {
      id: l.id,
      ...leaseTerms(l),
      launchedAt: Date.parse(l.createdAt) || 0,
      state: up ? 'running' : l.status === 'pending' || l.status === 'active' ? 'pending' : l.status === 'preempting' ? 'stopping' : 'terminated',
      labels,
      meta: { market: 'molt', offer: l.offerId, expiresAt: leaseEndsAt(l) },
    };
    if (l.host !== undefined) {
      inst.publicAddress = l.host.address;
      if (l.host.port !== undefined) inst.port = l.host.port;
    }
    if (l.status === 'expired' || l.status === 'released') inst.stateReason = `the lease ended (${l.endReason ?? l.status})${l.endMessage ? `: ${l.endMessage}` : ''}`;
    const hk = l.labels?.[LABEL_HOST_KEY];
    if (hk !== undefined) inst.hostKey = hk;
    const key = l.labels?.[LABEL_KEY];
    if (key !== undefined) inst.idempotencyKey = key;
    return inst;
  }

  return {
    label: 'molt',
    noun: 'lease',

    async list() {
      const t = ctx.now();
      return (await o.ownLeases())
        .filter((l) => l.status !== 'released' && (l.status !== 'expired' || t - (Date.parse(l.endedAt ?? '') || 0) < ENDED_LISTED_MS))
        .map(toInstance)
        .sort((a, b) => a.id.localeCompare(b.id));
    },

    /** Per GPU model and zone: the spot price, for as many GPUs as the zone's open offers sell. */
    async offerings(query: PriceQuery): Promise<CloudOffering[]> {
      if (query.capacity === 'on-demand') return [];
      const [prices, offers] = await Promise.all([spotPrices(client, query.gpuModel), listOffers(client, { gpuModel: query.gpuModel })]);
      const out: CloudOffering[] = [];
      for (const p of prices) {
        const most = Math.max(0, ...offers.filter((x) => x.gpuModel === p.gpuModel && x.zone === p.zone).map((x) => x.maxGpus));
        const gpus = Math.max(1, most);
        out.push({ type: p.gpuModel, zone: p.zone, capacity: 'spot', gpuModel: p.gpuModel, gpus, pricePerHour: p.pricePerGpuHour * gpus, at: p.at, source: 'molt spot prices', divisible: true });
      }
      return out;
    },

    async launch(l: LaunchRequest): Promise<CloudInstance> {
      const req = l.req;
      const zone = l.option.zone;
      const bid = await bidOnOffers(client, req, {
        zone,
        margin: o.margin,
        defaultHours: o.defaultHours,
        carry: { clientToken: l.token, labels: { ...req.labels, [LABEL_FLEET]: ctx.fleet, [LABEL_POOL]: req.pool, [LABEL_HOST_KEY]: l.hostKeyPublic, [LABEL_KEY]: idempotencyDigest(req.idempotencyKey) }, bootstrap: l.bootScript },
      });
      if ('lease' in bid) return toInstance(bid.lease);
      throw new NoOfferError(`no offer in ${zone ?? 'any zone'} took a bid for ${req.gpus}× ${req.gpuModel}${bid.refusals.length ? ` (${bid.refusals.join('; ')})` : ''}`);
    },

    async terminate(id: string): Promise<void> {
      try {
        await client.request('DELETE', `/v1/leases/${encodeURIComponent(id)}`);
      } catch (e) {
        if (e instanceof MoltApiError && e.status === 404) return; // already gone: release is idempotent
        throw e instanceof ProviderError ? e : new ProviderError(ctx.name, `releasing molt lease ${id}: ${(e as Error).message}`, { cause: e });
      }
    },

    capacityError(e: unknown): CapacityErrorInfo | undefined {
      return e instanceof NoOfferError ? { code: 'NoOffer', message: e.message, scope: 'zone' } : undefined;
    },
  };
}
