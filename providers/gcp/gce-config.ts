// The gcp provider's Compute Engine settings: the config keys and their schema, the labels and
// metadata items spotfleet writes, and the offline checks of a pool (validate). Kept apart from
// gce.ts so that loading the provider for `validate` does not load the Compute client library.
import { createHash } from 'node:crypto';
import type { PoolProblem, ProviderPool } from '../../src/providers/sdk.js';
import type { CapacityErrorInfo } from '../../src/providers/kit/capacity/index.js';
import { checkMachinePool, hasMachineTypes, machineTypesSchema, servesGpu } from '../../src/providers/kit/capacity/machine-types.js';

export interface GceMachineTypeConfig {
  gpuModel: string;
  gpus: number;
  /** vCPUs and memory of the type: with the GPUs, they price it from the Cloud Billing Catalog. */
  vcpus?: number;
  memoryGiB?: number;
  /** On-demand USD per hour for the whole VM; default priced from the Cloud Billing Catalog. */
  onDemandPrice?: number;
  /** Spot USD per hour for the whole VM; default priced from the Cloud Billing Catalog. */
  spotPrice?: number;
  /** For N1 machine types: the accelerator to attach (`nvidia-tesla-t4`); A2/A3/G2 types carry theirs. */
  acceleratorType?: string;
  /** Catalog SKU names when the defaults do not fit: the GPU (`Nvidia Tesla V100 GPU`) and the machine family (`N1 Predefined Instance`). */
  catalog?: { gpu?: string; family?: string };
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
  /** Cloud Billing Catalog endpoint override (tests). Default https://cloudbilling.googleapis.com. */
  billingEndpoint?: string;
}

export const gceConfigProperties = {
  project: { type: 'string', pattern: '^[a-z][a-z0-9-]{4,28}[a-z0-9]$', description: 'GCP project id' },
  zones: { type: 'array', minItems: 1, items: { type: 'string', pattern: '^[a-z]+-[a-z]+[0-9]+-[a-z]$' }, description: 'Zones to buy VMs in, e.g. [us-central1-a, us-central1-b]' },
  endpoint: { type: 'string', pattern: '^https?://', description: 'Compute API endpoint override (tests)' },
  machineTypes: machineTypesSchema('Machine types spotfleet may create: GPU model, GPUs and $/h each', {
    vcpus: { type: 'integer', minimum: 1, description: 'vCPUs of the type (to price it from the Cloud Billing Catalog)' },
    memoryGiB: { type: 'number', exclusiveMinimum: 0, description: 'Memory of the type in GiB (to price it from the Cloud Billing Catalog)' },
    onDemandPrice: { type: 'number', minimum: 0, description: 'USD per VM-hour; default priced from the Cloud Billing Catalog' },
    spotPrice: { type: 'number', minimum: 0, description: 'USD per VM-hour; default priced from the Cloud Billing Catalog' },
    acceleratorType: { type: 'string', pattern: '^nvidia-', description: 'For N1 types: the GPU to attach' },
    catalog: { type: 'object', additionalProperties: false, properties: { gpu: { type: 'string', minLength: 1 }, family: { type: 'string', minLength: 1 } }, description: 'Catalog SKU names, when the defaults do not fit' },
  }),
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
  billingEndpoint: { type: 'string', pattern: '^https?://', description: 'Cloud Billing Catalog endpoint override (tests)' },
} as const;

export function gceConfigured(c: GceCapacityConfig): boolean {
  return hasMachineTypes(c.machineTypes);
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
  const out = checkMachinePool(config.machineTypes, pool, {
    key: 'machineTypes',
    noun: 'machine type',
    without: 'it reads the notices of the VM spotfleet runs on',
    example: 'project, zones and machineTypes: { a2-highgpu-1g: { gpuModel: A100, gpus: 1, vcpus: 12, memoryGiB: 85 } } in the gcp provider config',
    user: 'ubuntu',
    configImage: config.image !== undefined,
    noImage: { message: 'names no boot image', expected: 'node.image in the pool, or image in the gcp provider config' },
    typeProblems: (types) => unpricedTypes(types, pool),
  });
  if (!gceConfigured(config)) return out;
  for (const [i, z] of (pool.zones ?? []).entries()) if (!(config.zones ?? []).includes(z)) out.push({ path: `/zones/${i}`, message: `zone ${z} is not one of the provider's zones`, expected: `one of ${(config.zones ?? []).join(', ')}` });
  return out;
}

/** Types of the pool's GPU model that can be priced neither from config nor from the Cloud Billing Catalog. */
function unpricedTypes(types: Record<string, GceMachineTypeConfig>, pool: ProviderPool): PoolProblem[] {
  return Object.entries(types)
    .filter(([, t]) => servesGpu(t, pool.gpuModel) && (t.onDemandPrice === undefined || t.spotPrice === undefined) && (t.vcpus === undefined || t.memoryGiB === undefined))
    .map(([name]) => ({ path: '/provider', message: `machine type ${name} can be priced neither from config (onDemandPrice, spotPrice) nor from the Cloud Billing Catalog (it needs vcpus and memoryGiB)`, expected: `machineTypes.${name}: { vcpus, memoryGiB } (or both prices)` }));
}

/** The catalog's GPU SKU name for an accelerator type or GPU model (`Nvidia Tesla V100 GPU`). */
export function catalogGpuName(t: GceMachineTypeConfig): string | undefined {
  if (t.catalog?.gpu) return t.catalog.gpu;
  const byAccel: Record<string, string> = {
    'nvidia-tesla-v100': 'Nvidia Tesla V100 GPU',
    'nvidia-tesla-t4': 'Nvidia Tesla T4 GPU',
    'nvidia-tesla-p100': 'Nvidia Tesla P100 GPU',
    'nvidia-tesla-p4': 'Nvidia Tesla P4 GPU',
    'nvidia-tesla-a100': 'Nvidia Tesla A100 GPU',
    'nvidia-a100-80gb': 'Nvidia Tesla A100 80GB GPU',
    'nvidia-l4': 'Nvidia L4 GPU',
    'nvidia-h100-80gb': 'Nvidia H100 80GB GPU',
  };
  if (t.acceleratorType !== undefined) return byAccel[t.acceleratorType];
  const byModel: Record<string, string> = { V100: 'Nvidia Tesla V100 GPU', T4: 'Nvidia Tesla T4 GPU', P100: 'Nvidia Tesla P100 GPU', A100: 'Nvidia Tesla A100 GPU', L4: 'Nvidia L4 GPU', H100: 'Nvidia H100 80GB GPU' };
  return byModel[t.gpuModel.toUpperCase()];
}

/** The catalog's machine-family prefix of a machine type (`n1-standard-8` → `N1 Predefined Instance`). */
export function catalogFamily(type: string, t: GceMachineTypeConfig): string | undefined {
  if (t.catalog?.family) return t.catalog.family;
  const prefix = type.split('-')[0]?.toLowerCase() ?? '';
  const families: Record<string, string> = { n1: 'N1 Predefined Instance', n2: 'N2 Instance', a2: 'A2 Instance', a3: 'A3 Instance', g2: 'G2 Instance' };
  return families[prefix];
}

/** Price-book key of a machine type (with its attached GPUs) in a region. */
export function gcePriceKey(capacity: 'spot' | 'on-demand', type: string, t: GceMachineTypeConfig, region: string): `${'spot' | 'on-demand'}|${string}` {
  return `${capacity}|${type}${t.acceleratorType !== undefined ? `+${t.acceleratorType}x${t.gpus}` : ''}@${region}`;
}

/** The region of a zone (`us-central1-a` → `us-central1`). */
export function regionOf(zone: string): string {
  return zone.replace(/-[a-z]$/, '');
}
