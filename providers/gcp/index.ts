// The `gcp` provider for spotfleet running ON a GCE VM: `nodes` reports that VM (from config, name
// and zone from the metadata server when left out) and `notices` reads its own metadata server
// directly: `instance/preempted` and `instance/maintenance-event`, polled or long-polled with
// `wait_for_change` and ETags. Reading notices of other VMs over SSH is the ssh provider's job.
import type { Provider, ProviderContext, ProviderFactory } from '../../src/providers/sdk.js';
import { createHttpTransport, createOnNodeCapabilities, GCP_METADATA_URL, GcpNoticeReader, onNodeConfigProperties, type OnNodeConfig } from '../../src/providers/kit/metadata/index.js';

export type GcpConfig = OnNodeConfig;

const configSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'gcp provider config',
  description: 'The GCE VM spotfleet runs on; eviction notices from its metadata server.',
  type: 'object',
  additionalProperties: false,
  required: ['gpuModel', 'gpus', 'pricePerHour'],
  properties: { ...onNodeConfigProperties },
} as const;

/** Creates a `gcp` provider instance. */
function createGcp(config: GcpConfig, ctx: ProviderContext): Provider {
  // GCE_METADATA_HOST is Google's own override for testing (host[:port], no scheme).
  const envHost = ctx.env.GCE_METADATA_HOST;
  const baseUrl = config.metadataUrl ?? (envHost ? `http://${envHost}` : GCP_METADATA_URL);
  const transport = createHttpTransport();
  const reader = new GcpNoticeReader({ transport, baseUrl, provider: ctx.name, timeoutMs: config.timeoutMs ?? 2000, now: () => ctx.now(), log: ctx.log });
  const caps = createOnNodeCapabilities({ cloud: 'gcp', config, ctx, reader, nameItem: 'instance/name', zoneItem: 'instance/zone', zoneOf: (v) => v.slice(v.lastIndexOf('/') + 1), watch: true });
  return {
    name: ctx.name,
    type: 'gcp',
    nodes: caps.nodes,
    notices: caps.notices,
    close: async () => {
      await transport.close?.();
    },
  };
}

export const provider: ProviderFactory<GcpConfig> = {
  type: 'gcp',
  description: 'The GCE VM spotfleet runs on: preemption and host-maintenance notices from its metadata server.',
  configSchema,
  create: createGcp,
};
