// Terminal I/O for commands: streams, whether they are terminals, and whether colour is on (it
// honours NO_COLOR, --no-color and TERM=dumb; core/text.ts's paint applies it).
// Commands write through an Io so e2e tests and the live view see the same bytes. Everything the
// Io prints passes safeTerminalText (src/core/text.ts): control characters in names, zones and
// messages from specs, state or providers are shown, never obeyed.
import type { Readable, Writable } from 'node:stream';
import { safeTerminalText } from '../core/text.js';

export interface Io {
  stdout: Writable & { isTTY?: boolean; columns?: number };
  stderr: Writable & { isTTY?: boolean };
  stdin: Readable & { isTTY?: boolean };
  env: Readonly<Record<string, string | undefined>>;
  /** Colour allowed on stdout (a terminal, no NO_COLOR, no --no-color). */
  color: boolean;
  /** A line on stdout (a newline is added when missing), made safe for the terminal. */
  out(text: string): void;
  /** A line on stderr, made safe for the terminal. */
  err(text: string): void;
  /** Text on stdout as it is (no newline added), made safe for the terminal. */
  write(text: string): void;
  /** Text on stderr as it is, made safe for the terminal. */
  writeErr(text: string): void;
}

/**
 * Once the reader of a pipe has gone (`spotfleet status | head`), writing to it fails with EPIPE.
 * Like any Unix tool, spotfleet stops writing there, quietly; unlike one killed by SIGPIPE it goes
 * on with what it was doing, so an `apply` piped into `head` still finishes and saves its state.
 */
function ignoreClosedPipe(stream: NodeJS.WriteStream): void {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED') return;
    throw e;
  });
}

let pipesGuarded = false;

export function makeIo(opts: { noColor?: boolean } = {}): Io {
  const env = process.env;
  const color = !opts.noColor && !('NO_COLOR' in env && env.NO_COLOR !== '') && Boolean(process.stdout.isTTY) && env.TERM !== 'dumb';
  if (!pipesGuarded) {
    pipesGuarded = true;
    ignoreClosedPipe(process.stdout);
    ignoreClosedPipe(process.stderr);
  }
  const write = (s: NodeJS.WriteStream, t: string, newline: boolean): void => {
    if (s.destroyed) return;
    s.write(safeTerminalText(newline && !t.endsWith('\n') ? `${t}\n` : t));
  };
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env,
    color,
    out: (t) => write(process.stdout, t, true),
    err: (t) => write(process.stderr, t, true),
    write: (t) => write(process.stdout, t, false),
    writeErr: (t) => write(process.stderr, t, false),
  };
}
