// Reads AWS eviction notices from IMDSv2 (reference/protocols.md §1): a cached session token
// (refreshed before it expires, and once more on a 401), the spot instance-action, the rebalance
// recommendation and scheduled maintenance (a JSON array, or the single object AEMM serves).
import type { Notice } from '../../../core/types.js';
import {
  FirstSeen,
  ReaderErrors,
  exchange,
  iso,
  normaliseBaseUrl,
  parseImdsEventDate,
  parseRfc3339,
  tryJson,
  type NoticeReader,
  type NoticeReaderOptions,
} from './common.js';
import type { MetadataRequest, MetadataResponse } from './transport.js';

/** The documented IMDS address. Never contacted by tests: they pass a fake's URL. */
export const AWS_METADATA_URL = 'http://169.254.169.254';

/**
 * A rebalance recommendation has no deadline of its own. We report noticeTime + 120 s: the
 * interruption notice that may follow comes at the earliest now and gives two more minutes, so the
 * node cannot be gone before that. It is the earliest possible moment, not a prediction.
 */
export const REBALANCE_DEADLINE_MS = 120_000;

export interface AwsNoticeReaderOptions extends NoticeReaderOptions {
  /** Token lifetime asked for, 1..21600 s. Default 21600 (6 h). */
  tokenTtlSeconds?: number;
}

const SPOT_PATH = '/latest/meta-data/spot/instance-action';
const REBALANCE_PATH = '/latest/meta-data/events/recommendations/rebalance';
const MAINTENANCE_PATH = '/latest/meta-data/events/maintenance/scheduled';
const SPOT_ACTIONS = new Set(['terminate', 'stop', 'hibernate']);

interface Token {
  value: string;
  expiresAt: number;
}

/**
 * AWS notice reader: one per node (the token belongs to the node's IMDS).
 * @example const r = new AwsNoticeReader({ transport: createHttpTransport(), baseUrl: imds.url, provider: 'aws' });
 * const notices = await r.poll('i-0abc');
 */
export class AwsNoticeReader implements NoticeReader {
  readonly cloud = 'aws' as const;
  private readonly base: string;
  private readonly ttl: number;
  private readonly timeoutMs: number;
  private readonly now: () => number;
  private readonly errors: ReaderErrors;
  private readonly seen: FirstSeen;
  private token: Token | undefined;
  private tokenPending: Promise<Token> | undefined;

  constructor(private readonly opts: AwsNoticeReaderOptions) {
    this.base = normaliseBaseUrl(opts.baseUrl);
    this.ttl = opts.tokenTtlSeconds ?? 21600;
    if (!Number.isInteger(this.ttl) || this.ttl < 1 || this.ttl > 21600) throw new RangeError(`tokenTtlSeconds must be an integer in 1..21600, got ${this.ttl}`);
    this.timeoutMs = opts.timeoutMs ?? 2000;
    this.now = opts.now ?? Date.now;
    this.errors = new ReaderErrors(opts.provider, 'aws');
    this.seen = new FirstSeen(this.now);
  }

  /** Polls instance-action, rebalance and scheduled maintenance. A 404 means "nothing there". */
  async poll(node: string): Promise<Notice[]> {
    const [spot, rebalance, maintenance] = await Promise.all([this.get(node, SPOT_PATH), this.get(node, REBALANCE_PATH), this.get(node, MAINTENANCE_PATH)]);
    const out = [...this.spotNotice(node, spot), ...this.rebalanceNotice(node, rebalance), ...this.maintenanceNotices(node, maintenance)];
    this.seen.retain(`aws:${node}:`, new Set(out.map((n) => n.id)));
    return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** Reads one identity item (`instance-id`, `placement/availability-zone`, ...) as text. */
  async identity(node: string, item: string): Promise<string> {
    const r = await this.get(node, `/latest/meta-data/${item}`);
    if (r.res.status !== 200) throw this.errors.status(node, r.req, r.res);
    return r.res.body.trim();
  }

  private async fetchToken(node: string): Promise<Token> {
    const req: MetadataRequest = { method: 'PUT', url: `${this.base}/latest/api/token`, headers: { 'X-aws-ec2-metadata-token-ttl-seconds': String(this.ttl) }, timeoutMs: this.timeoutMs };
    const started = this.now();
    const res = await exchange(this.opts.transport, this.errors, node, req);
    if (res.status !== 200) {
      const hint =
        res.status === 400 ? 'the token request was refused (TTL must be 1..21600)'
        : res.status === 403 ? 'IMDS refused the token request (IMDS disabled, or the request crossed a proxy/container hop)'
        : res.status === 404 || res.status === 405 ? 'this endpoint does not offer IMDSv2 tokens'
        : '';
      throw this.errors.status(node, req, res, hint);
    }
    const value = res.body.trim();
    if (value === '' || /[\s\0]/.test(value) || value.length > 4096) throw this.errors.garbage(node, req, res, 'a session token');
    const echoed = Number(res.headers['x-aws-ec2-metadata-token-ttl-seconds']);
    const ttlS = Number.isFinite(echoed) && echoed > 0 ? Math.min(echoed, this.ttl) : this.ttl;
    // Renew when 10% of the lifetime (at most a minute) is left, so a poll never races expiry.
    const margin = Math.min(60_000, ttlS * 100);
    return { value, expiresAt: started + ttlS * 1000 - margin };
  }

  private async getToken(node: string): Promise<Token> {
    if (this.token && this.now() < this.token.expiresAt) return this.token;
    // Concurrent polls share one PUT.
    this.tokenPending ??= this.fetchToken(node).finally(() => {
      this.tokenPending = undefined;
    });
    const t = await this.tokenPending;
    this.token = t;
    return t;
  }

  /** GET with the token; on 401 the token is dropped and the GET retried once with a fresh one. */
  private async get(node: string, path: string): Promise<{ req: MetadataRequest; res: MetadataResponse }> {
    const url = `${this.base}${path}`;
    let tok = await this.getToken(node);
    const req = (t: Token): MetadataRequest => ({ method: 'GET', url, headers: { 'X-aws-ec2-metadata-token': t.value }, timeoutMs: this.timeoutMs });
    let res = await exchange(this.opts.transport, this.errors, node, req(tok));
    if (res.status === 401) {
      if (this.token === tok) this.token = undefined;
      tok = await this.getToken(node);
      res = await exchange(this.opts.transport, this.errors, node, req(tok));
      if (res.status === 401) throw this.errors.status(node, req(tok), res, 'still unauthorized with a fresh IMDSv2 token');
    }
    return { req: { ...req(tok), headers: {} }, res };
  }

  private expectOkOr404(node: string, r: { req: MetadataRequest; res: MetadataResponse }): boolean {
    if (r.res.status === 404) return false;
    if (r.res.status !== 200) throw this.errors.status(node, r.req, r.res);
    return true;
  }

  private spotNotice(node: string, r: { req: MetadataRequest; res: MetadataResponse }): Notice[] {
    if (!this.expectOkOr404(node, r)) return [];
    const v = tryJson(r.res.body) as { action?: unknown; time?: unknown } | undefined;
    const time = typeof v?.time === 'string' ? parseRfc3339(v.time) : undefined;
    if (typeof v !== 'object' || v === null || typeof v.action !== 'string' || !SPOT_ACTIONS.has(v.action) || time === undefined) {
      throw this.errors.garbage(node, r.req, r.res, '{"action":"terminate|stop|hibernate","time":"<RFC 3339>"}');
    }
    const id = `aws:${node}:spot:${v.action}:${v.time as string}`;
    return [{ id, provider: this.opts.provider, node, source: 'aws', kind: 'preemption', action: v.action, deadline: iso(time), receivedAt: iso(this.seen.at(id)), detail: { time: v.time as string } }];
  }

  private rebalanceNotice(node: string, r: { req: MetadataRequest; res: MetadataResponse }): Notice[] {
    if (!this.expectOkOr404(node, r)) return [];
    const v = tryJson(r.res.body) as { noticeTime?: unknown } | undefined;
    const t = typeof v?.noticeTime === 'string' ? parseRfc3339(v.noticeTime) : undefined;
    if (t === undefined) throw this.errors.garbage(node, r.req, r.res, '{"noticeTime":"<RFC 3339>"}');
    const id = `aws:${node}:rebalance:${v?.noticeTime as string}`;
    return [{ id, provider: this.opts.provider, node, source: 'aws', kind: 'rebalance', action: 'rebalance-recommendation', deadline: iso(t + REBALANCE_DEADLINE_MS), receivedAt: iso(this.seen.at(id)), detail: { noticeTime: v?.noticeTime as string } }];
  }

  private maintenanceNotices(node: string, r: { req: MetadataRequest; res: MetadataResponse }): Notice[] {
    if (!this.expectOkOr404(node, r)) return [];
    if (r.res.body.trim() === '') return [];
    const v = tryJson(r.res.body);
    const expected = 'a JSON array (or object) of {Code, NotBefore "D Mon YYYY HH:MM:SS GMT", State, EventId}';
    if (typeof v !== 'object' || v === null) throw this.errors.garbage(node, r.req, r.res, expected);
    const events = Array.isArray(v) ? (v as unknown[]) : [v];
    const out: Notice[] = [];
    for (const e of events) {
      if (typeof e !== 'object' || e === null) throw this.errors.garbage(node, r.req, r.res, expected);
      const ev = e as Record<string, unknown>;
      const state = typeof ev.State === 'string' ? ev.State : 'active';
      if (state === 'completed' || state === 'canceled') continue;
      const nb = typeof ev.NotBefore === 'string' ? (parseImdsEventDate(ev.NotBefore) ?? parseRfc3339(ev.NotBefore)) : undefined;
      if (typeof ev.Code !== 'string' || nb === undefined) throw this.errors.garbage(node, r.req, r.res, expected);
      const eventId = typeof ev.EventId === 'string' && ev.EventId !== '' ? ev.EventId : `${ev.Code}@${iso(nb)}`;
      const id = `aws:${node}:maintenance:${eventId}`;
      const detail: Record<string, string> = { eventId, code: ev.Code, state };
      for (const k of ['NotAfter', 'NotBeforeDeadline', 'Description'] as const) if (typeof ev[k] === 'string') detail[k[0]?.toLowerCase() + k.slice(1)] = ev[k];
      out.push({ id, provider: this.opts.provider, node, source: 'aws', kind: 'maintenance', action: ev.Code, deadline: iso(nb), receivedAt: iso(this.seen.at(id)), detail });
    }
    return out;
  }
}
