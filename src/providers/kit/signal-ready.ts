// Is a process ready for a signal? The rule every runtime follows: a checkpoint signal is sent
// only to a process that has installed a handler for it, so no signal ever reaches a default
// handler. A default handler ends the process for SIGUSR1/SIGUSR2/SIGALRM/SIGHUP (a Python
// trainer that gets SIGUSR1 before it called signal.signal() dies and loses its work), and in
// Node.js SIGUSR1 opens the inspector on 127.0.0.1:9229 (local code execution as the workload's
// user). Linux says which signals a process catches in /proc/PID/status (`SigCgt`, a hex mask of
// signal numbers minus one); Node.js blocks SIGUSR1 instead of catching it until a script adds a
// listener, so its mask tells the truth too.
import { readFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { SIGNAL_NOT_READY } from '../../core/errors.js';

/** How long a runtime waits for a workload to become ready for a signal before it gives up. */
export const SIGNAL_READY_TIMEOUT_MS = 10_000;

/** Marks a runtime's error as "not sent: no handler yet", so a checkpoint step need not wait for it. */
export function signalNotReady<E extends Error>(e: E): E {
  return Object.assign(e, { reason: SIGNAL_NOT_READY });
}

/** Normalises `usr1`, `USR1`, `SIGUSR1` to `SIGUSR1`; undefined when it is not a known signal. */
export function signalName(signal: string): string | undefined {
  const s = signal.toUpperCase();
  const name = s.startsWith('SIG') ? s : `SIG${s}`;
  return name in osConstants.signals ? name : undefined;
}

/** Signals whose default action is harmless (ignore, continue): sending them needs no handler. */
const HARMLESS_DEFAULT = new Set(['SIGCHLD', 'SIGCONT', 'SIGURG', 'SIGWINCH']);

/** True when a signal can be sent to a process whatever it catches (no handler, or no harm). */
export function needsNoHandler(name: string): boolean {
  return name === 'SIGKILL' || name === 'SIGSTOP' || HARMLESS_DEFAULT.has(name);
}

/**
 * Whether the `/proc/PID/status` text says the process catches the signal: true or false, or
 * undefined when the text has no SigCgt line (not Linux, or not a status file).
 * @example catchesIn('SigCgt:\t0000000000000200\n', 'SIGUSR1') // true (SIGUSR1 is 10: bit 9)
 */
export function catchesIn(statusText: string, signal: string): boolean | undefined {
  const name = signalName(signal);
  if (!name) return false;
  const num = osConstants.signals[name as keyof typeof osConstants.signals];
  const m = /^SigCgt:\s*([0-9a-fA-F]+)\s*$/m.exec(statusText);
  if (!m) return undefined;
  return ((BigInt(`0x${m[1] as string}`) >> BigInt(num - 1)) & 1n) === 1n;
}

/** Whether a process on this machine catches the signal; false when it is gone or unreadable. */
export function processCatches(pid: number, signal: string): boolean {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return false;
  }
  return catchesIn(text, signal) === true;
}

/**
 * Polls `check` until it says ready (true), gone (undefined: stop waiting) or the time is up.
 * Returns the last answer.
 */
export async function waitUntilReady(check: () => Promise<boolean | undefined> | boolean | undefined, timeoutMs: number, pollMs = 25): Promise<boolean | undefined> {
  const until = Date.now() + Math.max(0, timeoutMs);
  for (;;) {
    const r = await check();
    if (r !== false || Date.now() >= until) return r;
    await new Promise((res) => setTimeout(res, pollMs));
  }
}
