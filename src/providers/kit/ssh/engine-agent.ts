// An http.Agent whose connections are streamlocal channels to a unix socket on a node (the Docker
// Engine's, usually), over the pooled, host-key-verified SSH connection: no handshake per request,
// no process on the node, no login shell. Shared by the docker provider and the ssh provider's
// container runtime.
import { Agent } from 'node:http';
import type { Duplex } from 'node:stream';
import type { SshPool } from './pool.js';

/** The Docker Engine's socket when nothing says otherwise. */
export const DEFAULT_ENGINE_SOCKET = '/var/run/docker.sock';

/** An http.Agent whose connections are streamlocal channels over the pooled SSH connection. */
export function sshSocketAgent(pool: SshPool, node: string, socketPath: string): Agent {
  const agent = new Agent({ keepAlive: false });
  (agent as unknown as { createConnection: (o: unknown, cb: (err: Error | null, s?: Duplex) => void) => undefined }).createConnection = (_o, cb) => {
    pool.openUnixSocket(node, socketPath).then(
      (s) => {
        // http expects these socket methods; an SSH channel has no TCP options to set.
        const sock = s as Duplex & { setTimeout?: unknown; setNoDelay?: unknown; setKeepAlive?: unknown; ref?: unknown; unref?: unknown };
        sock.setTimeout ??= () => sock;
        sock.setNoDelay ??= () => sock;
        sock.setKeepAlive ??= () => sock;
        sock.ref ??= () => sock;
        sock.unref ??= () => sock;
        cb(null, sock);
      },
      (e: Error) => cb(e),
    );
    return undefined;
  };
  return agent;
}
