// The watch service's small HTTP endpoint: `/healthz` (is the controller reconciling?), `/metrics`
// (Prometheus text) and `/status` (the controller's live view, read by `spotfleet status`).
// Listens on 127.0.0.1 by default: the status view names nodes and workloads, which is nobody
// else's business unless the operator opens it up with `--listen`.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { errorMessage, UsageError } from '../core/errors.js';
import type { Logger } from './logger.js';
import { redactValue } from './logger.js';
import type { WatchMetrics } from './metrics.js';

export const DEFAULT_LISTEN = '127.0.0.1:9464';

export interface ListenAddress {
  host: string;
  port: number;
}

/**
 * Parses `--listen`: `host:port`, `[v6]:port`, or `:port` / a bare port (meaning 127.0.0.1).
 * Port 0 picks a free port. Throws UsageError on anything else.
 * @example parseListen('0.0.0.0:9464') // { host: '0.0.0.0', port: 9464 }
 */
export function parseListen(text: string): ListenAddress {
  const t = text.trim();
  const bad = (): UsageError =>
    new UsageError(`invalid --listen "${text}"`, ['expected host:port, [ipv6]:port, :port or a port (port 0 = any free port)']);
  let host = '127.0.0.1';
  let portText = t;
  const v6 = /^\[([0-9a-fA-F:.]+)\]:(\d+)$/.exec(t);
  if (v6) {
    host = v6[1] as string;
    portText = v6[2] as string;
  } else if (t.includes(':')) {
    const i = t.lastIndexOf(':');
    const h = t.slice(0, i);
    if (h.includes(':') || /\s/.test(h)) throw bad();
    if (h !== '') host = h;
    portText = t.slice(i + 1);
  }
  if (!/^\d{1,5}$/.test(portText)) throw bad();
  const port = Number(portText);
  if (port > 65535) throw bad();
  return { host, port };
}

// ---------------------------------------------------------------------------------------------
// health

export type HealthStatus = 'starting' | 'ok' | 'unhealthy' | 'stopping' | 'standby';

export interface HealthSnapshot {
  status: HealthStatus;
  /** ISO-8601 of the last reconcile that finished (either way). */
  lastReconcileAt: string | null;
  /** ISO-8601 of the last reconcile that succeeded. */
  lastSuccessAt: string | null;
  /** Message of the last failed reconcile, cleared by a success. */
  lastError: string | null;
  /** Consecutive failed reconciles. */
  consecutiveErrors: number;
  /** ISO-8601 of when the controller started. */
  startedAt: string;
  /** Why status is not ok, when it is not. */
  reason?: string;
  /** Watch replicas sharing a backend: who leads, since when, at what epoch (see watch/leader.ts). */
  leader?: LeaderView;
}

/** This replica's role and the fleet's leader, for /healthz and /status. */
export interface LeaderView {
  role: 'leader' | 'standby';
  /** This replica's identity. */
  self: string;
  /** The leading replica (absent while nobody leads). */
  holder?: string;
  host?: string;
  pid?: number;
  epoch?: number;
  since?: string;
  expiresAt?: string;
  changes?: number;
}

export interface HealthTrackerOptions {
  /** The reconcile interval (`--interval`); unhealthy after `unhealthyAfter` of them with no success. */
  intervalMs: number;
  /** Intervals without a successful reconcile before /healthz says 503. Default 3. */
  unhealthyAfter?: number;
  /** Clock, injectable for tests. Default Date.now. */
  now?: () => number;
}

/**
 * Tracks whether the controller is alive and converging. Healthy while a reconcile succeeded
 * within the last `unhealthyAfter` intervals (also during the first such window after start:
 * "starting"). A failing reconcile alone is not unhealthy: it retries with back-off, and a
 * restart would not fix an invalid spec or an unreachable cloud either; a stuck controller is.
 */
export class HealthTracker {
  private readonly now: () => number;
  private readonly windowMs: number;
  private readonly startedAt: number;
  private lastReconcile: number | undefined;
  private lastSuccess: number | undefined;
  private lastError: string | undefined;
  private errors = 0;
  private stopping = false;
  private leader: (() => LeaderView) | undefined;

  constructor(opts: HealthTrackerOptions) {
    this.now = opts.now ?? Date.now;
    this.windowMs = opts.intervalMs * (opts.unhealthyAfter ?? 3);
    this.startedAt = this.now();
  }

  /** A reconcile succeeded (at `at`, default now). */
  reconcileSucceeded(at: number = this.now()): void {
    this.lastReconcile = at;
    this.lastSuccess = at;
    this.lastError = undefined;
    this.errors = 0;
  }

  /** A reconcile failed; the error message is kept (redacted) for /healthz. */
  reconcileFailed(err: unknown, at: number = this.now()): void {
    this.lastReconcile = at;
    this.lastError = String(redactValue(errorMessage(err)));
    this.errors++;
  }

  /** A replica of several: a standby is healthy while it stands by (it does not reconcile). */
  setLeader(view: (() => LeaderView) | undefined): void {
    this.leader = view;
  }

  /** The service is shutting down: /healthz answers 503 so a load balancer stops sending work. */
  setStopping(): void {
    this.stopping = true;
  }

  snapshot(): HealthSnapshot {
    const now = this.now();
    const iso = (t: number | undefined): string | null => (t === undefined ? null : new Date(t).toISOString());
    let status: HealthStatus;
    let reason: string | undefined;
    if (this.stopping) {
      status = 'stopping';
      reason = 'shutting down';
    } else if (this.leader?.().role === 'standby') {
      status = 'standby';
    } else if (this.lastSuccess !== undefined && now - this.lastSuccess <= this.windowMs) {
      status = 'ok';
    } else if (this.lastSuccess === undefined && now - this.startedAt <= this.windowMs) {
      status = 'starting';
    } else {
      status = 'unhealthy';
      const since = this.lastSuccess ?? this.startedAt;
      reason = `no successful reconcile for ${Math.round((now - since) / 1000)}s (limit ${Math.round(this.windowMs / 1000)}s)`;
    }
    const snap: HealthSnapshot = {
      status,
      lastReconcileAt: iso(this.lastReconcile),
      lastSuccessAt: iso(this.lastSuccess),
      lastError: this.lastError ?? null,
      consecutiveErrors: this.errors,
      startedAt: new Date(this.startedAt).toISOString(),
    };
    if (reason !== undefined) snap.reason = reason;
    if (this.leader) snap.leader = this.leader();
    return snap;
  }

  /** True when /healthz answers 200. */
  healthy(): boolean {
    const s = this.snapshot().status;
    return s === 'ok' || s === 'starting' || s === 'standby';
  }
}

// ---------------------------------------------------------------------------------------------
// server

export interface TelemetryServerOptions {
  /** `host:port` (see parseListen). Default `127.0.0.1:9464`; port 0 picks a free port. */
  listen?: string;
  metrics: WatchMetrics;
  health: HealthTracker;
  /** The controller's live view for `/status` (plain JSON data). Without it `/status` is 404. */
  status?: () => unknown;
  /** Request errors are logged here (never request bodies). */
  log?: Logger;
}

export interface TelemetryServer {
  /** Where it actually listens (the real port when 0 was asked). */
  readonly address: ListenAddress;
  /** `http://host:port` for clients such as `spotfleet status`. */
  readonly url: string;
  close(): Promise<void>;
}

function sendJson(res: ServerResponse, code: number, body: unknown, head: boolean): void {
  const text = `${JSON.stringify(body, null, 2)}\n`;
  res.writeHead(code, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(head ? undefined : text);
}

async function handle(req: IncomingMessage, res: ServerResponse, opts: TelemetryServerOptions): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  const head = req.method === 'HEAD';
  if (req.method !== 'GET' && !head) {
    res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' });
    res.end('method not allowed\n');
    return;
  }
  switch (path) {
    case '/healthz': {
      const snap = opts.health.snapshot();
      const ok = snap.status === 'ok' || snap.status === 'starting' || snap.status === 'standby';
      sendJson(res, ok ? 200 : 503, snap, head);
      return;
    }
    case '/metrics': {
      const text = await opts.metrics.render();
      res.writeHead(200, { 'content-type': opts.metrics.contentType, 'content-length': Buffer.byteLength(text) });
      res.end(head ? undefined : text);
      return;
    }
    case '/status': {
      if (!opts.status) {
        sendJson(res, 404, { error: 'no status view' }, head);
        return;
      }
      // Redacted like a log line: the view is for operators, never a place for credentials.
      sendJson(res, 200, redactValue(await opts.status()), head);
      return;
    }
    case '/':
      sendJson(res, 200, { endpoints: ['/healthz', '/metrics', '/status'] }, head);
      return;
    default:
      sendJson(res, 404, { error: `not found: ${path}` }, head);
  }
}

/**
 * Starts the telemetry endpoint and resolves once it listens.
 * @example
 * const srv = await startTelemetryServer({ listen: '127.0.0.1:0', metrics, health, status: () => controller.view() });
 * console.log(srv.url); // http://127.0.0.1:40123
 * await srv.close();
 */
export async function startTelemetryServer(opts: TelemetryServerOptions): Promise<TelemetryServer> {
  const want = parseListen(opts.listen ?? DEFAULT_LISTEN);
  const server: Server = createServer((req, res) => {
    handle(req, res, opts).catch((err: unknown) => {
      opts.log?.error('telemetry request failed', { action: 'http', path: req.url ?? '', err });
      if (!res.headersSent) sendJson(res, 500, { error: errorMessage(err) }, false);
      else res.destroy();
    });
  });
  // Scrapes are short; do not let idle keep-alive sockets hold shutdown up.
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen(want.port, want.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const a = server.address() as AddressInfo;
  const address: ListenAddress = { host: a.address, port: a.port };
  const urlHost = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  return {
    address,
    url: `http://${urlHost}:${a.port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}
