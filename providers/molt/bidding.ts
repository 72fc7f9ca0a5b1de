// Bidding on molt offers, the one way both buyers in this provider do it: acquire (index.ts, a
// lease) and the machine driver (hosts.ts, a lease whose host becomes a node). The offers that fit
// a request (its GPUs, zone and offer id), cheapest first; the price to bid on each (the request's
// own bid, else the bid strategy's from the zone's spot price, src/core/bid.ts); then a bid on each
// in turn until one takes. An offer taken or re-priced between the listing and the bid (409
// outbid / offer_gone) is a refusal, and the next offer is tried.
import type { AcquireRequest } from '../../src/providers/sdk.js';
import { computeBid } from '../../src/core/bid.js';
import type { ApiLease, ApiOffer, ApiPrice } from './api.js';
import { MoltApiError, type MoltClient } from './client.js';

/** `GET /v1/spot-prices`, of one GPU model or all. */
export async function spotPrices(client: MoltClient, gpuModel?: string): Promise<ApiPrice[]> {
  return (await client.request<{ prices: ApiPrice[] }>('GET', '/v1/spot-prices', { query: { gpuModel } })).prices;
}

/** `GET /v1/offers`, with the API's filters. */
export async function listOffers(client: MoltClient, q: { gpuModel?: string | undefined; minGpus?: number; maxPricePerHour?: number }): Promise<ApiOffer[]> {
  return (await client.request<{ offers: ApiOffer[] }>('GET', '/v1/offers', { query: q })).offers;
}

export interface BidOptions {
  /** Only offers in this zone; any zone when undefined. */
  zone: string | undefined;
  /** The bid strategy's margin above the spot price. */
  margin: number;
  /** Lease length when the request names none, in hours. */
  defaultHours: number;
  /** What the bid carries besides the offer, price, GPUs and duration: clientToken, labels, bootstrap. */
  carry: Record<string, unknown>;
}

/** A bid that took: the lease, and the offer and price per GPU-hour it took at. */
export interface BidTaken {
  lease: ApiLease;
  offer: ApiOffer;
  pricePerGpuHour: number;
}

/** No bid took: how many offers fitted the request, and why each refused (`<offer id>: <why>`). */
export interface BidRefused {
  fitting: number;
  refusals: string[];
}

/**
 * Bids on the offers that fit `req`, cheapest first, until one takes. Errors other than an offer
 * that moved (a 409 outbid / offer_gone) end the bidding and are thrown.
 */
export async function bidOnOffers(client: MoltClient, req: AcquireRequest, o: BidOptions): Promise<BidTaken | BidRefused> {
  const prices = await spotPrices(client, req.gpuModel);
  const q: { gpuModel: string; minGpus: number; maxPricePerHour?: number } = { gpuModel: req.gpuModel, minGpus: req.gpus };
  if (req.maxPricePerGpuHour !== undefined) q.maxPricePerHour = req.maxPricePerGpuHour;
  let offers = (await listOffers(client, q)).filter((x) => x.minGpus <= req.gpus && x.maxGpus >= req.gpus && (o.zone === undefined || x.zone === o.zone));
  if (req.offerId !== undefined) offers = offers.filter((x) => x.id === req.offerId);
  offers.sort((a, b) => a.pricePerGpuHour - b.pricePerGpuHour || a.id.localeCompare(b.id));
  const refusals: string[] = [];
  for (const offer of offers) {
    let price: number;
    if (req.bidPerGpuHour !== undefined) price = req.bidPerGpuHour;
    else {
      const spot = prices.find((p) => p.gpuModel === offer.gpuModel && p.zone === offer.zone);
      const input: Parameters<typeof computeBid>[0] = { spotPricePerGpuHour: spot?.pricePerGpuHour ?? offer.pricePerGpuHour };
      if (req.maxPricePerGpuHour !== undefined) input.maxPricePerGpuHour = req.maxPricePerGpuHour;
      if (spot?.onDemandPricePerGpuHour !== undefined) input.onDemandPricePerGpuHour = spot.onDemandPricePerGpuHour;
      const d = computeBid(input, { margin: o.margin });
      if (!d.bid) {
        refusals.push(`${offer.id}: ${d.reason.text}`);
        continue;
      }
      price = d.pricePerGpuHour;
    }
    if (price < offer.pricePerGpuHour) {
      refusals.push(`${offer.id}: asks $${offer.pricePerGpuHour}/GPU-h, above the bid $${price}/GPU-h`);
      continue;
    }
    try {
      const r = await client.request<{ lease: ApiLease }>('POST', '/v1/bids', {
        body: { offerId: offer.id, pricePerGpuHour: price, gpus: req.gpus, durationHours: req.durationHours ?? o.defaultHours, ...o.carry },
      });
      return { lease: r.lease, offer, pricePerGpuHour: price };
    } catch (e) {
      if (e instanceof MoltApiError && e.status === 409 && (e.apiCode === 'outbid' || e.apiCode === 'offer_gone')) {
        refusals.push(`${offer.id}: ${e.apiCode}`);
        continue;
      }
      throw e;
    }
  }
  return { fitting: offers.length, refusals };
}
