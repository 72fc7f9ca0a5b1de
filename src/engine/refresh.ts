// refresh: ask every provider, concurrently and with per-call timeouts, for nodes, workloads,
// leases, prices, offers and notices. A provider that fails fails the refresh with its name and
// the error; with `allowPartial` (watch) its part is marked unknown instead — never silently empty.
import { ProviderError, SpotfleetError, errorMessage } from '../core/errors.js';
import type { NodeInfo, Observed } from '../core/types.js';
import { formatDuration } from '../core/units.js';
import type { Provider } from '../providers/sdk.js';

export interface RefreshOptions {
  /** Per provider call; default 30 s. */
  timeoutMs?: number;
  /** Mark a failing provider's part unknown instead of failing (watch). */
  allowPartial?: boolean;
  /** Poll spot nodes for notices (default true). */
  notices?: boolean;
  /** Bound on concurrent notice polls; default 32. */
  noticeConcurrency?: number;
  now?: () => number;
}

/**
 * Races a provider call (a promise, or a function that starts it) against a time limit: the one
 * timeout for provider calls, used by refresh and by the commands that ask providers directly.
 * Every failure names the provider and what it was doing; a SpotfleetError passes as it is.
 * @example await withTimeout('market', 'prices', 30_000, () => p.capacity.prices({}))
 */
export async function withTimeout<T>(provider: string, what: string, ms: number, call: Promise<T> | (() => Promise<T>)): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      typeof call === 'function' ? call() : call,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new ProviderError(provider, `${what} timed out after ${formatDuration(ms)}`, { retryable: true })), ms);
      }),
    ]);
  } catch (e) {
    if (e instanceof ProviderError) throw e;
    if (e instanceof SpotfleetError) throw e;
    throw new ProviderError(provider, `${what} failed: ${errorMessage(e)}`, { cause: e, retryable: true });
  } finally {
    if (timer) clearTimeout(timer);
  }
}

/** Runs fn over items with at most `limit` in flight. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    for (;;) {
      const i = next++;
      if (i >= items.length) return;
      out[i] = await fn(items[i] as T);
    }
  });
  await Promise.all(workers);
  return out;
}

/** Gathers one observation of the world from every provider. */
export async function refreshFleet(providers: ReadonlyMap<string, Provider>, opts: RefreshOptions = {}): Promise<Observed> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const now = opts.now ?? Date.now;
  const obs: Observed = { at: new Date(now()).toISOString(), nodes: [], workloads: [], leases: [], prices: [], offers: [], notices: [], unknown: [] };
  const failures: ProviderError[] = [];
  const guard = async <T>(name: string, capability: string, fn: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await withTimeout(name, capability, timeoutMs, fn);
    } catch (e) {
      const err = e instanceof ProviderError ? e : new ProviderError(name, `${capability}: ${errorMessage(e)}`);
      failures.push(err);
      obs.unknown.push({ provider: name, capability, error: err.message });
      return undefined;
    }
  };
  const entries = [...providers].sort(([a], [b]) => a.localeCompare(b));
  await Promise.all(
    entries.map(async ([name, p]) => {
      const [nodes, workloads, leases, prices, offers] = await Promise.all([
        p.nodes ? guard(name, 'nodes.list', () => p.nodes!.list()) : undefined,
        p.runtime ? guard(name, 'runtime.list', () => p.runtime!.list()) : undefined,
        p.capacity ? guard(name, 'capacity.leases', () => p.capacity!.leases()) : undefined,
        p.capacity ? guard(name, 'capacity.prices', () => p.capacity!.prices({})) : undefined,
        p.capacity?.offers ? guard(name, 'capacity.offers', () => p.capacity!.offers!({})) : undefined,
      ]);
      if (nodes) obs.nodes.push(...nodes.map((n) => ({ ...n, provider: name })));
      if (workloads) obs.workloads.push(...workloads.map((w) => ({ ...w, provider: name })));
      if (leases) obs.leases.push(...leases.map((l) => ({ ...l, provider: name })));
      if (prices) obs.prices.push(...prices.map((q) => ({ ...q, provider: name })));
      if (offers) obs.offers.push(...offers.map((o) => ({ ...o, provider: name })));
    }),
  );
  if (opts.notices !== false) {
    const spot: { p: Provider; name: string; node: NodeInfo }[] = [];
    for (const n of obs.nodes) {
      const p = providers.get(n.provider);
      if (p?.notices && n.state !== 'terminated') spot.push({ p, name: n.provider, node: n });
    }
    await mapLimit(spot, opts.noticeConcurrency ?? 32, async ({ p, name, node }) => {
      const found = await guard(name, `notices.poll(${node.id})`, () => p.notices!.poll(node));
      if (found) obs.notices.push(...found.map((x) => ({ ...x, provider: name, node: node.id })));
    });
  }
  if (failures.length > 0 && !opts.allowPartial) {
    const first = failures[0] as ProviderError;
    if (failures.length === 1) throw first;
    throw new SpotfleetError('PROVIDER_FAILED', `${failures.length} provider calls failed during refresh`, failures.map((f) => f.message));
  }
  obs.nodes.sort((a, b) => a.provider.localeCompare(b.provider) || a.id.localeCompare(b.id));
  obs.workloads.sort((a, b) => a.workload.localeCompare(b.workload) || a.id.localeCompare(b.id));
  obs.leases.sort((a, b) => a.provider.localeCompare(b.provider) || a.id.localeCompare(b.id));
  obs.notices.sort((a, b) => a.node.localeCompare(b.node) || a.id.localeCompare(b.id));
  return obs;
}
