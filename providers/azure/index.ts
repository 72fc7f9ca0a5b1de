// The `azure` provider. With `vmSizes` (and subscriptionId, resourceGroup, location, subnetId):
// Azure Spot and pay-as-you-go VMs (providers/azure/vm.ts) that become SSH + Docker nodes spotfleet
// runs work on (src/providers/kit/capacity; their Scheduled Events are read on the node). Without:
// spotfleet running ON an Azure VM, where `nodes` reports that VM (from config, name and zone from
// IMDS when left out) and `notices` reads its own Scheduled Events directly, keeping only events
// that name this VM, and approves them with StartRequests when `acknowledge` is set (only one
// leader per availability set should do that).
import type { Provider, ProviderContext, ProviderFactory } from '../../src/providers/sdk.js';
import { AZURE_METADATA_URL, AzureNoticeReader, createHttpTransport, createOnNodeCapabilities, onNodeConfigProperties, type OnNodeConfig } from '../../src/providers/kit/metadata/index.js';
import { LeasedNodes } from '../../src/providers/kit/capacity/index.js';
import { azureVmConfigProperties, azureVmConfigured, checkAzurePool, type AzureCapacityConfig } from './vm-config.js';

export interface AzureOnNodeConfig extends OnNodeConfig {
  /** Approve events with StartRequests once spotfleet has handled them. Default false. */
  acknowledge?: boolean;
  /** The VM name as Scheduled Events lists it in Resources; default the compute name from IMDS. */
  vmName?: string;
}

export type AzureConfig = Partial<AzureOnNodeConfig> & AzureCapacityConfig;

const configSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'azure provider config',
  description: 'Azure Spot and pay-as-you-go VMs that run work over SSH + Docker (with vmSizes), or the Azure VM spotfleet runs on and its Scheduled Events (without).',
  type: 'object',
  additionalProperties: false,
  properties: {
    ...onNodeConfigProperties,
    acknowledge: { description: 'Approve handled events with StartRequests so they start at once (one leader per availability set). Default false.', type: 'boolean' },
    vmName: { description: 'This VM\'s name as Scheduled Events lists it in Resources. Default: the compute name from IMDS.', type: 'string', minLength: 1 },
    ...azureVmConfigProperties,
  },
  if: { required: ['vmSizes'] },
  then: { required: ['subscriptionId', 'resourceGroup', 'location', 'subnetId'] },
  else: { required: ['gpuModel', 'gpus', 'pricePerHour'] },
} as const;

/** The VM spotfleet runs on: its own Scheduled Events. */
function createOnNode(config: AzureOnNodeConfig, ctx: ProviderContext): Provider {
  const transport = createHttpTransport();
  const reader = new AzureNoticeReader({
    transport,
    baseUrl: config.metadataUrl ?? AZURE_METADATA_URL,
    provider: ctx.name,
    now: () => ctx.now(),
    log: ctx.log,
    ...(config.timeoutMs !== undefined ? { timeoutMs: config.timeoutMs } : {}),
    ...(config.vmName !== undefined ? { vmName: config.vmName } : {}),
  });
  const caps = createOnNodeCapabilities({ cloud: 'azure', config, ctx, reader, nameItem: 'name', zoneItem: 'zone', acknowledge: config.acknowledge ?? false });
  return {
    name: ctx.name,
    type: 'azure',
    nodes: caps.nodes,
    notices: caps.notices,
    close: async () => {
      await transport.close?.();
    },
  };
}

/** Creates an `azure` provider instance; exported for tests that pass a context directly. */
export async function createAzureProvider(config: AzureConfig, ctx: ProviderContext): Promise<Provider> {
  if (!azureVmConfigured(config)) return createOnNode(config as AzureOnNodeConfig, ctx);
  // The Azure client libraries load only for fleets that buy Azure VMs.
  const { createAzureVmDriver } = await import('./vm.js');
  const leased = new LeasedNodes({ ctx, driver: createAzureVmDriver(config, ctx), ...(config.capacityMissTtlSeconds !== undefined ? { capacityMissTtlMs: config.capacityMissTtlSeconds * 1000 } : {}) });
  const caps = leased.capabilities();
  const p: Provider = { name: ctx.name, type: 'azure', capacity: caps.capacity, nodes: caps.nodes, close: () => leased.close() };
  if (!(ctx.pools ?? []).some((x) => x.node !== undefined)) return p;
  return { ...p, runtime: caps.runtime, storage: caps.storage, notices: caps.notices };
}

export const provider: ProviderFactory<AzureConfig> = {
  type: 'azure',
  description: 'Azure: Spot and pay-as-you-go VMs that run work over SSH + Docker; or the Azure VM spotfleet runs on (Scheduled Events, optionally acknowledged)',
  configSchema,
  create: createAzureProvider,
  checkPool: (config, pool) => checkAzurePool(config, pool),
};
