// Synthetic markets (deterministic, each regime as it says) and the fleet backtest (workloads
// competing for per-zone instance limits, never above them, never below the lower bound).
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { SpotfleetError } from '../../src/core/errors.js';
import { loadSpotTrace, type SpotTrace } from '../../src/core/trace.js';
import { generateSyntheticTrace, SYNTHETIC_REGIMES } from '../../src/backtest/synthetic.js';
import { runFleetBacktest } from '../../src/backtest/fleet.js';
import { runBacktest, type BacktestWorkload } from '../../src/backtest/run.js';
import { THRESHOLDS, workloadSpec } from './helpers.js';

const H = 3_600_000;
const overhead = { checkpointMs: 60_000, transferMs: 0, restartMs: 0.2 * H - 60_000 };

function fraction(a: Uint8Array): number {
  return a.reduce((s, x) => s + x, 0) / a.length;
}

describe('synthetic markets', () => {
  it('the same regime and seed give the same market; another seed another', () => {
    for (const r of SYNTHETIC_REGIMES) {
      const a = generateSyntheticTrace(r, 4);
      const b = generateSyntheticTrace(r, 4);
      const c = generateSyntheticTrace(r, 5);
      expect(Array.from(a.available[0] as Uint8Array)).toEqual(Array.from(b.available[0] as Uint8Array));
      expect(a.available.map((x) => Array.from(x).join(''))).not.toEqual(c.available.map((x) => Array.from(x).join('')));
      expect(a.assumptions?.[0]).toMatch(/generated, not observed/);
    }
  });

  it('each regime is what it claims', () => {
    const flicker = generateSyntheticTrace('flicker', 1);
    for (const p of flicker.spotPrice) expect(new Set(p).size).toBe(1); // flat prices
    const spikes = generateSyntheticTrace('price-spikes', 1);
    expect(spikes.spotPrice.some((p) => p.some((x) => x > 3.06))).toBe(true);
    const outage = generateSyntheticTrace('long-outage', 1);
    let run = 0;
    let longest = 0;
    for (let k = 0; k < outage.times.length; k++) {
      run = outage.available.every((a) => a[k] === 0) ? run + 1 : 0;
      longest = Math.max(longest, run);
    }
    expect((longest * 120_000) / H).toBeGreaterThanOrEqual(3); // a whole-market outage of hours
    const rare = generateSyntheticTrace('rare-cheap', 1);
    expect(rare.zones.length).toBe(12);
    for (const a of rare.available) expect(fraction(a)).toBeLessThan(0.3);
    const region = generateSyntheticTrace('region-outage', 1);
    // Some tick has all of us-east-1 down while us-west-2 has capacity.
    expect(region.times.some((_, k) => region.available.slice(0, 3).every((a) => a[k] === 0) && region.available.slice(3).some((a) => a[k] === 1))).toBe(true);
  });

  it('an unknown regime is a usage error that lists them', () => {
    expect(() => generateSyntheticTrace('calm', 1)).toThrow(SpotfleetError);
    expect(() => generateSyntheticTrace('calm', 1)).toThrow(/flicker, region-outage, price-spikes, long-outage, rare-cheap/);
  });

  it('a backtest on a synthetic market: every policy meets the deadline, the optimum is below all', () => {
    const trace = generateSyntheticTrace('region-outage', 2);
    const res = runBacktest({ trace, thresholds: THRESHOLDS, windows: 1, fromMs: (trace.times[0] as number) + 24 * H, timelines: false, workloads: [{ spec: workloadSpec(), workMs: 40 * H, deadlineMs: 60 * H, zones: [], overhead }] });
    const s = res.workloads[0]?.summary ?? [];
    const opt = s.find((x) => x.policy === 'optimum');
    for (const p of s) {
      expect(p.deadlinesMet).toBe(1);
      expect(p.meanCostUsd).toBeGreaterThanOrEqual((opt?.meanCostUsd ?? 0) - 1e-9);
    }
  });
});

describe('fleet backtest', () => {
  function oneZone(cap: number[]): SpotTrace {
    const n = cap.length;
    return {
      times: Float64Array.from(cap.map((_, k) => Date.parse('2024-01-01T00:00:00Z') + k * 300_000)),
      zones: ['us-east-1a'],
      available: [Uint8Array.from(cap.map((c) => (c > 0 ? 1 : 0)))],
      spotPrice: [new Float64Array(n).fill(0.9)],
      onDemandPrice: [3.06],
      gpusPerInstance: 1,
      source: 'one-zone',
      capacity: [Uint16Array.from(cap)],
    };
  }
  const job = (name: string, workH: number, deadlineH: number): BacktestWorkload => ({ spec: workloadSpec({ name, expectedDurationMs: workH * H }), workMs: workH * H, deadlineMs: deadlineH * H, zones: [], overhead: { checkpointMs: 60_000, transferMs: 0, restartMs: 4 * 60_000 } });

  it('one instance, three jobs: they cannot all run on spot at once; all still meet their deadlines', () => {
    const trace = oneZone(Array<number>(24 * 12).fill(1));
    const res = runFleetBacktest({ trace, thresholds: THRESHOLDS, windows: 1, workloads: [job('a', 2, 3), job('b', 2, 3), job('c', 2, 3)] });
    const s = Object.fromEntries(res.summary.map((x) => [x.policy, x]));
    expect(res.capacity).toMatch(/instance counts/);
    for (const p of res.summary) expect(p.deadlinesMet).toBe(3);
    // One job fits on the single spot instance; the other two need on-demand to finish in time.
    expect(s.greedy?.meanSpotHours).toBeLessThan(2);
    expect(s.greedy?.meanOnDemandHours).toBeGreaterThan(1);
    // Each job alone could run all on spot: the lower bound is 3 × spot-only, below every fleet cost.
    expect(res.meanLowerBoundUsd).toBeCloseTo(3 * (2 + 5 / 60) * 0.9, 1);
    for (const p of res.summary) expect(p.meanCostUsd).toBeGreaterThanOrEqual((res.meanLowerBoundUsd ?? 0) - 1e-9);
  });

  it('capacity that drops preempts the newest holder first', () => {
    // Two instances for an hour, then one: of two jobs on spot, the later starter is preempted.
    const cap = [...Array<number>(12).fill(2), ...Array<number>(24 * 12).fill(1)];
    const res = runFleetBacktest({ trace: oneZone(cap), thresholds: THRESHOLDS, windows: 1, workloads: [job('a', 3, 10), job('b', 3, 10)] });
    const greedy = res.summary.find((x) => x.policy === 'greedy');
    expect(greedy?.deadlinesMet).toBe(2);
    expect(greedy?.meanPreemptions).toBe(0.5); // exactly one of the two was preempted
  });

  it('on the 16-node example: 12 jobs, spotfleet meets every deadline and costs less than greedy and on-demand', () => {
    const trace = loadSpotTrace(join(process.cwd(), 'examples/traces/skypilot-16node'), { startMs: Date.parse('2023-08-27T00:00:00Z') });
    const res = runFleetBacktest({ trace, thresholds: THRESHOLDS, windows: 1, workloads: Array.from({ length: 12 }, (_, i) => ({ ...job(`j${i}`, 10, 15), overhead })) });
    const s = Object.fromEntries(res.summary.map((x) => [x.policy, x]));
    expect(s.spotfleet?.deadlinesMet).toBe(12);
    expect(s.spotfleet?.meanCostUsd).toBeLessThan(s.greedy?.meanCostUsd ?? 0);
    expect(s.spotfleet?.meanCostUsd).toBeLessThan(s['on-demand']?.meanCostUsd ?? 0);
    expect(s.spotfleet?.meanCostUsd).toBeGreaterThanOrEqual(res.meanLowerBoundUsd ?? Infinity);
  });

  it('a trace without counts needs --capacity-per-zone', () => {
    const t = oneZone([1, 1, 1]);
    delete t.capacity;
    expect(() => runFleetBacktest({ trace: t, thresholds: THRESHOLDS, workloads: [job('a', 0.1, 0.2)] })).toThrow(/--capacity-per-zone/);
  });
});
