// Small builders for decideWorkload inputs: a 4-GPU training job with 8 h expected, 2 h done,
// default overhead (60 s + 30 s + 30 s = 120 s = 1/30 h), thresholds as in DESIGN.md.
import type { Thresholds, WorkloadSpec } from '../../src/spec/types.js';
import type { CurrentPlacement, DecideContext, PlacementOption, WorkloadDecisionInput } from '../../src/policy/types.js';
import { DEFAULT_OVERHEAD } from '../../src/policy/types.js';

export const H = 3_600_000;
export const M = 60_000;
export const NOW = Date.parse('2026-06-01T12:00:00Z');

export const thresholds: Thresholds = {
  minSavingsPerHour: 0.5,
  minRuntimeMs: 30 * M,
  spotPriceAlertRatio: 0.8,
  maxPreemptions: 3,
  preemptionWindowMs: H,
  cooldownMs: 2 * H,
};

export function ctx(extra: Partial<DecideContext> = {}): DecideContext {
  return { now: NOW, thresholds, ...extra };
}

export function workload(over: Partial<WorkloadSpec> = {}): WorkloadSpec {
  return {
    name: 'train-a',
    env: {},
    gpus: 4,
    gpuModel: 'A100',
    class: 'training',
    capacity: 'auto',
    expectedDurationMs: 8 * H,
    fallback: { to: 'on-demand', revertToSpot: true, minDwellMs: 30 * M },
    labels: { team: 'nlp' },
    checkpoint: { path: '/ckpt', signal: 'SIGUSR1', stopGraceMs: 60_000, resumeEnv: 'RESUME_FROM_CHECKPOINT' },
    critical: false, restartPolicy: 'OnFailure', backoffLimit: 6,
    specHash: 'h',
    pos: { file: 'fleet.yaml', line: 1, col: 1 },
    ...over,
  };
}

export function od(price = 3.0, over: Partial<PlacementOption> = {}): PlacementOption {
  return { pool: 'od-a100', provider: 'market', capacity: 'on-demand', gpuModel: 'A100', pricePerGpuHour: price, available: true, ...over };
}

export function spot(price: number, over: Partial<PlacementOption> = {}): PlacementOption {
  return { pool: 'spot-a100', provider: 'market', capacity: 'spot', gpuModel: 'A100', pricePerGpuHour: price, available: true, preemptionRatePerHour: 0.05, maxPricePerHour: 2.5, ...over };
}

export function onDemandNow(since = NOW - 2 * H): CurrentPlacement {
  return { pool: 'od-a100', provider: 'market', capacity: 'on-demand', node: 'od-1', pricePerGpuHour: 3.0, since };
}

export function onSpotNow(price: number, over: Partial<CurrentPlacement> = {}): CurrentPlacement {
  return { pool: 'spot-a100', provider: 'market', capacity: 'spot', node: 'spot-1', pricePerGpuHour: price, since: NOW - 2 * H, ...over };
}

export function input(over: Partial<WorkloadDecisionInput> = {}): WorkloadDecisionInput {
  return {
    workload: workload(),
    options: [od(), spot(0.9)],
    history: { preemptions: [] },
    // 2 h done of 8 h: 6 h remain; newest checkpoint 6 min (0.1 h) ago.
    progress: { doneMs: 2 * H, lastCheckpointAt: NOW - 6 * M },
    overhead: DEFAULT_OVERHEAD,
    ...over,
  };
}

/** Numbers of the decision's cost-benefit reason. */
export function costNumbers(d: { reasons: { rule: string; numbers?: Record<string, number> }[] }): Record<string, number> {
  const r = d.reasons.find((x) => x.rule === 'cost-benefit');
  if (!r?.numbers) throw new Error(`no cost-benefit reason in ${JSON.stringify(d.reasons)}`);
  return r.numbers;
}
