// The PostgreSQL state backend: the same StateStore as the file (same state shape, compare-and-swap
// on the serial, a named lock holder, force-unlock), shared by a team and by watch replicas.
//
// - One row per fleet in `<schema>.fleets`, keyed by the fleet name and checked against the lineage
//   in every statement: a checkout that carries another lineage is refused, never merged.
// - A write is one UPDATE … WHERE serial = the serial it read (compare-and-swap). A watch leader's
//   write also names its fencing epoch, checked in the same statement against the leader lease
//   (locked FOR SHARE, so a takeover cannot slip in between): a deposed leader's write is refused.
// - The state lock is a session advisory lock (as Terraform's pg backend): the server drops it the
//   moment the holder's session ends, so a killed spotfleet on any machine leaves no stale lock. A
//   row beside it names the holder, and force-unlock ends the holder's session.
// - Migrations are versioned SQL files in pg-migrations/, applied under a transaction-scoped
//   advisory lock; a schema newer than this spotfleet knows is refused.
// The connection URL is a secret: it is never put in a message; errors name `user@host:port/db`.
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import type pg from 'pg';
import { FencedError, LockError, SpotfleetError, StateConflictError, type LockHolder } from '../core/errors.js';
import type { Observed } from '../core/types.js';
import type { LeaderRecord, Leadership, LeadershipBackend } from './leadership.js';
import { restoreMovesInto } from './ledger-backup.js';
import { stateShapeProblems } from './schema.js';
import { emptyState, updateWithRetry, upgradeState, type LockHandle, type StateStore } from './store.js';
import { STATE_VERSION, type StateFile } from './types.js';

/** How long a lock whose holder cannot be named yet (starting or ending) is looked at again. */
/**
 * The pg driver, loaded when a postgres store opens: it is 30-odd modules that every command
 * loading state.backend paid for, though most fleets keep their state in a local file.
 */
const requireHere = createRequire(import.meta.url);
let pgModule: typeof pg | undefined;
function pgDriver(): typeof pg {
  pgModule ??= requireHere('pg') as typeof pg;
  return pgModule;
}

const HOLDER_GRACE_MS = 2000;
/** First key of the two-key advisory locks spotfleet takes ('sf' 0x5346 + 1 for the state lock). */
const LOCK_CLASS = 0x53460001;
const MIGRATE_CLASS = 0x53460002;

export interface PgStoreOptions {
  /** The connection URL (a secret: it is only handed to the driver). */
  url: string;
  /** The schema that holds the tables. Default `spotfleet`. */
  schema?: string;
  fleet: string;
  /** Connecting gives up after this long. Default 5 s. */
  connectTimeoutMs?: number;
  /** A statement gives up after this long (client side). Default 10 s. */
  queryTimeoutMs?: number;
  /** Told about connection errors of idle connections (a restarted server), which are otherwise silent. */
  onConnectionError?: (e: Error) => void;
}

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** The migrations in the repo, in order. */
export function loadMigrations(): Migration[] {
  const dir = join(import.meta.dirname, 'pg-migrations');
  return readdirSync(dir)
    .filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f))
    .sort()
    .map((f) => ({ version: Number(f.slice(0, 4)), name: f.slice(5, -4), sql: readFileSync(join(dir, f), 'utf8') }));
}

/** `postgres://user@host:port/db`: the URL without its password or parameters, for messages. */
export function displayUrl(url: string): string {
  try {
    const u = new URL(url);
    const host = u.host || u.searchParams.get('host') || 'localhost';
    return `${u.protocol}//${u.username ? `${decodeURIComponent(u.username)}@` : ''}${host}${u.pathname}`;
  } catch {
    return 'postgres://(unparsable URL)';
  }
}

/** Removes every secret part of `url` (the whole URL, the password) from `text`. */
export function redact(text: string, url: string): string {
  let out = text.split(url).join(displayUrl(url));
  try {
    const pw = decodeURIComponent(new URL(url).password);
    if (pw.length >= 3) out = out.split(pw).join('***');
    const raw = new URL(url).password;
    if (raw.length >= 3) out = out.split(raw).join('***');
  } catch {
    // Not a URL: nothing more to take out.
  }
  return out;
}

const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'ENOENT']);

/** The server cannot be reached now (down, restarting, cut off): a write may succeed later. */
export function isUnavailable(e: unknown): boolean {
  if (e instanceof SpotfleetError) return e.code === 'STATE_BACKEND_UNREACHABLE';
  const err = e as { code?: string; message?: string } | undefined;
  const code = err?.code ?? '';
  if (UNREACHABLE_CODES.has(code) || code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03') return true;
  return /Connection terminated|timeout exceeded|Query read timeout|connect ETIMEDOUT|Client has encountered a connection error|not queryable/i.test(err?.message ?? '');
}

/** A driver or server error as a SpotfleetError that names the server (never the secret). */
export function backendError(e: unknown, url: string, doing: string): SpotfleetError {
  if (e instanceof SpotfleetError) return e;
  const where = displayUrl(url);
  const err = e as { code?: string; message?: string };
  const msg = redact(err?.message ?? String(e), url);
  const code = err?.code ?? '';
  if (code === '28P01' || code === '28000') {
    return new SpotfleetError('STATE_BACKEND_AUTH', `PostgreSQL at ${where} refused the login while ${doing}: ${msg}`, ['Check the user and password in the connection URL (SPOTFLEET_PG_URL, or the variable the spec names).']);
  }
  if (code === '3D000') return new SpotfleetError('STATE_BACKEND_CONFIG', `PostgreSQL at ${where}: ${msg}`, ['Create the database first (createdb), or fix the database name in the URL.']);
  if (code === '42501') return new SpotfleetError('STATE_BACKEND_PERMISSION', `PostgreSQL at ${where} denied ${doing}: ${msg}`, ['The user needs CREATE on the database (for the schema) and rights on the spotfleet tables.']);
  if (isUnavailable(e)) {
    return new SpotfleetError('STATE_BACKEND_UNREACHABLE', `cannot reach the PostgreSQL state backend at ${where} while ${doing}: ${code && !msg.includes(code) ? `${code} ` : ''}${msg}`, ['Is the server up and the host and port in the URL right?']);
  }
  return new SpotfleetError('STATE_BACKEND_ERROR', `PostgreSQL at ${where} failed while ${doing}: ${msg}${code ? ` (${code})` : ''}`);
}

interface FleetRow {
  lineage: string;
  serial: string;
  version: number;
  state: StateFile | null;
  id: number;
}

/** The PostgreSQL StateStore. Create with `openPgStateStore` (it checks the schema first). */
export class PgStateStore implements StateStore, LeadershipBackend {
  readonly location: string;
  readonly schema: string;
  private readonly pool: pg.Pool;
  private readonly q: (name: string) => string;
  private cache: StateFile | undefined;
  private fence: number | undefined;
  private readonly writer = `${process.pid}@${hostname()}`;
  private closed = false;

  constructor(private readonly o: PgStoreOptions) {
    this.schema = o.schema ?? 'spotfleet';
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(this.schema)) throw new SpotfleetError('STATE_BACKEND_CONFIG', `"${this.schema}" is not a valid schema name`, ['Expected lowercase letters, digits and _.']);
    this.location = `${displayUrl(o.url)} (schema ${this.schema}, fleet ${o.fleet})`;
    this.q = (name) => `"${this.schema}".${name}`;
    this.pool = new (pgDriver().Pool)({
      connectionString: o.url,
      max: 6,
      connectionTimeoutMillis: o.connectTimeoutMs ?? 5000,
      query_timeout: o.queryTimeoutMs ?? 10_000,
      keepAlive: true,
      keepAliveInitialDelayMillis: 5000,
      idleTimeoutMillis: 30_000,
      allowExitOnIdle: true,
      application_name: 'spotfleet',
    });
    // An idle connection that breaks (a restarted server) must not crash the process.
    this.pool.on('error', (e) => o.onConnectionError?.(e));
  }

  get fleet(): string {
    return this.o.fleet;
  }

  private async query<R extends pg.QueryResultRow>(doing: string, text: string, values: unknown[] = []): Promise<pg.QueryResult<R>> {
    if (this.closed) throw new SpotfleetError('STATE_BACKEND_CLOSED', `the state backend at ${this.location} is closed`);
    try {
      return await this.pool.query<R>(text, values);
    } catch (e) {
      throw backendError(e, this.o.url, doing);
    }
  }

  /** Creates the schema and tables, or brings them up to date; refuses a schema from a newer spotfleet. */
  async migrate(): Promise<void> {
    const migrations = loadMigrations();
    const latest = migrations.at(-1)?.version ?? 0;
    const client = await this.pool.connect().catch((e: unknown) => Promise.reject(backendError(e, this.o.url, 'connecting')));
    try {
      const known = await client.query<{ v: number | null }>(`SELECT max(version) AS v FROM ${this.q('spotfleet_migrations')}`).then(
        (r) => r.rows[0]?.v ?? 0,
        () => undefined,
      );
      if (known !== undefined && known > latest) throw this.newerSchema(known, latest);
      if (known === latest) return;
      await client.query('BEGIN');
      try {
        await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [MIGRATE_CLASS, this.schema]);
        await client.query(`CREATE SCHEMA IF NOT EXISTS "${this.schema}"`);
        await client.query(`CREATE TABLE IF NOT EXISTS ${this.q('spotfleet_migrations')} (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT clock_timestamp(), applied_by text NOT NULL)`);
        const cur = (await client.query<{ v: number | null }>(`SELECT max(version) AS v FROM ${this.q('spotfleet_migrations')}`)).rows[0]?.v ?? 0;
        if (cur > latest) throw this.newerSchema(cur, latest);
        for (const m of migrations) {
          if (m.version <= cur) continue;
          await client.query(m.sql.replaceAll('{schema}', `"${this.schema}"`));
          await client.query(`INSERT INTO ${this.q('spotfleet_migrations')} (version, name, applied_by) VALUES ($1, $2, $3)`, [m.version, m.name, this.writer]);
        }
        await client.query('COMMIT');
      } catch (e) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw e;
      }
    } catch (e) {
      throw backendError(e, this.o.url, 'preparing the spotfleet schema');
    } finally {
      client.release();
    }
  }

  private newerSchema(found: number, latest: number): SpotfleetError {
    return new SpotfleetError('STATE_BACKEND_SCHEMA', `the spotfleet schema "${this.schema}" at ${displayUrl(this.o.url)} is at version ${found}, newer than this spotfleet understands (${latest})`, [
      'A newer spotfleet upgraded it: upgrade this spotfleet too. Nothing was written.',
    ]);
  }

  private toState(row: FleetRow): StateFile {
    const s = row.state as Partial<StateFile>;
    if (row.version > STATE_VERSION) {
      throw new SpotfleetError('STATE_VERSION', `the state of fleet ${this.o.fleet} at ${this.location} has version ${row.version}, newer than this spotfleet understands (${STATE_VERSION})`);
    }
    if (s.fleet && s.fleet !== this.o.fleet) {
      throw new SpotfleetError('STATE_FOREIGN', `the state stored for fleet ${this.o.fleet} at ${this.location} belongs to fleet "${s.fleet}"`, ['Nothing was read from it. Someone pushed another fleet\'s state here: restore the right one with `spotfleet state push`.']);
    }
    const problems = stateShapeProblems({ pending: [], ledger: [], resources: {}, ...s, version: row.version, serial: Number(row.serial), lineage: row.lineage });
    if (problems.length > 0) {
      throw new SpotfleetError('STATE_CORRUPT', `the state of fleet ${this.o.fleet} at ${this.location} does not have the structure of a spotfleet state: ${problems.slice(0, 3).join('; ')}${problems.length > 3 ? ` (and ${problems.length - 3} more)` : ''}`, [
        'Nothing was written. Push a good copy over it with `spotfleet state push --force FILE` (a `state pull` taken earlier, or the local state.json.migrated).',
      ]);
    }
    return upgradeState({ ...s, pending: s.pending ?? [], ledger: s.ledger ?? [], resources: s.resources ?? {}, version: row.version, fleet: this.o.fleet, serial: Number(row.serial), lineage: row.lineage });
  }

  async read(): Promise<StateFile> {
    const known = this.cache?.serial ?? -1;
    const r = await this.query<FleetRow>('reading the state', `SELECT lineage, serial, version, id, CASE WHEN serial = $2 AND lineage = $3 THEN NULL ELSE state END AS state FROM ${this.q('fleets')} WHERE fleet = $1`, [this.o.fleet, known, this.cache?.lineage ?? '']);
    const row = r.rows[0];
    if (!row) {
      // Persist the lineage at once (as the file backend does): a plan saved now must match the state its apply reads.
      const fresh = emptyState(this.o.fleet);
      await this.query('creating the state', `INSERT INTO ${this.q('fleets')} (fleet, lineage, serial, version, state, updated_by) VALUES ($1, $2, 0, $3, $4::jsonb, $5) ON CONFLICT (fleet) DO NOTHING`, [this.o.fleet, fresh.lineage, STATE_VERSION, JSON.stringify(fresh), this.writer]);
      this.cache = undefined;
      return this.read();
    }
    if (row.state === null && this.cache) return structuredClone(this.cache);
    const s = this.toState(row);
    this.cache = s;
    return structuredClone(s);
  }

  async write(state: StateFile): Promise<StateFile> {
    if (state.fleet && state.fleet !== this.o.fleet) {
      throw new SpotfleetError('STATE_FOREIGN', `refusing to write the state of fleet "${state.fleet}" as fleet ${this.o.fleet} at ${this.location}`, ['Nothing was written.']);
    }
    const next: StateFile = { ...state, fleet: this.o.fleet, version: STATE_VERSION, serial: state.serial + 1 };
    restoreMovesInto(next);
    const fence = this.fence;
    const values: unknown[] = [this.o.fleet, state.lineage, state.serial, JSON.stringify(next), STATE_VERSION, this.writer];
    let sql: string;
    if (fence === undefined) {
      sql = `UPDATE ${this.q('fleets')} SET state = $4::jsonb, serial = serial + 1, version = $5, updated_at = clock_timestamp(), updated_by = $6, epoch = NULL WHERE fleet = $1 AND lineage = $2 AND serial = $3 RETURNING serial`;
    } else {
      values.push(fence);
      sql = `WITH lead AS (SELECT epoch FROM ${this.q('leaders')} WHERE fleet = $1 AND epoch = $7 AND expires_at > clock_timestamp() FOR SHARE)
        UPDATE ${this.q('fleets')} f SET state = $4::jsonb, serial = f.serial + 1, version = $5, updated_at = clock_timestamp(), updated_by = $6, epoch = lead.epoch
        FROM lead WHERE f.fleet = $1 AND f.lineage = $2 AND f.serial = $3 RETURNING f.serial`;
    }
    const r = await this.query<{ serial: string }>('writing the state', sql, values);
    if (r.rowCount === 1) {
      this.cache = structuredClone(next);
      return next;
    }
    throw await this.whyRefused(state, fence);
  }

  /** A write changed no row: say why (another lineage, fenced, or the serial moved on). */
  private async whyRefused(state: StateFile, fence: number | undefined): Promise<Error> {
    const r = await this.query<{ lineage: string; serial: string; epoch: string | null; holder: string | null; live: boolean | null }>(
      'reading the state',
      `SELECT f.lineage, f.serial, l.epoch, l.holder, l.expires_at > clock_timestamp() AS live FROM ${this.q('fleets')} f LEFT JOIN ${this.q('leaders')} l ON l.fleet = f.fleet WHERE f.fleet = $1`,
      [this.o.fleet],
    );
    const row = r.rows[0];
    if (!row) return new SpotfleetError('STATE_GONE', `the state of fleet ${this.o.fleet} was removed from ${this.location} while this change was being made`);
    if (row.lineage !== state.lineage) return lineageError(this.o.fleet, this.location, row.lineage, state.lineage);
    if (fence !== undefined && (Number(row.epoch) !== fence || row.live !== true)) {
      const deposed = Number(row.epoch) !== fence;
      const why = deposed ? `replica ${row.holder ?? '?'} leads at epoch ${row.epoch ?? '?'}` : 'its lease expired';
      return new FencedError(`write refused: this watch led at epoch ${fence}, but ${why}`, fence, deposed);
    }
    return new StateConflictError(`the state at ${this.location} moved on (serial ${state.serial} → ${row.serial}) while this change was being made`);
  }

  async update(fn: (s: StateFile) => void): Promise<StateFile> {
    return updateWithRetry(this, fn);
  }

  /**
   * Replaces the fleet's state whole, lineage and serial included (a migration from another
   * backend, or a forced push), if it is still `expected` (compare-and-swap on lineage and serial).
   */
  async replaceState(next: StateFile, expected: Pick<StateFile, 'lineage' | 'serial'>): Promise<StateFile> {
    if (next.fleet && next.fleet !== this.o.fleet) {
      throw new SpotfleetError('STATE_FOREIGN', `refusing to write the state of fleet "${next.fleet}" as fleet ${this.o.fleet} at ${this.location}`, ['Nothing was written.']);
    }
    const body: StateFile = { ...next, fleet: this.o.fleet, version: STATE_VERSION };
    const problems = stateShapeProblems(body);
    if (problems.length > 0) {
      throw new SpotfleetError('STATE_CORRUPT', `refusing to store a state of fleet ${this.o.fleet} that does not have the structure of a spotfleet state: ${problems.slice(0, 3).join('; ')}`, ['Nothing was written.']);
    }
    const r = await this.query(
      'replacing the state',
      `UPDATE ${this.q('fleets')} SET state = $4::jsonb, lineage = $5, serial = $6, version = $7, updated_at = clock_timestamp(), updated_by = $8, epoch = NULL WHERE fleet = $1 AND lineage = $2 AND serial = $3`,
      [this.o.fleet, expected.lineage, expected.serial, JSON.stringify(body), body.lineage, body.serial, STATE_VERSION, this.writer],
    );
    if (r.rowCount !== 1) throw new StateConflictError(`the state at ${this.location} moved on while it was being replaced`);
    // Rows tied to the old lineage belong to a state that is gone.
    await this.query('replacing the state', `UPDATE ${this.q('observations')} SET lineage = $2 WHERE fleet = $1`, [this.o.fleet, body.lineage]);
    this.cache = structuredClone(body);
    return body;
  }

  async saveObservation(obs: Observed): Promise<void> {
    const s = await this.read();
    const fence = this.fence;
    const sql =
      fence === undefined
        ? `INSERT INTO ${this.q('observations')} (fleet, lineage, observed) VALUES ($1, $2, $3::jsonb) ON CONFLICT (fleet) DO UPDATE SET lineage = EXCLUDED.lineage, observed = EXCLUDED.observed, updated_at = clock_timestamp()`
        : `INSERT INTO ${this.q('observations')} (fleet, lineage, observed) SELECT $1, $2, $3::jsonb FROM ${this.q('leaders')} WHERE fleet = $1 AND epoch = $4 AND expires_at > clock_timestamp()
           ON CONFLICT (fleet) DO UPDATE SET lineage = EXCLUDED.lineage, observed = EXCLUDED.observed, updated_at = clock_timestamp()`;
    const r = await this.query('saving the observation', sql, fence === undefined ? [this.o.fleet, s.lineage, JSON.stringify(obs)] : [this.o.fleet, s.lineage, JSON.stringify(obs), fence]);
    if (fence !== undefined && r.rowCount === 0) throw new FencedError(`observation refused: this watch no longer leads at epoch ${fence}`, fence, (await this.currentLeader())?.epoch !== fence);
  }

  async readObservation(): Promise<Observed | undefined> {
    const s = await this.read();
    const r = await this.query<{ observed: Observed }>('reading the observation', `SELECT observed FROM ${this.q('observations')} WHERE fleet = $1 AND lineage = $2`, [this.o.fleet, s.lineage]);
    return r.rows[0]?.observed;
  }

  // ---- the state lock --------------------------------------------------------------------------

  private async fleetId(): Promise<number> {
    await this.read();
    const r = await this.query<{ id: number }>('reading the state', `SELECT id FROM ${this.q('fleets')} WHERE fleet = $1`, [this.o.fleet]);
    return r.rows[0]?.id as number;
  }

  /** The holder named in the lock row, only while its session still holds the advisory lock. */
  async holder(): Promise<LockHolder | undefined> {
    const r = await this.query<{ holder: LockHolder }>(
      'reading the lock',
      `SELECT k.holder FROM ${this.q('locks')} k JOIN ${this.q('fleets')} f ON f.fleet = k.fleet
       WHERE k.fleet = $1 AND EXISTS (SELECT 1 FROM pg_locks p WHERE p.locktype = 'advisory' AND p.classid::bigint = ($2::bigint & 4294967295) AND p.objid::bigint = f.id AND p.objsubid = 2 AND p.pid = k.backend_pid AND p.granted)`,
      [this.o.fleet, LOCK_CLASS],
    );
    return r.rows[0]?.holder;
  }

  async lock(command: string, timeoutMs: number): Promise<LockHandle> {
    const id = await this.fleetId();
    const lineage = (this.cache as StateFile).lineage;
    const holder: LockHolder = { id: randomUUID(), pid: process.pid, host: hostname(), command, time: new Date().toISOString() };
    // The lock lives as long as this session: a client of its own, outside the pool.
    const client = new (pgDriver().Client)({ connectionString: this.o.url, connectionTimeoutMillis: this.o.connectTimeoutMs ?? 5000, query_timeout: this.o.queryTimeoutMs ?? 10_000, keepAlive: true, keepAliveInitialDelayMillis: 5000, application_name: 'spotfleet-lock' });
    client.on('error', (e) => this.o.onConnectionError?.(e));
    try {
      await client.connect();
      // The server notices a holder cut off by the network within about 15 s and drops its lock.
      await client.query('SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; SET tcp_keepalives_count = 3');
    } catch (e) {
      await client.end().catch(() => undefined);
      throw backendError(e, this.o.url, 'taking the state lock');
    }
    const deadline = Date.now() + timeoutMs;
    try {
      for (;;) {
        const got = (await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS ok', [LOCK_CLASS | 0, id])).rows[0]?.ok === true;
        if (got) {
          await client.query(
            `INSERT INTO ${this.q('locks')} (fleet, lineage, lock_id, holder, backend_pid) VALUES ($1, $2, $3, $4::jsonb, pg_backend_pid())
             ON CONFLICT (fleet) DO UPDATE SET lineage = EXCLUDED.lineage, lock_id = EXCLUDED.lock_id, holder = EXCLUDED.holder, backend_pid = EXCLUDED.backend_pid, taken_at = clock_timestamp()`,
            [this.o.fleet, lineage, holder.id, JSON.stringify(holder)],
          );
          const fleet = this.o.fleet;
          const table = this.q('locks');
          return {
            holder,
            async release() {
              try {
                await client.query(`DELETE FROM ${table} WHERE fleet = $1 AND lock_id = $2`, [fleet, holder.id]);
                await client.query('SELECT pg_advisory_unlock($1, $2)', [LOCK_CLASS | 0, id]);
              } catch {
                // The session is gone (server restart, force-unlock): so is the advisory lock.
              } finally {
                await client.end().catch(() => undefined);
              }
            },
          };
        }
        if (Date.now() >= deadline) {
          const cur = await this.holder();
          // The holder takes the lock before it writes its row and deletes the row before it lets
          // go: in that moment the lock is held by no one we can name. Look again briefly: either
          // the lock is free by then or its holder has a name.
          if (!cur && Date.now() < deadline + HOLDER_GRACE_MS) {
            await new Promise((r) => setTimeout(r, 20));
            continue;
          }
          throw new LockError(`the state at ${this.location} is locked by another spotfleet (${cur ? `pid ${cur.pid} on ${cur.host}, running "${cur.command}"` : 'a holder that is just starting or ending'})`, cur);
        }
        await new Promise((r) => setTimeout(r, Math.min(200, Math.max(10, deadline - Date.now()))));
      }
    } catch (e) {
      await client.end().catch(() => undefined);
      throw backendError(e, this.o.url, 'taking the state lock');
    }
  }

  async forceUnlock(id: string): Promise<void> {
    const fid = await this.fleetId();
    const cur = await this.holder();
    if (!cur) throw new SpotfleetError('NOT_LOCKED', `the state at ${this.location} is not locked`);
    if (cur.id !== id) throw new LockError(`lock ID "${id}" does not match the current lock`, cur);
    // End the session that holds the advisory lock: the lock goes with it.
    const r = await this.query<{ ok: boolean | null }>(
      'releasing the lock',
      `SELECT pg_terminate_backend(p.pid) AS ok FROM pg_locks p JOIN ${this.q('locks')} k ON k.backend_pid = p.pid
       WHERE k.fleet = $1 AND k.lock_id = $2 AND p.locktype = 'advisory' AND p.classid::bigint = ($3::bigint & 4294967295) AND p.objid::bigint = $4 AND p.objsubid = 2`,
      [this.o.fleet, id, LOCK_CLASS, fid],
    );
    if (r.rows.length > 0 && r.rows.some((x) => x.ok !== true)) {
      throw new SpotfleetError('STATE_BACKEND_PERMISSION', `PostgreSQL did not let this user end the lock holder's session (pid ${cur.pid} on ${cur.host})`, ['Ask a superuser to run pg_terminate_backend on it, or stop that spotfleet.']);
    }
    await this.query('releasing the lock', `DELETE FROM ${this.q('locks')} WHERE fleet = $1 AND lock_id = $2`, [this.o.fleet, id]);
  }

  // ---- watch leadership -------------------------------------------------------------------------

  setFence(epoch: number | undefined): void {
    this.fence = epoch;
  }

  async acquireLeadership(holder: string, info: Record<string, unknown>, ttlMs: number): Promise<Leadership | undefined> {
    const s = await this.read();
    const r = await this.query<{ epoch: string; since: Date; expires_at: Date }>(
      'taking the leader lease',
      `INSERT INTO ${this.q('leaders')} AS l (fleet, lineage, epoch, holder, info, since, renewed_at, expires_at, changes)
       VALUES ($1, $2, 1, $3, $4::jsonb, clock_timestamp(), clock_timestamp(), clock_timestamp() + $5 * interval '1 millisecond', 1)
       ON CONFLICT (fleet) DO UPDATE SET lineage = EXCLUDED.lineage, epoch = l.epoch + 1, holder = EXCLUDED.holder, info = EXCLUDED.info, since = EXCLUDED.since,
         renewed_at = EXCLUDED.renewed_at, expires_at = EXCLUDED.expires_at, changes = l.changes + 1
       WHERE l.expires_at <= clock_timestamp()
       RETURNING epoch, since, expires_at`,
      [this.o.fleet, s.lineage, holder, JSON.stringify(info), ttlMs],
    );
    const row = r.rows[0];
    return row ? { epoch: Number(row.epoch), since: row.since.toISOString(), expiresAt: row.expires_at.toISOString() } : undefined;
  }

  async renewLeadership(holder: string, epoch: number, ttlMs: number): Promise<boolean> {
    const r = await this.query(
      'renewing the leader lease',
      `UPDATE ${this.q('leaders')} SET renewed_at = clock_timestamp(), expires_at = clock_timestamp() + $4 * interval '1 millisecond' WHERE fleet = $1 AND epoch = $2 AND holder = $3`,
      [this.o.fleet, epoch, holder, ttlMs],
    );
    return r.rowCount === 1;
  }

  async releaseLeadership(holder: string, epoch: number): Promise<void> {
    await this.query('ending the leader lease', `UPDATE ${this.q('leaders')} SET expires_at = clock_timestamp() - interval '1 millisecond' WHERE fleet = $1 AND epoch = $2 AND holder = $3`, [this.o.fleet, epoch, holder]);
  }

  async currentLeader(): Promise<LeaderRecord | undefined> {
    const r = await this.query<{ epoch: string; holder: string; info: Record<string, unknown>; since: Date; renewed_at: Date; expires_at: Date; live: boolean; changes: string }>(
      'reading the leader lease',
      `SELECT epoch, holder, info, since, renewed_at, expires_at, expires_at > clock_timestamp() AS live, changes FROM ${this.q('leaders')} WHERE fleet = $1`,
      [this.o.fleet],
    );
    const row = r.rows[0];
    if (!row) return undefined;
    return { epoch: Number(row.epoch), holder: row.holder, info: row.info, since: row.since.toISOString(), renewedAt: row.renewed_at.toISOString(), expiresAt: row.expires_at.toISOString(), live: row.live, changes: Number(row.changes) };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end().catch(() => undefined);
  }
}

export function lineageError(fleet: string, location: string, stored: string, mine: string): SpotfleetError {
  return new SpotfleetError('STATE_LINEAGE', `the state of fleet ${fleet} at ${location} has lineage ${stored}, but this one has lineage ${mine}: they are different states`, [
    'Nothing was written. Two checkouts with their own states would each adopt the other\'s instances.',
    'Use the state that is already there (move this checkout\'s state away), or push this one over it with `spotfleet state push --force` if you are sure.',
  ]);
}

/** Connects, checks the schema (migrating it when older) and returns the store. */
export async function openPgStateStore(o: PgStoreOptions): Promise<PgStateStore> {
  const store = new PgStateStore(o);
  try {
    await store.migrate();
  } catch (e) {
    await store.close();
    throw e;
  }
  return store;
}
