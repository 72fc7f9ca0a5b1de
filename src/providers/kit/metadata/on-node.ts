// Capabilities for a provider that runs ON the node it reports (spotfleet on a GCE or Azure VM):
// `nodes` lists that one node from config, filling its name and zone from the metadata identity
// when the config leaves them out, and `notices` reads the node's own metadata service directly.
import { ProviderError } from '../../../core/errors.js';
import type { CapacityType, NodeInfo, Notice } from '../../../core/types.js';
import type { NodesCapability, NoticesCapability, ProviderContext } from '../../sdk.js';
import type { NoticeReader } from './common.js';

/** Config keys every on-node provider (gcp, azure) shares. */
export interface OnNodeConfig {
  /** Base URL of the metadata service; default the cloud's documented address. */
  metadataUrl?: string;
  /** Node name; default the VM name from the metadata identity. */
  node?: string;
  gpuModel: string;
  gpus: number;
  /** Default `spot`. */
  capacity?: CapacityType;
  /** Default the zone from the metadata identity. */
  zone?: string;
  /** USD per hour for the whole node. */
  pricePerHour: number;
  /** Per-request limit in ms. */
  timeoutMs?: number;
  labels?: Record<string, string>;
}

/** JSON Schema properties for OnNodeConfig, for a provider's configSchema. */
export const onNodeConfigProperties = {
  metadataUrl: { description: 'Base URL of the metadata service (scheme and host). Default: the cloud\'s documented address.', type: 'string', pattern: '^https?://[^\\s]+$' },
  node: { description: 'Node name as spotfleet shows it. Default: the VM name from the metadata service.', type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$' },
  gpuModel: { description: 'GPU model of this VM, e.g. A100.', type: 'string', minLength: 1 },
  gpus: { description: 'Number of GPUs on this VM.', type: 'integer', minimum: 1 },
  capacity: { description: 'How the VM is billed. Default spot.', enum: ['spot', 'on-demand'] },
  zone: { description: 'Zone. Default: read from the metadata service.', type: 'string', minLength: 1 },
  pricePerHour: { description: 'USD per hour for the whole VM.', type: 'number', minimum: 0 },
  timeoutMs: { description: 'Limit per metadata request, in ms.', type: 'integer', minimum: 1 },
  labels: { description: 'Labels placement rules can match.', type: 'object', additionalProperties: { type: 'string' } },
} as const;

export interface OnNodeOptions {
  cloud: 'gcp' | 'azure';
  config: OnNodeConfig;
  ctx: ProviderContext;
  reader: NoticeReader & { identity(node: string, item: string): Promise<string> };
  /** Identity item holding the VM name and the zone. */
  nameItem: string;
  zoneItem: string;
  /** Turns the zone item's value into a zone name (GCE: the part after the last `/`). */
  zoneOf?: (value: string) => string;
  /** Expose `acknowledge` (Azure StartRequests). */
  acknowledge?: boolean;
  /** Expose `watch` (GCE long-poll). */
  watch?: boolean;
}

/** Builds `nodes` and `notices` for the node this process runs on. */
export function createOnNodeCapabilities(o: OnNodeOptions): { nodes: NodesCapability; notices: NoticesCapability } {
  const { config, ctx, reader } = o;
  let name: string | undefined = config.node;
  let zone: string | undefined = config.zone;
  let zoneRead = config.zone !== undefined;
  const probeId = config.node ?? ctx.name;

  const resolveName = async (): Promise<string> => {
    if (name === undefined) {
      const v = await reader.identity(probeId, o.nameItem);
      if (v === '') throw new ProviderError(ctx.name, `the ${o.cloud} metadata service reports an empty VM name; set \`node\` in the config`);
      name = v;
    }
    return name;
  };

  const nodes: NodesCapability = {
    async list(): Promise<NodeInfo[]> {
      const id = await resolveName();
      if (!zoneRead) {
        // A VM outside availability zones has an empty zone item: then the node has no zone.
        const raw = await reader.identity(id, o.zoneItem);
        const z = o.zoneOf ? o.zoneOf(raw) : raw;
        zone = z === '' ? undefined : z;
        zoneRead = true;
      }
      const n: NodeInfo = {
        id,
        provider: ctx.name,
        gpuModel: config.gpuModel,
        gpus: config.gpus,
        capacity: config.capacity ?? 'spot',
        pricePerHour: config.pricePerHour,
        state: 'ready',
        meta: { cloud: o.cloud, metadata: 'direct' },
      };
      if (zone !== undefined) n.zone = zone;
      if (config.labels) n.labels = { ...config.labels };
      return [n];
    },
  };

  const mine = async (node: NodeInfo): Promise<boolean> => node.id === (await resolveName());

  const notices: NoticesCapability = {
    async poll(node) {
      // This provider sees only its own VM's metadata; any other node has no notices from here.
      if (!(await mine(node))) return [];
      return reader.poll(node.id);
    },
  };
  if (o.watch && reader.watch) {
    const w = reader.watch.bind(reader);
    notices.watch = async (node, onNotice, signal) => {
      if (!(await mine(node))) throw new ProviderError(ctx.name, `node "${node.id}" is not the VM this provider runs on ("${await resolveName()}")`);
      await w(node.id, onNotice, signal);
    };
  }
  if (o.acknowledge && reader.acknowledge) {
    const ack = reader.acknowledge.bind(reader);
    notices.acknowledge = async (_node: NodeInfo, notice: Notice) => ack(notice);
  }
  return { nodes, notices };
}
