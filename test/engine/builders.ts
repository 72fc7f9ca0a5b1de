// Small builders for the pure core's tests: a Fleet, observed facts and a state, with defaults.
import type { Lease, NodeInfo, Observed, PriceQuote, WorkloadInstance } from '../../src/core/types.js';
import type { Fleet, PoolSpec, WorkloadSpec } from '../../src/spec/types.js';
import type { StateFile, WorkloadRecord } from '../../src/state/types.js';

const pos = { file: 'fleet.yaml', line: 1, col: 1 };

export function workload(name: string, o: Partial<WorkloadSpec> = {}): WorkloadSpec {
  return {
    name,
    command: ['node', 'trainer.mjs'],
    env: {},
    gpus: 1,
    gpuModel: 'V100',
    class: 'training',
    capacity: 'auto',
    expectedDurationMs: 8 * 3_600_000,
    fallback: { to: 'on-demand', revertToSpot: true, minDwellMs: 30 * 60_000 },
    labels: {},
    checkpoint: { path: '/checkpoints', signal: 'SIGUSR1', stopGraceMs: 20_000, resumeEnv: 'RESUME_FROM_CHECKPOINT' },
    critical: false, restartPolicy: 'OnFailure', backoffLimit: 6,
    specHash: `h-${name}`,
    pos,
    ...o,
  };
}

export function pool(name: string, provider: string, capacity: 'spot' | 'on-demand', o: Partial<PoolSpec> = {}): PoolSpec {
  return { name, provider, capacity, gpuModel: 'V100', labels: {}, onWarning: 'auto', pos, ...o };
}

export function fleet(o: Partial<Fleet> = {}): Fleet {
  return {
    apiVersion: 'spotfleet.dev/v1',
    name: 'test',
    labels: {},
    source: '/x/fleet.yaml',
    dir: '/x',
    files: ['/x/fleet.yaml'],
    providers: [],
    pools: [pool('spot-v100', 'market', 'spot', { maxPricePerHour: 2 }), pool('od-v100', 'lab', 'on-demand')],
    workloads: [],
    defaults: {
      thresholds: { minSavingsPerHour: 0.5, minRuntimeMs: 30 * 60_000, spotPriceAlertRatio: 0.8, maxPreemptions: 3, preemptionWindowMs: 6 * 3_600_000, cooldownMs: 2 * 3_600_000 },
    },
    alerts: [],
    sinks: [],
    policies: [],
    ...o,
  };
}

export function node(id: string, provider: string, o: Partial<NodeInfo> = {}): NodeInfo {
  return { id, provider, gpuModel: 'V100', gpus: 4, capacity: 'on-demand', zone: 'lab', pricePerHour: 12.24, state: 'ready', ...o };
}

export function instance(id: string, wl: string, provider: string, nodeId: string, o: Partial<WorkloadInstance> = {}): WorkloadInstance {
  return { id, provider, node: nodeId, fleet: 'test', workload: wl, state: 'running', startedAt: '2026-11-23T00:00:00.000Z', gpus: 1, specHash: `h-${wl}`, labels: { 'spotfleet.fleet': 'test', 'spotfleet.workload': wl }, ...o };
}

export function quote(zone: string, price: number, o: Partial<PriceQuote> = {}): PriceQuote {
  return { provider: 'market', gpuModel: 'V100', capacity: 'spot', zone, pricePerGpuHour: price, available: true, at: '2026-11-23T00:00:00.000Z', ...o };
}

export function lease(id: string, o: Partial<Lease> = {}): Lease {
  return { id, provider: 'market', pool: 'spot-v100', capacity: 'spot', gpuModel: 'V100', gpus: 1, zone: 'us-west-2a', pricePerHour: 0.92, acquiredAt: '2026-11-23T00:00:00.000Z', state: 'active', node: id, labels: { 'spotfleet.fleet': 'test' }, ...o };
}

export function observed(o: Partial<Observed> = {}): Observed {
  return { at: '2026-11-23T01:00:00.000Z', nodes: [], workloads: [], leases: [], prices: [], offers: [], notices: [], unknown: [], ...o };
}

export function state(resources: StateFile['resources'] = {}): StateFile {
  return { version: 1, serial: 7, lineage: 'lineage-1', fleet: 'test', resources, pending: [], ledger: [] };
}

export function running(name: string, o: Partial<WorkloadRecord> = {}): WorkloadRecord {
  return {
    type: 'workload', address: `workload.${name}`, name, phase: 'running', failures: 0, recoveries: 0, provider: 'lab', node: 'od-1', instanceId: `i-${name}`, capacity: 'on-demand', pool: 'od-v100', zone: 'lab',
    pricePerGpuHour: 3.06, gpus: 1, specHash: `h-${name}`, since: Date.parse('2026-11-23T00:00:00.000Z'), doneMs: 0, generation: 1, preemptions: [], moves: [], ...o,
  };
}

export const NOW = Date.parse('2026-11-23T01:00:00.000Z');
export const planOpts = { now: NOW, marketProviders: new Set(['market']), runtimeProviders: new Set(['market', 'lab']) };
