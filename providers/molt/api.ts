// The molt API's own JSON shapes (docs/molt-api.md), as the provider reads them. Kept apart from
// spotfleet's domain types (src/core/types.ts): the provider translates one into the other.

/** One entry of `GET /v1/spot-prices`. */
export interface ApiPrice {
  gpuModel: string;
  zone: string;
  pricePerGpuHour: number;
  onDemandPricePerGpuHour?: number;
  preemptionRatePerHour?: number;
  offers?: number;
  at: string;
}

/** One entry of `GET /v1/offers`. */
export interface ApiOffer {
  id: string;
  gpuModel: string;
  minGpus: number;
  maxGpus: number;
  pricePerGpuHour: number;
  zone: string;
  expiresAt: string;
}

/** A lease, as bids, `GET /v1/leases[/id]`, renewals and releases return it. */
export interface ApiLease {
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
  endedAt?: string;
  endReason?: string;
  /** Why the seller could not provision the machine (`endReason: failed`). */
  endMessage?: string;
  clientToken: string;
  labels?: Record<string, string>;
  /** Where the buyer reaches the machine over SSH once it is up (bids that carried a `bootstrap`). */
  host?: { address: string; port?: number };
}
