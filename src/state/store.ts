// The StateStore interface and its local-file backend: `.spotfleet/state.json`, written atomically
// (temp file, fsync, rename) with mode 0600, guarded by a lock file that names its holder.
// Every write is a compare-and-swap on the serial, so two writers (watch and destroy, say) never
// lose each other's updates: `update(fn)` re-reads, re-applies and retries when it lost the race.
import { randomUUID } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync, chmodSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { LockError, SpotfleetError, StateConflictError, type LockHolder } from '../core/errors.js';
import type { Observed } from '../core/types.js';
import { STATE_VERSION, type StateFile, type WorkloadPhase } from './types.js';

export interface LockHandle {
  holder: LockHolder;
  release(): Promise<void>;
}

export interface StateStore {
  /** Where the state lives, for messages. */
  readonly location: string;
  /** The current state; a fresh empty one (new lineage, serial 0) when none exists yet. */
  read(): Promise<StateFile>;
  /**
   * Writes the state, bumping its serial, only if the stored serial is still `state.serial`
   * (compare-and-swap). Throws StateConflictError when another writer got there first.
   */
  write(state: StateFile): Promise<StateFile>;
  /**
   * One transaction: reads the newest state, applies `fn` to a copy and writes it with
   * compare-and-swap, retrying from a fresh read when another writer won the race. `fn` may throw
   * (a StateConflictError when its precondition no longer holds) to abort without writing.
   */
  update(fn: (s: StateFile) => void): Promise<StateFile>;
  /** The last full observation of the world (what refresh saw), for `plan --refresh=false`. */
  saveObservation(obs: Observed): Promise<void>;
  readObservation(): Promise<Observed | undefined>;
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

/**
 * Brings a state written by an older spotfleet to the current shape. Version 1 had `status:
 * running | stopped` on workloads; version 2 has the lifecycle phase.
 */
export function upgradeState(s: StateFile): StateFile {
  if (s.version >= STATE_VERSION) return s;
  for (const r of Object.values(s.resources)) {
    if (r.type !== 'workload') continue;
    const old = r as unknown as { status?: string; phase?: WorkloadPhase };
    if (old.phase === undefined) r.phase = old.status === 'running' ? 'running' : 'pending';
    delete old.status;
    r.failures ??= 0;
    r.recoveries ??= 0;
  }
  return { ...s, version: STATE_VERSION };
}

/** Applies `fn` to the newest state and writes it, retrying a few times when another writer won. */
export async function updateWithRetry(store: Pick<StateStore, 'read' | 'write'>, fn: (s: StateFile) => void, attempts = 20): Promise<StateFile> {
  for (let i = 0; ; i++) {
    const next = structuredClone(await store.read());
    fn(next);
    try {
      return await store.write(next);
    } catch (e) {
      if (!(e instanceof StateConflictError) || i + 1 >= attempts) throw e;
      await new Promise((r) => setTimeout(r, 2 + Math.random() * 10 * (i + 1)));
    }
  }
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
  /** Held for milliseconds around each compare-and-swap, so read-compare-rename is atomic across processes. */
  private readonly casPath: string;
  /** The last state this process read or wrote, with the file identity it had: a re-read is skipped when the file is unchanged. */
  private cache: { key: string; state: StateFile } | undefined;
  constructor(
    private readonly dir: string,
    private readonly fleet: string,
  ) {
    this.location = join(dir, 'state.json');
    this.lockPath = join(dir, 'state.lock');
    this.casPath = join(dir, 'state.cas');
  }

  private fileKey(): string | undefined {
    try {
      const st = statSync(this.location);
      return `${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch {
      return undefined;
    }
  }

  async read(): Promise<StateFile> {
    return structuredClone(this.readShared());
  }

  /** The newest state, shared with the cache: callers must not modify it. */
  private readShared(): StateFile {
    const key = this.fileKey();
    if (key !== undefined && this.cache?.key === key) return this.cache.state;
    if (key === undefined) {
      // Persist the lineage at once: a plan saved now must match the state its apply reads.
      const fresh = emptyState(this.fleet);
      this.withCasLock(() => {
        if (!existsSync(this.location)) writeFileAtomic(this.location, `${JSON.stringify(fresh, null, 2)}\n`);
      });
      return this.readShared();
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
    const state = upgradeState({ pending: [], ledger: [], fleet: this.fleet, ...s } as StateFile);
    this.cache = { key, state };
    return state;
  }

  async write(state: StateFile): Promise<StateFile> {
    const next: StateFile = { ...state, version: STATE_VERSION, serial: state.serial + 1 };
    this.withCasLock(() => {
      const cur = this.readShared();
      if (cur.serial !== state.serial || cur.lineage !== state.lineage) {
        throw new StateConflictError(`the state at ${this.location} moved on (serial ${state.serial} → ${cur.serial}) while this change was being made`);
      }
      try {
        writeFileAtomic(`${this.location}.backup`, readFileSync(this.location, 'utf8'));
      } catch {
        // A missing backup never blocks a state write.
      }
      const text = `${JSON.stringify(next, null, 2)}\n`;
      writeFileAtomic(this.location, text);
      const key = this.fileKey();
      if (key !== undefined) this.cache = { key, state: structuredClone(next) };
    });
    return next;
  }

  async update(fn: (s: StateFile) => void): Promise<StateFile> {
    return updateWithRetry(this, fn);
  }

  async saveObservation(obs: Observed): Promise<void> {
    await Promise.resolve();
    writeFileAtomic(join(this.dir, 'observed.json'), `${JSON.stringify(obs)}\n`);
  }

  async readObservation(): Promise<Observed | undefined> {
    await Promise.resolve();
    try {
      return JSON.parse(readFileSync(join(this.dir, 'observed.json'), 'utf8')) as Observed;
    } catch {
      return undefined;
    }
  }

  /**
   * Runs fn holding the short compare-and-swap lock (an exclusively created file naming its pid).
   * A holder on this host that died leaves a file whose pid is gone: it is taken over.
   */
  private withCasLock<T>(fn: () => T): T {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const deadline = Date.now() + 10_000;
    for (let spins = 0; ; spins++) {
      let fd: number | undefined;
      try {
        fd = openSync(this.casPath, 'wx', 0o600);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      if (fd !== undefined) {
        try {
          writeSync(fd, `${process.pid}@${hostname()}`);
        } finally {
          closeSync(fd);
        }
        try {
          return fn();
        } finally {
          rmSync(this.casPath, { force: true });
        }
      }
      let owner = '';
      try {
        owner = readFileSync(this.casPath, 'utf8');
      } catch {
        continue;
      }
      const [pid, host] = owner.split('@');
      // An empty or half-written file, or a dead holder on this host: stale.
      if (owner === '' || (host === hostname() && !pidAlive(Number(pid)))) {
        if (owner !== '' || spins > 50) rmSync(this.casPath, { force: true });
      }
      if (Date.now() > deadline) throw new SpotfleetError('STATE_BUSY', `the state at ${this.location} stayed busy (held by ${owner || 'unknown'}) for 10s`);
      // A synchronous spin: the CAS lock is held for a write's milliseconds only.
      const until = Date.now() + 2;
      while (Date.now() < until) {
        /* wait */
      }
    }
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
