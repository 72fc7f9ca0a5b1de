// A node entry in an SSH-backed provider's config (the ssh provider's `hosts`, the docker
// provider's `nodes`): the facts both take beside how the node is reached, their JSON-schema
// fragment, and the copy into the NodeSet's FleetNodeConfig. One definition, so a new node fact is
// added once and both providers (and the NodeSet) take it.
import type { CapacityType } from '../../../core/types.js';
import type { MetadataCloud } from '../metadata/index.js';
import type { SshHostConfig } from './pool.js';

export const DEFAULT_CHECKPOINT_ROOT = '/srv/spotfleet/checkpoints';

/** The facts of a node, whichever provider lists it. */
export interface NodeEntryFields {
  capacity?: CapacityType;
  zone?: string;
  /** USD per hour for the whole node. */
  pricePerHour?: number;
  /** Overrides the model nvidia-smi reports (or gives it when there is no SSH). */
  gpuModel?: string;
  checkpointRoot?: string;
  cloud?: MetadataCloud;
  /** Metadata base URL as the NODE reaches it; default the cloud's (169.254.169.254...). */
  metadataUrl?: string;
  /** Azure VM name (Resources filter) when it differs from the node name. */
  vmName?: string;
  /** The address other nodes use to reach this one for transfers; default ssh.host. */
  transferAddress?: string;
  /** The node's Docker Engine has the NVIDIA container runtime: containers get GPU device requests. */
  nvidiaRuntime?: boolean;
  labels?: Record<string, string>;
}

/** SSH settings of a node (flat in an ssh host entry, under `ssh` in a docker node entry). */
export type NodeSshConfig = Omit<SshHostConfig, 'name' | 'privateKey'>;

/** A node as the NodeSet holds it. */
export interface FleetNodeConfig extends NodeEntryFields {
  name: string;
  /** GPU count when there is no SSH to ask nvidia-smi. */
  gpus?: number;
  ssh?: NodeSshConfig;
}

const NODE_ENTRY_KEYS = ['capacity', 'zone', 'pricePerHour', 'gpuModel', 'checkpointRoot', 'cloud', 'metadataUrl', 'vmName', 'transferAddress', 'nvidiaRuntime', 'labels'] as const satisfies readonly (keyof NodeEntryFields)[];

const str = { type: 'string', minLength: 1 };

/** JSON schema of a node's name (it is part of addresses and of file names). */
export const NODE_NAME_SCHEMA = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$' } as const;

/** JSON-schema properties of a node's facts (NodeEntryFields), for a provider's configSchema. */
export const NODE_ENTRY_SCHEMA_PROPERTIES = {
  capacity: { enum: ['spot', 'on-demand'] },
  zone: str,
  pricePerHour: { type: 'number', minimum: 0 },
  gpuModel: str,
  checkpointRoot: { type: 'string', pattern: '^/', default: DEFAULT_CHECKPOINT_ROOT },
  cloud: { enum: ['aws', 'gcp', 'azure'] },
  metadataUrl: { type: 'string', pattern: '^https?://' },
  vmName: str,
  transferAddress: str,
  nvidiaRuntime: { type: 'boolean' },
  labels: { type: 'object', additionalProperties: { type: 'string' } },
} as const;

/** JSON-schema properties of a node's SSH settings (required: host). */
export const NODE_SSH_SCHEMA_PROPERTIES = {
  host: str,
  port: { type: 'integer', minimum: 1, maximum: 65535 },
  user: str,
  identityFile: str,
  agent: str,
  knownHostsFile: str,
  hostKeyFingerprint: { type: 'string', pattern: '^(SHA256:)?[A-Za-z0-9+/]{43}=?$' },
  acceptUnknownHostKey: { type: 'boolean', description: 'Trust a host key on first use and record it. Default false: unknown keys are refused.' },
} as const;

/** The NodeSet's config of a node: its name, the facts the entry gives, and how it is reached. */
export function fleetNodeConfig(name: string, entry: NodeEntryFields, reach: { ssh?: NodeSshConfig; gpus?: number } = {}): FleetNodeConfig {
  const n: FleetNodeConfig = { name };
  if (reach.ssh !== undefined) n.ssh = reach.ssh;
  if (reach.gpus !== undefined) n.gpus = reach.gpus;
  const facts: NodeEntryFields = n;
  const copy = <K extends keyof NodeEntryFields>(k: K): void => {
    const v = entry[k];
    if (v !== undefined) facts[k] = v;
  };
  for (const k of NODE_ENTRY_KEYS) copy(k);
  return n;
}
