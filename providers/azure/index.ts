// The `azure` provider for spotfleet running ON an Azure VM: `nodes` reports that VM (from config,
// name and zone from IMDS when left out) and `notices` reads its own Scheduled Events directly,
// keeping only events that name this VM, and approves them with StartRequests when `acknowledge`
// is set (only one leader per availability set should do that).
import type { Provider, ProviderContext, ProviderFactory } from '../../src/providers/sdk.js';
import { AZURE_METADATA_URL, AzureNoticeReader, createHttpTransport, createOnNodeCapabilities, onNodeConfigProperties, type OnNodeConfig } from '../../src/providers/kit/metadata/index.js';

export interface AzureConfig extends OnNodeConfig {
  /** Approve events with StartRequests once spotfleet has handled them. Default false. */
  acknowledge?: boolean;
  /** The VM name as Scheduled Events lists it in Resources; default the compute name from IMDS. */
  vmName?: string;
}

const configSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'azure provider config',
  description: 'The Azure VM spotfleet runs on; eviction notices from its Scheduled Events.',
  type: 'object',
  additionalProperties: false,
  required: ['gpuModel', 'gpus', 'pricePerHour'],
  properties: {
    ...onNodeConfigProperties,
    acknowledge: { description: 'Approve handled events with StartRequests so they start at once (one leader per availability set). Default false.', type: 'boolean' },
    vmName: { description: 'This VM\'s name as Scheduled Events lists it in Resources. Default: the compute name from IMDS.', type: 'string', minLength: 1 },
  },
} as const;

/** Creates an `azure` provider instance. */
function createAzure(config: AzureConfig, ctx: ProviderContext): Provider {
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

export const provider: ProviderFactory<AzureConfig> = {
  type: 'azure',
  description: 'The Azure VM spotfleet runs on: Scheduled Events (Preempt, Terminate, Reboot, Redeploy, Freeze), optionally acknowledged.',
  configSchema,
  create: createAzure,
};
