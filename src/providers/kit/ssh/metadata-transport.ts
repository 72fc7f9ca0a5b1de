// MetadataTransports (src/providers/kit/metadata) that reach a node's cloud metadata service over
// the pooled SSH connection. The service answers on the node's own 169.254.169.254, which the
// controller must never contact itself, so the request has to leave from the node:
//
// - tunnel (the default): each request is one direct-tcpip channel to the metadata address as the
//   node sees it; the node's sshd makes the TCP connection. No process and no shell on the node, no
//   new handshake: a poll costs one channel open and one HTTP exchange. Chosen over a resident
//   watcher per node because it leaves nothing on the node to install, start, supervise or clean
//   up after a crash, and a poll every second over one kept connection is already cheap (a channel
//   open is a round trip to sshd; see bench ssh-notice).
// - curl on the node (the fallback, and the whole transport where the tunnel is refused, e.g.
//   `AllowTcpForwarding no`): the metadata kit's curlArgv run over the pool, which now runs it in a
//   kept shell. A refused tunnel falls back to curl for a minute, then tries the tunnel again.
import { Agent, request as httpRequest, type ClientRequest } from 'node:http';
import { connect as tlsConnect } from 'node:tls';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { checkMetadataRequest, collectResponse, curlArgv, parseCurlOutput, MetadataTransportError, type MetadataRequest, type MetadataResponse, type MetadataTransport } from '../metadata/index.js';
import { socketLike } from './engine-agent.js';
import { channelOpenReason, type SshPool } from './pool.js';

/** Transport for one node: every request is one `curl` exec on that node. */
export function createSshCurlTransport(pool: SshPool, node: string): MetadataTransport {
  return {
    async request(req) {
      if (req.signal?.aborted) throw new MetadataTransportError(req.url, `request to ${req.url} aborted`, { aborted: true });
      const argv = curlArgv(req);
      // curl's own --max-time ends the exchange; the exec limit only guards a hung session.
      const r = await pool.exec(node, argv, { timeoutMs: req.timeoutMs + 5000 });
      return parseCurlOutput(r.stdout, { url: req.url, code: r.code, stderr: r.stderr });
    },
  };
}

/** RFC 4254 §5.1: the node's sshd tried to connect and could not (nothing listens there). */
const CONNECT_FAILED = 2;

export interface SshMetadataTransportOptions {
  /** How long a refused tunnel is not tried again (curl meanwhile). Default 60 s. */
  retryTunnelMs?: number;
  /** Told once each time the transport falls back to curl, and when the tunnel is back. */
  onFallback?: (why: string | undefined) => void;
}

/** What the transport did so far (the benchmark and tests read it). */
export interface SshMetadataTransportStats {
  tunnelled: number;
  curled: number;
}

/**
 * Metadata requests through a direct-tcpip channel from the node, falling back to curl on the node
 * while the tunnel is refused.
 * @example const t = createSshMetadataTransport(pool, 'gpu-a'); await t.request({ method: 'GET', url: 'http://169.254.169.254/latest/meta-data/spot/instance-action', headers: {}, timeoutMs: 2000 });
 */
export function createSshMetadataTransport(pool: SshPool, node: string, o: SshMetadataTransportOptions = {}): MetadataTransport & { stats(): SshMetadataTransportStats } {
  const curl = createSshCurlTransport(pool, node);
  let curlUntil = 0;
  const counts: SshMetadataTransportStats = { tunnelled: 0, curled: 0 };
  return {
    async request(req) {
      checkMetadataRequest(req);
      if (req.signal?.aborted) throw new MetadataTransportError(req.url, `request to ${req.url} aborted`, { aborted: true });
      if (Date.now() < curlUntil) {
        counts.curled++;
        return curl.request(req);
      }
      const u = new URL(req.url);
      const port = Number(u.port || (u.protocol === 'https:' ? 443 : 80));
      let channel: Duplex;
      try {
        channel = await pool.openTcp(node, u.hostname.replace(/^\[|\]$/g, ''), port);
      } catch (e) {
        if (channelOpenReason(e) === CONNECT_FAILED) throw new MetadataTransportError(req.url, `cannot reach ${req.url} from node ${node}: nothing answers there`, { cause: e });
        // Forwarding refused (or the channel would not open): curl on the node until it is back.
        if (curlUntil === 0 || Date.now() >= curlUntil) o.onFallback?.((e as Error).message);
        curlUntil = Date.now() + (o.retryTunnelMs ?? 60_000);
        counts.curled++;
        return curl.request(req);
      }
      if (curlUntil !== 0) {
        curlUntil = 0;
        o.onFallback?.(undefined);
      }
      counts.tunnelled++;
      return exchange(req, u.protocol === 'https:' ? tlsConnect({ socket: channel, servername: u.hostname }) : socketLike(channel));
    },
    stats: () => ({ ...counts }),
  };
}

/** One HTTP/1.1 exchange over an open stream; the stream is closed when it ends. */
function exchange(req: MetadataRequest, stream: Duplex): Promise<MetadataResponse> {
  return new Promise<MetadataResponse>((resolve, reject) => {
    let settled = false;
    const holder: { r?: ClientRequest } = {};
    const finish = (err: MetadataTransportError | undefined, res?: MetadataResponse): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.signal?.removeEventListener('abort', onAbort);
      if (err) holder.r?.destroy();
      stream.destroy();
      if (err) reject(err);
      else resolve(res as MetadataResponse);
    };
    const timer = setTimeout(() => finish(new MetadataTransportError(req.url, `no answer from ${req.url} within ${req.timeoutMs} ms`, { timedOut: true })), req.timeoutMs);
    const onAbort = (): void => finish(new MetadataTransportError(req.url, `request to ${req.url} aborted`, { aborted: true }));
    req.signal?.addEventListener('abort', onAbort, { once: true });
    const body = req.body === undefined ? undefined : Buffer.from(req.body, 'utf8');
    const headers: Record<string, string> = { ...req.headers, Connection: 'close' };
    if (body) headers['Content-Length'] = String(body.length);
    // The stream is the connection: an agent whose only way to connect is the channel, so this
    // process never opens a socket to the metadata address itself, and no proxy or DNS is involved.
    const agent = new Agent({ keepAlive: false });
    (agent as unknown as { createConnection: () => Socket }).createConnection = () => stream as unknown as Socket;
    const r = httpRequest(req.url, { method: req.method, headers, agent }, (res) => collectResponse(res, req.url, finish));
    holder.r = r;
    r.on('error', (e) => finish(new MetadataTransportError(req.url, `${req.url} over the SSH tunnel: ${e.message}`, { cause: e })));
    r.end(body);
  });
}
