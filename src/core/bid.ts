// The bid strategy for markets that take bids (molt, EC2 spot max price): a margin above the
// current spot price, capped by the pool's maxPricePerHour and by the on-demand price, and the rule
// for renewing a lease before it expires. Pure: numbers in, a decision with its reason out.
// Imports only src/core and type-only policy contracts, so providers can use it as a library.
import { HOUR_MS, roundUsd } from './units.js';
import type { Lease } from './types.js';
/** Why a bid is what it is (the same shape as a policy Reason, kept here so providers need only core). */
export interface Reason {
  rule: string;
  text: string;
  numbers?: Record<string, number>;
}

/** Default margin above the spot price: 5%. */
export const DEFAULT_BID_MARGIN = 0.05;

export interface BidInput {
  /** Current spot price, USD per GPU-hour. */
  spotPricePerGpuHour: number;
  /** The pool's cap (`maxPricePerHour`, USD per GPU-hour); absent = no pool cap. */
  maxPricePerGpuHour?: number;
  /** On-demand price for the same GPUs, USD per GPU-hour; absent = unknown (no on-demand cap). */
  onDemandPricePerGpuHour?: number;
}

export interface BidOptions {
  /** Fraction above spot, e.g. 0.05 for 5%. Default DEFAULT_BID_MARGIN. */
  margin?: number;
}

/** A bid to place, or the reason not to place one. Prices are USD per GPU-hour, rounded once. */
export type BidDecision =
  | { bid: true; pricePerGpuHour: number; reason: Reason }
  | { bid: false; reason: Reason };

/**
 * Computes the bid price for one GPU-hour: `spot × (1 + margin)`, capped by the pool's
 * `maxPricePerHour` and by the on-demand price. When the cap is below the current spot price there
 * is no bid: a bid below spot is outbid at once (or preempted first), and paying more than the cap
 * breaks the pool's limit or costs more than on-demand, which is never preemptible.
 * @example computeBid({ spotPricePerGpuHour: 1.0, maxPricePerGpuHour: 2.0 }) // bid 1.05
 */
export function computeBid(input: BidInput, opts: BidOptions = {}): BidDecision {
  const margin = opts.margin ?? DEFAULT_BID_MARGIN;
  const spot = input.spotPricePerGpuHour;
  const numbers: Record<string, number> = { spotPricePerGpuHour: spot, margin };
  if (!Number.isFinite(spot) || spot < 0) {
    return { bid: false, reason: { rule: 'bid', text: 'no valid spot price to bid against', numbers } };
  }
  if (!Number.isFinite(margin) || margin < 0) {
    return { bid: false, reason: { rule: 'bid', text: `margin ${margin} is not a non-negative fraction`, numbers } };
  }
  const wanted = roundUsd(spot * (1 + margin));
  numbers.wantedPerGpuHour = wanted;
  const caps: { name: string; value: number }[] = [];
  if (input.maxPricePerGpuHour !== undefined) {
    numbers.maxPricePerGpuHour = input.maxPricePerGpuHour;
    caps.push({ name: 'pool maxPricePerHour', value: input.maxPricePerGpuHour });
  }
  if (input.onDemandPricePerGpuHour !== undefined) {
    numbers.onDemandPricePerGpuHour = input.onDemandPricePerGpuHour;
    caps.push({ name: 'on-demand price', value: input.onDemandPricePerGpuHour });
  }
  // The tightest cap decides; ties name the pool cap first (it is the user's own limit).
  const cap = caps.reduce<{ name: string; value: number } | undefined>((min, c) => (min === undefined || c.value < min.value ? c : min), undefined);
  if (cap !== undefined) numbers.capPerGpuHour = cap.value;
  if (cap !== undefined && cap.value < spot) {
    return {
      bid: false,
      reason: {
        rule: 'bid-cap-below-spot',
        text:
          `no bid: the ${cap.name} $${cap.value}/GPU-h is below the spot price $${spot}/GPU-h; ` +
          (cap.name === 'on-demand price'
            ? 'on-demand is cheaper and cannot be preempted'
            : 'a bid under the spot price would be outbid at once, and a bid over the cap breaks the pool limit'),
        numbers,
      },
    };
  }
  if (cap !== undefined && cap.value < wanted) {
    const price = roundUsd(cap.value);
    numbers.bidPerGpuHour = price;
    return {
      bid: true,
      pricePerGpuHour: price,
      reason: { rule: 'bid-capped', text: `bid $${price}/GPU-h: spot $${spot} + ${pct(margin)} = $${wanted}, capped by the ${cap.name}`, numbers },
    };
  }
  numbers.bidPerGpuHour = wanted;
  return {
    bid: true,
    pricePerGpuHour: wanted,
    reason: { rule: 'bid', text: `bid $${wanted}/GPU-h: spot $${spot} + ${pct(margin)} margin`, numbers },
  };
}

function pct(margin: number): string {
  return `${roundUsd(margin * 100)}%`;
}

export interface RenewOptions {
  /** Renew when the lease expires within this many ms. */
  renewBefore: number;
}

/** Whether (and why) a lease should be renewed now. */
export function renewalDecision(lease: Pick<Lease, 'state' | 'expiresAt'>, now: number, opts: RenewOptions): { renew: boolean; reason: Reason } {
  if (lease.expiresAt === undefined) {
    return { renew: false, reason: { rule: 'renew', text: 'the lease has no expiry' } };
  }
  if (lease.state !== 'active' && lease.state !== 'pending') {
    return { renew: false, reason: { rule: 'renew', text: `the lease is ${lease.state}; only pending or active leases renew` } };
  }
  const expiresAt = Date.parse(lease.expiresAt);
  if (!Number.isFinite(expiresAt)) {
    return { renew: false, reason: { rule: 'renew', text: `the lease expiry "${lease.expiresAt}" is not a time` } };
  }
  const leftMs = expiresAt - now;
  const numbers = { leftHours: roundUsd(leftMs / HOUR_MS), renewBeforeHours: roundUsd(opts.renewBefore / HOUR_MS) };
  if (leftMs <= opts.renewBefore) {
    return { renew: true, reason: { rule: 'renew', text: `the lease expires in ${numbers.leftHours} h, within the renewal window of ${numbers.renewBeforeHours} h`, numbers } };
  }
  return { renew: false, reason: { rule: 'renew', text: `the lease expires in ${numbers.leftHours} h, outside the renewal window of ${numbers.renewBeforeHours} h`, numbers } };
}

/**
 * True when a pending or active lease expires within `renewBefore` ms of `now` (ms epoch),
 * including a lease whose expiry already passed but that the market still reports as active.
 */
export function shouldRenew(lease: Pick<Lease, 'state' | 'expiresAt'>, now: number, opts: RenewOptions): boolean {
  return renewalDecision(lease, now, opts).renew;
}
