// The branching lower bound (bound.ts): exact on a case worked by hand, 1 when the branches do not
// differ, the same optima as offlineOptimum, and never above what real online policies reach on
// both branches of random tiny markets (it is a lower bound for every online policy).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { branchBound, simpleFutures, spliceGrid, groupBounds } from '../../src/backtest/bound.js';
import { offlineOptimum } from '../../src/backtest/optimum.js';
import { egressMatrix, type Grid, type Job } from '../../src/backtest/model.js';
import { simulate, type BacktestPolicy } from '../../src/backtest/simulate.js';
import { greedyPolicy, onDemandPolicy, spotfleetPolicy, uniformProgressPolicy } from '../../src/backtest/policies.js';
import { THRESHOLDS, workloadSpec } from './helpers.js';

const H = 3_600_000;

function grid(avail: number[][], prices: number[][], od: number): Grid {
  return {
    startMs: Date.parse('2023-01-01T00:00:00Z'),
    dtMs: H,
    ticks: (avail[0] as number[]).length,
    zones: avail.map((_, i) => `z${i}`),
    avail: avail.map((a) => Uint8Array.from(a)),
    spotPerGpuHour: prices.map((p) => Float64Array.from(p)),
    onDemandPerGpuHour: od,
  };
}

function job(W: number, D: number, C: number): Job {
  return { workTicks: W, deadlineTicks: D, changeoverTicks: C, gpus: 1, emergencyCheckpointOk: true, checkpointIntervalTicks: 1 };
}

/**
 * The bound's promise: no policy (the baselines and spotfleet's) that meets the deadline on every
 * branch does better, on its worst branch, than the bound.
 */
function expectNoPolicyBeatsBound(branches: Grid[], j: Job, b: ReturnType<typeof branchBound>, sf: BacktestPolicy): void {
  for (const p of [onDemandPolicy(), greedyPolicy(), uniformProgressPolicy(), sf]) {
    let worst = 0;
    let allMet = true;
    branches.forEach((g, i) => {
      const r = simulate(g, j, p);
      allMet &&= r.deadlineMet;
      worst = Math.max(worst, r.costUsd / (b.optima[i] as number));
    });
    if (allMet) expect(worst).toBeGreaterThanOrEqual(b.bound - 1e-9);
  }
}

describe('branchBound', () => {
  it('no slack, spot up now: start on spot (and miss the deadline if it goes) or on on-demand (3 × if it stays): 3', () => {
    // 2 h of work, 1 h changeover, deadline 3 h: a changeover must start at tick 0. Spot $1, on-demand $3.
    // Stays up: the optimum is $3 on spot. Goes down at tick 1: spot cannot finish; on-demand $9 is the optimum.
    const up = grid([[1, 1, 1]], [[1, 1, 1]], 3);
    const down = grid([[1, 0, 0]], [[1, 1, 1]], 3);
    const b = branchBound([up, down], job(2, 3, 1), 1);
    expect(b.optima).toEqual([3, 9]);
    expect(b.bound).toBeCloseTo(3, 12); // on-demand from tick 0: $9 on both, 3 × on the first
  });

  it('branches that do not differ bound nothing (1), and their optima are offlineOptimum’s', () => {
    fc.assert(
      fc.property(fc.integer({ min: 4, max: 10 }), fc.integer({ min: 1, max: 2 }), fc.integer({ min: 0, max: 2 }), fc.array(fc.boolean(), { minLength: 20, maxLength: 20 }), fc.integer({ min: 1, max: 9 }), (ticks, W, C, bits, h) => {
        const g = grid([bits.slice(0, ticks).map(Number), bits.slice(10, 10 + ticks).map(Number)], [Array<number>(ticks).fill(1), Array<number>(ticks).fill(1.5)], 3);
        const j = job(W, ticks, C);
        const opt = offlineOptimum(g, j);
        const b = branchBound([g, g], j, Math.min(h, ticks - 1));
        if (opt === undefined) return;
        expect(b.optima[0]).toBeCloseTo(opt.costUsd, 9);
        expect(b.bound).toBeCloseTo(1, 9);
      }),
      { numRuns: 200 },
    );
  });

  it('no online policy does better than the bound on both branches (random tiny markets)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 6, max: 12 }), fc.integer({ min: 2, max: 4 }), fc.integer({ min: 1, max: 2 }), fc.array(fc.boolean(), { minLength: 48, maxLength: 48 }), fc.integer({ min: 1, max: 11 }), (ticks, W, C, bits, hh) => {
        const h = Math.min(hh, ticks - 1);
        const a = grid([bits.slice(0, ticks).map(Number), bits.slice(12, 12 + ticks).map(Number)], [Array<number>(ticks).fill(1), Array<number>(ticks).fill(1.5)], 3);
        const other = { avail: [Uint8Array.from(bits.slice(24, 24 + ticks).map(Number)), Uint8Array.from(bits.slice(36, 36 + ticks).map(Number))], spotPerGpuHour: a.spotPerGpuHour };
        const branches = [a, spliceGrid(a, h, other), ...simpleFutures(a, h).map((f) => spliceGrid(a, h, f))];
        const j = job(W, ticks, C);
        const b = branchBound(branches, j, h);
        if (b.optima.length === 0 || b.optima.some((o) => !Number.isFinite(o))) return;
        const overhead = { checkpointMs: 60_000, transferMs: 0, restartMs: C * H - 60_000 };
        const sf = spotfleetPolicy({ workload: workloadSpec({ expectedDurationMs: W * H }), thresholds: THRESHOLDS, overhead, deadlineMs: ticks * H });
        expectNoPolicyBeatsBound(branches, j, b, sf);
      }),
      { numRuns: 300 },
    );
  });

  it('groupBounds (one pass per window, shared by every h) gives what branchBound gives on the spliced traces', () => {
    fc.assert(
      fc.property(fc.integer({ min: 6, max: 12 }), fc.integer({ min: 2, max: 4 }), fc.integer({ min: 0, max: 2 }), fc.array(fc.boolean(), { minLength: 48, maxLength: 48 }), (ticks, W, C, bits) => {
        const a = grid([bits.slice(0, ticks).map(Number), bits.slice(12, 12 + ticks).map(Number)], [Array<number>(ticks).fill(1), Array<number>(ticks).fill(1.5)], 3);
        const o = grid([bits.slice(24, 24 + ticks).map(Number), bits.slice(36, 36 + ticks).map(Number)], [Array<number>(ticks).fill(1.2), Array<number>(ticks).fill(0.8)], 3);
        const j = job(W, ticks, C);
        const hs = [1, 2, 3, ticks - 2];
        const got = (groupBounds([a, o], j, hs)[0] ?? []);
        for (const g of got) {
          const want = branchBound([a, spliceGrid(a, g.h, o), ...simpleFutures(a, g.h).map((f) => spliceGrid(a, g.h, f))], j, g.h);
          expect(g.bound).toBeCloseTo(want.bound, 9);
          g.optima.forEach((x, i) => expect(x).toBeCloseTo(want.optima[i] as number, 9));
        }
      }),
      { numRuns: 200 },
    );
  });

  // Two zones in two regions (z0 us-east-1, z1 us-west-2): a move between them pays size × $0.02/GB.
  function withRegions(g: Grid): Grid {
    g.regions = [{ cloud: 'aws', region: 'us-east-1' }, { cloud: 'aws', region: 'us-west-2' }];
    g.zoneRegion = Uint8Array.from([0, 1]);
    return g;
  }

  it('with egress: branches that do not differ bound nothing, and their optima are the egress optimum’s', () => {
    fc.assert(
      fc.property(fc.integer({ min: 4, max: 10 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 0, max: 2 }), fc.array(fc.boolean(), { minLength: 20, maxLength: 20 }), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 100 }), (ticks, W, C, bits, h, sizeGB) => {
        const g = withRegions(grid([bits.slice(0, ticks).map(Number), bits.slice(10, 10 + ticks).map(Number)], [Array<number>(ticks).fill(1), Array<number>(ticks).fill(0.8)], 3));
        const j: Job = { ...job(W, ticks, C), egressUsd: egressMatrix(g, sizeGB) as Float64Array };
        const opt = offlineOptimum(g, j);
        const b = branchBound([g, g], j, Math.min(h, ticks - 1));
        if (opt === undefined || b.optima.length === 0) return;
        expect(b.optima[0]).toBeCloseTo(opt.costUsd, 9);
        expect(b.bound).toBeCloseTo(1, 9);
      }),
      { numRuns: 300 },
    );
  });

  it('with egress: no online policy does better than the bound on all branches, and each branch’s optimum is exact (random tiny markets)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 6, max: 12 }), fc.integer({ min: 2, max: 4 }), fc.integer({ min: 1, max: 2 }), fc.array(fc.boolean(), { minLength: 48, maxLength: 48 }), fc.integer({ min: 1, max: 11 }), fc.integer({ min: 1, max: 100 }), (ticks, W, C, bits, hh, sizeGB) => {
        const h = Math.min(hh, ticks - 1);
        const a = withRegions(grid([bits.slice(0, ticks).map(Number), bits.slice(12, 12 + ticks).map(Number)], [Array<number>(ticks).fill(1), Array<number>(ticks).fill(0.8)], 3));
        const other = { avail: [Uint8Array.from(bits.slice(24, 24 + ticks).map(Number)), Uint8Array.from(bits.slice(36, 36 + ticks).map(Number))], spotPerGpuHour: a.spotPerGpuHour };
        const branches = [a, spliceGrid(a, h, other), ...simpleFutures(a, h).map((f) => spliceGrid(a, h, f))];
        const j: Job = { ...job(W, ticks, C), egressUsd: egressMatrix(a, sizeGB) as Float64Array };
        const b = branchBound(branches, j, h);
        if (b.optima.length === 0 || b.optima.some((o) => !Number.isFinite(o))) return;
        branches.forEach((g, i) => expect(b.optima[i]).toBeCloseTo(offlineOptimum(g, j)?.costUsd ?? NaN, 9));
        const overhead = { checkpointMs: 60_000, transferMs: 0, restartMs: C * H - 60_000 };
        const w = workloadSpec({ expectedDurationMs: W * H });
        const sf = spotfleetPolicy({ workload: { ...w, checkpoint: { ...(w.checkpoint as NonNullable<typeof w.checkpoint>), sizeGB } }, thresholds: THRESHOLDS, overhead, deadlineMs: ticks * H });
        expectNoPolicyBeatsBound(branches, j, b, sf);
      }),
      { numRuns: 300 },
    );
  });

  it('with egress: worked by hand, the egress of the way back is what the bound charges (1.25, and 1 without egress)', () => {
    // z0 (us-east-1, $1) up throughout; z1 (us-west-2, $0.5) up from tick 1. Work 2 ticks, no
    // changeover, deadline 3 ticks, on-demand $3, a move across regions $1 (50 GB × $0.02).
    // Branch up: z1 stays up (optimum: z1 at ticks 1, 2: $1). Branch down: z1 only at tick 1
    // (optimum: z0 at ticks 0, 1: $2). At h = 2 the best state is "z1 at tick 1" ($0.5, one tick
    // done): up $1 (1 ×), down: back to z0 pays $1 of egress + $1 = $2.5 (1.25 ×). Every other state
    // is 2 × or worse on the up branch. Without egress the way back is free: 1.5 / 1.5 = 1.
    const up = withRegions(grid([[1, 1, 1], [0, 1, 1]], [[1, 1, 1], [0.5, 0.5, 0.5]], 3));
    const down = withRegions(grid([[1, 1, 1], [0, 1, 0]], [[1, 1, 1], [0.5, 0.5, 0.5]], 3));
    const j: Job = { ...job(2, 3, 0), egressUsd: egressMatrix(up, 50) as Float64Array };
    const b = branchBound([up, down], j, 2);
    expect(b.optima).toEqual([1, 2]);
    expect(b.bound).toBeCloseTo(1.25, 12);
    expect(branchBound([up, down], job(2, 3, 0), 2).bound).toBeCloseTo(1, 12);
  });
});

