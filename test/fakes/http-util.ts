// Shared plumbing for the in-repo fakes: listening on a host/port (HTTP, or HTTPS with a test
// certificate) or a unix socket and closing without waiting on hanging connections, for every fake;
// and, for the metadata and queue fakes (AWS IMDS, GCE metadata, Azure Scheduled Events, SQS, GCE
// operations), reading bodies, injecting faults, and the control channel a test uses to drive a
// fake — in process, or over HTTP on a unix socket / second loopback port so a fake that runs as its
// own process inside a network namespace can be driven from outside.
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { rmSync } from 'node:fs';
import type { AddressInfo, Socket } from 'node:net';

/** Where a fake listens, and where its control channel listens. */
export interface FakeServerOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (a free port). */
  port?: number;
  /** Serve the control API on this unix socket path (removed on close). */
  controlSocket?: string;
  /** Serve the control API on this loopback port (0 = a free one) when no socket is given. */
  controlPort?: number;
}

/**
 * A fault a fake injects into metadata answers. `status` answers that HTTP status; `garbage`
 * answers 200 with a body no parser accepts; `delayMs` delays the answer (a slow server).
 * `paths` limits the fault to paths that start with one of these prefixes (default: all
 * metadata paths; token and control paths are never faulted unless named).
 */
export interface FaultSpec {
  status?: number;
  garbage?: boolean;
  delayMs?: number;
  paths?: string[];
}

/** What every fake returns from start…Server. */
export interface FakeHandle<C> {
  /** Base URL of the metadata listener, e.g. `http://127.0.0.1:41234`. */
  url: string;
  /** The control API in process. */
  control: C;
  /** How to reach the control API over HTTP: a unix socket path or a base URL. */
  controlTarget: ControlTarget | undefined;
  close(): Promise<void>;
}

export type ControlTarget = { socketPath: string } | { url: string };

/** A body no JSON/text parser makes sense of (includes a NUL and broken UTF-8). */
export const GARBAGE_BODY = Buffer.from([0x3c, 0x68, 0x74, 0x6d, 0x6c, 0x3e, 0x00, 0xff, 0xfe, 0x7b, 0x22, 0x0a]);

export function readBody(req: IncomingMessage, limit = 1 << 20): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new Error('body too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Sends a complete answer; for HEAD the headers only. */
export function send(req: IncomingMessage, res: ServerResponse, status: number, body: string | Buffer, headers: Record<string, string> = {}): void {
  const buf = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  res.writeHead(status, { 'Content-Type': 'text/plain', 'Content-Length': String(buf.length), ...headers });
  res.end(req.method === 'HEAD' ? undefined : buf);
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** True when the fault applies to this path. */
export function faultApplies(fault: FaultSpec | undefined, path: string): fault is FaultSpec {
  if (!fault) return false;
  if (!fault.paths || fault.paths.length === 0) return true;
  return fault.paths.some((p) => path.startsWith(p));
}

/**
 * Applies a fault: waits `delayMs`, then answers `status` or garbage. Returns true when it
 * answered (the caller stops), false when the request should go on normally (delay only).
 */
export async function applyFault(fault: FaultSpec, req: IncomingMessage, res: ServerResponse, closing: AbortSignal, extraHeaders: Record<string, string> = {}): Promise<boolean> {
  if (fault.delayMs) await sleep(fault.delayMs, closing);
  if (fault.status !== undefined) {
    send(req, res, fault.status, `fault: injected HTTP ${fault.status}\n`, extraHeaders);
    return true;
  }
  if (fault.garbage) {
    send(req, res, 200, GARBAGE_BODY, extraHeaders);
    return true;
  }
  return false;
}

/** Where a fake listens: a host and port (over HTTPS with `tls`), or a unix socket. */
export type ListenAt = { host: string; port: number; tls?: { key: string; cert: string } } | { socketPath: string };

/**
 * Listens and tracks sockets so close() never waits on a hanging long-poll. `address` is the base
 * URL (`http://127.0.0.1:41234`, `https://…` with tls) or the socket path.
 */
export async function listen(
  handler: (req: IncomingMessage, res: ServerResponse) => void | Promise<void>,
  where: ListenAt,
): Promise<{ server: Server; address: string; port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const answer = (req: IncomingMessage, res: ServerResponse): void => {
    Promise.resolve(handler(req, res)).catch((e: unknown) => {
      if (!res.headersSent) send(req, res, 500, `fake error: ${e instanceof Error ? e.message : String(e)}\n`);
      else res.destroy();
    });
  };
  const tls = 'tls' in where ? where.tls : undefined;
  const server: Server = tls ? createHttpsServer({ key: tls.key, cert: tls.cert }, answer) : createServer(answer);
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  if ('socketPath' in where) rmSync(where.socketPath, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    if ('socketPath' in where) server.listen(where.socketPath, () => resolve());
    else server.listen(where.port, where.host, () => resolve());
  });
  let address: string;
  let port = 0;
  if ('socketPath' in where) address = where.socketPath;
  else {
    const a = server.address() as AddressInfo;
    const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
    port = a.port;
    address = `${tls ? 'https' : 'http'}://${host}:${a.port}`;
  }
  return {
    server,
    address,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => {
          if ('socketPath' in where) rmSync(where.socketPath, { force: true });
          resolve();
        });
      }),
  };
}

/**
 * The control API over HTTP: `POST /control/<method>` with a JSON array of arguments (or one
 * JSON value, or nothing) calls `control[method](...args)` and answers its JSON result.
 * `GET /control/state` is `control.state()`.
 */
export function controlHandler(control: object): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  return async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://control');
    const m = /^\/control\/([A-Za-z][A-Za-z0-9]*)$/.exec(url.pathname);
    const fn = m ? (control as Record<string, unknown>)[m[1] as string] : undefined;
    if (!m || typeof fn !== 'function') {
      send(req, res, 404, JSON.stringify({ error: `unknown control method ${url.pathname}` }), { 'Content-Type': 'application/json' });
      return;
    }
    const raw = (await readBody(req)).toString('utf8').trim();
    let args: unknown[] = [];
    if (raw !== '') {
      try {
        const v: unknown = JSON.parse(raw);
        args = Array.isArray(v) ? v : [v];
      } catch {
        send(req, res, 400, JSON.stringify({ error: 'control body is not JSON' }), { 'Content-Type': 'application/json' });
        return;
      }
    }
    try {
      const out: unknown = await (fn as (...a: unknown[]) => unknown).apply(control, args);
      send(req, res, 200, JSON.stringify(out ?? null), { 'Content-Type': 'application/json' });
    } catch (e) {
      send(req, res, 400, JSON.stringify({ error: e instanceof Error ? e.message : String(e) }), { 'Content-Type': 'application/json' });
    }
  };
}

/** Starts the control listener a fake's options ask for (none when neither is given). */
export async function startControl(control: object, opts: FakeServerOptions): Promise<{ target: ControlTarget | undefined; close(): Promise<void> }> {
  if (opts.controlSocket !== undefined) {
    const l = await listen(controlHandler(control), { socketPath: opts.controlSocket });
    return { target: { socketPath: opts.controlSocket }, close: () => l.close() };
  }
  if (opts.controlPort !== undefined) {
    const l = await listen(controlHandler(control), { host: '127.0.0.1', port: opts.controlPort });
    return { target: { url: l.address }, close: () => l.close() };
  }
  return { target: undefined, close: async () => {} };
}

/**
 * Serves a fake where `opts` says, and its control API; close() runs `beforeClose` (ending long
 * polls and delays) and then closes both listeners.
 */
export async function serveFake<C extends object>(handler: (req: IncomingMessage, res: ServerResponse) => void | Promise<void>, control: C, opts: FakeServerOptions, beforeClose?: () => void): Promise<FakeHandle<C>> {
  const main = await listen(handler, { host: opts.host ?? '127.0.0.1', port: opts.port ?? 0 });
  const ctl = await startControl(control, opts);
  return {
    url: main.address,
    control,
    controlTarget: ctl.target,
    async close() {
      beforeClose?.();
      await Promise.all([main.close(), ctl.close()]);
    },
  };
}

/**
 * Calls a fake's control API over HTTP (from a test, or the lab driving a fake in a namespace).
 * @example await callControl({ socketPath: '/tmp/a.sock' }, 'triggerSpotInterruption', [{ action: 'stop' }])
 */
export function callControl(target: ControlTarget, method: string, args: unknown[] = []): Promise<unknown> {
  const body = Buffer.from(JSON.stringify(args), 'utf8');
  return new Promise((resolve, reject) => {
    const base = 'socketPath' in target ? { socketPath: target.socketPath, path: `/control/${method}` } : (() => {
      const u = new URL(`/control/${method}`, target.url);
      return { host: u.hostname, port: Number(u.port), path: u.pathname };
    })();
    const req = httpRequest({ ...base, method: 'POST', agent: false, headers: { 'Content-Type': 'application/json', 'Content-Length': String(body.length) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let v: unknown;
        try {
          v = JSON.parse(text);
        } catch {
          reject(new Error(`control ${method}: HTTP ${res.statusCode ?? 0}: ${text.slice(0, 200)}`));
          return;
        }
        if (res.statusCode !== 200) reject(new Error(`control ${method}: ${(v as { error?: string } | null)?.error ?? `HTTP ${res.statusCode ?? 0}`}`));
        else resolve(v);
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** RFC 3339 in UTC without fractional seconds, as IMDS writes times. */
export function rfc3339NoFraction(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}
