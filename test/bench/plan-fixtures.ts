// In-memory inputs for the planner benchmark: a Fleet, what refresh observed and a state file, built
// directly (as test/engine/builders.ts does for unit tests) at any scale, with no provider and no I/O.
// Half the nodes are on-demand machines of a static provider (`lab`), half are spot leases of a
// market (`market`) spread over a few zones; half the workloads already run, recorded in state.
// Of those, one in twenty was preempted (its record names an instance no runtime reports any more:
// the plan records how it ended and restarts it from its checkpoint), and 1% of the recorded
// workloads are no longer in the spec (the plan checkpoints and stops them).
import type { Lease, NodeInfo, Observed, PriceQuote, WorkloadInstance } from '../../src/core/types.js';
import type { PlanOptions } from '../../src/engine/plan.js';
import type { Fleet, PoolSpec, WorkloadSpec } from '../../src/spec/types.js';
import type { LeaseRecord, StateFile, WorkloadRecord } from '../../src/state/types.js';

export interface PlanFixtureOptions {
  workloads: number;
  nodes: number;
  /** GPUs per node; default 16 (room for every workload of the default shape). */
  gpusPerNode?: number;
  /** Share of workloads already running; default 0.5. */
  runningShare?: number;
}

export interface PlanFixture {
  fleet: Fleet;
  observed: Observed;
  state: StateFile;
  options: PlanOptions;
}

export const ZONES = ['us-east-1a', 'us-east-1b', 'us-west-2a', 'us-west-2b'] as const;
const SPOT_PRICE: Record<string, number> = { 'us-east-1a': 0.92, 'us-east-1b': 0.97, 'us-west-2a': 1.05, 'us-west-2b': 1.31 };
const OD_PRICE = 3.06;
const NOW = Date.parse('2026-11-23T12:00:00.000Z');
const iso = (ms: number): string => new Date(ms).toISOString();
const pos = { file: 'fleet.yaml', line: 1, col: 1 };
const pad = (i: number): string => String(i).padStart(6, '0');

function pool(name: string, provider: string, capacity: 'spot' | 'on-demand', maxPricePerHour?: number): PoolSpec {
  return { name, provider, capacity, gpuModel: 'V100', labels: {}, onWarning: 'auto', pos, ...(maxPricePerHour !== undefined ? { maxPricePerHour } : {}) };
}

function workload(i: number): WorkloadSpec {
  const name = `w-${pad(i)}`;
  return {
    name,
    command: ['python', 'train.py', `--shard=${i}`],
    env: {},
    gpus: i % 7 === 0 ? 2 : 1,
    gpuModel: 'V100',
    // One in ten stays on on-demand (serving-like); the rest may use spot.
    class: i % 10 === 0 ? 'serving' : 'training',
    capacity: i % 10 === 0 ? 'on-demand' : 'auto',
    expectedDurationMs: 8 * 3_600_000,
    fallback: { to: 'on-demand', revertToSpot: true, minDwellMs: 30 * 60_000 },
    labels: { team: i % 2 === 0 ? 'nlp' : 'vision' },
    checkpoint: { path: '/checkpoints', signal: 'SIGUSR1', stopGraceMs: 20_000, resumeEnv: 'RESUME_FROM_CHECKPOINT' },
    critical: false, restartPolicy: 'OnFailure', backoffLimit: 6,
    specHash: `h-${name}`,
    pos,
  };
}

/** Builds a fleet of `workloads` over `nodes` nodes; deterministic for the same options. */
export function planFixture(o: PlanFixtureOptions): PlanFixture {
  const gpusPerNode = o.gpusPerNode ?? 16;
  const runningCount = Math.floor(o.workloads * (o.runningShare ?? 0.5));
  const workloads = Array.from({ length: o.workloads }, (_, i) => workload(i));
  const fleet: Fleet = {
    apiVersion: 'spotfleet.dev/v1',
    name: 'bench',
    labels: {},
    source: '/bench/fleet.yaml',
    dir: '/bench',
    files: ['/bench/fleet.yaml'],
    providers: [
      { name: 'lab', type: 'local', config: {}, pos, configPos: pos },
      { name: 'market', type: 'sim', config: {}, pos, configPos: pos },
    ],
    pools: [pool('spot-v100', 'market', 'spot', 2), pool('od-v100', 'lab', 'on-demand')],
    workloads,
    defaults: {
      checkpoint: { path: '/checkpoints', signal: 'SIGUSR1', stopGraceMs: 20_000, resumeEnv: 'RESUME_FROM_CHECKPOINT' },
      thresholds: { minSavingsPerHour: 0.5, minRuntimeMs: 30 * 60_000, spotPriceAlertRatio: 0.8, maxPreemptions: 3, preemptionWindowMs: 6 * 3_600_000, cooldownMs: 2 * 3_600_000 },
    },
    alerts: [],
    sinks: [],
    policies: [],
  };

  const odNodes: NodeInfo[] = [];
  const spotNodes: NodeInfo[] = [];
  const leases: Lease[] = [];
  const state: StateFile = { version: 1, serial: 42, lineage: 'bench-lineage', fleet: fleet.name, resources: {}, pending: [], ledger: [] };
  for (let i = 0; i < o.nodes; i++) {
    if (i % 2 === 0) {
      odNodes.push({ id: `od-${pad(i)}`, provider: 'lab', gpuModel: 'V100', gpus: gpusPerNode, capacity: 'on-demand', zone: 'lab', pricePerHour: OD_PRICE * gpusPerNode, state: 'ready' });
      continue;
    }
    const zone = ZONES[i % ZONES.length] as string;
    const id = `sim-${pad(i)}`;
    const price = (SPOT_PRICE[zone] as number) * gpusPerNode;
    spotNodes.push({ id, provider: 'market', gpuModel: 'V100', gpus: gpusPerNode, capacity: 'spot', zone, pricePerHour: price, state: 'ready', leaseId: id, pool: 'spot-v100' });
    leases.push({ id, provider: 'market', pool: 'spot-v100', capacity: 'spot', gpuModel: 'V100', gpus: gpusPerNode, zone, pricePerHour: price, acquiredAt: iso(NOW - 3 * 3_600_000), state: 'active', node: id, labels: { 'spotfleet.fleet': fleet.name } });
    const rec: LeaseRecord = { type: 'lease', address: `lease.spot-v100.${id}`, provider: 'market', pool: 'spot-v100', leaseId: id, node: id, capacity: 'spot', zone, gpus: gpusPerNode, pricePerHour: price, acquiredAt: NOW - 3 * 3_600_000, idempotencyKey: `bench:${id}` };
    state.resources[rec.address] = rec;
  }

  // The running half: on-demand-only workloads on lab nodes, the others on spot nodes, round robin.
  const instances: WorkloadInstance[] = [];
  let od = 0;
  let sp = 0;
  for (let i = 0; i < runningCount; i++) {
    const w = workloads[i] as WorkloadSpec;
    const onDemand = w.capacity === 'on-demand' || spotNodes.length === 0;
    const n = (onDemand ? odNodes[od++ % odNodes.length] : spotNodes[sp++ % spotNodes.length]) as NodeInfo;
    const id = `${w.name}-i${pad(i)}`;
    const since = NOW - 3_600_000 - (i % 60) * 60_000;
    if (i % 20 !== 19) instances.push({ id, provider: n.provider, node: n.id, fleet: fleet.name, workload: w.name, state: 'running', startedAt: iso(since), gpus: w.gpus, specHash: w.specHash, labels: { 'spotfleet.fleet': fleet.name, 'spotfleet.workload': w.name } });
    const rec: WorkloadRecord = {
      type: 'workload', address: `workload.${w.name}`, name: w.name, phase: 'running', failures: 0, recoveries: 0, provider: n.provider, node: n.id, instanceId: id, capacity: n.capacity,
      ...(n.pool !== undefined ? { pool: n.pool } : { pool: 'od-v100' }), ...(n.zone !== undefined ? { zone: n.zone } : {}),
      pricePerGpuHour: n.pricePerHour / n.gpus, gpus: w.gpus, specHash: w.specHash, since, doneMs: 0, generation: 1, preemptions: [], moves: [],
      lastCheckpoint: { node: n.id, workload: w.name, path: `/checkpoints/${w.name}/ckpt-1`, mtime: iso(NOW - 5 * 60_000), sizeBytes: 1_000_000 },
    };
    state.resources[rec.address] = rec;
  }

  // Recorded and running, but removed from the spec.
  for (let i = 0; i < Math.floor(o.workloads / 100) && odNodes.length > 0; i++) {
    const name = `gone-${pad(i)}`;
    const n = odNodes[i % odNodes.length] as NodeInfo;
    const id = `${name}-i${pad(i)}`;
    const since = NOW - 7_200_000;
    instances.push({ id, provider: n.provider, node: n.id, fleet: fleet.name, workload: name, state: 'running', startedAt: iso(since), gpus: 1, specHash: `h-${name}`, labels: { 'spotfleet.fleet': fleet.name, 'spotfleet.workload': name } });
    state.resources[`workload.${name}`] = {
      type: 'workload', address: `workload.${name}`, name, phase: 'running', failures: 0, recoveries: 0, provider: n.provider, node: n.id, instanceId: id, capacity: n.capacity, pool: 'od-v100',
      pricePerGpuHour: n.pricePerHour / n.gpus, gpus: 1, specHash: `h-${name}`, since, doneMs: 0, generation: 1, preemptions: [], moves: [],
    };
  }

  const prices: PriceQuote[] = [];
  for (const zone of ZONES) {
    prices.push({ provider: 'market', gpuModel: 'V100', capacity: 'spot', zone, pricePerGpuHour: SPOT_PRICE[zone] as number, available: zone !== 'us-west-2b', preemptionRatePerHour: 0.05, at: iso(NOW) });
    prices.push({ provider: 'market', gpuModel: 'V100', capacity: 'on-demand', zone, pricePerGpuHour: OD_PRICE, available: true, preemptionRatePerHour: 0, at: iso(NOW) });
  }
  const observed: Observed = { at: iso(NOW), nodes: [...odNodes, ...spotNodes], workloads: instances, leases, prices, offers: [], notices: [], unknown: [] };
  const options: PlanOptions = { now: NOW, marketProviders: new Set(['market']), runtimeProviders: new Set(['market', 'lab']) };
  return { fleet, observed, state, options };
}
