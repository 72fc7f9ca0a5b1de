// Picks and opens a fleet's state backend: the CLI's --backend override, else the spec's `backend:`,
// else the local file (the embedded default). Every command and watch open their store here.
// A postgres URL comes from the environment (`${SPOTFLEET_PG_URL}` in the spec, or the variable
// itself with --backend postgres); it is handed to the driver and to nothing else.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SpotfleetError, UsageError, type SourcePos } from '../core/errors.js';
import type { BackendSpec, Fleet } from '../spec/types.js';
import { displayUrl, lineageError, openPgStateStore, type PgStateStore } from './postgres.js';
import { LocalStateStore, writeFileAtomic, type StateStore } from './store.js';
import type { StateFile } from './types.js';

/** The environment variable `--backend postgres` reads when no URL is given. */
export const PG_URL_ENV = 'SPOTFLEET_PG_URL';

/** A command-line override of the spec's backend. */
export interface BackendOverride {
  /** `local` or `postgres`. */
  type?: string;
  /** A postgres URL, or `${VAR}`; default the spec's, else ${SPOTFLEET_PG_URL}. */
  url?: string;
}

export type BackendChoice =
  | { type: 'local' }
  | {
      type: 'postgres';
      /** The resolved connection URL: a secret. */
      url: string;
      schema: string;
      /** Where the URL came from, for messages (`fleet.yaml:7:3 (SPOTFLEET_PG_URL)`). */
      origin: string;
      /** The URL as written, when it holds no secret (`${VAR}`, or a URL without a password): what backend.json remembers. */
      ref?: string;
    };

function where(pos: SourcePos): string {
  return `${pos.file}:${pos.line}:${pos.col}`;
}

/** `${NAME}` → the variable's value; anything else is the URL itself. */
function resolveUrl(raw: string, origin: string, env: NodeJS.ProcessEnv): string {
  const m = /^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$/.exec(raw.trim());
  if (!m) return raw.trim();
  const name = m[1] as string;
  const v = env[name];
  if (v === undefined || v.trim() === '') {
    throw new SpotfleetError('STATE_BACKEND_CONFIG', `${origin}: the postgres backend's url is \${${name}}, but ${name} is not set in the environment`, [`Set ${name} to the connection URL, e.g. postgres://USER:PASSWORD@HOST:5432/DB.`]);
  }
  let u: URL;
  try {
    u = new URL(v.trim());
  } catch {
    throw new SpotfleetError('STATE_BACKEND_CONFIG', `${origin}: ${name} does not hold a URL`, ['Expected postgres://USER:PASSWORD@HOST:PORT/DB (its value is not shown: it may be a secret).']);
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
    throw new SpotfleetError('STATE_BACKEND_CONFIG', `${origin}: ${name} holds a ${u.protocol.replace(/:$/, '')}:// URL, not postgres://`, ['Expected postgres://USER:PASSWORD@HOST:PORT/DB.']);
  }
  return v.trim();
}

/** The backend a command uses for `fleet`, after the override. Resolves the URL from `env`. */
export function chooseBackend(fleet: Pick<Fleet, 'backend'>, override: BackendOverride = {}, env: NodeJS.ProcessEnv = process.env): BackendChoice {
  const spec: BackendSpec | undefined = fleet.backend;
  const type = override.type ?? spec?.type ?? 'local';
  if (type !== 'local' && type !== 'postgres') throw new UsageError(`--backend: expected local or postgres, got "${type}"`);
  if (type === 'local') {
    if (override.url !== undefined) throw new UsageError('--backend-url is only for the postgres backend');
    return { type: 'local' };
  }
  const schema = spec?.type === 'postgres' ? (spec.schema ?? 'spotfleet') : 'spotfleet';
  const safeRef = (raw: string): { ref: string } | Record<string, never> => (/^\$\{[A-Za-z_][A-Za-z0-9_]*\}$/.test(raw.trim()) || !/:[^/@]*@/.test(raw) ? { ref: raw.trim() } : {});
  if (override.url !== undefined) return { type: 'postgres', url: resolveUrl(override.url, '--backend-url', env), schema, origin: '--backend-url', ...safeRef(override.url) };
  if (spec?.type === 'postgres') {
    const m = /^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$/.exec(spec.url);
    return { type: 'postgres', url: resolveUrl(spec.url, where(spec.urlPos), env), schema, origin: `${where(spec.urlPos)}${m ? ` (${m[1] ?? ''})` : ''}`, ...safeRef(spec.url) };
  }
  return { type: 'postgres', url: resolveUrl(`\${${PG_URL_ENV}}`, '--backend postgres', env), schema, origin: PG_URL_ENV, ref: `\${${PG_URL_ENV}}` };
}

/** What the user sees of a backend: never the password. */
export function describeBackend(c: BackendChoice): string {
  return c.type === 'local' ? 'local' : `postgres ${displayUrl(c.url)} (schema ${c.schema})`;
}

export interface OpenStoreOptions {
  stateDir: string;
  fleet: string;
  /** Told about connection errors of idle connections (a restarted server). */
  onConnectionError?: (e: Error) => void;
}

/** The local state file of a checkout, when one exists (read raw: its lineage and how much it holds). */
export function localStateOf(stateDir: string): { path: string; state: StateFile } | undefined {
  const path = join(stateDir, 'state.json');
  if (!existsSync(path)) return undefined;
  try {
    return { path, state: JSON.parse(readFileSync(path, 'utf8')) as StateFile };
  } catch {
    return undefined;
  }
}

/**
 * Opens the store. For postgres it also guards the checkout: a local state file that holds
 * resources and belongs to another lineage than the fleet's state in PostgreSQL is refused (two
 * states would each adopt the other's instances); one that was never moved there asks for
 * `spotfleet init --migrate-state`.
 */
export async function openStateStore(choice: BackendChoice, o: OpenStoreOptions): Promise<StateStore> {
  if (choice.type === 'local') return new LocalStateStore(o.stateDir, o.fleet);
  const store = await openPgStateStore({ url: choice.url, schema: choice.schema, fleet: o.fleet, ...(o.onConnectionError ? { onConnectionError: o.onConnectionError } : {}) });
  try {
    await guardCheckout(store, o.stateDir);
  } catch (e) {
    await store.close();
    throw e;
  }
  if (choice.ref !== undefined) rememberBackend(o.stateDir, choice.ref, choice.schema);
  return store;
}

async function guardCheckout(store: PgStateStore, stateDir: string): Promise<void> {
  const local = localStateOf(stateDir);
  if (!local || Object.keys(local.state.resources ?? {}).length === 0) return;
  const remote = await store.read();
  if (remote.lineage === local.state.lineage) return;
  if (remote.serial === 0 && Object.keys(remote.resources).length === 0) {
    throw new SpotfleetError('STATE_MIGRATION_REQUIRED', `the spec keeps this fleet's state in ${store.location}, but it is still in ${local.path} (${Object.keys(local.state.resources).length} resource(s))`, [
      'Run `spotfleet init --migrate-state` to move it there (as `terraform init -migrate-state` does). Nothing was read or written.',
    ]);
  }
  throw lineageError(store.fleet, store.location, remote.lineage, `${local.state.lineage} (in ${local.path})`);
}

/**
 * Remembers the postgres backend this checkout used, by reference (`${VAR}`, never a secret), in
 * `.spotfleet/backend.json`: `spotfleet init --migrate-state` moves the state back out of it when
 * the spec drops its `backend:`.
 */
export function rememberBackend(stateDir: string, ref: string, schema: string): void {
  const path = join(stateDir, 'backend.json');
  const body = `${JSON.stringify({ type: 'postgres', url: ref, schema }, null, 2)}\n`;
  try {
    if (existsSync(path) && readFileSync(path, 'utf8') === body) return;
    writeFileAtomic(path, body);
  } catch {
    // Only a convenience for a later migration; never fails a command.
  }
}
