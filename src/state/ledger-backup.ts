// A rolling backup of the savings history: the ledger and every workload's move history, in
// `ledger.backup.json` beside the state (the previous copy in `ledger.backup.1.json`). Deleting
// state.json while workloads run is survivable (the next apply re-adopts them), but it used to lose
// the history savings are computed from. A state created afresh now starts from the backup's
// ledger, and the moves of each workload come back into its record when it is adopted again.
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { LedgerEntry, MoveRecord, StateFile } from './types.js';

export const LEDGER_BACKUP_FILE = 'ledger.backup.json';
const PREVIOUS = 'ledger.backup.1.json';

interface LedgerBackup {
  format_version: '1';
  fleet: string;
  lineage: string;
  serial: number;
  ledger: LedgerEntry[];
  /** Move history by workload name. */
  moves: Record<string, MoveRecord[]>;
}

/** Moves restored from a backup, waiting for their workload to be adopted again. */
interface RestoredHistory {
  fromLineage: string;
  moves: Record<string, MoveRecord[]>;
}

/** The field of a fresh state that carries restored moves until their workloads come back. */
const RESTORED = 'restoredHistory';

function historyOf(state: StateFile): { ledger: LedgerEntry[]; moves: Record<string, MoveRecord[]> } {
  const moves: Record<string, MoveRecord[]> = {};
  for (const r of Object.values(state.resources)) if (r.type === 'workload' && r.moves.length > 0) moves[r.name] = r.moves;
  const waiting = (state as StateFile & { [RESTORED]?: RestoredHistory })[RESTORED];
  for (const [w, m] of Object.entries(waiting?.moves ?? {})) moves[w] ??= m;
  return { ledger: state.ledger, moves };
}

function readBackup(path: string): LedgerBackup | undefined {
  try {
    const b = JSON.parse(readFileSync(path, 'utf8')) as LedgerBackup;
    return b.format_version === '1' && Array.isArray(b.ledger) && typeof b.moves === 'object' ? b : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Updates the backup after a state write when the history changed (best effort: a backup that
 * cannot be written never fails the state write). The previous backup is kept as `.1`.
 */
export function writeLedgerBackup(dir: string, state: StateFile): void {
  const path = join(dir, LEDGER_BACKUP_FILE);
  const h = historyOf(state);
  const old = readBackup(path);
  if (h.ledger.length === 0 && Object.keys(h.moves).length === 0) return;
  if (old && old.lineage === state.lineage && JSON.stringify(old.ledger) === JSON.stringify(h.ledger) && JSON.stringify(old.moves) === JSON.stringify(h.moves)) return;
  const doc: LedgerBackup = { format_version: '1', fleet: state.fleet, lineage: state.lineage, serial: state.serial, ledger: h.ledger, moves: h.moves };
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, `${JSON.stringify(doc)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (old) renameSync(path, join(dir, PREVIOUS));
    renameSync(tmp, path);
  } catch {
    rmSync(tmp, { force: true });
  }
}

/**
 * Fills a fresh state (no state.json) from the backup of the same fleet: the ledger at once, the
 * moves once their workloads are recorded again (see restoreMovesInto). Returns whether it did.
 */
export function restoreFromLedgerBackup(dir: string, fresh: StateFile): boolean {
  const b = readBackup(join(dir, LEDGER_BACKUP_FILE)) ?? readBackup(join(dir, PREVIOUS));
  if (!b || b.fleet !== fresh.fleet) return false;
  fresh.ledger = structuredClone(b.ledger);
  if (Object.keys(b.moves).length > 0) (fresh as StateFile & { [RESTORED]?: RestoredHistory })[RESTORED] = { fromLineage: b.lineage, moves: structuredClone(b.moves) };
  return true;
}

/**
 * Gives restored moves back to workloads recorded again (adopted or started) in a state about to
 * be written, oldest first and without duplicates; drops the carrier field once it is empty.
 */
export function restoreMovesInto(state: StateFile): void {
  const s = state as StateFile & { [RESTORED]?: RestoredHistory };
  const waiting = s[RESTORED];
  if (!waiting) return;
  for (const r of Object.values(state.resources)) {
    if (r.type !== 'workload') continue;
    const moves = waiting.moves[r.name];
    if (!moves) continue;
    const w = r;
    const seen = new Set(w.moves.map((m) => `${m.at}|${m.to}`));
    w.moves = [...moves.filter((m) => !seen.has(`${m.at}|${m.to}`)), ...w.moves].sort((a, b) => a.at - b.at).slice(-50);
    delete waiting.moves[r.name];
  }
  if (Object.keys(waiting.moves).length === 0) delete s[RESTORED];
}
