// An http.Agent whose connections are streamlocal channels to a unix socket on a node (the Docker
// Engine's, usually), over the pooled, host-key-verified SSH connection: no handshake per request,
// no process on the node, no login shell. Shared by the docker provider and the ssh provider's
// container runtime. Also how any SSH channel is made a socket node:http can talk over.
import { Agent } from 'node:http';
import type { Duplex } from 'node:stream';
import type { SshPool } from './pool.js';

/** The Docker Engine's socket when nothing says otherwise. */
export const DEFAULT_ENGINE_SOCKET = '/var/run/docker.sock';

/** An SSH channel as node:http's client wants a socket: it has no TCP options to set, so those calls do nothing. */
export function socketLike(s: Duplex): Duplex {
  const sock = s as Duplex & { setTimeout?: unknown; setNoDelay?: unknown; setKeepAlive?: unknown; ref?: unknown; unref?: unknown };
  sock.setTimeout ??= () => sock;
  sock.setNoDelay ??= () => sock;
  sock.setKeepAlive ??= () => sock;
  sock.ref ??= () => sock;
  sock.unref ??= () => sock;
  return sock;
}

/** An http.Agent whose connections are streamlocal channels over the pooled SSH connection. */
export function sshSocketAgent(pool: SshPool, node: string, socketPath: string): Agent {
  const agent = new Agent({ keepAlive: false });
  (agent as unknown as { createConnection: (o: unknown, cb: (err: Error | null, s?: Duplex) => void) => undefined }).createConnection = (_o, cb) => {
    pool.openUnixSocket(node, socketPath).then(
      (s) => cb(null, socketLike(s)),
      (e: Error) => cb(e),
    );
    return undefined;
  };
  return agent;
}
