// A real PostgreSQL server for tests and benchmarks: its own cluster (initdb) in a temp folder, owned
// by and run as a non-root user (the `postgres` user of Debian's package when the test runs as
// root), listening on a free loopback port with password (scram) authentication. It is started
// and stopped by the postmaster's PID, and can be stopped and started again on the same port (a
// server restart under a running watch). Nothing here imports vitest, so benchmarks reuse it.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, chmodSync, chownSync, constants, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

const BINARIES = ['initdb', 'postgres'] as const;

/** The folder holding initdb and postgres: PATH, /usr/local/bin, or Debian's /usr/lib/postgresql/N/bin. */
export function postgresBinDir(): string | undefined {
  const dirs = (process.env.PATH ?? '').split(':').filter(Boolean).concat(['/usr/local/bin', '/usr/bin']);
  try {
    const versions = readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a));
    for (const v of versions) dirs.push(join('/usr/lib/postgresql', v, 'bin'));
  } catch {
    // No Debian layout.
  }
  return dirs.find((d) => BINARIES.every((b) => canExec(join(d, b))));
}

function canExec(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The non-root user the server runs as when we are root. */
function serverUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const r = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const g = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (r.status !== 0 || g.status !== 0) return undefined;
  return { uid: Number(r.stdout.trim()), gid: Number(g.stdout.trim()) };
}

/** Why a real PostgreSQL cannot run here, or undefined when it can. */
export function postgresUnavailableReason(): string | undefined {
  if (process.platform !== 'linux') return 'the PostgreSQL harness needs Linux';
  if (!postgresBinDir()) return 'missing PostgreSQL binaries initdb and postgres (apt-get install postgresql)';
  if (process.getuid?.() === 0 && !serverUser()) return 'running as root, and there is no `postgres` user to run the server as (apt-get install postgresql creates it)';
  return undefined;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export interface PgServerOptions {
  /** fsync on (benchmarks); off by default, since tests do not survive power loss anyway. */
  fsync?: boolean;
}

/** One running cluster. `url()` gives a connection URL; `stop()`/`start()` restart it in place. */
export class PgServer {
  readonly user = 'spotfleet';
  readonly password = `pw-${Math.random().toString(36).slice(2, 12)}`;
  readonly database = 'spotfleet';
  private child: ChildProcess | undefined;
  private exited: Promise<void> | undefined;
  log = '';

  private constructor(
    readonly dir: string,
    readonly port: number,
    private readonly bin: string,
    private readonly owner: { uid: number; gid: number } | undefined,
    private readonly o: PgServerOptions,
  ) {}

  static async create(o: PgServerOptions = {}): Promise<PgServer> {
    const bin = postgresBinDir();
    if (!bin) throw new Error(postgresUnavailableReason());
    const owner = serverUser();
    const dir = mkdtempSync(join(tmpdir(), 'sf-pg-'));
    chmodSync(dir, 0o755);
    const srv = new PgServer(dir, await freePort(), bin, owner, o);
    writeFileSync(join(dir, 'pw'), srv.password, { mode: 0o600 });
    if (owner) {
      chownSync(dir, owner.uid, owner.gid);
      chownSync(join(dir, 'pw'), owner.uid, owner.gid);
    }
    const r = spawnSync(join(bin, 'initdb'), ['-D', join(dir, 'data'), '-U', srv.user, '--pwfile', join(dir, 'pw'), '--auth-host=scram-sha-256', '--auth-local=trust', '-E', 'UTF8', '--locale=C', '--no-sync'], {
      encoding: 'utf8',
      cwd: dir,
      ...(owner ? { uid: owner.uid, gid: owner.gid } : {}),
    });
    if (r.status !== 0) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`initdb failed (${r.status}): ${r.stderr}`);
    }
    await srv.start();
    const c = new pg.Client({ connectionString: srv.url('postgres') });
    await c.connect();
    await c.query(`CREATE DATABASE ${srv.database}`);
    await c.end();
    return srv;
  }

  /** A connection URL (with the password) for `database` (default spotfleet). */
  url(database = this.database, o: { user?: string; password?: string; port?: number } = {}): string {
    return `postgres://${o.user ?? this.user}:${encodeURIComponent(o.password ?? this.password)}@127.0.0.1:${o.port ?? this.port}/${database}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts the postmaster in the foreground (its PID is the child's) and waits until it answers. */
  async start(): Promise<void> {
    if (this.running) return;
    const args = ['-D', join(this.dir, 'data'), '-p', String(this.port), '-k', this.dir, '-c', 'listen_addresses=127.0.0.1', '-c', `fsync=${this.o.fsync ? 'on' : 'off'}`, '-c', 'max_connections=200', '-c', 'log_min_messages=warning'];
    const child = spawn(join(this.bin, 'postgres'), args, { cwd: this.dir, stdio: ['ignore', 'ignore', 'pipe'], ...(this.owner ? { uid: this.owner.uid, gid: this.owner.gid } : {}) });
    child.stderr?.on('data', (d: Buffer) => {
      this.log = (this.log + d.toString()).slice(-20_000);
    });
    this.child = child;
    this.exited = new Promise((r) => child.once('exit', () => r()));
    const until = Date.now() + 30_000;
    for (;;) {
      if (!this.running) throw new Error(`postgres exited while starting:\n${this.log}`);
      const c = new pg.Client({ connectionString: this.url('postgres'), connectionTimeoutMillis: 1000 });
      try {
        await c.connect();
        await c.end();
        return;
      } catch {
        await c.end().catch(() => undefined);
      }
      if (Date.now() > until) throw new Error(`postgres did not answer within 30 s:\n${this.log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Stops the server by its PID: SIGINT (fast shutdown: sessions end, nothing is lost), then SIGKILL. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child?.pid || !this.running) return;
    child.kill('SIGINT');
    const done = await Promise.race([this.exited?.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 15_000))]);
    if (!done) {
      child.kill('SIGKILL');
      await this.exited;
    }
  }

  /** Runs SQL as the superuser (test set-up: roles, inspection). */
  async sql<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values: unknown[] = [], database = this.database): Promise<R[]> {
    const c = new pg.Client({ connectionString: this.url(database) });
    await c.connect();
    try {
      return (await c.query<R>(text, values)).rows;
    } finally {
      await c.end();
    }
  }

  /** Stops the server and removes its folder. */
  async close(): Promise<void> {
    await this.stop();
    if (existsSync(this.dir)) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The user name this process runs as (for messages). */
export function whoAmI(): string {
  return userInfo().username;
}
