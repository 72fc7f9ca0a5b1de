// The `ssh` provider: static GPU hosts reached over SSH (ssh2, one pooled connection per host,
// host keys verified). Nodes come from config plus nvidia-smi; workloads run as containers in the
// host's Docker Engine, through its API over the SSH connection where it answers and through the
// docker CLI on the host otherwise (src/providers/kit/ssh/docker-cli-runtime.ts says why);
// checkpoints are verified on the host and moved node to node (small ones through the controller,
// others with rsync); eviction notices are read from the node's cloud metadata service (aws, gcp,
// azure) through a direct-tcpip channel from the node (curl there as fallback).
import type { Provider, ProviderContext, ProviderFactory } from '../../src/providers/sdk.js';
import { DockerCliRuntime, NodeSet, nodeSetOptions, fleetNodeConfig, NODE_ENTRY_SCHEMA_PROPERTIES, NODE_NAME_SCHEMA, NODE_SSH_SCHEMA_PROPERTIES, NODE_SET_SCHEMA_PROPERTIES, type FleetNodeConfig, type NodeEntryFields, type NodeSshConfig } from '../../src/providers/kit/ssh/index.js';

/**
 * One host: its SSH settings flat beside the node facts. Keys and known_hosts paths are relative to
 * the fleet file's folder; without identityFile, the ssh-agent (SSH_AUTH_SOCK).
 */
export interface SshHostEntry extends NodeEntryFields {
  name: string;
  host: string;
  port?: number;
  user?: string;
  identityFile?: string;
  agent?: string;
  knownHostsFile?: string;
  hostKeyFingerprint?: string;
  acceptUnknownHostKey?: boolean;
}

export interface SshProviderConfig {
  hosts: SshHostEntry[];
  maxConcurrentPerHost?: number;
  sharedStorage?: boolean;
  transfer?: { identityFile?: string; knownHostsFile?: string; bwlimitKBps?: number; precopyBwlimitKBps?: number; attempts?: number };
  acknowledgeNotices?: boolean;
  runtime?: {
    docker?: string;
    networkMode?: string;
    signalMethod?: 'kill' | 'exec';
    checkpointPath?: string;
    /** `auto` (default): the Engine API over SSH where it answers, else the docker CLI; `api` or `cli` to insist. */
    engine?: 'auto' | 'api' | 'cli';
    /** The engine's socket on the hosts; default DOCKER_HOST's (unix://) or /var/run/docker.sock. */
    socketPath?: string;
  };
}

const str = { type: 'string', minLength: 1 };
const configSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'ssh provider config',
  description: 'GPU hosts reached over SSH; workloads run as containers in each host\'s Docker Engine.',
  type: 'object',
  additionalProperties: false,
  required: ['hosts'],
  properties: {
    hosts: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'host'],
        properties: { name: NODE_NAME_SCHEMA, ...NODE_SSH_SCHEMA_PROPERTIES, ...NODE_ENTRY_SCHEMA_PROPERTIES },
      },
    },
    ...NODE_SET_SCHEMA_PROPERTIES,
    runtime: {
      type: 'object',
      additionalProperties: false,
      properties: {
        docker: str,
        networkMode: str,
        signalMethod: { enum: ['kill', 'exec'] },
        checkpointPath: { type: 'string', pattern: '^/' },
        engine: { enum: ['auto', 'api', 'cli'], description: 'How to reach each host\'s Docker Engine: its API over the SSH connection (no shell per call), the docker CLI on the host, or auto (the API where it answers). Default auto.' },
        socketPath: { type: 'string', pattern: '^/', description: 'The Docker Engine socket on the hosts. Default: DOCKER_HOST (unix://) from the host\'s login environment, else /var/run/docker.sock.' },
      },
    },
  },
};

/** Maps the flat host entries to the kit's node configs. */
export function sshNodes(hosts: SshHostEntry[]): FleetNodeConfig[] {
  return hosts.map((h) => {
    const ssh: NodeSshConfig = { host: h.host };
    if (h.port !== undefined) ssh.port = h.port;
    if (h.user !== undefined) ssh.user = h.user;
    if (h.identityFile !== undefined) ssh.identityFile = h.identityFile;
    if (h.agent !== undefined) ssh.agent = h.agent;
    if (h.knownHostsFile !== undefined) ssh.knownHostsFile = h.knownHostsFile;
    if (h.hostKeyFingerprint !== undefined) ssh.hostKeyFingerprint = h.hostKeyFingerprint;
    if (h.acceptUnknownHostKey !== undefined) ssh.acceptUnknownHostKey = h.acceptUnknownHostKey;
    return fleetNodeConfig(h.name, h, { ssh });
  });
}

/** Creates the provider (exported for tests that build one without the registry). */
export function createSshProvider(config: SshProviderConfig, ctx: ProviderContext): Provider {
  const ref: { runtime?: DockerCliRuntime } = {};
  const nodes = new NodeSet(nodeSetOptions(ctx, sshNodes(config.hosts), config, () => (ref.runtime ? ref.runtime.placedGpus() : Promise.resolve(new Map()))));
  const rt: ConstructorParameters<typeof DockerCliRuntime>[0] = {
    provider: ctx.name,
    fleet: ctx.fleet,
    nodes,
    nvidiaNodes: (node) => nodes.has(node) && nodes.node(node).nvidiaRuntime === true,
    env: ctx.env,
    log: ctx.log,
  };
  const r = config.runtime ?? {};
  if (r.docker !== undefined) rt.docker = r.docker;
  if (r.networkMode !== undefined) rt.networkMode = r.networkMode;
  if (r.signalMethod !== undefined) rt.signalMethod = r.signalMethod;
  if (r.checkpointPath !== undefined) rt.defaultCheckpointPath = r.checkpointPath;
  if (r.engine !== undefined) rt.engine = r.engine;
  if (r.socketPath !== undefined) rt.socketPath = r.socketPath;
  const rtm = new DockerCliRuntime(rt);
  ref.runtime = rtm;
  return {
    name: ctx.name,
    type: 'ssh',
    nodes: { list: () => nodes.list(), exec: (node, argv, o) => nodes.exec(node, argv, o?.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}) },
    runtime: {
      list: () => rtm.list(),
      start: (req) => rtm.start(req),
      signal: (n, id, s) => rtm.signal(n, id, s),
      stop: (n, id, g) => rtm.stop(n, id, g),
      logs: (n, id, o) => rtm.logs(n, id, o),
      remove: (n, id) => rtm.remove(n, id),
    },
    storage: { verify: (req) => nodes.verify(req), transfer: (req) => nodes.transfer(req), canTransfer: (a, b) => nodes.canTransfer(a, b) },
    notices: { poll: (n) => nodes.poll(n), acknowledge: (n, x) => nodes.acknowledge(n, x) },
    close: () => nodes.close(),
  };
}

export const provider: ProviderFactory<SshProviderConfig> = {
  type: 'ssh',
  description: 'GPU hosts over SSH: nvidia-smi inventory, containers in each host\'s Docker Engine (API over SSH, or the docker CLI), rsync checkpoints, cloud eviction notices',
  configSchema,
  create: (config, ctx) => createSshProvider(config, ctx),
};
