// The `docker` provider: workloads as containers through the Docker Engine API (dockerode), one
// engine per node over a unix socket, TCP with TLS, or SSH (engine.ts). Node facts, exec,
// checkpoint storage and eviction notices go through the SSH toolkit when a node has `ssh`
// settings; without them the node is described by its config alone.
import { isAbsolute, resolve } from 'node:path';
import type Docker from 'dockerode';
import { nodeAddress } from '../../src/core/address.js';
import { ProviderError } from '../../src/core/errors.js';
import type { WorkloadInstance } from '../../src/core/types.js';
import type { Provider, ProviderContext, ProviderFactory, RuntimeCapability, StartRequest } from '../../src/providers/sdk.js';
import { LABEL, NodeSet, nodeSetOptions, fleetNodeConfig, NODE_ENTRY_SCHEMA_PROPERTIES, NODE_NAME_SCHEMA, NODE_SSH_SCHEMA_PROPERTIES, NODE_SET_SCHEMA_PROPERTIES, containerStartSpec, containerName, instanceFromContainer, type FleetNodeConfig, type NodeEntryFields, type NodeSshConfig } from '../../src/providers/kit/ssh/index.js';
import { demuxLogs, engineFor, pullImage, type EngineConfig, type PullEvent } from './engine.js';
import { catchesIn, needsNoHandler, signalName, signalNotReady, waitUntilReady, SIGNAL_READY_TIMEOUT_MS } from '../../src/providers/kit/signal-ready.js';
import { readFileSync } from 'node:fs';

export interface DockerNodeEntry extends NodeEntryFields {
  name: string;
  engine: EngineConfig;
  ssh?: NodeSshConfig;
  /** GPU count when the node has no ssh settings (else nvidia-smi decides). */
  gpus?: number;
}

export interface DockerProviderConfig {
  nodes: DockerNodeEntry[];
  /** Default `none`. */
  networkMode?: string;
  /** `kill` (Engine kill with the signal) or `exec` (`kill -SIG 1` in the container). Default kill. */
  signalMethod?: 'kill' | 'exec';
  /** `missing` (default), `always` or `never`. */
  imagePull?: 'missing' | 'always' | 'never';
  checkpointPath?: string;
  sharedStorage?: boolean;
  transfer?: { identityFile?: string; knownHostsFile?: string; bwlimitKBps?: number; precopyBwlimitKBps?: number; attempts?: number };
  acknowledgeNotices?: boolean;
  maxConcurrentPerHost?: number;
  /** Per-call Engine API limit in ms. Default 60 s. */
  timeoutMs?: number;
}

const str = { type: 'string', minLength: 1 };
const configSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'docker provider config',
  description: 'Docker engines, one per node, over a unix socket, TCP+TLS or SSH.',
  type: 'object',
  additionalProperties: false,
  required: ['nodes'],
  properties: {
    nodes: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'engine'],
        properties: {
          name: NODE_NAME_SCHEMA,
          engine: {
            oneOf: [
              { type: 'object', additionalProperties: false, required: ['socketPath'], properties: { socketPath: str } },
              {
                type: 'object',
                additionalProperties: false,
                required: ['host'],
                properties: { host: str, port: { type: 'integer', minimum: 1, maximum: 65535 }, tls: { type: 'object', additionalProperties: false, required: ['ca', 'cert', 'key'], properties: { ca: str, cert: str, key: str } } },
              },
              { type: 'object', additionalProperties: false, required: ['ssh'], properties: { ssh: { const: true }, socketPath: str } },
            ],
          },
          ssh: { type: 'object', additionalProperties: false, required: ['host'], properties: NODE_SSH_SCHEMA_PROPERTIES },
          ...NODE_ENTRY_SCHEMA_PROPERTIES,
          gpus: { type: 'integer', minimum: 0 },
        },
      },
    },
    networkMode: str,
    signalMethod: { enum: ['kill', 'exec'] },
    imagePull: { enum: ['missing', 'always', 'never'] },
    checkpointPath: { type: 'string', pattern: '^/' },
    ...NODE_SET_SCHEMA_PROPERTIES,
    timeoutMs: { type: 'integer', minimum: 100 },
  },
};


interface HttpishError {
  statusCode?: number;
  message: string;
}

function statusOf(e: unknown): number | undefined {
  return (e as HttpishError | undefined)?.statusCode;
}

/** The Engine API as a RuntimeCapability. */
export class DockerApiRuntime implements RuntimeCapability {
  private readonly engines = new Map<string, Docker>();

  constructor(
    private readonly provider: string,
    private readonly fleet: string,
    private readonly cfg: DockerProviderConfig,
    private readonly nodes: NodeSet,
    specDir: string,
    private readonly log: ProviderContext['log'],
    /** spotfleet's environment: the source of a request's `passEnv` values, nothing else. */
    private readonly env: ProviderContext['env'] = {},
    private readonly signalReadyTimeoutMs = SIGNAL_READY_TIMEOUT_MS,
  ) {
    const resolvePath = (p: string) => (isAbsolute(p) ? p : resolve(specDir, p));
    for (const n of cfg.nodes) this.engines.set(n.name, engineFor(n.engine, { pool: nodes.pool, node: n.name, resolvePath }));
  }

  private fail(node: string, message: string, opts: { retryable?: boolean; cause?: unknown } = {}): ProviderError {
    return new ProviderError(this.provider, `node "${node}" (docker engine): ${message}`, { address: nodeAddress(this.provider, node), ...opts });
  }

  engine(node: string): Docker {
    const e = this.engines.get(node);
    if (!e) throw this.fail(node, `no node "${node}" in this provider's config`);
    return e;
  }

  /** Runs one Engine call with a time limit; failures become ProviderErrors naming the node. */
  private async call<T>(node: string, what: string, fn: (d: Docker) => Promise<T>): Promise<T> {
    const limit = this.cfg.timeoutMs ?? 60_000;
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        fn(this.engine(node)),
        new Promise<never>((_, rej) => {
          timer = setTimeout(() => rej(this.fail(node, `${what}: no answer within ${limit} ms`, { retryable: true })), limit);
        }),
      ]);
    } catch (e) {
      if (e instanceof ProviderError) throw e;
      const code = statusOf(e);
      const msg = (e as Error).message?.replace(/\s+/g, ' ').trim() ?? String(e);
      throw this.fail(node, `${what} failed${code ? ` (HTTP ${code})` : ''}: ${msg}`, { retryable: code === undefined || code >= 500, cause: e });
    } finally {
      clearTimeout(timer);
    }
  }

  private toInstance(node: string, c: Docker.ContainerInfo): WorkloadInstance {
    const exit = /Exited \((-?\d+)\)/.exec(c.Status ?? '');
    const o: Parameters<typeof instanceFromContainer>[0] = {
      id: c.Id,
      labels: c.Labels ?? {},
      running: c.State === 'running',
      startedAt: new Date((c.Created ?? 0) * 1000).toISOString(),
      provider: this.provider,
      node,
    };
    if (exit) o.exitCode = Number(exit[1]);
    return instanceFromContainer(o);
  }

  private async find(node: string, labels: string[]): Promise<Docker.ContainerInfo[]> {
    return this.call(node, 'list containers', (d) => d.listContainers({ all: true, filters: { label: labels } }));
  }

  async listOn(node: string): Promise<WorkloadInstance[]> {
    return (await this.find(node, [`${LABEL.fleet}=${this.fleet}`])).map((c) => this.toInstance(node, c));
  }

  async list(): Promise<WorkloadInstance[]> {
    const all = (await Promise.all(this.cfg.nodes.map((n) => this.listOn(n.name)))).flat();
    return all.sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : a.workload < b.workload ? -1 : a.workload > b.workload ? 1 : a.id < b.id ? -1 : 1));
  }

  async placedGpus(): Promise<Map<string, number>> {
    const m = new Map<string, number>();
    for (const i of await this.list()) if (i.state === 'running') m.set(i.node, (m.get(i.node) ?? 0) + i.gpus);
    return m;
  }

  /** Makes sure the image is on the node's engine, per `imagePull`. */
  async ensureImage(node: string, image: string, onProgress?: (e: PullEvent) => void): Promise<void> {
    const policy = this.cfg.imagePull ?? 'missing';
    if (policy === 'never') return;
    if (policy === 'missing') {
      const have = await this.engine(node)
        .getImage(image)
        .inspect()
        .then(
          () => true,
          (e: unknown) => {
            if (statusOf(e) === 404) return false;
            throw e instanceof Error ? e : new Error(String(e));
          },
        );
      if (have) return;
    }
    let last = 0;
    await this.call(node, `pull ${image}`, (d) =>
      pullImage(d, image, (e) => {
        onProgress?.(e);
        if (Date.now() - last > 2000 && e.status) {
          last = Date.now();
          this.log.info('image pull', { node, image, status: e.status, ...(e.progress ? { progress: e.progress } : {}) });
        }
      }),
    );
  }

  async start(req: StartRequest): Promise<WorkloadInstance> {
    const node = req.node;
    this.engine(node);
    if (!req.image) throw this.fail(node, `workload ${req.workload}: the docker provider needs an image`);
    const same = (await this.find(node, [`${LABEL.idempotencyKey}=${req.idempotencyKey}`]))[0];
    if (same) return this.toInstance(node, same);
    let prepared: ReturnType<typeof containerStartSpec>;
    try {
      prepared = containerStartSpec(req, node, this.cfg.checkpointPath, this.env);
    } catch (e) {
      throw this.fail(node, `workload ${req.workload}: ${(e as Error).message}`);
    }
    const { labels, env, checkpointPath: ckPath } = prepared;
    const hostCfg: Docker.HostConfig = { NetworkMode: this.cfg.networkMode ?? 'none', Binds: [`${this.nodes.workloadDir(node, req.workload)}:${ckPath}`] };
    if (req.gpus > 0) {
      const inv = await this.nodes.inventory(node);
      const running = (await this.listOn(node)).filter((i) => i.state === 'running');
      const free = inv.length - running.reduce((s, i) => s + i.gpus, 0);
      if (free < req.gpus) throw this.fail(node, `no free GPU for ${req.workload}: it needs ${req.gpus}, ${Math.max(0, free)} of ${inv.length} free`);
      if (this.cfg.nodes.find((n) => n.name === node)?.nvidiaRuntime) {
        const taken = new Set(running.flatMap((i) => (i.labels[LABEL.gpuDevices] ?? '').split(',').filter(Boolean)));
        const devices = inv.map((g) => String(g.index)).filter((i) => !taken.has(i)).slice(0, req.gpus);
        hostCfg.DeviceRequests = [{ Driver: 'nvidia', DeviceIDs: devices, Capabilities: [['gpu']] }];
        labels[LABEL.gpuDevices] = devices.join(',');
      }
    }
    await this.ensureImage(node, req.image);
    const name = containerName(req.fleet, req.workload, req.idempotencyKey);
    const spec: Docker.ContainerCreateOptions = {
      name,
      Image: req.image,
      Labels: labels,
      Env: Object.keys(env).sort().map((k) => `${k}=${env[k] as string}`),
      HostConfig: hostCfg,
    };
    if (req.command) spec.Cmd = req.command;
    let container: Docker.Container;
    try {
      container = await this.call(node, `create ${name}`, (d) => d.createContainer(spec));
    } catch (e) {
      // A concurrent start with the same key won the name: that container is the answer.
      if (statusOf((e as { cause?: unknown }).cause) === 409) {
        const won = (await this.find(node, [`${LABEL.idempotencyKey}=${req.idempotencyKey}`]))[0];
        if (won) return this.toInstance(node, won);
      }
      throw e;
    }
    await this.call(node, `start ${name}`, (d) => d.getContainer(container.id).start()).catch((e: unknown) => {
      if (statusOf((e as { cause?: unknown }).cause) !== 304) throw e;
    });
    const c = (await this.find(node, [`${LABEL.idempotencyKey}=${req.idempotencyKey}`])).find((x) => x.Id === container.id);
    if (!c) throw this.fail(node, `container ${container.id} vanished right after start`, { retryable: true });
    return this.toInstance(node, c);
  }

  /** Runs argv in the container (Engine exec) and returns its exit code and output. */
  private async execIn(node: string, instanceId: string, cmd: string[]): Promise<{ code: number; output: string }> {
    return this.call(node, `exec ${cmd[0] ?? ''}`, async (d) => {
      const ex = await d.getContainer(instanceId).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
      const s = await ex.start({ hijack: true, stdin: false });
      const chunks: Buffer[] = [];
      await new Promise<void>((res) => {
        s.on('data', (c: Buffer) => chunks.push(c));
        s.on('end', () => res());
        s.on('close', () => res());
      });
      const info = await ex.inspect();
      return { code: info.ExitCode ?? -1, output: demuxLogs(Buffer.concat(chunks)) };
    });
  }

  /**
   * Whether the container's main process catches the signal (signal-ready.ts); undefined when it
   * is not running. Read on the node over ssh, or here when this machine runs the engine (the pid
   * checked to be the container's), else inside the container.
   */
  private async catches(node: string, instanceId: string, name: string): Promise<boolean | undefined> {
    const info = await this.call(node, 'inspect', (d) => d.getContainer(instanceId).inspect());
    const pid = info.State?.Pid ?? 0;
    if (!info.State?.Running || pid <= 0) return undefined;
    let status: string | undefined;
    if (this.nodes.hasSsh(node)) {
      const r = await this.nodes.exec(node, ['cat', `/proc/${pid}/status`]);
      if (r.code === 0) status = r.stdout;
    } else if ('socketPath' in (this.cfg.nodes.find((n) => n.name === node)?.engine ?? {})) {
      try {
        if (readFileSync(`/proc/${pid}/cgroup`, 'utf8').includes(info.Id)) status = readFileSync(`/proc/${pid}/status`, 'utf8');
      } catch {
        // another pid namespace (rootless, a VM): ask the container
      }
    }
    if (status === undefined) {
      const r = await this.execIn(node, instanceId, ['cat', '/proc/1/status']).catch(() => undefined);
      if (r?.code === 0) status = r.output;
    }
    // Cannot tell: a container's PID 1 only ever gets signals it has a handler for (the kernel
    // drops the rest), so sending cannot end it.
    if (status === undefined) return true;
    return catchesIn(status, name) ?? true;
  }

  async signal(node: string, instanceId: string, signal: string): Promise<void> {
    const sig = signal.toUpperCase().replace(/^SIG/, '');
    const name = signalName(sig);
    if (!/^[A-Z0-9]+$/.test(sig) || !name) throw this.fail(node, `invalid signal ${JSON.stringify(signal)}`);
    // Only to a workload that catches it: a default handler would end it.
    if (!needsNoHandler(name)) {
      const ready = await waitUntilReady(() => this.catches(node, instanceId, name), this.signalReadyTimeoutMs, 100);
      if (ready === undefined) throw this.fail(node, `container ${instanceId} is not running`);
      if (!ready) throw signalNotReady(this.fail(node, `container ${instanceId}: the workload has no handler for ${name} yet, so it was not sent (it would end the workload); try again once it has started`, { retryable: true }));
    }
    if (this.cfg.signalMethod === 'exec') {
      const r = await this.execIn(node, instanceId, ['kill', `-${sig}`, '1']);
      if (r.code !== 0) throw this.fail(node, `exec kill -${sig} 1 failed: kill -${sig} 1 exited ${r.code}`);
      return;
    }
    await this.call(node, `kill --signal ${sig}`, (d) => d.getContainer(instanceId).kill({ signal: sig }));
  }

  async stop(node: string, instanceId: string, graceMs: number): Promise<{ exitCode?: number }> {
    const t = Math.max(0, Math.ceil(graceMs / 1000));
    const c = this.engine(node).getContainer(instanceId);
    try {
      await this.call(node, `stop -t ${t}`, () => c.stop({ t }));
    } catch (e) {
      const code = statusOf((e as { cause?: unknown }).cause);
      if (code === 404) return {};
      if (code !== 304) throw e;
    }
    const info = await this.call(node, 'inspect', () => c.inspect());
    return { exitCode: info.State.ExitCode };
  }

  async logs(node: string, instanceId: string, opts: { tailLines?: number } = {}): Promise<string> {
    const buf = await this.call(node, 'logs', (d) => d.getContainer(instanceId).logs({ stdout: true, stderr: true, follow: false, ...(opts.tailLines !== undefined ? { tail: opts.tailLines } : {}) }));
    return demuxLogs(Buffer.isBuffer(buf) ? buf : Buffer.from(String(buf)));
  }

  async remove(node: string, instanceId: string): Promise<void> {
    try {
      await this.call(node, 'remove', (d) => d.getContainer(instanceId).remove({ force: true }));
    } catch (e) {
      if (statusOf((e as { cause?: unknown }).cause) !== 404) throw e;
    }
  }
}

function nodeConfigs(entries: DockerNodeEntry[]): FleetNodeConfig[] {
  return entries.map((e) => fleetNodeConfig(e.name, e, { ...(e.ssh ? { ssh: e.ssh } : {}), ...(e.gpus !== undefined ? { gpus: e.gpus } : {}) }));
}

/** Creates the provider (exported for tests that build one without the registry). */
export function createDockerProvider(config: DockerProviderConfig, ctx: ProviderContext): Provider & { runtime: DockerApiRuntime } {
  const ref: { runtime?: DockerApiRuntime } = {};
  const nodes = new NodeSet(nodeSetOptions(ctx, nodeConfigs(config.nodes), config, () => (ref.runtime ? ref.runtime.placedGpus() : Promise.resolve(new Map()))));
  const rt = new DockerApiRuntime(ctx.name, ctx.fleet, config, nodes, ctx.specDir, ctx.log, ctx.env);
  ref.runtime = rt;
  const anySsh = config.nodes.some((n) => n.ssh);
  const p: Provider & { runtime: DockerApiRuntime } = {
    name: ctx.name,
    type: 'docker',
    nodes: { list: () => nodes.list(), exec: (node, argv, o) => nodes.exec(node, argv, o?.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}) },
    runtime: rt,
    close: () => nodes.close(),
  };
  if (anySsh || config.sharedStorage) p.storage = { verify: (req) => nodes.verify(req), transfer: (req) => nodes.transfer(req), canTransfer: (a, b) => nodes.canTransfer(a, b) };
  if (config.nodes.some((n) => n.cloud)) p.notices = { poll: (n) => nodes.poll(n), acknowledge: (n, x) => nodes.acknowledge(n, x) };
  return p;
}

export const provider: ProviderFactory<DockerProviderConfig> = {
  type: 'docker',
  description: 'Docker engines (unix socket, TCP+TLS, or SSH): labelled containers, checkpoint signal/stop, image pulls; node facts over SSH',
  configSchema,
  create: (config, ctx) => createDockerProvider(config, ctx),
};
