// What the three notice readers share: the reader interface and options, turning transport
// failures and bad answers into ProviderErrors that name the provider and the URL, the dates the
// clouds write (RFC 3339, IMDS `D Mon YYYY HH:MM:SS GMT`, RFC 1123), and first-seen bookkeeping
// that keeps a notice's id, receivedAt and deadline stable across polls.
import { nodeAddress } from '../../../core/address.js';
import { ProviderError } from '../../../core/errors.js';
import type { Notice } from '../../../core/types.js';
import type { ProviderLogger } from '../../sdk.js';
import { MetadataTransportError, type MetadataRequest, type MetadataResponse, type MetadataTransport } from './transport.js';

export type MetadataCloud = 'aws' | 'gcp' | 'azure';

/** Reads eviction notices for one node through one transport. */
export interface NoticeReader {
  readonly cloud: MetadataCloud;
  /** One poll; `node` is the node id the notices are reported for. */
  poll(node: string): Promise<Notice[]>;
  /** Push-style: calls onNotice once per new notice until `signal` aborts; then resolves. */
  watch?(node: string, onNotice: (n: Notice) => void, signal: AbortSignal): Promise<void>;
  /** Tells the cloud the notice may go ahead now (Azure StartRequests). */
  acknowledge?(notice: Notice): Promise<void>;
}

export interface NoticeReaderOptions {
  transport: MetadataTransport;
  /** Scheme and host of the metadata service, e.g. `http://169.254.169.254` (no path). */
  baseUrl: string;
  /** Provider instance name: goes into Notice.provider and every error. */
  provider: string;
  /** Per-request limit. Defaults differ by cloud (Azure's first call is slow). */
  timeoutMs?: number;
  now?: () => number;
  log?: ProviderLogger;
}

/** Trims the base URL to scheme://host[:port] plus any path prefix, without a trailing slash. */
export function normaliseBaseUrl(base: string): string {
  return base.replace(/\/+$/, '');
}

/** Text safe to put in an error message: printable, one line, at most 80 characters. */
export function preview(body: string): string {
  const clean = body.replace(/[\u0000-\u001f\u007f-\u009f\ufffd]/g, '?');
  return clean.length > 80 ? `${clean.slice(0, 80)}…` : clean;
}

/** Builds the errors a reader throws: `provider "x" (node.x.n): aws metadata GET <url>: …`. */
export class ReaderErrors {
  constructor(
    private readonly provider: string,
    private readonly cloud: MetadataCloud,
  ) {}

  fail(node: string, req: Pick<MetadataRequest, 'method' | 'url'>, message: string, opts: { retryable?: boolean; cause?: unknown } = {}): ProviderError {
    const o: { address: string; retryable?: boolean; cause?: unknown } = { address: nodeAddress(this.provider, node) };
    if (opts.retryable !== undefined) o.retryable = opts.retryable;
    if (opts.cause !== undefined) o.cause = opts.cause;
    return new ProviderError(this.provider, `${this.cloud} metadata ${req.method} ${req.url}: ${message}`, o);
  }

  /** An HTTP status the reader did not expect. 5xx, 429 and 503 are worth retrying. */
  status(node: string, req: Pick<MetadataRequest, 'method' | 'url'>, res: MetadataResponse, hint = ''): ProviderError {
    const retryable = res.status >= 500 || res.status === 429;
    const body = res.body.trim() === '' ? '' : ` (${preview(res.body.trim())})`;
    return this.fail(node, req, `HTTP ${res.status}${body}${hint ? `; ${hint}` : ''}`, { retryable });
  }

  garbage(node: string, req: Pick<MetadataRequest, 'method' | 'url'>, res: MetadataResponse, what: string): ProviderError {
    return this.fail(node, req, `unexpected answer (HTTP ${res.status}): expected ${what}, got "${preview(res.body)}"`);
  }
}

/** Sends through the transport; a transport failure becomes a retryable ProviderError. */
export async function exchange(transport: MetadataTransport, errors: ReaderErrors, node: string, req: MetadataRequest): Promise<MetadataResponse> {
  try {
    return await transport.request(req);
  } catch (e) {
    if (e instanceof ProviderError) throw e;
    const msg = e instanceof Error ? e.message : String(e);
    throw errors.fail(node, req, msg, { retryable: !(e instanceof MetadataTransportError && e.aborted), cause: e });
  }
}

/** Parses JSON or returns undefined. */
export function tryJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

const RFC3339_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$/;
const MONTHS: Record<string, number> = { Jan: 0, Feb: 1, Mar: 2, Apr: 3, May: 4, Jun: 5, Jul: 6, Aug: 7, Sep: 8, Oct: 9, Nov: 10, Dec: 11 };

/** RFC 3339 (`2017-09-18T08:22:00Z`) to ms, or undefined. */
export function parseRfc3339(text: string): number | undefined {
  const t = text.trim();
  if (!RFC3339_RE.test(t)) return undefined;
  const ms = Date.parse(t);
  return Number.isFinite(ms) ? ms : undefined;
}

/** IMDS event dates, `21 Jan 2019 09:00:43 GMT` (Go layout `2 Jan 2006 15:04:05 GMT`), to ms. */
export function parseImdsEventDate(text: string): number | undefined {
  const m = /^(\d{1,2}) ([A-Z][a-z]{2}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$/.exec(text.trim());
  if (!m) return undefined;
  const mon = MONTHS[m[2] as string];
  if (mon === undefined) return undefined;
  const ms = Date.UTC(Number(m[3]), mon, Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6]));
  return Number.isFinite(ms) ? ms : undefined;
}

/** RFC 1123 (`Mon, 19 Sep 2016 18:29:47 GMT`), as Azure writes NotBefore, to ms. */
export function parseRfc1123(text: string): number | undefined {
  const m = /^(?:[A-Z][a-z]{2}, )?(\d{1,2}) ([A-Z][a-z]{2}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) (?:GMT|UTC|Z)$/.exec(text.trim());
  if (!m) return undefined;
  const mon = MONTHS[m[2] as string];
  if (mon === undefined) return undefined;
  return Date.UTC(Number(m[3]), mon, Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6]));
}

/**
 * Remembers when each notice id was first seen, so polls report the same receivedAt (and
 * relative deadlines such as "first seen + 30 s") for as long as the cloud shows the notice.
 * Ids not seen in a poll are forgotten by `retain`.
 */
export class FirstSeen {
  private readonly seen = new Map<string, number>();
  constructor(private readonly now: () => number) {}
  at(id: string): number {
    let t = this.seen.get(id);
    if (t === undefined) {
      t = this.now();
      this.seen.set(id, t);
    }
    return t;
  }
  /** Forgets ids of `scope` (a prefix) that are not in `ids`. */
  retain(scope: string, ids: ReadonlySet<string>): void {
    for (const k of [...this.seen.keys()]) if (k.startsWith(scope) && !ids.has(k)) this.seen.delete(k);
  }
}

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** Waits `ms` or until `signal` aborts. */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
