// What `status` does per workload beyond the refresh: judge every recorded instance the providers no
// longer report running (liveEnds, shared with the planner's judgement). Linear in the fleet: 100,000
// workloads on 10,000 nodes, a tenth of them ended, in well under a second. (It looked each one up
// in the observed lists until 2026-12: 20.7 s at this size.)
import type { Observed, WorkloadInstance } from '../../src/core/types.js';
import { liveEnds } from '../../src/engine/lifecycle.js';
import type { WorkloadRecord } from '../../src/state/types.js';
import { benchArg, report, timeIt } from './util.js';

const N = benchArg('workloads', 100_000);
const nodesN = Math.max(1, Math.round(N / 10));
const workloads: WorkloadRecord[] = [];
const instances: WorkloadInstance[] = [];
for (let i = 0; i < N; i++) {
  const node = `n${i % nodesN}`;
  workloads.push({ type: 'workload', address: `workload.w${i}`, name: `w${i}`, provider: 'p', node, instanceId: `i${i}`, phase: 'running', gpus: 1 } as WorkloadRecord);
  instances.push({ id: `i${i}`, provider: 'p', node, workload: `w${i}`, state: i % 10 === 0 ? 'exited' : 'running', exitCode: 0 } as WorkloadInstance);
}
const observed = {
  workloads: instances,
  nodes: Array.from({ length: nodesN }, (_, j) => ({ id: `n${j}`, provider: 'p', gpus: 8 })),
  notices: Array.from({ length: 1000 }, (_, j) => ({ provider: 'p', node: `n${j}`, kind: 'preemption' })),
  unknown: [],
} as unknown as Observed;
const { ms, value } = await timeIt(() => liveEnds(workloads, observed, []));
if (value.size !== Math.ceil(N / 10)) throw new Error(`expected ${Math.ceil(N / 10)} ended, got ${value.size}`);
report(`status: instance ends judged, ${N.toLocaleString('en-US')} workloads / ${nodesN.toLocaleString('en-US')} nodes`, ms, 'ms', '< 500 ms');
