// HTTP client of the molt marketplace API (docs/molt-api.md): bearer token, per-request time-out,
// retries with exponential back-off and jitter on 5xx, time-outs and connection errors (never on
// 4xx), and errors as ProviderError naming the provider instance and the URL path. The token is
// held here and never logged or put into an error.
import { ProviderError } from '../../src/core/errors.js';
import type { ProviderLogger } from '../../src/providers/sdk.js';

export interface MoltClientOptions {
  /** Provider instance name, for errors. */
  provider: string;
  baseUrl: string;
  /** Returns the bearer token; throws a ProviderError when it is not set. */
  token: () => string;
  /** Per attempt; default 10 s. */
  timeoutMs: number;
  /** Extra attempts after the first; default 3. */
  retries: number;
  /** First back-off; doubles each retry (with jitter); default 200 ms. */
  retryBaseMs: number;
  /** Cap of one back-off; default 5 s. */
  retryMaxMs?: number;
  log: ProviderLogger;
  /** Injectable for tests of the back-off itself. */
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/** An answer the API gave with a status outside 2xx; `code` comes from `{error:{code}}`. */
export interface MoltApiFailure {
  status: number;
  code: string;
  message: string;
}

/** A ProviderError carrying the HTTP status and API error code, so callers can react to 404/409. */
export class MoltApiError extends ProviderError {
  readonly status: number | undefined;
  readonly apiCode: string | undefined;
  readonly path: string;
  constructor(provider: string, message: string, opts: { path: string; status?: number; apiCode?: string; retryable: boolean; cause?: unknown }) {
    super(provider, message, { retryable: opts.retryable, cause: opts.cause });
    this.status = opts.status;
    this.apiCode = opts.apiCode;
    this.path = opts.path;
  }
}

/**
 * Back-off before retry `attempt` (0-based): `base × 2^attempt`, capped, with "equal jitter" (half
 * fixed, half random) so that many clients retrying together spread out but never retry at once.
 */
export function backoffMs(attempt: number, baseMs: number, maxMs: number, random: () => number): number {
  const exp = Math.min(maxMs, baseMs * 2 ** attempt);
  return Math.round(exp / 2 + (exp / 2) * random());
}

const sleepReal = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class MoltClient {
  constructor(private readonly o: MoltClientOptions) {}

  /**
   * One API call with retries. Every molt call is safe to retry: bids carry a clientToken,
   * renew is "at least until", release is idempotent.
   */
  async request<T>(method: 'GET' | 'POST' | 'DELETE', path: string, opts: { query?: Record<string, string | number | undefined>; body?: unknown } = {}): Promise<T> {
    const url = new URL(path, this.o.baseUrl.endsWith('/') ? this.o.baseUrl : `${this.o.baseUrl}/`);
    // `path` is absolute (/v1/...): keep a base URL's own prefix, e.g. https://host/molt/.
    url.pathname = `${new URL(this.o.baseUrl).pathname.replace(/\/$/, '')}${path}`;
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined && v !== '') url.searchParams.set(k, String(v));
    const token = this.o.token();
    const random = this.o.random ?? Math.random;
    const sleep = this.o.sleep ?? sleepReal;
    const what = `${method} ${path}`;
    let last: MoltApiError | undefined;
    for (let attempt = 0; attempt <= this.o.retries; attempt++) {
      if (attempt > 0) {
        const wait = backoffMs(attempt - 1, this.o.retryBaseMs, this.o.retryMaxMs ?? 5000, random);
        this.o.log.debug('molt: retrying', { provider: this.o.provider, path, attempt, waitMs: wait, after: last?.message });
        await sleep(wait);
      }
      const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: 'application/json' };
      const init: RequestInit = { method, headers, signal: AbortSignal.timeout(this.o.timeoutMs) };
      if (opts.body !== undefined) {
        headers['content-type'] = 'application/json';
        init.body = JSON.stringify(opts.body);
      }
      let res: Response;
      let text: string;
      try {
        res = await fetch(url, init);
        text = await res.text();
      } catch (e) {
        const timedOut = e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError');
        const reason = timedOut ? `timed out after ${this.o.timeoutMs} ms` : `connection failed (${connectionReason(e)})`;
        last = new MoltApiError(this.o.provider, `molt ${what}: ${reason}`, { path, retryable: true, cause: e });
        continue;
      }
      if (res.ok) {
        try {
          return JSON.parse(text) as T;
        } catch (e) {
          throw new MoltApiError(this.o.provider, `molt ${what}: answered ${res.status} with a body that is not JSON`, { path, status: res.status, retryable: false, cause: e });
        }
      }
      const failure = parseFailure(res.status, text);
      const retryable = res.status >= 500 || res.status === 429;
      last = new MoltApiError(this.o.provider, `molt ${what}: ${res.status} ${failure.code}: ${failure.message}`, { path, status: res.status, apiCode: failure.code, retryable });
      if (!retryable) throw last;
    }
    const attempts = this.o.retries + 1;
    throw new MoltApiError(this.o.provider, `${(last as MoltApiError).message.replace(/^provider "[^"]*": /, '')} (gave up after ${attempts} attempt${attempts === 1 ? '' : 's'})`, {
      path,
      ...(last?.status !== undefined ? { status: last.status } : {}),
      ...(last?.apiCode !== undefined ? { apiCode: last.apiCode } : {}),
      retryable: true,
      cause: last,
    });
  }
}

function parseFailure(status: number, text: string): MoltApiFailure {
  try {
    const v = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    if (v.error && typeof v.error.code === 'string') return { status, code: v.error.code, message: typeof v.error.message === 'string' ? v.error.message : '' };
  } catch {
    // not JSON: fall through to the raw text
  }
  return { status, code: `http_${status}`, message: text.slice(0, 200) };
}

function connectionReason(e: unknown): string {
  const cause = (e as { cause?: { code?: string; message?: string } } | undefined)?.cause;
  return cause?.code ?? cause?.message ?? (e instanceof Error ? e.message : String(e));
}
