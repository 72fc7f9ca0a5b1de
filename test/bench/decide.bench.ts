// decideWorkload cost per call (µs), on the inputs the backtest's hot loop and plan/watch produce:
// a deadline-bound workload staying on spot (the common tick), one evicted, one waiting for spot,
// a workload without a deadline priced by the cost model, and the same with the default CEL policy
// set loaded. Reasons are read in none of the loops, as in the backtest (their text is lazy).
import { decideWorkload } from '../../src/policy/decide.js';
import { DEFAULT_POLICY_FILE, loadPolicySet } from '../../src/policy/policy-set.js';
import { DEFAULT_OVERHEAD, type DecideContext, type PlacementOption, type WorkloadDecisionInput } from '../../src/policy/types.js';
import type { Thresholds, WorkloadSpec } from '../../src/spec/types.js';
import { report } from './util.js';

const H = 3_600_000;
const NOW = Date.parse('2023-03-01T00:00:00Z');
const thresholds: Thresholds = { minSavingsPerHour: 0.5, minRuntimeMs: 30 * 60_000, spotPriceAlertRatio: 0.8, maxPreemptions: 3, preemptionWindowMs: H, cooldownMs: H };

function spec(deadline: string | undefined): WorkloadSpec {
  const w: WorkloadSpec = {
    name: 'train', env: {}, gpus: 1, gpuModel: 'V100', class: 'training', capacity: 'auto', expectedDurationMs: 40 * H,
    fallback: { to: 'on-demand', revertToSpot: true, minDwellMs: 30 * 60_000 }, labels: {},
    checkpoint: { path: '/c', signal: 'SIGUSR1', stopGraceMs: 60_000, resumeEnv: 'RESUME_FROM_CHECKPOINT' }, critical: false, restartPolicy: 'OnFailure', backoffLimit: 6, specHash: 'b', pos: { file: 'bench', line: 1, col: 1 },
  };
  if (deadline !== undefined) w.deadline = deadline;
  return w;
}

function options(available: boolean): PlacementOption[] {
  const zones = ['us-east-1c', 'us-east-1d', 'us-east-1f'];
  const out: PlacementOption[] = zones.map((zone, i) => ({ pool: 'spot', provider: 'sim', capacity: 'spot', zone, gpuModel: 'V100', pricePerGpuHour: 1.2 + i / 100, available, preemptionRatePerHour: 0.3 + i / 10, availableSince: NOW - (i + 1) * H }));
  out.push({ pool: 'on-demand', provider: 'sim', capacity: 'on-demand', gpuModel: 'V100', pricePerGpuHour: 3.06, available: true });
  return out;
}

const deadline = new Date(NOW + 40 * H).toISOString();
const history = { preemptions: [NOW - 5 * H, NOW - 3 * H, NOW - 2 * H] };
const progress = { doneMs: 20 * H, lastCheckpointAt: NOW - 10 * 60_000 };
const cases: { name: string; input: WorkloadDecisionInput; policies?: boolean }[] = [
  { name: 'deadline, on spot, stays', input: { workload: spec(deadline), options: options(true), history, progress, overhead: DEFAULT_OVERHEAD, current: { pool: 'spot', provider: 'sim', capacity: 'spot', zone: 'us-east-1c', node: 'n1', pricePerGpuHour: 1.2, since: NOW - H } } },
  { name: 'deadline, evicted, moves', input: { workload: spec(deadline), options: options(true).map((o) => (o.zone === 'us-east-1c' ? { ...o, available: false } : o)), history, progress, overhead: DEFAULT_OVERHEAD, current: { pool: 'spot', provider: 'sim', capacity: 'spot', zone: 'us-east-1c', node: 'n1', pricePerGpuHour: 1.2, since: NOW - H, evicted: true } } },
  { name: 'deadline, no spot, waits', input: { workload: spec(deadline), options: options(false), history, progress, overhead: DEFAULT_OVERHEAD } },
  { name: 'no deadline, on on-demand, cost model', input: { workload: spec(undefined), options: options(true), history, progress, overhead: DEFAULT_OVERHEAD, current: { pool: 'on-demand', provider: 'sim', capacity: 'on-demand', node: 'n2', pricePerGpuHour: 3.06, since: NOW - 10 * 60_000 } } },
  { name: 'no deadline, on on-demand, default policy set', policies: true, input: { workload: spec(undefined), options: options(true), history, progress, overhead: DEFAULT_OVERHEAD, current: { pool: 'on-demand', provider: 'sim', capacity: 'on-demand', node: 'n2', pricePerGpuHour: 3.06, since: NOW - 10 * 60_000 } } },
];

const policySet = loadPolicySet([DEFAULT_POLICY_FILE]);
for (const c of cases) {
  const ctx: DecideContext = { now: NOW, thresholds };
  if (c.policies) ctx.policies = policySet;
  const n = c.policies ? 20_000 : 200_000;
  let sink = 0;
  for (let i = 0; i < n / 10; i++) sink += decideWorkload(c.input, ctx).reasons.length; // warm-up
  const t0 = performance.now();
  for (let i = 0; i < n; i++) sink += decideWorkload(c.input, ctx).reasons.length;
  const us = ((performance.now() - t0) * 1000) / n;
  report(`decideWorkload: ${c.name} (${decideWorkload(c.input, ctx).action})`, us, 'µs/call', sink > 0 ? undefined : 'no-op?');
}
