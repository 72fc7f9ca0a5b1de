// Docker Engine connections for the docker provider (dockerode): a unix socket, TCP with TLS, or
// SSH. Over SSH we do NOT use dockerode's own `protocol: 'ssh'`: it opens a new SSH connection and
// runs `docker system dial-stdio` on the node for every HTTP request (~0.25 s each, see
// test/bench/ssh-notice.bench.ts). Instead each request opens one streamlocal channel to the
// engine's socket on the node over the pooled, host-key-verified ssh2 connection: no handshake, no
// process on the node, and no docker CLI needed there.
import { readFileSync } from 'node:fs';
import Docker from 'dockerode';
import { DEFAULT_ENGINE_SOCKET, sshSocketAgent, type SshPool } from '../../src/providers/kit/ssh/index.js';

export type EngineConfig =
  | { socketPath: string }
  | { host: string; port?: number; tls?: { ca: string; cert: string; key: string } }
  | { ssh: true; socketPath?: string };

// The agent lives in the SSH kit now (the ssh provider's runtime uses it too); re-exported here.
export { DEFAULT_ENGINE_SOCKET, sshSocketAgent } from '../../src/providers/kit/ssh/index.js';

/** Builds the dockerode client for one node's engine. */
export function engineFor(cfg: EngineConfig, opts: { pool: SshPool; node: string; resolvePath: (p: string) => string }): Docker {
  if ('ssh' in cfg) {
    const agent = sshSocketAgent(opts.pool, opts.node, cfg.socketPath ?? DEFAULT_ENGINE_SOCKET);
    return new Docker({ host: 'docker-over-ssh', port: 2375, protocol: 'http', agent } as Docker.DockerOptions);
  }
  if ('socketPath' in cfg) return new Docker({ socketPath: cfg.socketPath });
  if (cfg.tls) {
    return new Docker({
      host: cfg.host,
      port: cfg.port ?? 2376,
      protocol: 'https',
      ca: readFileSync(opts.resolvePath(cfg.tls.ca)),
      cert: readFileSync(opts.resolvePath(cfg.tls.cert)),
      key: readFileSync(opts.resolvePath(cfg.tls.key)),
    });
  }
  return new Docker({ host: cfg.host, port: cfg.port ?? 2375, protocol: 'http' });
}

export interface PullEvent {
  status?: string;
  id?: string;
  progress?: string;
  error?: string;
  errorDetail?: { message?: string };
}

/**
 * Pulls an image, reporting progress, and FAILS on an in-stream error: the engine may answer 200
 * and put `{"error": ..., "errorDetail": ...}` in the progress stream, which dockerode's
 * followProgress does not turn into a rejection by itself.
 */
export async function pullImage(docker: Docker, image: string, onProgress?: (e: PullEvent) => void): Promise<PullEvent[]> {
  const stream = await docker.pull(image);
  return new Promise<PullEvent[]>((resolve, reject) => {
    let failed: PullEvent | undefined;
    docker.modem.followProgress(
      stream,
      (err: Error | null, output: PullEvent[]) => {
        if (err) return reject(err);
        const bad = failed ?? output.find((e) => e.error !== undefined || e.errorDetail !== undefined);
        if (bad) return reject(new Error(`pull of ${image} failed: ${bad.error ?? bad.errorDetail?.message ?? 'unknown error'}`));
        resolve(output);
      },
      (e: PullEvent) => {
        if ((e.error !== undefined || e.errorDetail !== undefined) && !failed) failed = e;
        onProgress?.(e);
      },
    );
  });
}

/** Splits Docker's multiplexed log stream (8-byte frame headers when the container has no TTY). */
export function demuxLogs(buf: Buffer): string {
  if (buf.length < 8 || buf[0]! > 2 || buf[1] !== 0 || buf[2] !== 0 || buf[3] !== 0) return buf.toString('utf8');
  const out: Buffer[] = [];
  let i = 0;
  while (i + 8 <= buf.length) {
    const len = buf.readUInt32BE(i + 4);
    out.push(buf.subarray(i + 8, i + 8 + len));
    i += 8 + len;
  }
  return Buffer.concat(out).toString('utf8');
}
