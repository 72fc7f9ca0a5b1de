// How notice readers reach a metadata service: a MetadataTransport carries one HTTP exchange
// (status, headers incl. ETag, body). Two implementations: direct HTTP from this process
// (node:http, no proxies, hard timeouts) and `curl` run on the node over SSH. For the latter this
// module owns the exact argv (`curlArgv`) and the output parser (`parseCurlOutput`), as pure
// functions, so the SSH side only executes the argv (quoted as data) and hands back stdout.
import { Agent, request as httpRequest, type IncomingMessage } from 'node:http';

export type MetadataMethod = 'GET' | 'HEAD' | 'PUT' | 'POST';

export interface MetadataRequest {
  method: MetadataMethod;
  /** Absolute http:// URL. */
  url: string;
  /** Header names as the cloud spells them; values must not contain CR, LF or NUL. */
  headers: Record<string, string>;
  body?: string;
  /** Hard limit for the whole exchange. */
  timeoutMs: number;
  /** Aborts the exchange (a long-poll being cancelled). */
  signal?: AbortSignal;
}

export interface MetadataResponse {
  status: number;
  /** Lower-cased header names. */
  headers: Record<string, string>;
  body: string;
}

/** One HTTP exchange with a metadata service, wherever it runs. */
export interface MetadataTransport {
  request(req: MetadataRequest): Promise<MetadataResponse>;
  close?(): Promise<void>;
}

/** The service could not be reached, or the exchange did not complete (no HTTP status). */
export class MetadataTransportError extends Error {
  readonly url: string;
  readonly timedOut: boolean;
  readonly aborted: boolean;
  constructor(url: string, message: string, opts: { timedOut?: boolean; aborted?: boolean; cause?: unknown } = {}) {
    super(message);
    this.name = 'MetadataTransportError';
    this.url = url;
    this.timedOut = opts.timedOut ?? false;
    this.aborted = opts.aborted ?? false;
    if (opts.cause !== undefined) (this as { cause?: unknown }).cause = opts.cause;
  }
}

const MAX_BODY = 1 << 20;
const HEADER_NAME_RE = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;

/** Refuses requests that could smuggle a second header or request line. */
export function checkMetadataRequest(req: MetadataRequest): void {
  let u: URL;
  try {
    u = new URL(req.url);
  } catch {
    throw new MetadataTransportError(req.url, `invalid metadata URL "${req.url}"`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new MetadataTransportError(req.url, `metadata URL must be http(s), got "${u.protocol}"`);
  if (/[\s\0]/.test(req.url)) throw new MetadataTransportError(req.url, 'metadata URL must not contain whitespace');
  for (const [k, v] of Object.entries(req.headers)) {
    if (!HEADER_NAME_RE.test(k)) throw new MetadataTransportError(req.url, `invalid header name ${JSON.stringify(k)}`);
    if (/[\r\n\0]/.test(v)) throw new MetadataTransportError(req.url, `header ${k} contains a line break or NUL`);
  }
  if (req.body !== undefined && req.body.includes('\0')) throw new MetadataTransportError(req.url, 'request body contains NUL');
  if (!(req.timeoutMs > 0)) throw new MetadataTransportError(req.url, 'timeoutMs must be positive');
}

export interface HttpTransportOptions {
  /** Reuse connections between polls (default true): a poll every second stays cheap. */
  keepAlive?: boolean;
}

/**
 * Direct HTTP from this process (spotfleet runs on the node itself). Never uses a proxy: the
 * metadata address is link-local and a proxy would answer for the wrong machine.
 * @example const t = createHttpTransport(); await t.request({ method: 'GET', url, headers: {}, timeoutMs: 2000 });
 */
export function createHttpTransport(opts: HttpTransportOptions = {}): MetadataTransport {
  const agent = new Agent({ keepAlive: opts.keepAlive ?? true, maxSockets: 8 });
  return {
    request(req) {
      checkMetadataRequest(req);
      return new Promise<MetadataResponse>((resolve, reject) => {
        if (req.signal?.aborted) {
          reject(new MetadataTransportError(req.url, `request to ${req.url} aborted`, { aborted: true }));
          return;
        }
        let settled = false;
        const finish = (err: MetadataTransportError | undefined, res?: MetadataResponse): void => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          req.signal?.removeEventListener('abort', onAbort);
          if (err) {
            r.destroy();
            reject(err);
          } else resolve(res as MetadataResponse);
        };
        const body = req.body === undefined ? undefined : Buffer.from(req.body, 'utf8');
        const headers: Record<string, string> = { ...req.headers };
        if (body) headers['Content-Length'] = String(body.length);
        const r = httpRequest(req.url, { method: req.method, headers, agent }, (res) => collectResponse(res, req.url, finish));
        const onAbort = (): void => finish(new MetadataTransportError(req.url, `request to ${req.url} aborted`, { aborted: true }));
        const timer = setTimeout(() => finish(new MetadataTransportError(req.url, `no answer from ${req.url} within ${req.timeoutMs} ms`, { timedOut: true })), req.timeoutMs);
        req.signal?.addEventListener('abort', onAbort, { once: true });
        r.on('error', (e) => finish(new MetadataTransportError(req.url, `cannot reach ${req.url}: ${e.message}`, { cause: e })));
        r.end(body);
      });
    },
    close() {
      agent.destroy();
      return Promise.resolve();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// curl on the node (the SSH transport executes this argv and passes stdout back).

/** Marks the end of the body in curl's output; `--write-out` prints it with the status code. */
export const CURL_SENTINEL = '__SPOTFLEET_CURL_STATUS__:';

/**
 * The exact argv (argv[0] is `curl`) that performs `req` on a node. Every value is its own argv
 * element, so it stays data once each element is shell-quoted: the URL follows `--url` (never read
 * as an option, never globbed), the body goes through `--data-raw` (a leading `@` is not a file),
 * `-q` ignores any .curlrc and `--noproxy '*'` any proxy variables. Headers go to stdout before the
 * body (`--dump-header -`); `--write-out` appends a sentinel line with the status code.
 * @example execOnNode(node, curlArgv({ method: 'GET', url, headers: { 'Metadata-Flavor': 'Google' }, timeoutMs: 5000 }))
 */
export function curlArgv(req: MetadataRequest): string[] {
  checkMetadataRequest(req);
  const argv = ['curl', '-q', '--silent', '--show-error', '--globoff', '--noproxy', '*', '--max-time', String(Math.max(1, Math.ceil(req.timeoutMs / 1000))), '--dump-header', '-', '--write-out', `\\n${CURL_SENTINEL}%{http_code}\\n`];
  if (req.method === 'HEAD') argv.push('--head');
  else argv.push('--request', req.method);
  for (const k of Object.keys(req.headers).sort()) argv.push('--header', `${k}: ${req.headers[k] as string}`);
  if (req.body !== undefined) argv.push('--data-raw', req.body);
  argv.push('--url', req.url);
  return argv;
}

/**
 * Parses what `curlArgv` prints: header blocks (the last one wins, so `100 Continue` is skipped),
 * the body, and the sentinel line with the status. Throws MetadataTransportError when curl did not
 * get an HTTP answer (status 000) or the output is cut off; `exec` adds curl's exit code and stderr
 * to the message (exit 28 is a timeout).
 */
export function parseCurlOutput(stdout: string, exec: { url?: string; code?: number; stderr?: string } = {}): MetadataResponse {
  const url = exec.url ?? '<metadata>';
  const why = (): string => [exec.code !== undefined ? `curl exit ${exec.code}` : '', exec.stderr?.trim() ?? ''].filter(Boolean).join(': ');
  const at = stdout.lastIndexOf(CURL_SENTINEL);
  if (at < 0) throw new MetadataTransportError(url, `curl produced no status line for ${url}${why() ? ` (${why()})` : ''}; is curl installed on the node?`, { timedOut: exec.code === 28 });
  const codeText = stdout.slice(at + CURL_SENTINEL.length).trim();
  const status = /^\d{3}$/.test(codeText) ? Number(codeText) : NaN;
  if (Number.isNaN(status)) throw new MetadataTransportError(url, `curl printed a malformed status "${codeText.slice(0, 20)}" for ${url}`);
  if (status === 0) throw new MetadataTransportError(url, `curl could not reach ${url}${why() ? ` (${why()})` : ''}`, { timedOut: exec.code === 28 });
  let rest = stdout.slice(0, at);
  if (rest.endsWith('\n')) rest = rest.slice(0, -1);
  let headers: Record<string, string> = {};
  let sawBlock = false;
  while (/^HTTP\/[\d.]+ \d{3}/.test(rest)) {
    const crlf = rest.indexOf('\r\n\r\n');
    const lf = rest.indexOf('\n\n');
    const end = crlf >= 0 && (lf < 0 || crlf < lf) ? crlf + 4 : lf >= 0 ? lf + 2 : -1;
    if (end < 0) throw new MetadataTransportError(url, `curl output for ${url} has an unterminated header block`);
    const block = rest.slice(0, end);
    rest = rest.slice(end);
    headers = {};
    sawBlock = true;
    for (const line of block.split(/\r?\n/).slice(1)) {
      const i = line.indexOf(':');
      if (i <= 0) continue;
      const k = line.slice(0, i).trim().toLowerCase();
      const v = line.slice(i + 1).trim();
      headers[k] = headers[k] === undefined ? v : `${headers[k]}, ${v}`;
    }
  }
  if (!sawBlock) throw new MetadataTransportError(url, `curl output for ${url} has no response headers`);
  return { status, headers, body: rest };
}

/**
 * Reads a metadata answer whole (at most MAX_BODY bytes) and hands it, or the error, to `finish`:
 * the one reader behind both the direct transport and the SSH tunnel's.
 */
export function collectResponse(res: IncomingMessage, url: string, finish: (err: MetadataTransportError | undefined, res?: MetadataResponse) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  res.on('data', (c: Buffer) => {
    size += c.length;
    if (size > MAX_BODY) finish(new MetadataTransportError(url, `answer from ${url} is larger than ${MAX_BODY} bytes`));
    else chunks.push(c);
  });
  res.on('end', () => {
    const h: Record<string, string> = {};
    for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) h[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
    finish(undefined, { status: res.statusCode ?? 0, headers: h, body: Buffer.concat(chunks).toString('utf8') });
  });
  res.on('error', (e) => finish(new MetadataTransportError(url, `reading ${url}: ${e.message}`, { cause: e })));
}
