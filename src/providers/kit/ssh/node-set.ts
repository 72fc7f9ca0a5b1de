// The node side every SSH-reached provider shares: node facts from config, GPU inventory from
// nvidia-smi over SSH, exec, checkpoint verify/transfer (small ones through the controller, others
// by rsync node to node, nothing on shared storage), and eviction notices read from the node's
// metadata service through a direct-tcpip channel (curl on the node where forwarding is refused) by
// the metadata readers. The set is static for the ssh and docker providers' hosts and dynamic
// (add/remove) for the VMs capacity providers buy.
import { isAbsolute, resolve } from 'node:path';
import type { CheckpointInfo, NodeInfo, Notice } from '../../../core/types.js';
import type { ExecResult, ProviderLogger, TransferRequest, TransferResult, VerifyRequest } from '../../sdk.js';
import { AwsNoticeReader, AzureNoticeReader, GcpNoticeReader, AWS_METADATA_URL, AZURE_METADATA_URL, type NoticeReader } from '../metadata/index.js';
import { SshPool, type SshHostConfig } from './pool.js';
import { NVIDIA_SMI_ARGV, parseNvidiaSmi, gpuModelOf, type GpuInfo } from './nvidia-smi.js';
import { verifyCheckpointOnNode, type CheckpointFile } from './checkpoints.js';
import { rsyncPull } from './rsync.js';
import { relaySmallCheckpoint } from './relay.js';
import { createSshMetadataTransport } from './metadata-transport.js';
import { checkpointDir } from './workload-labels.js';
import { DEFAULT_CHECKPOINT_ROOT, type FleetNodeConfig } from './node-entry.js';

export interface NodeSetOptions {
  provider: string;
  nodes: FleetNodeConfig[];
  /** Relative key/known_hosts paths resolve against this (the spec's folder). */
  specDir: string;
  log?: ProviderLogger;
  env?: Readonly<Record<string, string | undefined>>;
  maxConcurrentPerHost?: number;
  execTimeoutMs?: number;
  /** Checkpoints live on storage every node sees: transfer is a no-op. */
  sharedStorage?: boolean;
  transfer?: { identityFile?: string; knownHostsFile?: string; bwlimitKBps?: number; precopyBwlimitKBps?: number; attempts?: number };
  /** Acknowledge notices (Azure StartRequests) when the engine asks. */
  acknowledgeNotices?: boolean;
  /** GPUs spotfleet's own instances hold per node (for gpusFree). */
  placedGpus?: () => Promise<Map<string, number>>;
  /** Runs before an rsync from `from` to `to` (capacity providers make sure the nodes' transfer key is there). */
  beforeTransfer?: (from: string, to: string) => Promise<void>;
}

/** rsync --bwlimit of a pre-copy when nothing is configured, KiB/s (20 MiB/s). */
export const DEFAULT_PRECOPY_BWLIMIT_KBPS = 20_480;

/** The provider-config keys every SSH-backed provider (ssh, docker) passes to its NodeSet. */
export type NodeSetConfig = Pick<NodeSetOptions, 'maxConcurrentPerHost' | 'sharedStorage' | 'transfer' | 'acknowledgeNotices'>;

const str = { type: 'string', minLength: 1 } as const;

/** JSON-schema properties of NodeSetConfig, for the configSchema of each SSH-backed provider. */
export const NODE_SET_SCHEMA_PROPERTIES = {
  sharedStorage: { type: 'boolean' },
  transfer: {
    type: 'object',
    additionalProperties: false,
    properties: {
      identityFile: str,
      knownHostsFile: str,
      bwlimitKBps: { type: 'integer', minimum: 1 },
      precopyBwlimitKBps: { type: 'integer', minimum: 1, description: 'rsync bandwidth limit (KiB/s) of a pre-copy for an early warning, which runs at low priority (nice) so it never slows an eviction. Default: a quarter of bwlimitKBps, else 20480.' },
      attempts: { type: 'integer', minimum: 1, maximum: 10 },
    },
  },
  acknowledgeNotices: { type: 'boolean' },
  maxConcurrentPerHost: { type: 'integer', minimum: 1, maximum: 64 },
} as const;

/** NodeSet options from a provider's context and config: one place for what ssh and docker share. */
export function nodeSetOptions(
  ctx: { name: string; specDir: string; log: ProviderLogger; env: Readonly<Record<string, string | undefined>> },
  nodes: FleetNodeConfig[],
  config: NodeSetConfig,
  placedGpus: () => Promise<Map<string, number>>,
): NodeSetOptions {
  const opts: NodeSetOptions = { provider: ctx.name, nodes, specDir: ctx.specDir, log: ctx.log, env: ctx.env, placedGpus };
  if (config.maxConcurrentPerHost !== undefined) opts.maxConcurrentPerHost = config.maxConcurrentPerHost;
  if (config.sharedStorage !== undefined) opts.sharedStorage = config.sharedStorage;
  if (config.transfer !== undefined) opts.transfer = config.transfer;
  if (config.acknowledgeNotices !== undefined) opts.acknowledgeNotices = config.acknowledgeNotices;
  return opts;
}

export interface NodeInventory {
  node: FleetNodeConfig;
  gpus: GpuInfo[];
}

/** Nodes reached over SSH (or described statically), shared by the ssh and docker providers. */
export class NodeSet {
  readonly pool: SshPool;
  private readonly byName = new Map<string, FleetNodeConfig>();
  private readonly readers = new Map<string, NoticeReader>();
  /** Verdicts of workloads' checkpoint.verify commands (verify is polled while waiting for a checkpoint). */
  private readonly verdicts = new Map<string, boolean>();

  constructor(private readonly o: NodeSetOptions) {
    const poolOpts: ConstructorParameters<typeof SshPool>[0] = { provider: o.provider };
    if (o.maxConcurrentPerHost !== undefined) poolOpts.maxConcurrentPerHost = o.maxConcurrentPerHost;
    if (o.execTimeoutMs !== undefined) poolOpts.execTimeoutMs = o.execTimeoutMs;
    if (o.log !== undefined) poolOpts.log = o.log;
    if (o.env !== undefined) poolOpts.env = o.env;
    this.pool = new SshPool(poolOpts);
    for (const n of [...o.nodes].sort((a, b) => (a.name < b.name ? -1 : 1))) this.add(n);
  }

  /** Adds a node, or replaces what is known about it (a new address, a new host key). */
  add(n: FleetNodeConfig): void {
    const prev = this.byName.get(n.name);
    this.byName.set(n.name, n);
    if (prev && JSON.stringify(prev) !== JSON.stringify(n)) this.readers.delete(n.name);
    if (n.ssh) {
      const h: SshHostConfig = { ...n.ssh, name: n.name };
      if (h.identityFile !== undefined) h.identityFile = this.path(h.identityFile);
      if (h.knownHostsFile !== undefined) h.knownHostsFile = ([] as string[]).concat(h.knownHostsFile).map((f) => this.path(f));
      this.pool.add(h);
    } else if (this.pool.has(n.name)) {
      this.pool.remove(n.name);
    }
  }

  /** Forgets a node (a released lease): its connection is dropped. */
  remove(name: string): void {
    this.byName.delete(name);
    this.readers.delete(name);
    if (this.pool.has(name)) this.pool.remove(name);
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  private path(p: string): string {
    return p.startsWith('~/') || isAbsolute(p) ? p : resolve(this.o.specDir, p);
  }

  names(): string[] {
    return [...this.byName.keys()];
  }

  node(name: string): FleetNodeConfig {
    const n = this.byName.get(name);
    if (!n) throw this.pool.fail(name, `no node "${name}" in this provider's config (it has ${this.names().join(', ') || 'none'})`);
    return n;
  }

  hasSsh(name: string): boolean {
    return this.pool.has(name);
  }

  checkpointRoot(name: string): string {
    return this.node(name).checkpointRoot ?? DEFAULT_CHECKPOINT_ROOT;
  }

  workloadDir(name: string, workload: string): string {
    return checkpointDir(this.checkpointRoot(name), workload);
  }

  exec(name: string, argv: readonly string[], opts: { timeoutMs?: number; stdin?: string | Buffer } = {}): Promise<ExecResult> {
    this.node(name);
    if (!this.hasSsh(name)) return Promise.reject(this.pool.fail(name, 'has no ssh settings, so spotfleet cannot run commands there'));
    return this.pool.exec(name, argv, opts);
  }

  /** GPUs of one node: nvidia-smi over SSH, or the configured count. */
  async inventory(name: string): Promise<GpuInfo[]> {
    const n = this.node(name);
    if (!this.hasSsh(name)) return Array.from({ length: n.gpus ?? 0 }, (_, i) => ({ index: i, name: n.gpuModel ?? 'unknown' }));
    const r = await this.pool.exec(name, NVIDIA_SMI_ARGV, { timeoutMs: 20_000 });
    if (r.code === 127) return [];
    if (r.code !== 0) throw this.pool.fail(name, `nvidia-smi exited ${r.code}: ${r.stderr.trim().slice(0, 300)}`, { retryable: true });
    try {
      return parseNvidiaSmi(r.stdout);
    } catch (e) {
      throw this.pool.fail(name, (e as Error).message);
    }
  }

  /**
   * Every node (or those named), sorted by name. A node that cannot be reached is reported with
   * state `unknown`.
   */
  async list(only?: readonly string[]): Promise<NodeInfo[]> {
    const placed = (await this.o.placedGpus?.().catch(() => undefined)) ?? new Map<string, number>();
    const names = only ? this.names().filter((n) => only.includes(n)) : this.names();
    return Promise.all(
      names.map(async (name) => {
        const n = this.node(name);
        const info: NodeInfo = { id: name, provider: this.o.provider, gpuModel: n.gpuModel ?? 'unknown', gpus: n.gpus ?? 0, capacity: n.capacity ?? 'on-demand', pricePerHour: n.pricePerHour ?? 0, state: 'ready' };
        if (n.zone !== undefined) info.zone = n.zone;
        if (n.labels) info.labels = { ...n.labels };
        const meta: Record<string, string | number | boolean> = { checkpointRoot: this.checkpointRoot(name) };
        if (n.ssh) meta.host = `${n.ssh.user ?? 'root'}@${n.ssh.host}:${n.ssh.port ?? 22}`;
        if (n.cloud) meta.cloud = n.cloud;
        try {
          const gpus = await this.inventory(name);
          if (this.hasSsh(name) || n.gpus === undefined) info.gpus = gpus.length;
          info.gpuModel = n.gpuModel ?? gpuModelOf(gpus) ?? info.gpuModel;
          if (gpus.length > 0) {
            meta.gpuMemoryTotalMiB = gpus.reduce((s, g) => s + (g.memoryTotalMiB ?? 0), 0);
            meta.gpuMemoryFreeMiB = gpus.reduce((s, g) => s + (g.memoryFreeMiB ?? 0), 0);
            const util = gpus.filter((g) => g.utilizationPct !== undefined);
            if (util.length > 0) meta.gpuUtilizationPct = Math.round(util.reduce((s, g) => s + (g.utilizationPct as number), 0) / util.length);
          }
          info.gpusFree = Math.max(0, info.gpus - (placed.get(name) ?? 0));
        } catch (e) {
          info.state = 'unknown';
          meta.error = (e as Error).message;
        }
        info.meta = meta;
        return info;
      }),
    );
  }

  // -- storage ---------------------------------------------------------------------------------

  async verify(req: VerifyRequest, files?: CheckpointFile[]): Promise<CheckpointInfo | null> {
    const name = req.node.id;
    const o: Parameters<typeof verifyCheckpointOnNode>[1] = { node: name, workload: req.workload, dir: this.workloadDir(name, req.workload) };
    if (req.since !== undefined) o.since = req.since;
    if (req.marker !== undefined) o.marker = req.marker;
    if (req.minSizeBytes !== undefined) o.minSizeBytes = req.minSizeBytes;
    if (req.exclude !== undefined) o.exclude = req.exclude;
    if (req.command !== undefined) o.command = req.command;
    if (req.commandTimeoutMs !== undefined) o.commandTimeoutMs = req.commandTimeoutMs;
    o.verdicts = this.verdicts;
    if (files) o.files = files;
    try {
      return await verifyCheckpointOnNode((argv, x) => this.exec(name, argv, x), o);
    } catch (e) {
      if (e instanceof Error && e.name === 'ProviderError') throw e;
      throw this.pool.fail(name, `cannot verify the checkpoint of ${req.workload}: ${(e as Error).message}`, { retryable: true });
    }
  }

  canTransfer(from: NodeInfo, to: NodeInfo): boolean {
    return this.o.sharedStorage === true || from.id === to.id || (this.hasSsh(from.id) && this.hasSsh(to.id));
  }

  async transfer(req: TransferRequest): Promise<TransferResult> {
    const t0 = Date.now();
    const from = req.from.id;
    const to = req.to.id;
    if (this.o.sharedStorage || from === to) {
      const cp = await this.verify({ node: req.to, workload: req.workload });
      if (!cp) throw this.pool.fail(to, `shared storage: no checkpoint of ${req.workload} visible at ${this.workloadDir(to, req.workload)}`);
      return { checkpoint: cp, bytes: 0, durationMs: Date.now() - t0, skipped: true };
    }
    const src = this.node(from);
    if (!src.ssh || !this.hasSsh(to)) throw this.pool.fail(to, `cannot transfer from ${from}: both nodes need ssh settings`);
    const t = this.o.transfer ?? {};
    const o: Parameters<typeof rsyncPull>[0] = {
      pool: this.pool,
      source: from,
      target: to,
      sourceAddress: src.transferAddress ?? src.ssh.host,
      sourcePort: src.ssh.port ?? 22,
      sourceUser: src.ssh.user ?? 'root',
      srcDir: this.workloadDir(from, req.workload),
      dstDir: this.workloadDir(to, req.workload),
      identityFile: t.identityFile ?? '~/.ssh/id_ed25519',
      knownHostsFile: t.knownHostsFile ?? '~/.ssh/spotfleet_known_hosts',
    };
    if (t.bwlimitKBps !== undefined) o.bwlimitKBps = t.bwlimitKBps;
    if (req.lowPriority) {
      // A pre-copy for an early warning: a share of the link, nice on both ends, so it never slows an eviction.
      o.bwlimitKBps = t.precopyBwlimitKBps ?? (t.bwlimitKBps !== undefined ? Math.max(1, Math.floor(t.bwlimitKBps / 4)) : DEFAULT_PRECOPY_BWLIMIT_KBPS);
      o.lowPriority = true;
    }
    if (req.signal) o.signal = req.signal;
    if (t.attempts !== undefined) o.attempts = t.attempts;
    o.onRetry = (i, why) => this.o.log?.warn('rsync run cut off; resuming', { from, to, attempt: i, error: why });
    if (req.onProgress) o.onProgress = req.onProgress;
    // A small checkpoint goes through the controller (no second SSH hop); a bandwidth limit, or a
    // pre-copy (niced, abandonable, under its own limit), asks for rsync.
    const small = t.bwlimitKBps === undefined && !req.lowPriority ? await relaySmallCheckpoint({ pool: this.pool, source: from, target: to, srcDir: o.srcDir, dstDir: o.dstDir }) : undefined;
    if (!small) await this.o.beforeTransfer?.(from, to);
    const r = small ?? (await rsyncPull(o));
    // A relayed copy is two commands: its one figure, at the end.
    if (small) req.onProgress?.({ bytes: small.bytes, totalBytes: small.bytes });
    const cp = await this.verify({ node: req.to, workload: req.workload }, small?.listing);
    if (!cp) throw this.pool.fail(to, `the copied checkpoint of ${req.workload} does not verify on ${to}`);
    return { checkpoint: cp, bytes: r.bytes, sentBytes: r.literalBytes, durationMs: Date.now() - t0, skipped: false };
  }

  // -- notices ---------------------------------------------------------------------------------

  private reader(name: string): NoticeReader | undefined {
    const n = this.node(name);
    if (!n.cloud) return undefined;
    let r = this.readers.get(name);
    if (r) return r;
    if (!this.hasSsh(name)) throw this.pool.fail(name, `reads ${n.cloud} notices on the node over SSH, but has no ssh settings`);
    // A direct-tcpip channel from the node to its metadata address; curl on the node while refused.
    const transport = createSshMetadataTransport(this.pool, name, {
      onFallback: (why) =>
        why === undefined ? this.o.log?.info('metadata tunnel is back; notices no longer read with curl', { node: name }) : this.o.log?.warn('metadata tunnel refused; reading notices with curl on the node', { node: name, error: why }),
    });
    const base = { transport, provider: this.o.provider, ...(this.o.log ? { log: this.o.log } : {}) };
    if (n.cloud === 'aws') r = new AwsNoticeReader({ ...base, baseUrl: n.metadataUrl ?? AWS_METADATA_URL });
    else if (n.cloud === 'gcp') r = new GcpNoticeReader({ ...base, baseUrl: n.metadataUrl ?? 'http://169.254.169.254' });
    else r = new AzureNoticeReader({ ...base, baseUrl: n.metadataUrl ?? AZURE_METADATA_URL, vmName: n.vmName ?? name });
    this.readers.set(name, r);
    return r;
  }

  async poll(node: NodeInfo): Promise<Notice[]> {
    const r = this.reader(node.id);
    return r ? r.poll(node.id) : [];
  }

  async acknowledge(node: NodeInfo, notice: Notice): Promise<void> {
    if (!this.o.acknowledgeNotices) return;
    await this.reader(node.id)?.acknowledge?.(notice);
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}
