// Terminal I/O for commands: streams, whether they are terminals, and colour that honours NO_COLOR.
// Commands write through an Io so e2e tests and the live view see the same bytes. Everything the
// Io prints passes safeTerminalText (src/core/text.ts): control characters in names, zones and
// messages from specs, state or providers are shown, never obeyed.
import type { Readable, Writable } from 'node:stream';
import { safeTerminalText, sgr } from '../core/text.js';

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

export function makeIo(opts: { noColor?: boolean } = {}): Io {
  const env = process.env;
  const color = !opts.noColor && !('NO_COLOR' in env && env.NO_COLOR !== '') && Boolean(process.stdout.isTTY) && env.TERM !== 'dumb';
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env,
    color,
    out: (t) => void process.stdout.write(safeTerminalText(t.endsWith('\n') ? t : `${t}\n`)),
    err: (t) => void process.stderr.write(safeTerminalText(t.endsWith('\n') ? t : `${t}\n`)),
    write: (t) => void process.stdout.write(safeTerminalText(t)),
    writeErr: (t) => void process.stderr.write(safeTerminalText(t)),
  };
}

const CODES = { bold: [1, 22], dim: [2, 22], red: [31, 39], green: [32, 39], yellow: [33, 39], cyan: [36, 39] } as const;
export type Style = keyof typeof CODES;

/** Wraps text in an ANSI style when colour is on (it takes effect when printed through the Io). */
export function paint(io: { color: boolean }, style: Style, text: string): string {
  if (!io.color) return text;
  const [a, b] = CODES[style];
  return `${sgr(a)}${text}${sgr(b)}`;
}
