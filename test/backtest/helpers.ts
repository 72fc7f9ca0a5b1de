// Builders for backtest tests: a hand-built WorkloadSpec (what loadFleet would resolve) and default thresholds.
import type { Thresholds, WorkloadSpec } from '../../src/spec/types.js';

export const THRESHOLDS: Thresholds = {
  minSavingsPerHour: 0.5,
  minRuntimeMs: 30 * 60_000,
  spotPriceAlertRatio: 0.8,
  maxPreemptions: 3,
  preemptionWindowMs: 3_600_000,
  cooldownMs: 3_600_000,
};

export function workloadSpec(over: Partial<WorkloadSpec> = {}): WorkloadSpec {
  return {
    name: 'train',
    env: {},
    gpus: 1,
    gpuModel: 'V100',
    class: 'training',
    capacity: 'auto',
    expectedDurationMs: 40 * 3_600_000,
    deadline: '2023-02-18T00:00:00Z',
    fallback: { to: 'on-demand', revertToSpot: true, minDwellMs: 30 * 60_000 },
    labels: {},
    checkpoint: { path: '/checkpoints', signal: 'SIGUSR1', stopGraceMs: 60_000, resumeEnv: 'RESUME_FROM_CHECKPOINT' },
    critical: false,
    restartPolicy: 'OnFailure',
    backoffLimit: 6,
    specHash: 'test',
    pos: { file: 'fleet.yaml', line: 1, col: 1 },
    ...over,
  };
}
