// The azure provider's virtual-machine settings: config keys and their schema, the tags spotfleet
// writes, and the offline checks of a pool (validate). Kept apart from vm.ts so that loading the
// provider for `validate` does not load the Azure client libraries.
import type { PoolProblem, ProviderPool } from '../../src/providers/sdk.js';
import { checkMachinePool, hasMachineTypes, machineTypesSchema } from '../../src/providers/kit/capacity/machine-types.js';

export interface AzureVmSizeConfig {
  gpuModel: string;
  gpus: number;
  /** Pay-as-you-go USD per hour for the whole VM; default the Retail Prices API's. */
  onDemandPrice?: number;
  /** Spot USD per hour for the whole VM; default the Retail Prices API's. */
  spotPrice?: number;
}

export interface AzureCapacityConfig {
  subscriptionId?: string;
  resourceGroup?: string;
  location?: string;
  /** Availability zones to buy in (e.g. ["1","2","3"]); regional VMs when absent. */
  zones?: string[];
  /** Azure Resource Manager endpoint override (tests). Default https://management.azure.com. */
  endpoint?: string;
  /** Microsoft identity platform host. Default AZURE_AUTHORITY_HOST, else https://login.microsoftonline.com. */
  authorityHost?: string;
  /** Subnet the VMs' network interfaces join (its full resource id). */
  subnetId?: string;
  /** Give VMs a public IP (default true; spotfleet reaches them there unless node.address is private). */
  publicIp?: boolean;
  /** Image URN `publisher:offer:sku:version` unless a pool's node.image names another. */
  image?: string;
  vmSizes?: Record<string, AzureVmSizeConfig>;
  /** The VM's admin user (Azure refuses root); spotfleet logs in as the pool's node.user. Default azureuser. */
  adminUsername?: string;
  osDiskGiB?: number;
  tags?: Record<string, string>;
  capacityMissTtlSeconds?: number;
  /** Retail Prices API endpoint override (tests). Default https://prices.azure.com. */
  pricesEndpoint?: string;
}

export const azureVmConfigProperties = {
  subscriptionId: { type: 'string', pattern: '^[0-9a-fA-F-]{36}$', description: 'Azure subscription id' },
  resourceGroup: { type: 'string', minLength: 1, maxLength: 90 },
  location: { type: 'string', pattern: '^[a-z0-9]+$', description: 'Region, e.g. eastus' },
  zones: { type: 'array', minItems: 1, items: { enum: ['1', '2', '3'] }, description: 'Availability zones to buy in' },
  endpoint: { type: 'string', pattern: '^https://', description: 'Azure Resource Manager endpoint override (tests)' },
  authorityHost: { type: 'string', pattern: '^https://', description: 'Microsoft identity platform host (default AZURE_AUTHORITY_HOST or https://login.microsoftonline.com)' },
  subnetId: { type: 'string', pattern: '^/subscriptions/.+/subnets/[^/]+$', description: 'Full resource id of the subnet VMs join' },
  publicIp: { type: 'boolean', description: 'Give VMs a public IP (default true)' },
  image: { type: 'string', pattern: '^[^:]+:[^:]+:[^:]+:[^:]+$', description: 'Image URN publisher:offer:sku:version, e.g. microsoft-dsvm:ubuntu-hpc:2204:latest' },
  vmSizes: machineTypesSchema('VM sizes spotfleet may create: GPU model, GPUs and $/h each', {
    onDemandPrice: { type: 'number', minimum: 0, description: 'USD per VM-hour; default the Retail Prices API price' },
    spotPrice: { type: 'number', minimum: 0, description: 'USD per VM-hour; default the Retail Prices API price' },
  }),
  adminUsername: { type: 'string', pattern: '^[a-z_][a-z0-9_-]{0,31}$', description: 'The VM admin user (Azure refuses root); default azureuser' },
  osDiskGiB: { type: 'integer', minimum: 30, maximum: 4095 },
  tags: { type: 'object', additionalProperties: { type: 'string', maxLength: 256 } },
  capacityMissTtlSeconds: { type: 'integer', minimum: 0, maximum: 86400 },
  pricesEndpoint: { type: 'string', pattern: '^https?://', description: 'Retail Prices API endpoint override (tests)' },
} as const;

export function azureVmConfigured(c: AzureCapacityConfig): boolean {
  return hasMachineTypes(c.vmSizes);
}

/** Tags on spotfleet's VMs. */
export const TAG = {
  fleet: 'spotfleet-fleet',
  pool: 'spotfleet-pool',
  key: 'spotfleet-key',
  hostKey: 'spotfleet-host-key',
  price: 'spotfleet-price',
  gpuModel: 'spotfleet-gpu-model',
  gpus: 'spotfleet-gpus',
  labelPrefix: 'spotfleet-label-',
} as const;

export function checkAzurePool(config: AzureCapacityConfig, pool: ProviderPool): PoolProblem[] {
  const out = checkMachinePool(config.vmSizes, pool, {
    key: 'vmSizes',
    noun: 'VM size',
    without: 'it reads the Scheduled Events of the VM spotfleet runs on',
    example: 'subscriptionId, resourceGroup, location, subnetId and vmSizes: { Standard_NC24ads_A100_v4: { gpuModel: A100, gpus: 1 } } in the azure provider config',
    user: 'azureuser',
    configImage: config.image !== undefined,
    noImage: { message: 'names no image', expected: 'node.image: publisher:offer:sku:version in the pool, or image in the azure provider config' },
    imageForm: { pattern: /^[^:]+:[^:]+:[^:]+:[^:]+$/, is: 'an image URN', expected: 'publisher:offer:sku:version' },
  });
  if (!azureVmConfigured(config)) return out;
  for (const [i, z] of (pool.zones ?? []).entries()) if (!(config.zones ?? []).includes(z)) out.push({ path: `/zones/${i}`, message: `zone ${z} is not one of the provider's zones`, expected: `one of ${(config.zones ?? []).join(', ') || '(the provider lists no zones: regional VMs)'}` });
  return out;
}
