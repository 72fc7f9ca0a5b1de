// The gcp provider's Compute Engine settings: the config keys and their schema, the labels and
// metadata items spotfleet writes, and the offline checks of a pool (validate). Kept apart from
// gce.ts so that loading the provider for `validate` does not load the Compute client library.
import { createHash } from 'node:crypto';
import type { PoolProblem, ProviderPool } from '../../src/providers/sdk.js';
import type { CapacityErrorInfo } from '../../src/providers/kit/capacity/index.js';

export interface GceMachineTypeConfig {
  gpuModel: string;
  gpus: number;
  /** On-demand USD per hour for the whole VM. */
  onDemandPrice: number;
  /** Spot USD per hour for the whole VM. */
  spotPrice: number;
  /** For N1 machine types: the accelerator to attach (`nvidia-tesla-t4`); A2/A3/G2 types carry theirs. */
  acceleratorType?: string;
}

export interface GceCapacityConfig {
  project?: string;
  zones?: string[];
  /** Service URL override (tests): scheme, host and port. */
  endpoint?: string;
  machineTypes?: Record<string, GceMachineTypeConfig>;
  /** Boot image (`projects/…/global/images/family/…`) unless a pool's node.image names another. */
  image?: string;
  network?: string;
  subnetwork?: string;
  /** Give VMs an external IP (default true; spotfleet reaches them there unless node.address is private). */
  externalIp?: boolean;
  serviceAccount?: string;
  bootDiskGiB?: number;
  bootDiskType?: string;
  labels?: Record<string, string>;
  /** What GCE does to a preempted Spot VM. Default DELETE (nothing left to pay for). */
  instanceTerminationAction?: 'DELETE' | 'STOP';
  capacityMissTtlSeconds?: number;
}

export const gceConfigProperties = {
  project: { type: 'string', pattern: '^[a-z][a-z0-9-]{4,28}[a-z0-9]$', description: 'GCP project id' },
  zones: { type: 'array', minItems: 1, items: { type: 'string', pattern: '^[a-z]+-[a-z]+[0-9]+-[a-z]$' }, description: 'Zones to buy VMs in, e.g. [us-central1-a, us-central1-b]' },
  endpoint: { type: 'string', pattern: '^https?://', description: 'Compute API endpoint override (tests)' },
  machineTypes: {
    type: 'object',
    minProperties: 1,
    description: 'Machine types spotfleet may create: GPU model, GPUs and $/h each',
    additionalProperties: {
      type: 'object',
      additionalProperties: false,
      required: ['gpuModel', 'gpus', 'onDemandPrice', 'spotPrice'],
      properties: {
        gpuModel: { type: 'string', minLength: 1 },
        gpus: { type: 'integer', minimum: 1 },
        onDemandPrice: { type: 'number', minimum: 0, description: 'USD per VM-hour' },
        spotPrice: { type: 'number', minimum: 0, description: 'USD per VM-hour' },
        acceleratorType: { type: 'string', pattern: '^nvidia-', description: 'For N1 types: the GPU to attach' },
      },
    },
  },
  image: { type: 'string', minLength: 1, description: 'Boot image, e.g. projects/deeplearning-platform-release/global/images/family/common-cu124' },
  network: { type: 'string', minLength: 1, description: 'Default global/networks/default' },
  subnetwork: { type: 'string', minLength: 1 },
  externalIp: { type: 'boolean', description: 'Give VMs an external IP (default true)' },
  serviceAccount: { type: 'string', pattern: '@', description: 'Service account the VMs run as' },
  bootDiskGiB: { type: 'integer', minimum: 10, maximum: 65536 },
  bootDiskType: { type: 'string', pattern: '^pd-|^hyperdisk-' },
  labels: { type: 'object', additionalProperties: { type: 'string', pattern: '^[a-z0-9_-]{0,63}$' } },
  instanceTerminationAction: { enum: ['DELETE', 'STOP'], description: 'What GCE does to a preempted Spot VM (default DELETE)' },
  capacityMissTtlSeconds: { type: 'integer', minimum: 0, maximum: 86400 },
} as const;

export function gceConfigured(c: GceCapacityConfig): boolean {
  return c.machineTypes !== undefined && Object.keys(c.machineTypes).length > 0;
}

/** Labels (filterable, lowercase) and metadata items (exact values) spotfleet writes on its VMs. */
export const LABEL_FLEET = 'spotfleet-fleet';
export const LABEL_POOL = 'spotfleet-pool';
export const LABEL_KEY = 'spotfleet-key';
export const META = { fleet: 'spotfleet-fleet', pool: 'spotfleet-pool', hostKey: 'spotfleet-host-key', price: 'spotfleet-price', gpuModel: 'spotfleet-gpu-model', gpus: 'spotfleet-gpus', labels: 'spotfleet-labels', script: 'startup-script' } as const;

/** A value GCE accepts as a label: lowercase letters, digits, `_` and `-`, 63 at most. */
export function labelValue(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9_-]/g, '-').slice(0, 63);
}

/** A UUID (v4 layout) derived from a string: GCE's requestId must be one; the same string gives the same id. */
export function uuidFrom(s: string): string {
  const h = createHash('sha256').update(s).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${((parseInt(h.slice(16, 17), 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export const CAPACITY_CODES: Record<string, CapacityErrorInfo['scope']> = {
  ZONE_RESOURCE_POOL_EXHAUSTED: 'zone',
  ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS: 'zone',
  QUOTA_EXCEEDED: 'region',
};

export function checkGcePool(config: GceCapacityConfig, pool: ProviderPool): PoolProblem[] {
  if (!gceConfigured(config)) {
    return [{ path: '/provider', message: 'the provider has no machineTypes, so it cannot buy nodes for this pool (it reads the notices of the VM spotfleet runs on)', expected: 'project, zones and machineTypes: { a2-highgpu-1g: { gpuModel: A100, gpus: 1, onDemandPrice: 3.67, spotPrice: 1.10 } } in the gcp provider config' }];
  }
  const out: PoolProblem[] = [];
  const types = config.machineTypes ?? {};
  if (pool.gpuModel !== undefined && !Object.values(types).some((t) => t.gpuModel.toLowerCase() === pool.gpuModel?.toLowerCase())) {
    out.push({ path: '/gpuModel', message: `no machine type in the provider's machineTypes has GPU model "${pool.gpuModel}"`, expected: `one of ${[...new Set(Object.values(types).map((t) => t.gpuModel))].sort().join(', ')}` });
  }
  if (!pool.node) out.push({ path: '', message: 'does not say how the nodes it buys are reached', expected: 'node: { via: ssh, user: ubuntu, identityFile: ~/.ssh/id_ed25519, runtime: docker }' });
  else if (pool.node.image === undefined && config.image === undefined) out.push({ path: '/node', message: 'names no boot image', expected: 'node.image in the pool, or image in the gcp provider config' });
  for (const [i, z] of (pool.zones ?? []).entries()) if (!(config.zones ?? []).includes(z)) out.push({ path: `/zones/${i}`, message: `zone ${z} is not one of the provider's zones`, expected: `one of ${(config.zones ?? []).join(', ')}` });
  return out;
}
