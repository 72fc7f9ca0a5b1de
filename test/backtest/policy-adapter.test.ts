// The backtest's spotfleet policy feeds decideWorkload the same zone statistics plan/watch keep:
// per zone, and per pool the market as a whole (`pool/*`), from the trace seen so far only.
import { describe, expect, it } from 'vitest';
import { makeJob, type Grid } from '../../src/backtest/model.js';
import { spotfleetPolicy } from '../../src/backtest/policies.js';
import { simulate } from '../../src/backtest/simulate.js';
import { decideWorkload } from '../../src/policy/decide.js';
import type { DecideContext, WorkloadDecisionInput } from '../../src/policy/types.js';
import { zoneStatsFromObservations, type AvailabilityObservation, type ZoneStats } from '../../src/policy/uptime.js';
import { THRESHOLDS, workloadSpec } from './helpers.js';

const H = 3_600_000;
const DT = 600_000;

/** Two zones on a 10-minute clock: a down in ticks [k % 12 < 3], b down at other hours, or the same ones. */
function grid(together: boolean, ticks = 200): Grid {
  const a = new Uint8Array(ticks);
  const b = new Uint8Array(ticks);
  for (let k = 0; k < ticks; k++) {
    a[k] = k % 12 < 3 ? 0 : 1;
    b[k] = (together ? k % 12 < 3 : k % 12 >= 6 && k % 12 < 9) ? 0 : 1;
  }
  return { startMs: Date.parse('2025-01-01T00:00:00Z'), dtMs: DT, ticks, zones: ['us-east-1a', 'us-east-1b'], avail: [a, b], spotPerGpuHour: [new Float64Array(ticks).fill(0.9), new Float64Array(ticks).fill(0.9)], onDemandPerGpuHour: 3 };
}

describe('spotfleetPolicy: zone statistics as plan/watch keep them', () => {
  for (const together of [true, false]) {
    it(`the market record (spot/*) is the zones' union, seen tick by tick (zones down ${together ? 'together' : 'apart'})`, () => {
      const g = grid(together);
      const seen: { k: number; stats: Record<string, ZoneStats> }[] = [];
      const decide = (input: WorkloadDecisionInput, ctx: DecideContext): ReturnType<typeof decideWorkload> => {
        seen.push({ k: Math.round((ctx.now - g.startMs) / DT), stats: structuredClone(input.zoneStats ?? {}) });
        return decideWorkload(input, ctx);
      };
      const job = makeJob({ workMs: 10 * H, deadlineMs: 30 * H, changeoverMs: 0.2 * H, dtMs: DT, gpus: 1, emergencyCheckpointOk: true, checkpointIntervalMs: H });
      const spec = workloadSpec({ expectedDurationMs: 10 * H });
      simulate(g, job, spotfleetPolicy({ workload: spec, thresholds: THRESHOLDS, overhead: { checkpointMs: 60_000, transferMs: 0, restartMs: 0.2 * H - 60_000 }, deadlineMs: 30 * H, decide }), 100);
      const last = seen[seen.length - 1] as { k: number; stats: Record<string, ZoneStats> };
      // What plan/watch would have recorded from the same observations, ticks 0..k.
      const obs: AvailabilityObservation[] = [];
      for (let k = 0; k <= last.k; k++) for (let z = 0; z < 2; z++) obs.push({ at: g.startMs + k * DT, pool: 'spot', zone: g.zones[z] as string, available: (g.avail[z] as Uint8Array)[k] === 1 });
      const live = zoneStatsFromObservations(obs);
      for (const key of ['spot/us-east-1a', 'spot/us-east-1b', 'spot/*']) {
        expect(last.stats[key]?.upPeriodsMs).toEqual(live[key]?.upPeriodsMs);
        expect(last.stats[key]?.downPeriodsMs).toEqual(live[key]?.downPeriodsMs);
      }
      // Apart, some zone is always up: the market was never down. Together, it was, every two hours.
      if (together) expect(last.stats['spot/*']?.downPeriodsMs?.length).toBeGreaterThan(3);
      else expect(last.stats['spot/*']?.downPeriodsMs ?? []).toEqual([]);
      // Nothing from the future: the record at tick k ends at k.
      const mid = seen[40] as { k: number; stats: Record<string, ZoneStats> };
      expect(mid.stats['spot/*']?.observedMs).toBe(mid.k * DT);
    });
  }
});
