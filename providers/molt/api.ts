// The molt API's own JSON shapes (docs/molt-api.md), as the provider reads them, and what a lease
// says of its own end. Kept apart from spotfleet's domain types (src/core/types.ts): the provider
// translates one into the other.

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
  /** When the GPUs are (or were) ready. */
  startsAt: string;
  expiresAt: string;
  /** Set while preempting: when the GPUs go away. */
  preemptAt?: string;
  /** Set once the lease ended. */
  endedAt?: string;
  /** Why it ended: `expired`, `preempted`, `released`, or `failed` (the seller could not provision its machine). */
  endReason?: string;
  /** Why the seller could not provision the machine (`endReason: failed`). */
  endMessage?: string;
  clientToken: string;
  labels?: Record<string, string>;
  /** Where the buyer reaches the machine over SSH once it is up (bids that carried a `bootstrap`). */
  host?: { address: string; port?: number };
}

/** When a lease's GPUs go away: its preemption deadline while it is preempting, else its expiry. */
export function leaseEndsAt(l: ApiLease): string {
  return l.status === 'preempting' && l.preemptAt !== undefined ? l.preemptAt : l.expiresAt;
}
