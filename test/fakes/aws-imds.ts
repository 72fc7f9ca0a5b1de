// A fake AWS EC2 Instance Metadata Service (IMDSv2) following reference/protocols.md §1 and the
// behaviour of amazon-ec2-metadata-mock (§4): session tokens with TTLs and 401s, GET/HEAD only,
// the spot instance-action / termination-time items (404 until triggered), the rebalance
// recommendation, scheduled maintenance (an array, or AEMM's single object), identity items, and
// injectable faults. Tests drive it through `control` or the HTTP control channel.
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  applyFault,
  faultApplies,
  rfc3339NoFraction,
  send,
  serveFake,
  type FakeHandle,
  type FakeServerOptions,
  type FaultSpec,
} from './http-util.js';

export interface AwsImdsOptions extends FakeServerOptions {
  /** Tokens required (IMDSv2 only). Default true; false allows IMDSv1 GETs without a token. */
  requireToken?: boolean;
  instanceId?: string;
  instanceType?: string;
  availabilityZone?: string;
  region?: string;
  /** Clock for token expiry and default times (ms). */
  now?: () => number;
}

export interface MaintenanceEventInput {
  code?: 'instance-reboot' | 'system-reboot' | 'system-maintenance' | 'instance-retirement' | 'instance-stop';
  state?: 'active' | 'completed' | 'canceled';
  /** ms since epoch or a preformatted `D Mon YYYY HH:MM:SS GMT` string. Default now + 1 h. */
  notBefore?: number | string;
  notAfter?: number | string;
  notBeforeDeadline?: number | string;
  eventId?: string;
  description?: string;
}

export interface AwsImdsState {
  tokensIssued: number;
  requests: { method: string; path: string; status: number; token: boolean }[];
  requireToken: boolean;
}

/** The in-process control API (also served over HTTP as POST /control/<method>). */
export interface AwsImdsControl {
  /** Schedules a spot interruption: 404 until `delaySec` passes, then `{action,time}`. */
  triggerSpotInterruption(opts?: { action?: 'terminate' | 'stop' | 'hibernate'; time?: string; delaySec?: number }): { action: string; time: string };
  clearSpotInterruption(): void;
  /** Emits a rebalance recommendation (`noticeTime` default now). */
  triggerRebalance(opts?: { noticeTime?: string }): { noticeTime: string };
  clearRebalance(): void;
  addMaintenance(ev?: MaintenanceEventInput): Record<string, string>;
  clearMaintenance(): void;
  /** `array` (the documented shape, default) or `object` (AEMM's single object). */
  setMaintenanceShape(shape: 'array' | 'object'): void;
  setFault(fault: FaultSpec | null): void;
  /** Serves `body` (with `status`) at a metadata path instead of the simulated item; null undoes it. */
  overrideItem(path: string, body: string | null, status?: number): void;
  setRequireToken(required: boolean): void;
  /** Makes every issued token invalid (as if their TTLs had passed). */
  expireTokens(): void;
  state(): AwsImdsState;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** `21 Jan 2019 09:00:43 GMT` (Go layout `2 Jan 2006 15:04:05 GMT`), as IMDS writes event dates. */
export function formatImdsEventDate(ms: number): string {
  const d = new Date(ms);
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getUTCDate()} ${MONTHS[d.getUTCMonth()] ?? '???'} ${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} GMT`;
}

const TOKEN_HEADER = 'x-aws-ec2-metadata-token';
const TTL_HEADER = 'x-aws-ec2-metadata-token-ttl-seconds';

/**
 * Starts a fake IMDS on 127.0.0.1 (by default a free port).
 * @example const imds = await startAwsImdsServer({}); imds.control.triggerSpotInterruption();
 */
export async function startAwsImdsServer(opts: AwsImdsOptions = {}): Promise<FakeHandle<AwsImdsControl>> {
  const now = opts.now ?? Date.now;
  const closing = new AbortController();
  const tokens = new Map<string, number>(); // token -> expiry (ms)
  let requireToken = opts.requireToken ?? true;
  let spot: { action: string; time: string; from: number } | undefined;
  let rebalance: { noticeTime: string } | undefined;
  let maintenance: Record<string, string>[] = [];
  let maintenanceShape: 'array' | 'object' = 'array';
  let fault: FaultSpec | undefined;
  const overrides = new Map<string, { body: string; status: number }>();
  const state: AwsImdsState = { tokensIssued: 0, requests: [], requireToken };
  const identity: Record<string, string> = {
    '/latest/meta-data/instance-id': opts.instanceId ?? 'i-1234567890abcdef0',
    '/latest/meta-data/instance-type': opts.instanceType ?? 'p4d.24xlarge',
    '/latest/meta-data/placement/availability-zone': opts.availabilityZone ?? 'us-east-1a',
    '/latest/meta-data/placement/region': opts.region ?? 'us-east-1',
  };
  let eventSeq = 0;

  const control: AwsImdsControl = {
    triggerSpotInterruption(o = {}) {
      const t = now();
      spot = { action: o.action ?? 'terminate', time: o.time ?? rfc3339NoFraction(t + (o.delaySec ?? 0) * 1000 + 120_000), from: t + (o.delaySec ?? 0) * 1000 };
      return { action: spot.action, time: spot.time };
    },
    clearSpotInterruption() {
      spot = undefined;
    },
    triggerRebalance(o = {}) {
      rebalance = { noticeTime: o.noticeTime ?? rfc3339NoFraction(now()) };
      return { ...rebalance };
    },
    clearRebalance() {
      rebalance = undefined;
    },
    addMaintenance(ev = {}) {
      const t = now();
      const date = (v: number | string | undefined, dflt: number): string => (typeof v === 'string' ? v : formatImdsEventDate(v ?? dflt));
      eventSeq += 1;
      const e: Record<string, string> = {
        NotBefore: date(ev.notBefore, t + 3_600_000),
        Code: ev.code ?? 'system-reboot',
        Description: ev.description ?? 'scheduled reboot',
        EventId: ev.eventId ?? `instance-event-${String(eventSeq).padStart(17, '0')}`,
        NotAfter: date(ev.notAfter, t + 7 * 86_400_000),
        NotBeforeDeadline: date(ev.notBeforeDeadline, t + 9 * 86_400_000),
        State: ev.state ?? 'active',
      };
      maintenance.push(e);
      return { ...e };
    },
    clearMaintenance() {
      maintenance = [];
    },
    setMaintenanceShape(shape) {
      if (shape !== 'array' && shape !== 'object') throw new Error(`shape must be "array" or "object"`);
      maintenanceShape = shape;
    },
    setFault(f) {
      fault = f ?? undefined;
    },
    overrideItem(path, body, status = 200) {
      if (body === null) overrides.delete(path);
      else overrides.set(path, { body, status });
    },
    setRequireToken(required) {
      requireToken = required;
      state.requireToken = required;
    },
    expireTokens() {
      tokens.clear();
    },
    state() {
      return structuredClone(state);
    },
  };

  function record(req: IncomingMessage, path: string, status: number): void {
    state.requests.push({ method: req.method ?? '', path, status, token: req.headers[TOKEN_HEADER] !== undefined });
    if (state.requests.length > 1000) state.requests.shift();
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://imds');
    const path = url.pathname;
    const reply = (status: number, body: string | Buffer, headers: Record<string, string> = {}): void => {
      record(req, path, status);
      send(req, res, status, body, headers);
    };

    if (path === '/latest/api/token') {
      if (req.method !== 'PUT') return reply(405, 'Method Not Allowed\n');
      if (req.headers['x-forwarded-for'] !== undefined) return reply(403, 'Forbidden\n');
      const raw = req.headers[TTL_HEADER];
      const ttlText = Array.isArray(raw) ? raw[0] : raw;
      const ttl = ttlText !== undefined && /^\d+$/.test(ttlText.trim()) ? Number(ttlText.trim()) : NaN;
      if (!Number.isInteger(ttl) || ttl < 1 || ttl > 21600) return reply(400, 'Bad Request\n');
      if (faultApplies(fault, path) && fault.paths?.length && (await applyFault(fault, req, res, closing.signal))) {
        record(req, path, fault.status ?? 200);
        return;
      }
      const token = randomBytes(24).toString('base64url');
      tokens.set(token, now() + ttl * 1000);
      state.tokensIssued += 1;
      return reply(200, token, { 'X-aws-ec2-metadata-token-ttl-seconds': String(ttl) });
    }

    if (!path.startsWith('/latest/')) return reply(404, 'Not Found\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply(405, 'Method Not Allowed\n');

    const rawTok = req.headers[TOKEN_HEADER];
    const tok = Array.isArray(rawTok) ? rawTok[0] : rawTok;
    if (tok !== undefined || requireToken) {
      const exp = tok === undefined ? undefined : tokens.get(tok);
      if (exp === undefined || exp <= now()) {
        if (exp !== undefined) tokens.delete(tok as string);
        return reply(401, 'Unauthorized\n');
      }
    }

    if (faultApplies(fault, path) && (await applyFault(fault, req, res, closing.signal))) {
      record(req, path, fault.status ?? 200);
      return;
    }

    const o = overrides.get(path);
    if (o) return reply(o.status, o.body);
    const id = identity[path];
    if (id !== undefined) return reply(200, id);
    switch (path) {
      case '/latest/meta-data/spot/instance-action':
        if (!spot || now() < spot.from) return reply(404, 'Not Found\n');
        return reply(200, JSON.stringify({ action: spot.action, time: spot.time }));
      case '/latest/meta-data/spot/termination-time':
        if (!spot || now() < spot.from || spot.action !== 'terminate') return reply(404, 'Not Found\n');
        return reply(200, spot.time);
      case '/latest/meta-data/events/recommendations/rebalance':
        if (!rebalance) return reply(404, 'Not Found\n');
        return reply(200, JSON.stringify(rebalance));
      case '/latest/meta-data/events/maintenance/scheduled': {
        const active = maintenance.filter((e) => e.State === 'active');
        if (maintenanceShape === 'object') return active[0] ? reply(200, JSON.stringify(active[0])) : reply(200, '[]');
        return reply(200, JSON.stringify(active));
      }
      case '/latest/meta-data/events/maintenance/history':
        return reply(200, JSON.stringify(maintenance.filter((e) => e.State !== 'active')));
      case '/latest/meta-data/':
      case '/latest/meta-data':
        return reply(200, ['events/', 'instance-id', 'instance-type', 'placement/', 'spot/'].join('\n'));
      default:
        return reply(404, 'Not Found\n');
    }
  }

  return serveFake(handle, control, opts, () => closing.abort());
}
