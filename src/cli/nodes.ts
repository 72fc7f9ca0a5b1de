// `spotfleet nodes [PATH] [--json]`: the providers' view of the fleet's capacity. Every node
// (provider, id, GPU model, GPUs free/total, capacity, zone, $/h, state), then, per pool and zone,
// what the market asks (spot vs on-demand $/GPU-h, availability, preemptions per hour), and what
// each pool/zone taught us (the state's poolHistory: evictions, warnings and how many an eviction
// followed, the time since the last one, the decayed rate the planner prices). A provider that
// fails fails the command with its name: nothing is silently shown as empty.
import type { Command } from 'commander';
import { ProviderError, errorMessage } from '../core/errors.js';
import type { NodeInfo } from '../core/types.js';
import { toSnakeJson } from '../core/json.js';
import { formatDuration, formatRate, formatUsdRate, roundUsd } from '../core/units.js';
import { openFleet } from '../engine/session.js';
import { preemptionRateFromHistory, warningFollowProbability, type PoolHistory } from '../policy/warning.js';
import type { PoolSpec } from '../spec/types.js';
import { specPathArg, stateDirOf, type CliApp } from './app.js';
import { PROVIDERS_JSON_FORMAT, addProviderOptions, created, openFleetProviders, sortedSpecs, timeoutMs, type ProviderCommandOptions } from './providers.js';
import { cmp } from './util.js';
import { formatTable } from '../core/text.js';
import { withTimeout } from '../engine/refresh.js';

/** One row of the market table: what a pool can get in one zone. */
export interface MarketRow {
  pool: string;
  provider: string;
  zone: string | null;
  capacity: 'spot' | 'on-demand';
  gpuModel: string | null;
  pricePerGpuHour: number;
  /** On-demand price in the same zone, for comparison (spot pools). */
  onDemandPricePerGpuHour: number | null;
  available: boolean;
  /** Price above the pool's maxPricePerHour: the pool will not buy it. */
  aboveMax: boolean;
  preemptionRatePerHour: number | null;
  /** Market time of the quote (simulated time for sim), or null for static inventory. */
  at: string | null;
  /** Where the row comes from: market quotes, or the nodes of a static inventory. */
  source: 'market' | 'nodes';
  /** What the market's price comes from (a price API, cached, or a dated table standing in), when the provider says. */
  priceSource: string | null;
}

async function marketRows(pool: PoolSpec, provider: NonNullable<Awaited<ReturnType<typeof created>>>, nodes: NodeInfo[], ms: number): Promise<MarketRow[]> {
  const gpuModel = pool.gpuModel ?? null;
  if (provider.capacity) {
    const q = { ...(pool.gpuModel ? { gpuModel: pool.gpuModel } : {}), ...(pool.zones ? { zones: pool.zones } : {}) };
    const quotes = await withTimeout(provider.name, 'prices', ms, provider.capacity.prices(q));
    const od = new Map(quotes.filter((x) => x.capacity === 'on-demand').map((x) => [`${x.gpuModel}|${x.zone ?? ''}`, x.pricePerGpuHour]));
    return quotes
      .filter((x) => x.capacity === pool.capacity)
      .map((x) => ({
        pool: pool.name,
        provider: provider.name,
        zone: x.zone ?? null,
        capacity: x.capacity,
        gpuModel: x.gpuModel,
        pricePerGpuHour: roundUsd(x.pricePerGpuHour),
        onDemandPricePerGpuHour: od.has(`${x.gpuModel}|${x.zone ?? ''}`) ? roundUsd(od.get(`${x.gpuModel}|${x.zone ?? ''}`)!) : null,
        available: x.available,
        aboveMax: pool.maxPricePerHour !== undefined && x.pricePerGpuHour > pool.maxPricePerHour,
        preemptionRatePerHour: x.preemptionRatePerHour === undefined ? null : Math.round(x.preemptionRatePerHour * 1000) / 1000,
        at: x.at,
        source: 'market' as const,
        priceSource: x.source ?? null,
      }));
  }
  // A static inventory has no market: its "price" is what its matching nodes cost per GPU.
  const byZone = new Map<string, NodeInfo[]>();
  for (const n of nodes) {
    if (n.provider !== provider.name || n.capacity !== pool.capacity) continue;
    if (pool.gpuModel && n.gpuModel.toLowerCase() !== pool.gpuModel.toLowerCase()) continue;
    if (pool.zones && !pool.zones.includes(n.zone ?? '')) continue;
    const k = n.zone ?? '';
    byZone.set(k, [...(byZone.get(k) ?? []), n]);
  }
  return [...byZone.entries()].map(([zone, ns]) => {
    const price = Math.min(...ns.map((n) => (n.gpus > 0 ? n.pricePerHour / n.gpus : n.pricePerHour)));
    return {
      pool: pool.name,
      provider: provider.name,
      zone: zone === '' ? null : zone,
      capacity: pool.capacity,
      gpuModel: gpuModel ?? ns[0]?.gpuModel ?? null,
      pricePerGpuHour: roundUsd(price),
      onDemandPricePerGpuHour: null,
      available: ns.some((n) => n.state === 'ready' && (n.gpusFree ?? n.gpus) > 0),
      aboveMax: pool.maxPricePerHour !== undefined && price > pool.maxPricePerHour,
      preemptionRatePerHour: null,
      at: null,
      source: 'nodes' as const,
      priceSource: null,
    };
  });
}

/** One row of the preemption record: what a pool/zone taught us. */
export interface PoolHistoryRow {
  pool: string;
  zone: string | null;
  evictions: number;
  /** Of those, preemptions that came with no notice at all. */
  unannounced: number;
  warnings: number;
  warningsFollowed: number;
  /** P(an eviction follows a warning) as the planner uses it (with its 1-in-3 prior). */
  followProbability: number;
  lastEvictionAt: string | null;
  lastWarningAt: string | null;
  /** Decayed preemptions per hour (null with no eviction on record). */
  preemptionRatePerHour: number | null;
}

function historyRows(history: Record<string, PoolHistory> | undefined, now: number): PoolHistoryRow[] {
  return Object.entries(history ?? {})
    .map(([key, h]) => {
      const slash = key.indexOf('/');
      const rate = preemptionRateFromHistory(h, now);
      return {
        pool: slash >= 0 ? key.slice(0, slash) : key,
        zone: slash >= 0 && key.slice(slash + 1) ? key.slice(slash + 1) : null,
        evictions: h.evictions,
        unannounced: h.unannounced,
        warnings: h.warnings,
        warningsFollowed: h.warningsFollowed,
        followProbability: Math.round(warningFollowProbability(h) * 1000) / 1000,
        lastEvictionAt: h.lastEvictionAt !== undefined ? new Date(h.lastEvictionAt).toISOString() : null,
        lastWarningAt: h.lastWarningAt !== undefined ? new Date(h.lastWarningAt).toISOString() : null,
        preemptionRatePerHour: rate === undefined ? null : Math.round(rate * 1000) / 1000,
      };
    })
    .sort((a, b) => cmp(a.pool, b.pool) || cmp(a.zone ?? '', b.zone ?? ''));
}

function ago(iso: string | null, now: number): string {
  return iso === null ? '-' : `${formatDuration(Math.max(0, Math.round((now - Date.parse(iso)) / 1000) * 1000))} ago`;
}

function nodeJson(n: NodeInfo): Record<string, unknown> {
  return {
    provider: n.provider,
    id: n.id,
    gpu_model: n.gpuModel,
    gpus: n.gpus,
    gpus_free: n.gpusFree ?? null,
    capacity: n.capacity,
    zone: n.zone ?? null,
    price_per_hour: roundUsd(n.pricePerHour),
    state: n.state,
    pool: n.pool ?? null,
    lease_id: n.leaseId ?? null,
  };
}

export function register(program: Command, app: CliApp): void {
  addProviderOptions(
    program
      .command('nodes')
      .description('List every node of the fleet (GPUs, capacity, zone, $/h, state) and the markets each pool can buy from.')
      .argument('[path]', 'fleet file, or a folder of *.yaml files', '.'),
  ).action(async (path: string, opts: ProviderCommandOptions) => {
    const ms = timeoutMs(opts);
    const opened = await openFleetProviders(app, path, opts);
    try {
      const nodes: NodeInfo[] = [];
      await Promise.all(
        sortedSpecs(opened).map(async (o) => {
          const p = created(opened, o.name);
          if (!p.nodes) return;
          try {
            nodes.push(...(await withTimeout(p.name, 'nodes.list', ms, p.nodes.list())));
          } catch (e) {
            if (e instanceof ProviderError) throw e;
            throw new ProviderError(p.name, `listing nodes failed: ${errorMessage(e)}`, { cause: e });
          }
        }),
      );
      nodes.sort((a, b) => cmp(a.provider, b.provider) || cmp(a.id, b.id));
      const markets: MarketRow[] = [];
      for (const pool of [...opened.fleet.pools].sort((a, b) => cmp(a.name, b.name))) {
        if (!opened.fleet.providers.some((s) => s.name === pool.provider)) continue;
        const p = created(opened, pool.provider);
        try {
          markets.push(...(await marketRows(pool, p, nodes, ms)));
        } catch (e) {
          if (e instanceof ProviderError) throw e;
          throw new ProviderError(p.name, `reading prices for pool ${pool.name} failed: ${errorMessage(e)}`, { cause: e });
        }
      }
      markets.sort((a, b) => cmp(a.pool, b.pool) || cmp(a.zone ?? '', b.zone ?? ''));
      // What the pools taught us, from the state (read only; no lock).
      const now = Date.now();
      const spec = specPathArg(path);
      const session = await openFleet(spec, { stateDir: stateDirOf(spec, opts.state), withoutProviders: true });
      let history: PoolHistoryRow[];
      try {
        history = historyRows((await session.store.read()).poolHistory, now);
      } finally {
        await session.close();
      }
      const { io } = app;
      if (opts.json) {
        io.out(JSON.stringify({ format_version: PROVIDERS_JSON_FORMAT, fleet: opened.fleet.name, nodes: nodes.map(nodeJson), markets: toSnakeJson(markets), pool_history: toSnakeJson(history) }, null, 2));
        return;
      }
      io.out(`Nodes (${nodes.length}):`);
      if (nodes.length === 0) io.out('  (none: markets have no leases yet)');
      else {
        io.out(
          formatTable([
            ['PROVIDER', 'NODE', 'GPU', 'FREE/TOTAL', 'CAPACITY', 'ZONE', '$/H', 'STATE'],
            ...nodes.map((n) => [n.provider, n.id, n.gpuModel, `${n.gpusFree ?? '?'}/${n.gpus}`, n.capacity, n.zone ?? '-', formatUsdRate(n.pricePerHour), n.state]),
          ]).join('\n'),
        );
      }
      io.out('');
      const times = [...new Set(markets.filter((m) => m.at).map((m) => `${m.provider} at ${m.at}`))].sort();
      io.out(`Markets${times.length ? ` (${times.join('; ')})` : ''}:`);
      io.out(
        formatTable([
          ['POOL', 'PROVIDER', 'ZONE', 'CAPACITY', '$/GPU-H', 'ON-DEMAND $/GPU-H', 'AVAILABLE', 'PREEMPTIONS/H', 'PRICE FROM'],
          ...markets.map((m) => [
            m.pool,
            m.provider,
            m.zone ?? '-',
            m.capacity,
            formatUsdRate(m.pricePerGpuHour),
            m.onDemandPricePerGpuHour === null ? '-' : formatUsdRate(m.onDemandPricePerGpuHour),
            m.available ? (m.aboveMax ? 'above max' : 'yes') : 'no',
            m.preemptionRatePerHour === null ? '-' : formatRate(m.preemptionRatePerHour),
            m.priceSource ?? '-',
          ]),
        ]).join('\n'),
      );
      io.out('');
      io.out('Preemption record (per pool and zone, from the state):');
      if (history.length === 0) io.out('  (none yet: no notice or preemption seen)');
      else {
        io.out(
          formatTable([
            ['POOL', 'ZONE', 'EVICTIONS', 'NO NOTICE', 'WARNINGS', 'FOLLOWED', 'P(FOLLOW)', 'LAST EVICTION', 'LAST WARNING', 'RATE/H'],
            ...history.map((h) => [h.pool, h.zone ?? '-', String(h.evictions), String(h.unannounced), String(h.warnings), String(h.warningsFollowed), formatRate(h.followProbability), ago(h.lastEvictionAt, now), ago(h.lastWarningAt, now), h.preemptionRatePerHour === null ? '-' : formatRate(h.preemptionRatePerHour)]),
          ]).join('\n'),
        );
      }
    } finally {
      await opened.close();
    }
  });
}
