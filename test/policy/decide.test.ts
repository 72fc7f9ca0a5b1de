// The cost model and decide, against hand-computed values. Shared setup (builders.ts): 4 GPUs,
// 8 h expected, 2 h done → R = 6 h; overhead 60 + 30 + 30 s = 120 s = 1/30 h; newest checkpoint
// 0.1 h ago; on-demand $3.00/GPU-h; spot preemption rate 0.05/h; minSavingsPerHour $0.50.
import { describe, expect, it } from 'vitest';
import { decideWorkload, isSpotEligible } from '../../src/policy/decide.js';
import { priceMove } from '../../src/policy/cost.js';
import { renderExplanation } from '../../src/policy/explain.js';
import { H, M, NOW, costNumbers, ctx, input, od, onDemandNow, onSpotNow, spot, thresholds, workload } from './builders.js';

describe('cost model (dollars throughout)', () => {
  it('migration pays: on-demand $3.00 → spot $0.90, 4 GPUs, 6 h left', () => {
    const d = decideWorkload(input({ current: onDemandNow() }), ctx());
    expect(d.action).toBe('move');
    expect(d.target?.pool).toBe('spot-a100');
    const n = costNumbers(d);
    // gross        = (3.00 − 0.90) × 4 × 6                 = 50.40
    expect(n.grossSavingsUsd).toBe(50.4);
    // changeover   = 1/30 h × (3.00 + 0.90) × 4 (both sides) = 0.52
    expect(n.changeoverUsd).toBe(0.52);
    // lost work    = 0.1 h × 0.90 × 4 (redone on the target) = 0.36
    expect(n.lostWorkUsd).toBe(0.36);
    // overhead     = 0.52 + 0.36                            = 0.88
    expect(n.migrationOverheadUsd).toBe(0.88);
    // per preempt. = 1/30 × (0.90 + 3.00) × 4 + 0            = 0.52; expected = 0.05 × 6 = 0.3 → 0.156
    expect(n.perPreemptionUsd).toBe(0.52);
    expect(n.expectedPreemptions).toBe(0.3);
    expect(n.expectedPreemptionCostUsd).toBe(0.156);
    // net          = 50.40 − 0.88 − 0.156                   = 49.364; per hour 49.364 / 6 = 8.2273
    expect(n.netSavingsUsd).toBe(49.364);
    expect(n.savingsPerHour).toBe(8.2273);
    expect(d.money).toEqual({ nowPerHour: 12, afterPerHour: 3.6, migrationOverheadUsd: 0.88, expectedSavingsUsd: 49.364 });
  });

  it('migration does not pay: 1 GPU, spot $2.40, 1 h left, checkpoint 30 min old', () => {
    const d = decideWorkload(
      input({
        workload: workload({ gpus: 1 }),
        current: onDemandNow(),
        options: [od(), spot(2.4)],
        progress: { doneMs: 7 * H, lastCheckpointAt: NOW - 30 * M },
      }),
      ctx(),
    );
    expect(d.action).toBe('stay');
    const n = costNumbers(d);
    // gross = (3.00 − 2.40) × 1 × 1 = 0.60 — naively above $0.50/h, but:
    expect(n.grossSavingsUsd).toBe(0.6);
    // changeover = 1/30 × (3.00 + 2.40) = 0.18; lost = 0.5 × 2.40 = 1.20; overhead = 1.38
    expect(n.changeoverUsd).toBe(0.18);
    expect(n.lostWorkUsd).toBe(1.2);
    expect(n.migrationOverheadUsd).toBe(1.38);
    // preemption = 0.05 × 1 × (1/30 × 5.40 = 0.18) = 0.009; net = 0.60 − 1.38 − 0.009 = −0.789 /h
    expect(n.expectedPreemptionCostUsd).toBe(0.009);
    expect(n.netSavingsUsd).toBe(-0.789);
    expect(n.savingsPerHour).toBe(-0.789);
    expect(d.money.afterPerHour).toBe(d.money.nowPerHour);
  });

  it('priceMove: a risky current placement counts its avoided preemptions', () => {
    // on spot $3.60 (rate 0.05) → on-demand $3.00; gross (0.60 × 4 × 6) = 14.40; changeover
    // 1/30 × 6.60 × 4 = 0.88; lost 0.1 × 3.00 × 4 = 1.20; avoided 0.05 × 6 × 0.88 = 0.264
    const n = priceMove({ gpus: 4, remainingHours: 6, running: true, currentPricePerGpuHour: 3.6, currentPreemptionRatePerHour: 0.05, targetPricePerGpuHour: 3, targetPreemptionRatePerHour: 0, fallbackPricePerGpuHour: 3, checkpointMs: 60_000, transferMs: 30_000, restartMs: 30_000, lostWorkHours: 0.1, lostPerPreemptionHours: 0 });
    expect(n.preemptionCostCurrentUsd).toBe(0.264);
    expect(n.expectedPreemptionCostUsd).toBe(-0.264);
    // net = 14.40 − 2.08 + 0.264 = 12.584; /6 = 2.0973
    expect(n.netSavingsUsd).toBe(12.584);
    expect(n.savingsPerHour).toBe(2.0973);
  });
});

describe('decideWorkload', () => {
  it('a short job does not start on spot (20 min left ≤ minRuntime 30 min)', () => {
    const short = { doneMs: 7 * H + 40 * M, lastCheckpointAt: NOW - 6 * M };
    const running = decideWorkload(input({ current: onDemandNow(), progress: short }), ctx());
    expect(running.action).toBe('stay');
    expect(running.reasons.some((r) => r.rule === 'eligibility' && /minRuntime/.test(r.text))).toBe(true);
    const fresh = decideWorkload(input({ progress: short }), ctx());
    expect(fresh.action).toBe('place');
    expect(fresh.target?.capacity).toBe('on-demand');
  });

  it('first placement: spot when it saves ≥ minSavingsPerHour over on-demand after preemptions', () => {
    const d = decideWorkload(input(), ctx());
    expect(d.action).toBe('place');
    expect(d.target?.pool).toBe('spot-a100');
    // no migration: gross 50.40 − preemption 0.156 = 50.244; /6 = 8.374
    expect(costNumbers(d).savingsPerHour).toBe(8.374);
    // spot $2.95 vs $3.00 on 1 GPU: gross 0.05/h − preemption 0.05 × (1/30 × 5.95) = 0.0099 → 0.0401/h < 0.5
    const close = decideWorkload(input({ workload: workload({ gpus: 1 }), options: [od(), spot(2.95, { maxPricePerHour: 3 })] }), ctx());
    expect(close.target?.capacity).toBe('on-demand');
    expect(costNumbers(close).savingsPerHour).toBe(0.0401);
  });

  it('price spike: spot at $3.60 above on-demand moves to on-demand (no minDwell towards safety)', () => {
    const d = decideWorkload(
      input({ current: onSpotNow(3.6, { since: NOW - 5 * M }), options: [od(), spot(3.6, { maxPricePerHour: 4 })] }),
      ctx(),
    );
    expect(d.action).toBe('move');
    expect(d.target?.capacity).toBe('on-demand');
    // as in the priceMove case above: net 12.584, 2.0973/h
    expect(costNumbers(d).savingsPerHour).toBe(2.0973);
  });

  it('hysteresis: spot at $3.10 stays although on-demand is $0.10 cheaper', () => {
    // (no new spot capacity: the only alternative is on-demand)
    const d = decideWorkload(input({ current: onSpotNow(3.1), options: [od(), spot(3.1, { maxPricePerHour: 4, available: false })] }), ctx());
    // gross 0.10 × 4 × 6 = 2.40; changeover 1/30 × 6.10 × 4 = 0.8133; lost 0.1 × 3.00 × 4 = 1.20;
    // avoided preemptions 0.05 × 6 × 0.8133 = 0.244; net = 2.40 − 2.0133 + 0.244 = 0.6307; /6 = 0.1051 < 0.50
    expect(d.action).toBe('stay');
    const n = costNumbers(d);
    expect(n.netSavingsUsd).toBe(0.6307);
    expect(n.savingsPerHour).toBe(0.1051);
  });

  it('price above the pool cap is not taken', () => {
    const d = decideWorkload(input({ options: [od(), spot(2.6)] }), ctx()); // cap 2.5
    expect(d.target?.capacity).toBe('on-demand');
    expect(d.reasons.some((r) => r.rule === 'price-cap')).toBe(true);
  });

  it('eligibility: serving never on spot; no checkpoint contract never on spot', () => {
    expect(isSpotEligible(input({ workload: workload({ class: 'serving' }) })).ok).toBe(false);
    const { checkpoint: _c, ...noCkpt } = workload();
    expect(isSpotEligible(input({ workload: noCkpt })).ok).toBe(false);
    const d = decideWorkload(input({ workload: workload({ class: 'realtime' }) }), ctx());
    expect(d.target?.capacity).toBe('on-demand');
    const forced = decideWorkload(input({ workload: workload({ class: 'serving', capacity: 'spot' }) }), ctx());
    expect(forced.violations).toEqual([{ policy: 'eligibility', level: 'mandatory', message: 'capacity: spot, but class serving never runs on spot' }]);
  });

  it('anti-flap: more than maxPreemptions in the window pins to on-demand for the cooldown', () => {
    const preemptions = [NOW - 50 * M, NOW - 40 * M, NOW - 20 * M, NOW - 10 * M]; // 4 > 3 within 1 h
    const evicted = decideWorkload(
      input({
        workload: workload({ fallback: { to: 'spot-b', revertToSpot: true, minDwellMs: 30 * M } }),
        current: onSpotNow(0.9, { evicted: true }),
        options: [od(), spot(0.9), spot(0.8, { pool: 'spot-b' })],
        history: { preemptions },
      }),
      ctx(),
    );
    expect(evicted.action).toBe('move');
    expect(evicted.target?.capacity).toBe('on-demand');
    // pinned until the latest preemption + cooldown: (NOW − 10 min) + 2 h
    expect(evicted.pinOnDemandUntil).toBe(NOW - 10 * M + 2 * H);
    // next tick, on on-demand, the pin holds although spot pays
    const later = decideWorkload(
      input({ current: onDemandNow(NOW - 5 * M), history: { preemptions, pinnedOnDemandUntil: NOW - 10 * M + 2 * H, lastMoveAt: NOW - 5 * M } }),
      ctx({ now: NOW + 30 * M }),
    );
    expect(later.action).toBe('stay');
    expect(later.reasons.some((r) => r.rule === 'anti-flap')).toBe(true);
  });

  it('minDwell: back to spot only after minDwell, and only with revertToSpot', () => {
    const h = { preemptions: [NOW - 3 * H], lastMoveAt: NOW - 10 * M };
    const early = decideWorkload(input({ current: onDemandNow(NOW - 10 * M), history: h }), ctx());
    expect(early.action).toBe('stay');
    expect(early.reasons.find((r) => r.rule === 'anti-flap')?.numbers).toEqual({ dwellHours: 0.1667, minDwellHours: 0.5 });
    const after = decideWorkload(input({ current: onDemandNow(NOW - 40 * M), history: h }), ctx());
    expect(after.action).toBe('move');
    const noRevert = decideWorkload(input({ workload: workload({ fallback: { to: 'on-demand', revertToSpot: false, minDwellMs: 30 * M } }), current: onDemandNow(NOW - 40 * M), history: h }), ctx());
    expect(noRevert.action).toBe('stay');
  });

  it('fallback to a named pool on eviction, and the cheapest allowed option when it has none', () => {
    const w = workload({ fallback: { to: 'spot-b', revertToSpot: true, minDwellMs: 30 * M } });
    const opts = [od(), spot(1.2, { pool: 'spot-b' }), spot(0.8, { pool: 'spot-c' })];
    const d = decideWorkload(input({ workload: w, current: onSpotNow(0.9, { evicted: true }), options: opts }), ctx());
    expect(d.action).toBe('move');
    expect(d.target?.pool).toBe('spot-b');
    const gone = decideWorkload(input({ workload: w, current: onSpotNow(0.9, { evicted: true }), options: [od(), spot(1.2, { pool: 'spot-b', available: false }), spot(0.8, { pool: 'spot-c' })] }), ctx());
    expect(gone.target?.pool).toBe('spot-c');
    const toOd = decideWorkload(input({ current: onSpotNow(0.9, { evicted: true }), options: opts }), ctx());
    expect(toOd.target?.capacity).toBe('on-demand');
  });

  it('deadline safety net: too little slack → on-demand now and pinned until done', () => {
    // 6 h of work left, deadline in 6 h 10 min: slack 10 min < 2 × 2 min changeover + 10 min margin
    const deadline = new Date(NOW + 6 * H + 10 * M).toISOString();
    const d = decideWorkload(input({ workload: workload({ deadline }), current: onSpotNow(0.9) }), ctx());
    expect(d.action).toBe('move');
    expect(d.target?.capacity).toBe('on-demand');
    expect(d.pinOnDemandUntil).toBe(NOW + 6 * H + 10 * M);
  });

  it('deadline slack: spot or wait, never on-demand', () => {
    const deadline = new Date(NOW + 20 * H).toISOString();
    const none = decideWorkload(input({ workload: workload({ deadline }), options: [od(), spot(0.9, { available: false })] }), ctx());
    expect(none.action).toBe('wait');
    const some = decideWorkload(input({ workload: workload({ deadline }) }), ctx());
    expect(some.action).toBe('place');
    expect(some.target?.capacity).toBe('spot');
  });

  it('deadline strategy governs: the preemption budget does not pin a deadline-bound workload', () => {
    // 4 preemptions in the last hour would pin a workload without a deadline (see anti-flap above);
    // with 14 h of slack the deadline strategy moves on to other spot instead, and pins nothing.
    const deadline = new Date(NOW + 20 * H).toISOString();
    const preemptions = [NOW - 50 * M, NOW - 40 * M, NOW - 20 * M, NOW - 10 * M];
    const d = decideWorkload(input({ workload: workload({ deadline }), current: onSpotNow(0.9, { evicted: true }), options: [od(), spot(0.9), spot(0.8, { pool: 'spot-b' })], history: { preemptions } }), ctx());
    expect(d.action).toBe('move');
    expect(d.target?.capacity).toBe('spot');
    expect(d.pinOnDemandUntil).toBeUndefined();
    // its reasons serialise with their (lazily formatted) text
    const json = JSON.parse(JSON.stringify(d.reasons)) as { rule: string; text: string }[];
    expect(json.find((r) => r.rule === 'deadline-slack')?.text).toMatch(/spot at spot-b \(\$0\.8\/GPU-h\): 14\.00 h of slack/);
  });

  it('deadline strategy: leaves on-demand only for spot that has been up long enough', () => {
    // 6 h of work, deadline in 7 h: slack 1 h is under the reserve (1 h + 0.1 × 6 h), so outages are
    // bridged on on-demand; spot that appeared 10 min ago is not worth the round trip, 2 h ago is.
    const deadline = new Date(NOW + 7 * H).toISOString();
    const w = workload({ deadline });
    const fresh = decideWorkload(input({ workload: w, current: onDemandNow(), options: [od(), spot(0.9, { availableSince: NOW - 10 * M })] }), ctx());
    expect(fresh.action).toBe('stay');
    const proven = decideWorkload(input({ workload: w, current: onDemandNow(), options: [od(), spot(0.9, { availableSince: NOW - 2 * H })] }), ctx());
    expect(proven.action).toBe('move');
    expect(proven.target?.capacity).toBe('spot');
  });

  it('explain shows every number that decided', () => {
    const i = input({ current: onDemandNow() });
    const text = renderExplanation(i, decideWorkload(i, ctx()));
    expect(text).toContain('workload.train-a: move → spot-a100 (spot)');
    for (const s of ['grossSavingsUsd', '$50.40', 'migrationOverheadUsd', '$0.88', 'savingsPerHour', '$8.227/h', 'minSavingsPerHour', 'expectedPreemptionCostUsd', '$0.16']) expect(text).toContain(s);
  });

  it('no policy set: the thresholds object is all it reads', () => {
    expect(thresholds.minSavingsPerHour).toBe(0.5);
  });
});
