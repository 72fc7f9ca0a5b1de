// The machine types a cloud provider may buy, as its config lists them (aws `instanceTypes`, azure
// `vmSizes`, gcp `machineTypes`): the JSON schema of that map, which of them serve a GPU model, the
// offering of one at a price, the image a launch of one boots, and the offline checks every cloud
// makes of a pool that buys them (validate). One definition, so the clouds check and answer alike;
// each adds its own keys and checks around it.
import { ProviderError } from '../../../core/errors.js';
import type { CapacityType } from '../../../core/types.js';
import type { PoolProblem, ProviderPool } from '../../sdk.js';
import type { CloudOffering, LaunchRequest } from './leased-nodes.js';
import type { OfferingPrice } from './price-book.js';

/** What every cloud's machine-type entry holds; prices in USD per hour for the whole machine. */
export interface MachineTypeConfig {
  gpuModel: string;
  gpus: number;
  onDemandPrice?: number;
  spotPrice?: number;
}

/** JSON Schema of a config's machine-type map: GPU model and GPUs of each, then the cloud's own keys. */
export function machineTypesSchema<P extends Record<string, unknown>>(description: string, properties: P) {
  return {
    type: 'object',
    minProperties: 1,
    description,
    additionalProperties: {
      type: 'object',
      additionalProperties: false,
      required: ['gpuModel', 'gpus'],
      properties: { gpuModel: { type: 'string', minLength: 1 }, gpus: { type: 'integer', minimum: 1 }, ...properties },
    },
  } as const;
}

/** Whether a config lists any machine type (then the provider buys capacity). */
export function hasMachineTypes(types: Record<string, MachineTypeConfig> | undefined): boolean {
  return types !== undefined && Object.keys(types).length > 0;
}

/** Whether a type serves a GPU model (any model when it is undefined); names compare case-insensitively. */
export function servesGpu(t: MachineTypeConfig, gpuModel: string | undefined): boolean {
  return gpuModel === undefined || t.gpuModel.toLowerCase() === gpuModel.toLowerCase();
}

/** The types that serve a GPU model, sorted by name. */
export function typesForGpu<T extends MachineTypeConfig>(types: Record<string, T>, gpuModel: string | undefined): [string, T][] {
  return Object.entries(types)
    .filter(([, t]) => servesGpu(t, gpuModel))
    .sort(([a], [b]) => a.localeCompare(b));
}

/** What a machine type sells on a capacity type at a price: in `zone`, or region-wide when it is undefined. */
export function machineOffering(type: string, t: MachineTypeConfig, capacity: CapacityType, price: OfferingPrice, zone: string | undefined): CloudOffering {
  const o: CloudOffering = { type, capacity, gpuModel: t.gpuModel, gpus: t.gpus, ...price };
  if (zone !== undefined) o.zone = zone;
  return o;
}

/**
 * The image a launch boots: the pool's `node.image`, else the provider's (`configured`). Neither is
 * a ProviderError at the lease, in the cloud's words: `what` the image is called (`AMI`) and the
 * config `key` that names it (`imageId`).
 */
export function launchImage(provider: string, l: LaunchRequest, configured: string | undefined, words: { what: string; key: string }): string {
  const image = l.pool.node.image ?? configured;
  if (image === undefined) throw new ProviderError(provider, `pool ${l.req.pool} names no ${words.what} (node.image) and the provider has no ${words.key}`, { address: l.address });
  return image;
}

export interface MachinePoolCheck<T extends MachineTypeConfig> {
  /** The config key that lists the types, e.g. `instanceTypes`. */
  key: string;
  /** What one type is called, e.g. `instance type`. */
  noun: string;
  /** What the provider still does without types, e.g. `it reads notices only`. */
  without: string;
  /** The config a pool needs when there are no types. */
  example: string;
  /** The login user the `node` example names. */
  user: string;
  /** Whether the provider config names an image (a pool's node.image may name another). */
  configImage: boolean;
  /** The problem when neither names one. */
  noImage: { message: string; expected: string };
  /** The form a pool's node.image must have, when the cloud checks it. */
  imageForm?: { pattern: RegExp; is: string; expected: string };
  /** The cloud's own checks of the pool's types, after the GPU model's. */
  typeProblems?: (types: Record<string, T>) => PoolProblem[];
}

/**
 * The checks every cloud makes of a pool that buys from it: the provider lists types, one of the
 * pool's GPU model, and the pool says how its nodes are reached and which image they boot. Zones
 * are the cloud's own to check.
 */
export function checkMachinePool<T extends MachineTypeConfig>(types: Record<string, T> | undefined, pool: ProviderPool, o: MachinePoolCheck<T>): PoolProblem[] {
  if (types === undefined || !hasMachineTypes(types)) {
    return [{ path: '/provider', message: `the provider has no ${o.key}, so it cannot buy nodes for this pool (${o.without})`, expected: o.example }];
  }
  const out: PoolProblem[] = [];
  if (pool.gpuModel !== undefined && !Object.values(types).some((t) => servesGpu(t, pool.gpuModel))) {
    out.push({ path: '/gpuModel', message: `no ${o.noun} in the provider's ${o.key} has GPU model "${pool.gpuModel}"`, expected: `one of ${[...new Set(Object.values(types).map((t) => t.gpuModel))].sort().join(', ')}` });
  }
  out.push(...(o.typeProblems?.(types) ?? []));
  if (!pool.node) {
    out.push({ path: '', message: 'does not say how the nodes it buys are reached', expected: `node: { via: ssh, user: ${o.user}, identityFile: ~/.ssh/id_ed25519, runtime: docker }` });
  } else if (pool.node.image === undefined && !o.configImage) {
    out.push({ path: '/node', ...o.noImage });
  } else if (pool.node.image !== undefined && o.imageForm !== undefined && !o.imageForm.pattern.test(pool.node.image)) {
    out.push({ path: '/node/image', message: `node.image "${pool.node.image}" is not ${o.imageForm.is}`, expected: o.imageForm.expected });
  }
  return out;
}
