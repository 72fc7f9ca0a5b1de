// Reads Azure Scheduled Events (reference/protocols.md §3): only events whose Resources name this
// VM, mapped to notice kinds, and acknowledged with StartRequests when the caller decides to. The
// service switches itself on at the first request, which can take up to 2 minutes, so the first
// call gets a long timeout and later calls a short one.
import type { Notice, NoticeKind } from '../../../core/types.js';
import { FirstSeen, ReaderErrors, exchange, iso, normaliseBaseUrl, parseRfc1123, tryJson, type NoticeReader, type NoticeReaderOptions } from './common.js';
import type { MetadataRequest } from './transport.js';

/** The documented IMDS address. Never contacted by tests: they pass a fake's URL. */
export const AZURE_METADATA_URL = 'http://169.254.169.254';
export const AZURE_EVENTS_API_VERSION = '2020-07-01';

export interface AzureNoticeReaderOptions extends NoticeReaderOptions {
  /** This VM's name as it appears in Resources; read from the compute identity when absent. */
  vmName?: string;
  /** Limit for calls until the service has answered once. Default 130 000 ms. */
  firstCallTimeoutMs?: number;
  /** Preempt with an empty NotBefore (already started): deadline = first seen + this. Default 30 s. */
  preemptionNoticeMs?: number;
}

const KIND: Record<string, NoticeKind> = { Preempt: 'preemption', Terminate: 'termination', Reboot: 'maintenance', Redeploy: 'maintenance', Freeze: 'maintenance' };

/**
 * Azure Scheduled Events reader.
 * @example const r = new AzureNoticeReader({ transport, baseUrl: az.url, provider: 'azure', vmName: 'vm-a' });
 * for (const n of await r.poll('vm-a')) if (n.kind === 'preemption') await r.acknowledge(n);
 */
export class AzureNoticeReader implements NoticeReader {
  readonly cloud = 'azure' as const;
  private readonly base: string;
  private readonly now: () => number;
  private readonly errors: ReaderErrors;
  private readonly seen: FirstSeen;
  private warmedUp = false;
  private vmName: string | undefined;

  constructor(private readonly opts: AzureNoticeReaderOptions) {
    this.base = normaliseBaseUrl(opts.baseUrl);
    this.now = opts.now ?? Date.now;
    this.errors = new ReaderErrors(opts.provider, 'azure');
    this.seen = new FirstSeen(this.now);
    this.vmName = opts.vmName;
  }

  private get timeoutMs(): number {
    return this.warmedUp ? (this.opts.timeoutMs ?? 10_000) : (this.opts.firstCallTimeoutMs ?? 130_000);
  }

  private get eventsUrl(): string {
    return `${this.base}/metadata/scheduledevents?api-version=${AZURE_EVENTS_API_VERSION}`;
  }

  /** Reads a compute identity item (`name`, `zone`, `location`, `vmSize`) as text ('' when unset). */
  async identity(node: string, item: string): Promise<string> {
    const req: MetadataRequest = { method: 'GET', url: `${this.base}/metadata/instance/compute/${item}?api-version=2021-02-01&format=text`, headers: { Metadata: 'true' }, timeoutMs: this.timeoutMs };
    const res = await exchange(this.opts.transport, this.errors, node, req);
    if (res.status !== 200) throw this.errors.status(node, req, res);
    const v = res.body.trim();
    if (/[\r\n\0\ufffd]/.test(v)) throw this.errors.garbage(node, req, res, `a ${item}`);
    this.warmedUp = true;
    return v;
  }

  async poll(node: string): Promise<Notice[]> {
    if (this.vmName === undefined) {
      const v = await this.identity(node, 'name');
      if (v === '') throw this.errors.fail(node, { method: 'GET', url: `${this.base}/metadata/instance/compute/name` }, 'IMDS reports an empty VM name; set vmName');
      this.vmName = v;
    }
    const me = this.vmName.toLowerCase();
    const req: MetadataRequest = { method: 'GET', url: this.eventsUrl, headers: { Metadata: 'true' }, timeoutMs: this.timeoutMs };
    const res = await exchange(this.opts.transport, this.errors, node, req);
    if (res.status !== 200) throw this.errors.status(node, req, res, res.status === 400 ? 'the service refused the request (Metadata: true header lost, or api-version unsupported)' : '');
    this.warmedUp = true;
    const expected = '{"DocumentIncarnation":<int>,"Events":[{EventId,EventType,Resources,...}]}';
    const doc = tryJson(res.body) as { DocumentIncarnation?: unknown; Events?: unknown } | undefined;
    if (typeof doc !== 'object' || doc === null || typeof doc.DocumentIncarnation !== 'number' || !Array.isArray(doc.Events)) throw this.errors.garbage(node, req, res, expected);
    const out: Notice[] = [];
    for (const e of doc.Events as unknown[]) {
      const ev = e as Record<string, unknown> | null;
      if (typeof ev !== 'object' || ev === null || typeof ev.EventId !== 'string' || typeof ev.EventType !== 'string' || !Array.isArray(ev.Resources)) throw this.errors.garbage(node, req, res, expected);
      if (!(ev.Resources as unknown[]).some((r) => typeof r === 'string' && r.toLowerCase() === me)) continue;
      const kind = KIND[ev.EventType];
      if (!kind) {
        this.opts.log?.warn('unknown Azure EventType ignored', { node, eventType: ev.EventType });
        continue;
      }
      const notBeforeText = typeof ev.NotBefore === 'string' ? ev.NotBefore.trim() : '';
      const notBefore = notBeforeText === '' ? undefined : parseRfc1123(notBeforeText);
      if (notBeforeText !== '' && notBefore === undefined) throw this.errors.garbage(node, req, res, 'NotBefore as RFC 1123 ("Mon, 19 Sep 2016 18:29:47 GMT") or empty');
      const id = `azure:${node}:${ev.EventId}`;
      const first = this.seen.at(id);
      // Started events have no NotBefore: the event is under way. A started Preempt still leaves
      // the documented 30 s at best; the others are happening now.
      const deadline = notBefore ?? (kind === 'preemption' ? first + (this.opts.preemptionNoticeMs ?? 30_000) : first);
      const detail: Record<string, string | number | boolean> = { eventId: ev.EventId, eventStatus: typeof ev.EventStatus === 'string' ? ev.EventStatus : '', documentIncarnation: doc.DocumentIncarnation };
      if (typeof ev.EventSource === 'string') detail.eventSource = ev.EventSource;
      if (typeof ev.DurationInSeconds === 'number') detail.durationInSeconds = ev.DurationInSeconds;
      if (typeof ev.Description === 'string') detail.description = ev.Description;
      out.push({ id, provider: this.opts.provider, node, source: 'azure', kind, action: ev.EventType, deadline: iso(deadline), receivedAt: iso(first), detail });
    }
    this.seen.retain(`azure:${node}:`, new Set(out.map((n) => n.id)));
    return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /**
   * Approves the event with StartRequests, so it goes ahead now. Approval counts for every VM in
   * Resources: only one leader should call this.
   */
  async acknowledge(notice: Notice): Promise<void> {
    const eventId = notice.detail?.eventId;
    const req: MetadataRequest = { method: 'POST', url: this.eventsUrl, headers: { Metadata: 'true', 'Content-Type': 'application/json' }, timeoutMs: this.timeoutMs };
    if (typeof eventId !== 'string' || eventId === '') throw this.errors.fail(notice.node, req, `notice ${notice.id} carries no Azure EventId to acknowledge`);
    req.body = JSON.stringify({ StartRequests: [{ EventId: eventId }] });
    const res = await exchange(this.opts.transport, this.errors, notice.node, req);
    if (res.status !== 200) throw this.errors.status(notice.node, req, res, `StartRequests for ${eventId} was not accepted`);
  }
}
