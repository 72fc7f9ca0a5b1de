// The fleet-level GCP notice source: the Compute Engine API's `compute.instances.preempted`
// operations, listed for the whole project (`aggregated/operations`) or for given zones
// (`zones/Z/operations`), filtered on operationType and insertTime, once a second. One request
// answers for every VM of the project, instead of one metadata read per node. A preempted VM has
// about 30 seconds from the operation's insertTime: that is the notice's deadline.
import { ProviderError } from '../../src/core/errors.js';
import type { Notice } from '../../src/core/types.js';
import type { FleetNoticeSource, ProviderContext } from '../../src/providers/sdk.js';

export interface PreemptionOperationsConfig {
  project: string;
  /** Zones to list; default the whole project through the aggregated list. */
  zones?: string[];
  /** Compute API base URL. Default https://compute.googleapis.com. */
  endpoint?: string;
  /** Time between two listings, ms. Default 1000. */
  intervalMs?: number;
}

export const preemptionOperationsSchema = {
  description: "The Compute Engine API's preemption operations of a project: one listing a second hears every Spot/preemptible VM's preemption, instead of reading each VM's metadata server.",
  type: 'object',
  additionalProperties: false,
  required: ['project'],
  properties: {
    project: { description: 'Project id.', type: 'string', minLength: 1 },
    zones: { description: 'Zones to list; default the whole project (aggregated list).', type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1, uniqueItems: true },
    endpoint: { description: 'Compute API base URL (tests). Default https://compute.googleapis.com.', type: 'string', pattern: '^https?://' },
    intervalMs: { description: 'Time between two listings, ms. Default 1000.', type: 'integer', minimum: 200 },
  },
} as const;

/** GCE gives a preempted VM about 30 s (ACPI soft off, then stop). */
const PREEMPTION_WINDOW_MS = 30_000;
/** How far back the first listing looks, and how much later listings overlap. */
const LOOKBACK_MS = 120_000;

interface Operation {
  id?: unknown;
  operationType?: unknown;
  targetLink?: unknown;
  targetId?: unknown;
  zone?: unknown;
  insertTime?: unknown;
}

/** The notice a preemption operation stands for; undefined for anything else. Exported for tests. */
export function noticeOfOperation(op: Operation, provider: string, receivedAt: number): Notice | undefined {
  if (op.operationType !== 'compute.instances.preempted' || typeof op.id !== 'string' || typeof op.targetLink !== 'string' || typeof op.insertTime !== 'string') return undefined;
  const at = Date.parse(op.insertTime);
  const m = /\/zones\/([^/]+)\/instances\/([^/]+)$/.exec(op.targetLink);
  if (!Number.isFinite(at) || !m) return undefined;
  return {
    id: `gcp:op:${op.id}`,
    provider,
    node: m[2] as string,
    source: 'gcp',
    kind: 'preemption',
    action: 'compute.instances.preempted',
    deadline: new Date(at + PREEMPTION_WINDOW_MS).toISOString(),
    receivedAt: new Date(receivedAt).toISOString(),
    detail: { zone: m[1] as string, operationId: op.id, ...(typeof op.targetId === 'string' ? { targetId: op.targetId } : {}), via: 'compute-api' },
  };
}

/**
 * The fleet source for a gcp provider instance. `token` gives an OAuth access token for the
 * Compute API (the environment's, or the VM service account's from the metadata server).
 */
export function createPreemptionOperations(config: PreemptionOperationsConfig, ctx: ProviderContext, token: () => Promise<string>): FleetNoticeSource {
  const base = (config.endpoint ?? 'https://compute.googleapis.com').replace(/\/$/, '');
  const interval = config.intervalMs ?? 1000;
  const paths = config.zones ? config.zones.map((z) => `/compute/v1/projects/${encodeURIComponent(config.project)}/zones/${encodeURIComponent(z)}/operations`) : [`/compute/v1/projects/${encodeURIComponent(config.project)}/aggregated/operations`];

  const list = async (path: string, since: number, signal: AbortSignal): Promise<Operation[]> => {
    const filter = `(operationType = "compute.instances.preempted") AND (insertTime > "${new Date(since).toISOString()}")`;
    const out: Operation[] = [];
    let pageToken: string | undefined;
    do {
      const q = new URLSearchParams({ filter, maxResults: '500', ...(pageToken ? { pageToken } : {}), ...(config.zones ? {} : { returnPartialSuccess: 'true' }) });
      const url = `${base}${path}?${q.toString()}`;
      const res = await fetch(url, { headers: { Authorization: `Bearer ${await token()}` }, signal: AbortSignal.any([signal, AbortSignal.timeout(10_000)]) });
      const text = await res.text();
      let body: { items?: unknown; nextPageToken?: unknown; error?: { message?: unknown } };
      try {
        body = JSON.parse(text) as typeof body;
      } catch {
        throw new ProviderError(ctx.name, `Compute API ${path}: HTTP ${res.status}, not JSON: ${text.slice(0, 120)}`, { retryable: true });
      }
      if (res.status !== 200) throw new ProviderError(ctx.name, `Compute API ${path}: HTTP ${res.status}: ${typeof body.error?.message === 'string' ? body.error.message : text.slice(0, 200)}`, { retryable: res.status >= 500 || res.status === 429 });
      if (Array.isArray(body.items)) out.push(...(body.items as Operation[]));
      else if (body.items && typeof body.items === 'object') {
        for (const scope of Object.values(body.items as Record<string, { operations?: Operation[] }>)) if (Array.isArray(scope.operations)) out.push(...scope.operations);
      }
      pageToken = typeof body.nextPageToken === 'string' && body.nextPageToken !== '' ? body.nextPageToken : undefined;
    } while (pageToken);
    return out;
  };

  return {
    async watch(onNotice, signal) {
      const seen = new Map<string, number>();
      let since = ctx.now() - LOOKBACK_MS;
      while (!signal.aborted) {
        const t0 = ctx.now();
        let ops: Operation[];
        try {
          ops = (await Promise.all(paths.map((p) => list(p, since, signal)))).flat();
        } catch (e) {
          if (signal.aborted) return;
          throw e instanceof ProviderError ? e : new ProviderError(ctx.name, `Compute API: ${e instanceof Error ? e.message : String(e)}`, { retryable: true });
        }
        let newest = since;
        for (const op of ops) {
          const n = noticeOfOperation(op, ctx.name, ctx.now());
          if (!n) continue;
          newest = Math.max(newest, Date.parse(op.insertTime as string));
          if (seen.has(n.id)) continue;
          seen.set(n.id, Date.parse(n.deadline));
          onNotice(n);
        }
        // Overlap the next window a little (operations can be written late); forget what is long over.
        since = Math.max(since, newest - LOOKBACK_MS);
        for (const [id, d] of seen) if (d < ctx.now() - 2 * LOOKBACK_MS) seen.delete(id);
        const wait = interval - (ctx.now() - t0);
        if (wait > 0) {
          await new Promise<void>((r) => {
            const t = setTimeout(r, wait);
            signal.addEventListener('abort', () => {
              clearTimeout(t);
              r();
            }, { once: true });
          });
        }
      }
    },
  };
}
