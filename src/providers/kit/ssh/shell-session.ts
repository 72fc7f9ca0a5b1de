// A kept shell on a node: one SSH session whose login shell starts ONCE and execs a small POSIX sh
// loop that runs the commands the pool sends it, one at a time, each framed by byte counts.
//
// Why: sshd hands every exec to the user's login shell, and bash run by sshd reads ~/.bashrc, so a
// host whose .bashrc runs `pyenv init` or `conda init` costs ~0.5 s per exec even over an open
// connection. Through a kept shell the .bashrc runs when the session opens and never again; each
// command then costs a fork or two on the node. The commands are the same quoted argv the pool
// would exec (quote.ts), evaluated by a POSIX sh exactly as a login shell would parse them.
//
// Wire (one line per command, so a newline inside an argument is written as '"$N"' — it can only
// occur inside a single-quoted argument — and N holds a newline on the node):
//   controller → node:  <quoted command line>\n
//   node → controller:  SPOTFLEET-RESULT <exit> <stdout bytes> <stderr bytes>\n<stdout><stderr>
// The command's stdin is /dev/null (stdin is the protocol); its output goes to files in a private
// temp folder first, so NUL bytes and output that never ends in a newline frame exactly.
import type { ClientChannel, Client as SshClient } from 'ssh2';
import type { ExecResult } from '../../sdk.js';
import { quoteArg, quoteArgv } from './quote.js';

export const SHELL_GREETING = 'SPOTFLEET-SHELL-1';
const RESULT = 'SPOTFLEET-RESULT ';

/**
 * The loop, as the login shell's `-c` argument: one line (a csh-family login shell rejects a
 * newline inside quotes), the temp folder removed when the session ends.
 */
const LOOP = [
  't=$(mktemp -d 2>/dev/null) || exit 97',
  "trap 'rm -rf \"$t\"' EXIT HUP INT TERM",
  "N=$(printf '\\nx')",
  'N=${N%x}',
  `echo ${SHELL_GREETING}`,
  'while IFS= read -r c; do (eval "$c") </dev/null >"$t/o" 2>"$t/e"; r=$?; echo "SPOTFLEET-RESULT $r $(wc -c <"$t/o") $(wc -c <"$t/e")"; cat "$t/o" "$t/e"; done',
].join('; ');

/** The exec command that turns a session into a kept shell: `exec /bin/sh -c '<loop>'`. */
export const SHELL_COMMAND = `exec /bin/sh -c ${quoteArg(LOOP)} spotfleet-shell`;

/**
 * One command line for the loop: argv quoted as for exec, with every newline (necessarily inside a
 * single-quoted argument) closed out to the node's "$N". Undefined when the command cannot go
 * through the loop (stdin that is not plain text): then the pool execs it.
 */
export function shellLine(argv: readonly string[], stdin?: string | Buffer): string | undefined {
  let line: string;
  if (stdin !== undefined) {
    const text = typeof stdin === 'string' ? stdin : stdin.toString('utf8');
    if (text.includes('\0') || (Buffer.isBuffer(stdin) && !Buffer.from(text, 'utf8').equals(stdin)) || text.length > 64 * 1024) return undefined;
    // The text reaches the command's stdin through printf, as an argument: data, never code.
    line = quoteArgv(['sh', '-c', 'printf %s "$1" | { shift; exec "$@"; }', 'sh', text, ...argv]);
  } else line = quoteArgv(argv);
  // A carriage return inside quotes is data to `read`; only the newline ends its line.
  return line.replace(/\n/g, `'"$N"'`);
}

export class ShellSessionError extends Error {}

/**
 * A kept shell. `run` sends one command and resolves with its exit code and output; only one
 * command runs at a time (the pool holds idle sessions and hands each to one caller).
 */
export class ShellSession {
  private buf: Buffer = Buffer.alloc(0);
  private waiter: { resolve: (r: ExecResult) => void; reject: (e: Error) => void; limit: number } | undefined;
  private dead: Error | undefined;
  idleSince = Date.now();

  private constructor(private readonly chan: ClientChannel) {
    chan.on('data', (d: Buffer) => this.onData(d));
    chan.stderr.on('data', () => undefined);
    chan.on('close', () => this.kill(new ShellSessionError('the kept shell session closed')));
    chan.on('error', (e: Error) => this.kill(new ShellSessionError(`the kept shell session failed: ${e.message}`)));
  }

  /**
   * Opens a session on the connection and waits for the loop's greeting (whatever the login
   * shell's rc files print before it is skipped). Rejects when the session cannot be opened, the
   * shell exits, or no greeting comes within `timeoutMs`.
   */
  static open(c: SshClient, timeoutMs: number): Promise<ShellSession> {
    return new Promise((resolve, reject) => {
      let done = false;
      const finish = (e: Error | undefined, s?: ShellSession): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (e) reject(e);
        else resolve(s as ShellSession);
      };
      const timer = setTimeout(() => {
        finish(new ShellSessionError(`no greeting from the kept shell within ${timeoutMs} ms`));
        chanRef?.close();
      }, timeoutMs);
      let chanRef: ClientChannel | undefined;
      try {
        c.exec(SHELL_COMMAND, (err, chan) => {
          if (err) return finish(new ShellSessionError(`cannot open a session: ${err.message}`));
          chanRef = chan;
          let pre = Buffer.alloc(0);
          const onPre = (d: Buffer): void => {
            pre = Buffer.concat([pre, d]);
            const at = pre.indexOf(`${SHELL_GREETING}\n`);
            if (at < 0) {
              if (pre.length > 1 << 20) {
                finish(new ShellSessionError('the login shell printed more than 1 MiB before the kept shell started'));
                chan.close();
              }
              return;
            }
            chan.removeListener('data', onPre);
            chan.removeListener('close', onEarlyClose);
            const s = new ShellSession(chan);
            const rest = pre.subarray(at + SHELL_GREETING.length + 1);
            if (rest.length > 0) s.onData(rest);
            finish(undefined, s);
          };
          const onEarlyClose = (): void => finish(new ShellSessionError(`the kept shell exited before it started${pre.length ? `: ${pre.toString('utf8').trim().slice(-200)}` : ''}`));
          chan.on('data', onPre);
          chan.on('close', onEarlyClose);
          chan.stderr.on('data', () => undefined);
        });
      } catch (e) {
        finish(new ShellSessionError(`cannot open a session: ${(e as Error).message}`));
      }
    });
  }

  get alive(): boolean {
    return this.dead === undefined;
  }

  get busy(): boolean {
    return this.waiter !== undefined;
  }

  /** Runs one command line (from `shellLine`). Output beyond `maxOutput` bytes ends the session. */
  run(line: string, maxOutput: number): Promise<ExecResult> {
    if (this.dead) return Promise.reject(this.dead);
    if (this.waiter) return Promise.reject(new ShellSessionError('the kept shell is busy'));
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject, limit: maxOutput };
      this.chan.write(`${line}\n`);
    });
  }

  /** Ends the session (a timed-out command is abandoned with it, as a closed exec channel is). */
  close(): void {
    this.kill(new ShellSessionError('the kept shell session was closed'));
  }

  private kill(e: Error): void {
    if (!this.dead) this.dead = e;
    const w = this.waiter;
    this.waiter = undefined;
    w?.reject(e);
    try {
      this.chan.close();
    } catch {
      // already gone
    }
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
    const w = this.waiter;
    if (!w) {
      if (this.buf.length > 0) this.kill(new ShellSessionError('the kept shell printed output nobody asked for'));
      return;
    }
    const nl = this.buf.indexOf(10);
    if (nl < 0) {
      if (this.buf.length > 4096) this.kill(new ShellSessionError('the kept shell sent a malformed result header'));
      return;
    }
    const header = this.buf.subarray(0, nl).toString('utf8');
    const m = header.startsWith(RESULT) ? /^(\d+)\s+(\d+)\s+(\d+)$/.exec(header.slice(RESULT.length).trim()) : null;
    if (!m) {
      this.kill(new ShellSessionError(`the kept shell sent a malformed result header: ${JSON.stringify(header.slice(0, 100))}`));
      return;
    }
    const outLen = Number(m[2]);
    const errLen = Number(m[3]);
    if (outLen + errLen > w.limit) {
      this.kill(new ShellSessionError(`the command printed more than ${w.limit} bytes`));
      return;
    }
    if (this.buf.length < nl + 1 + outLen + errLen) return;
    const body = this.buf.subarray(nl + 1);
    const r: ExecResult = { code: Number(m[1]), stdout: body.subarray(0, outLen).toString('utf8'), stderr: body.subarray(outLen, outLen + errLen).toString('utf8') };
    this.buf = Buffer.from(body.subarray(outLen + errLen));
    this.waiter = undefined;
    this.idleSince = Date.now();
    if (this.buf.length > 0) {
      this.kill(new ShellSessionError('the kept shell printed output nobody asked for'));
      w.resolve(r);
      return;
    }
    w.resolve(r);
  }
}
