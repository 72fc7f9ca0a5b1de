// A fake of the Compute Engine API's operation lists, as a fleet-level preemption reader uses them:
// `GET /compute/v1/projects/P/zones/Z/operations` (compute#operationList) and
// `GET /compute/v1/projects/P/aggregated/operations` (compute#operationAggregatedList, items per
// `zones/Z` scope, a NO_RESULTS_ON_PAGE warning for an empty scope), with `filter` on
// operationType and insertTime (`field = "v"`, `(a = "x") AND (b > "y")`), `maxResults` and
// `pageToken`. A preempted VM shows as a DONE operation of type `compute.instances.preempted` by
// user `system` whose targetLink names the instance. Bearer-token auth; errors in Google's JSON
// error shape. A control API posts preemptions and counts requests.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { serveFake, type FakeHandle, type FakeServerOptions } from './http-util.js';

export interface FakeGceOperationsOptions extends FakeServerOptions {
  /** The bearer token requests must carry. Default `fake-gce-token`. */
  token?: string;
  /** Zones of the project (the aggregated list has a scope for each). Default us-central1-a/b/c. */
  zones?: string[];
}

export interface FakeGceOperation {
  kind: 'compute#operation';
  id: string;
  name: string;
  zone: string;
  operationType: string;
  targetLink: string;
  targetId: string;
  status: 'DONE';
  statusMessage: string;
  user: string;
  progress: number;
  insertTime: string;
  startTime: string;
  endTime: string;
  selfLink: string;
}

export interface FakeGceOperationsControl {
  /** Records a preemption of `instance` (an operation of type compute.instances.preempted). */
  preempt(project: string, zone: string, instance: string, at?: number): FakeGceOperation;
  /** Records another kind of operation (a user's start, say) that a preemption filter must skip. */
  operation(project: string, zone: string, instance: string, operationType: string, at?: number): FakeGceOperation;
  requests(): { path: string; filter?: string; at: number }[];
  failWith(status: number | undefined): void;
}

const API = 'https://www.googleapis.com/compute/v1';

/** RFC 3339 with milliseconds and a numeric offset, as the API writes insertTime. */
function rfc3339(ms: number): string {
  return new Date(ms).toISOString().replace('Z', '+00:00');
}

interface Clause {
  field: string;
  op: string;
  value: string;
}

/** The subset of the list filter grammar readers use; undefined when it cannot be parsed. */
export function parseOperationFilter(filter: string): Clause[] | undefined {
  const f = filter.trim();
  if (f === '') return [];
  const one = /^(\w+)\s*(=|!=|>=|<=|>|<)\s*"([^"]*)"$/;
  const bare = one.exec(f);
  if (bare) return [{ field: bare[1] as string, op: bare[2] as string, value: bare[3] as string }];
  const out: Clause[] = [];
  const rest = f.replace(/\(([^()]*)\)/g, (_m, inner: string) => {
    const c = one.exec(inner.trim());
    if (c) out.push({ field: c[1] as string, op: c[2] as string, value: c[3] as string });
    else out.push({ field: '', op: '', value: '' });
    return ' ';
  });
  if (!/^(\s|AND)*$/.test(rest) || out.some((c) => c.field === '')) return undefined;
  return out;
}

function matches(op: FakeGceOperation, clauses: Clause[]): boolean {
  return clauses.every((c) => {
    const v = (op as unknown as Record<string, unknown>)[c.field];
    if (typeof v !== 'string') return false;
    if (c.field.endsWith('Time')) {
      const a = Date.parse(v);
      const b = Date.parse(c.value);
      if (c.op === '>') return a > b;
      if (c.op === '<') return a < b;
      if (c.op === '>=') return a >= b;
      if (c.op === '<=') return a <= b;
    }
    if (c.op === '=') return v === c.value;
    if (c.op === '!=') return v !== c.value;
    return false;
  });
}

/** Starts the fake Compute API. Point a reader's `endpoint` at `url`. */
export async function startFakeGceOperations(opts: FakeGceOperationsOptions = {}): Promise<FakeHandle<FakeGceOperationsControl>> {
  const token = opts.token ?? 'fake-gce-token';
  const zones = opts.zones ?? ['us-central1-a', 'us-central1-b', 'us-central1-c'];
  const ops = new Map<string, FakeGceOperation[]>(); // project/zone → operations, oldest first
  const requests: { path: string; filter?: string; at: number }[] = [];
  let failStatus: number | undefined;
  let seq = 0;

  const record = (project: string, zone: string, instance: string, operationType: string, at: number): FakeGceOperation => {
    seq += 1;
    const name = `${operationType === 'compute.instances.preempted' ? 'systemevent' : 'operation'}-${at}-${randomUUID().slice(0, 13)}`;
    const zoneLink = `${API}/projects/${project}/zones/${zone}`;
    const op: FakeGceOperation = {
      kind: 'compute#operation',
      id: String(7_000_000_000_000_000_000n + BigInt(seq)),
      name,
      zone: zoneLink,
      operationType,
      targetLink: `${zoneLink}/instances/${instance}`,
      targetId: String(1_000_000_000_000 + seq),
      status: 'DONE',
      statusMessage: operationType === 'compute.instances.preempted' ? 'Instance was preempted.' : '',
      user: operationType === 'compute.instances.preempted' ? 'system' : 'ops@example.com',
      progress: 100,
      insertTime: rfc3339(at),
      startTime: rfc3339(at),
      endTime: rfc3339(at + 1000),
      selfLink: `${zoneLink}/operations/${name}`,
    };
    const k = `${project}/${zone}`;
    ops.set(k, [...(ops.get(k) ?? []), op]);
    return op;
  };
  const control: FakeGceOperationsControl = {
    preempt: (project, zone, instance, at = Date.now()) => record(project, zone, instance, 'compute.instances.preempted', at),
    operation: (project, zone, instance, type, at = Date.now()) => record(project, zone, instance, type, at),
    requests: () => [...requests],
    failWith(status) {
      failStatus = status;
    },
  };

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const reply = (status: number, body: unknown): void => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'Content-Type': 'application/json; charset=UTF-8', 'Content-Length': String(Buffer.byteLength(text)) });
      res.end(text);
    };
    const error = (code: number, status: string, message: string, reason: string): void =>
      reply(code, { error: { code, message, errors: [{ message, domain: 'global', reason }], status } });
    const u = new URL(req.url ?? '/', 'http://fake');
    const filter = u.searchParams.get('filter') ?? undefined;
    requests.push({ path: u.pathname, ...(filter !== undefined ? { filter } : {}), at: Date.now() });
    if (req.headers.authorization !== `Bearer ${token}`) {
      return error(401, 'UNAUTHENTICATED', 'Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential.', 'required');
    }
    if (failStatus !== undefined) return error(failStatus, failStatus === 429 ? 'RESOURCE_EXHAUSTED' : 'UNAVAILABLE', 'Rate Limit Exceeded', failStatus === 429 ? 'rateLimitExceeded' : 'backendError');
    if (req.method !== 'GET') return error(405, 'INVALID_ARGUMENT', 'Method not allowed', 'invalid');
    const zoneList = /^\/compute\/v1\/projects\/([^/]+)\/zones\/([^/]+)\/operations$/.exec(u.pathname);
    const aggregated = /^\/compute\/v1\/projects\/([^/]+)\/aggregated\/operations$/.exec(u.pathname);
    if (!zoneList && !aggregated) return error(404, 'NOT_FOUND', `The requested URL ${u.pathname} was not found.`, 'notFound');
    const clauses = parseOperationFilter(filter ?? '');
    if (!clauses) return error(400, 'INVALID_ARGUMENT', `Invalid value for field 'filter': '${filter ?? ''}'. Invalid list filter expression.`, 'invalid');
    const max = Math.min(500, Math.max(1, Number(u.searchParams.get('maxResults') ?? 500) || 500));
    const offset = u.searchParams.has('pageToken') ? Number(Buffer.from(u.searchParams.get('pageToken') as string, 'base64url').toString()) : 0;
    if (!Number.isInteger(offset) || offset < 0) return error(400, 'INVALID_ARGUMENT', "Invalid value for field 'pageToken'.", 'invalid');
    const project = (zoneList ?? aggregated)?.[1] as string;
    const scopes = zoneList ? [zoneList[2] as string] : zones;
    const all: { zone: string; op: FakeGceOperation }[] = [];
    for (const z of scopes) for (const op of ops.get(`${project}/${z}`) ?? []) if (matches(op, clauses)) all.push({ zone: z, op });
    const page = all.slice(offset, offset + max);
    const next = offset + max < all.length ? { nextPageToken: Buffer.from(String(offset + max)).toString('base64url') } : {};
    if (zoneList) {
      const id = `projects/${project}/zones/${zoneList[2] as string}/operations`;
      return reply(200, { kind: 'compute#operationList', id, ...(page.length > 0 ? { items: page.map((x) => x.op) } : {}), selfLink: `${API}/${id}`, ...next });
    }
    const items: Record<string, unknown> = {};
    for (const z of zones) {
      const mine = page.filter((x) => x.zone === z).map((x) => x.op);
      items[`zones/${z}`] = mine.length > 0
        ? { operations: mine }
        : { warning: { code: 'NO_RESULTS_ON_PAGE', message: `There are no results for scope 'zones/${z}' on this page.`, data: [{ key: 'scope', value: `zones/${z}` }] } };
    }
    const id = `projects/${project}/aggregated/operations`;
    return reply(200, { kind: 'compute#operationAggregatedList', id, items, selfLink: `${API}/${id}`, ...next });
  };

  return serveFake(handler, control, opts);
}
