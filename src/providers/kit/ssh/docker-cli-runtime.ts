// The runtime of SSH-reached nodes (the ssh provider's static hosts, and the VMs and hosts capacity
// providers buy): containers in the Docker Engine ON THE NODE, over the pooled SSH connection. Chosen over setsid/nohup processes because the engine already gives what a process
// runtime would have to rebuild on every host: a durable record (labels survive a controller
// restart), exit codes, logs, stop with a grace period (SIGTERM then SIGKILL), the checkpoint bind
// mount, and GPU device requests.
//
// Two ways to reach the engine, chosen per node:
// - the Engine API over a streamlocal channel to the engine's socket (the default where it works):
//   no process and no login shell on the node per call, so a step costs round trips, not a
//   ~0.5 s .bashrc per docker command. The socket is `runtime.socketPath`, else the DOCKER_HOST the
//   node's login environment sets (a unix:// one), else /var/run/docker.sock; it is tried once
//   (GET /_ping) and again a minute after a failure.
// - the docker CLI run on the node (the fallback: no such socket, no permission on it,
//   `AllowStreamLocalForwarding no`, a tcp:// DOCKER_HOST; or `runtime.engine: cli`). Every
//   argument is quoted by the pool, which runs it in a kept shell.
// Images are pulled with the CLI on the node in both cases, so the node's own registry
// credentials (~/.docker/config.json, credential helpers) apply.
import Docker from 'dockerode';
import { ProviderError } from '../../../core/errors.js';
import { nodeAddress } from '../../../core/address.js';
import type { WorkloadInstance } from '../../../core/types.js';
import type { ProviderLogger, RuntimeCapability, StartRequest } from '../../sdk.js';
import { DEFAULT_ENGINE_SOCKET, sshSocketAgent } from './engine-agent.js';
import { LABEL, containerStartSpec, containerName, instanceFromContainer } from './workload-labels.js';
import type { NodeSet } from './node-set.js';
import { catchesIn, needsNoHandler, signalName, signalNotReady, waitUntilReady, SIGNAL_READY_TIMEOUT_MS } from '../signal-ready.js';

export interface DockerCliRuntimeOptions {
  provider: string;
  fleet: string;
  nodes: NodeSet;
  /** docker CLI on the nodes. Default `docker`. */
  docker?: string;
  /** Default `none`: workloads need no network to checkpoint; set `host` or a network name if yours do. */
  networkMode?: string;
  /** `kill` (docker kill --signal) or `exec` (docker exec ID kill -SIG 1). Default `kill`. */
  signalMethod?: 'kill' | 'exec';
  /** Nodes whose engine has the NVIDIA runtime get `--gpus device=...`. */
  nvidiaNodes?: ReadonlySet<string> | ((node: string) => boolean);
  /** The nodes `list()` looks at. Default every node of the set that has SSH settings. */
  listNodes?: () => string[];
  /** Where the checkpoint folder is mounted in the container when the request gives no path. */
  defaultCheckpointPath?: string;
  /** spotfleet's environment: the source of a request's `passEnv` values (nothing else of it is passed). */
  env?: Readonly<Record<string, string | undefined>>;
  /** How long signal() waits for the container's process to catch the signal. Default 10 s. */
  signalReadyTimeoutMs?: number;
  /** `auto` (default): the Engine API over the SSH connection where it answers, else the CLI. */
  engine?: 'auto' | 'api' | 'cli';
  /** The engine's socket on the nodes; default DOCKER_HOST's (unix://) or /var/run/docker.sock. */
  socketPath?: string;
  /** Per-call Engine API limit in ms. Default 120 s (a stop waits out its grace period on top). */
  apiTimeoutMs?: number;
  log?: ProviderLogger;
}

/**
 * One round trip: the signal mask of the container's main process, read on the host from
 * /proc/<State.Pid>/status, else inside the container. Exit 3: not running; 5: cannot tell.
 */
const STATUS_SCRIPT = 'pid=$("$1" inspect -f "{{.State.Pid}}" "$2" 2>/dev/null) || exit 3; [ "$pid" -gt 0 ] 2>/dev/null || exit 3; cat "/proc/$pid/status" 2>/dev/null || "$1" exec "$2" cat /proc/1/status 2>/dev/null || exit 5';

interface Inspect {
  Id: string;
  Created?: string;
  Config?: { Labels?: Record<string, string> | null };
  State?: { Running?: boolean; ExitCode?: number; StartedAt?: string; Status?: string; Pid?: number };
}

/** How a node's engine is reached: decided once per node (again a minute after a failure). */
type EngineRoute = { api: Docker; socketPath: string } | { api?: undefined; why: string };

function statusOf(e: unknown): number | undefined {
  const s = (e as { statusCode?: unknown } | undefined)?.statusCode;
  return typeof s === 'number' ? s : undefined;
}

/** Splits Docker's multiplexed log stream (8-byte frame headers when the container has no TTY). */
function demux(buf: Buffer): string {
  if (buf.length < 8 || buf[0]! > 2 || buf[1] !== 0 || buf[2] !== 0 || buf[3] !== 0) return buf.toString('utf8');
  const out: Buffer[] = [];
  let i = 0;
  while (i + 8 <= buf.length) {
    const len = buf.readUInt32BE(i + 4);
    out.push(buf.subarray(i + 8, i + 8 + len));
    i += 8 + len;
  }
  return Buffer.concat(out).toString('utf8');
}


/**
 * Docker on the nodes, over SSH (the Engine API where it answers, else the CLI), as a
 * RuntimeCapability. (Named for its first form, the CLI only; `SshDockerRuntime` is the same class.)
 */
export class DockerCliRuntime implements RuntimeCapability {
  private readonly routes = new Map<string, { at: number; route: Promise<EngineRoute> }>();

  constructor(private readonly o: DockerCliRuntimeOptions) {}

  /** How the node's engine is reached now (probed on first use, again a minute after a failure). */
  route(node: string): Promise<EngineRoute> {
    const known = this.routes.get(node);
    if (known && (known.at === 0 || Date.now() - known.at < 60_000)) return known.route;
    const entry = { at: 0, route: this.probe(node) };
    this.routes.set(node, entry);
    void entry.route.then((r) => {
      if (!r.api) {
        entry.at = Date.now();
        this.o.log?.warn('docker engine API not reachable over SSH; using the docker CLI on the node', { node, reason: r.why });
      }
    });
    return entry.route;
  }

  /** An API call failed to reach the engine: ask again how to reach it next time. */
  private forget(node: string): void {
    this.routes.delete(node);
  }

  private async probe(node: string): Promise<EngineRoute> {
    if ((this.o.engine ?? 'auto') === 'cli') return { why: 'runtime.engine is cli' };
    let socketPath = this.o.socketPath;
    if (socketPath === undefined) {
      // What the docker CLI there would use: DOCKER_HOST from the node's login environment.
      const r = await this.o.nodes.exec(node, ['sh', '-c', 'printf %s "${DOCKER_HOST:-}"']).catch((e: unknown) => ({ code: -1, stdout: '', stderr: (e as Error).message }));
      if (r.code !== 0) return { why: `cannot read DOCKER_HOST on the node: ${r.stderr.trim().slice(0, 200)}` };
      const host = r.stdout.trim();
      if (host === '') socketPath = DEFAULT_ENGINE_SOCKET;
      else if (host.startsWith('unix://')) socketPath = host.slice('unix://'.length);
      else return { why: `DOCKER_HOST on the node is ${host}, not a unix socket` };
    }
    const api = new Docker({ host: 'docker-over-ssh', port: 2375, protocol: 'http', agent: sshSocketAgent(this.o.nodes.pool, node, socketPath) } as Docker.DockerOptions);
    try {
      await this.withLimit(node, 'ping', api.ping(), 15_000);
      return { api, socketPath };
    } catch (e) {
      if (this.o.engine === 'api') throw e;
      return { why: `${socketPath}: ${(e as Error).message}` };
    }
  }

  private async withLimit<T>(node: string, what: string, p: Promise<T>, limitMs = this.o.apiTimeoutMs ?? 120_000): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        p,
        new Promise<never>((_, rej) => {
          timer = setTimeout(() => rej(this.fail(node, `docker API ${what}: no answer within ${limitMs} ms`, true)), limitMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** One Engine API call; a failure becomes a ProviderError naming the node (404 etc. keep statusCode in cause). */
  private async call<T>(node: string, api: Docker, what: string, fn: (d: Docker) => Promise<T>, limitMs?: number): Promise<T> {
    try {
      return await this.withLimit(node, what, fn(api), limitMs);
    } catch (e) {
      if (e instanceof ProviderError) throw e;
      const code = statusOf(e);
      if (code === undefined) this.forget(node); // the channel or the engine went away: probe again
      const msg = ((e as Error).message ?? String(e)).replace(/\s+/g, ' ').trim().slice(0, 500);
      throw Object.assign(this.fail(node, `docker API ${what} failed${code ? ` (HTTP ${code})` : ''}: ${msg}`, code === undefined || code >= 500), { cause: e });
    }
  }

  private fail(node: string, message: string, retryable = false): ProviderError {
    return this.o.nodes.pool.has(node) ? this.o.nodes.pool.fail(node, message, { retryable }) : new ProviderError(this.o.provider, `node "${node}": ${message}`, { address: nodeAddress(this.o.provider, node), retryable });
  }

  private async docker(node: string, args: string[], timeoutMs = 120_000): Promise<{ code: number; stdout: string; stderr: string }> {
    return this.o.nodes.exec(node, [this.o.docker ?? 'docker', ...args], { timeoutMs });
  }

  private async must(node: string, args: string[], what: string, timeoutMs?: number): Promise<string> {
    const r = await this.docker(node, args, timeoutMs);
    if (r.code !== 0) throw this.fail(node, `${what} failed (docker exit ${r.code}): ${r.stderr.trim().slice(0, 500)}`, r.code !== 125 && r.code !== 1);
    return r.stdout;
  }

  private async inspectContainers(node: string, ids: string[]): Promise<Inspect[]> {
    if (ids.length === 0) return [];
    const route = await this.route(node);
    if (route.api) {
      const api = route.api;
      const found = await Promise.all(
        ids.map((id) =>
          this.call(node, api, 'inspect', (d) => d.getContainer(id).inspect() as Promise<Inspect>).catch((e: unknown) => {
            if (statusOf((e as { cause?: unknown }).cause) === 404) return undefined;
            throw e;
          }),
        ),
      );
      return found.filter((x): x is Inspect => x !== undefined);
    }
    const r = await this.docker(node, ['inspect', '--type', 'container', ...ids]);
    if (r.code !== 0 && !/No such/i.test(r.stderr)) throw this.fail(node, `docker inspect failed: ${r.stderr.trim()}`, true);
    try {
      return JSON.parse(r.stdout || '[]') as Inspect[];
    } catch {
      throw this.fail(node, `docker inspect printed something that is not JSON`, true);
    }
  }

  private toInstance(node: string, c: Inspect): WorkloadInstance {
    const o: Parameters<typeof instanceFromContainer>[0] = {
      id: c.Id,
      labels: c.Config?.Labels ?? {},
      running: c.State?.Running === true,
      startedAt: normIso(c.State?.StartedAt) ?? normIso(c.Created) ?? new Date(0).toISOString(),
      provider: this.o.provider,
      node,
    };
    if (c.State?.ExitCode !== undefined) o.exitCode = c.State.ExitCode;
    return instanceFromContainer(o);
  }

  /** Containers with these labels (`key=value`), inspected. */
  private async byLabels(node: string, labels: string[]): Promise<Inspect[]> {
    const route = await this.route(node);
    let ids: string[];
    if (route.api) ids = (await this.call(node, route.api, 'list containers', (d) => d.listContainers({ all: true, filters: { label: labels } }))).map((c) => c.Id);
    else ids = (await this.must(node, ['ps', '-aq', '--no-trunc', ...labels.flatMap((l) => ['--filter', `label=${l}`])], 'docker ps')).split('\n').map((x) => x.trim()).filter(Boolean);
    return this.inspectContainers(node, ids);
  }

  async listOn(node: string): Promise<WorkloadInstance[]> {
    return (await this.byLabels(node, [`${LABEL.fleet}=${this.o.fleet}`])).map((c) => this.toInstance(node, c));
  }

  async list(): Promise<WorkloadInstance[]> {
    const names = this.o.listNodes ? this.o.listNodes() : this.o.nodes.names().filter((n) => this.o.nodes.hasSsh(n));
    const all = (await Promise.all(names.map((n) => this.listOn(n)))).flat();
    return all.sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : a.workload < b.workload ? -1 : a.workload > b.workload ? 1 : a.id < b.id ? -1 : 1));
  }

  /** GPUs held by this fleet's running containers, per node. */
  async placedGpus(): Promise<Map<string, number>> {
    const m = new Map<string, number>();
    for (const i of await this.list()) if (i.state === 'running') m.set(i.node, (m.get(i.node) ?? 0) + i.gpus);
    return m;
  }

  async start(req: StartRequest): Promise<WorkloadInstance> {
    const node = req.node;
    if (!req.image) throw this.fail(node, `workload ${req.workload}: the ssh provider runs containers and needs an image`);
    let spec: ReturnType<typeof containerStartSpec>;
    try {
      spec = containerStartSpec(req, node, this.o.defaultCheckpointPath, this.o.env);
    } catch (e) {
      throw this.fail(node, `workload ${req.workload}: ${(e as Error).message}`);
    }
    const { labels, env, checkpointPath: ckPath } = spec;
    const dir = this.o.nodes.workloadDir(node, req.workload);
    const route = await this.route(node);
    // The fleet's containers there (the idempotency key, the GPUs they hold) come over the Engine
    // API beside the two commands. Those run one after the other: in the node's one kept shell
    // each costs a round trip, while running them at once would open a second shell, which is a
    // login (the user's .bashrc, half a second or more on hosts that run conda or pyenv init).
    const [mine, [inv, mk]] = await Promise.all([
      this.summaries(node, route),
      (async () => {
        const gpus = req.gpus > 0 ? await this.o.nodes.inventory(node) : undefined;
        return [gpus, await this.o.nodes.exec(node, ['mkdir', '-p', '--', dir])] as const;
      })(),
    ]);
    const same = mine.find((c) => c.labels[LABEL.idempotencyKey] === req.idempotencyKey);
    if (same) {
      const c = (await this.inspectContainers(node, [same.id]))[0];
      if (c) return this.toInstance(node, c);
    }
    if (mk.code !== 0) throw this.fail(node, `cannot create ${dir}: ${mk.stderr.trim()}`);
    const devices = inv ? this.gpuDevices(node, req, inv.map((g) => String(g.index)), mine.filter((c) => c.running)) : undefined;
    if (devices) labels[LABEL.gpuDevices] = devices.join(',');
    const name = containerName(req.fleet, req.workload, req.idempotencyKey);
    if (route.api) return this.startApi(node, route.api, req, name, { labels, env, dir, ckPath, devices });

    const args = ['run', '-d', '--name', name, '--network', this.o.networkMode ?? 'none', '--mount', `type=bind,source=${dir},target=${ckPath}`];
    for (const k of Object.keys(labels).sort()) args.push('--label', `${k}=${labels[k] as string}`);
    for (const k of Object.keys(env).sort()) args.push('--env', `${k}=${env[k] as string}`);
    if (devices) args.push('--gpus', `"device=${devices.join(',')}"`);
    args.push('--', req.image, ...(req.command ?? []));
    const r = await this.docker(node, args, 600_000);
    if (r.code !== 0) {
      // A concurrent start with the same key won the name: that container is the answer.
      if (/already in use|Conflict/i.test(r.stderr)) {
        const won = (await this.inspectContainers(node, [name]))[0];
        if (won && won.Config?.Labels?.[LABEL.idempotencyKey] === req.idempotencyKey) return this.toInstance(node, won);
      }
      throw this.fail(node, `docker run for ${req.workload} failed (exit ${r.code}): ${r.stderr.trim().slice(0, 500)}`, r.code !== 125);
    }
    const id = r.stdout.trim().split('\n').pop() ?? '';
    const c = (await this.inspectContainers(node, [id]))[0];
    if (!c) throw this.fail(node, `container ${id} vanished right after docker run`, true);
    return this.toInstance(node, c);
  }

  /** `docker run`'s create + start through the Engine API; a missing image is pulled by the CLI on the node. */
  private async startApi(node: string, api: Docker, req: StartRequest, name: string, x: { labels: Record<string, string>; env: Record<string, string>; dir: string; ckPath: string; devices: string[] | undefined }): Promise<WorkloadInstance> {
    const spec: Docker.ContainerCreateOptions = {
      name,
      Image: req.image,
      Labels: x.labels,
      Env: Object.keys(x.env).sort().map((k) => `${k}=${x.env[k] as string}`),
      HostConfig: {
        NetworkMode: this.o.networkMode ?? 'none',
        Mounts: [{ Type: 'bind', Source: x.dir, Target: x.ckPath }],
        ...(x.devices ? { DeviceRequests: [{ Driver: '', Count: 0, DeviceIDs: x.devices, Capabilities: [['gpu']] }] } : {}),
      },
    };
    if (req.command) spec.Cmd = req.command;
    const create = (): Promise<Docker.Container> => this.call(node, api, `create ${name}`, (d) => d.createContainer(spec));
    let container: Docker.Container;
    try {
      container = await create();
    } catch (e) {
      const code = statusOf((e as { cause?: unknown }).cause);
      if (code === 409) {
        // A concurrent start with the same key won the name: that container is the answer.
        const won = (await this.inspectContainers(node, [name]))[0];
        if (won && won.Config?.Labels?.[LABEL.idempotencyKey] === req.idempotencyKey) return this.toInstance(node, won);
        throw e;
      }
      if (code !== 404) throw e;
      // No such image: `docker pull` on the node, with the node's own registry credentials.
      const pull = await this.docker(node, ['pull', '--', req.image as string], 600_000);
      if (pull.code !== 0) throw this.fail(node, `docker pull ${req.image as string} for ${req.workload} failed (exit ${pull.code}): ${pull.stderr.trim().slice(0, 500)}`, true);
      container = await create();
    }
    await this.call(node, api, `start ${name}`, (d) => d.getContainer(container.id).start()).catch((e: unknown) => {
      if (statusOf((e as { cause?: unknown }).cause) !== 304) throw e;
    });
    const c = (await this.inspectContainers(node, [container.id]))[0];
    if (!c) throw this.fail(node, `container ${container.id} vanished right after start`, true);
    return this.toInstance(node, c);
  }

  /** The fleet's containers on the node: id, labels, running (the API's list needs no inspect per container). */
  private async summaries(node: string, route: EngineRoute): Promise<{ id: string; labels: Record<string, string>; running: boolean }[]> {
    if (route.api) {
      const list = await this.call(node, route.api, 'list containers', (d) => d.listContainers({ all: true, filters: { label: [`${LABEL.fleet}=${this.o.fleet}`] } }));
      return list.map((c) => ({ id: c.Id, labels: c.Labels ?? {}, running: c.State === 'running' }));
    }
    return (await this.byLabels(node, [`${LABEL.fleet}=${this.o.fleet}`])).map((c) => ({ id: c.Id, labels: c.Config?.Labels ?? {}, running: c.State?.Running === true }));
  }

  /** The GPU device ids for a start (undefined: the engine has no NVIDIA runtime); throws when too few are free. */
  private gpuDevices(node: string, req: StartRequest, indexes: string[], running: { labels: Record<string, string> }[]): string[] | undefined {
    const used = running.reduce((s, c) => s + (Number(c.labels[LABEL.gpus] ?? '0') || 0), 0);
    const free = indexes.length - used;
    if (free < req.gpus) throw this.fail(node, `no free GPU for ${req.workload}: it needs ${req.gpus}, ${Math.max(0, free)} of ${indexes.length} free`);
    const nv = this.o.nvidiaNodes;
    if (!(typeof nv === 'function' ? nv(node) : nv?.has(node))) return undefined;
    const taken = new Set(running.flatMap((c) => (c.labels[LABEL.gpuDevices] ?? '').split(',').filter(Boolean)));
    return indexes.filter((i) => !taken.has(i)).slice(0, req.gpus);
  }

  /** Whether the container's main process catches the signal; undefined when it is not running. */
  private async catches(node: string, instanceId: string, name: string): Promise<boolean | undefined> {
    const route = await this.route(node);
    let r: { code: number; stdout: string; stderr: string };
    if (route.api) {
      const api = route.api;
      const info = await this.call(node, api, 'inspect', (d) => d.getContainer(instanceId).inspect() as Promise<Inspect>).catch((e: unknown) => {
        if (statusOf((e as { cause?: unknown }).cause) === 404) return undefined;
        throw e;
      });
      const pid = info?.State?.Pid ?? 0;
      if (!info?.State?.Running || pid <= 0) return undefined;
      // The host's view of the process (a kept shell on the node), else the container's own.
      r = await this.o.nodes.exec(node, ['cat', `/proc/${pid}/status`]);
      if (r.code !== 0) r = await this.execIn(node, api, instanceId, ['cat', '/proc/1/status']).catch(() => ({ code: 5, stdout: '', stderr: '' }));
      if (r.code !== 0) r = { code: 5, stdout: '', stderr: '' };
    } else r = await this.o.nodes.exec(node, ['sh', '-c', STATUS_SCRIPT, 'sh', this.o.docker ?? 'docker', instanceId]);
    if (r.code === 3) return undefined;
    // Cannot tell (no /proc access, no cat in the image): a container's PID 1 only ever gets the
    // signals it has a handler for (the kernel drops the rest), so sending cannot end it.
    if (r.code === 5) return true;
    if (r.code !== 0) throw this.fail(node, `cannot read the signal mask of ${instanceId}: ${r.stderr.trim().slice(0, 300)}`, true);
    return catchesIn(r.stdout, name) ?? true;
  }

  /** Runs argv in the container (Engine exec): its exit code and output. */
  private async execIn(node: string, api: Docker, instanceId: string, cmd: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return this.call(node, api, `exec ${cmd[0] ?? ''}`, async (d) => {
      const ex = await d.getContainer(instanceId).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
      const s = await ex.start({ hijack: true, stdin: false });
      const chunks: Buffer[] = [];
      await new Promise<void>((res) => {
        s.on('data', (c: Buffer) => chunks.push(c));
        s.on('end', () => res());
        s.on('close', () => res());
      });
      const info = await ex.inspect();
      return { code: info.ExitCode ?? -1, stdout: demux(Buffer.concat(chunks)), stderr: '' };
    });
  }

  async signal(node: string, instanceId: string, signal: string): Promise<void> {
    const sig = signal.toUpperCase().replace(/^SIG/, '');
    const name = signalName(sig);
    if (!/^[A-Z0-9]+$/.test(sig) || !name) throw this.fail(node, `invalid signal ${JSON.stringify(signal)}`);
    // Only to a workload that catches it: a default handler would end it (signal-ready.ts).
    if (!needsNoHandler(name)) {
      const ready = await waitUntilReady(() => this.catches(node, instanceId, name), this.o.signalReadyTimeoutMs ?? SIGNAL_READY_TIMEOUT_MS, 100);
      if (ready === undefined) throw this.fail(node, `container ${instanceId} is not running`);
      if (!ready) throw signalNotReady(this.fail(node, `container ${instanceId}: the workload has no handler for ${name} yet, so it was not sent (it would end the workload); try again once it has started`, true));
    }
    const route = await this.route(node);
    if (route.api) {
      if (this.o.signalMethod === 'exec') {
        const r = await this.execIn(node, route.api, instanceId, ['kill', `-${sig}`, '1']);
        if (r.code !== 0) throw this.fail(node, `signal ${sig} failed: kill -${sig} 1 exited ${r.code}`);
      } else await this.call(node, route.api, `kill --signal ${sig}`, (d) => d.getContainer(instanceId).kill({ signal: sig }));
      return;
    }
    if (this.o.signalMethod === 'exec') await this.must(node, ['exec', instanceId, 'kill', `-${sig}`, '1'], `signal ${sig}`);
    else await this.must(node, ['kill', '--signal', sig, instanceId], `signal ${sig}`);
  }

  async stop(node: string, instanceId: string, graceMs: number): Promise<{ exitCode?: number }> {
    const t = Math.max(0, Math.ceil(graceMs / 1000));
    const route = await this.route(node);
    if (route.api) {
      const api = route.api;
      try {
        await this.call(node, api, `stop -t ${t}`, (d) => d.getContainer(instanceId).stop({ t }), graceMs + 60_000);
      } catch (e) {
        const code = statusOf((e as { cause?: unknown }).cause);
        if (code === 404) return {};
        if (code !== 304) throw e;
      }
    } else {
      const r = await this.docker(node, ['stop', '-t', String(t), instanceId], graceMs + 60_000);
      if (r.code !== 0 && !/No such container/i.test(r.stderr)) throw this.fail(node, `docker stop failed: ${r.stderr.trim()}`, true);
    }
    const c = (await this.inspectContainers(node, [instanceId]))[0];
    return c?.State?.ExitCode !== undefined ? { exitCode: c.State.ExitCode } : {};
  }

  async logs(node: string, instanceId: string, opts: { tailLines?: number } = {}): Promise<string> {
    const route = await this.route(node);
    if (route.api) {
      const buf = await this.call(node, route.api, 'logs', (d) => d.getContainer(instanceId).logs({ stdout: true, stderr: true, follow: false, ...(opts.tailLines !== undefined ? { tail: opts.tailLines } : {}) }));
      return demux(Buffer.isBuffer(buf) ? buf : Buffer.from(String(buf)));
    }
    const r = await this.docker(node, ['logs', '--tail', opts.tailLines !== undefined ? String(opts.tailLines) : 'all', instanceId]);
    if (r.code !== 0) throw this.fail(node, `docker logs failed: ${r.stderr.trim()}`, true);
    return r.stdout + r.stderr;
  }

  async remove(node: string, instanceId: string): Promise<void> {
    const route = await this.route(node);
    if (route.api) {
      await this.call(node, route.api, 'remove', (d) => d.getContainer(instanceId).remove({ force: true })).catch((e: unknown) => {
        if (statusOf((e as { cause?: unknown }).cause) !== 404) throw e;
      });
      return;
    }
    const r = await this.docker(node, ['rm', '-f', instanceId]);
    if (r.code !== 0 && !/No such container/i.test(r.stderr)) throw this.fail(node, `docker rm failed: ${r.stderr.trim()}`, true);
  }
}

function normIso(s: string | undefined): string | undefined {
  if (!s || s.startsWith('0001-')) return undefined;
  const t = Date.parse(s);
  return Number.isFinite(t) ? new Date(t).toISOString() : undefined;
}

/** The same runtime under the name that says what it is now. */
export { DockerCliRuntime as SshDockerRuntime };
export type { DockerCliRuntimeOptions as DockerRuntimeOptions };
