// Capacity you buy becomes a node you run work on. A cloud driver (EC2, GCE, Azure, molt) knows how
// to list, launch and terminate its machines and what they cost; this module turns that into the
// provider capabilities the engine uses, the same way for every cloud:
//
// - acquire: tries the launch options cheapest first, skipping and remembering the ones the cloud
//   just had no capacity (or quota) for (ice-cache.ts); each launch carries a bootstrap script
//   (boot.ts) with spotfleet's public key and a host key it generated for that machine.
// - readiness: a lease is a node only once SSH answers with exactly that host key (pinned, never
//   trusted on first use) and `docker version` and nvidia-smi respond. A machine that is not ready
//   within the pool's `node.readyTimeout` of its launch is terminated and reported `terminated`
//   with an error naming it. Evaluated on every listing (level-triggered), so every process
//   (apply, watch, status) reaches the same verdict; verdicts are kept in the provider's data folder.
// - the ready nodes then form a dynamic NodeSet (src/providers/kit/ssh): the same docker-CLI
//   runtime, nvidia-smi inventory, checkpoint verification, rsync transfer and on-node notice
//   readers (IMDSv2, GCE metadata, Azure Scheduled Events) as a static ssh host.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nodeAddress } from '../../../core/address.js';
import { ProviderError, errorMessage } from '../../../core/errors.js';
import type { CapacityType, Lease, NodeAccess, NodeInfo, PriceQuote } from '../../../core/types.js';
import { roundUsd } from '../../../core/units.js';
import type {
  AcquireRequest,
  CapacityCapability,
  NodesCapability,
  NoticesCapability,
  PriceQuery,
  ProviderContext,
  ProviderPool,
  RuntimeCapability,
  StorageCapability,
} from '../../sdk.js';
import type { MetadataCloud } from '../metadata/index.js';
import { DockerCliRuntime, NodeSet, NVIDIA_SMI_ARGV, parseNvidiaSmi, type FleetNodeConfig } from '../ssh/index.js';
import { BootStore, bootScript, fingerprintOfPublicKey, generateEd25519, publicKeyBody, publicKeyOfIdentity, resolveKeyPath, type KeyPair } from './boot.js';
import { CapacityMissCache, DEFAULT_CAPACITY_MISS_TTL_MS, type CapacityMiss } from './ice-cache.js';

/** A machine as the cloud reports it: what its lease will say of it (pricePerHour for the whole machine), and more. */
export interface CloudInstance extends Pick<Lease, 'pool' | 'capacity' | 'gpuModel' | 'gpus' | 'zone' | 'pricePerHour'> {
  /** Instance id / VM name: the lease id and the node id. */
  id: string;
  /** ms epoch. */
  launchedAt: number;
  state: 'pending' | 'running' | 'stopping' | 'terminated';
  publicAddress?: string;
  privateAddress?: string;
  /** SSH port of the machine when the seller maps one (a marketplace host); default the pool's. */
  port?: number;
  /** The host key spotfleet injected (`ssh-ed25519 AAAA…`), as recorded on the instance. */
  hostKey?: string;
  idempotencyKey?: string;
  labels: Record<string, string>;
  /** The VM name the metadata service lists (Azure Scheduled Events `Resources`). */
  vmName?: string;
  /** Facts for `spotfleet nodes` (machine type, region, …). */
  meta: Record<string, string>;
  /** Why the cloud ended it (a spot reclaim), when it says. */
  stateReason?: string;
}

/** Something the cloud sells: a machine type in a zone on a capacity type, at a price. */
export interface CloudOffering {
  /** Instance type / machine type / VM size. */
  type: string;
  /** Absent: region-wide (the cloud picks the zone at launch). */
  zone?: string;
  capacity: CapacityType;
  gpuModel: string;
  gpus: number;
  /** USD per hour for the whole machine. */
  pricePerHour: number;
  /** ISO-8601 time of the price. */
  at: string;
  /** Where the price came from (`EC2 spot price history`, `AWS Price List API`, a dated table standing in). */
  source?: string;
  /** Sells any number of GPUs up to `gpus`, at the same price per GPU (a marketplace), not a fixed machine. */
  divisible?: boolean;
}

export interface LaunchRequest {
  req: AcquireRequest;
  /** The lease's address (`lease.<pool>`): what an error of the launch names. */
  address: string;
  pool: ProviderPool & { node: NodeAccess };
  option: CloudOffering;
  /** Spot price cap, USD per hour for the whole machine (spot launches). */
  maxPricePerHour?: number;
  /** The bootstrap script: EC2 user-data, GCE startup-script, Azure customData. */
  bootScript: string;
  /** `ssh-ed25519 AAAA…`: record it on the instance (tag, metadata item). */
  hostKeyPublic: string;
  /** spotfleet's login public key (for clouds that want one in the VM definition, as Azure does). */
  loginKey: string;
  /** Stable per idempotency key and option: the cloud's own idempotency token / instance name seed. */
  token: string;
}

/**
 * What a machine records of the idempotency key that bought it (a tag, label or metadata item):
 * a digest, so it fits every cloud's label rules (GCE: lowercase, 63 characters).
 */
export function idempotencyDigest(key: string): string {
  return `k${createHash('sha256').update(key).digest('hex').slice(0, 40)}`;
}

/** What a capacity or quota error means for the next launch. */
export interface CapacityErrorInfo {
  code: string;
  message: string;
  /** `zone`: this type in this zone; `region`: this type anywhere (a quota); `all`: every type (a family quota). */
  scope: 'zone' | 'region' | 'all';
}

/** One cloud's side: how to list, sell, launch and end machines. */
export interface CloudDriver {
  /** Whose metadata service the nodes' notices come from (none: the provider reads notices elsewhere, as molt does from its API). */
  readonly cloud?: MetadataCloud;
  /** How errors name the cloud: `EC2`, `GCE`, `Azure`. */
  readonly label: string;
  /** How errors name one machine of it; default `instance` (molt: `lease`). */
  readonly noun?: string;
  /** This fleet's machines (tagged/labelled with the fleet), not yet gone. */
  list(): Promise<CloudInstance[]>;
  /** What can be bought now, for prices and launch options. */
  offerings(query: PriceQuery): Promise<CloudOffering[]>;
  launch(l: LaunchRequest): Promise<CloudInstance>;
  /** Idempotent: a machine that is already gone is terminated. */
  terminate(id: string): Promise<void>;
  /**
   * Machines by id, whatever their state (a cloud that still shows ended ones, with the reason it
   * ended them): asked only for a machine this process launched a moment ago that `list` no longer
   * shows, so its lease ends with the cloud's reason rather than vanishing. Ids the cloud does not
   * know (yet) are left out.
   */
  describe?(ids: string[]): Promise<CloudInstance[]>;
  /** A capacity or quota error (try the next option), or undefined for any other failure. */
  capacityError(e: unknown): CapacityErrorInfo | undefined;
  close?(): Promise<void>;
}

export interface LeasedNodesOptions {
  ctx: ProviderContext;
  driver: CloudDriver;
  /** How long a capacity miss is remembered; default 3 min. */
  capacityMissTtlMs?: number;
  /** SSH handshake limit of one readiness probe; default 8 s. */
  probeTimeoutMs?: number;
  /** Least time between two readiness probes of one machine; default 2 s. */
  probeIntervalMs?: number;
}

interface NodeRecord {
  id: string;
  /** ms epoch when it became ready. */
  readyAt?: number;
  failed?: { at: number; error: string };
  /** The machine as it was when it failed: its lease is still reported (terminated) once the cloud no longer lists it. */
  instance?: CloudInstance;
}

/** The transfer key's authorized_keys line carries `restrict`: rsync needs no pty or forwarding. */
const TRANSFER_KEY_OPTIONS = 'restrict';
/** Where a node keeps the fleet's transfer key and the host keys of nodes it pulls from. */
export const NODE_TRANSFER_KEY = '~/.ssh/spotfleet_transfer';
export const NODE_KNOWN_HOSTS = '~/.ssh/spotfleet_known_hosts';

type Access = ProviderPool & { node: NodeAccess };

const fmtDuration = (ms: number): string => (ms % 60_000 === 0 ? `${ms / 60_000}m` : `${Math.round(ms / 1000)}s`);

/**
 * The capabilities of a capacity provider whose leases become SSH + Docker nodes.
 * @example
 * const leased = new LeasedNodes({ ctx, driver: ec2Driver });
 * return { name: ctx.name, type: 'aws', ...leased.capabilities() };
 */
export class LeasedNodes {
  readonly set: NodeSet;
  readonly runtime: DockerCliRuntime;
  private readonly ctx: ProviderContext;
  private readonly driver: CloudDriver;
  private readonly misses: CapacityMissCache;
  private readonly boot: BootStore;
  private readonly recordsDir: string;
  private readonly ready = new Set<string>();
  private readonly probing = new Map<string, Promise<void>>();
  private readonly lastProbe = new Map<string, { at: number; error: string }>();
  private readonly transferKeyOn = new Set<string>();
  private transferKey: KeyPair | undefined;
  private inflight: Promise<CloudInstance[]> | undefined;
  private queued: Promise<CloudInstance[]> | undefined;
  private last: CloudInstance[] = [];
  /**
   * Machines this process launched and that are not ready nodes yet, with when: one that leaves the
   * listing is asked for by id (forgotten once ready, released, or an hour old).
   */
  private readonly launched = new Map<string, number>();

  constructor(private readonly o: LeasedNodesOptions) {
    this.ctx = o.ctx;
    this.driver = o.driver;
    this.misses = new CapacityMissCache(join(o.ctx.dataDir, 'capacity-misses.json'), o.capacityMissTtlMs ?? DEFAULT_CAPACITY_MISS_TTL_MS, () => o.ctx.now());
    this.boot = new BootStore(join(o.ctx.dataDir, 'boot'));
    this.recordsDir = join(o.ctx.dataDir, 'nodes');
    this.set = new NodeSet({
      provider: o.ctx.name,
      nodes: [],
      specDir: o.ctx.specDir,
      log: o.ctx.log,
      env: o.ctx.env,
      transfer: { identityFile: NODE_TRANSFER_KEY, knownHostsFile: NODE_KNOWN_HOSTS },
      placedGpus: () => this.runtime.placedGpus(),
      beforeTransfer: async (from, to) => {
        await Promise.all([this.ensureTransferKey(from), this.ensureTransferKey(to)]);
      },
    });
    this.runtime = new DockerCliRuntime({
      provider: o.ctx.name,
      fleet: o.ctx.fleet,
      nodes: this.set,
      listNodes: () => [...this.ready].sort(),
      nvidiaNodes: (n) => this.set.has(n) && this.set.node(n).nvidiaRuntime === true,
    });
  }

  // -- pools ---------------------------------------------------------------------------------------

  /** The pool with its node access; a pool that says nothing of its nodes cannot buy any. */
  pool(name: string, address?: string): Access {
    const p = (this.ctx.pools ?? []).find((x) => x.name === name);
    if (!p) throw new ProviderError(this.ctx.name, `pool "${name}" is not a pool of this provider in the fleet`, address !== undefined ? { address } : {});
    if (!p.node) throw new ProviderError(this.ctx.name, `pool "${name}" does not say how its nodes are reached (pools[].node: { via: ssh, user, identityFile })`, address !== undefined ? { address } : {});
    return p as Access;
  }

  private poolOf(inst: CloudInstance): Access | undefined {
    const p = (this.ctx.pools ?? []).find((x) => x.name === inst.pool);
    return p?.node ? (p as Access) : undefined;
  }

  // -- records -------------------------------------------------------------------------------------

  private recordPath(id: string): string {
    return join(this.recordsDir, `${id.replace(/[^A-Za-z0-9_.-]/g, '_')}.json`);
  }

  private record(id: string): NodeRecord | undefined {
    const p = this.recordPath(id);
    if (!existsSync(p)) return undefined;
    try {
      return JSON.parse(readFileSync(p, 'utf8')) as NodeRecord;
    } catch {
      return undefined;
    }
  }

  private writeRecord(r: NodeRecord): void {
    mkdirSync(this.recordsDir, { recursive: true, mode: 0o700 });
    const p = this.recordPath(r.id);
    const tmp = `${p}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(r), { mode: 0o600 });
    renameSync(tmp, p);
  }

  private forgetRecord(id: string): void {
    rmSync(this.recordPath(id), { force: true });
  }

  // -- listing and readiness -------------------------------------------------------------------------

  /**
   * Lists the machines and brings each one's verdict up to date: probes the ones not ready yet,
   * terminates the ones past their ready timeout. Concurrent callers share one run, but never one
   * that began before they asked: a run under way may have listed before the caller's own change
   * (a release a moment ago), so a caller that finds one waits for it and shares the next.
   */
  sync(): Promise<CloudInstance[]> {
    if (this.inflight === undefined) return this.startSync();
    this.queued ??= this.inflight
      .catch(() => undefined)
      .then(() => {
        this.queued = undefined;
        return this.inflight ?? this.startSync();
      });
    return this.queued;
  }

  private startSync(): Promise<CloudInstance[]> {
    const run: Promise<CloudInstance[]> = (async () => {
      const list = await this.driver.list();
      await Promise.all(list.map((i) => this.settle(i)));
      const live = new Set(list.map((i) => i.id));
      for (const id of [...this.ready]) {
        if (!live.has(id)) {
          this.ready.delete(id);
          this.set.remove(id);
        }
      }
      this.gcRecords(live);
      this.last = list;
      return list;
    })().finally(() => {
      if (this.inflight === run) this.inflight = undefined;
    });
    this.inflight = run;
    return run;
  }

  /** Machines that failed their readiness and that the cloud no longer lists, as they were. */
  private failedGone(live: Set<string>): CloudInstance[] {
    if (!existsSync(this.recordsDir)) return [];
    const out: CloudInstance[] = [];
    for (const f of readdirSync(this.recordsDir)) {
      if (!f.endsWith('.json')) continue;
      const r = this.record(f.slice(0, -5));
      if (r?.failed && r.instance && !live.has(r.id)) out.push({ ...r.instance, state: 'terminated' });
    }
    return out;
  }

  /**
   * Machines launched here in the last hour that the listing no longer shows and no verdict of
   * ours explains: the cloud ended them (a launch that failed, a spot machine taken at once), so
   * they are asked for by id and reported terminated with the cloud's reason.
   */
  private async endedAtLaunch(live: Set<string>, failed: CloudInstance[]): Promise<CloudInstance[]> {
    const now = this.ctx.now();
    for (const [id, at] of this.launched) if (now - at > 3_600_000) this.launched.delete(id);
    const explained = new Set(failed.map((i) => i.id));
    const ids = [...this.launched.keys()].filter((id) => !live.has(id) && !explained.has(id));
    if (ids.length === 0 || !this.driver.describe) return [];
    let found: CloudInstance[];
    try {
      found = await this.driver.describe(ids);
    } catch (e) {
      this.ctx.log.debug('could not ask for machines that left the listing', { provider: this.ctx.name, nodes: ids, error: errorMessage(e) });
      return [];
    }
    return found.filter((i) => i.state === 'terminated' || i.state === 'stopping').map((i) => ({ ...i, state: 'terminated' as const }));
  }

  /** Records of machines the cloud no longer lists are dropped (their verdicts served their turn). */
  private gcRecords(live: Set<string>): void {
    if (!existsSync(this.recordsDir)) return;
    for (const f of readdirSync(this.recordsDir)) {
      if (!f.endsWith('.json')) continue;
      const r = this.record(f.slice(0, -5));
      if (r && !live.has(r.id) && this.ctx.now() - (r.failed?.at ?? r.readyAt ?? 0) > 3_600_000) this.forgetRecord(r.id);
    }
  }

  private async settle(inst: CloudInstance): Promise<void> {
    const rec = this.record(inst.id);
    if (rec?.failed || inst.state === 'terminated' || inst.state === 'stopping') {
      if (this.ready.delete(inst.id)) this.set.remove(inst.id);
      return;
    }
    const pool = this.poolOf(inst);
    if (!pool) return;
    if (inst.state === 'running' && rec?.readyAt !== undefined) {
      const cfg = this.nodeConfig(inst, pool);
      if (cfg) {
        this.set.add(cfg);
        this.ready.add(inst.id);
        return;
      }
    }
    if (inst.state === 'running' && !this.ready.has(inst.id)) await this.probe(inst, pool);
    if (this.ready.has(inst.id)) return;
    const age = this.ctx.now() - inst.launchedAt;
    if (age > pool.node.readyTimeoutMs) {
      const last = this.lastProbe.get(inst.id)?.error ?? (inst.state === 'pending' ? `it is still ${inst.state}` : 'it was never probed');
      await this.fail(inst, `${this.driver.label} ${this.driver.noun ?? 'instance'} ${inst.id} (pool ${inst.pool}${inst.zone ? `, ${inst.zone}` : ''}) did not become a ready node within ${fmtDuration(pool.node.readyTimeoutMs)} of its launch: ${last}; spotfleet terminated it`);
    }
  }

  /** How the set reaches a machine: its address, the pinned host key, the pool's login. */
  private nodeConfig(inst: CloudInstance, pool: Access): FleetNodeConfig | undefined {
    const a = pool.node;
    const host = a.address === 'public' ? inst.publicAddress : a.address === 'private' ? inst.privateAddress : inst.publicAddress ?? inst.privateAddress;
    if (host === undefined || inst.hostKey === undefined) return undefined;
    const n: FleetNodeConfig = {
      name: inst.id,
      capacity: inst.capacity,
      pricePerHour: inst.pricePerHour,
      gpuModel: inst.gpuModel,
      gpus: inst.gpus,
      // Nodes of one provider share a network: transfers go node to node on the private address.
      transferAddress: inst.privateAddress ?? host,
      ssh: {
        host,
        port: inst.port ?? a.port,
        user: a.user,
        identityFile: a.identityFile,
        hostKeyFingerprint: fingerprintOfPublicKey(inst.hostKey),
        hostKeyAlgorithms: [publicKeyBody(inst.hostKey).split(' ')[0] ?? 'ssh-ed25519'],
        readyTimeoutMs: this.o.probeTimeoutMs ?? 8000,
      },
    };
    if (inst.zone !== undefined) n.zone = inst.zone;
    if (this.driver.cloud !== undefined) n.cloud = this.driver.cloud;
    if (a.checkpointRoot !== undefined) n.checkpointRoot = a.checkpointRoot;
    if (a.metadataUrl !== undefined) n.metadataUrl = a.metadataUrl;
    if (a.nvidiaRuntime !== undefined) n.nvidiaRuntime = a.nvidiaRuntime;
    if (inst.vmName !== undefined) n.vmName = inst.vmName;
    return n;
  }

  private probe(inst: CloudInstance, pool: Access): Promise<void> {
    const seen = this.probing.get(inst.id);
    if (seen) return seen;
    const last = this.lastProbe.get(inst.id);
    if (last && this.ctx.now() - last.at < (this.o.probeIntervalMs ?? 2000)) return Promise.resolve();
    const p = (async () => {
      const why = await this.probeOnce(inst, pool);
      if (why === undefined) {
        this.ready.add(inst.id);
        this.lastProbe.delete(inst.id);
        // Past its launch: from now on a machine that leaves the listing has simply ended.
        this.launched.delete(inst.id);
        this.writeRecord({ id: inst.id, readyAt: this.ctx.now() });
        if (inst.idempotencyKey !== undefined) this.boot.forget(inst.idempotencyKey);
        this.ctx.log.info('bought node is ready', { provider: this.ctx.name, node: inst.id, pool: inst.pool, zone: inst.zone, capacity: inst.capacity, readyMs: this.ctx.now() - inst.launchedAt });
      } else {
        this.lastProbe.set(inst.id, { at: this.ctx.now(), error: why });
        this.ctx.log.debug('bought node not ready yet', { provider: this.ctx.name, node: inst.id, error: why });
      }
    })().finally(() => this.probing.delete(inst.id));
    this.probing.set(inst.id, p);
    return p;
  }

  /** Undefined when the machine is a ready node, else why not. */
  private async probeOnce(inst: CloudInstance, pool: Access): Promise<string | undefined> {
    if (inst.hostKey === undefined) return `it carries no spotfleet host key, so its SSH host cannot be verified`;
    const cfg = this.nodeConfig(inst, pool);
    if (!cfg) return `it has no ${pool.node.address === 'auto' ? '' : `${pool.node.address} `}address yet`;
    this.set.add(cfg);
    const where = `${cfg.ssh?.user ?? 'root'}@${cfg.ssh?.host ?? '?'}:${cfg.ssh?.port ?? 22}`;
    try {
      await this.set.pool.connect(inst.id);
      const d = await this.set.exec(inst.id, ['docker', 'version', '--format', '{{.Server.Version}}'], { timeoutMs: 15_000 });
      if (d.code !== 0) return `docker does not answer on ${where} (exit ${d.code}: ${d.stderr.trim().split('\n').pop()?.slice(0, 200) ?? ''})`;
      const g = await this.set.exec(inst.id, NVIDIA_SMI_ARGV, { timeoutMs: 20_000 });
      if (g.code !== 0) return `nvidia-smi does not answer on ${where} (exit ${g.code}: ${g.stderr.trim().split('\n').pop()?.slice(0, 200) ?? ''})`;
      let gpus: number;
      try {
        gpus = parseNvidiaSmi(g.stdout).length;
      } catch (e) {
        return `nvidia-smi on ${where} printed something unexpected: ${errorMessage(e)}`;
      }
      if (gpus === 0) return `nvidia-smi on ${where} lists no GPU`;
      await this.ensureTransferKey(inst.id);
      return undefined;
    } catch (e) {
      this.set.pool.disconnect(inst.id);
      const m = errorMessage(e).replace(/^provider "[^"]*" \([^)]*\): /, '');
      return /pinned fingerprint/.test(m) ? `SSH at ${where} presented a different host key than the one spotfleet injected (${m.replace(/^.*?: host key/, 'host key')})` : m;
    }
  }

  private async fail(inst: CloudInstance, error: string): Promise<void> {
    this.writeRecord({ id: inst.id, failed: { at: this.ctx.now(), error }, instance: { ...inst, labels: { ...inst.labels }, meta: { ...inst.meta } } });
    this.ready.delete(inst.id);
    this.set.remove(inst.id);
    this.ctx.log.error('bought node never became ready; terminating it', { provider: this.ctx.name, node: inst.id, pool: inst.pool, error });
    try {
      await this.driver.terminate(inst.id);
    } catch (e) {
      // The verdict stands; the next listing tries the termination again.
      this.ctx.log.error('terminating a machine that never became ready failed; will retry', { provider: this.ctx.name, node: inst.id, error: errorMessage(e) });
      this.forgetRecord(inst.id);
      throw new ProviderError(this.ctx.name, `${error.replace(/; spotfleet terminated it$/, '')}; terminating it failed: ${errorMessage(e)}`, { address: nodeAddress(this.ctx.name, inst.id), retryable: true, cause: e });
    }
    if (inst.idempotencyKey !== undefined) this.boot.forget(inst.idempotencyKey);
  }

  /** Makes sure the set knows a node (a command in a new process may name it before any listing). */
  async ensure(node: string): Promise<void> {
    if (this.ready.has(node)) return;
    await this.sync();
    if (!this.ready.has(node)) {
      const rec = this.record(node);
      const why = rec?.failed?.error ?? this.lastProbe.get(node)?.error;
      throw new ProviderError(this.ctx.name, `node "${node}" is not a ready node of this provider${why ? `: ${why}` : ''}`, { address: nodeAddress(this.ctx.name, node) });
    }
  }

  // -- the fleet's transfer key ---------------------------------------------------------------------

  /** The fleet's key for node-to-node rsync: made once, kept 0600 in the data folder. */
  private fleetTransferKey(): KeyPair {
    if (this.transferKey) return this.transferKey;
    const f = join(this.ctx.dataDir, 'transfer-key.json');
    if (existsSync(f)) {
      try {
        const k = JSON.parse(readFileSync(f, 'utf8')) as KeyPair;
        if (typeof k.private === 'string' && typeof k.public === 'string') return (this.transferKey = k);
      } catch {
        // remade below
      }
    }
    const k = generateEd25519(`spotfleet-transfer-${this.ctx.fleet}`);
    mkdirSync(this.ctx.dataDir, { recursive: true, mode: 0o700 });
    writeFileSync(f, JSON.stringify(k), { mode: 0o600 });
    return (this.transferKey = k);
  }

  /**
   * Puts the fleet's transfer key on a node (sent over the verified SSH session, never in a launch
   * script): the private half for pulling from other nodes, the public half, restricted, in the
   * login user's authorized_keys so other nodes can pull from it.
   */
  private async ensureTransferKey(node: string): Promise<void> {
    if (this.transferKeyOn.has(node)) return;
    const k = this.fleetTransferKey();
    const line = `${TRANSFER_KEY_OPTIONS} ${publicKeyBody(k.public)} spotfleet-transfer`;
    const script = 'umask 077 && mkdir -p "$HOME/.ssh" && cat > "$HOME/.ssh/spotfleet_transfer" && touch "$HOME/.ssh/authorized_keys" && { grep -qxF "$1" "$HOME/.ssh/authorized_keys" || printf "%s\\n" "$1" >> "$HOME/.ssh/authorized_keys"; }';
    const r = await this.set.exec(node, ['sh', '-c', script, 'sh', line], { stdin: k.private.endsWith('\n') ? k.private : `${k.private}\n`, timeoutMs: 20_000 });
    if (r.code !== 0) throw this.set.pool.fail(node, `cannot install the fleet's transfer key: ${r.stderr.trim().slice(0, 300)}`, { retryable: true });
    this.transferKeyOn.add(node);
  }

  // -- capabilities ---------------------------------------------------------------------------------

  private toLease(inst: CloudInstance): Lease {
    const rec = this.record(inst.id);
    const lease: Lease = {
      id: inst.id,
      provider: this.ctx.name,
      pool: inst.pool,
      capacity: inst.capacity,
      gpuModel: inst.gpuModel,
      gpus: inst.gpus,
      pricePerHour: inst.pricePerHour,
      acquiredAt: new Date(inst.launchedAt).toISOString(),
      state: 'pending',
      labels: { ...inst.labels },
    };
    if (inst.zone !== undefined) lease.zone = inst.zone;
    if (rec?.failed) {
      lease.state = 'terminated';
      lease.error = rec.failed.error;
    } else if (inst.state === 'terminated' || inst.state === 'stopping') {
      lease.state = 'terminated';
      if (inst.stateReason !== undefined) lease.error = `${this.driver.label} ${this.driver.noun ?? 'instance'} ${inst.id}: ${inst.stateReason}`;
    } else if (this.ready.has(inst.id)) {
      lease.state = 'active';
      lease.node = inst.id;
    }
    return lease;
  }

  private async launchOptions(req: AcquireRequest, pool: Access): Promise<{ options: { o: CloudOffering; max?: number }[]; skipped: string[] }> {
    // The planner's zone is tried first; the pool's other zones are the next options when it has
    // no capacity (the price cap still bounds what they may cost).
    const zones = pool.zones;
    const all = await this.driver.offerings({ gpuModel: req.gpuModel });
    const fits = all.filter((o) => o.gpuModel.toLowerCase() === req.gpuModel.toLowerCase() && o.gpus >= req.gpus);
    // The smallest machine type that fits; a divisible offering sells exactly what is asked.
    const fewest = Math.min(...fits.filter((o) => !o.divisible).map((o) => o.gpus));
    const skipped: string[] = [];
    const options: { o: CloudOffering; max?: number }[] = [];
    const onDemandOf = (type: string): number | undefined => all.filter((o) => o.type === type && o.capacity === 'on-demand').map((o) => o.pricePerHour).sort((a, b) => a - b)[0];
    // A region-wide offering in a pool limited to zones is bought in each of those zones.
    const expanded = fits.flatMap((o) => (zones && o.zone === undefined ? zones.map((zone) => ({ ...o, zone })) : [o]));
    for (const o of expanded) {
      if ((!o.divisible && o.gpus !== fewest) || o.capacity !== req.capacity) continue;
      if (zones && o.zone !== undefined && !zones.includes(o.zone)) continue;
      const perGpu = o.pricePerHour / o.gpus;
      const where = `${o.type}${o.zone ? ` in ${o.zone}` : ''}`;
      const miss = this.misses.missed({ capacity: o.capacity, type: o.type, zone: o.zone ?? '*' });
      if (miss) {
        skipped.push(`${where}: ${miss.code} ${Math.max(0, Math.round((this.ctx.now() - miss.at) / 1000))}s ago, skipped for ${Math.max(1, Math.round((miss.until - this.ctx.now()) / 1000))}s more`);
        continue;
      }
      if (o.capacity === 'spot') {
        const od = onDemandOf(o.type);
        const capPerGpu = req.bidPerGpuHour ?? Math.min(req.maxPricePerGpuHour ?? Infinity, od !== undefined ? od / o.gpus : Infinity);
        if (Number.isFinite(capPerGpu) && perGpu > capPerGpu) {
          skipped.push(`${where}: spot $${roundUsd(perGpu)}/GPU-h is above the cap $${roundUsd(capPerGpu)}/GPU-h`);
          continue;
        }
        options.push(Number.isFinite(capPerGpu) ? { o, max: roundUsd(capPerGpu * o.gpus) } : { o });
      } else {
        if (req.maxPricePerGpuHour !== undefined && perGpu > req.maxPricePerGpuHour) {
          skipped.push(`${where}: on-demand $${roundUsd(perGpu)}/GPU-h is above the pool cap $${req.maxPricePerGpuHour}/GPU-h`);
          continue;
        }
        options.push({ o });
      }
    }
    const first = (o: CloudOffering): number => (req.zone !== undefined && o.zone === req.zone ? 0 : 1);
    options.sort((a, b) => first(a.o) - first(b.o) || a.o.pricePerHour - b.o.pricePerHour || a.o.type.localeCompare(b.o.type) || (a.o.zone ?? '').localeCompare(b.o.zone ?? ''));
    return { options, skipped };
  }

  /** Acquire, release, leases and prices. */
  capacity(): CapacityCapability {
    return {
      prices: (query) => this.prices(query),
      acquire: (req) => this.acquire(req),
      release: (id) => this.release(id),
      leases: async () => {
        const list = await this.sync();
        const live = new Set(list.map((i) => i.id));
        // A machine that never became ready stays a terminated lease with its error after the cloud
        // stops listing it (for an hour), so whoever waits on it learns why instead of timing out.
        const failed = this.failedGone(live);
        return [...list, ...failed, ...(await this.endedAtLaunch(live, failed))].map((i) => this.toLease(i)).sort((a, b) => a.id.localeCompare(b.id));
      },
    };
  }

  /**
   * Quotes per GPU-hour, cheapest per (model, capacity, zone); an offering the cloud just had no
   * capacity for is quoted unavailable until its miss expires.
   */
  async prices(query: PriceQuery): Promise<PriceQuote[]> {
    const offers = await this.driver.offerings(query);
    const best = new Map<string, PriceQuote>();
    for (const o of offers) {
      if (query.capacity !== undefined && o.capacity !== query.capacity) continue;
      if (query.gpuModel !== undefined && o.gpuModel.toLowerCase() !== query.gpuModel.toLowerCase()) continue;
      if (query.zones !== undefined && o.zone !== undefined && !query.zones.includes(o.zone)) continue;
      const available = this.misses.missed({ capacity: o.capacity, type: o.type, zone: o.zone ?? '*' }) === undefined;
      const q: PriceQuote = { provider: this.ctx.name, gpuModel: o.gpuModel, capacity: o.capacity, pricePerGpuHour: roundUsd(o.pricePerHour / o.gpus), available, at: o.at };
      if (o.zone !== undefined) q.zone = o.zone;
      if (o.source !== undefined) q.source = o.source;
      const k = `${q.gpuModel}|${q.capacity}|${q.zone ?? ''}`;
      const seen = best.get(k);
      if (!seen || (q.available && !seen.available) || (q.available === seen.available && q.pricePerGpuHour < seen.pricePerGpuHour)) best.set(k, q);
    }
    return [...best.values()].sort((a, b) => a.pricePerGpuHour - b.pricePerGpuHour || a.gpuModel.localeCompare(b.gpuModel) || a.capacity.localeCompare(b.capacity) || (a.zone ?? '').localeCompare(b.zone ?? ''));
  }

  /** The capacity misses in force (for `spotfleet nodes`). */
  capacityMisses(): CapacityMiss[] {
    return this.misses.list();
  }

  /** Whether an offering just had no capacity (a provider that quotes prices its own way marks it unavailable). */
  missed(capacity: CapacityType, type: string, zone: string | undefined): boolean {
    return this.misses.missed({ capacity, type, zone: zone ?? '*' }) !== undefined;
  }

  async acquire(req: AcquireRequest, again = false): Promise<Lease> {
    const address = `lease.${req.pool}`;
    const pool = this.pool(req.pool, address);
    // Same key, same lease: a machine launched under this key by an earlier (maybe interrupted) apply wins.
    const digest = idempotencyDigest(req.idempotencyKey);
    // A machine that has ended (released, reclaimed, never ready) is no answer: the key buys anew,
    // with new launch material (a new token: the old one names the ended machine).
    const mine = (await this.sync()).filter((i) => i.idempotencyKey === digest);
    const existing = mine.find((i) => i.state !== 'terminated' && i.state !== 'stopping' && !this.record(i.id)?.failed);
    if (existing) return this.toLease(existing);
    if (mine.length > 0) this.boot.forget(digest);

    let login: string;
    try {
      login = publicKeyOfIdentity(resolveKeyPath(pool.node.identityFile, this.ctx.specDir));
    } catch (e) {
      throw new ProviderError(this.ctx.name, `pool "${req.pool}": node.identityFile: ${errorMessage(e)}`, { address });
    }
    const { options, skipped } = await this.launchOptions(req, pool);
    if (options.length === 0) {
      throw new ProviderError(this.ctx.name, `no ${req.capacity} ${this.driver.label} capacity for ${req.gpus}× ${req.gpuModel} in pool ${req.pool}${skipped.length ? `: ${skipped.join('; ')}` : ' (no machine type of that model is configured or sold there)'}`, { address, retryable: skipped.length > 0 });
    }
    const { hostKey, nonce } = this.boot.materialFor(digest, `spotfleet-host ${this.ctx.fleet}/${req.pool}`);
    const transfer = this.fleetTransferKey();
    const script = bootScript({ fleet: this.ctx.fleet, pool: req.pool, user: pool.node.user, hostKey, authorizedKeys: [login, `${TRANSFER_KEY_OPTIONS} ${publicKeyBody(transfer.public)} spotfleet-transfer`] });
    const tried: string[] = [...skipped];
    for (const { o, max } of options) {
      const where = `${o.type}${o.zone ? ` in ${o.zone}` : ''}`;
      const token = createHash('sha256').update(`${req.idempotencyKey}|${nonce}|${o.capacity}|${o.type}|${o.zone ?? ''}`).digest('hex').slice(0, 32);
      const l: LaunchRequest = { req, address, pool, option: o, bootScript: script, hostKeyPublic: publicKeyBody(hostKey.public), loginKey: login, token };
      if (max !== undefined) l.maxPricePerHour = max;
      try {
        const inst = await this.driver.launch(l);
        if ((inst.state === 'terminated' || inst.state === 'stopping') && !again) {
          // The cloud answered the token with a machine that already ended (its end went unseen):
          // that launch is over; buy anew with new material.
          this.boot.forget(digest);
          return this.acquire(req, true);
        }
        this.ctx.log.info('machine launched', { provider: this.ctx.name, pool: req.pool, node: inst.id, type: o.type, zone: inst.zone ?? o.zone, capacity: o.capacity, pricePerHour: inst.pricePerHour });
        this.launched.set(inst.id, this.ctx.now());
        return this.toLease(inst);
      } catch (e) {
        const miss = this.driver.capacityError(e);
        if (!miss) throw e instanceof ProviderError ? e : new ProviderError(this.ctx.name, `${this.driver.label} launch of ${where} failed: ${errorMessage(e)}`, { address, cause: e });
        const zone = miss.scope === 'zone' ? o.zone ?? '*' : '*';
        this.misses.remember({ capacity: o.capacity, type: miss.scope === 'all' ? '*' : o.type, zone }, miss.code, miss.message);
        tried.push(`${where}: ${miss.code} (${miss.message.slice(0, 160)})`);
        this.ctx.log.warn('no capacity; trying the next option', { provider: this.ctx.name, pool: req.pool, type: o.type, zone: o.zone, code: miss.code });
      }
    }
    throw new ProviderError(this.ctx.name, `no ${req.capacity} ${this.driver.label} capacity for ${req.gpus}× ${req.gpuModel} in pool ${req.pool} now: ${tried.join('; ')}`, { address, retryable: true });
  }

  async release(leaseId: string): Promise<void> {
    // The key that bought it: its launch material goes with it, so the key can buy anew later.
    const known = this.last.find((i) => i.id === leaseId) ?? (await this.sync().catch(() => [] as CloudInstance[])).find((i) => i.id === leaseId);
    await this.driver.terminate(leaseId);
    this.launched.delete(leaseId);
    if (known?.idempotencyKey !== undefined) this.boot.forget(known.idempotencyKey);
    this.ready.delete(leaseId);
    this.set.remove(leaseId);
    this.transferKeyOn.delete(leaseId);
    const rec = this.record(leaseId);
    if (rec && !rec.failed) this.forgetRecord(leaseId);
  }

  /** Nodes: every machine of the fleet; ready ones with their nvidia-smi facts. */
  nodes(): NodesCapability {
    return {
      list: async () => {
        const list = await this.sync();
        const facts = new Map((await this.set.list([...this.ready])).map((n) => [n.id, n]));
        return list
          .map((inst): NodeInfo => {
            const lease = this.toLease(inst);
            const seen = facts.get(inst.id);
            const n: NodeInfo = seen
              ? { ...seen }
              : { id: inst.id, provider: this.ctx.name, gpuModel: inst.gpuModel, gpus: inst.gpus, gpusFree: 0, capacity: inst.capacity, pricePerHour: inst.pricePerHour, state: lease.state === 'terminated' ? 'terminated' : 'provisioning' };
            n.provider = this.ctx.name;
            n.capacity = inst.capacity;
            n.pricePerHour = inst.pricePerHour;
            n.leaseId = inst.id;
            n.pool = inst.pool;
            if (inst.zone !== undefined) n.zone = inst.zone;
            const meta: Record<string, string | number | boolean> = { ...inst.meta, ...(seen?.meta ?? {}), cloud: this.driver.cloud ?? this.driver.label };
            if (inst.privateAddress !== undefined) meta.privateIp = inst.privateAddress;
            if (inst.publicAddress !== undefined) meta.publicIp = inst.publicAddress;
            if (lease.error !== undefined) meta.error = lease.error;
            else if (!this.ready.has(inst.id) && this.lastProbe.has(inst.id)) meta.notReady = this.lastProbe.get(inst.id)?.error ?? '';
            n.meta = meta;
            return n;
          })
          .sort((a, b) => a.id.localeCompare(b.id));
      },
      exec: async (node, argv, o) => {
        await this.ensure(node);
        return this.set.exec(node, argv, o?.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {});
      },
    };
  }

  runtimeCapability(): RuntimeCapability {
    const rt = this.runtime;
    return {
      list: async () => {
        await this.sync();
        return rt.list();
      },
      start: async (req) => {
        await this.ensure(req.node);
        return rt.start(req);
      },
      signal: async (n, id, s) => {
        await this.ensure(n);
        return rt.signal(n, id, s);
      },
      stop: async (n, id, g) => {
        await this.ensure(n);
        return rt.stop(n, id, g);
      },
      logs: async (n, id, o) => {
        await this.ensure(n);
        return rt.logs(n, id, o);
      },
      remove: async (n, id) => {
        await this.ensure(n);
        return rt.remove(n, id);
      },
    };
  }

  storage(): StorageCapability {
    return {
      verify: async (req) => {
        await this.ensure(req.node.id);
        return this.set.verify(req);
      },
      transfer: async (req) => {
        await Promise.all([this.ensure(req.from.id), this.ensure(req.to.id)]);
        return this.set.transfer(req);
      },
      canTransfer: (a, b) => a.provider === b.provider && a.provider === this.ctx.name,
    };
  }

  /** Eviction notices, read on the node over SSH from its cloud's metadata service. */
  notices(): NoticesCapability {
    return {
      poll: async (node) => {
        if (!this.ready.has(node.id)) {
          if (!this.last.some((i) => i.id === node.id)) await this.sync();
          if (!this.ready.has(node.id)) return [];
        }
        try {
          return await this.set.poll(node);
        } catch (e) {
          // Released while the poll was on its way (its connection was dropped): nothing to report.
          if (!this.ready.has(node.id)) return [];
          throw e;
        }
      },
      acknowledge: async (node, notice) => {
        if (this.ready.has(node.id)) await this.set.acknowledge(node, notice);
      },
    };
  }

  /** Every capability at once, for a provider object. */
  capabilities(): { capacity: CapacityCapability; nodes: NodesCapability; runtime: RuntimeCapability; storage: StorageCapability; notices: NoticesCapability } {
    return { capacity: this.capacity(), nodes: this.nodes(), runtime: this.runtimeCapability(), storage: this.storage(), notices: this.notices() };
  }

  async close(): Promise<void> {
    await this.set.close();
    await this.driver.close?.();
  }
}
