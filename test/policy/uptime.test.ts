// Expected up-time from observed availability, and the move decision that rests on it: stay on
// flat prices, move only past the break-even, let fresh capacity prove itself, leave price spikes,
// pay egress across regions, keep the deadline safety net; explain shows the estimate.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decideWorkload } from '../../src/policy/decide.js';
import { renderExplanation } from '../../src/policy/explain.js';
import { priceMove } from '../../src/policy/cost.js';
import { advanceZoneStats, availabilityFraction, estimateUptime, expectedDownHours, marketStatsKey, survival, withMarketObservations, zoneStatsFromObservations, zoneStatsKey, ZoneStatsTracker, type AvailabilityObservation, type ZoneStats } from '../../src/policy/uptime.js';
import { marketDownFraction } from '../../src/policy/deadline.js';
import type { PlacementOption, WorkloadDecisionInput } from '../../src/policy/types.js';
import { H, M, NOW, ctx, workload } from './builders.js';

describe('zone statistics', () => {
  it('zoneStatsFromObservations: closed up-periods, the open one, any order, one entry per pool/zone', () => {
    const o = (min: number, zone: string, available: boolean): AvailabilityObservation => ({ at: NOW + min * M, pool: 'spot', zone, available });
    const stats = zoneStatsFromObservations([o(30, 'a', false), o(0, 'a', true), o(10, 'a', true), o(40, 'a', true), o(0, 'b', false), o(5, 'b', true)]);
    expect(stats[zoneStatsKey({ pool: 'spot', zone: 'a' })]).toEqual({ upPeriodsMs: [30 * M], downPeriodsMs: [10 * M], upTotalMs: 30 * M, downTotalMs: 10 * M, upSinceMs: NOW + 40 * M, observedMs: 40 * M });
    // b was down from its first observation: that down-period's start is unknown, so not counted.
    expect(stats['spot/b']).toEqual({ upPeriodsMs: [], upSinceMs: NOW + 5 * M, observedMs: 5 * M });
    // Down now: how long it has been down, and the expected wait until it is back.
    const down = zoneStatsFromObservations([o(0, 'c', true), o(60, 'c', false), o(70, 'c', true), o(80, 'c', false)])['spot/c'] as ZoneStats;
    expect(down.downSinceMs).toBe(NOW + 80 * M);
    expect(expectedDownHours(down, NOW + 80 * M)).toBeGreaterThan(0);
    expect(expectedDownHours({ ...down, upSinceMs: NOW }, NOW)).toBe(0);
  });

  it('the tracker (backtest, tick by tick) agrees with zoneStatsFromObservations (plan/watch)', () => {
    fc.assert(
      fc.property(fc.array(fc.boolean(), { minLength: 1, maxLength: 300 }), (series) => {
        const t = new ZoneStatsTracker(1);
        series.forEach((a, k) => t.observe(NOW + k * M, 0, a));
        const s = zoneStatsFromObservations(series.map((a, k) => ({ at: NOW + k * M, pool: 'p', zone: 'z', available: a })))['p/z'] as ZoneStats;
        expect(t.stats[0]?.upPeriodsMs).toEqual(s.upPeriodsMs.slice(-64));
        expect(t.stats[0]?.upSinceMs).toEqual(s.upSinceMs);
        expect(t.stats[0]?.downPeriodsMs).toEqual(s.downPeriodsMs?.slice(-64));
        expect(t.stats[0]?.downSinceMs).toEqual(s.downSinceMs);
      }),
      { numRuns: 200, seed: 3 },
    );
  });

  it('heavy tails: the longer a zone has been up, the longer it is expected to last; no peeking needed', () => {
    // Up-periods: mostly 10 minutes, a few of 10 hours (median 10 min, mean ~2 h).
    const periods = [...Array<number>(12).fill(10 * M), 10 * H, 10 * H, 10 * H];
    const fresh = estimateUptime({ upPeriodsMs: periods, upSinceMs: NOW, observedMs: 48 * H }, NOW, 0.2, 30);
    const proven = estimateUptime({ upPeriodsMs: periods, upSinceMs: NOW - H, observedMs: 48 * H }, NOW, 0.2, 30);
    expect(fresh.ageHours).toBe(0);
    expect(proven.ageHours).toBe(1);
    expect(proven.expectedUpHours).toBeGreaterThan(3 * fresh.expectedUpHours);
    expect(proven.progressHours).toBeGreaterThan(fresh.progressHours);
    expect(survival({ upPeriodsMs: periods, upSinceMs: NOW, observedMs: 48 * H }, NOW, 0.5)).toBeLessThan(0.4);
    // A 0.2 h changeover gives nothing when the capacity lasts 10 minutes: paid, no progress.
    expect(fresh.paidHours - fresh.progressHours).toBeLessThanOrEqual(0.2 + 1e-9);
    // No history: the prior (mean 1 h). A zone up for two days and never seen to end: about as long again.
    expect(estimateUptime(undefined, NOW, 0, 30).expectedUpHours).toBeCloseTo(1, 1);
    expect(estimateUptime({ upPeriodsMs: [], upSinceMs: NOW - 48 * H, observedMs: 48 * H }, NOW, 0, 100).expectedUpHours).toBe(48);
  });
});

// A 1-GPU job with 30 h of work left and 20 h of slack, on spot in zone a; zone b elsewhere.
const SPEC = workload({ gpus: 1, expectedDurationMs: 40 * H, deadline: new Date(NOW + 50 * H).toISOString() });
function opt(zone: string, price: number, over: Partial<PlacementOption> = {}): PlacementOption {
  return { pool: 'spot', provider: 'p', capacity: 'spot', zone, gpuModel: 'A100', pricePerGpuHour: price, available: true, ...over };
}
const OD: PlacementOption = { pool: 'od', provider: 'p', capacity: 'on-demand', gpuModel: 'A100', pricePerGpuHour: 3.06, available: true };
const longLived = (since = NOW - 6 * H): ZoneStats => ({ upPeriodsMs: [20 * H, 30 * H, 12 * H], upSinceMs: since, observedMs: 96 * H });
const flickery = (since = NOW - 2 * M): ZoneStats => ({ upPeriodsMs: Array<number>(40).fill(8 * M), upSinceMs: since, observedMs: 96 * H });

function onA(priceA: number, options: PlacementOption[], zoneStats: Record<string, ZoneStats>, over: Partial<WorkloadDecisionInput> = {}): WorkloadDecisionInput {
  return {
    workload: SPEC,
    current: { pool: 'spot', provider: 'p', capacity: 'spot', zone: 'us-east-1a', node: 'n1', pricePerGpuHour: priceA, since: NOW - 6 * H },
    options,
    history: { preemptions: [] },
    progress: { doneMs: 10 * H, lastCheckpointAt: NOW - M },
    overhead: { checkpointMs: 60_000, transferMs: 0, restartMs: 0.2 * H - 60_000 },
    zoneStats,
    ...over,
  };
}

function deadlineNumbers(d: ReturnType<typeof decideWorkload>): Record<string, number> {
  return d.reasons.find((r) => r.rule.startsWith('deadline'))?.numbers ?? {};
}

describe('the move decision by expected stay (with zoneStats)', () => {
  const stats = (b: ZoneStats): Record<string, ZoneStats> => ({ 'spot/us-east-1a': longLived(), 'spot/us-east-1b': b });

  it('flat prices: never moves (nothing to gain), however the zones flicker', () => {
    const d = decideWorkload(onA(0.9, [opt('us-east-1a', 0.9), opt('us-east-1b', 0.9), OD], stats(longLived())), ctx());
    expect(d.action).toBe('stay');
    expect(deadlineNumbers(d).gainUsd).toBe(0);
  });

  it('a long-lived, much cheaper zone: the price difference over the expected stay beats the break-even', () => {
    const d = decideWorkload(onA(1.4, [opt('us-east-1a', 1.4), opt('us-east-1b', 0.7), OD], stats(longLived())), ctx());
    expect(d.action).toBe('move');
    expect(d.target?.zone).toBe('us-east-1b');
    const n = deadlineNumbers(d);
    expect(n.gainUsd).toBeGreaterThan(n.breakEvenUsd as number);
    expect(n.expectedStayHours).toBeGreaterThan(5);
    expect(n.breakEvenUsd).toBeCloseTo((n.changeoverUsd as number) + (n.egressUsd as number) + (n.riskUsd as number) + (n.slackUsd as number), 9);
  });

  it('the same price gap to a zone whose capacity lasts minutes: stay (it would not pay its changeover)', () => {
    const d = decideWorkload(onA(1.4, [opt('us-east-1a', 1.4), opt('us-east-1b', 0.7), OD], stats(flickery())), ctx());
    expect(d.action).toBe('stay');
    const n = deadlineNumbers(d);
    expect(n.expectedStayHours).toBeLessThan(0.2);
    expect(n.gainUsd).toBeLessThan(n.breakEvenUsd as number);
  });

  it('a big checkpoint makes a move across regions pay egress: stay; the same move inside the region goes', () => {
    const big = { ...SPEC, checkpoint: { ...(SPEC.checkpoint as NonNullable<typeof SPEC.checkpoint>), sizeGB: 500 } };
    const west = decideWorkload(onA(1.0, [opt('us-east-1a', 1.0), opt('us-west-2a', 0.8), OD], { 'spot/us-east-1a': longLived(), 'spot/us-west-2a': longLived() }, { workload: big }), ctx());
    expect(west.action).toBe('stay');
    expect(deadlineNumbers(west).egressUsd).toBe(10); // 500 GB × $0.02
    const east = decideWorkload(onA(1.0, [opt('us-east-1a', 1.0), opt('us-east-1b', 0.8), OD], stats(longLived()), { workload: big }), ctx());
    expect(east.action).toBe('move');
    expect(deadlineNumbers(east).egressUsd).toBe(0);
    // A measured size (drill) overrides the spec's: 5 GB across regions is $0.10, and the move pays.
    const measured = decideWorkload(onA(1.0, [opt('us-east-1a', 1.0), opt('us-west-2a', 0.8), OD], { 'spot/us-east-1a': longLived(), 'spot/us-west-2a': longLived() }, { workload: big, checkpointSizeGB: 5 }), ctx());
    expect(deadlineNumbers(measured).egressUsd).toBeCloseTo(0.1, 9);
    expect(measured.action).toBe('move');
  });

  it('from on-demand, capacity that just appeared is left to prove itself when that is worth more', () => {
    const mixed: ZoneStats = { upPeriodsMs: [...Array<number>(30).fill(3 * M), 3 * H, 3 * H, 3 * H], upSinceMs: NOW, observedMs: 96 * H };
    const base: WorkloadDecisionInput = { ...onA(0, [opt('us-east-1b', 0.9), OD], { 'spot/us-east-1b': mixed }), current: { pool: 'od', provider: 'p', capacity: 'on-demand', node: 'od1', pricePerGpuHour: 3.06, since: NOW - 6 * H } };
    const fresh = decideWorkload(base, ctx());
    expect(fresh.action).toBe('stay');
    // Either not worth it yet at all, or worth more once it has lasted a while.
    const fn = deadlineNumbers(fresh);
    expect((fn.bestDelayHours ?? 0) > 0 || (fn.gainUsd as number) <= (fn.breakEvenUsd as number)).toBe(true);
    const proven = decideWorkload({ ...base, zoneStats: { 'spot/us-east-1b': { ...mixed, upSinceMs: NOW - 2 * H } } }, ctx());
    expect(proven.action).toBe('move');
    expect(proven.target?.zone).toBe('us-east-1b');
  });

  it('a spot price above on-demand is left (wait while the slack allows)', () => {
    const d = decideWorkload(onA(4.5, [opt('us-east-1a', 4.5), OD], stats(longLived())), ctx());
    expect(d.action).toBe('wait');
  });

  it('the safety net still holds: too little time left → on-demand until done', () => {
    const tight = { ...SPEC, deadline: new Date(NOW + 30 * H + 0.3 * H).toISOString() };
    const d = decideWorkload(onA(0.9, [opt('us-east-1a', 0.9), opt('us-east-1b', 0.5), OD], stats(longLived()), { workload: tight }), ctx());
    expect(d.action).toBe('move');
    expect(d.target?.capacity).toBe('on-demand');
    expect(d.pinOnDemandUntil).toBeDefined();
  });

  it('minutes of work left: spot is taken, not waited on — on-demand would pay a changeover too', () => {
    // 5 minutes of work, a 0.2 h changeover: any start pays 0.28 h for 0.08 h of progress, so spot
    // at $0.98 costs more per hour of progress than on-demand's bare $3.06, but less than what a
    // start on on-demand costs on the same basis; waiting would only meet the safety net later.
    const i = onA(0, [opt('us-east-1a', 0.98), OD], { 'spot/us-east-1a': longLived() }, { progress: { doneMs: 40 * H - 5 * M } });
    delete i.current;
    const d = decideWorkload(i, ctx());
    expect(d.action).toBe('place');
    expect(d.target?.zone).toBe('us-east-1a');
    const n = deadlineNumbers(d);
    expect(n.targetPerProgressHour).toBeGreaterThan(3.06);
    expect(n.onDemandPerProgressHour).toBeCloseTo((3.06 * (0.2 + 5 / 60)) / (5 / 60), 9);
    expect(n.targetPerProgressHour).toBeLessThan(n.onDemandPerProgressHour as number);
  });

  it('explain shows each zone’s expected up-time and the break-even numbers', () => {
    const i = onA(1.4, [opt('us-east-1a', 1.4), opt('us-east-1b', 0.7), OD], stats(longLived()));
    const text = renderExplanation(i, decideWorkload(i, ctx()), NOW);
    expect(text).toMatch(/spot\/us-east-1b spot \$0\.70\/GPU-h \(available, expected up [\d.]+h more \(up 6h, 3 past up-periods, 3 longer than that\)\)/);
    expect(text).toMatch(/expectedStayHours\s+[\d.]+h/);
    expect(text).toMatch(/breakEvenUsd\s+\$[\d.]+/);
    expect(text).toMatch(/gainUsd\s+\$[\d.]+/);
  });
});

it('the cost model carries egress in the migration overhead', () => {
  const n = priceMove({ gpus: 1, remainingHours: 10, running: true, currentPricePerGpuHour: 1, currentPreemptionRatePerHour: 0, targetPricePerGpuHour: 0.8, targetPreemptionRatePerHour: 0, fallbackPricePerGpuHour: 3, checkpointMs: 0, transferMs: 0, restartMs: 0, lostWorkHours: 0, lostPerPreemptionHours: 0, egressUsd: 2 });
  expect(n.egressUsd).toBe(2);
  expect(n.migrationOverheadUsd).toBe(2);
  expect(n.netSavingsUsd).toBeCloseTo(0, 9); // 0.2 × 10 − 2
});

describe('advanceZoneStats (the live record plan and watch keep)', () => {
  it('moves on from the previous record one refresh at a time, as the whole series would', async () => {
    const { advanceZoneStats, zoneStatsFromObservations } = await import('../../src/policy/uptime.js');
    const H = 3_600_000;
    const series = [
      { at: 0, pool: 'spot', zone: 'a', available: true },
      { at: 2 * H, pool: 'spot', zone: 'a', available: false },
      { at: 3 * H, pool: 'spot', zone: 'a', available: true },
      { at: 4 * H, pool: 'spot', zone: 'a', available: false },
    ];
    let live: ReturnType<typeof advanceZoneStats> | undefined;
    for (const o of series) live = advanceZoneStats(live, [o]);
    const whole = zoneStatsFromObservations(series);
    expect(live?.['spot/a']?.upPeriodsMs).toEqual(whole['spot/a']?.upPeriodsMs);
    expect(live?.['spot/a']?.downPeriodsMs).toEqual([H]);
    expect(live?.['spot/a']?.observedMs).toBe(4 * H);
    // The previous record is not changed.
    const before = advanceZoneStats(undefined, [series[0] as (typeof series)[number]]);
    advanceZoneStats(before, [series[1] as (typeof series)[number]]);
    expect(before['spot/a']?.upPeriodsMs).toEqual([]);
  });
});

describe('the market as a whole (pool/*): measured, not multiplied out', () => {
  // Two zones, each down 6 h a day: at the same hours (one region, one crunch) or at different ones.
  const day = (together: boolean): AvailabilityObservation[] => {
    const out: AvailabilityObservation[] = [];
    for (let h = -96; h <= 0; h++) {
      const hod = ((h % 24) + 24) % 24;
      out.push({ at: NOW + h * H, pool: 'spot', zone: 'a', available: hod >= 6 });
      out.push({ at: NOW + h * H, pool: 'spot', zone: 'b', available: together ? hod >= 6 : hod < 12 || hod >= 18 });
    }
    return out;
  };

  it('withMarketObservations adds one observation per pool and instant: available when any zone is', () => {
    const m = withMarketObservations([
      { at: 0, pool: 'spot', zone: 'a', available: false },
      { at: 0, pool: 'spot', zone: 'b', available: true },
      { at: 0, pool: 'other', zone: 'a', available: false },
      { at: 5, pool: 'spot', zone: 'a', available: false },
      { at: 5, pool: 'spot', zone: 'b', available: false },
    ]).filter((o) => o.zone === '*');
    expect(m).toEqual([
      { at: 0, pool: 'spot', zone: '*', available: true },
      { at: 0, pool: 'other', zone: '*', available: false },
      { at: 5, pool: 'spot', zone: '*', available: false },
    ]);
  });

  it('the record sees zones that fail together; the zones alone cannot tell', () => {
    const together = zoneStatsFromObservations(day(true));
    const apart = zoneStatsFromObservations(day(false));
    // Each zone on its own looks the same either way: up three quarters of the time.
    for (const s of [together, apart]) for (const z of ['spot/a', 'spot/b']) expect(availabilityFraction(s[z], NOW)).toBeCloseTo(0.75, 1);
    const options = [opt('a', 0.9), opt('b', 0.9), OD];
    // Down together: the market is down a quarter of the time; apart: never.
    expect(marketDownFraction(options, together, NOW)).toBeGreaterThan(0.15);
    expect(marketDownFraction(options, apart, NOW)).toBeLessThan(0.02);
    // Without the record (an older state file), zones are taken as independent: 1/4 × 1/4.
    const { [marketStatsKey('spot')]: _, ...noRecord } = together;
    expect(marketDownFraction(options, noRecord, NOW)).toBeCloseTo((1 - availabilityFraction(noRecord['spot/a'], NOW)) * (1 - availabilityFraction(noRecord['spot/b'], NOW)), 9);
    // A record with no history yet leans on that estimate, not on a blind 50%.
    const young = { ...noRecord, [marketStatsKey('spot')]: { upPeriodsMs: [], observedMs: 0 } };
    expect(marketDownFraction(options, young, NOW)).toBeLessThan(0.1);
  });

  it('plan/watch keep the record refresh by refresh (advanceZoneStats), as the whole series would', () => {
    let live: Record<string, ZoneStats> | undefined;
    const series = day(true);
    for (let i = 0; i < series.length; i += 2) live = advanceZoneStats(live, series.slice(i, i + 2));
    const whole = zoneStatsFromObservations(series);
    expect(live?.['spot/*']?.upPeriodsMs).toEqual(whole['spot/*']?.upPeriodsMs);
    expect(live?.['spot/*']?.downPeriodsMs).toEqual(whole['spot/*']?.downPeriodsMs);
  });

  // Not running, 30 h of work and 20 h of slack; zone a ($0.95) is up, cheaper b ($0.80) is down and
  // expected back in about 1.4 h. Only the market record differs between the two decisions.
  const zoneA: ZoneStats = { upPeriodsMs: [18 * H, 18 * H, 18 * H], downPeriodsMs: [6 * H, 6 * H, 6 * H], upTotalMs: 54 * H, downTotalMs: 18 * H, upSinceMs: NOW - 4 * H, observedMs: 76 * H };
  const zoneB: ZoneStats = { upPeriodsMs: [18 * H, 18 * H, 18 * H], downPeriodsMs: [2 * H, 2 * H, 2 * H], upTotalMs: 54 * H, downTotalMs: 6 * H, downSinceMs: NOW - 0.25 * H, observedMs: 76 * H };
  const waiting = (market?: ZoneStats): WorkloadDecisionInput => {
    const zoneStats: Record<string, ZoneStats> = { 'spot/us-east-1a': zoneA, 'spot/us-east-1b': zoneB };
    if (market) zoneStats['spot/*'] = market;
    const i = onA(0, [opt('us-east-1a', 0.95), opt('us-east-1b', 0.8, { available: false }), OD], zoneStats);
    delete i.current;
    return i;
  };

  it('a market that is rarely down as a whole: slack is cheap, so it waits for the cheaper zone', () => {
    const d = decideWorkload(waiting(), ctx());
    expect(d.action).toBe('wait');
    const n = deadlineNumbers(d);
    // The slack is valued by the share the market needs of it, floored at the net plus one
    // changeover (not at the fixed reserve, 1 h + 0.1 h per hour of work: 20 h of slack in a good
    // market is worth little).
    expect(n.slackPressure).toBeCloseTo(Math.max((n.netAt as number) + (n.changeover as number), n.slackNeededHours as number) / (n.slack as number), 9);
    expect(n.slackPressure).toBeLessThan((1 + 0.1 * (n.workLeft as number)) / (n.slack as number));
    expect(n.takeExtraUsd).toBeGreaterThan(n.takeSavesSlackUsd as number);
  });

  it('the same zones in a market measured down a quarter of the time: slack is dear, so it takes the zone that is up', () => {
    const market: ZoneStats = { upPeriodsMs: [18 * H, 18 * H, 18 * H], downPeriodsMs: [6 * H, 6 * H, 6 * H], upTotalMs: 54 * H, downTotalMs: 18 * H, upSinceMs: NOW - 4 * H, observedMs: 76 * H };
    const d = decideWorkload(waiting(market), ctx());
    expect(d.action).toBe('place');
    expect(d.target?.zone).toBe('us-east-1a');
    const n = deadlineNumbers(d);
    expect(n.marketDownFraction).toBeGreaterThan(0.2);
    expect(n.takeSavesSlackUsd).toBeGreaterThan(n.takeExtraUsd as number);
  });
});

describe('take a zone in another region now, or wait for the checkpoint region’s zone', () => {
  // Evicted from us-west-2b with 30 h of work and 6 h of slack; us-east-1a ($0.90) is up,
  // us-west-2a ($0.90, the checkpoint's region) went down 30 min ago and is usually back within 2 h.
  const upZone: ZoneStats = { upPeriodsMs: [6 * H, 6 * H, 6 * H], downPeriodsMs: [2 * H, 2 * H, 2 * H], upTotalMs: 18 * H, downTotalMs: 6 * H, upSinceMs: NOW - 2 * H, observedMs: 24 * H };
  const downZone: ZoneStats = { upPeriodsMs: [6 * H, 6 * H, 6 * H], downPeriodsMs: [2 * H, 2 * H, 2 * H], upTotalMs: 18 * H, downTotalMs: 6 * H, downSinceMs: NOW - 0.5 * H, observedMs: 24 * H };
  const evicted = (sizeGB: number): WorkloadDecisionInput => ({
    ...onA(0.9, [opt('us-east-1a', 0.9), opt('us-west-2a', 0.9, { available: false }), opt('us-west-2b', 0.9, { available: false }), OD], { 'spot/us-east-1a': upZone, 'spot/us-west-2a': downZone }),
    workload: { ...SPEC, deadline: new Date(NOW + 36 * H).toISOString(), checkpoint: { ...(SPEC.checkpoint as NonNullable<typeof SPEC.checkpoint>), sizeGB } },
    current: { pool: 'spot', provider: 'p', capacity: 'spot', zone: 'us-west-2b', node: 'n1', pricePerGpuHour: 0.9, since: NOW - 3 * H, evicted: true },
  });

  it('a 100 GB checkpoint: egress there and back ($4) is counted in full, not spread over the stay: wait', () => {
    const d = decideWorkload(evicted(100), ctx());
    expect(d.action).toBe('wait');
    const n = deadlineNumbers(d);
    expect(n.takeEgressUsd).toBeCloseTo(4, 9); // 100 GB × $0.02 east, and 100 GB × $0.02 back west
    expect(n.takeExtraUsd).toBeGreaterThan(n.takeSavesSlackUsd as number);
  });

  it('a 1 GB checkpoint: the slack the wait would spend is worth more: take us-east-1a now', () => {
    const d = decideWorkload(evicted(1), ctx());
    expect(d.action).toBe('move');
    expect(d.target?.zone).toBe('us-east-1a');
  });

  // The same, in a market measured down a quarter of the time: the rest of the job is expected to
  // need more slack than the wait would leave. The egress of a move across regions is certain, the
  // slack need is priced in what the wait costs: the comparison decides (above the reserve).
  const busy = (sizeGB: number): WorkloadDecisionInput => {
    const i = evicted(sizeGB);
    i.zoneStats = { ...i.zoneStats, 'spot/*': { upPeriodsMs: [18 * H, 18 * H, 18 * H], downPeriodsMs: [6 * H, 6 * H, 6 * H], upTotalMs: 54 * H, downTotalMs: 18 * H, upSinceMs: NOW - 4 * H, observedMs: 76 * H } };
    return i;
  };

  it('a market that will need the slack: with a 100 GB checkpoint the $4 of egress still outweighs the slack the wait spends: wait', () => {
    const d = decideWorkload(busy(100), ctx());
    expect(d.action).toBe('wait');
    const n = deadlineNumbers(d);
    expect(n.slackNeededHours).toBeGreaterThan((n.slack as number) - (n.waitForHours as number));
    expect((n.slack as number) - (n.waitForHours as number)).toBeGreaterThan(n.reserve as number);
    expect(n.takeExtraUsd).toBeGreaterThan(n.takeSavesSlackUsd as number);
  });

  it('a market that will need the slack: with a 1 GB checkpoint the slack is worth more: take us-east-1a now', () => {
    const d = decideWorkload(busy(1), ctx());
    expect(d.action).toBe('move');
    expect(d.target?.zone).toBe('us-east-1a');
  });
});

describe('leave on-demand for a flickering zone: the changeover after it ends is paid back on on-demand', () => {
  // On on-demand with 30 h of work and 3.5 h of slack (bridging: under the reserve). us-west-2c
  // ($0.918) has just come back; its up-periods are mostly short, and it (the only zone with spot:
  // us-east-1a is down and rarely up) is down about half the time. When it ends, no other zone has
  // spot, so the job goes back to on-demand and pays that changeover at $3.06, not at $0.918.
  const up = [3 * H, 0.4 * H, 0.3 * H, 0.5 * H, 0.4 * H, 0.3 * H, 2 * H, 0.4 * H];
  const down = [0.5 * H, 0.6 * H, 0.4 * H, 0.5 * H, 0.7 * H, 0.5 * H, 0.6 * H];
  const upTotal = up.reduce((a, b) => a + b, 0);
  const downTotal = down.reduce((a, b) => a + b, 0) + 3 * H;
  const flicker: ZoneStats = { upPeriodsMs: up, downPeriodsMs: down, upTotalMs: upTotal, downTotalMs: downTotal, upSinceMs: NOW, observedMs: 24 * H };
  const rare: ZoneStats = { upPeriodsMs: [0.2 * H], downPeriodsMs: [20 * H], upTotalMs: 0.2 * H, downTotalMs: 20 * H, downSinceMs: NOW - 3 * H, observedMs: 24 * H };
  const input = (): WorkloadDecisionInput => ({
    ...onA(3.06, [opt('us-west-2c', 0.918), opt('us-east-1a', 1.6, { available: false }), OD], { 'spot/us-west-2c': flicker, 'spot/us-east-1a': rare, [marketStatsKey('spot')]: flicker }),
    workload: { ...SPEC, deadline: new Date(NOW + 33.5 * H).toISOString() },
    current: { pool: 'od', provider: 'p', capacity: 'on-demand', node: 'n1', pricePerGpuHour: 3.06, since: NOW - H },
  });

  it('stays on on-demand: the round trip costs more than the expected stay saves', () => {
    const d = decideWorkload(input(), ctx());
    const n = deadlineNumbers(d);
    expect(d.action).toBe('stay'); // the code before this change moved
    expect(n.noOtherSpotAfterEndProb).toBeGreaterThan(0.95); // the market is down (nearly) whenever this zone is
    expect(n.afterEndPerGpuHour).toBeGreaterThan(3);
    expect(n.riskUsd).toBeCloseTo((n.targetEndProb as number) * 0.2 * (n.afterEndPerGpuHour as number), 9);
    expect(n.gainUsd).toBeGreaterThan(0);
    expect(n.gainUsd).toBeLessThan(n.breakEvenUsd as number);
    expect(d.reasons.some((r) => r.text.includes('stay on on-demand'))).toBe(true);
  });

  it('with another zone usually up when this one ends, the changeover after it is mostly paid on spot', () => {
    const other: ZoneStats = { upPeriodsMs: [10 * H, 12 * H], downPeriodsMs: [0.2 * H], upTotalMs: 22 * H, downTotalMs: 0.2 * H, downSinceMs: NOW - 0.1 * H, observedMs: 24 * H };
    const market: ZoneStats = { upPeriodsMs: [22 * H], downPeriodsMs: [0.1 * H], upTotalMs: 22 * H, downTotalMs: 0.1 * H, upSinceMs: NOW - 2 * H, observedMs: 24 * H };
    const i = input();
    i.zoneStats = { 'spot/us-west-2c': flicker, 'spot/us-east-1a': other, [marketStatsKey('spot')]: market };
    const n = deadlineNumbers(decideWorkload(i, ctx()));
    expect(n.noOtherSpotAfterEndProb).toBeLessThan(0.2);
    expect(n.afterEndPerGpuHour).toBeLessThan(0.918 + 0.2 * (3.06 - 0.918));
  });
});

describe('a market outage when the slack is what the preemptions will need: bridged on on-demand once it has lasted', () => {
  // 40 h of work left and 10 h of slack, not running. Zones a and b last half an hour at a time
  // (one changeover of 0.2 h per preemption: 40 h of work needs ~15 h of slack for them), both down.
  const short: ZoneStats = { upPeriodsMs: Array<number>(20).fill(30 * M), downPeriodsMs: Array<number>(20).fill(3 * H), observedMs: 96 * H };
  const input = (marketDownFor: number | undefined, zone: ZoneStats = short): WorkloadDecisionInput => {
    const z = { ...zone, downSinceMs: NOW - 3 * H };
    const zoneStats: Record<string, ZoneStats> = { 'spot/us-east-1a': z, 'spot/us-east-1b': z };
    if (marketDownFor !== undefined) zoneStats['spot/*'] = { ...zone, downSinceMs: NOW - marketDownFor * H };
    const i = onA(0, [opt('us-east-1a', 0.5, { available: false }), opt('us-east-1b', 0.5, { available: false }), OD], zoneStats, { progress: { doneMs: 0 } });
    delete i.current;
    return i;
  };

  it('down 2 h (past 8 changeovers): on-demand, and explain says why with the figures', () => {
    const i = input(2);
    const d = decideWorkload(i, ctx());
    expect(d.action).toBe('place');
    expect(d.target?.capacity).toBe('on-demand');
    const n = deadlineNumbers(d);
    expect(n.slack).toBeCloseTo(10, 9);
    expect(n.marketDownForHours).toBeCloseTo(2, 9);
    expect(n.bridgeAfterHours).toBeCloseTo(1.6, 9);
    expect(n.slackChurnNeedHours).toBeGreaterThan(10);
    const text = renderExplanation(i, d, NOW);
    expect(text).toContain('the market has been down 2.00 h');
    expect(text).toMatch(/marketDownForHours +2h/);
    expect(text).toMatch(/bridgeAfterHours +1.6h/);
  });

  it('down 1 h: still waited out (a bridge costs two changeovers); no market record: waited out too', () => {
    expect(decideWorkload(input(1), ctx()).action).toBe('wait');
    expect(decideWorkload(input(undefined), ctx()).action).toBe('wait');
  });

  it('the reserve keeps what bridging and the preemptions need, not the fixed 1 h + 0.1 h per hour of work', () => {
    // 40 h of work, zones that last 10 h: bridging needs a changeover each way above the net and
    // the preemptions about 40 / 10 × 0.2 h, some 1.8 h in all, where the fixed reserve is 5 h.
    const long: ZoneStats = { ...short, upPeriodsMs: Array<number>(20).fill(10 * H) };
    const at = (slackH: number): WorkloadDecisionInput => ({ ...input(2, long), workload: { ...SPEC, deadline: new Date(NOW + (40 + slackH) * H).toISOString() } });
    const three = decideWorkload(at(3), ctx());
    expect(three.action).toBe('wait');
    const n = deadlineNumbers(three);
    expect(n.reserve).toBeLessThan(3);
    expect(n.reserve).toBeGreaterThan((n.netAt as number) + 2 * (n.changeover as number));
    const below = decideWorkload(at(n.reserve as number - 0.1), ctx());
    expect(below.action).toBe('place');
    expect(below.target?.capacity).toBe('on-demand');
    expect(below.reasons.map((r) => r.text).join(' ')).toContain('under the reserve');
  });

  it("the reserve's preemptions come at the job's own rate per hour of progress, with the market's mean up-time as the prior", () => {
    // Zones that last 3 h; 20 h of work done, 20 h left, 2 h of slack, the market down 2 h. A fresh
    // job expects 20 / 3 preemptions (about 1.3 h of changeovers): 2 h is under its reserve, so it
    // bridges on on-demand. One preempted twice in its 20 h expects 3 in 23 h of progress (0.5 h):
    // 2 h is above its reserve, so it waits the outage out. One preempted 20 times expects more.
    const three: ZoneStats = { ...short, upPeriodsMs: Array<number>(20).fill(3 * H) };
    const at = (preemptions: number): WorkloadDecisionInput => ({
      ...input(2, three),
      workload: { ...SPEC, deadline: new Date(NOW + 22 * H).toISOString() },
      progress: { doneMs: 20 * H },
      history: { preemptions: Array.from({ length: preemptions }, (_, k) => NOW - (k + 1) * H) },
    });
    const fresh = { ...at(0), workload: { ...SPEC, expectedDurationMs: 20 * H, deadline: new Date(NOW + 22 * H).toISOString() }, progress: { doneMs: 0 } };
    const f = decideWorkload(fresh, ctx());
    const nf = deadlineNumbers(f);
    expect(nf.workLeft).toBeCloseTo(20, 9);
    expect(nf.jobPreemptionRatePerHour).toBeCloseTo(1 / 3, 1);
    expect(nf.reserve).toBeGreaterThan(2);
    expect(f.target?.capacity).toBe('on-demand');
    expect(f.reasons.map((r) => r.text).join(' ')).toContain('under the reserve');

    const twice = decideWorkload(at(2), ctx());
    const nt = deadlineNumbers(twice);
    expect(nt.workLeft).toBeCloseTo(20, 9);
    expect(nt.jobPreemptionRatePerHour).toBeCloseTo(3 / 23, 1);
    expect(nt.reserve).toBeLessThan(1.6);
    expect(twice.action).toBe('wait');
    expect(renderExplanation(at(2), twice, NOW)).toMatch(/jobPreemptionRatePerHour +0\.13\d\n/);

    const often = deadlineNumbers(decideWorkload(at(20), ctx()));
    expect(often.reserve).toBeGreaterThan(nf.reserve as number);
  });

  it('zones that last 10 h at a time need little slack for preemptions: waited out, however long the outage', () => {
    const long: ZoneStats = { ...short, upPeriodsMs: Array<number>(20).fill(10 * H) };
    expect(decideWorkload(input(5, long), ctx()).action).toBe('wait');
  });
});
