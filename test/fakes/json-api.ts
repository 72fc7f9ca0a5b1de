// The request shell of the cloud REST API fakes that speak JSON to a bearer token (Azure Resource
// Manager in arm.ts, Compute Engine in gce.ts): each request is read whole and recorded (method,
// path, status, body) for the test to read; a request the API answers before any sign-in (ARM's
// token endpoint) goes to `open`; every other one is authenticated, its body parsed as JSON and
// routed, and an error thrown on the way is answered as the cloud answers errors. What the wire
// says (status codes, error bodies, headers) stays each fake's own: `fail`, `write`, `badJson`.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { listen } from './http-util.js';

/** What a fake records of one request; `status` is 0 until it is answered. */
export interface ApiRequest {
  method: string;
  path: string;
  status: number;
  body?: unknown;
}

/** One answer: its status, JSON body (none for e.g. 204) and headers. */
export interface ApiAnswer {
  status: number;
  json?: unknown;
  headers?: Record<string, string>;
}

export interface JsonApiOptions<R extends ApiRequest> {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (a free port). */
  port?: number;
  /** Serve HTTPS with this key and certificate (a test CA's). */
  tls?: { key: string; cert: string };
  /** Every request's record is pushed here as it arrives. */
  requests: R[];
  /** The record of a request, from the method and path (and status 0) and the URL; default those alone. */
  record?: (base: ApiRequest, url: URL) => R;
  /** Answers a request that needs no sign-in, with its raw body; undefined for every other request. */
  open?: (method: string, url: URL, raw: string) => ApiAnswer | undefined;
  /** Throws the cloud's error when the Authorization header does not sign the caller in. */
  authenticate: (authorization: string | undefined) => void;
  /** The cloud's error for a body that is not JSON. */
  badJson: () => Error;
  /** Answers an authenticated request with its parsed body (undefined when it had none); may throw. */
  route: (method: string, url: URL, body: unknown) => ApiAnswer;
  /** The answer for an error `authenticate`, `badJson` or `route` threw. */
  fail: (e: unknown) => ApiAnswer;
  /** Writes an answer with the cloud's headers. */
  write: (res: ServerResponse, a: ApiAnswer) => void;
}

/** Starts a JSON API fake; `url` is its base URL (`https://…` with tls). */
export async function startJsonApi<R extends ApiRequest>(o: JsonApiOptions<R>): Promise<{ url: string; port: number; close(): Promise<void> }> {
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const base: ApiRequest = { method: req.method ?? '', path: url.pathname, status: 0 };
      const record = o.record ? o.record(base, url) : (base as R);
      o.requests.push(record);
      const raw = Buffer.concat(chunks).toString('utf8');
      let answer: ApiAnswer;
      try {
        answer = o.open?.(record.method, url, raw) ?? authenticated(req, url, raw, record);
      } catch (e) {
        answer = o.fail(e);
      }
      record.status = answer.status;
      o.write(res, answer);
    });
  };
  const authenticated = (req: IncomingMessage, url: URL, raw: string, record: R): ApiAnswer => {
    o.authenticate(req.headers.authorization);
    let body: unknown;
    if (raw !== '') {
      try {
        body = JSON.parse(raw);
      } catch {
        throw o.badJson();
      }
      record.body = body;
    }
    return o.route(req.method ?? 'GET', url, body);
  };
  const srv = await listen(handler, { host: o.host ?? '127.0.0.1', port: o.port ?? 0, ...(o.tls ? { tls: o.tls } : {}) });
  return { url: srv.address, port: srv.port, close: () => srv.close() };
}
