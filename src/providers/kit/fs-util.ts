// Small file-system and process helpers shared by the kit: atomic JSON records, safe path names,
// and process liveness that survives PID reuse (start time from /proc/<pid>/stat).
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { ProviderError } from '../../core/errors.js';

/** Writes JSON atomically (temp file, fsync, rename) so a crash never leaves half a record. */
export function writeJsonAtomic(path: string, value: unknown, mode = 0o600): void {
  const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const fd = openSync(tmp, 'w', mode);
  try {
    writeSync(fd, `${JSON.stringify(value, null, 2)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/** Reads a JSON file; undefined when it does not exist or is not (yet) valid JSON. */
export function readJson<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Node, workload and instance names become folder names: refuse anything that could escape. */
export function assertSafeName(provider: string, what: string, name: string): void {
  if (!SAFE_NAME.test(name) || name.includes('..')) {
    throw new ProviderError(provider, `invalid ${what} name "${name}" (expected letters, digits, '.', '_' or '-')`);
  }
}

/** Short stable hash for ids derived from idempotency keys. */
export function shortHash(text: string, length = 12): string {
  return createHash('sha256').update(text).digest('hex').slice(0, length);
}

export interface ProcStat {
  /** Single-letter process state (R, S, Z, ...). */
  state: string;
  /** Start time in clock ticks since boot; the PID-reuse guard. */
  start: string;
}

/** Reads /proc/<pid>/stat; undefined when the process does not exist (or /proc is unavailable). */
export function procStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: rest[0] ?? '?', start: rest[19] ?? '' };
}

/** A process we started earlier, identified by pid and start time. */
export interface PidRef {
  pid: number;
  start?: string;
}

/** True when the process is alive and is the same process (not a reused PID, not a zombie). */
export function isAlive(ref: PidRef | undefined): boolean {
  if (!ref || !(ref.pid > 0)) return false;
  const st = procStat(ref.pid);
  if (st === undefined) {
    if (process.platform === 'linux') return false;
    try {
      process.kill(ref.pid, 0);
      return true;
    } catch {
      return false;
    }
  }
  if (st.state === 'Z' || st.state === 'X') return false;
  return ref.start === undefined || ref.start === '' || st.start === ref.start;
}

/** Sends a signal, ignoring a process that is already gone. */
export function trySignal(pid: number, signal: NodeJS.Signals | number): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

