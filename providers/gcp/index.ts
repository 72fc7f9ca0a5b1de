// The `gcp` provider for spotfleet running ON a GCE VM: `nodes` reports that VM (from config, name
// and zone from the metadata server when left out) and `notices` reads its own metadata server
// directly: `instance/preempted` and `instance/maintenance-event`, polled or long-polled with
// `wait_for_change` and ETags. Reading notices of other VMs over SSH is the ssh provider's job.
import type { Provider, ProviderContext, ProviderFactory } from '../../src/providers/sdk.js';
import { createHttpTransport, createOnNodeCapabilities, GCP_METADATA_URL, GcpNoticeReader, onNodeConfigProperties, type OnNodeConfig } from '../../src/providers/kit/metadata/index.js';
import { ProviderError } from '../../src/core/errors.js';
import { createPreemptionOperations, preemptionOperationsSchema, type PreemptionOperationsConfig } from './preemption-operations.js';

export type GcpConfig = OnNodeConfig & { preemptionOperations?: PreemptionOperationsConfig };

const configSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'gcp provider config',
  description: 'The GCE VM spotfleet runs on; eviction notices from its metadata server.',
  type: 'object',
  additionalProperties: false,
  required: ['gpuModel', 'gpus', 'pricePerHour'],
  properties: { ...onNodeConfigProperties, preemptionOperations: preemptionOperationsSchema },
} as const;

/** Creates a `gcp` provider instance. */
function createGcp(config: GcpConfig, ctx: ProviderContext): Provider {
  // GCE_METADATA_HOST is Google's own override for testing (host[:port], no scheme).
  const envHost = ctx.env.GCE_METADATA_HOST;
  const baseUrl = config.metadataUrl ?? (envHost ? `http://${envHost}` : GCP_METADATA_URL);
  const transport = createHttpTransport();
  const reader = new GcpNoticeReader({ transport, baseUrl, provider: ctx.name, timeoutMs: config.timeoutMs ?? 2000, now: () => ctx.now(), log: ctx.log });
  const caps = createOnNodeCapabilities({ cloud: 'gcp', config, ctx, reader, nameItem: 'instance/name', zoneItem: 'instance/zone', zoneOf: (v) => v.slice(v.lastIndexOf('/') + 1), watch: true });
  // The fleet-level source reads the Compute API with an OAuth token: GOOGLE_OAUTH_ACCESS_TOKEN
  // (`gcloud auth print-access-token`), or the VM service account's from the metadata server.
  let cached: { token: string; until: number } | undefined;
  const token = async (): Promise<string> => {
    const env = ctx.env.GOOGLE_OAUTH_ACCESS_TOKEN;
    if (env !== undefined && env !== '') return env;
    if (cached && cached.until > ctx.now()) return cached.token;
    const res = await fetch(`${baseUrl}/computeMetadata/v1/instance/service-accounts/default/token`, { headers: { 'Metadata-Flavor': 'Google' }, signal: AbortSignal.timeout(config.timeoutMs ?? 2000) });
    const body = (await res.json().catch(() => ({}))) as { access_token?: unknown; expires_in?: unknown };
    if (res.status !== 200 || typeof body.access_token !== 'string') throw new ProviderError(ctx.name, `no Compute API token: set GOOGLE_OAUTH_ACCESS_TOKEN, or run on a VM with a service account (metadata answered HTTP ${res.status})`);
    cached = { token: body.access_token, until: ctx.now() + Math.max(0, (typeof body.expires_in === 'number' ? body.expires_in : 300) - 60) * 1000 };
    return cached.token;
  };
  const notices = config.preemptionOperations ? { ...caps.notices, fleet: createPreemptionOperations(config.preemptionOperations, ctx, token) } : caps.notices;
  return {
    name: ctx.name,
    type: 'gcp',
    nodes: caps.nodes,
    notices,
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
