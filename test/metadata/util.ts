// Test helpers for the metadata suites: a raw HTTP call (no spotfleet code in the path) and a
// ProviderContext for creating providers against the fakes.
import { request } from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ProviderContext, ProviderLogger } from '../../src/providers/sdk.js';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** One HTTP exchange with node:http; `timeoutMs` guards a test against a hang. */
export function raw(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string; timeoutMs?: number } = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const body = opts.body === undefined ? undefined : Buffer.from(opts.body);
    const headers = { ...(opts.headers ?? {}), ...(body ? { 'Content-Length': String(body.length) } : {}) };
    const req = request(url, { method: opts.method ?? 'GET', headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const h: Record<string, string> = {};
        for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') h[k] = v;
        resolve({ status: res.statusCode ?? 0, headers: h, body: Buffer.concat(chunks).toString('utf8') });
      });
    });
    req.setTimeout(opts.timeoutMs ?? 10_000, () => req.destroy(new Error(`timeout ${url}`)));
    req.on('error', reject);
    req.end(body);
  });
}

export interface LogLine {
  level: string;
  msg: string;
  fields: Record<string, unknown> | undefined;
}

export function memoryLogger(lines: LogLine[] = []): ProviderLogger & { lines: LogLine[] } {
  const at = (level: string) => (msg: string, fields?: Record<string, unknown>): void => {
    lines.push({ level, msg, fields });
  };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

export function testContext(name: string, over: Partial<ProviderContext> = {}): ProviderContext {
  const dir = mkdtempSync(join(tmpdir(), 'sf-meta-'));
  return { name, fleet: 'test', specDir: dir, dataDir: dir, log: memoryLogger(), now: Date.now, env: {}, ...over };
}
