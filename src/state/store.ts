// The StateStore interface and its local-file backend: `.spotfleet/state.json`, written atomically
// (temp file, fsync, rename) with mode 0600, guarded by a lock file that names its holder.
// Every write is a compare-and-swap on the serial, so two writers (watch and destroy, say) never
// lose each other's updates: `update(fn)` re-reads, re-applies and retries when it lost the race.
// Under faults: a state of the wrong structure is refused on load naming the backup (schema.ts); a
// write that fails leaves no temp file, says so and keeps the run's changes in a recovery file
// (recovery.ts); a lock file is complete or absent, and an unreadable one is recognisably stale
// (lock-file.ts); the savings history has a rolling backup the next fresh state starts from
// (ledger-backup.ts).
import { randomUUID } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync, chmodSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { LockError, SpotfleetError, StateConflictError, type LockHolder } from '../core/errors.js';
import type { Observed } from '../core/types.js';
import { STATE_VERSION, type StateFile, type WorkloadPhase } from './types.js';
import { restoreFromLedgerBackup, restoreMovesInto, writeLedgerBackup } from './ledger-backup.js';
import { createLockFile, pidAlive, readLockFile, STALE_UNREADABLE_LOCK_MS } from './lock-file.js';
import { mergeUnsaved, stateWriteError, writeRecoveryFile, type UnsavedInfo } from './recovery.js';
import { writePrivateFile } from './private-file.js';
import { stateShapeProblems } from './schema.js';

export interface LockHandle {
  holder: LockHolder;
  release(): Promise<void>;
}

export interface StateStore {
  /** Where the state lives, for messages. */
  readonly location: string;
  /** The current state (a copy the caller owns); a fresh empty one (new lineage, serial 0) when none exists yet. */
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
  /** Lets go of connections (a remote backend); the file backend has none. */
  close?(): Promise<void>;
  /** Writes of this process that failed, and where their changes were kept; undefined when none. */
  unsaved?(): UnsavedInfo | undefined;
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
    // read() hands out a copy of its own: fn may change it freely.
    const next = await store.read();
    fn(next);
    try {
      return await store.write(next);
    } catch (e) {
      if (!(e instanceof StateConflictError) || i + 1 >= attempts) throw e;
      await new Promise((r) => setTimeout(r, 2 + Math.random() * 10 * (i + 1)));
    }
  }
}

/** Writes a file atomically: temp file in the same folder, fsync, rename; mode 0600. */
export function writeFileAtomic(path: string, data: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.${randomUUID().slice(0, 8)}.tmp`;
  try {
    writePrivateFile(tmp, data);
    chmodSync(tmp, 0o600);
    renameSync(tmp, path);
  } catch (e) {
    // A failed write (ENOSPC, EACCES...) leaves nothing behind: no .tmp file next to the state.
    rmSync(tmp, { force: true });
    throw e;
  }
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
  private casHeld = false;
  /** The last state this process read or wrote, with the file identity it had: a re-read is skipped when the file is unchanged. */
  private cache: { key: string; state: StateFile } | undefined;
  /** The state as last read or written by this process: what a failed write's change is measured from. */
  private lastWritten: StateFile | undefined;
  private unsavedState: StateFile | undefined;
  private unsavedInfo: UnsavedInfo | undefined;
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
      // Persist the lineage at once: a plan saved now must match the state its apply reads. A
      // state deleted by hand starts again from the savings history's backup.
      const fresh = emptyState(this.fleet);
      restoreFromLedgerBackup(this.dir, fresh);
      this.withCasLock(() => {
        if (existsSync(this.location)) return;
        try {
          writeFileAtomic(this.location, `${JSON.stringify(fresh, null, 2)}\n`);
        } catch (e) {
          throw this.failedWrite(fresh, e);
        }
      });
      return this.readShared();
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(this.location, 'utf8'));
    } catch (e) {
      throw new SpotfleetError('STATE_CORRUPT', `state file ${this.location} is not valid JSON: ${(e as Error).message}`, this.corruptHints());
    }
    const s = parsed as Partial<StateFile>;
    if (typeof s.version === 'number' && s.version > STATE_VERSION) {
      throw new SpotfleetError('STATE_VERSION', `state file ${this.location} has version ${s.version}, newer than this spotfleet understands (${STATE_VERSION})`);
    }
    const problems = stateShapeProblems(parsed);
    if (problems.length > 0) {
      const shown = problems.slice(0, 3).join('; ');
      throw new SpotfleetError('STATE_CORRUPT', `state file ${this.location} does not have the structure of a spotfleet state: ${shown}${problems.length > 3 ? ` (and ${problems.length - 3} more)` : ''}`, this.corruptHints());
    }
    const state = upgradeState({ pending: [], ledger: [], fleet: this.fleet, ...s } as StateFile);
    this.cache = { key, state };
    this.lastWritten = state;
    return state;
  }

  /** How to get out of a state file that cannot be used: the backup, or starting afresh. */
  private corruptHints(): string[] {
    const backup = `${this.location}.backup`;
    let about = `There is no backup (${backup} does not exist).`;
    try {
      const b = JSON.parse(readFileSync(backup, 'utf8')) as Partial<StateFile>;
      about = stateShapeProblems(b).length === 0 ? `A backup of the state before the last write is in ${backup} (serial ${String(b.serial)}).` : `${backup} exists but is not a usable state either.`;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') about = `${backup} exists but cannot be read as JSON.`;
    }
    return [
      about,
      `To recover: look at the file; copy the backup over it (cp ${backup} ${this.location}), or move it away: spotfleet then starts a new state and adopts what runs (the savings history comes back from ledger.backup.json).`,
    ];
  }

  /** Records a failed write (merging its change into what is unsaved) and returns the error to throw. */
  private failedWrite(next: StateFile, e: unknown): Error {
    const base = this.lastWritten ?? { ...next, resources: {}, pending: [], ledger: [] };
    this.unsavedState = mergeUnsaved(base, this.unsavedState, next);
    const path = writeRecoveryFile(this.location, this.unsavedState, this.unsavedInfo?.path);
    this.unsavedInfo = { ...(path ? { path } : {}), error: e instanceof Error ? e.message : String(e), failures: (this.unsavedInfo?.failures ?? 0) + 1 };
    return stateWriteError(this.location, e, this.unsavedInfo);
  }

  unsaved(): UnsavedInfo | undefined {
    return this.unsavedInfo;
  }

  async write(state: StateFile): Promise<StateFile> {
    const next: StateFile = { ...state, version: STATE_VERSION, serial: state.serial + 1 };
    restoreMovesInto(next);
    const locked = <T>(fn: () => T): T => {
      try {
        return this.withCasLock(fn);
      } catch (e) {
        // The short write lock itself could not be made (a full disk, a read-only folder): a failed write.
        if (e instanceof SpotfleetError || !(e as NodeJS.ErrnoException).code) throw e;
        throw this.failedWrite(next, e);
      }
    };
    locked(() => {
      // Compare-and-swap against what is on disk; the first write of a state has nothing to compare.
      if (this.fileKey() !== undefined) {
        let cur: StateFile;
        try {
          cur = this.readShared();
        } catch (e) {
          // What is there cannot be read as a state (a folder, a corrupt file): this write fails,
          // and what it would have written is kept.
          throw this.failedWrite(next, e);
        }
        if (cur.serial !== state.serial || cur.lineage !== state.lineage) {
          throw new StateConflictError(`the state at ${this.location} moved on (serial ${state.serial} → ${cur.serial}) while this change was being made`);
        }
      }
      try {
        writeFileAtomic(`${this.location}.backup`, readFileSync(this.location, 'utf8'));
      } catch {
        // A missing backup never blocks a state write.
      }
      try {
        writeFileAtomic(this.location, `${JSON.stringify(next, null, 2)}\n`);
      } catch (e) {
        throw this.failedWrite(next, e);
      }
      this.lastWritten = next;
      const key = this.fileKey();
      if (key !== undefined) this.cache = { key, state: structuredClone(next) };
    });
    writeLedgerBackup(this.dir, next);
    return next;
  }

  async update(fn: (s: StateFile) => void): Promise<StateFile> {
    return updateWithRetry(this, fn);
  }

  async saveObservation(obs: Observed): Promise<void> {
    await Promise.resolve();
    try {
      writeFileAtomic(join(this.dir, 'observed.json'), `${JSON.stringify(obs)}\n`);
    } catch {
      // A cache for `plan --refresh=false`: a full disk must not fail the run (the state write says so).
    }
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
    // Re-entered from inside the lock (a write that reads the newest state): it is ours already.
    if (this.casHeld) return fn();
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
        } catch {
          // A full disk: the empty file still excludes others for the write's milliseconds.
        } finally {
          closeSync(fd);
        }
        this.casHeld = true;
        try {
          return fn();
        } finally {
          this.casHeld = false;
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
    const cur = readLockFile(this.lockPath);
    return cur && 'holder' in cur ? cur.holder : undefined;
  }

  async lock(command: string, timeoutMs: number): Promise<LockHandle> {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const holder: LockHolder = { id: randomUUID(), pid: process.pid, host: hostname(), command, time: new Date().toISOString() };
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (createLockFile(this.lockPath, holder)) {
        const path = this.lockPath;
        return {
          holder,
          async release() {
            const cur = readLockFile(path);
            if (cur && 'holder' in cur && cur.holder.id === holder.id) rmSync(path, { force: true });
          },
        };
      }
      const cur = readLockFile(this.lockPath);
      if (cur === undefined) continue; // released meanwhile
      // A lock file nobody can read was cut short (a crash, a full disk, an older spotfleet): a
      // live writer completes it at once, so once it is a few seconds old it is stale.
      if ('unreadable' in cur && cur.ageMs > STALE_UNREADABLE_LOCK_MS) {
        rmSync(this.lockPath, { force: true });
        continue;
      }
      // A holder on this host whose process is gone crashed (SIGKILL): its lock is stale, and the
      // pending records in the state say what it was doing, so the next run can take over.
      if ('holder' in cur && cur.holder.host === hostname() && !pidAlive(cur.holder.pid)) {
        rmSync(this.lockPath, { force: true });
        continue;
      }
      if (Date.now() >= deadline) {
        if ('unreadable' in cur) {
          throw new LockError(`the state at ${this.location} is locked by a lock file that cannot be read (${this.lockPath}, written ${Math.round(cur.ageMs / 1000)} s ago); it counts as stale once ${STALE_UNREADABLE_LOCK_MS / 1000} s old`, undefined);
        }
        const h = cur.holder;
        throw new LockError(`the state at ${this.location} is locked by another spotfleet (pid ${h.pid} on ${h.host}, running "${h.command}")`, h);
      }
      await new Promise((r) => setTimeout(r, Math.min(200, Math.max(10, deadline - Date.now()))));
    }
  }

  async forceUnlock(id: string): Promise<void> {
    const cur = readLockFile(this.lockPath);
    if (!cur) throw new SpotfleetError('NOT_LOCKED', `the state at ${this.location} is not locked`);
    // A lock file that cannot be read has no ID to match: force-unlock removes it whatever ID is given.
    if ('holder' in cur && cur.holder.id !== id) throw new LockError(`lock ID "${id}" does not match the current lock`, cur.holder);
    rmSync(this.lockPath, { force: true });
  }
}
