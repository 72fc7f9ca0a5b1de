// Shared helpers of the markets tests: a provider context with an injectable env and a recording
// logger (to check that secrets never reach a log line), a small molt HTTP helper, and waiting for
// what a fake or a notice monitor in this process will have done.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ProviderContext, ProviderPool } from '../../src/providers/sdk.js';
import type { MoltLease, MoltOffer } from '../../providers/molt/reference-server.js';

/** Any molt answer, typed loosely for tests: each test reads the fields its endpoint returns. */
export interface MoltAnswer {
  prices: { gpuModel: string; zone: string; pricePerGpuHour: number; onDemandPricePerGpuHour: number; preemptionRatePerHour: number; offers: number; at: string }[];
  offers: MoltOffer[];
  lease: MoltLease;
  leases: MoltLease[];
  error: { code: string; message: string };
}

export interface RecordedLog {
  level: string;
  msg: string;
  fields?: Record<string, unknown>;
}

export function makeCtx(opts: { name?: string; fleet?: string; env?: Record<string, string | undefined>; now?: () => number; pools?: ProviderPool[]; dataDir?: string } = {}): ProviderContext & { logs: RecordedLog[] } {
  const logs: RecordedLog[] = [];
  const rec = (level: string) => (msg: string, fields?: Record<string, unknown>) => {
    logs.push(fields === undefined ? { level, msg } : { level, msg, fields });
  };
  return {
    name: opts.name ?? 'market',
    fleet: opts.fleet ?? 'research',
    specDir: process.cwd(),
    // Providers keep records here (capacity misses, node verdicts): a fresh folder, never the repo.
    dataDir: opts.dataDir ?? mkdtempSync(join(tmpdir(), 'sf-ctx-')),
    ...(opts.pools ? { pools: opts.pools } : {}),
    log: { debug: rec('debug'), info: rec('info'), warn: rec('warn'), error: rec('error') },
    now: opts.now ?? Date.now,
    env: opts.env ?? {},
    logs,
  };
}

/** One JSON request to a molt server; returns status and parsed body. */
export async function moltFetch(url: string, token: string | undefined, method: string, path: string, body?: unknown): Promise<{ status: number; body: MoltAnswer }> {
  const headers: Record<string, string> = {};
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const init: RequestInit = { method, headers };
  if (body !== undefined) init.body = typeof body === 'string' ? body : JSON.stringify(body);
  const res = await fetch(`${url}${path}`, init);
  const text = await res.text();
  return { status: res.status, body: (text === '' ? {} : JSON.parse(text)) as MoltAnswer };
}

export { sleep };

/** Polls `fn` every 20 ms until it returns something other than undefined or false; throws naming `what` after `limitMs`. */
export async function until<T>(what: string, fn: () => T | undefined, limitMs = 10_000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() - t0 > limitMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
