// The `local` provider, the embedded default: named virtual nodes declared in the config, each a
// folder on this machine; workloads run there as real detached processes (kit/process-runtime),
// checkpoints are files in the node folder (kit/localfs-storage), and eviction notices are files
// that `spotfleet sim evict` writes (kit/node-notices). Needs nothing installed.
import { execFile } from 'node:child_process';
import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ProviderError } from '../../src/core/errors.js';
import type { CapacityType, NodeInfo } from '../../src/core/types.js';
import type { ExecResult, Provider, ProviderContext, ProviderFactory } from '../../src/providers/sdk.js';
import { assertSafeName } from '../../src/providers/kit/fs-util.js';
import { LocalfsStorage, localfsMeta } from '../../src/providers/kit/localfs-storage.js';
import { NodeNotices } from '../../src/providers/kit/node-notices.js';
import { processRuntimeFor, settlingRuntime } from '../../src/providers/kit/process-runtime.js';

/** One declared node. */
export interface LocalNodeConfig {
  name: string;
  gpuModel: string;
  gpus: number;
  capacity: CapacityType;
  zone?: string;
  /** USD per hour for the whole node. */
  pricePerHour: number;
  labels?: Record<string, string>;
}

export interface LocalConfig {
  nodes: LocalNodeConfig[];
  /** A modelled network between nodes for checkpoint transfers, MB/s; default none (disk speed). */
  linkMBps?: number;
}

const configSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'local provider config',
  description: 'Virtual nodes on this machine; each is a folder, workloads run as local processes.',
  type: 'object',
  additionalProperties: false,
  required: ['nodes'],
  properties: {
    nodes: {
      description: 'The nodes this provider offers.',
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'gpuModel', 'gpus', 'capacity', 'pricePerHour'],
        properties: {
          name: { description: 'Node name, unique in this provider (letters, digits, ".", "_", "-").', type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$' },
          gpuModel: { description: 'GPU model the node pretends to have, e.g. V100, A100.', type: 'string', minLength: 1 },
          gpus: { description: 'Number of GPUs on the node.', type: 'integer', minimum: 1 },
          capacity: { description: 'Capacity type the node is billed as.', enum: ['spot', 'on-demand'] },
          zone: { description: 'Zone label, shown in `spotfleet nodes`.', type: 'string', minLength: 1 },
          pricePerHour: { description: 'USD per hour for the whole node.', type: 'number', minimum: 0 },
          labels: { description: 'Labels placement rules can match.', type: 'object', additionalProperties: { type: 'string' } },
        },
      },
    },
    linkMBps: { description: 'A modelled network between nodes, MB/s: a checkpoint transfer takes the bytes that cross it ÷ this (a pre-copy gets a quarter). Default: no limit (disk speed).', type: 'number', exclusiveMinimum: 0 },
  },
} as const;

/** Creates a `local` provider instance. */
function createLocal(config: LocalConfig, ctx: ProviderContext): Provider {
  const P = ctx.name;
  const byName = new Map<string, LocalNodeConfig>();
  for (const n of config.nodes) {
    assertSafeName(P, 'node', n.name);
    if (byName.has(n.name)) throw new ProviderError(P, `node "${n.name}" is declared twice`);
    byName.set(n.name, n);
  }
  const nodesRoot = join(ctx.dataDir, 'nodes');
  const nodeDir = (node: string): string => join(nodesRoot, node);
  // One listing instead of a mkdir per node: a fleet of thousands of nodes starts fast the second time.
  const present = new Set(listDir(nodesRoot));
  for (const n of byName.keys()) if (!present.has(n)) mkdirSync(join(nodeDir(n), 'checkpoints'), { recursive: true });

  const known = (node: string): LocalNodeConfig => {
    const n = byName.get(node);
    if (!n) throw new ProviderError(P, `no node "${node}" (nodes: ${[...byName.keys()].sort().join(', ')})`);
    return n;
  };

  const runtime = processRuntimeFor(P, ctx, nodesRoot, async (node, gpus, used) => {
    const n = known(node);
    if ((await notices.settle(node)) === 'terminated') throw new ProviderError(P, `node ${node} is terminated (restore it with \`spotfleet sim restore ${node}\`)`);
    if (used + gpus > n.gpus) throw new ProviderError(P, `node ${node} has ${n.gpus - used} of ${n.gpus} GPUs free; the workload needs ${gpus}`);
  });
  const notices = new NodeNotices({ provider: P, source: 'local', nodeDir, now: () => ctx.now(), onDeath: (node) => runtime.killNode(node) });
  const settleAll = async (): Promise<void> => {
    for (const n of byName.keys()) await notices.settle(n);
  };

  const storage = new LocalfsStorage(P, { cwd: ctx.specDir, env: ctx.env, ...(config.linkMBps !== undefined ? { linkBytesPerSec: config.linkMBps * 1e6 } : {}) });

  const listNodes = async (): Promise<NodeInfo[]> => {
    await settleAll();
    const used = new Map<string, number>();
    for (const i of await runtime.list()) if (i.state === 'running') used.set(i.node, (used.get(i.node) ?? 0) + i.gpus);
    return [...byName.values()]
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      .map((n) => {
        const cond = notices.terminated(n.name) ? 'terminated' : notices.notice(n.name) ? 'draining' : 'ready';
        const info: NodeInfo = {
          id: n.name,
          provider: P,
          gpuModel: n.gpuModel,
          gpus: n.gpus,
          gpusFree: cond === 'terminated' ? 0 : Math.max(0, n.gpus - (used.get(n.name) ?? 0)),
          capacity: n.capacity,
          pricePerHour: n.pricePerHour,
          state: cond,
          meta: localfsMeta(nodeDir(n.name)),
        };
        if (n.zone !== undefined) info.zone = n.zone;
        if (n.labels) info.labels = { ...n.labels };
        return info;
      });
  };

  return {
    name: P,
    type: 'local',
    nodes: {
      list: listNodes,
      exec: (node, argv, opts = {}) => {
        known(node);
        return new Promise<ExecResult>((resolvePromise, reject) => {
          if (argv.length === 0) {
            reject(new ProviderError(P, 'exec needs a command'));
            return;
          }
          execFile(argv[0] as string, argv.slice(1), { cwd: nodeDir(node), timeout: opts.timeoutMs ?? 60_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
            const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
            resolvePromise({ code, stdout, stderr });
          });
        });
      },
    },
    runtime: settlingRuntime(runtime, { all: settleAll, node: (node) => notices.settle(node) }),
    notices: {
      poll: async (node) => {
        known(node.id);
        return notices.poll(node.id);
      },
    },
    simulation: {
      evict: async (node, opts) => {
        known(node.id);
        if ((await notices.settle(node.id)) === 'terminated') throw new ProviderError(P, `node ${node.id} is already terminated`);
        return notices.post(node.id, { inMs: opts.inMs, ...(opts.kind ? { kind: opts.kind } : {}) });
      },
      restore: async (node) => {
        known(node.id);
        await Promise.resolve();
        notices.restore(node.id);
      },
    },
    storage,
    close: async () => {},
  };
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** The `local` provider factory. */
export const provider: ProviderFactory<LocalConfig> = {
  type: 'local',
  description: 'Virtual nodes on this machine: folders, local processes, file-based eviction notices.',
  configSchema,
  create: createLocal,
};
