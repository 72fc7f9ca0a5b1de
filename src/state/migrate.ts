// Moves a fleet's state from one backend to another, as `terraform init -migrate-state` does: the
// local file into PostgreSQL when the spec gains a `backend:`, or back when it loses it. The state
// keeps its lineage and serial; nothing is merged. The destination must be empty or hold an older
// copy of the same lineage; another lineage is refused (two states would each adopt the other's
// instances) unless forced. Both states are locked meanwhile; the source file is kept, renamed
// `state.json.migrated`, so nothing is lost and the next command does not take it for a second state.
import { existsSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { SpotfleetError } from '../core/errors.js';
import { PgStateStore, lineageError } from './postgres.js';
import { writeFileAtomic, type StateStore } from './store.js';
import { STATE_VERSION, type StateFile } from './types.js';

export interface MigrateResult {
  /** Nothing to move: the source is empty, or the destination already holds this state. */
  moved: boolean;
  resources: number;
  serial: number;
  lineage: string;
  /** Where the source file went (a local source). */
  keptAt?: string;
}

function isEmpty(s: StateFile): boolean {
  return Object.keys(s.resources).length === 0 && s.pending.length === 0 && s.ledger.length === 0;
}

/**
 * Copies `from` into `to` (see the module comment). `localDir` is the `.spotfleet` folder of a
 * local source or destination.
 */
export async function migrateState(from: StateStore, to: StateStore, o: { localDir: string; force?: boolean; lockTimeoutMs?: number }): Promise<MigrateResult> {
  const lockFrom = await from.lock('init --migrate-state', o.lockTimeoutMs ?? 0);
  try {
    const lockTo = await to.lock('init --migrate-state', o.lockTimeoutMs ?? 0);
    try {
      const src = await from.read();
      const dst = await to.read();
      const out = { resources: Object.keys(src.resources).length, serial: src.serial, lineage: src.lineage };
      if (isEmpty(src) && src.serial === 0) return { moved: false, ...out };
      if (dst.lineage === src.lineage && dst.serial === src.serial) return { moved: false, ...out };
      const dstEmpty = isEmpty(dst);
      if (dst.lineage === src.lineage && dst.serial > src.serial && !o.force) {
        throw new SpotfleetError('STATE_MIGRATE_REFUSED', `${to.location} already holds this state at a newer serial (${dst.serial} > ${src.serial})`, ['Nothing was written. Pass --force to overwrite it with the older copy.']);
      }
      if (dst.lineage !== src.lineage && !dstEmpty && !o.force) throw lineageError(src.fleet, to.location, dst.lineage, `${src.lineage} (in ${from.location})`);
      const next: StateFile = { ...structuredClone(src), version: STATE_VERSION, serial: Math.max(src.serial, dst.serial) };
      if (to instanceof PgStateStore) await to.replaceState(next, dst);
      else {
        // A local destination: the file is replaced whole (we hold its lock).
        writeFileAtomic(join(o.localDir, 'state.json'), `${JSON.stringify(next, null, 2)}\n`);
      }
      const obs = await from.readObservation();
      if (obs) await to.saveObservation(obs);
      let keptAt: string | undefined;
      const file = join(o.localDir, 'state.json');
      if (!(from instanceof PgStateStore) && existsSync(file)) {
        keptAt = `${file}.migrated`;
        renameSync(file, keptAt);
      }
      return { moved: true, ...out, serial: next.serial, ...(keptAt ? { keptAt } : {}) };
    } finally {
      await lockTo.release();
    }
  } finally {
    await lockFrom.release();
  }
}
