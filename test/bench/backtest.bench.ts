// Backtest speed: simulated hours per wall second over the full 45-day AWS V100 trace, for 1 and
// for 100 workloads (spotfleet's policy through decideWorkload plus the three baselines), and the
// exact optimum for the 60-hour windows.
import { existsSync } from 'node:fs';
import { loadSpotTrace, sliceTrace } from '../../src/core/trace.js';
import { buildGrid, makeJob, medianStepMs } from '../../src/backtest/model.js';
import { offlineOptimum } from '../../src/backtest/optimum.js';
import { greedyPolicy, onDemandPolicy, spotfleetPolicy, uniformProgressPolicy } from '../../src/backtest/policies.js';
import { simulate } from '../../src/backtest/simulate.js';
import type { WorkloadSpec } from '../../src/spec/types.js';
import { peakRssMb, report, timeIt } from './util.js';

const TRACE = process.env.SPOTFLEET_TRACE ?? '/work/shared/data/spot-traces/aws-p3.2xlarge-v100-9az-2023-02-15';
const H = 3_600_000;

if (!existsSync(TRACE)) {
  console.log(`trace ${TRACE} missing: set SPOTFLEET_TRACE`);
} else {
  const trace = sliceTrace(loadSpotTrace(TRACE), { zones: ['us-east-1c', 'us-east-2b', 'us-west-2a'] });
  const dt = medianStepMs(trace);
  const start = trace.times[0] as number;
  const spanMs = (trace.times[trace.times.length - 1] as number) - start;
  const ticks = Math.floor(spanMs / dt);
  const grid = buildGrid(trace, start, ticks, dt);
  const thresholds = { minSavingsPerHour: 0.5, minRuntimeMs: 30 * 60_000, spotPriceAlertRatio: 0.8, maxPreemptions: 3, preemptionWindowMs: H, cooldownMs: H };
  const overhead = { checkpointMs: 60_000, transferMs: 0, restartMs: 0.2 * H - 60_000 };
  // A job that keeps running for the whole trace: deadline at its end, work 2/3 of it.
  const workMs = Math.floor((ticks * dt * 2) / 3);
  const spec = (i: number): WorkloadSpec => ({
    name: `w${i}`, env: {}, gpus: 1 + (i % 4), gpuModel: 'V100', class: 'training', capacity: 'auto', expectedDurationMs: workMs,
    fallback: { to: 'on-demand', revertToSpot: true, minDwellMs: 30 * 60_000 }, labels: {},
    checkpoint: { path: '/c', signal: 'SIGUSR1', stopGraceMs: 60_000, resumeEnv: 'RESUME_FROM_CHECKPOINT' }, critical: false, restartPolicy: 'OnFailure', backoffLimit: 6, specHash: 'b', pos: { file: 'bench', line: 1, col: 1 },
  });
  const runWorkload = (i: number): number => {
    const job = makeJob({ workMs, deadlineMs: ticks * dt, changeoverMs: 0.2 * H, dtMs: dt, gpus: 1 + (i % 4), emergencyCheckpointOk: true, checkpointIntervalMs: H });
    const policies = [spotfleetPolicy({ workload: spec(i), thresholds, overhead, deadlineMs: ticks * dt }), greedyPolicy(), uniformProgressPolicy(), onDemandPolicy()];
    let simulatedTicks = 0;
    for (const p of policies) simulatedTicks += simulate(grid, job, p).timeline.length;
    return simulatedTicks;
  };
  runWorkload(0); // warm-up
  const one = await timeIt(() => runWorkload(0));
  report('1 workload × 4 policies, full trace: simulated hours / s', (one.value * dt) / H / (one.ms / 1000), 'h/s');
  report('1 workload × 4 policies, full trace: wall time', one.ms, 'ms', '45 days in seconds');
  const hundred = await timeIt(() => {
    let t = 0;
    for (let i = 0; i < 100; i++) t += runWorkload(i);
    return t;
  });
  report('100 workloads × 4 policies, full trace: simulated hours / s', (hundred.value * dt) / H / (hundred.ms / 1000), 'h/s');
  report('100 workloads × 4 policies, full trace: wall time', hundred.ms, 'ms');
  // The exact optimum, per 60-hour window (40 h of work, 0.2 h changeover): the setting.
  const job = makeJob({ workMs: 40 * H, deadlineMs: 60 * H, changeoverMs: 0.2 * H, dtMs: dt, gpus: 1, emergencyCheckpointOk: true, checkpointIntervalMs: H });
  const windows = 20;
  const opt = await timeIt(() => {
    for (let i = 0; i < windows; i++) {
      const s = start + Math.floor(((ticks - job.deadlineTicks) * i) / windows) * dt;
      offlineOptimum(buildGrid(trace, s, job.deadlineTicks, dt), job);
    }
  });
  report('exact optimum, 60 h window, 3 zones: ms per window', opt.ms / windows, 'ms');
  report('peak RSS', peakRssMb(), 'MB');
}
