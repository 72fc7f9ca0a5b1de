// Watch replicas on a shared backend: one leads, the others stand by warm. Leadership is a lease
// with a fencing epoch, held in the backend (PostgreSQL) and renewed well before it expires.
//
// Why a lease that expires, and nothing faster: the old leader must stop acting before a new one
// starts, also when it is cut off from the server and cannot be told. So the leader reckons its own
// deadline from the moment it SENT its last successful renewal (which the server stamped later):
// `sentAt + ttl - margin` on this machine's monotonic clock always falls before the server's
// `expires_at`, and a standby can take over only after `expires_at` (by the server's clock). In
// between nobody acts. A clean shutdown ends the lease at once, so a standby takes over at once.
//
// Every write of the leader carries its epoch (LeaderStore → the backend checks it in the same
// statement), and so does every provider mutation, since each one is preceded by its pending record.
// A refused write is logged and counted. While the server cannot be reached (a restart), the leader
// keeps acting from memory for as long as its lease lasts: its writes are applied to the state it
// holds and queued, then replayed in order, each still fenced, when the server is back.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import { Counter, Gauge, type Registry } from 'prom-client';
import { FencedError, SpotfleetError, errorMessage, type LockHolder } from '../core/errors.js';
import type { Observed } from '../core/types.js';
import type { LeaderRecord, LeadershipBackend } from '../state/leadership.js';
import { isUnavailable } from '../state/postgres.js';
import type { LockHandle, StateStore } from '../state/store.js';
import type { StateFile } from '../state/types.js';
import type { Logger } from '../telemetry/logger.js';
import type { LeaderView } from '../telemetry/http-server.js';

export interface LeaderMetrics {
  setLeader(leading: boolean): void;
  leaderChanged(): void;
  writeRefused(): void;
  queuedWrites(n: number): void;
}

/** spotfleet_leader, spotfleet_leader_changes_total, spotfleet_fenced_writes_total, on the watch's registry. */
export function createLeaderMetrics(registry: Registry): LeaderMetrics {
  const registers = [registry];
  const leader = new Gauge({ name: 'spotfleet_leader', help: '1 while this watch replica leads its fleet (acts), 0 while it stands by.', registers });
  const changes = new Counter({ name: 'spotfleet_leader_changes_total', help: 'Leadership changes of the fleet this replica has seen (its own takeovers included).', registers });
  const fenced = new Counter({ name: 'spotfleet_fenced_writes_total', help: 'State writes refused because this replica no longer held the leader lease (a deposed leader).', registers });
  const queued = new Gauge({ name: 'spotfleet_state_writes_queued', help: 'State writes held in memory while the state backend cannot be reached.', registers });
  leader.set(0);
  changes.inc(0);
  fenced.inc(0);
  queued.set(0);
  return {
    setLeader: (l) => leader.set(l ? 1 : 0),
    leaderChanged: () => changes.inc(),
    writeRefused: () => fenced.inc(),
    queuedWrites: (n) => queued.set(n),
  };
}

export interface LeaderElectorOptions {
  backend: LeadershipBackend;
  log: Logger;
  metrics: LeaderMetrics;
  /** The lease's length. Default 3 s: a killed leader is replaced within about that. */
  ttlMs?: number;
  /** Renew this often while leading. Default a third of the lease. */
  renewMs?: number;
  /** A standby tries to take over this often. Default 250 ms. */
  retryMs?: number;
  /** What this replica tells others about itself (pid, host, its /status address). */
  info: () => Record<string, unknown>;
  /** Became leader (or leads again after an outage, with the same epoch). */
  onElected(epoch: number, resumed: boolean): void;
  /** Stopped leading: deposed, its lease expired, or shutting down. */
  onDeposed(reason: string): void;
}

/** The lease loop of one replica. `isLeading()` is the check before every action. */
export class LeaderElector {
  readonly identity = `${hostname()}/${process.pid}/${randomUUID().slice(0, 8)}`;
  private readonly ttlMs: number;
  private readonly renewMs: number;
  private readonly retryMs: number;
  private readonly marginMs: number;
  private epoch: number | undefined;
  private leading = false;
  /** Local monotonic ms after which this replica must not act (see the module comment). */
  private deadline = 0;
  private since: string | undefined;
  private seen: LeaderRecord | undefined;
  private lastSeenEpoch: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private expiry: NodeJS.Timeout | undefined;
  private stopped = false;
  private loop: Promise<void> | undefined;

  constructor(private readonly o: LeaderElectorOptions) {
    this.ttlMs = o.ttlMs ?? 3000;
    this.renewMs = o.renewMs ?? Math.max(100, Math.floor(this.ttlMs / 3));
    this.retryMs = o.retryMs ?? 250;
    this.marginMs = Math.max(100, Math.floor(this.ttlMs / 10));
  }

  /** This replica may act now: it holds a lease that has not run out on its own clock. */
  isLeading(): boolean {
    return this.leading && performance.now() < this.deadline;
  }

  /** The epoch this replica leads (or last led) at. */
  get currentEpoch(): number | undefined {
    return this.epoch;
  }

  start(): void {
    this.schedule(0);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.loop = this.tick().finally(() => this.schedule(this.leading ? this.renewMs : this.retryMs));
    }, ms);
  }

  private lastErrorLog = 0;

  private async tick(): Promise<void> {
    try {
      if (this.epoch !== undefined && (this.leading || this.resumable)) await this.renew();
      else await this.tryAcquire();
    } catch (e) {
      // Said at once, then at most every 10 s while it lasts.
      if (Date.now() - this.lastErrorLog < 10_000) return;
      this.lastErrorLog = Date.now();
      this.o.log.warn(isUnavailable(e) ? 'leader lease: the state backend cannot be reached' : 'leader lease: backend error', { action: 'leader-lease', err: errorMessage(e), leading: this.leading });
    }
  }

  /** After its lease ran out unseen (an outage), a leader tries to renew the same epoch first. */
  private resumable = false;

  private async tryAcquire(): Promise<void> {
    // The deadline counts from before the request: see the module comment.
    const sentAt = performance.now();
    const got = await this.o.backend.acquireLeadership(this.identity, this.o.info(), this.ttlMs);
    if (got) {
      this.take(got.epoch, got.since, sentAt, false);
      return;
    }
    const cur = await this.o.backend.currentLeader();
    this.observe(cur);
  }

  private async renew(): Promise<void> {
    const epoch = this.epoch as number;
    const sentAt = performance.now();
    const ok = await this.o.backend.renewLeadership(this.identity, epoch, this.ttlMs);
    if (ok) {
      if (!this.leading) {
        this.o.log.info('the state backend answers again and nobody took over: leading again', { action: 'leader', epoch });
        this.take(epoch, this.since ?? new Date().toISOString(), sentAt, true);
      } else this.extend(sentAt);
      return;
    }
    this.resumable = false;
    const cur = await this.o.backend.currentLeader().catch(() => undefined);
    this.observe(cur);
    if (this.leading) this.stepDown(`replica ${cur?.holder ?? '?'} took over at epoch ${cur?.epoch ?? '?'}`);
  }

  private take(epoch: number, since: string, sentAt: number, resumed: boolean): void {
    this.epoch = epoch;
    this.since = since;
    // From now on every state write names this epoch (and keeps naming it after a deposition, so
    // the backend refuses a deposed leader's writes instead of taking them unfenced).
    this.o.backend.setFence(epoch);
    this.leading = true;
    this.resumable = false;
    this.extend(sentAt);
    this.o.metrics.setLeader(true);
    if (!resumed) this.noteEpoch(epoch);
    this.seen = { epoch, holder: this.identity, info: this.o.info(), since, renewedAt: new Date().toISOString(), expiresAt: new Date(Date.now() + this.ttlMs).toISOString(), live: true, changes: this.seen?.changes ?? 0 };
    this.o.log.info(resumed ? 'leading again' : 'elected leader', { action: 'leader', epoch, holder: this.identity });
    this.o.onElected(epoch, resumed);
  }

  private extend(sentAt: number): void {
    this.deadline = sentAt + this.ttlMs - this.marginMs;
    if (this.expiry) clearTimeout(this.expiry);
    // Stop acting the moment the lease runs out, even while a renewal hangs on a cut-off network.
    this.expiry = setTimeout(() => {
      if (this.leading && performance.now() >= this.deadline) {
        this.resumable = true;
        this.stepDown(`the lease ran out: no renewal reached the state backend for ${this.ttlMs - this.marginMs} ms`);
      }
    }, Math.max(0, this.deadline - performance.now()) + 1);
  }

  private stepDown(reason: string): void {
    if (!this.leading) return;
    this.leading = false;
    this.deadline = 0;
    this.o.metrics.setLeader(false);
    this.o.log.warn(`stopped leading: ${reason}`, { action: 'leader', epoch: this.epoch });
    this.o.onDeposed(reason);
  }

  private observe(cur: LeaderRecord | undefined): void {
    if (cur?.live && cur.epoch !== this.seen?.epoch) this.o.log.info('standing by', { action: 'leader', leader: cur.holder, epoch: cur.epoch, since: cur.since });
    this.seen = cur;
    if (cur?.live) this.noteEpoch(cur.epoch);
  }

  private noteEpoch(epoch: number): void {
    if (this.lastSeenEpoch !== undefined && epoch !== this.lastSeenEpoch) this.o.metrics.leaderChanged();
    else if (this.lastSeenEpoch === undefined && this.leading) this.o.metrics.leaderChanged();
    this.lastSeenEpoch = epoch;
  }

  /** Ends the loop; a leader gives its lease back so a standby takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.expiry) clearTimeout(this.expiry);
    await this.loop?.catch(() => undefined);
    const wasLeading = this.leading;
    this.stepDown('shutting down');
    if (wasLeading && this.epoch !== undefined) {
      await this.o.backend.releaseLeadership(this.identity, this.epoch).catch((e: unknown) => this.o.log.warn('could not end the leader lease (it runs out by itself)', { action: 'leader', err: e }));
    }
  }

  /** Who leads, as this replica knows it, for /healthz and /status. */
  view(): LeaderView {
    const s = this.seen;
    const self = this.identity;
    if (this.isLeading()) {
      return { role: 'leader', self, holder: self, host: hostname(), pid: process.pid, ...(this.epoch !== undefined ? { epoch: this.epoch } : {}), ...(this.since ? { since: this.since } : {}), ...(s?.changes !== undefined ? { changes: s.changes } : {}) };
    }
    if (!s?.live) return { role: 'standby', self };
    return {
      role: 'standby',
      self,
      holder: s.holder,
      ...(typeof s.info.host === 'string' ? { host: s.info.host } : {}),
      ...(typeof s.info.pid === 'number' ? { pid: s.info.pid } : {}),
      epoch: s.epoch,
      since: s.since,
      expiresAt: s.expiresAt,
      changes: s.changes,
    };
  }
}

/** The state lock's command as a leading replica names it: `watch (leader epoch 7)`. */
const LEADER_LOCK = /^\S+ \(leader epoch (\d+)\)$/;

export interface LeaderStoreOptions {
  inner: StateStore & LeadershipBackend;
  elector: () => LeaderElector | undefined;
  log: Logger;
  metrics: LeaderMetrics;
  /** How often queued writes are retried while the server is away. Default 500 ms. */
  retryMs?: number;
}

/**
 * The store a leading replica writes through: every write fenced by its epoch (set on the backend
 * when it is elected), refusals logged and counted, new pending records stamped with the epoch, and
 * writes queued in memory while the server cannot be reached (only while the lease lasts).
 */
export class LeaderStore implements StateStore {
  readonly location: string;
  private local: StateFile | undefined;
  private readonly queue: ((s: StateFile) => void)[] = [];
  private flushing: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly o: LeaderStoreOptions) {
    this.location = o.inner.location;
  }

  /** Writes wait in memory for the server. */
  get queued(): number {
    return this.queue.length;
  }

  private leading(): boolean {
    return this.o.elector()?.isLeading() ?? false;
  }

  private refused(e: unknown): void {
    if (!(e instanceof FencedError)) return;
    this.o.metrics.writeRefused();
    this.o.log.warn(`state write refused: ${e.message}`, { action: 'fenced', epoch: e.epoch, deposed: e.deposed });
  }

  async read(): Promise<StateFile> {
    if (this.queue.length > 0 && this.local) return structuredClone(this.local);
    try {
      const s = await this.o.inner.read();
      this.local = s;
      return structuredClone(s);
    } catch (e) {
      // The server is away: the newest state is the one held here.
      if (isUnavailable(e) && this.local) return structuredClone(this.local);
      throw e;
    }
  }

  async write(state: StateFile): Promise<StateFile> {
    try {
      const s = await this.o.inner.write(state);
      this.local = s;
      return s;
    } catch (e) {
      this.refused(e);
      throw e;
    }
  }

  async update(fn: (s: StateFile) => void): Promise<StateFile> {
    const epoch = this.o.elector()?.currentEpoch;
    const stamped = (s: StateFile): void => {
      const known = new Set(s.pending.map((p) => p.id));
      fn(s);
      if (epoch !== undefined) for (const p of s.pending) if (!known.has(p.id) && p.epoch === undefined) p.epoch = epoch;
    };
    if (this.queue.length === 0) {
      try {
        const s = await this.o.inner.update(stamped);
        this.local = s;
        return structuredClone(s);
      } catch (e) {
        this.refused(e);
        if (!isUnavailable(e) || !this.local || !this.leading()) throw e;
      }
    }
    if (!this.leading() || !this.local) {
      throw new SpotfleetError('STATE_BACKEND_UNREACHABLE', `the state backend at ${this.location} cannot be reached, and this replica's lease ran out: the write waits for the server`);
    }
    // Apply it to the state held here (its preconditions are checked against that), then queue it.
    const next = structuredClone(this.local);
    stamped(next);
    this.local = next;
    this.queue.push(stamped);
    this.o.metrics.queuedWrites(this.queue.length);
    if (this.queue.length === 1) this.o.log.warn('the state backend cannot be reached: acting from memory, state writes are queued', { action: 'state-queue', location: this.location });
    this.kick();
    return structuredClone(next);
  }

  private kick(): void {
    this.flushing ??= this.flush().finally(() => {
      this.flushing = undefined;
      if (this.queue.length > 0 && !this.closed) this.kick();
    });
  }

  /** Replays the queue in order, each write fenced; keeps trying while the server is away. */
  private async flush(): Promise<void> {
    let done = 0;
    while (this.queue.length > 0 && !this.closed) {
      const fn = this.queue[0] as (s: StateFile) => void;
      try {
        this.local = await this.o.inner.update(fn);
        this.queue.shift();
        done++;
      } catch (e) {
        if (isUnavailable(e) || (e instanceof FencedError && !e.deposed)) {
          // Away, or our lease lapsed during the outage and is not renewed yet: wait and try again.
          await new Promise((r) => setTimeout(r, this.o.retryMs ?? 500));
          continue;
        }
        this.queue.shift();
        if (e instanceof FencedError) {
          this.refused(e);
          this.o.log.error(`dropping ${this.queue.length + 1} queued state write(s): another replica leads now (it sees what runs and adopts it)`, { action: 'state-queue', epoch: e.epoch });
          this.queue.length = 0;
        } else {
          this.o.log.warn(`a queued state write no longer applies to the newest state: ${errorMessage(e)}`, { action: 'state-queue' });
        }
      }
      this.o.metrics.queuedWrites(this.queue.length);
    }
    if (done > 0) {
      this.o.log.info(`the state backend is back: ${done} queued state write(s) written`, { action: 'state-queue', written: done });
      try {
        this.local = await this.o.inner.read();
      } catch {
        // Read again next time.
      }
    }
  }

  /** Waits until nothing is queued (tests, shutdown), up to `ms`. */
  async drain(ms = 10_000): Promise<boolean> {
    const until = Date.now() + ms;
    while (this.queue.length > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    return this.queue.length === 0;
  }

  async saveObservation(obs: Observed): Promise<void> {
    try {
      await this.o.inner.saveObservation(obs);
    } catch (e) {
      this.refused(e);
      throw e;
    }
  }

  readObservation(): Promise<Observed | undefined> {
    return this.o.inner.readObservation();
  }

  /**
   * The state lock, named with this leader's epoch. A lock still held by an older leader's
   * reconcile (one paused mid-reconcile: its session, and so the lock, outlive its lease) is
   * taken from it: that leader is deposed, and its writes are refused anyway.
   */
  async lock(command: string, timeoutMs: number): Promise<LockHandle> {
    const epoch = this.o.elector()?.currentEpoch;
    if (epoch === undefined || !this.leading()) return this.o.inner.lock(command, timeoutMs);
    const cur = await this.o.inner.holder().catch(() => undefined);
    const older = cur ? LEADER_LOCK.exec(cur.command) : null;
    if (cur && older && Number(older[1]) < epoch) {
      this.o.log.warn(`taking the state lock from a deposed leader (epoch ${older[1]}, pid ${cur.pid} on ${cur.host})`, { action: 'leader', epoch });
      await this.o.inner.forceUnlock(cur.id).catch((e: unknown) => this.o.log.warn('could not take the state lock from the deposed leader; waiting for it', { action: 'leader', err: e }));
    }
    return this.o.inner.lock(`${command} (leader epoch ${epoch})`, timeoutMs);
  }

  forceUnlock(id: string): Promise<void> {
    return this.o.inner.forceUnlock(id);
  }

  holder(): Promise<LockHolder | undefined> {
    return this.o.inner.holder();
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.flushing?.catch(() => undefined);
    await this.o.inner.close?.();
  }
}
