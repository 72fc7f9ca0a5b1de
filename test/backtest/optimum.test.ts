// The offline optimum against brute force on tiny random traces, and never above any policy that
// meets the deadline on random traces.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { offlineOptimum } from '../../src/backtest/optimum.js';
import { SPOT0, egressMatrix, type Grid, type Job } from '../../src/backtest/model.js';
import type { RegionRef } from '../../src/core/egress.js';
import { replayPolicy, simulate } from '../../src/backtest/simulate.js';
import { decideByDeadlineAdvice, greedyPolicy, onDemandPolicy, spotfleetPolicy, uniformProgressPolicy } from '../../src/backtest/policies.js';
import { THRESHOLDS, workloadSpec } from './helpers.js';

const H = 3_600_000;

function grid(ticks: number, avail: number[][], prices: number[][], od: number): Grid {
  return {
    startMs: Date.parse('2023-01-01T00:00:00Z'),
    dtMs: H,
    ticks,
    zones: avail.map((_, i) => `z${i}`),
    avail: avail.map((a) => Uint8Array.from(a)),
    spotPerGpuHour: prices.map((p) => Float64Array.from(p)),
    onDemandPerGpuHour: od,
  };
}

const tinyCase = fc
  .record({ ticks: fc.integer({ min: 1, max: 6 }), zones: fc.integer({ min: 1, max: 2 }), W: fc.integer({ min: 1, max: 4 }), C: fc.integer({ min: 0, max: 2 }), gpus: fc.integer({ min: 1, max: 2 }), ok: fc.boolean() })
  .chain((c) =>
    fc.record({
      c: fc.constant(c),
      D: fc.integer({ min: 1, max: c.ticks }),
      avail: fc.array(fc.array(fc.integer({ min: 0, max: 1 }), { minLength: c.ticks, maxLength: c.ticks }), { minLength: c.zones, maxLength: c.zones }),
      prices: fc.array(fc.array(fc.integer({ min: 1, max: 30 }).map((x) => x / 10), { minLength: c.ticks, maxLength: c.ticks }), { minLength: c.zones, maxLength: c.zones }),
      od: fc.integer({ min: 10, max: 40 }).map((x) => x / 10),
    }),
  );

/** Every location sequence of length D through the simulator: the cheapest that meets the deadline. */
function bruteForce(g: Grid, job: Job): number | undefined {
  const L = SPOT0 + g.zones.length;
  const D = job.deadlineTicks;
  const seq = new Uint8Array(D);
  let best: number | undefined;
  const total = L ** D;
  for (let n = 0; n < total; n++) {
    let x = n;
    for (let k = 0; k < D; k++) {
      seq[k] = x % L;
      x = Math.floor(x / L);
    }
    const r = simulate(g, job, replayPolicy('bf', seq), D);
    if (r.deadlineMet && (best === undefined || r.costUsd < best)) best = r.costUsd;
  }
  return best;
}

describe('offline optimum', () => {
  it('equals brute force over all schedules on tiny random traces', () => {
    fc.assert(
      fc.property(tinyCase, ({ c, D, avail, prices, od }) => {
        const g = grid(c.ticks, avail, prices, od);
        const job: Job = { workTicks: c.W, deadlineTicks: D, changeoverTicks: c.C, gpus: c.gpus, emergencyCheckpointOk: c.ok, checkpointIntervalTicks: 2 };
        const bf = bruteForce(g, job);
        const opt = offlineOptimum(g, job);
        if (bf === undefined) {
          expect(opt).toBeUndefined();
          return;
        }
        expect(opt).toBeDefined();
        expect(opt?.costUsd).toBeCloseTo(bf, 9);
        // Its schedule replays through the simulator to the same cost, on time.
        const r = simulate(g, job, replayPolicy('opt', opt?.schedule ?? []));
        expect(r.deadlineMet).toBe(true);
        expect(r.costUsd).toBeCloseTo(bf, 9);
      }),
      { numRuns: 300, seed: 7 },
    );
  });

  it('is never above any policy that meets the deadline (random traces, lost work on or off)', () => {
    const midCase = fc
      .record({ zones: fc.integer({ min: 1, max: 3 }), W: fc.integer({ min: 5, max: 30 }), extra: fc.integer({ min: 1, max: 25 }), C: fc.integer({ min: 0, max: 3 }), ok: fc.boolean(), up: fc.integer({ min: 2, max: 9 }) })
      .chain((c) => {
        const ticks = c.W + c.extra + c.C + 40;
        return fc.record({
          c: fc.constant({ ...c, ticks }),
          avail: fc.array(fc.array(fc.integer({ min: 0, max: 9 }).map((x) => (x < c.up ? 1 : 0)), { minLength: ticks, maxLength: ticks }), { minLength: c.zones, maxLength: c.zones }),
          prices: fc.array(fc.array(fc.integer({ min: 5, max: 15 }).map((x) => x / 10), { minLength: ticks, maxLength: ticks }), { minLength: c.zones, maxLength: c.zones }),
        });
      });
    let compared = 0;
    fc.assert(
      fc.property(midCase, ({ c, avail, prices }) => {
        const g = grid(c.ticks, avail, prices, 3.06);
        const job: Job = { workTicks: c.W, deadlineTicks: c.W + c.C + c.extra, changeoverTicks: c.C, gpus: 1, emergencyCheckpointOk: c.ok, checkpointIntervalTicks: 3 };
        const opt = offlineOptimum(g, job);
        expect(opt).toBeDefined(); // on-demand alone always fits: deadline ≥ work + changeover
        const spec = workloadSpec({ expectedDurationMs: c.W * H });
        const overhead = { checkpointMs: c.ok ? 60_000 : 600_000, transferMs: 0, restartMs: Math.max(0, c.C * H - (c.ok ? 60_000 : 600_000)) };
        const policies = [greedyPolicy(), uniformProgressPolicy(), onDemandPolicy(), spotfleetPolicy({ workload: spec, thresholds: THRESHOLDS, overhead, deadlineMs: job.deadlineTicks * H }), spotfleetPolicy({ workload: spec, thresholds: THRESHOLDS, overhead, deadlineMs: job.deadlineTicks * H, decide: decideByDeadlineAdvice, name: 'advice' })];
        for (const p of policies) {
          const r = simulate(g, job, p);
          if (!r.deadlineMet) continue;
          compared++;
          expect(opt?.costUsd ?? Infinity).toBeLessThanOrEqual(r.costUsd + 1e-9);
        }
      }),
      { numRuns: 150, seed: 11 },
    );
    expect(compared).toBeGreaterThan(300);
  });

  it('with egress between regions: still equals brute force (the checkpoint’s region is part of the state)', () => {
    fc.assert(
      fc.property(tinyCase, fc.integer({ min: 1, max: 40 }), ({ c, D, avail, prices, od }, sizeGB) => {
        const g = grid(c.ticks, avail, prices, od);
        // Zone i in its own region (z0: us-east-1, z1: us-west-2): a move between them pays.
        g.regions = ([{ cloud: 'aws', region: 'us-east-1' }, { cloud: 'aws', region: 'us-west-2' }] as RegionRef[]).slice(0, avail.length);
        g.zoneRegion = Uint8Array.from(avail.map((_, i) => i));
        const eg = egressMatrix(g, sizeGB / 10);
        const job: Job = { workTicks: c.W, deadlineTicks: D, changeoverTicks: c.C, gpus: c.gpus, emergencyCheckpointOk: c.ok, checkpointIntervalTicks: 2 };
        if (eg) job.egressUsd = eg;
        const bf = bruteForce(g, job);
        const opt = offlineOptimum(g, job);
        if (bf === undefined) {
          expect(opt).toBeUndefined();
          return;
        }
        expect(opt?.costUsd).toBeCloseTo(bf, 9);
        const r = simulate(g, job, replayPolicy('opt', opt?.schedule ?? []));
        expect(r.deadlineMet).toBe(true);
        expect(r.costUsd).toBeCloseTo(bf, 9);
      }),
      { numRuns: 300, seed: 17 },
    );
  });

  it('egress: the first start is free, a later move across regions pays size × $0.02/GB', () => {
    // z0 (us-east-1) up for 2 ticks then gone; z1 (us-west-2) up from tick 2. Work 3, no changeover.
    const g = grid(6, [[1, 1, 0, 0, 0, 0], [0, 0, 1, 1, 1, 1]], [[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]], 9);
    g.regions = [{ cloud: 'aws', region: 'us-east-1' }, { cloud: 'aws', region: 'us-west-2' }];
    g.zoneRegion = Uint8Array.from([0, 1]);
    const job: Job = { workTicks: 3, deadlineTicks: 6, changeoverTicks: 0, gpus: 1, emergencyCheckpointOk: true, checkpointIntervalTicks: 1, egressUsd: egressMatrix(g, 100) as Float64Array };
    const r = simulate(g, job, greedyPolicy());
    expect(r.egressUsd).toBe(2);
    expect(r.costUsd).toBeCloseTo(3 + 2, 9);
    // The optimum waits for z1 instead (3 ticks there, no egress).
    expect(offlineOptimum(g, job)?.costUsd).toBeCloseTo(3, 9);
  });

  it('waits for cheap spot when the deadline allows and uses on-demand when it must', () => {
    // Zone 0 is down for 3 ticks, then up; work 2, changeover 1.
    const g = grid(8, [[0, 0, 0, 1, 1, 1, 1, 1]], [[1, 1, 1, 1, 1, 1, 1, 1]], 3);
    const loose = offlineOptimum(g, { workTicks: 2, deadlineTicks: 8, changeoverTicks: 1, gpus: 1, emergencyCheckpointOk: true, checkpointIntervalTicks: 1 });
    expect(loose?.costUsd).toBeCloseTo(3, 9); // wait 3 ticks, then 1 changeover + 2 work on spot at $1
    expect(Array.from(loose?.schedule ?? []).filter((l) => l !== 0)).toEqual([2, 2, 2]);
    const tight = offlineOptimum(g, { workTicks: 2, deadlineTicks: 3, changeoverTicks: 1, gpus: 1, emergencyCheckpointOk: true, checkpointIntervalTicks: 1 });
    expect(tight?.costUsd).toBeCloseTo(9, 9); // on-demand at $3 for 3 ticks
    expect(offlineOptimum(g, { workTicks: 3, deadlineTicks: 3, changeoverTicks: 1, gpus: 1, emergencyCheckpointOk: true, checkpointIntervalTicks: 1 })).toBeUndefined();
  });

  it('books lost work when the emergency checkpoint does not fit the notice', () => {
    // Spot up for 4 ticks then gone; periodic checkpoint every 3 ticks of progress.
    const g = grid(12, [[1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]], [[1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]], 3);
    const job: Job = { workTicks: 6, deadlineTicks: 12, changeoverTicks: 1, gpus: 1, emergencyCheckpointOk: false, checkpointIntervalTicks: 3 };
    const r = simulate(g, job, greedyPolicy());
    expect(r.preemptions).toBe(1);
    expect(r.lostWorkHours).toBe(1); // 4 ticks of progress, checkpoint at 3
    expect(simulate(g, { ...job, emergencyCheckpointOk: true }, greedyPolicy()).lostWorkHours).toBe(0);
  });
});
