// `spotfleet init --migrate-state [PATH]`: moves the fleet's state to the backend its spec names now,
// as `terraform init -migrate-state` does. The spec gained `backend: postgres`: the local file goes
// into PostgreSQL (and is kept as state.json.migrated). The spec lost it: the state comes back from
// the PostgreSQL backend last used here (recorded in .spotfleet/backend.json, never with a secret),
// or from --from-backend-url. Lineage and serial are kept; another lineage is refused.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SpotfleetError } from '../core/errors.js';
import { loadFleet } from '../spec/load.js';
import { chooseBackend, describeBackend, rememberBackend, type BackendChoice } from '../state/backend.js';
import { migrateState } from '../state/migrate.js';
import { openPgStateStore } from '../state/postgres.js';
import { LocalStateStore, type StateStore } from '../state/store.js';
import { specPathArg, stateDirOf, type CliApp } from './app.js';
import { backendOverride, lockTimeoutMs, type BackendOptions } from './common.js';

export interface MigrateStateOptions extends BackendOptions {
  state?: string;
  force?: boolean;
  lockTimeout?: string;
  /** The PostgreSQL backend to move the state out of (when the spec no longer names one). */
  fromBackendUrl?: string;
}

/** What .spotfleet/backend.json records of the last PostgreSQL backend: never a secret. */
interface BackendRecord {
  type: 'postgres';
  /** `${VAR}`, or a URL without a password. */
  url: string;
  schema: string;
}

async function open(choice: BackendChoice, stateDir: string, fleet: string): Promise<StateStore> {
  return choice.type === 'local' ? new LocalStateStore(stateDir, fleet) : openPgStateStore({ url: choice.url, schema: choice.schema, fleet });
}

export async function runMigrateState(app: CliApp, path: string | undefined, opts: MigrateStateOptions): Promise<void> {
  const spec = specPathArg(path);
  const { fleet } = await loadFleet(spec);
  const stateDir = stateDirOf(spec, opts.state);
  const target = chooseBackend(fleet, backendOverride(opts));
  let source: BackendChoice;
  if (target.type === 'postgres') {
    if (!existsSync(join(stateDir, 'state.json'))) {
      app.io.out(`No local state in ${stateDir} to migrate; the state is in ${describeBackend(target)}.`);
      if (target.ref !== undefined) rememberBackend(stateDir, target.ref, target.schema);
      return;
    }
    source = { type: 'local' };
  } else {
    const recPath = join(stateDir, 'backend.json');
    let url = opts.fromBackendUrl;
    let schema = 'spotfleet';
    if (url === undefined && existsSync(recPath)) {
      const rec = JSON.parse(readFileSync(recPath, 'utf8')) as BackendRecord;
      url = rec.url;
      schema = rec.schema;
    }
    if (url === undefined) throw new SpotfleetError('STATE_MIGRATE_SOURCE', 'the spec keeps the state in the local file, and no PostgreSQL backend was used here before', ['Name the one to move the state out of with --from-backend-url ${VAR} (or a URL without a password).']);
    source = chooseBackend({ backend: { type: 'postgres', url, schema, pos: { file: recPath, line: 1, col: 1 }, urlPos: { file: recPath, line: 1, col: 1 } } });
  }
  const from = await open(source, stateDir, fleet.name);
  try {
    const to = await open(target, stateDir, fleet.name);
    try {
      const r = await migrateState(from, to, { localDir: stateDir, ...(opts.force ? { force: true } : {}), lockTimeoutMs: lockTimeoutMs(opts) });
      if (target.type === 'postgres' && target.ref !== undefined) rememberBackend(stateDir, target.ref, target.schema);
      if (!r.moved) {
        app.io.out(`Nothing to migrate: ${to.location} already holds this state (lineage ${r.lineage}, serial ${r.serial}).`);
        return;
      }
      app.io.out(`Successfully migrated the state of fleet ${fleet.name} from ${from.location} to ${to.location}: ${r.resources} resource(s), lineage ${r.lineage}, serial ${r.serial}.`);
      if (r.keptAt) app.io.out(`The local copy is kept as ${r.keptAt}.`);
    } finally {
      await to.close?.();
    }
  } finally {
    await from.close?.();
  }
}
