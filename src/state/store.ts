// The StateStore interface and its local-file backend: `.spotfleet/state.json`, written atomically
// (temp file, fsync, rename) with mode 0600, guarded by a lock file that names its holder.
import { randomUUID } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync, chmodSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { LockError, SpotfleetError, type LockHolder } from '../core/errors.js';
import { STATE_VERSION, type StateFile } from './types.js';

export interface LockHandle {
  holder: LockHolder;
  release(): Promise<void>;
}

export interface StateStore {
  /** Where the state lives, for messages. */
  readonly location: string;
  /** The current state; a fresh empty one (new lineage, serial 0) when none exists yet. */
  read(): Promise<StateFile>;
  /** Writes the state, bumping its serial. Returns the written state. */
  write(state: StateFile): Promise<StateFile>;
  /** Takes the lock, waiting up to timeoutMs for another holder to let go. */
  lock(command: string, timeoutMs: number): Promise<LockHandle>;
  /** Removes a lock by its id, whoever holds it. */
  forceUnlock(id: string): Promise<void>;
  /** The current holder, if any. */
  holder(): Promise<LockHolder | undefined>;
}

export function emptyState(fleet: string): StateFile {
  return { version: STATE_VERSION, serial: 0, lineage: randomUUID(), fleet, resources: {}, pending: [], ledger: [] };
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Writes a file atomically: temp file in the same folder, fsync, rename; mode 0600. */
export function writeFileAtomic(path: string, data: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.${randomUUID().slice(0, 8)}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
  try {
    const dfd = openSync(dirname(path), 'r');
    fsyncSync(dfd);
    closeSync(dfd);
  } catch {
    // Directory fsync is best effort (not supported everywhere).
  }
}

/** Local file backend. `dir` is the `.spotfleet` folder. */
export class LocalStateStore implements StateStore {
  readonly location: string;
  private readonly lockPath: string;
  constructor(
    private readonly dir: string,
    private readonly fleet: string,
  ) {
    this.location = join(dir, 'state.json');
    this.lockPath = join(dir, 'state.lock');
  }

  async read(): Promise<StateFile> {
    if (!existsSync(this.location)) {
      // Persist the lineage at once: a plan saved now must match the state its apply reads.
      const fresh = emptyState(this.fleet);
      writeFileAtomic(this.location, `${JSON.stringify(fresh, null, 2)}\n`);
      return fresh;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(this.location, 'utf8'));
    } catch (e) {
      throw new SpotfleetError('STATE_CORRUPT', `state file ${this.location} is not valid JSON: ${(e as Error).message}`, ['Restore it from a backup (state.json.backup next to it) or move it away.']);
    }
    const s = parsed as Partial<StateFile>;
    if (typeof s.version !== 'number' || typeof s.serial !== 'number' || typeof s.lineage !== 'string' || typeof s.resources !== 'object') {
      throw new SpotfleetError('STATE_CORRUPT', `state file ${this.location} is missing version, serial, lineage or resources`);
    }
    if (s.version > STATE_VERSION) {
      throw new SpotfleetError('STATE_VERSION', `state file ${this.location} has version ${s.version}, newer than this spotfleet understands (${STATE_VERSION})`);
    }
    return { pending: [], ledger: [], fleet: this.fleet, ...s } as StateFile;
  }

  async write(state: StateFile): Promise<StateFile> {
    const next: StateFile = { ...state, serial: state.serial + 1 };
    if (existsSync(this.location)) {
      try {
        writeFileAtomic(`${this.location}.backup`, readFileSync(this.location, 'utf8'));
      } catch {
        // A missing backup never blocks a state write.
      }
    }
    writeFileAtomic(this.location, `${JSON.stringify(next, null, 2)}\n`);
    return next;
  }

  async holder(): Promise<LockHolder | undefined> {
    try {
      return JSON.parse(readFileSync(this.lockPath, 'utf8')) as LockHolder;
    } catch {
      return undefined;
    }
  }

  async lock(command: string, timeoutMs: number): Promise<LockHandle> {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const holder: LockHolder = { id: randomUUID(), pid: process.pid, host: hostname(), command, time: new Date().toISOString() };
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const fd = openSync(this.lockPath, 'wx', 0o600);
        writeSync(fd, JSON.stringify(holder));
        fsyncSync(fd);
        closeSync(fd);
        const path = this.lockPath;
        return {
          holder,
          async release() {
            try {
              const cur = JSON.parse(readFileSync(path, 'utf8')) as LockHolder;
              if (cur.id === holder.id) rmSync(path, { force: true });
            } catch {
              // Already gone.
            }
          },
        };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const cur = await this.holder();
      // A holder on this host whose process is gone crashed (SIGKILL): its lock is stale, and the
      // pending records in the state say what it was doing, so the next run can take over.
      if (cur && cur.host === hostname() && !pidAlive(cur.pid)) {
        rmSync(this.lockPath, { force: true });
        continue;
      }
      if (Date.now() >= deadline) {
        throw new LockError(`the state at ${this.location} is locked by another spotfleet (${cur ? `pid ${cur.pid} on ${cur.host}, running "${cur.command}"` : 'unknown holder'})`, cur);
      }
      await new Promise((r) => setTimeout(r, Math.min(200, Math.max(10, deadline - Date.now()))));
    }
  }

  async forceUnlock(id: string): Promise<void> {
    const cur = await this.holder();
    if (!cur) throw new SpotfleetError('NOT_LOCKED', `the state at ${this.location} is not locked`);
    if (cur.id !== id) throw new LockError(`lock ID "${id}" does not match the current lock`, cur);
    rmSync(this.lockPath, { force: true });
  }
}
