// Simulated molt hosts on this machine, for `runLocally: true` (the reference server and demos).
// The molt API sells GPUs, not a way to run anything on them; with `runLocally` each lease the
// provider holds becomes a folder-backed node under the provider's data folder, whose workloads run
// as local processes (kit/process-runtime) and whose checkpoints live in folders (kit/localfs-storage),
// exactly like the `sim` provider's leases. The lease's life still comes from the molt API: a
// `preempting` lease posts a notice with `preemptAt` as its deadline, and once the deadline has
// passed (or the lease expired, was released elsewhere, or is unknown to the API) the node is dead
// and its processes are killed. Everything is evaluated lazily on each call (level-triggered), from
// files plus one API read, so every CLI run agrees and no timer has to keep running.
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ProviderError } from '../../src/core/errors.js';
import type { Notice, WorkloadInstance } from '../../src/core/types.js';
import type { RuntimeCapability } from '../../src/providers/sdk.js';
import { readJson, writeJsonAtomic } from '../../src/providers/kit/fs-util.js';
import { LocalfsStorage, localfsMeta } from '../../src/providers/kit/localfs-storage.js';
import { NodeNotices } from '../../src/providers/kit/node-notices.js';
import { ProcessRuntime } from '../../src/providers/kit/process-runtime.js';
import type { ApiLease } from './api.js';

/** What the provider remembers of a lease it runs locally: enough to show it once the API forgot it. */
export interface LocalLeaseRecord {
  id: string;
  pool: string;
  gpuModel: string;
  gpus: number;
  zone: string;
  pricePerHour: number;
  /** The lease's own creation time and offer: a lease id seen again with others is another lease. */
  createdAt: string;
  offerId: string;
  /** Wall ISO time the record was made. */
  trackedAt: string;
  /** Set by release(): the node is gone for good and is no longer listed. */
  released?: string;
}

/** Node condition after settling it against the API and the clock. */
export type LocalNodeState = 'ok' | 'noticed' | 'terminated';

/**
 * A dead node (its lease ended without a release by spotfleet) is still listed as `terminated` for
 * this long, so the planner can recover the workload's newest checkpoint from its folder and
 * `status` shows what happened; after that, with nothing running on it, it is forgotten and its
 * folder removed (a real preempted host's disk would be long gone).
 */
export const DEAD_NODE_RETENTION_MS = 3_600_000;

export interface LocalHostsOptions {
  provider: string;
  fleet: string;
  /** The provider's data folder: `leases/` (records) and `nodes/` (node folders) live here. */
  dataDir: string;
  /** Working directory of workloads (the spec's folder). */
  cwd: string;
  /** Base environment of workloads, without the API token. */
  env: Readonly<Record<string, string | undefined>>;
  now(): number;
  /** One lease from the API; `undefined` when the API does not know it (404). */
  fetchLease(id: string): Promise<ApiLease | undefined>;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Folder-backed nodes for molt leases, with the runtime and storage capabilities over them. */
export class LocalHosts {
  readonly runtime: RuntimeCapability;
  readonly storage: LocalfsStorage;
  private readonly o: LocalHostsOptions;
  private readonly procs: ProcessRuntime;
  private readonly notices: NodeNotices;
  private readonly leasesDir: string;
  private readonly nodesRoot: string;

  constructor(o: LocalHostsOptions) {
    this.o = o;
    this.leasesDir = join(o.dataDir, 'leases');
    this.nodesRoot = join(o.dataDir, 'nodes');
    mkdirSync(this.leasesDir, { recursive: true, mode: 0o700 });
    this.procs = new ProcessRuntime({
      provider: o.provider,
      fleet: o.fleet,
      dataDir: o.dataDir,
      nodesRoot: this.nodesRoot,
      cwd: o.cwd,
      env: o.env,
      now: () => o.now(),
      admit: (node, gpus, used) => this.admit(node, gpus, used),
    });
    this.notices = new NodeNotices({ provider: o.provider, source: 'molt', nodeDir: (n) => this.nodeDir(n), now: () => o.now(), onDeath: (n) => this.procs.killNode(n) });
    this.storage = new LocalfsStorage(o.provider);
    const procs = this.procs;
    this.runtime = {
      // The provider settles the nodes against one lease listing before it lists (see sync()).
      list: (): Promise<WorkloadInstance[]> => procs.list(),
      start: (req) => procs.start(req),
      signal: async (node, id, sig) => {
        if (this.record(node)) await this.settle(node);
        return procs.signal(node, id, sig);
      },
      stop: async (node, id, graceMs) => {
        if (this.record(node)) await this.settle(node);
        return procs.stop(node, id, graceMs);
      },
      logs: (node, id, opts) => procs.logs(node, id, opts),
      remove: (node, id) => procs.remove(node, id),
    };
  }

  nodeDir(id: string): string {
    return join(this.nodesRoot, id);
  }

  /** The folder facts a node carries, so any localfs storage on this machine finds its checkpoints. */
  meta(id: string): Record<string, string> {
    return localfsMeta(this.nodeDir(id));
  }

  record(id: string): LocalLeaseRecord | undefined {
    return /^[A-Za-z0-9._-]+$/.test(id) ? readJson<LocalLeaseRecord>(join(this.leasesDir, `${id}.json`)) : undefined;
  }

  private records(): LocalLeaseRecord[] {
    let names: string[];
    try {
      names = readdirSync(this.leasesDir).filter((n) => n.endsWith('.json'));
    } catch {
      names = [];
    }
    return names
      .map((n) => readJson<LocalLeaseRecord>(join(this.leasesDir, n)))
      .filter((r): r is LocalLeaseRecord => r !== undefined)
      .sort((a, b) => cmp(a.id, b.id));
  }

  /**
   * Makes the node of a live lease exist (idempotent): called after a bid, and for every live lease
   * a listing finds, so a lease bought by an interrupted run still gets its node.
   */
  async track(l: ApiLease, pool: string): Promise<LocalLeaseRecord> {
    if (!/^[A-Za-z0-9._-]+$/.test(l.id)) throw new ProviderError(this.o.provider, `lease id "${l.id}" cannot name a folder`);
    const existing = this.record(l.id);
    if (existing && existing.createdAt === l.createdAt && existing.offerId === l.offerId) return existing;
    if (existing) {
      // The same id for another lease: a reference server restarted (its ids start over) while this
      // folder kept the old host. The old host is gone; the new lease gets a fresh one.
      await this.procs.killNode(l.id);
      rmSync(this.nodeDir(l.id), { recursive: true, force: true });
    }
    mkdirSync(join(this.nodeDir(l.id), 'checkpoints'), { recursive: true, mode: 0o700 });
    const rec: LocalLeaseRecord = { id: l.id, pool, gpuModel: l.gpuModel, gpus: l.gpus, zone: l.zone, pricePerHour: l.pricePerHour, createdAt: l.createdAt, offerId: l.offerId, trackedAt: new Date(this.o.now()).toISOString() };
    writeJsonAtomic(join(this.leasesDir, `${l.id}.json`), rec);
    return rec;
  }

  /**
   * Brings one node up to date with the API and the clock. `known` is the lease as a listing just
   * returned it (`null`: the listing did not have it, so it ended); absent, the API is asked.
   */
  async settle(id: string, known?: ApiLease | null): Promise<LocalNodeState> {
    const rec = this.record(id);
    if (!rec || rec.released) return 'terminated';
    if (this.notices.terminated(id)) return 'terminated';
    // A lease missing from a listing has ended (or is unknown): one read says how and when.
    const l = known ?? (await this.o.fetchLease(id));
    const now = this.o.now();
    if (!l || l.status === 'expired' || l.status === 'released') {
      // Ended without our release (preempted, expired, released by someone else): the host is gone.
      const endedAt = l?.endedAt !== undefined ? Date.parse(l.endedAt) : now;
      const detail: Record<string, string> = { lease: id, endReason: l?.endReason ?? 'unknown to the molt API' };
      this.notices.post(id, { at: Math.min(Number.isFinite(endedAt) ? endedAt : now, now), inMs: 0, kind: l?.endReason === 'preempted' ? 'preemption' : 'termination', action: l?.endReason ?? 'gone', detail });
    } else if (l.status === 'preempting' && l.preemptAt !== undefined) {
      const deadline = Date.parse(l.preemptAt);
      // The notice's deadline is molt's `preemptAt`; NodeNotices keeps the first one it was given.
      this.notices.post(id, { at: now, inMs: (Number.isFinite(deadline) ? deadline : now) - now, kind: 'preemption', action: 'preempt', detail: { lease: id } });
    }
    return this.notices.settle(id);
  }

  /**
   * Settles every node this provider runs, given the API's list of live leases: records the live
   * ones, kills the processes of leases that ended, prunes long-dead nodes.
   */
  async sync(live: readonly ApiLease[], poolOf: (l: ApiLease) => string): Promise<void> {
    const byId = new Map(live.map((l) => [l.id, l]));
    for (const l of live) await this.track(l, poolOf(l));
    for (const r of this.records()) {
      if (r.released) continue;
      await this.settle(r.id, byId.get(r.id) ?? null);
    }
    await this.prune();
  }

  /** The node's condition from its files alone (call settle first). */
  condition(id: string): LocalNodeState {
    if (this.notices.terminated(id)) return 'terminated';
    return this.notices.notice(id) ? 'noticed' : 'ok';
  }

  /** Records that are not released but whose lease the API no longer lists (dead nodes). */
  dead(liveIds: ReadonlySet<string>): LocalLeaseRecord[] {
    return this.records().filter((r) => !r.released && !liveIds.has(r.id));
  }

  /** GPUs in use per node by running instances. */
  async usedGpus(): Promise<Map<string, number>> {
    const used = new Map<string, number>();
    for (const i of await this.procs.list()) if (i.state === 'running') used.set(i.node, (used.get(i.node) ?? 0) + i.gpus);
    return used;
  }

  /** The notice in force for a node (until its deadline), after settling it against the API. */
  async poll(id: string): Promise<Notice[]> {
    await this.settle(id);
    return this.notices.poll(id);
  }

  /** Kills what runs on the node and forgets it; idempotent. The caller releases the lease at molt. */
  async release(id: string): Promise<void> {
    const rec = this.record(id);
    if (!rec || rec.released) return;
    await this.procs.killNode(id);
    writeJsonAtomic(join(this.leasesDir, `${id}.json`), { ...rec, released: new Date(this.o.now()).toISOString() });
  }

  private async prune(): Promise<void> {
    const now = this.o.now();
    const used = await this.usedGpus();
    for (const r of this.records()) {
      if (r.released) continue;
      const dead = this.notices.terminated(r.id);
      if (!dead || (used.get(r.id) ?? 0) > 0) continue;
      const at = Date.parse(dead.at);
      if (!Number.isFinite(at) || now - at < DEAD_NODE_RETENTION_MS) continue;
      writeJsonAtomic(join(this.leasesDir, `${r.id}.json`), { ...r, released: new Date(now).toISOString() });
      rmSync(this.nodeDir(r.id), { recursive: true, force: true });
    }
  }

  private async admit(node: string, gpus: number, used: number): Promise<void> {
    const rec = this.record(node);
    if (!rec || rec.released) throw new ProviderError(this.o.provider, `no molt lease "${node}" runs on this host`);
    const l = await this.o.fetchLease(node);
    if ((await this.settle(node, l ?? null)) === 'terminated') throw new ProviderError(this.o.provider, `lease ${node} has ended (${l?.endReason ?? l?.status ?? 'unknown to the molt API'}); its host is gone`);
    if (l?.status === 'pending') throw new ProviderError(this.o.provider, `lease ${node} is still provisioning`, { retryable: true });
    if (l?.status === 'preempting') throw new ProviderError(this.o.provider, `lease ${node} is being preempted (deadline ${l.preemptAt ?? '?'}); place the workload elsewhere`);
    if (used + gpus > rec.gpus) throw new ProviderError(this.o.provider, `node ${node} has ${rec.gpus - used} of ${rec.gpus} GPUs free; the workload needs ${gpus}`);
  }
}
