// The ssh provider's runtime: containers started with the docker CLI ON THE NODE, over the pooled
// SSH connection. Chosen over setsid/nohup processes because the engine already gives what a
// process runtime would have to rebuild on every host: a durable record (labels survive a
// controller restart), exit codes, logs, stop with a grace period (SIGTERM then SIGKILL), the
// checkpoint bind mount, and GPU device requests. Every argument is quoted by the pool.
import { ProviderError } from '../../src/core/errors.js';
import { nodeAddress } from '../../src/core/address.js';
import type { WorkloadInstance } from '../../src/core/types.js';
import type { RuntimeCapability, StartRequest } from '../../src/providers/sdk.js';
import { LABEL, containerStartSpec, containerName, instanceFromContainer, type NodeSet } from '../../src/providers/kit/ssh/index.js';
import { catchesIn, needsNoHandler, signalName, signalNotReady, waitUntilReady, SIGNAL_READY_TIMEOUT_MS } from '../../src/providers/kit/signal-ready.js';

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
  nvidiaNodes?: Set<string>;
  /** Where the checkpoint folder is mounted in the container when the request gives no path. */
  defaultCheckpointPath?: string;
  /** spotfleet's environment: the source of a request's `passEnv` values (nothing else of it is passed). */
  env?: Readonly<Record<string, string | undefined>>;
  /** How long signal() waits for the container's process to catch the signal. Default 10 s. */
  signalReadyTimeoutMs?: number;
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
  State?: { Running?: boolean; ExitCode?: number; StartedAt?: string; Status?: string };
}


/** The docker CLI over SSH as a RuntimeCapability. */
export class DockerCliRuntime implements RuntimeCapability {
  constructor(private readonly o: DockerCliRuntimeOptions) {}

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

  private async byFilter(node: string, filters: string[]): Promise<Inspect[]> {
    const out = await this.must(node, ['ps', '-aq', '--no-trunc', ...filters.flatMap((f) => ['--filter', f])], 'docker ps');
    return this.inspectContainers(node, out.split('\n').map((s) => s.trim()).filter(Boolean));
  }

  async listOn(node: string): Promise<WorkloadInstance[]> {
    return (await this.byFilter(node, [`label=${LABEL.fleet}=${this.o.fleet}`])).map((c) => this.toInstance(node, c));
  }

  async list(): Promise<WorkloadInstance[]> {
    const names = this.o.nodes.names().filter((n) => this.o.nodes.hasSsh(n));
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
    const existing = await this.byFilter(node, [`label=${LABEL.idempotencyKey}=${req.idempotencyKey}`]);
    const same = existing.find((c) => c.Config?.Labels?.[LABEL.idempotencyKey] === req.idempotencyKey);
    if (same) return this.toInstance(node, same);

    let spec: ReturnType<typeof containerStartSpec>;
    try {
      spec = containerStartSpec(req, node, this.o.defaultCheckpointPath, this.o.env);
    } catch (e) {
      throw this.fail(node, `workload ${req.workload}: ${(e as Error).message}`);
    }
    const { labels, env, checkpointPath: ckPath } = spec;

    const gpuArgs = await this.gpuArgs(node, req);
    const dir = this.o.nodes.workloadDir(node, req.workload);
    const mk = await this.o.nodes.exec(node, ['mkdir', '-p', '--', dir]);
    if (mk.code !== 0) throw this.fail(node, `cannot create ${dir}: ${mk.stderr.trim()}`);
    const name = containerName(req.fleet, req.workload, req.idempotencyKey);
    const args = ['run', '-d', '--name', name, '--network', this.o.networkMode ?? 'none', '--mount', `type=bind,source=${dir},target=${ckPath}`];
    for (const k of Object.keys(labels).sort()) args.push('--label', `${k}=${labels[k] as string}`);
    for (const k of Object.keys(env).sort()) args.push('--env', `${k}=${env[k] as string}`);
    args.push(...gpuArgs, '--', req.image, ...(req.command ?? []));
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

  private async gpuArgs(node: string, req: StartRequest): Promise<string[]> {
    if (req.gpus <= 0) return [];
    const inv = await this.o.nodes.inventory(node);
    const running = (await this.listOn(node)).filter((i) => i.state === 'running');
    const used = running.reduce((s, i) => s + i.gpus, 0);
    const free = inv.length - used;
    if (free < req.gpus) throw this.fail(node, `no free GPU for ${req.workload}: it needs ${req.gpus}, ${Math.max(0, free)} of ${inv.length} free`);
    if (!this.o.nvidiaNodes?.has(node)) return [];
    const taken = new Set(running.flatMap((i) => (i.labels[LABEL.gpuDevices] ?? '').split(',').filter(Boolean)));
    const devices = inv.map((g) => String(g.index)).filter((i) => !taken.has(i)).slice(0, req.gpus);
    return ['--gpus', `"device=${devices.join(',')}"`, '--label', `${LABEL.gpuDevices}=${devices.join(',')}`];
  }

  /** Whether the container's main process catches the signal; undefined when it is not running. */
  private async catches(node: string, instanceId: string, name: string): Promise<boolean | undefined> {
    const r = await this.o.nodes.exec(node, ['sh', '-c', STATUS_SCRIPT, 'sh', this.o.docker ?? 'docker', instanceId]);
    if (r.code === 3) return undefined;
    // Cannot tell (no /proc access, no cat in the image): a container's PID 1 only ever gets the
    // signals it has a handler for (the kernel drops the rest), so sending cannot end it.
    if (r.code === 5) return true;
    if (r.code !== 0) throw this.fail(node, `cannot read the signal mask of ${instanceId}: ${r.stderr.trim().slice(0, 300)}`, true);
    return catchesIn(r.stdout, name) ?? true;
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
    if (this.o.signalMethod === 'exec') await this.must(node, ['exec', instanceId, 'kill', `-${sig}`, '1'], `signal ${sig}`);
    else await this.must(node, ['kill', '--signal', sig, instanceId], `signal ${sig}`);
  }

  async stop(node: string, instanceId: string, graceMs: number): Promise<{ exitCode?: number }> {
    const t = String(Math.max(0, Math.ceil(graceMs / 1000)));
    const r = await this.docker(node, ['stop', '-t', t, instanceId], graceMs + 60_000);
    if (r.code !== 0 && !/No such container/i.test(r.stderr)) throw this.fail(node, `docker stop failed: ${r.stderr.trim()}`, true);
    const c = (await this.inspectContainers(node, [instanceId]))[0];
    return c?.State?.ExitCode !== undefined ? { exitCode: c.State.ExitCode } : {};
  }

  async logs(node: string, instanceId: string, opts: { tailLines?: number } = {}): Promise<string> {
    const r = await this.docker(node, ['logs', '--tail', opts.tailLines !== undefined ? String(opts.tailLines) : 'all', instanceId]);
    if (r.code !== 0) throw this.fail(node, `docker logs failed: ${r.stderr.trim()}`, true);
    return r.stdout + r.stderr;
  }

  async remove(node: string, instanceId: string): Promise<void> {
    const r = await this.docker(node, ['rm', '-f', instanceId]);
    if (r.code !== 0 && !/No such container/i.test(r.stderr)) throw this.fail(node, `docker rm failed: ${r.stderr.trim()}`, true);
  }
}

function normIso(s: string | undefined): string | undefined {
  if (!s || s.startsWith('0001-')) return undefined;
  const t = Date.parse(s);
  return Number.isFinite(t) ? new Date(t).toISOString() : undefined;
}
