// When the state cannot be written (disk full, read-only folder, a permission taken away), the run
// must say so truthfully and lose nothing: the state it tried to write (with every change of this
// run that failed to save, merged in order) goes to a recovery file, 0600, beside the state or, when
// that folder cannot take it either, in a private folder under the system temp dir; the error
// names that file and says how to recover. The state on disk is never half-written (the write is
// atomic), and the pending records in it still name what was in flight, so the next run converges.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SpotfleetError } from '../core/errors.js';
import type { StateFile } from './types.js';
import { writePrivateFile } from './private-file.js';

/** Raised by a state store whose write failed; the message names the recovery file. */
export class StateWriteError extends SpotfleetError {
  constructor(
    message: string,
    details: string[],
    readonly recoveryPath: string | undefined,
    cause: unknown,
  ) {
    super('STATE_WRITE_FAILED', message, details);
    this.cause = cause;
  }
}

/** What a store remembers about states it could not write in this process. */
export interface UnsavedInfo {
  /** Where the merged unsaved state was written (undefined when even that failed). */
  path?: string;
  /** The error of the last failed write. */
  error: string;
  /** How many writes failed. */
  failures: number;
}

function keyOfPending(p: { id: string }): string {
  return p.id;
}

/**
 * Merges one failed write into what is unsaved so far. `base` is the last state written to disk,
 * `next` the state that failed (base plus one change), `prev` the unsaved state so far: the change
 * (resources set or removed, pending records added or removed, ledger entries appended) is applied
 * to `prev`, so a run whose every write fails still keeps all of its changes.
 */
export function mergeUnsaved(base: StateFile, prev: StateFile | undefined, next: StateFile): StateFile {
  if (!prev) return structuredClone(next);
  const out = structuredClone(prev);
  for (const [k, v] of Object.entries(next.resources)) {
    if (JSON.stringify(base.resources[k]) !== JSON.stringify(v)) out.resources[k] = structuredClone(v);
  }
  for (const k of Object.keys(base.resources)) if (!(k in next.resources)) delete out.resources[k];
  const before = new Set(base.pending.map(keyOfPending));
  const after = new Set(next.pending.map(keyOfPending));
  out.pending = [...out.pending.filter((p) => !before.has(p.id) || after.has(p.id)), ...next.pending.filter((p) => !before.has(p.id) && !out.pending.some((q) => q.id === p.id))];
  if (next.ledger.length > base.ledger.length) out.ledger = [...out.ledger, ...structuredClone(next.ledger.slice(base.ledger.length))];
  out.serial = Math.max(out.serial, next.serial);
  return out;
}

/**
 * Writes the unsaved state beside the state file (`state.json.unsaved`), else into a new private
 * folder under the temp dir; returns the path, or undefined when neither could be written.
 */
export function writeRecoveryFile(statePath: string, state: StateFile, previous: string | undefined): string | undefined {
  const text = `${JSON.stringify(state, null, 2)}\n`;
  const candidates = [...(previous ? [previous] : []), `${statePath}.unsaved`];
  for (const p of candidates) {
    try {
      writePrivateFile(p, text);
      return p;
    } catch {
      rmSync(p, { force: true });
    }
  }
  try {
    const dir = mkdtempSync(join(tmpdir(), 'spotfleet-unsaved-'));
    const p = join(dir, 'state.json');
    writePrivateFile(p, text);
    return p;
  } catch {
    return undefined;
  }
}

/** The error a failed state write becomes: what failed, where the run's changes are, what to do. */
export function stateWriteError(statePath: string, e: unknown, info: UnsavedInfo): StateWriteError {
  const code = (e as NodeJS.ErrnoException).code;
  const why = code === 'ENOSPC' ? 'no space left on the device' : code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code === 'EROFS' ? 'the file system is read-only' : (e as Error).message;
  const kept = info.path ? `what this run changed is kept in ${info.path}` : 'and the changes of this run could not be written anywhere (see the details)';
  return new StateWriteError(
    `the state could not be written to ${statePath} (${why}${code && !why.includes(code) ? `, ${code}` : ''}); it was NOT saved, ${kept}`,
    [
      `The state file itself is unchanged (writes are atomic), and its pending records name what was in flight.`,
      `To recover: make room or fix the permissions of ${statePath}'s folder, then run \`spotfleet apply\` again; it finds what runs from the providers and converges.`,
      ...(info.path ? [`${info.path} (mode 0600) holds the state this run meant to write: keep it; if no other run has written the state since, it can be copied over ${statePath}.`] : []),
    ],
    info.path,
    e,
  );
}
