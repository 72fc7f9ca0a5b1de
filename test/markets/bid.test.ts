// Unit tests of the bid strategy with hand-computed numbers.
import { describe, expect, it } from 'vitest';
import { computeBid, renewalDecision, shouldRenew } from '../../src/core/bid.js';

describe('computeBid', () => {
  it('bids 5% above spot by default: 1.00 → 1.05', () => {
    const d = computeBid({ spotPricePerGpuHour: 1.0 });
    expect(d).toMatchObject({ bid: true, pricePerGpuHour: 1.05, reason: { rule: 'bid' } });
  });

  it('rounds once: 0.90 × 1.05 = 0.945', () => {
    expect(computeBid({ spotPricePerGpuHour: 0.9, maxPricePerGpuHour: 2 })).toMatchObject({ bid: true, pricePerGpuHour: 0.945 });
  });

  it('takes a custom margin: 2.00 × 1.10 = 2.20 under a 3.00 cap', () => {
    expect(computeBid({ spotPricePerGpuHour: 2, maxPricePerGpuHour: 3, onDemandPricePerGpuHour: 4 }, { margin: 0.1 })).toMatchObject({ bid: true, pricePerGpuHour: 2.2 });
  });

  it('caps by the pool maxPricePerHour: 1.20 × 1.05 = 1.26 → 1.25', () => {
    const d = computeBid({ spotPricePerGpuHour: 1.2, maxPricePerGpuHour: 1.25, onDemandPricePerGpuHour: 3 });
    expect(d).toMatchObject({ bid: true, pricePerGpuHour: 1.25, reason: { rule: 'bid-capped', numbers: { wantedPerGpuHour: 1.26, capPerGpuHour: 1.25 } } });
    expect(d.reason.text).toContain('pool maxPricePerHour');
  });

  it('caps by the on-demand price when it is tighter: 1.20 → 1.22', () => {
    const d = computeBid({ spotPricePerGpuHour: 1.2, maxPricePerGpuHour: 2, onDemandPricePerGpuHour: 1.22 });
    expect(d).toMatchObject({ bid: true, pricePerGpuHour: 1.22, reason: { rule: 'bid-capped' } });
    expect(d.reason.text).toContain('on-demand');
  });

  it('bids exactly the spot price when the cap equals it', () => {
    expect(computeBid({ spotPricePerGpuHour: 1, maxPricePerGpuHour: 1 })).toMatchObject({ bid: true, pricePerGpuHour: 1 });
  });

  it('does not bid when the pool cap is below spot, and says why with the numbers', () => {
    const d = computeBid({ spotPricePerGpuHour: 1.5, maxPricePerGpuHour: 1.4, onDemandPricePerGpuHour: 3 });
    expect(d.bid).toBe(false);
    expect(d.reason).toMatchObject({ rule: 'bid-cap-below-spot', numbers: { spotPricePerGpuHour: 1.5, capPerGpuHour: 1.4, maxPricePerGpuHour: 1.4 } });
    expect(d.reason.text).toContain('outbid');
  });

  it('does not bid when spot is above on-demand: on-demand is cheaper and safe', () => {
    const d = computeBid({ spotPricePerGpuHour: 3.1, onDemandPricePerGpuHour: 3.0 });
    expect(d.bid).toBe(false);
    expect(d.reason.text).toContain('on-demand is cheaper');
  });

  it('refuses nonsense input instead of bidding', () => {
    expect(computeBid({ spotPricePerGpuHour: Number.NaN }).bid).toBe(false);
    expect(computeBid({ spotPricePerGpuHour: 1 }, { margin: -0.1 }).bid).toBe(false);
  });
});

describe('shouldRenew', () => {
  const now = Date.parse('2026-01-01T12:00:00Z');
  const lease = (expiresAt: string | undefined, state: 'active' | 'released' | 'pending' = 'active') => (expiresAt === undefined ? { state } : { state, expiresAt });

  it('renews an active lease that expires within the window (30 min left, 1 h window)', () => {
    expect(shouldRenew(lease('2026-01-01T12:30:00Z'), now, { renewBefore: 3_600_000 })).toBe(true);
    expect(renewalDecision(lease('2026-01-01T12:30:00Z'), now, { renewBefore: 3_600_000 }).reason.numbers).toEqual({ leftHours: 0.5, renewBeforeHours: 1 });
  });

  it('waits while the expiry is outside the window (2 h left, 1 h window)', () => {
    expect(shouldRenew(lease('2026-01-01T14:00:00Z'), now, { renewBefore: 3_600_000 })).toBe(false);
  });

  it('renews at the edge of the window and past expiry', () => {
    expect(shouldRenew(lease('2026-01-01T13:00:00Z'), now, { renewBefore: 3_600_000 })).toBe(true);
    expect(shouldRenew(lease('2026-01-01T11:59:00Z', 'pending'), now, { renewBefore: 0 })).toBe(true);
  });

  it('never renews released leases or leases without an expiry', () => {
    expect(shouldRenew(lease('2026-01-01T12:10:00Z', 'released'), now, { renewBefore: 3_600_000 })).toBe(false);
    expect(shouldRenew(lease(undefined), now, { renewBefore: 3_600_000 })).toBe(false);
  });
});
