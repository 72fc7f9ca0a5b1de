// Reads GCE eviction notices (reference/protocols.md §2): `instance/preempted` and
// `instance/maintenance-event`, by polling or by the `wait_for_change` long-poll with ETag /
// last_etag as Google's own client does (after an error it waits 5 s before asking again).
import type { Notice } from '../../../core/types.js';
import { FirstSeen, ReaderErrors, delay, exchange, iso, normaliseBaseUrl, type NoticeReader, type NoticeReaderOptions } from './common.js';
import type { MetadataRequest, MetadataResponse } from './transport.js';

/** The documented metadata host. Never contacted by tests: they pass a fake's URL. */
export const GCP_METADATA_URL = 'http://metadata.google.internal';

export interface GcpNoticeReaderOptions extends NoticeReaderOptions {
  /** Spot VMs get 30 s between ACPI soft-off and power-off; the deadline is first seen + this. */
  preemptionNoticeMs?: number;
  /** TERMINATE_ON_HOST_MAINTENANCE: first seen + this (about 60 s). */
  maintenanceNoticeMs?: number;
  /** How long each long-poll hangs on the server (timeout_sec). Default 60 s. */
  watchTimeoutSec?: number;
  /** Wait after a failed long-poll before the next. Default 5000 ms, as Google's client does. */
  retryDelayMs?: number;
}

type Key = 'instance/preempted' | 'instance/maintenance-event';
const KEYS: readonly Key[] = ['instance/preempted', 'instance/maintenance-event'];
const MAINTENANCE_VALUES = new Set(['NONE', 'MIGRATE_ON_HOST_MAINTENANCE', 'TERMINATE_ON_HOST_MAINTENANCE']);

interface Value {
  value: string;
  etag: string | undefined;
}

/**
 * GCE notice reader. `MIGRATE_ON_HOST_MAINTENANCE` is not reported: a live migration keeps the
 * VM and its workloads running, so there is nothing to move.
 * @example const r = new GcpNoticeReader({ transport, baseUrl: gce.url, provider: 'gcp' });
 * await r.watch('node-a', (n) => queue.push(n), ac.signal);
 */
export class GcpNoticeReader implements NoticeReader {
  readonly cloud = 'gcp' as const;
  private readonly base: string;
  private readonly timeoutMs: number;
  private readonly now: () => number;
  private readonly errors: ReaderErrors;
  private readonly seen: FirstSeen;

  constructor(private readonly opts: GcpNoticeReaderOptions) {
    this.base = normaliseBaseUrl(opts.baseUrl);
    this.timeoutMs = opts.timeoutMs ?? 2000;
    this.now = opts.now ?? Date.now;
    this.errors = new ReaderErrors(opts.provider, 'gcp');
    this.seen = new FirstSeen(this.now);
  }

  async poll(node: string): Promise<Notice[]> {
    const [pre, maint] = await Promise.all(KEYS.map((k) => this.read(node, k)));
    const out = [this.toNotice(node, 'instance/preempted', pre as Value), this.toNotice(node, 'instance/maintenance-event', maint as Value)].filter((n): n is Notice => n !== undefined);
    this.seen.retain(`gcp:${node}:`, new Set(out.map((n) => n.id)));
    return out;
  }

  /**
   * Long-polls both keys until `signal` aborts: a plain read first, then
   * `?wait_for_change=true&last_etag=<etag>&timeout_sec=N` in a loop. Each new notice is passed
   * to onNotice once. Errors are logged and retried after `retryDelayMs`; watch never rejects.
   */
  async watch(node: string, onNotice: (n: Notice) => void, signal: AbortSignal): Promise<void> {
    const emitted = new Set<string>();
    await Promise.all(KEYS.map((key) => this.watchKey(node, key, onNotice, signal, emitted)));
  }

  /** Reads one identity item (`instance/name`, `instance/zone`, ...) as text. */
  async identity(node: string, item: string): Promise<string> {
    return (await this.read(node, item)).value;
  }

  private async watchKey(node: string, key: Key, onNotice: (n: Notice) => void, signal: AbortSignal, emitted: Set<string>): Promise<void> {
    let etag: string | undefined;
    let first = true;
    const waitSec = this.opts.watchTimeoutSec ?? 60;
    while (!signal.aborted) {
      try {
        const v = await this.read(node, key, first ? undefined : { lastEtag: etag, timeoutSec: waitSec }, signal);
        first = false;
        etag = v.etag;
        const n = this.toNotice(node, key, v);
        if (n && !emitted.has(n.id)) {
          emitted.add(n.id);
          onNotice(n);
        }
      } catch (e) {
        if (signal.aborted) break;
        this.opts.log?.warn('gcp metadata long-poll failed; retrying', { node, key, error: e instanceof Error ? e.message : String(e) });
        await delay(this.opts.retryDelayMs ?? 5000, signal);
      }
    }
  }

  private async read(node: string, key: string, wait?: { lastEtag: string | undefined; timeoutSec: number }, signal?: AbortSignal): Promise<Value> {
    let url = `${this.base}/computeMetadata/v1/${key}`;
    let timeoutMs = this.timeoutMs;
    if (wait) {
      const q = new URLSearchParams({ wait_for_change: 'true' });
      if (wait.lastEtag !== undefined) q.set('last_etag', wait.lastEtag);
      q.set('timeout_sec', String(wait.timeoutSec));
      url += `?${q.toString()}`;
      // The client limit must outlast the server's hang.
      timeoutMs = wait.timeoutSec * 1000 + this.timeoutMs + 5000;
    }
    const req: MetadataRequest = { method: 'GET', url, headers: { 'Metadata-Flavor': 'Google' }, timeoutMs };
    if (signal) req.signal = signal;
    const res: MetadataResponse = await exchange(this.opts.transport, this.errors, node, req);
    if (res.status !== 200) {
      const hint = res.status === 403 ? 'the server refused the request (Metadata-Flavor header lost on the way?)' : res.status === 503 ? 'metadata server unavailable (host maintenance); will retry' : res.status === 404 ? `key ${key} is not defined` : '';
      throw this.errors.status(node, req, res, hint);
    }
    if (res.headers['metadata-flavor'] !== 'Google') throw this.errors.fail(node, req, 'answer lacks the "Metadata-Flavor: Google" header: this is not a GCE metadata server');
    if (/[\u0000-\u0008\u000e-\u001f\ufffd]/.test(res.body)) throw this.errors.garbage(node, req, res, 'a text value');
    return { value: res.body.trim(), etag: res.headers.etag };
  }

  private toNotice(node: string, key: Key, v: Value): Notice | undefined {
    const req = { method: 'GET' as const, url: `${this.base}/computeMetadata/v1/${key}` };
    const res = { status: 200, headers: {}, body: v.value };
    const version = v.etag ?? 'noetag';
    if (key === 'instance/preempted') {
      if (v.value === 'FALSE') return undefined;
      if (v.value !== 'TRUE') throw this.errors.garbage(node, req, res, 'TRUE or FALSE');
      const id = `gcp:${node}:preempted:${version}`;
      const t = this.seen.at(id);
      return { id, provider: this.opts.provider, node, source: 'gcp', kind: 'preemption', action: 'PREEMPTED', deadline: iso(t + (this.opts.preemptionNoticeMs ?? 30_000)), receivedAt: iso(t), detail: { key, ...(v.etag ? { etag: v.etag } : {}) } };
    }
    if (!/^[A-Z_]+$/.test(v.value)) throw this.errors.garbage(node, req, res, 'NONE, MIGRATE_ON_HOST_MAINTENANCE or TERMINATE_ON_HOST_MAINTENANCE');
    if (v.value !== 'TERMINATE_ON_HOST_MAINTENANCE') {
      if (!MAINTENANCE_VALUES.has(v.value)) this.opts.log?.warn('unknown GCE maintenance-event value ignored', { node, value: v.value });
      return undefined;
    }
    const id = `gcp:${node}:maintenance:${v.value}:${version}`;
    const t = this.seen.at(id);
    return { id, provider: this.opts.provider, node, source: 'gcp', kind: 'maintenance', action: v.value, deadline: iso(t + (this.opts.maintenanceNoticeMs ?? 60_000)), receivedAt: iso(t), detail: { key, ...(v.etag ? { etag: v.etag } : {}) } };
  }
}
