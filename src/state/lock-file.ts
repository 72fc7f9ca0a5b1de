// The state lock file: complete or absent. The holder record is written to a private temp file
// first and then hard-linked to `state.lock` (link fails when the lock exists, so taking it stays
// atomic); a full disk (ENOSPC) or a crash mid-write leaves no lock behind. An unreadable lock file
// (an older spotfleet cut short, or a file system without hard links that fell back to O_EXCL) is
// recognisably stale once a few seconds old: a live writer completes it in microseconds.
import { randomUUID } from 'node:crypto';
import { closeSync, fsyncSync, linkSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { SpotfleetError, type LockHolder } from '../core/errors.js';

/** Whether a process with this pid runs on this host (one we may not signal still runs). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** An unreadable lock file older than this is stale. */
export const STALE_UNREADABLE_LOCK_MS = 5_000;

export type LockFileState = { holder: LockHolder } | { unreadable: true; ageMs: number };

function lockFailed(path: string, e: unknown): SpotfleetError {
  const code = (e as NodeJS.ErrnoException).code;
  const why = code === 'ENOSPC' ? 'no space left on the device' : code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code === 'EROFS' ? 'the file system is read-only' : (e as Error).message;
  return new SpotfleetError('LOCK_FAILED', `cannot take the state lock ${path}: ${why}${code && !why.includes(code) ? ` (${code})` : ''}`, [`Nothing was left behind and nothing was changed; make room or fix the permissions of ${dirname(path)}, then run the command again.`]);
}

function writeHolder(fd: number, holder: LockHolder): void {
  writeSync(fd, JSON.stringify(holder));
  fsyncSync(fd);
}

/**
 * Creates the lock file holding `holder`. True when this call took the lock, false when a lock
 * file already exists; throws a SpotfleetError (leaving nothing behind) when it cannot be written.
 */
export function createLockFile(path: string, holder: LockHolder): boolean {
  const tmp = `${path}.${process.pid}.${randomUUID().slice(0, 8)}.tmp`;
  try {
    const fd = openSync(tmp, 'wx', 0o600);
    try {
      writeHolder(fd, holder);
    } finally {
      closeSync(fd);
    }
    linkSync(tmp, path);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'ENOSYS') return createExclusive(path, holder);
    throw lockFailed(path, e);
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** For file systems without hard links: O_EXCL, removing the file again when its write fails. */
function createExclusive(path: string, holder: LockHolder): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw lockFailed(path, e);
  }
  try {
    writeHolder(fd, holder);
    closeSync(fd);
    return true;
  } catch (e) {
    closeSync(fd);
    rmSync(path, { force: true });
    throw lockFailed(path, e);
  }
}

/** What the lock file says: its holder, unreadable (with its age), or undefined when there is none. */
export function readLockFile(path: string): LockFileState | undefined {
  let text: string;
  let mtimeMs: number;
  try {
    mtimeMs = statSync(path).mtimeMs;
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const h = JSON.parse(text) as LockHolder;
    if (typeof h.id === 'string' && typeof h.pid === 'number' && typeof h.host === 'string') return { holder: h };
  } catch {
    // below
  }
  return { unreadable: true, ageMs: Math.max(0, Date.now() - mtimeMs) };
}
