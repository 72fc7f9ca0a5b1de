// The watch controller, in the style of Kubernetes controllers: triggers (spec edits, a timer,
// market moves, SIGHUP) only enqueue the fleet, and the reconciler (reconciler.ts) always re-reads
// the spec and the world and runs the same plan/apply path as the CLI. An eviction notice takes its
// own path at once: the checkpoint signal goes to every workload on the node, and each of them is
// moved by its own emergency migration (emergency.ts), concurrently with other evictions and with
// the reconcile, each holding its workload's lock. An early warning (rebalance recommendation,
// maintenance event) is not an eviction: it gets a priced answer instead (warnings.ts), and only
// becomes a move through this same path when that answer or its deadline says so. This file
// wires those parts together: the single watch per fleet, the notice monitor, the spec watcher,
// timers, telemetry and shutdown.
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { FencedError, SpecError, SpotfleetError, errorMessage } from '../core/errors.js';
import { nodeKey, providerKey } from '../core/address.js';
import type { NodeInfo, Notice, Observed } from '../core/types.js';
import { isTerminal } from '../engine/lifecycle.js';
import { observedFromState } from '../engine/make-plan.js';
import { StateRecorder } from '../engine/steps.js';
import type { Provider } from '../providers/sdk.js';
import { chooseBackend, openStateStore, type BackendOverride } from '../state/backend.js';
import { supportsLeadership } from '../state/leadership.js';
import type { StateStore } from '../state/store.js';
import { pidAlive } from '../state/lock-file.js';
import type { StateFile, WorkloadRecord } from '../state/types.js';
import type { Logger } from '../telemetry/logger.js';
import { createWatchMetrics, type WatchMetrics } from '../telemetry/metrics.js';
import { HealthTracker, startTelemetryServer, type TelemetryServer } from '../telemetry/http-server.js';
import { Alerting } from './alerting.js';
import { migrateWorkload, workloadsOnNode, type MigrationReport } from './emergency.js';
import { KeyedLock } from './keyed-lock.js';
import { LeaderElector, LeaderStore, createLeaderMetrics, type LeaderMetrics } from './leader.js';
import { NoticeMonitor, type SeenNotice } from './notice-monitor.js';
import { DEFAULT_WARNING_WINDOW_MS, isDueWarning, isEarlyWarning } from '../policy/warning.js';
import { WarningController } from './warnings.js';
import { finishedMoves, reconcileFleet, transferProgressLogger, type ReconcileOutput } from './reconciler.js';
import { watchSpec, type SpecWatcher } from './spec-watcher.js';
import { WatchSessions, type WatchSession } from './watch-session.js';
import { WorkQueue } from './workqueue.js';

export interface ControllerOptions {
  specPath: string;
  stateDir: string;
  log: Logger;
  /** Reconcile at least this often. Default 30 s. */
  intervalMs?: number;
  /** Poll spot nodes for notices this often. Default 2 s. */
  noticeIntervalMs?: number;
  /** Look at market prices and availability this often. Default 15 s. */
  priceIntervalMs?: number;
  /** host:port for /healthz, /metrics, /status; `off` for none. Default 127.0.0.1:9464. */
  listen?: string;
  parallelism?: number;
  lockTimeoutMs?: number;
  /** Bound on concurrent notice polls. Default 32. */
  maxInFlightPolls?: number;
  /** The CLI's --backend/--backend-url, over the spec's `backend:`. */
  backend?: BackendOverride;
  /** Watch replicas (a backend with leader leases): the lease's length. Default 3 s. */
  leaseTtlMs?: number;
  /** How long a rebalance recommendation is watched for its eviction (a target prepared for it is kept that long). Default 30 min. */
  warningWindowMs?: number;
}

export interface ControllerEvent {
  at: string;
  kind: string;
  address?: string;
  message: string;
}

const KEY = 'fleet';

/** Another watch already runs for this state folder. */
export class WatchRunningError extends SpotfleetError {
  constructor(holder: { pid: number; host: string; startedAt: string }, stateDir: string) {
    super('WATCH_RUNNING', `another spotfleet watch runs for this fleet: pid ${holder.pid} on ${holder.host}, since ${holder.startedAt}`, [
      `Its state folder is ${stateDir}. Stop it first (it exits cleanly on SIGTERM), or run this one against another fleet.`,
    ]);
  }
}

export class Controller {
  readonly metrics: WatchMetrics;
  readonly health: HealthTracker;
  private readonly log: Logger;
  private store!: StateStore;
  /** Replicas on a shared backend: who leads. Undefined with the file backend (one watch, always acting). */
  private elector: LeaderElector | undefined;
  private leaderMetrics: LeaderMetrics | undefined;
  private readonly queue: WorkQueue<string>;
  private readonly monitor: NoticeMonitor;
  private readonly sessions: WatchSessions;
  private readonly locks = new KeyedLock();
  private readonly alerting: Alerting;
  /** Early warnings (rebalance, maintenance): a priced answer, not an eviction (warnings.ts). */
  private readonly warnings: WarningController;
  private recorder: StateRecorder | undefined;
  private server: TelemetryServer | undefined;
  private specWatcher: SpecWatcher | undefined;
  private timers: NodeJS.Timeout[] = [];
  private stopping = false;
  private lastObserved: Observed | undefined;
  private lastPriceKey = '';
  private readonly signalled = new Map<string, number>();
  private readonly acknowledged = new Set<string>();
  /** Notices the monitor has seen, by provider/id, until an hour past their deadline. */
  private readonly activeNotices = new Map<string, Notice>();
  /** Emergency migrations in flight, by node key: one evacuation per node at a time. */
  private readonly evacuations = new Map<string, Promise<void>>();
  private monitorHasNodes = false;
  private readonly events: ControllerEvent[] = [];
  private lastReconcile: { at: string; durationMs: number; ok: boolean; error?: string; changes?: number } | undefined;
  private idle = false;
  private phases: Record<string, number> = {};
  private runPromise: Promise<void> | undefined;
  private ownsPidFile = false;

  constructor(private readonly opts: ControllerOptions) {
    this.log = opts.log;
    this.metrics = createWatchMetrics();
    this.health = new HealthTracker({ intervalMs: opts.intervalMs ?? 30_000 });
    this.alerting = new Alerting(opts.log);
    this.sessions = new WatchSessions({ specPath: opts.specPath, stateDir: opts.stateDir, log: opts.log, onSpecInvalid: (first) => this.event('spec-invalid', first) });
    this.queue = new WorkQueue<string>({ onDepthChange: (d) => this.metrics.setQueueDepth(d) });
    this.warnings = new WarningController({
      log: opts.log,
      session: () => this.sessions.current,
      recorder: () => this.recorder,
      observed: () => ({ ...(this.lastObserved ?? emptyObserved()), notices: [...this.activeNotices.values()] }),
      moveNow: (n, seen) => this.moveForWarning(n, seen),
      reconcile: () => this.queue.add(KEY),
      event: (kind, message, address) => this.event(kind, message, address),
      windowMs: opts.warningWindowMs ?? DEFAULT_WARNING_WINDOW_MS,
    });
    this.monitor = new NoticeMonitor({
      intervalMs: opts.noticeIntervalMs ?? 2000,
      maxInFlight: opts.maxInFlightPolls ?? 32,
      onNotice: (s) => this.onNotice(s),
      onError: (e) => {
        this.metrics.providerPollError(e.provider, 'notices');
        this.log.warn('notice poll failed', { fleet: this.fleetName(), provider: e.provider, node: e.node, action: 'notice-poll', err: e.error, timedOut: e.timedOut });
      },
    });
  }

  /** The fleet label and the providers' poll-error series, once the spec names them. */
  private describeMetrics(session: WatchSession): void {
    const providers = [...session.providers].map(([name, p]) => ({ name, capabilities: [...(p.notices ? ['notices'] : []), ...(p.capacity ? ['capacity.prices'] : [])] }));
    this.metrics.describeFleet(session.fleet.name, providers);
  }

  /** The fleet's name once its spec has loaded (every log line carries it). */
  fleetName(): string | undefined {
    return this.sessions.fleetName;
  }

  private event(kind: string, message: string, address?: string): void {
    this.events.push({ at: new Date().toISOString(), kind, message, ...(address ? { address } : {}) });
    if (this.events.length > 100) this.events.splice(0, this.events.length - 100);
  }

  /** Runs one reconcile (`--once`) and returns whether it succeeded. */
  async runOnce(): Promise<boolean> {
    try {
      // One reconcile for cron: no lease (the state lock and compare-and-swap keep it safe).
      await this.openStore(false);
      await this.reconcile();
      return true;
    } catch (e) {
      this.log.error('reconcile failed', { fleet: this.fleetName(), action: 'reconcile', err: e });
      return false;
    } finally {
      await this.sessions.close();
      await this.store?.close?.();
    }
  }

  /**
   * Opens the fleet's state backend. One that holds leader leases (PostgreSQL) makes this watch one
   * of several replicas: it acts only while it leads (leader.ts), writing through a fenced store.
   */
  private async openStore(replicas = true): Promise<void> {
    if (this.store) return;
    const fleet = await this.sessions.loadSpec();
    // The store is the fleet's for this process's life: its lines (lease, fencing, queue) name it.
    const log = this.log.child({ fleet: fleet.name });
    const inner = await openStateStore(chooseBackend(fleet, this.opts.backend), {
      stateDir: this.opts.stateDir,
      fleet: fleet.name,
      onConnectionError: (e) => log.debug('state backend connection lost', { action: 'state-backend', err: errorMessage(e) }),
    });
    if (!replicas || !supportsLeadership(inner)) {
      this.store = inner;
      return;
    }
    const metrics = createLeaderMetrics(this.metrics.registry);
    this.leaderMetrics = metrics;
    this.store = new LeaderStore({ inner, elector: () => this.elector, log, metrics });
    this.elector = new LeaderElector({
      backend: inner,
      log,
      metrics,
      ...(this.opts.leaseTtlMs !== undefined ? { ttlMs: this.opts.leaseTtlMs } : {}),
      info: () => ({ pid: process.pid, host: hostname(), startedAt: this.startedAt, ...(this.server ? { listen: `${this.server.address.host}:${this.server.address.port}` } : {}) }),
      onElected: (epoch, resumed) => void this.onElected(epoch, resumed),
      onDeposed: (reason) => void this.onDeposed(reason),
    });
    this.health.setLeader(() => (this.elector as LeaderElector).view());
  }

  private readonly startedAt = new Date().toISOString();

  /** This process may act on the fleet: the only watch (file backend), or the leading replica. */
  private acting(): boolean {
    return !this.elector || this.elector.isLeading();
  }

  /** Took over: read what the old leader recorded, listen to every spot node at once, reconcile. */
  private async onElected(epoch: number, resumed: boolean): Promise<void> {
    const t0 = Date.now();
    this.event('leader', `${resumed ? 'leading again' : 'elected leader'} at epoch ${epoch}`);
    if (this.stopping) return;
    await this.primeFromRecord().catch((e: unknown) => this.log.warn('could not read the recorded state on taking over; the first reconcile reads it', { action: 'leader', err: e }));
    await this.recorder?.refresh().catch(() => undefined);
    this.seedSignalled();
    if (!this.acting() || this.stopping) return;
    this.monitor.start();
    this.queue.add(KEY);
    const polled = await this.monitor.pollAllNow();
    this.log.info('polled every monitored node after taking over', { fleet: this.fleetName(), action: 'leader', epoch, nodes: polled, durationMs: Date.now() - t0 });
  }

  /** Deposed, or the lease ran out: stop acting at once. Steps in flight are refused at their next write. */
  private async onDeposed(reason: string): Promise<void> {
    this.event('leader', `stopped leading: ${reason}`);
    await this.monitor.stop();
  }

  /** Checkpoint signals recorded in the state (by this or an earlier leader) are never sent twice. */
  private seedSignalled(): void {
    for (const r of Object.values(this.recorder?.latest.resources ?? {})) {
      if (r.type !== 'workload' || !r.checkpointSignal || !r.provider || r.instanceId !== r.checkpointSignal.instanceId) continue;
      const k = providerKey(r.provider, r.instanceId);
      if (!this.signalled.has(k)) this.signalled.set(k, r.checkpointSignal.at);
    }
  }

  async start(): Promise<void> {
    await this.openStore();
    if (!this.elector) this.claimPidFile();
    const listen = this.opts.listen ?? '127.0.0.1:9464';
    // The spec's name for the lines below; an invalid spec is reported here and by the reconcile.
    await this.sessions.loadSpec().catch(() => undefined);
    if (listen !== 'off') {
      this.server = await startTelemetryServer({ listen, metrics: this.metrics, health: this.health, status: () => this.view(), log: this.log });
      this.log.info('serving /healthz, /metrics and /status', { fleet: this.fleetName(), action: 'listen', url: this.server.url });
      if (!this.elector) this.writePidFile();
    }
    this.specWatcher = await watchSpec(this.opts.specPath, {
      onChange: (c) => {
        this.log.info('spec changed', { fleet: this.fleetName(), action: 'spec-change', paths: c.paths });
        this.queue.add(KEY);
      },
      onError: (e) => this.log.warn('spec watcher error', { fleet: this.fleetName(), err: e }),
    });
    // Hear notices from the first second: the monitor starts on the recorded state and the last
    // observation, before the first reconcile has refreshed anything.
    await this.primeFromRecord().catch((e: unknown) => this.log.warn('could not start the notice monitor from the recorded state; it starts after the first reconcile', { fleet: this.fleetName(), action: 'notice-monitor', err: e }));
    this.timers.push(setInterval(() => this.queue.add(KEY), this.opts.intervalMs ?? 30_000));
    this.timers.push(setInterval(() => void this.checkPrices(), this.opts.priceIntervalMs ?? 15_000));
    if (this.elector) {
      // A replica: warm (providers open, state and last observation loaded), acting once it leads.
      this.leaderMetrics?.setLeader(false);
      this.elector.start();
    } else {
      this.leaderMetrics?.setLeader(true);
      this.monitor.start();
    }
    this.queue.add(KEY);
    this.runPromise = this.queue.run(async () => this.reconcile(), {
      isTerminal: (e) => e instanceof SpecError,
      onError: (_k, err, retryInMs) => {
        this.metrics.reconcileError(err instanceof SpecError ? 'spec' : err instanceof SpotfleetError ? err.code.toLowerCase() : 'internal');
        this.log.error('reconcile failed', { fleet: this.fleetName(), action: 'reconcile', err, ...(retryInMs !== undefined ? { retryInMs } : {}) });
      },
    });
  }

  /** One watch per fleet: the pid file is created exclusively; a live holder on this host refuses us. */
  private claimPidFile(): void {
    mkdirSync(this.opts.stateDir, { recursive: true, mode: 0o700 });
    const path = join(this.opts.stateDir, 'watch.json');
    for (let i = 0; i < 3; i++) {
      try {
        const fd = openSync(path, 'wx', 0o600);
        try {
          writeSync(fd, JSON.stringify({ pid: process.pid, host: hostname(), startedAt: new Date().toISOString() }));
        } finally {
          closeSync(fd);
        }
        this.ownsPidFile = true;
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      let cur: { pid?: number; host?: string; startedAt?: string } = {};
      try {
        cur = JSON.parse(readFileSync(path, 'utf8')) as typeof cur;
      } catch {
        // half-written: stale
      }
      const alive = typeof cur.pid === 'number' && (cur.host ?? hostname()) === hostname() && pidAlive(cur.pid);
      if (alive || (typeof cur.pid === 'number' && cur.host !== undefined && cur.host !== hostname())) {
        throw new WatchRunningError({ pid: cur.pid as number, host: cur.host ?? hostname(), startedAt: cur.startedAt ?? '?' }, this.opts.stateDir);
      }
      rmSync(path, { force: true });
    }
    throw new SpotfleetError('WATCH_RUNNING', `could not claim ${path}`);
  }

  private writePidFile(): void {
    const path = join(this.opts.stateDir, 'watch.json');
    const body = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString(), ...(this.server ? { listen: `${this.server.address.host}:${this.server.address.port}` } : {}) };
    const fd = openSync(path, 'w', 0o600);
    try {
      writeSync(fd, JSON.stringify(body));
    } finally {
      closeSync(fd);
    }
  }

  private async primeFromRecord(): Promise<void> {
    const fleet = await this.sessions.loadSpec();
    const session = await this.sessions.ensure(fleet);
    this.describeMetrics(session);
    const state = await this.store.read();
    this.recorder ??= new StateRecorder(this.store, state);
    const last = await this.store.readObservation();
    if (!last) return;
    this.lastObserved = observedFromState(state, fleet.name, Date.now(), last);
    this.setMonitorNodes(session, this.lastObserved.nodes);
  }

  /** SIGHUP: re-read the spec and recreate providers. */
  reload(): void {
    this.log.info('reload requested', { fleet: this.fleetName(), action: 'reload' });
    this.sessions.invalidate();
    this.queue.add(KEY);
  }

  /** SIGTERM: finish the steps and migrations in flight (within their notices' deadlines), save state, stop. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.health.setStopping();
    this.log.info('stopping: letting steps and migrations in flight finish', { fleet: this.fleetName(), action: 'stop' });
    for (const t of this.timers) clearInterval(t);
    await this.monitor.stop();
    await this.specWatcher?.close();
    await this.warnings.stop();
    await Promise.allSettled([...this.evacuations.values()]);
    await this.queue.shutdown({ drain: true });
    await this.runPromise;
    // Hand over at once: a standby takes the lease the moment this one gives it back.
    if (this.store instanceof LeaderStore) await this.store.drain(5000);
    await this.elector?.stop();
    await this.sessions.close();
    await this.store?.close?.();
    await this.server?.close();
    if (this.ownsPidFile) rmSync(join(this.opts.stateDir, 'watch.json'), { force: true });
    this.log.info('stopped', { fleet: this.fleetName(), action: 'stop' });
    this.log.flush();
  }

  /** A notice: the checkpoint signal to every workload on the node now, then its evacuation. */
  private onNotice(seen: SeenNotice): void {
    if (!this.acting()) return;
    const n = { ...seen.notice, provider: seen.provider, node: seen.node.id };
    this.activeNotices.set(providerKey(n.provider, n.id), n);
    this.metrics.noticeReceived(n.source, n.kind);
    const session0 = this.sessions.current;
    if (isEarlyWarning(n) && !isDueWarning(n) && session0 && this.recorder?.latest.fleetMode?.mode !== 'destroyed') {
      this.warnings.onWarning(seen, n);
      return;
    }
    this.log.warn('eviction notice', { fleet: this.fleetName(), action: 'notice', provider: seen.provider, node: seen.node.id, kind: n.kind, source: n.source, deadline: n.deadline, ...(n.action ? { cloudAction: n.action } : {}) });
    this.event('notice', `${n.kind} notice (${n.source}) for node ${seen.node.id}, deadline ${n.deadline}`);
    const session = this.sessions.current;
    const state = this.recorder?.latest;
    if (!session || state?.fleetMode?.mode === 'destroyed') {
      this.queue.add(KEY);
      return;
    }
    this.warnings.onEviction(n);
    this.signalNode(session, seen, n);
    this.evacuate(session, n);
  }

  /** An early warning watch acts on as an eviction now (its deadline nears, or the answer was `move`). */
  private moveForWarning(n: Notice, seen: SeenNotice): void {
    // A replica that no longer leads leaves it to the leader (which hears the warning again).
    if (!this.acting()) return;
    const session = this.sessions.current;
    this.activeNotices.set(providerKey(n.provider, n.id), n);
    if (!session || this.stopping) {
      this.queue.add(KEY);
      return;
    }
    const only = typeof n.detail?.workloads === 'string' ? n.detail.workloads.split(',') : undefined;
    this.warnings.onEviction(n);
    this.signalNode(session, seen, n, only);
    this.evacuate(session, n, only);
  }

  /** The fast path: every workload on the node (or those named) gets its checkpoint signal, once. */
  private signalNode(session: WatchSession, seen: SeenNotice, n: Notice, only?: string[]): void {
    const p = session.providers.get(seen.provider);
    const targets = new Map<string, { node: string; id: string; workload: string }>();
    for (const w of this.lastObserved?.workloads ?? []) {
      if (w.provider === seen.provider && w.node === seen.node.id && w.state === 'running' && w.fleet === session.fleet.name) targets.set(w.id, { node: w.node, id: w.id, workload: w.workload });
    }
    for (const r of Object.values(this.recorder?.latest.resources ?? {})) {
      if (r.type === 'workload' && r.provider === seen.provider && r.node === seen.node.id && r.instanceId) targets.set(r.instanceId, { node: r.node, id: r.instanceId, workload: r.name });
    }
    const sends: { w: { node: string; id: string; workload: string }; signal: string; k: string }[] = [];
    for (const w of targets.values()) {
      if (only && !only.includes(w.workload)) continue;
      const contract = session.fleet.workloads.find((x) => x.name === w.workload)?.checkpoint;
      if (!contract || !p?.runtime) continue;
      const k = providerKey(seen.provider, w.id);
      if (this.signalled.has(k)) continue;
      sends.push({ w, signal: contract.signal, k });
    }
    // The lease is the epoch these signals carry: a replica whose lease ran out sends nothing.
    if (sends.length === 0 || !p?.runtime || !this.acting()) return;
    const rt = p.runtime;
    const at = Date.now();
    for (const x of sends) this.signalled.set(x.k, at);
    // Recorded first (one fenced write for the node), so a watch that takes over never signals twice.
    void this.recordSignals(sends.map((x) => ({ workload: x.w.workload, instanceId: x.w.id })), at).then((recorded) => {
      if (!recorded) {
        for (const x of sends) this.signalled.delete(x.k);
        return;
      }
      for (const { w, signal, k } of sends) this.sendSignal(session, rt, seen, n, w, signal, k);
    });
  }

  private sendSignal(session: WatchSession, rt: NonNullable<Provider['runtime']>, seen: SeenNotice, n: Notice, w: { node: string; id: string; workload: string }, signal: string, k: string): void {
    {
      void rt.signal(w.node, w.id, signal).then(
        () => {
          this.metrics.observeNoticeToSignal((Date.now() - seen.seenAt) / 1000, n.source);
          this.log.info('checkpoint signal sent', { fleet: session.fleet.name, action: 'signal', address: `workload.${w.workload}`, node: w.node, durationMs: Date.now() - seen.seenAt });
        },
        (e: unknown) => {
          this.signalled.delete(k);
          this.log.warn('fast-path checkpoint signal failed (the migration sends it again)', { fleet: session.fleet.name, action: 'signal', address: `workload.${w.workload}`, err: e });
          // It did not go out: take the record back, so the migration sends it.
          this.store
            .update((s) => {
              const r = s.resources[`workload.${w.workload}`];
              if (r?.type === 'workload' && r.checkpointSignal?.instanceId === w.id) delete r.checkpointSignal;
            })
            .catch(() => undefined);
        },
      );
    }
  }

  /**
   * Records checkpoint signals in the state before they go out, so a watch that finishes these
   * moves later (restarted, or a replica that took over) does not send them again. Written on the
   * store directly (compare-and-swap, retried), not behind the recorder's queue of step writes: the
   * signal is the hot path of an eviction. False when the write was refused (no longer leading).
   */
  private async recordSignals(list: { workload: string; instanceId: string }[], at: number): Promise<boolean> {
    try {
      await this.store.update((s) => {
        for (const { workload, instanceId } of list) {
          const r = s.resources[`workload.${workload}`];
          if (r?.type === 'workload' && r.instanceId === instanceId) r.checkpointSignal = { instanceId, at };
        }
      });
      return this.acting();
    } catch (e) {
      this.log.warn('could not record the checkpoint signal; the migration sends it', { fleet: this.fleetName(), action: 'signal', err: e });
      return this.acting() && !(e instanceof FencedError);
    }
  }

  /** Moves every workload off the noticed node, each as its own unit, then lets the reconcile tidy up. */
  private evacuate(session: WatchSession, n: Notice, only?: string[]): void {
    const key = nodeKey(n.provider, n.node);
    if (this.evacuations.has(key) || !this.recorder || this.stopping) {
      this.queue.add(KEY);
      return;
    }
    const recorder = this.recorder;
    const logProgress = transferProgressLogger(this.log, session.fleet.name, { migration: 'emergency' });
    const run = async (): Promise<void> => {
      // A pre-copy for an earlier warning on this node gives way (it was aborted) before the move.
      await this.warnings.yieldTo(n);
      const state = await recorder.refresh();
      const records = Object.values(state.resources).filter((r): r is WorkloadRecord => r.type === 'workload');
      const names = workloadsOnNode(records, this.lastObserved?.workloads ?? [], session.fleet.name, n.provider, n.node).filter((w) => !only || only.includes(w));
      const reports = await Promise.allSettled(
        names.map((w) =>
          migrateWorkload(
            {
              session,
              recorder,
              locks: this.locks,
              observed: () => ({ ...(this.lastObserved ?? emptyObserved()), notices: [...this.activeNotices.values()] }),
              signalled: this.signalled,
              now: Date.now,
              emit: (e) => {
                if (e.type === 'progress') return logProgress(e);
                this.log.warn(e.message, { fleet: session.fleet.name, address: e.address, action: 'warning' });
                if (e.kind === 'work-lost') this.alerting.events.push({ kind: 'work-lost', id: `${e.address}:${Date.now()}`, address: e.address, message: e.message });
              },
              onStep: (address, step, ms, info) => this.log.info(`${step} ok`, { fleet: session.fleet.name, address, action: step, durationMs: ms, migration: 'emergency', ...(info ?? {}) }),
            },
            w,
            n,
          ),
        ),
      );
      for (const r of reports) this.reportMigration(r);
    };
    const p = run()
      .catch((e: unknown) => this.log.error('evacuation failed', { fleet: session.fleet.name, action: 'migrate', node: n.node, err: e }))
      .finally(() => {
        this.evacuations.delete(key);
        // Converge the rest: release the source's lease, retry what did not move.
        this.queue.add(KEY);
      });
    this.evacuations.set(key, p);
  }

  private reportMigration(r: PromiseSettledResult<MigrationReport>): void {
    if (r.status === 'rejected') {
      const msg = errorMessage(r.reason);
      this.metrics.migrationFinished('failed');
      this.event('migration-failed', msg);
      this.alerting.events.push({ kind: 'migration-failed', id: `${msg}:${Date.now()}`, address: /workload\.[^ ]+/.exec(msg)?.[0] ?? 'fleet', message: msg });
      this.log.error(msg, { fleet: this.fleetName(), action: 'migrate' });
      return;
    }
    const m = r.value;
    if (m.outcome === 'moved' || m.outcome === 'lost-work') {
      this.metrics.migrationFinished(m.outcome === 'lost-work' ? 'lost-work' : 'succeeded', (m.downtimeMs ?? 0) / 1000);
      this.event('migration', `${m.address}: ${m.from ?? '?'} → ${m.to ?? '?'} (eviction); downtime ${((m.downtimeMs ?? 0) / 1000).toFixed(1)}s; steps ${Object.entries(m.timings).map(([k, v]) => `${k} ${(v / 1000).toFixed(1)}s`).join(', ')}`, m.address);
      this.log.info('migration complete', { fleet: this.fleetName(), address: m.address, action: 'migrate', from: m.from, to: m.to, downtimeMs: m.downtimeMs, timings: m.timings, outcome: m.outcome === 'lost-work' ? 'lost-work' : 'succeeded' });
    } else if (m.outcome === 'no-target') {
      this.log.warn(`no capacity to move to yet: ${m.error ?? ''}`, { fleet: this.fleetName(), address: m.address, action: 'migrate' });
    }
  }

  /** Market moves enqueue a reconcile (level-triggered: the reconcile re-reads prices itself). */
  private async checkPrices(): Promise<void> {
    const s = this.sessions.current;
    if (!s || this.stopping || !this.acting()) return;
    const parts: string[] = [];
    for (const name of [...s.marketProviders].sort()) {
      try {
        const q = await s.providers.get(name)?.capacity?.prices({});
        for (const x of q ?? []) parts.push(`${name}/${x.zone ?? ''}/${x.capacity}/${x.available ? 1 : 0}/${x.pricePerGpuHour.toFixed(2)}`);
      } catch (e) {
        this.metrics.providerPollError(name, 'capacity.prices');
        this.log.warn('price poll failed', { fleet: s.fleet.name, provider: name, err: e });
      }
    }
    const key = parts.sort().join(';');
    if (this.lastPriceKey && key !== this.lastPriceKey) {
      this.log.info('market moved', { fleet: s.fleet.name, action: 'price-change' });
      this.queue.add(KEY);
    }
    this.lastPriceKey = key;
  }

  /** One level-triggered reconcile (see reconciler.ts), then notices, the monitor, metrics and alerts. */
  async reconcile(): Promise<void> {
    // A standby replica stays warm and does nothing (the leader reconciles).
    if (!this.acting()) return;
    const t0 = Date.now();
    let ok = false;
    let changes = 0;
    try {
      const fleet = await this.sessions.loadSpec();
      const session = await this.sessions.ensure(fleet);
      this.describeMetrics(session);
      // The spec's files and the policy files it names now: nothing else under its folder.
      await this.specWatcher?.update([this.opts.specPath, ...fleet.policies]);
      this.recorder ??= new StateRecorder(this.store, await this.store.read());
      for (const [k, n] of this.activeNotices) if (Date.parse(n.deadline) + 3_600_000 < Date.now()) this.activeNotices.delete(k);
      // The notice monitor polls every node on its own schedule; the refresh does not poll them again.
      // Until the monitor has its node set, and with --once (no monitor), the refresh polls them itself.
      const monitored = this.monitor.isRunning && this.monitorHasNodes;
      let out: ReconcileOutput;
      try {
        out = await reconcileFleet({
          session,
          store: this.store,
          recorder: this.recorder,
          locks: this.locks,
          log: this.log,
          stateDir: this.opts.stateDir,
          lockTimeoutMs: this.opts.lockTimeoutMs ?? 60_000,
          parallelism: this.opts.parallelism ?? 10,
          knownNotices: monitored ? [...this.activeNotices.values()] : undefined,
          signalled: this.signalled,
          shouldStop: () => this.stopping || !this.acting(),
          events: this.alerting.events,
        });
      } catch (e) {
        const partial = (e as { partial?: ReconcileOutput }).partial;
        if (partial) this.afterApply(partial);
        throw e;
      }
      changes = out.changes;
      if (out.idle !== this.idle) {
        this.log.info(out.idle ? 'the fleet is destroyed: watch stays idle until the next apply' : 'the fleet is active again', { fleet: fleet.name, action: 'mode' });
        this.event('mode', out.idle ? 'fleet destroyed: idle until the next apply' : 'fleet active');
      }
      this.idle = out.idle;
      this.lastObserved = out.observed;
      this.afterApply(out);
      await this.warnings.afterReconcile(out).catch((e: unknown) => this.log.warn('early-warning bookkeeping failed', { fleet: fleet.name, action: 'warning', err: e }));
      await this.acknowledgeNotices(session, out.observed, out.state);
      await this.updateMonitor(session, out.observed);
      await this.alerting.evaluate(session, out.observed, out.state);
      // Signals older than 10 minutes have done their job.
      for (const [k, t] of this.signalled) if (Date.now() - t > 600_000) this.signalled.delete(k);
      ok = true;
    } catch (e) {
      this.health.reconcileFailed(e);
      this.lastReconcile = { at: new Date().toISOString(), durationMs: Date.now() - t0, ok: false, error: errorMessage(e) };
      throw e;
    } finally {
      this.metrics.observeReconcile((Date.now() - t0) / 1000, ok);
    }
    this.health.reconcileSucceeded();
    this.lastReconcile = { at: new Date().toISOString(), durationMs: Date.now() - t0, ok: true, changes };
    this.log.info('reconciled', { fleet: this.fleetName(), action: 'reconcile', durationMs: Date.now() - t0, changes });
  }

  /** Metrics and events from what an apply did: moves, restarts, phases, spend. */
  private afterApply(out: ReconcileOutput): void {
    for (const { start, result, record } of finishedMoves(out.plan, out.results, out.state)) {
      if (start.restart === 'failure' || start.restart === 'preemption') {
        if (result?.status === 'ok') this.metrics.workloadRestarted(start.restart);
        continue;
      }
      if (!start.migratedFrom) continue;
      const move = record?.moves.at(-1);
      if (result?.status === 'ok' && move) {
        const outcome = move.outcome === 'lost-work' ? 'lost-work' : 'succeeded';
        this.metrics.migrationFinished(outcome, (move.downtimeMs ?? 0) / 1000);
        this.event('migration', `${start.address}: ${move.from ?? '?'} → ${move.to} (${move.reason}); downtime ${((move.downtimeMs ?? 0) / 1000).toFixed(1)}s; steps ${Object.entries(move.timings ?? {}).map(([k, v]) => `${k} ${(v / 1000).toFixed(1)}s`).join(', ')}`, start.address);
        this.log.info('migration complete', { fleet: this.fleetName(), address: start.address, action: 'migrate', from: move.from, to: move.to, reason: move.reason, downtimeMs: move.downtimeMs, timings: move.timings, outcome });
      } else {
        this.metrics.migrationFinished(result?.status === 'cancelled' ? 'aborted' : 'failed');
        this.event('migration-failed', `${start.address}: ${result?.error ?? result?.status ?? 'did not run'}`, start.address);
      }
    }
    const by: Record<string, number> = { spot: 0, 'on-demand': 0 };
    const phases: Record<string, number> = {};
    for (const r of Object.values(out.state.resources)) {
      if (r.type !== 'workload') continue;
      phases[r.phase] = (phases[r.phase] ?? 0) + 1;
      if (r.since !== undefined && r.instanceId !== undefined && r.capacity) by[r.capacity] = (by[r.capacity] ?? 0) + (r.pricePerGpuHour ?? 0) * r.gpus;
    }
    this.phases = phases;
    this.metrics.setFleetCostPerHour(by);
    this.metrics.setWorkloadPhases(phases);
  }

  /**
   * Once nothing of the fleet runs on a node with a notice any more (its workloads checkpointed,
   * stopped and moved), confirm the notice to the cloud where the provider is set to (Azure
   * StartRequests lets the eviction go ahead at once). Each notice is confirmed once.
   */
  private async acknowledgeNotices(session: WatchSession, observed: Observed, state: StateFile): Promise<void> {
    for (const n of observed.notices) {
      // A due warning is watch's own copy of a cloud notice: the original is the one to confirm.
      if (this.acknowledged.has(n.id) || isDueWarning(n)) continue;
      const p = session.providers.get(n.provider);
      if (!p?.notices?.acknowledge) continue;
      const stillThere = Object.values(state.resources).some((r) => r.type === 'workload' && r.instanceId !== undefined && !isTerminal(r.phase) && r.provider === n.provider && r.node === n.node);
      if (stillThere) continue;
      const node = observed.nodes.find((x) => x.provider === n.provider && x.id === n.node);
      if (!node) continue;
      this.acknowledged.add(n.id);
      try {
        await p.notices.acknowledge(node, n);
        this.log.info('notice acknowledged', { fleet: session.fleet.name, action: 'acknowledge', provider: n.provider, node: n.node, notice: n.id });
      } catch (e) {
        this.acknowledged.delete(n.id);
        this.log.warn('acknowledging the notice failed', { fleet: session.fleet.name, action: 'acknowledge', provider: n.provider, node: n.node, err: e });
      }
    }
  }

  /** Every live node of a provider that reads notices is monitored (spot for evictions, all for maintenance). */
  private async updateMonitor(session: WatchSession, observed: Observed): Promise<void> {
    const byKey = new Map<string, NodeInfo>();
    for (const n of observed.nodes) byKey.set(nodeKey(n.provider, n.id), n);
    // Apply may have acquired nodes since the refresh: list them again (cheap) so new spot nodes are watched at once.
    // The notice fast path signals the instances it knows of: list them again too, since apply
    // may have started some after the refresh.
    const workloads: Observed['workloads'] = [];
    let workloadsOk = true;
    await Promise.all(
      [...session.providers].map(async ([name, p]) => {
        try {
          if (p.notices && p.nodes) for (const n of await p.nodes.list()) byKey.set(nodeKey(name, n.id), { ...n, provider: name });
          if (p.runtime) for (const w of await p.runtime.list()) workloads.push({ ...w, provider: name });
        } catch (e) {
          workloadsOk = false;
          this.log.warn('listing nodes and workloads failed', { fleet: session.fleet.name, provider: name, err: e });
        }
      }),
    );
    // The nodes too: a node apply acquired since the refresh must not look dead to the fast path.
    if (workloadsOk) this.lastObserved = { ...observed, nodes: [...byKey.values()], workloads };
    else this.lastObserved = { ...observed, nodes: [...byKey.values()] };
    this.setMonitorNodes(session, [...byKey.values()]);
  }

  private setMonitorNodes(session: WatchSession, nodes: readonly NodeInfo[]): void {
    const entries = nodes
      .filter((n) => n.state !== 'terminated' && session.providers.get(n.provider)?.notices)
      .map((node) => ({ provider: session.providers.get(node.provider) as Provider, node }));
    this.monitor.setNodes(entries);
    this.monitorHasNodes = true;
  }

  /** The live view for /status and `spotfleet status`. */
  view(): unknown {
    return {
      fleet: this.fleetName(),
      pid: process.pid,
      mode: this.recorder?.latest.fleetMode?.mode ?? 'active',
      idle: this.idle,
      lastReconcile: this.lastReconcile,
      health: this.health.snapshot().status,
      queueDepth: this.queue.len(),
      migrationsInFlight: [...this.evacuations.keys()],
      ...(this.elector ? { leader: this.elector.view() } : {}),
      ...(this.store instanceof LeaderStore ? { stateWritesQueued: this.store.queued } : {}),
      phases: this.phases,
      monitor: this.monitor.stats(),
      recentEvents: this.events.slice(-20),
    };
  }
}

function emptyObserved(): Observed {
  return { at: new Date().toISOString(), nodes: [], workloads: [], leases: [], prices: [], offers: [], notices: [], unknown: [] };
}
