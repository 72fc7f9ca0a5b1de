// One pooled ssh2 connection per host: host keys verified before anything is sent (known_hosts or
// a pinned fingerprint), keepalive, reconnect after a failure, and a bound on concurrent operations
// per host. Commands are built only from quoted argv (quote.ts), never from a caller's string.
// Commands run in kept shells (shell-session.ts), so the user's login shell and its rc files start
// once per session, not once per command; a host where that does not work gets plain execs. Unix
// sockets (streamlocal) and TCP ports as the node sees them (direct-tcpip) open as channels of the
// same connection, with no process on the node.
import { readFileSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import type { Client as SshClient, ConnectConfig } from 'ssh2';
import { nodeAddress } from '../../../core/address.js';
import { ProviderError } from '../../../core/errors.js';
import type { ExecResult, ProviderLogger } from '../../sdk.js';
import { verifyHostKey } from './host-keys.js';
import { quoteArgv } from './quote.js';
import { ShellSession, ShellSessionError, shellLine } from './shell-session.js';

/** How to reach and authenticate one host. */
export interface SshHostConfig {
  /** Node name (used in errors and addresses). */
  name: string;
  host: string;
  /** Default 22. */
  port?: number;
  /** Default `root`. */
  user?: string;
  /** Private key text; or `identityFile` (a path read at connect time); else the agent. */
  privateKey?: string | Buffer;
  identityFile?: string;
  passphrase?: string;
  /** ssh-agent socket; defaults to SSH_AUTH_SOCK when no key is given. */
  agent?: string;
  knownHostsFile?: string | string[];
  /** Pinned `SHA256:...` fingerprint(s) of the host key. */
  hostKeyFingerprint?: string | string[];
  /** Trust (and record in the first known_hosts file) a key for a host with no entry. Default false. */
  acceptUnknownHostKey?: boolean;
  /** Host key algorithms to accept, in order (e.g. only `ssh-ed25519` for a pinned ed25519 key). */
  hostKeyAlgorithms?: string[];
  /** Handshake limit for this host; default the pool's. */
  readyTimeoutMs?: number;
}

export interface SshPoolOptions {
  /** Provider instance name, for errors. */
  provider: string;
  /** Operations in flight per host; more wait in line. Default 8 (below sshd's MaxSessions 10). */
  maxConcurrentPerHost?: number;
  /** Default 10 s; 3 missed answers drop the connection. */
  keepaliveIntervalMs?: number;
  /** Handshake limit. Default 10 s. */
  readyTimeoutMs?: number;
  /** Default exec limit. Default 60 s. */
  execTimeoutMs?: number;
  log?: ProviderLogger;
  /** Environment for SSH_AUTH_SOCK. */
  env?: Readonly<Record<string, string | undefined>>;
  /**
   * Run commands in kept shells (one login shell per session, not per command). Default true; a
   * host where the kept shell does not start gets plain execs for a minute, then another try.
   */
  keptShells?: boolean;
  /** How long a kept shell may take to start (the login shell's rc files run then). Default 20 s. */
  keptShellStartTimeoutMs?: number;
}

/** How the pool has run commands so far (for benchmarks and the fallback tests). */
export interface SshPoolStats {
  /** Kept shells opened: each started the login shell once. */
  keptShellsOpened: number;
  /** Commands run in a kept shell. */
  keptShellRuns: number;
  /** Commands run as plain execs (each starts the login shell). */
  plainExecs: number;
  /** Channels opened to unix sockets and TCP ports on the nodes. */
  forwards: number;
}

export interface SshExecOptions {
  timeoutMs?: number;
  /** Sent to the command's stdin, then EOF. */
  stdin?: string | Buffer;
  /**
   * Each chunk of stdout as it arrives (a long command's progress), besides the whole in the
   * result. Such a command runs as a plain exec: a kept shell hands its output over at the end.
   */
  onStdout?: (chunk: Buffer) => void;
}

const MAX_OUTPUT = 64 << 20;

class Semaphore {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly limit: number) {}
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((r) => this.waiting.push(r));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

class ChannelOpenError extends Error {
  /** SSH_MSG_CHANNEL_OPEN_FAILURE reason (RFC 4254 §5.1): 1 prohibited, 2 connect failed, 3 unknown type, 4 shortage. */
  reason?: number;
}

/** Why a forwarded channel would not open (RFC 4254 §5.1 reason code), from a pool error's cause. */
export function channelOpenReason(e: unknown): number | undefined {
  const c = (e as { cause?: unknown } | undefined)?.cause;
  return c instanceof ChannelOpenError ? c.reason : undefined;
}

/**
 * A pool of SSH connections, one per host.
 * @example
 * const pool = new SshPool({ provider: 'gpu-hosts' });
 * pool.add({ name: 'a', host: '10.0.0.5', identityFile: '~/.ssh/id_ed25519', knownHostsFile: '~/.ssh/known_hosts' });
 * const r = await pool.exec('a', ['nvidia-smi', '--query-gpu=index', '--format=csv,noheader']);
 */
export class SshPool {
  private readonly hosts = new Map<string, SshHostConfig>();
  private readonly conns = new Map<string, Promise<SshClient>>();
  private readonly slots = new Map<string, Semaphore>();
  private readonly hostKeys = new Map<string, Buffer>();
  /** Idle kept shells per host, most recently used last. */
  private readonly shells = new Map<string, ShellSession[]>();
  /** Hosts whose kept shell would not start: plain execs until then (ms epoch). */
  private readonly shellBrokenUntil = new Map<string, number>();
  /** Hosts with a spare kept shell being opened. */
  private readonly opening = new Set<string>();
  private readonly counters: SshPoolStats = { keptShellsOpened: 0, keptShellRuns: 0, plainExecs: 0, forwards: 0 };
  private closed = false;

  constructor(private readonly opts: SshPoolOptions) {}

  /** Adds a host, or updates how it is reached (a changed address or key drops the old connection). */
  add(host: SshHostConfig): void {
    const prev = this.hosts.get(host.name);
    if (prev && JSON.stringify(prev) !== JSON.stringify(host)) this.disconnect(host.name);
    this.hosts.set(host.name, host);
    if (!this.slots.has(host.name)) this.slots.set(host.name, new Semaphore(this.opts.maxConcurrentPerHost ?? 8));
  }

  has(name: string): boolean {
    return this.hosts.has(name);
  }

  /** Forgets a host (a node that went away) and drops its connection. */
  remove(name: string): void {
    this.disconnect(name);
    this.hosts.delete(name);
    this.slots.delete(name);
    this.hostKeys.delete(name);
  }

  /** The host key this pool verified for the host (after the first connection). */
  hostKey(name: string): Buffer | undefined {
    return this.hostKeys.get(name);
  }

  config(name: string): SshHostConfig {
    const h = this.hosts.get(name);
    if (!h) throw new ProviderError(this.opts.provider, `unknown node "${name}"`, { address: nodeAddress(this.opts.provider, name) });
    return h;
  }

  /** `node "a" (root@10.0.0.5:22)`: how errors name a host. */
  describe(name: string): string {
    // A host removed while a command on it was still running (a released lease) is named plainly:
    // this runs in stream callbacks, where a throw would take the process down.
    const h = this.hosts.get(name);
    return h ? `node "${name}" (${h.user ?? 'root'}@${h.host}:${h.port ?? 22})` : `node "${name}"`;
  }

  fail(name: string, message: string, opts: { retryable?: boolean; cause?: unknown } = {}): ProviderError {
    return new ProviderError(this.opts.provider, `${this.describe(name)}: ${message}`, { address: nodeAddress(this.opts.provider, name), ...opts });
  }

  /** Connects now (verifying the host key); a no-op when already connected. */
  async connect(name: string): Promise<void> {
    await this.client(name);
  }

  /** Drops the host's connection; the next operation reconnects. */
  disconnect(name: string): void {
    const p = this.conns.get(name);
    this.conns.delete(name);
    for (const s of this.shells.get(name) ?? []) s.close();
    this.shells.delete(name);
    p?.then((c) => c.end(), () => undefined);
  }

  stats(): SshPoolStats {
    return { ...this.counters };
  }

  private client(name: string): Promise<SshClient> {
    if (this.closed) return Promise.reject(this.fail(name, 'the SSH pool is closed'));
    const existing = this.conns.get(name);
    if (existing) return existing;
    const h = this.config(name);
    const port = h.port ?? 22;
    const p = new Promise<SshClient>((resolve, reject) => {
      let refused: string | undefined;
      let ready = false;
      const cfg: ConnectConfig = {
        host: h.host,
        port,
        username: h.user ?? 'root',
        keepaliveInterval: this.opts.keepaliveIntervalMs ?? 10_000,
        keepaliveCountMax: 3,
        readyTimeout: h.readyTimeoutMs ?? this.opts.readyTimeoutMs ?? 10_000,
        hostVerifier: (key: Buffer) => {
          const policy: Parameters<typeof verifyHostKey>[0] = { host: h.host, port, acceptUnknown: h.acceptUnknownHostKey === true };
          if (h.knownHostsFile !== undefined) policy.knownHostsFiles = ([] as string[]).concat(h.knownHostsFile).map(expandHome);
          if (h.hostKeyFingerprint !== undefined) policy.fingerprints = ([] as string[]).concat(h.hostKeyFingerprint);
          const v = verifyHostKey(policy, key);
          if (!v.ok) {
            refused = v.reason;
            return false;
          }
          if (v.how === 'recorded') this.opts.log?.warn('recorded an unknown SSH host key (acceptUnknownHostKey)', { node: name, host: h.host });
          this.hostKeys.set(name, Buffer.from(key));
          return true;
        },
      };
      if (h.hostKeyAlgorithms !== undefined) cfg.algorithms = { serverHostKey: h.hostKeyAlgorithms as NonNullable<NonNullable<ConnectConfig['algorithms']>['serverHostKey']> };
      try {
        if (h.privateKey !== undefined) cfg.privateKey = h.privateKey;
        else if (h.identityFile !== undefined) cfg.privateKey = readFileSync(expandHome(h.identityFile));
      } catch (e) {
        reject(this.fail(name, `cannot read identityFile ${h.identityFile}: ${(e as Error).message}`));
        return;
      }
      if (h.passphrase !== undefined) cfg.passphrase = h.passphrase;
      const agent = h.agent ?? (cfg.privateKey === undefined ? (this.opts.env ?? process.env).SSH_AUTH_SOCK : undefined);
      if (agent !== undefined) cfg.agent = agent;
      if (cfg.privateKey === undefined && cfg.agent === undefined) {
        reject(this.fail(name, 'no credentials: set identityFile, or run an ssh-agent (SSH_AUTH_SOCK)'));
        return;
      }
      const c = new ssh2.Client();
      c.on('ready', () => {
        ready = true;
        resolve(c);
      });
      c.on('error', (e: Error & { level?: string }) => {
        if (this.conns.get(name) === p) this.conns.delete(name);
        if (ready) {
          this.opts.log?.warn('SSH connection failed; will reconnect on next use', { node: name, error: e.message });
          return;
        }
        if (refused !== undefined) reject(this.fail(name, refused, { retryable: false }));
        else {
          const auth = e.level === 'client-authentication';
          reject(this.fail(name, auth ? `authentication failed for user ${h.user ?? 'root'} (${e.message})` : `cannot connect: ${e.message}`, { retryable: !auth, cause: e }));
        }
      });
      c.on('close', () => {
        if (this.conns.get(name) === p) this.conns.delete(name);
        if (!ready) reject(this.fail(name, refused ?? 'connection closed during the handshake', { retryable: refused === undefined }));
      });
      c.connect(cfg);
    });
    this.conns.set(name, p);
    p.catch(() => {
      if (this.conns.get(name) === p) this.conns.delete(name);
    });
    return p;
  }

  private slot(name: string): Semaphore {
    this.config(name);
    return this.slots.get(name) as Semaphore;
  }

  /**
   * Runs argv on the host: every element is shell-quoted, so it reaches the program as data.
   * Resolves with the exit code (non-zero is not an error); rejects with a ProviderError naming the
   * provider and node when the host cannot be reached, the connection drops, or the time runs out.
   */
  exec(name: string, argv: readonly string[], opts: SshExecOptions = {}): Promise<ExecResult> {
    const cmd = quoteArgv(argv);
    const timeoutMs = opts.timeoutMs ?? this.opts.execTimeoutMs ?? 60_000;
    const line = this.opts.keptShells === false || opts.onStdout ? undefined : shellLine(argv, opts.stdin);
    return this.slot(name).run(async () => {
      if (line !== undefined && (this.shellBrokenUntil.get(name) ?? 0) <= Date.now()) {
        const kept = await this.inKeptShell(name, line, argv[0] ?? '', timeoutMs);
        if (kept) return kept;
      }
      for (let attempt = 0; ; attempt++) {
        const c = await this.client(name);
        try {
          this.counters.plainExecs++;
          return await this.runOn(name, c, cmd, argv[0] ?? '', timeoutMs, opts.stdin, opts.onStdout);
        } catch (e) {
          // The connection was dead before the command started: safe to reconnect and run it once more.
          if (e instanceof ChannelOpenError && attempt === 0) {
            this.disconnect(name);
            continue;
          }
          if (e instanceof ChannelOpenError) throw this.fail(name, `cannot open a session: ${e.message}`, { retryable: true });
          throw e;
        }
      }
    });
  }

  /**
   * Runs a command line in an idle kept shell of the host (opening one when none is idle).
   * Undefined when no kept shell could be had: the caller execs the command instead, and a host
   * whose kept shell does not start gets plain execs for a minute.
   */
  private async inKeptShell(name: string, line: string, program: string, timeoutMs: number): Promise<ExecResult | undefined> {
    let s: ShellSession | undefined;
    const idle = this.shells.get(name) ?? [];
    while (!s && idle.length > 0) {
      const x = idle.pop() as ShellSession;
      if (x.alive) s = x;
    }
    if (!s) {
      let c: SshClient;
      try {
        c = await this.client(name);
      } catch {
        return undefined; // the plain path reports the connection's own error
      }
      try {
        s = await ShellSession.open(c, this.opts.keptShellStartTimeoutMs ?? 20_000);
        this.counters.keptShellsOpened++;
      } catch (e) {
        // "cannot open a session": the connection's trouble, which the plain path deals with.
        if (!/cannot open a session/.test((e as Error).message)) {
          this.shellBrokenUntil.set(name, Date.now() + 60_000);
          this.opts.log?.warn('kept shell did not start on the node; running commands as plain execs for a minute', { node: name, error: (e as Error).message });
        }
        return undefined;
      }
    }
    const session = s;
    // Keep one spare: a second command that comes while this one runs (a step's checks often go
    // two at a time) finds a started shell instead of paying for the login shell then.
    if ((this.shells.get(name)?.length ?? 0) === 0) this.openSpare(name);
    this.counters.keptShellRuns++;
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        session.run(line, MAX_OUTPUT),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            reject(this.fail(name, `\`${program}\` did not finish within ${timeoutMs} ms`, { retryable: true }));
            session.close();
          }, timeoutMs);
        }),
      ]);
    } catch (e) {
      if (e instanceof ShellSessionError) {
        if (/more than \d+ bytes/.test(e.message)) throw this.fail(name, `\`${program}\` printed more than ${MAX_OUTPUT} bytes`);
        throw this.fail(name, `connection lost while \`${program}\` was running (${e.message})`, { retryable: true });
      }
      throw e;
    } finally {
      clearTimeout(timer);
      if (session.alive && !this.closed) this.keepIdle(name, session);
    }
  }

  /** Opens one kept shell in the background into the idle list (at most one at a time per host). */
  private openSpare(name: string): void {
    if (this.opening.has(name) || this.closed) return;
    const c = this.conns.get(name);
    if (!c) return;
    this.opening.add(name);
    c.then((client) => ShellSession.open(client, this.opts.keptShellStartTimeoutMs ?? 20_000))
      .then(
        (sp) => {
          this.counters.keptShellsOpened++;
          if (this.closed || this.conns.get(name) !== c) sp.close();
          else this.keepIdle(name, sp);
        },
        () => undefined, // the next command that needs one tries (and reports) again
      )
      .finally(() => this.opening.delete(name));
  }

  /** Back into the host's idle list; a session idle for a minute beyond the first two is closed. */
  private keepIdle(name: string, s: ShellSession): void {
    const idle = this.shells.get(name) ?? [];
    this.shells.set(name, idle);
    idle.push(s);
    const t = setTimeout(() => {
      const now = this.shells.get(name);
      if (!now || !now.includes(s) || now.length <= 2 || Date.now() - s.idleSince < 60_000) return;
      now.splice(now.indexOf(s), 1);
      s.close();
    }, 61_000);
    t.unref();
  }

  private runOn(name: string, c: SshClient, cmd: string, program: string, timeoutMs: number, stdin: string | Buffer | undefined, onStdout?: (chunk: Buffer) => void): Promise<ExecResult> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const settle = (err: Error | undefined, r?: ExecResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) reject(err);
        else resolve(r as ExecResult);
      };
      const timer = setTimeout(() => {
        settle(this.fail(name, `\`${program}\` did not finish within ${timeoutMs} ms`, { retryable: true }));
        chan?.close();
      }, timeoutMs);
      let chan: ssh2.ClientChannel | undefined;
      try {
        c.exec(cmd, (err, stream) => {
          if (err) {
            settle(new ChannelOpenError(err.message));
            return;
          }
          chan = stream;
          const out: Buffer[] = [];
          const errOut: Buffer[] = [];
          let size = 0;
          let code: number | undefined;
          let signal: string | undefined;
          const take = (arr: Buffer[]) => (d: Buffer) => {
            size += d.length;
            if (size > MAX_OUTPUT) {
              settle(this.fail(name, `\`${program}\` printed more than ${MAX_OUTPUT} bytes`));
              stream.close();
            } else arr.push(d);
          };
          const takeOut = take(out);
          stream.on('data', (d: Buffer) => {
            takeOut(d);
            if (onStdout && !settled) {
              try {
                onStdout(d);
              } catch {
                // a progress callback's failure is not the command's
              }
            }
          });
          stream.stderr.on('data', take(errOut));
          stream.on('exit', (c2: number | null, sig?: string) => {
            if (typeof c2 === 'number') code = c2;
            if (sig) signal = sig;
          });
          stream.on('close', () => {
            if (code === undefined && signal === undefined) {
              settle(this.fail(name, `connection lost while \`${program}\` was running`, { retryable: true }));
              return;
            }
            settle(undefined, { code: code ?? 128, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(errOut).toString('utf8') + (signal ? `\nkilled by signal ${signal}` : '') });
          });
          stream.on('error', (e: Error) => settle(this.fail(name, `\`${program}\`: ${e.message}`, { retryable: true })));
          if (stdin !== undefined) stream.end(stdin);
          else stream.end();
        });
      } catch (e) {
        settle(new ChannelOpenError((e as Error).message));
      }
    });
  }

  /**
   * Opens a stream to a unix socket on the host over the pooled connection (OpenSSH
   * streamlocal forwarding): one channel, no new handshake, no process on the host.
   */
  openUnixSocket(name: string, socketPath: string): Promise<Duplex> {
    return this.openChannel(name, `${socketPath} on the node`, (c, cb) => c.openssh_forwardOutStreamLocal(socketPath, cb));
  }

  /**
   * Opens a TCP stream to host:port AS THE NODE SEES IT (a direct-tcpip channel: the node's sshd
   * makes the connection, from the node's own network): e.g. the node's metadata service at
   * 169.254.169.254, which this machine must never contact itself. No process on the node.
   */
  openTcp(name: string, host: string, port: number): Promise<Duplex> {
    return this.openChannel(name, `${host}:${port} from the node`, (c, cb) => c.forwardOut('127.0.0.1', 0, host, port, cb));
  }

  private async openChannel(name: string, what: string, open: (c: SshClient, cb: (err: Error | undefined, stream: Duplex) => void) => void): Promise<Duplex> {
    for (let attempt = 0; ; attempt++) {
      const c = await this.client(name);
      try {
        const stream = await new Promise<Duplex>((resolve, reject) => {
          try {
            open(c, (err, st) => {
              if (!err) return resolve(st);
              const x = new ChannelOpenError(err.message);
              const reason = (err as Error & { reason?: unknown }).reason;
              if (typeof reason === 'number') x.reason = reason;
              reject(x);
            });
          } catch (e) {
            reject(new ChannelOpenError((e as Error).message));
          }
        });
        this.counters.forwards++;
        return stream;
      } catch (e) {
        if (attempt === 0 && /not connected|No response|closed/i.test((e as Error).message)) {
          this.disconnect(name);
          continue;
        }
        throw this.fail(name, `cannot open ${what}: ${(e as Error).message}`, { retryable: true, cause: e });
      }
    }
  }

  /** Ends every connection. */
  async close(): Promise<void> {
    this.closed = true;
    for (const list of this.shells.values()) for (const sh of list) sh.close();
    this.shells.clear();
    const all = [...this.conns.values()];
    this.conns.clear();
    await Promise.all(all.map((p) => p.then((c) => c.end(), () => undefined)));
  }
}

function expandHome(p: string): string {
  return p.startsWith('~/') ? `${process.env.HOME ?? ''}${p.slice(1)}` : p;
}
