// A fake of the Compute Engine REST API (compute/v1) for the instance calls spotfleet makes, as
// `@google-cloud/compute`'s REST transport sends them: instances list/get/insert/delete in a zone
// and zone operations get/wait. JSON in the API's own field names, errors as
// `{"error":{"code","message","errors":[{"reason","domain","message"}]}}`, creation as an
// Operation that finishes DONE (with `error.errors[].code` ZONE_RESOURCE_POOL_EXHAUSTED or
// QUOTA_EXCEEDED when `control.noCapacity` says so, as GCE reports a stock-out). Checked as GCE
// checks: a bearer token it issued (else 401 UNAUTHENTICATED), a UUID requestId (the same one
// answers with the same operation and creates nothing twice), names, a boot disk, a network
// interface, a known machine type, SPOT with an instanceTerminationAction. With a `boot` hook each
// created instance is handed (with its startup-script) to the test harness, which makes it a lab
// node; it stays STAGING until the hook answers with its address.
import { createHash } from 'node:crypto';
import { startJsonApi } from './json-api.js';

export interface FakeGceOptions {
  host?: string;
  port?: number;
  project?: string;
  zones?: string[];
  /** Machine types sold in every zone: their GPUs. */
  machineTypes?: Record<string, { gpus: number; gpuModel: string }>;
  /** Bearer tokens the API accepts (default ['fake-gce-token']). */
  tokens?: string[];
  boot?: (instance: FakeGceInstance, startupScript: string | undefined) => Promise<{ networkIP?: string; natIP?: string } | undefined>;
  onDelete?: (instance: FakeGceInstance) => void | Promise<void>;
  now?: () => number;
}

export interface FakeGceInstance {
  id: string;
  name: string;
  zone: string;
  machineType: string;
  status: 'PROVISIONING' | 'STAGING' | 'RUNNING' | 'STOPPING' | 'TERMINATED';
  provisioningModel: 'SPOT' | 'STANDARD';
  instanceTerminationAction?: string;
  labels: Record<string, string>;
  metadata: Record<string, string>;
  networkIP: string;
  natIP?: string;
  creationTimestamp: string;
  /** The insert body as received. */
  resource: Record<string, unknown>;
  deleted: boolean;
  /** Who ended it: `user` (instances.delete) or `preempted`. */
  endedBy?: 'user' | 'preempted';
}

export interface FakeGceRequest {
  method: string;
  path: string;
  status: number;
  requestId?: string;
  body?: unknown;
}

export interface FakeGceCapacityFault {
  machineType?: string;
  zone?: string;
  provisioningModel?: 'SPOT' | 'STANDARD';
  code?: 'ZONE_RESOURCE_POOL_EXHAUSTED' | 'ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS' | 'QUOTA_EXCEEDED';
}

export interface FakeGce {
  /** Base URL (scheme, host, port): the client's endpoint. */
  url: string;
  host: string;
  port: number;
  project: string;
  close(): Promise<void>;
  control: {
    readonly requests: readonly FakeGceRequest[];
    instances(): FakeGceInstance[];
    noCapacity(f: FakeGceCapacityFault): void;
    clearCapacityFaults(): void;
    /** Preempts a SPOT instance as GCE does (DELETE action: it goes away). */
    preempt(name: string): void;
  };
}

class GceError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

const NAME = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

interface Op {
  id: string;
  name: string;
  zone: string;
  operationType: string;
  targetName: string;
  targetId: string;
  status: 'PENDING' | 'RUNNING' | 'DONE';
  insertTime: string;
  error?: { errors: { code: string; message: string }[] };
  httpErrorStatusCode?: number;
  httpErrorMessage?: string;
}

/**
 * Starts the fake on 127.0.0.1.
 * @example
 * const gce = await startFakeGce({ machineTypes: { 'a2-highgpu-1g': { gpus: 1, gpuModel: 'A100' } } });
 * new InstancesClient({ fallback: true, apiEndpoint: gce.host, port: gce.port, protocol: 'http', authClient });
 */
export async function startFakeGce(opts: FakeGceOptions = {}): Promise<FakeGce> {
  const project = opts.project ?? 'fake-project';
  const zones = opts.zones ?? ['us-central1-a', 'us-central1-b'];
  const types = opts.machineTypes ?? { 'a2-highgpu-1g': { gpus: 1, gpuModel: 'A100' } };
  const tokens = new Set(opts.tokens ?? ['fake-gce-token']);
  const now = opts.now ?? Date.now;
  const instances = new Map<string, FakeGceInstance>();
  const ops = new Map<string, Op>();
  const byRequestId = new Map<string, { fingerprint: string; op: Op }>();
  const requests: FakeGceRequest[] = [];
  const faults: FakeGceCapacityFault[] = [];
  let seq = 0;
  let base = '';
  const numericId = (): string => String(BigInt(`0x${createHash('sha1').update(`gce:${++seq}`).digest('hex').slice(0, 15)}`));
  const zoneUrl = (z: string): string => `${base}/compute/v1/projects/${project}/zones/${z}`;
  const key = (zone: string, name: string): string => `${zone}/${name}`;

  function instanceJson(i: FakeGceInstance): Record<string, unknown> {
    const items = Object.entries(i.metadata).map(([k, value]) => ({ key: k, value }));
    const nic: Record<string, unknown> = { name: 'nic0', network: `${base}/compute/v1/projects/${project}/global/networks/default`, networkIP: i.networkIP };
    if (i.natIP !== undefined) nic.accessConfigs = [{ kind: 'compute#accessConfig', name: 'External NAT', type: 'ONE_TO_ONE_NAT', natIP: i.natIP }];
    const sched: Record<string, unknown> = { provisioningModel: i.provisioningModel, onHostMaintenance: 'TERMINATE', automaticRestart: false, preemptible: false };
    if (i.instanceTerminationAction !== undefined) sched.instanceTerminationAction = i.instanceTerminationAction;
    return {
      kind: 'compute#instance',
      id: i.id,
      creationTimestamp: i.creationTimestamp,
      name: i.name,
      machineType: `${zoneUrl(i.zone)}/machineTypes/${i.machineType}`,
      status: i.status,
      zone: zoneUrl(i.zone),
      networkInterfaces: [nic],
      metadata: { kind: 'compute#metadata', fingerprint: createHash('sha1').update(JSON.stringify(items)).digest('base64').slice(0, 12), items },
      labels: i.labels,
      scheduling: sched,
      selfLink: `${zoneUrl(i.zone)}/instances/${i.name}`,
      disks: (i.resource.disks) ?? [],
      guestAccelerators: (i.resource.guestAccelerators) ?? [],
    };
  }

  function opJson(o: Op): Record<string, unknown> {
    const j: Record<string, unknown> = {
      kind: 'compute#operation',
      id: o.id,
      name: o.name,
      zone: zoneUrl(o.zone),
      operationType: o.operationType,
      targetLink: `${zoneUrl(o.zone)}/instances/${o.targetName}`,
      targetId: o.targetId,
      status: o.status,
      progress: o.status === 'DONE' ? 100 : 0,
      insertTime: o.insertTime,
      selfLink: `${zoneUrl(o.zone)}/operations/${o.name}`,
    };
    if (o.error) j.error = o.error;
    if (o.httpErrorStatusCode !== undefined) {
      j.httpErrorStatusCode = o.httpErrorStatusCode;
      j.httpErrorMessage = o.httpErrorMessage;
    }
    return j;
  }

  function newOp(zone: string, type: string, target: string, targetId: string): Op {
    const o: Op = { id: numericId(), name: `operation-${now()}-${createHash('sha1').update(String(seq)).digest('hex').slice(0, 12)}`, zone, operationType: type, targetName: target, targetId, status: 'DONE', insertTime: new Date(now()).toISOString() };
    ops.set(key(zone, o.name), o);
    return o;
  }

  /** `labels.KEY = "VALUE"` terms joined by AND (the subset of the filter grammar spotfleet uses). */
  function matches(i: FakeGceInstance, filter: string | undefined): boolean {
    if (filter === undefined || filter.trim() === '') return true;
    for (const term of filter.split(/\s+AND\s+/)) {
      const m = /^\(?\s*labels\.([a-z0-9_-]+)\s*=\s*"?([^")]*)"?\s*\)?$/.exec(term.trim());
      if (!m) throw new GceError(400, 'invalid', `Invalid value for field 'filter': '${filter}'. Invalid list filter expression.`);
      if (i.labels[m[1] as string] !== m[2]) return false;
    }
    return true;
  }

  function ended(i: FakeGceInstance, by: 'user' | 'preempted'): void {
    if (i.deleted) return;
    i.deleted = true;
    i.endedBy = by;
    i.status = 'STOPPING';
    setTimeout(() => {
      i.status = 'TERMINATED';
    }, 50).unref();
    void Promise.resolve(opts.onDelete?.(i)).catch(() => undefined);
  }

  function insert(zone: string, requestId: string | undefined, body: Record<string, unknown>): Op {
    if (requestId !== undefined && !UUID.test(requestId)) throw new GceError(400, 'invalid', `Invalid value for field 'requestId': '${requestId}'. The request id must be a valid UUID with the exception that zero UUID is not supported (00000000-0000-0000-0000-000000000000).`);
    const fingerprint = JSON.stringify(body);
    if (requestId !== undefined) {
      const seen = byRequestId.get(requestId);
      if (seen) return seen.op;
    }
    const name = body.name;
    if (typeof name !== 'string') throw new GceError(400, 'required', "Required field 'resource.name' not specified");
    if (!NAME.test(name)) throw new GceError(400, 'invalid', `Invalid value for field 'resource.name': '${name}'. Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'`);
    const mt = typeof body.machineType === 'string' ? body.machineType.split('/').pop() ?? '' : '';
    if (!mt) throw new GceError(400, 'required', "Required field 'resource.machineType' not specified");
    if (!(mt in types)) throw new GceError(400, 'invalid', `Invalid value for field 'resource.machineType': '${String(body.machineType)}'. Machine type with name '${mt}' does not exist in zone '${zone}'.`);
    const disks = Array.isArray(body.disks) ? (body.disks as Record<string, unknown>[]) : [];
    const bootDisk = disks.find((d) => d.boot === true);
    if (!bootDisk || !(bootDisk.initializeParams as Record<string, unknown> | undefined)?.sourceImage) throw new GceError(400, 'required', "Invalid value for field 'resource.disks': ''. Boot disk must be specified.");
    if (!Array.isArray(body.networkInterfaces) || body.networkInterfaces.length === 0) throw new GceError(400, 'required', "Required field 'resource.networkInterfaces' not specified");
    const sched = (body.scheduling ?? {}) as Record<string, unknown>;
    const model = sched.provisioningModel === 'SPOT' ? 'SPOT' : 'STANDARD';
    if (model === 'SPOT' && sched.instanceTerminationAction !== 'DELETE' && sched.instanceTerminationAction !== 'STOP') {
      throw new GceError(400, 'invalid', "Invalid value for field 'resource.scheduling.instanceTerminationAction': ''. Spot VMs require instanceTerminationAction STOP or DELETE.");
    }
    if (instances.has(key(zone, name)) && !instances.get(key(zone, name))?.deleted) throw new GceError(409, 'alreadyExists', `The resource 'projects/${project}/zones/${zone}/instances/${name}' already exists`);
    const labels = (body.labels ?? {}) as Record<string, string>;
    for (const [k, v] of Object.entries(labels)) {
      if (!/^[a-z][a-z0-9_-]{0,62}$/.test(k) || !/^[a-z0-9_-]{0,63}$/.test(v)) throw new GceError(400, 'invalid', `Invalid value for field 'resource.labels': '${k}'. Label keys and values may contain lowercase letters, digits, underscores and dashes (63 characters at most).`);
    }
    const items = ((body.metadata as { items?: { key: string; value: string }[] } | undefined)?.items ?? []);
    const metadata: Record<string, string> = {};
    for (const it of items) metadata[it.key] = it.value;
    const id = numericId();
    const fault = faults.find((f) => (f.machineType === undefined || f.machineType === mt) && (f.zone === undefined || f.zone === zone) && (f.provisioningModel === undefined || f.provisioningModel === model));
    const op = newOp(zone, 'insert', name, id);
    if (fault) {
      const code = fault.code ?? 'ZONE_RESOURCE_POOL_EXHAUSTED';
      const message =
        code === 'QUOTA_EXCEEDED'
          ? `Quota '${(types[mt]?.gpuModel ?? 'GPU').toUpperCase().replace(/\W+/g, '_')}_GPUS' exceeded.  Limit: 0.0 in region ${zone.replace(/-[a-z]$/, '')}.`
          : `The zone 'projects/${project}/zones/${zone}' does not have enough resources available to fulfill the request.  Try a different zone, or try again later.`;
      op.error = { errors: [{ code, message }] };
      op.httpErrorStatusCode = code === 'QUOTA_EXCEEDED' ? 403 : 503;
      op.httpErrorMessage = code === 'QUOTA_EXCEEDED' ? 'FORBIDDEN' : 'SERVICE UNAVAILABLE';
    } else {
      const i: FakeGceInstance = {
        id,
        name,
        zone,
        machineType: mt,
        status: 'PROVISIONING',
        provisioningModel: model,
        labels: { ...labels },
        metadata,
        networkIP: `10.128.${(seq >> 8) & 255}.${seq & 255}`,
        creationTimestamp: new Date(now()).toISOString().replace('Z', '-00:00'),
        resource: body,
        deleted: false,
      };
      if (typeof sched.instanceTerminationAction === 'string') i.instanceTerminationAction = sched.instanceTerminationAction;
      instances.set(key(zone, name), i);
      if (opts.boot) {
        i.status = 'STAGING';
        opts.boot({ ...i }, metadata['startup-script']).then(
          (addr) => {
            if (i.deleted) return;
            if (addr?.networkIP !== undefined) i.networkIP = addr.networkIP;
            if (addr?.natIP !== undefined) i.natIP = addr.natIP;
            i.status = 'RUNNING';
          },
          () => ended(i, 'user'),
        );
      } else {
        i.status = 'RUNNING';
      }
    }
    if (requestId !== undefined) byRequestId.set(requestId, { fingerprint, op });
    return op;
  }

  function route(method: string, path: string, query: URLSearchParams, body: unknown): { status: number; json: unknown } {
    const m = /^\/compute\/v1\/projects\/([^/]+)\/zones\/([^/]+)\/(instances|operations)(?:\/([^/]+))?(?:\/(wait))?$/.exec(path);
    if (!m) throw new GceError(404, 'notFound', `The requested URL ${path} was not found on this server.`);
    const [, p, zone, kind, name, wait] = m as unknown as [string, string, string, string, string | undefined, string | undefined];
    if (p !== project) throw new GceError(404, 'notFound', `The resource 'projects/${p}' was not found`);
    if (!zones.includes(zone)) throw new GceError(400, 'invalid', `Invalid value for field 'zone': '${zone}'. Unknown zone.`);
    if (kind === 'operations') {
      if (name === undefined) throw new GceError(405, 'httpMethodNotAllowed', 'list of operations is not part of this fake');
      if ((method === 'GET' && !wait) || (method === 'POST' && wait)) {
        const o = ops.get(key(zone, name));
        if (!o) throw new GceError(404, 'notFound', `The resource 'projects/${project}/zones/${zone}/operations/${name}' was not found`);
        return { status: 200, json: opJson(o) };
      }
      throw new GceError(405, 'httpMethodNotAllowed', `${method} is not allowed here`);
    }
    if (method === 'GET' && name === undefined) {
      const list = [...instances.values()].filter((i) => i.zone === zone && !(i.deleted && i.status === 'TERMINATED') && matches(i, query.get('filter') ?? undefined)).sort((a, b) => a.name.localeCompare(b.name));
      const max = Number(query.get('maxResults') ?? '500');
      const from = Number(query.get('pageToken') ?? '0');
      const page = list.slice(from, from + max);
      const out: Record<string, unknown> = { kind: 'compute#instanceList', id: `projects/${project}/zones/${zone}/instances`, items: page.map(instanceJson), selfLink: `${zoneUrl(zone)}/instances` };
      if (from + max < list.length) out.nextPageToken = String(from + max);
      return { status: 200, json: out };
    }
    if (method === 'GET' && name !== undefined) {
      const i = instances.get(key(zone, name));
      if (!i || (i.deleted && i.status === 'TERMINATED')) throw new GceError(404, 'notFound', `The resource 'projects/${project}/zones/${zone}/instances/${name}' was not found`);
      return { status: 200, json: instanceJson(i) };
    }
    if (method === 'POST' && name === undefined) {
      if (typeof body !== 'object' || body === null) throw new GceError(400, 'parseError', 'This API does not support parsing form-encoded input.');
      return { status: 200, json: opJson(insert(zone, query.get('requestId') ?? undefined, body as Record<string, unknown>)) };
    }
    if (method === 'DELETE' && name !== undefined) {
      const rid = query.get('requestId') ?? undefined;
      if (rid !== undefined && !UUID.test(rid)) throw new GceError(400, 'invalid', `Invalid value for field 'requestId': '${rid}'.`);
      if (rid !== undefined && byRequestId.has(rid)) return { status: 200, json: opJson(byRequestId.get(rid)!.op) };
      const i = instances.get(key(zone, name));
      if (!i || i.deleted) throw new GceError(404, 'notFound', `The resource 'projects/${project}/zones/${zone}/instances/${name}' was not found`);
      ended(i, 'user');
      const op = newOp(zone, 'delete', name, i.id);
      if (rid !== undefined) byRequestId.set(rid, { fingerprint: '', op });
      return { status: 200, json: opJson(op) };
    }
    throw new GceError(405, 'httpMethodNotAllowed', `${method} is not allowed on ${path}`);
  }

  const api = await startJsonApi<FakeGceRequest>({
    ...(opts.host !== undefined ? { host: opts.host } : {}),
    ...(opts.port !== undefined ? { port: opts.port } : {}),
    requests,
    record: (r, url) => {
      const rid = url.searchParams.get('requestId');
      return rid !== null ? { ...r, requestId: rid } : r;
    },
    authenticate: (authorization) => {
      const token = /^Bearer (.+)$/.exec(authorization ?? '')?.[1];
      if (token === undefined || !tokens.has(token)) {
        throw new GceError(401, 'authError', 'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.');
      }
    },
    badJson: () => new GceError(400, 'parseError', 'Invalid JSON payload received.'),
    route: (method, url, body) => route(method, url.pathname, url.searchParams, body),
    fail: (e) => {
      const err = e instanceof GceError ? e : new GceError(500, 'backendError', e instanceof Error ? e.message : String(e));
      const status = err.status === 401 ? 'UNAUTHENTICATED' : err.status === 403 ? 'PERMISSION_DENIED' : err.status === 404 ? 'NOT_FOUND' : err.status === 409 ? 'ALREADY_EXISTS' : err.status >= 500 ? 'INTERNAL' : 'INVALID_ARGUMENT';
      return { status: err.status, json: { error: { code: err.status, message: err.message, errors: [{ message: err.message, domain: 'global', reason: err.reason }], status } } };
    },
    write: (res, a) => {
      const text = JSON.stringify(a.json);
      res.writeHead(a.status, { 'content-type': 'application/json; charset=UTF-8', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    },
  });
  base = api.url;
  return {
    url: base,
    host: new URL(base).hostname,
    port: api.port,
    project,
    close: () => api.close(),
    control: {
      requests,
      instances: () => [...instances.values()].map((i) => ({ ...i })),
      noCapacity: (f) => void faults.push({ ...f }),
      clearCapacityFaults: () => void (faults.length = 0),
      preempt(name) {
        const i = [...instances.values()].find((x) => x.name === name && !x.deleted);
        if (!i) throw new Error(`no live instance ${name}`);
        if (i.provisioningModel !== 'SPOT') throw new Error(`${name} is not a Spot VM`);
        ended(i, 'preempted');
      },
    },
  };
}
