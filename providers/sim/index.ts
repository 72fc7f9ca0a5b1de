// The `sim` provider: a spot market replayed from a trace (src/core/trace.ts) on a clock that runs
// in real time or scaled. Acquire turns into a lease whose node is a folder on this machine
// (processes via kit/process-runtime, checkpoints via kit/localfs-storage). A spot lease whose zone
// becomes unavailable in the trace gets a preemption notice at that simulated moment, with a
// wall-clock notice window (workloads are real processes), and dies at the deadline. Everything is
// evaluated lazily on each call from files in the data folder, so every CLI run agrees.
import { mkdirSync, openSync, closeSync, readdirSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { ProviderError } from '../../src/core/errors.js';
import { loadSpotTrace, sliceTrace } from '../../src/core/trace.js';
import type { CapacityType, Lease, NodeInfo, PriceQuote } from '../../src/core/types.js';
import { parseDuration } from '../../src/core/units.js';
import type { AcquireRequest, PriceQuery, Provider, ProviderContext, ProviderFactory } from '../../src/providers/sdk.js';
import { readJson, shortHash, writeJsonAtomic } from '../../src/providers/kit/fs-util.js';
import { LocalfsStorage, localfsMeta } from '../../src/providers/kit/localfs-storage.js';
import { NodeNotices } from '../../src/providers/kit/node-notices.js';
import { processRuntimeFor, settlingRuntime } from '../../src/providers/kit/process-runtime.js';
import { Market, simNow, wallAt, type SimClock } from './market.js';

export interface SimConfig {
  /** Trace CSV file, or a folder with availability_spot_price.csv (+ zones.csv); relative to the spec. */
  trace: string;
  zones?: string[];
  gpuModel?: string;
  gpusPerInstance?: number;
  /** Sim ms per wall ms: 600 = ten minutes of trace a second. */
  speed?: number;
  /** ISO time inside the trace to start at; default the trace start. */
  start?: string;
  /** Wall-clock time between a preemption notice and the node's death. */
  noticeWindow?: string;
  /** On-demand USD per instance-hour, overriding the trace's zones.csv. */
  onDemandPrice?: number;
  /** A modelled network between nodes for checkpoint transfers, MB/s; default none (disk speed). */
  linkMBps?: number;
}

const configSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'sim provider config',
  description: 'A spot market replayed from a trace; leases become folder-backed nodes on this machine.',
  type: 'object',
  additionalProperties: false,
  required: ['trace'],
  properties: {
    trace: { description: 'Trace CSV (timestamp_utc, <zone>_available, <zone>_spot_usd_per_hr) or a folder holding availability_spot_price.csv and zones.csv; relative to the fleet file.', type: 'string', minLength: 1 },
    zones: { description: 'Zones of the trace to offer; all when absent.', type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1, uniqueItems: true },
    gpuModel: { description: 'GPU model the market sells.', type: 'string', minLength: 1, default: 'V100' },
    gpusPerInstance: { description: 'GPUs per instance in the trace; trace prices are per instance.', type: 'integer', minimum: 1, default: 1 },
    speed: { description: 'Simulated time per wall-clock time: 1 is real time, 600 is ten minutes of trace a second.', type: 'number', exclusiveMinimum: 0, default: 1 },
    start: { description: 'ISO-8601 time inside the trace where the clock starts; default the trace start.', type: 'string', minLength: 1 },
    noticeWindow: { description: 'Wall-clock time from a preemption notice to the node being terminated, e.g. 120s.', type: 'string', pattern: '^(\\d+(\\.\\d+)?(ms|s|m|h|d))+$', default: '120s' },
    onDemandPrice: { description: 'On-demand USD per instance-hour; default from the trace zones.csv (3.06 without one).', type: 'number', minimum: 0 },
    linkMBps: { description: 'A modelled network between nodes, MB/s: a checkpoint transfer takes the bytes that cross it ÷ this (a pre-copy gets a quarter). Default: no limit (disk speed).', type: 'number', exclusiveMinimum: 0 },
  },
} as const;

interface LeaseRecord {
  id: string;
  pool: string;
  capacity: CapacityType;
  gpuModel: string;
  gpus: number;
  zone: string;
  /** Wall ISO time. */
  acquiredAt: string;
  /** Unwrapped sim ms at acquisition: preemption is looked for from here. */
  simAcquiredAt: number;
  released?: string;
  labels: Record<string, string>;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function createSim(config: SimConfig, ctx: ProviderContext): Provider {
  const P = ctx.name;
  const gpuModel = config.gpuModel ?? 'V100';
  const gpi = config.gpusPerInstance ?? 1;
  const speed = config.speed ?? 1;
  if (!(speed > 0)) throw new ProviderError(P, 'speed must be above 0');
  const noticeMs = parseDuration(config.noticeWindow ?? '120s');
  if (noticeMs === undefined) throw new ProviderError(P, `noticeWindow "${config.noticeWindow}" is not a duration (e.g. 120s)`);
  const tracePath = isAbsolute(config.trace) ? config.trace : resolve(ctx.specDir, config.trace);
  const loadOpts = config.onDemandPrice === undefined ? { gpusPerInstance: gpi } : { gpusPerInstance: gpi, onDemandPrice: config.onDemandPrice };
  let trace = loadSpotTrace(tracePath, loadOpts);
  if (config.onDemandPrice !== undefined) trace = { ...trace, onDemandPrice: trace.zones.map(() => config.onDemandPrice as number) };
  if (config.zones) trace = sliceTrace(trace, { zones: config.zones });
  if (trace.times.length === 0) throw new ProviderError(P, `trace ${tracePath} has no rows`);
  const market = new Market(trace);
  const zones = trace.zones;

  // The clock: persisted so every CLI run agrees on the simulated time. A changed speed keeps the
  // current sim time (rebase); a changed start restarts there.
  const clockPath = join(ctx.dataDir, 'clock.json');
  const startConfig = config.start ?? null;
  let startSim = market.t0;
  if (config.start !== undefined) {
    const t = Date.parse(config.start);
    if (!Number.isFinite(t)) throw new ProviderError(P, `start "${config.start}" is not an ISO-8601 time`);
    const last = market.t0 + market.span;
    if (t < market.t0 || t >= last) throw new ProviderError(P, `start ${config.start} is outside the trace (${new Date(market.t0).toISOString()} to ${new Date(last).toISOString()})`);
    startSim = t;
  }
  let clock = readJson<SimClock>(clockPath);
  if (!clock || clock.startConfig !== startConfig) {
    clock = { wallStart: ctx.now(), simStart: startSim, speed, startConfig };
    writeJsonAtomic(clockPath, clock);
  } else if (clock.speed !== speed) {
    const w = ctx.now();
    clock = { wallStart: w, simStart: simNow(clock, w), speed, startConfig };
    writeJsonAtomic(clockPath, clock);
  }
  const clk: SimClock = clock;
  const now = (): number => simNow(clk, ctx.now());
  // Whole seconds: the market's time is shown to people and compared across runs.
  const simIso = (sim: number): string => new Date(Math.floor(market.wrap(sim).t / 1000) * 1000).toISOString();

  const leasesDir = join(ctx.dataDir, 'leases');
  const nodesRoot = join(ctx.dataDir, 'nodes');
  mkdirSync(leasesDir, { recursive: true, mode: 0o700 });
  const nodeDir = (id: string): string => join(nodesRoot, id);
  const leasePath = (id: string): string => join(leasesDir, `${id}.json`);
  const readLease = (id: string): LeaseRecord | undefined => (/^[A-Za-z0-9._-]+$/.test(id) ? readJson<LeaseRecord>(leasePath(id)) : undefined);
  const allLeases = (): LeaseRecord[] => {
    let names: string[] = [];
    try {
      names = readdirSync(leasesDir).filter((n) => n.endsWith('.json'));
    } catch {
      names = [];
    }
    return names
      .map((n) => readJson<LeaseRecord>(join(leasesDir, n)))
      .filter((r): r is LeaseRecord => r !== undefined)
      .sort((a, b) => cmp(a.id, b.id));
  };
  const zoneIndex = (zone: string): number => {
    const i = zones.indexOf(zone);
    if (i < 0) throw new ProviderError(P, `zone "${zone}" is not in this market (zones: ${zones.join(', ')})`);
    return i;
  };
  const perGpu = (instancePrice: number): number => instancePrice / gpi;
  const spotPerGpu = (z: number, sim: number): number => perGpu(market.spotPrice(z, sim));
  const odPerGpu = (z: number): number => perGpu(trace.onDemandPrice[z] as number);

  const runtime = processRuntimeFor(P, ctx, nodesRoot, async (node, gpus, used) => {
    const l = readLease(node);
    if (!l || l.released) throw new ProviderError(P, `no active lease "${node}"`);
    if ((await settle(l)) === 'terminated') throw new ProviderError(P, `lease ${node} was preempted and is terminated`);
    if (used + gpus > l.gpus) throw new ProviderError(P, `node ${node} has ${l.gpus - used} of ${l.gpus} GPUs free; the workload needs ${gpus}`);
  });
  const notices = new NodeNotices({ provider: P, source: 'sim', nodeDir, now: () => ctx.now(), onDeath: (node) => runtime.killNode(node) });

  /** Level-triggered: posts the trace's preemption notice if it is due, then applies deadlines. */
  const settle = async (l: LeaseRecord): Promise<'ok' | 'noticed' | 'terminated'> => {
    if (l.released) return 'terminated';
    if (l.capacity === 'spot' && !notices.terminated(l.id)) {
      const at = market.firstUnavailable(zoneIndex(l.zone), l.simAcquiredAt, now());
      if (at !== undefined) {
        notices.post(l.id, { inMs: noticeMs, at: Math.max(wallAt(clk, at), Date.parse(l.acquiredAt)), kind: 'preemption', detail: { zone: l.zone, simTime: simIso(at) } });
      }
    }
    return notices.settle(l.id);
  };
  const settleAll = async (): Promise<void> => {
    for (const l of allLeases()) if (!l.released) await settle(l);
  };

  const leaseOf = (l: LeaseRecord): Lease => {
    const z = zoneIndex(l.zone);
    const sim = now();
    const price = l.capacity === 'spot' ? spotPerGpu(z, sim) : odPerGpu(z);
    const dead = notices.terminated(l.id);
    const lease: Lease = {
      id: l.id,
      provider: P,
      pool: l.pool,
      capacity: l.capacity,
      gpuModel: l.gpuModel,
      gpus: l.gpus,
      zone: l.zone,
      pricePerHour: price * l.gpus,
      acquiredAt: l.acquiredAt,
      state: l.released ? 'released' : dead ? 'terminated' : notices.notice(l.id) ? 'preempting' : 'active',
      node: l.id,
      labels: { ...l.labels },
    };
    return lease;
  };

  const prices = async (q: PriceQuery): Promise<PriceQuote[]> => {
    await Promise.resolve();
    if (q.gpuModel !== undefined && q.gpuModel.toLowerCase() !== gpuModel.toLowerCase()) return [];
    const sim = now();
    const at = simIso(sim);
    const out: PriceQuote[] = [];
    zones.forEach((zone, z) => {
      if (q.zones && !q.zones.includes(zone)) return;
      if (q.capacity === undefined || q.capacity === 'spot') {
        out.push({ provider: P, gpuModel, capacity: 'spot', zone, pricePerGpuHour: spotPerGpu(z, sim), available: market.available(z, sim), preemptionRatePerHour: market.preemptionRate[z] as number, at });
      }
      if (q.capacity === undefined || q.capacity === 'on-demand') {
        out.push({ provider: P, gpuModel, capacity: 'on-demand', zone, pricePerGpuHour: odPerGpu(z), available: true, preemptionRatePerHour: 0, at });
      }
    });
    return out.sort((a, b) => a.pricePerGpuHour - b.pricePerGpuHour || cmp(a.zone ?? '', b.zone ?? '') || cmp(a.capacity, b.capacity));
  };

  const acquire = async (req: AcquireRequest): Promise<Lease> => {
    const id = `sim-${shortHash(`${P}\u0000${req.idempotencyKey}`)}`;
    const existing = readLease(id);
    if (existing) return leaseOf(existing);
    if (req.gpuModel.toLowerCase() !== gpuModel.toLowerCase()) throw new ProviderError(P, `this market sells ${gpuModel}, not ${req.gpuModel}`);
    if (!(req.gpus >= 1)) throw new ProviderError(P, `acquire needs at least 1 GPU (got ${req.gpus})`);
    const sim = now();
    const candidates = (req.zone !== undefined ? [zoneIndex(req.zone)] : zones.map((_, i) => i)).map((z) => ({
      z,
      price: req.capacity === 'spot' ? spotPerGpu(z, sim) : odPerGpu(z),
      ok: req.capacity === 'on-demand' || market.available(z, sim),
    }));
    const fits = candidates
      .filter((c) => c.ok && (req.capacity === 'on-demand' || req.maxPricePerGpuHour === undefined || c.price <= req.maxPricePerGpuHour))
      .sort((a, b) => a.price - b.price || cmp(zones[a.z] as string, zones[b.z] as string));
    const pick = fits[0];
    if (!pick) {
      const why = candidates.map((c) => `${zones[c.z]}: ${c.ok ? `$${c.price.toFixed(4)}/GPU-h` : 'unavailable'}`).join(', ');
      throw new ProviderError(P, `no ${req.capacity} ${gpuModel} capacity${req.maxPricePerGpuHour !== undefined ? ` at or below $${req.maxPricePerGpuHour}/GPU-h` : ''} at ${simIso(sim)} (${why})`, { retryable: true });
    }
    const rec: LeaseRecord = {
      id,
      pool: req.pool,
      capacity: req.capacity,
      gpuModel,
      gpus: Math.ceil(req.gpus / gpi) * gpi,
      zone: zones[pick.z] as string,
      acquiredAt: new Date(ctx.now()).toISOString(),
      simAcquiredAt: sim,
      labels: { ...req.labels },
    };
    // Exclusive create: a concurrent acquire with the same key gets this same lease.
    let fd: number;
    try {
      fd = openSync(leasePath(id), 'wx', 0o600);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      for (let i = 0; i < 100; i++) {
        const r = readLease(id);
        if (r) return leaseOf(r);
        await new Promise((res) => setTimeout(res, 20));
      }
      throw new ProviderError(P, `lease ${id} is being acquired by another process`, { retryable: true });
    }
    mkdirSync(join(nodeDir(id), 'checkpoints'), { recursive: true });
    try {
      writeFileSync(fd, `${JSON.stringify(rec, null, 2)}\n`);
    } finally {
      closeSync(fd);
    }
    return leaseOf(rec);
  };

  const release = async (leaseId: string): Promise<void> => {
    const l = readLease(leaseId);
    if (!l || l.released) return;
    await runtime.killNode(l.id);
    writeJsonAtomic(leasePath(l.id), { ...l, released: new Date(ctx.now()).toISOString() });
  };

  const nodeOf = (l: LeaseRecord): NodeInfo => {
    const lease = leaseOf(l);
    const state: NodeInfo['state'] = lease.state === 'terminated' || lease.state === 'released' ? 'terminated' : lease.state === 'preempting' ? 'draining' : 'ready';
    return {
      id: l.id,
      provider: P,
      gpuModel: l.gpuModel,
      gpus: l.gpus,
      capacity: l.capacity,
      zone: l.zone,
      pricePerHour: lease.pricePerHour,
      state,
      leaseId: l.id,
      pool: l.pool,
      labels: { ...l.labels },
      meta: localfsMeta(nodeDir(l.id)),
    };
  };

  const knownNode = (id: string): LeaseRecord => {
    const l = readLease(id);
    if (!l || l.released) throw new ProviderError(P, `no active lease "${id}"`);
    return l;
  };

  return {
    name: P,
    type: 'sim',
    capacity: {
      prices,
      acquire,
      release,
      leases: async () => {
        await settleAll();
        return allLeases().filter((l) => !l.released).map(leaseOf);
      },
    },
    nodes: {
      list: async () => {
        await settleAll();
        const used = new Map<string, number>();
        for (const i of await runtime.list()) if (i.state === 'running') used.set(i.node, (used.get(i.node) ?? 0) + i.gpus);
        return allLeases()
          .filter((l) => !l.released)
          .map((l) => {
            const n = nodeOf(l);
            n.gpusFree = n.state === 'terminated' ? 0 : Math.max(0, n.gpus - (used.get(l.id) ?? 0));
            return n;
          });
      },
    },
    runtime: settlingRuntime(runtime, {
      all: settleAll,
      node: async (node) => {
        const l = readLease(node);
        if (l) await settle(l);
      },
    }),
    notices: {
      poll: async (node) => {
        const l = readLease(node.id);
        if (!l || l.released) return [];
        await settle(l);
        return notices.poll(l.id);
      },
    },
    simulation: {
      evict: async (node, opts) => {
        const l = knownNode(node.id);
        if ((await settle(l)) === 'terminated') throw new ProviderError(P, `lease ${l.id} is already terminated`);
        return notices.post(l.id, { inMs: opts.inMs, ...(opts.kind ? { kind: opts.kind } : {}), detail: { zone: l.zone, simTime: simIso(now()), simulated: true } });
      },
    },
    storage: new LocalfsStorage(P, { cwd: ctx.specDir, env: ctx.env, ...(config.linkMBps !== undefined ? { linkBytesPerSec: config.linkMBps * 1e6 } : {}) }),
    close: async () => {},
  };
}

/** The `sim` provider factory. */
export const provider: ProviderFactory<SimConfig> = {
  type: 'sim',
  description: 'A spot market replayed from a price/availability trace on a scaled clock; leases run as local processes.',
  configSchema,
  create: createSim,
};
