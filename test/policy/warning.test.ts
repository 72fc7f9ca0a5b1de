// The priced answer to an early warning (pure): ignore, prepare or move by expected cost, what each
// pool/zone taught us about warnings and evictions, and the decayed preemption rate.
import { describe, expect, it } from 'vitest';
import { decideWarning, preemptionRateFromHistory, recordPoolEvent, warningFollowProbability, type WarningDecisionInput } from '../../src/policy/warning.js';
import { workload } from './builders.js';

const NOW = Date.parse('2026-12-01T12:00:00Z');
const H = 3_600_000;
const M = 60_000;

function input(o: Partial<WarningDecisionInput> = {}): WarningDecisionInput {
  return {
    workload: workload(),
    current: { provider: 'market', pool: 'spot-a', zone: 'z1', capacity: 'spot', node: 'n1', pricePerGpuHour: 1, since: NOW - H },
    options: [
      { pool: 'spot-b', provider: 'market', zone: 'z2', capacity: 'spot', gpuModel: 'V100', pricePerGpuHour: 1.1, available: true },
      { pool: 'od', provider: 'lab', capacity: 'on-demand', gpuModel: 'V100', pricePerGpuHour: 3, available: true, node: 'od-1' },
    ],
    history: { preemptions: [] },
    progress: { doneMs: H, lastCheckpointAt: NOW - 10 * M },
    overhead: { checkpointMs: 60_000, transferMs: 30_000, restartMs: 30_000 },
    notice: { kind: 'rebalance', deadline: NOW + 10 * M, receivedAt: NOW },
    configured: 'auto',
    ...o,
  };
}

describe('decideWarning', () => {
  it('prices ignore, prepare and move, and takes the cheapest; a pool can force its answer', () => {
    const d = decideWarning(input(), NOW);
    expect(['ignore', 'prepare', 'move']).toContain(d.response);
    const costs = { ignore: d.numbers.ignoreUsd, prepare: d.numbers.prepareUsd, move: d.numbers.moveUsd };
    expect(costs[d.response]).toBe(Math.min(...Object.values(costs).filter((x) => x >= 0)));
    expect(d.reasons[0]?.text).toMatch(/ignore \$.*prepare \$.*move now \$/);
    for (const forced of ['ignore', 'prepare', 'move'] as const) expect(decideWarning(input({ configured: forced }), NOW).response).toBe(forced);
  });

  it('another spot pool is a target, not only the fallback; nothing elsewhere means ignore', () => {
    expect(decideWarning(input({ configured: 'move' }), NOW).target?.pool).toBe('spot-b');
    const alone = decideWarning(input({ configured: 'prepare', options: [] }), NOW);
    expect(alone.response).toBe('ignore');
  });

  it('a pool whose warnings are always followed makes ignoring dearer', () => {
    let h = recordPoolEvent(undefined, 'warning', NOW);
    for (let i = 0; i < 9; i++) h = recordPoolEvent(recordPoolEvent(h, 'warning', NOW), 'warning-followed', NOW);
    h = recordPoolEvent(h, 'warning-followed', NOW);
    expect(warningFollowProbability(h)).toBeGreaterThan(0.8);
    expect(warningFollowProbability(undefined)).toBeCloseTo(1 / 3);
    const risky = decideWarning(input({ poolHistory: h }), NOW);
    const fresh = decideWarning(input(), NOW);
    expect(risky.numbers.ignoreUsd).toBeGreaterThan(fresh.numbers.ignoreUsd);
  });
});

describe('pool history', () => {
  it('a zone just preempted is priced as riskier, and forgets with time', () => {
    expect(preemptionRateFromHistory(undefined, NOW)).toBeUndefined();
    const h = recordPoolEvent(undefined, 'eviction', NOW);
    const now = preemptionRateFromHistory(h, NOW) as number;
    const later = preemptionRateFromHistory(h, NOW + 12 * H) as number;
    expect(now).toBeGreaterThan(0);
    expect(later).toBeLessThan(now / 2);
    expect(recordPoolEvent(h, 'unannounced', NOW)).toMatchObject({ evictions: 2, unannounced: 1 });
  });
});
