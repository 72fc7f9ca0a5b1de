// The `gcp` provider. With `machineTypes` (and `project`, `zones`): Compute Engine capacity
// (providers/gcp/gce.ts: Spot and standard VMs over the REST API) whose VMs become SSH + Docker
// nodes spotfleet runs work on (src/providers/kit/capacity; their notices are read on the node from
// the GCE metadata server). Without: spotfleet running ON a GCE VM, where `nodes` reports that VM
// (from config, name and zone from the metadata server when left out) and `notices` reads its own
// metadata server directly (`instance/preempted`, `instance/maintenance-event`, long-polled).
import type { Provider, ProviderContext, ProviderFactory } from '../../src/providers/sdk.js';
import { createHttpTransport, createOnNodeCapabilities, GCP_METADATA_URL, GcpNoticeReader, onNodeConfigProperties, type OnNodeConfig } from '../../src/providers/kit/metadata/index.js';
import { ProviderError } from '../../src/core/errors.js';
import { LeasedNodes } from '../../src/providers/kit/capacity/index.js';
import { checkGcePool, gceConfigProperties, gceConfigured, type GceCapacityConfig } from './gce-config.js';
import { createPreemptionOperations, preemptionOperationsSchema, type PreemptionOperationsConfig } from './preemption-operations.js';

/** `preemptionOperations` (the fleet-level notice source) hears the VMs spotfleet bought, or runs on. */
export type GcpConfig = Partial<OnNodeConfig> & GceCapacityConfig & { preemptionOperations?: PreemptionOperationsConfig };

const configSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'gcp provider config',
  description: 'Compute Engine Spot and standard VMs that run work over SSH + Docker (with machineTypes), or the GCE VM spotfleet runs on and its eviction notices (without).',
  type: 'object',
  additionalProperties: false,
  properties: { ...onNodeConfigProperties, ...gceConfigProperties, preemptionOperations: preemptionOperationsSchema },
  if: { required: ['machineTypes'] },
  then: { required: ['project', 'zones'] },
  else: { required: ['gpuModel', 'gpus', 'pricePerHour'] },
} as const;

/** The VM spotfleet runs on: notices from its own metadata server. */
function createOnNode(config: OnNodeConfig & { preemptionOperations?: PreemptionOperationsConfig }, ctx: ProviderContext): Provider {
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

/** Creates a `gcp` provider instance; exported for tests that pass a context directly. */
export async function createGcpProvider(config: GcpConfig, ctx: ProviderContext): Promise<Provider> {
  if (!gceConfigured(config)) return createOnNode(config as OnNodeConfig & { preemptionOperations?: PreemptionOperationsConfig }, ctx);
  // The Compute client library takes seconds to load: only fleets that buy GCE VMs pay for it.
  const { createGceDriver, googleAuth } = await import('./gce.js');
  const leased = new LeasedNodes({ ctx, driver: createGceDriver(config, ctx), ...(config.capacityMissTtlSeconds !== undefined ? { capacityMissTtlMs: config.capacityMissTtlSeconds * 1000 } : {}) });
  const caps = leased.capabilities();
  const p: Provider = { name: ctx.name, type: 'gcp', capacity: caps.capacity, nodes: caps.nodes, close: () => leased.close() };
  if (!(ctx.pools ?? []).some((x) => x.node !== undefined)) return p;
  // The bought VMs' preemptions from the project's operations, one listing for all of them, beside
  // each VM's own metadata server read over SSH (which stays: it also tells maintenance events).
  const notices = config.preemptionOperations
    ? { ...caps.notices, fleet: createPreemptionOperations({ ...config.preemptionOperations, ...(config.preemptionOperations.endpoint === undefined && config.endpoint !== undefined ? { endpoint: config.endpoint } : {}) }, ctx, googleAuth(ctx).bearer) }
    : caps.notices;
  return { ...p, runtime: caps.runtime, storage: caps.storage, notices };
}

export const provider: ProviderFactory<GcpConfig> = {
  type: 'gcp',
  description: 'GCP: Compute Engine Spot and standard VMs that run work over SSH + Docker; or the GCE VM spotfleet runs on (preemption and maintenance notices)',
  configSchema,
  create: createGcpProvider,
  checkPool: (config, pool) => checkGcePool(config, pool),
};
