// The watch controller, in the style of Kubernetes controllers: triggers (spec edits, a timer,
// eviction notices, market moves, SIGHUP) only enqueue the fleet; the reconciler always re-reads
// the spec and the world and runs the same plan/apply path as the CLI. An eviction notice also
// takes a fast path first: the checkpoint signal goes to every workload on the node at once,
// before the reconcile (which then acquires the target in parallel with waiting for the verified
// checkpoint, stops, transfers and resumes). An invalid spec is logged with file:line:col and
// the last good one keeps running until the file is fixed.
import { rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { SpecError, SpotfleetError, errorMessage, formatProblem } from '../core/errors.js';
import type { NodeInfo, Notice, Observed } from '../core/types.js';
import { roundUsd } from '../core/units.js';
import { applyPlan, clearStalePending, type ActionResult } from '../engine/apply.js';
import { makePlan } from '../engine/reconcile.js';
import { providerRoles } from '../engine/session.js';
import type { Plan } from '../engine/types.js';
import { loadFleet } from '../spec/load.js';
import type { Fleet } from '../spec/types.js';
import { createProvider } from '../providers/registry.js';
import type { AlertMessage, Provider } from '../providers/sdk.js';
import { LocalStateStore, type StateStore } from '../state/store.js';
import type { StateFile, WorkloadRecord } from '../state/types.js';
import { compileAlertRules, evaluateAlerts, sinksFor, type AlertFacts, type AlertState, type CompiledAlertRule } from '../policy/alerts.js';
import { createAlertSinks, deliverAlert, type AlertSink } from '../telemetry/alert-sinks.js';
import { providerLogger, type Logger } from '../telemetry/logger.js';
import { createWatchMetrics, type WatchMetrics } from '../telemetry/metrics.js';
import { HealthTracker, startTelemetryServer, type TelemetryServer } from '../telemetry/http-server.js';
import { NoticeMonitor, type SeenNotice } from './notice-monitor.js';
import { watchSpec, type SpecWatcher } from './spec-watcher.js';
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
}

interface Session {
  fleet: Fleet;
  providers: Map<string, Provider>;
  key: string;
  marketProviders: Set<string>;
  runtimeProviders: Set<string>;
  bidProviders: Set<string>;
  sinks: Map<string, AlertSink>;
  rules: CompiledAlertRule[];
}

export interface ControllerEvent {
  at: string;
  kind: string;
  address?: string;
  message: string;
}

const KEY = 'fleet';

export class Controller {
  readonly metrics: WatchMetrics;
  readonly health: HealthTracker;
  private readonly log: Logger;
  private readonly store: StateStore;
  private readonly queue: WorkQueue<string>;
  private readonly monitor: NoticeMonitor;
  private session: Session | undefined;
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
  private monitorHasNodes = false;
  private readonly events: ControllerEvent[] = [];
  private alertState: AlertState = { firing: {} };
  private pendingAlertEvents: AlertFacts['events'] = [];
  private lastReconcile: { at: string; durationMs: number; ok: boolean; error?: string; changes?: number } | undefined;
  private runPromise: Promise<void> | undefined;
  private specErrorShown = '';

  constructor(private readonly opts: ControllerOptions) {
    this.log = opts.log;
    this.metrics = createWatchMetrics();
    this.health = new HealthTracker({ intervalMs: opts.intervalMs ?? 30_000 });
    this.store = new LocalStateStore(opts.stateDir, 'fleet');
    this.queue = new WorkQueue<string>({ onDepthChange: (d) => this.metrics.setQueueDepth(d) });
    this.monitor = new NoticeMonitor({
      intervalMs: opts.noticeIntervalMs ?? 2000,
      maxInFlight: opts.maxInFlightPolls ?? 32,
      onNotice: (s) => this.onNotice(s),
      onError: (e) => {
        this.metrics.providerPollError(e.provider, 'notices');
        this.log.warn('notice poll failed', { provider: e.provider, node: e.node, action: 'notice-poll', err: e.error, timedOut: e.timedOut });
      },
    });
  }

  private event(kind: string, message: string, address?: string): void {
    this.events.push({ at: new Date().toISOString(), kind, message, ...(address ? { address } : {}) });
    if (this.events.length > 100) this.events.splice(0, this.events.length - 100);
  }

  /** Starts everything; with `once`, runs one reconcile and returns whether it succeeded. */
  async runOnce(): Promise<boolean> {
    try {
      await this.reconcile();
      return true;
    } catch (e) {
      this.log.error('reconcile failed', { action: 'reconcile', err: e });
      return false;
    } finally {
      await this.closeSession();
    }
  }

  async start(): Promise<void> {
    const listen = this.opts.listen ?? '127.0.0.1:9464';
    if (listen !== 'off') {
      this.server = await startTelemetryServer({ listen, metrics: this.metrics, health: this.health, status: () => this.view(), log: this.log });
      this.log.info('serving /healthz, /metrics and /status', { action: 'listen', url: this.server.url });
    }
    mkdirSync(this.opts.stateDir, { recursive: true, mode: 0o700 });
    writeFileSync(join(this.opts.stateDir, 'watch.json'), JSON.stringify({ pid: process.pid, startedAt: new Date().toISOString(), ...(this.server ? { listen: `${this.server.address.host}:${this.server.address.port}` } : {}) }), { mode: 0o600 });
    this.specWatcher = await watchSpec(this.opts.specPath, {
      onChange: (c) => {
        this.log.info('spec changed', { action: 'spec-change', paths: c.paths });
        this.queue.add(KEY);
      },
      onError: (e) => this.log.warn('spec watcher error', { err: e }),
    });
    this.timers.push(setInterval(() => this.queue.add(KEY), this.opts.intervalMs ?? 30_000));
    this.timers.push(setInterval(() => void this.checkPrices(), this.opts.priceIntervalMs ?? 15_000));
    this.monitor.start();
    this.queue.add(KEY);
    this.runPromise = this.queue.run(async () => this.reconcile(), {
      isTerminal: (e) => e instanceof SpecError,
      onError: (_k, err, retryInMs) => {
        this.metrics.reconcileError(err instanceof SpecError ? 'spec' : err instanceof SpotfleetError ? err.code.toLowerCase() : 'internal');
        this.log.error('reconcile failed', { action: 'reconcile', err, ...(retryInMs !== undefined ? { retryInMs } : {}) });
      },
    });
  }

  /** SIGHUP: re-read the spec and recreate providers. */
  reload(): void {
    this.log.info('reload requested', { action: 'reload' });
    if (this.session) this.session.key = '';
    this.queue.add(KEY);
  }

  /** SIGTERM: finish the steps in flight, save state, stop. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.health.setStopping();
    this.log.info('stopping: letting steps in flight finish', { action: 'stop' });
    for (const t of this.timers) clearInterval(t);
    await this.monitor.stop();
    await this.specWatcher?.close();
    await this.queue.shutdown({ drain: true });
    await this.runPromise;
    await this.closeSession();
    await this.server?.close();
    rmSync(join(this.opts.stateDir, 'watch.json'), { force: true });
    this.log.info('stopped', { action: 'stop' });
    this.log.flush();
  }

  private async closeSession(): Promise<void> {
    const s = this.session;
    this.session = undefined;
    if (s) await Promise.allSettled([...s.providers.values()].map((p) => p.close?.()));
  }

  /** Loads the spec; on an invalid spec keeps the last good one (and says so), or fails terminally. */
  private async loadSpec(): Promise<Fleet> {
    try {
      const { fleet, warnings } = await loadFleet(this.opts.specPath);
      for (const w of warnings) this.log.warn(formatProblem(w), { action: 'validate' });
      this.specErrorShown = '';
      return fleet;
    } catch (e) {
      if (!(e instanceof SpecError)) throw e;
      const text = e.problems.map(formatProblem).join('\n');
      if (text !== this.specErrorShown) {
        for (const p of e.problems) this.log.error(formatProblem(p), { action: 'validate', file: p.file, line: p.line, col: p.col });
        this.specErrorShown = text;
      }
      if (this.session) {
        this.log.warn('the spec is invalid; the last good spec keeps running until it is fixed', { action: 'validate' });
        this.event('spec-invalid', e.problems[0] ? formatProblem(e.problems[0]) : 'invalid spec');
        return this.session.fleet;
      }
      throw e;
    }
  }

  private async ensureSession(fleet: Fleet): Promise<Session> {
    const key = JSON.stringify([fleet.providers.map((p) => [p.name, p.type, p.package ?? '', p.config]), fleet.pools.map((p) => [p.name, p.provider, p.capacity, p.gpuModel, p.zones, p.maxPricePerHour, p.node])]);
    if (this.session && this.session.key === key) {
      this.session.fleet = fleet;
      const { rules } = compileAlertRules(fleet.alerts);
      this.session.rules = rules;
      this.session.sinks = createAlertSinks(fleet.sinks, { providers: this.session.providers });
      return this.session;
    }
    await this.closeSession();
    const providers = new Map<string, Provider>();
    for (const spec of fleet.providers) {
      providers.set(spec.name, await createProvider(spec, { fleet: fleet.name, specDir: fleet.dir, stateDir: this.opts.stateDir, log: providerLogger(this.log, spec.name), pools: fleet.pools }));
    }
    const { rules, problems } = compileAlertRules(fleet.alerts);
    for (const p of problems) this.log.error(formatProblem(p), { action: 'alerts' });
    this.session = {
      fleet,
      providers,
      key,
      ...providerRoles(providers),
      sinks: createAlertSinks(fleet.sinks, { providers }),
      rules,
    };
    return this.session;
  }

  /** The fast path of an eviction: signal every workload on the node now, then reconcile. */
  private onNotice(seen: SeenNotice): void {
    const n = { ...seen.notice, provider: seen.provider, node: seen.node.id };
    this.activeNotices.set(`${n.provider}/${n.id}`, n);
    this.metrics.noticeReceived(n.source, n.kind);
    this.log.warn('eviction notice', { action: 'notice', provider: seen.provider, node: seen.node.id, kind: n.kind, source: n.source, deadline: n.deadline, ...(n.action ? { cloudAction: n.action } : {}) });
    this.event('notice', `${n.kind} notice (${n.source}) for node ${seen.node.id}, deadline ${n.deadline}`);
    const session = this.session;
    const obs = this.lastObserved;
    if (session && obs) {
      const p = session.providers.get(seen.provider);
      for (const w of obs.workloads) {
        if (w.provider !== seen.provider || w.node !== seen.node.id || w.state !== 'running' || w.fleet !== session.fleet.name) continue;
        const contract = session.fleet.workloads.find((x) => x.name === w.workload)?.checkpoint;
        if (!contract || !p?.runtime) continue;
        const k = `${w.provider}/${w.id}`;
        if (this.signalled.has(k)) continue;
        const at = Date.now();
        this.signalled.set(k, at);
        p.runtime.signal(w.node, w.id, contract.signal).then(
          () => {
            this.metrics.observeNoticeToSignal((Date.now() - seen.seenAt) / 1000, n.source);
            this.log.info('checkpoint signal sent', { action: 'signal', address: `workload.${w.workload}`, node: w.node, durationMs: Date.now() - seen.seenAt });
          },
          (e: unknown) => {
            // Usually the reconcile got there first and the instance has already stopped.
            this.signalled.delete(k);
            this.log.warn('fast-path checkpoint signal failed (the reconcile handles the notice)', { action: 'signal', address: `workload.${w.workload}`, err: e });
          },
        );
      }
    }
    this.pendingAlertEvents.push();
    this.queue.add(KEY);
  }

  /** Market moves enqueue a reconcile (level-triggered: the reconcile re-reads prices itself). */
  private async checkPrices(): Promise<void> {
    const s = this.session;
    if (!s || this.stopping) return;
    const parts: string[] = [];
    for (const name of [...s.marketProviders].sort()) {
      try {
        const q = await s.providers.get(name)?.capacity?.prices({});
        for (const x of q ?? []) parts.push(`${name}/${x.zone ?? ''}/${x.capacity}/${x.available ? 1 : 0}/${x.pricePerGpuHour.toFixed(2)}`);
      } catch (e) {
        this.metrics.providerPollError(name, 'capacity.prices');
        this.log.warn('price poll failed', { provider: name, err: e });
      }
    }
    const key = parts.sort().join(';');
    if (this.lastPriceKey && key !== this.lastPriceKey) {
      this.log.info('market moved', { action: 'price-change' });
      this.queue.add(KEY);
    }
    this.lastPriceKey = key;
  }

  /** One level-triggered reconcile: spec, refresh, plan, apply, then the notice monitor's node set. */
  async reconcile(): Promise<void> {
    const t0 = Date.now();
    let ok = false;
    let changes = 0;
    try {
      const fleet = await this.loadSpec();
      const session = await this.ensureSession(fleet);
      const lock = await this.store.lock('watch', this.opts.lockTimeoutMs ?? 60_000);
      try {
        const state = await this.store.read();
        // The notice monitor polls every node on its own schedule; the refresh does not poll them again.
        for (const [k, n] of this.activeNotices) if (Date.parse(n.deadline) + 3_600_000 < Date.now()) this.activeNotices.delete(k);
        // Until the monitor has its node set (the first reconcile), and with --once (no monitor), the
        // refresh polls the nodes itself.
        const monitored = this.monitor.isRunning && this.monitorHasNodes;
        const { plan, observed } = await makePlan({ ...session, warnings: [], store: this.store, stateDir: this.opts.stateDir, close: async () => {} }, state, { now: Date.now(), ...(monitored ? { knownNotices: [...this.activeNotices.values()] } : {}) });
        this.lastObserved = observed;
        const allowed = withoutMandatoryViolations(plan, (addr, msg) => this.log.error(`blocked by a mandatory policy: ${msg}`, { address: addr, action: 'policy' }));
        for (const d of plan.drift) this.log.warn(d.message, { address: d.address, action: 'drift', kind: d.kind });
        let finalState: StateFile = state;
        changes = allowed.actions.length;
        if (changes === 0) finalState = await clearStalePending(this.store, state);
        if (allowed.actions.length > 0) {
          for (const ch of allowed.changes) if (ch.change !== 'no-op') this.log.info(ch.reasons.map((r) => `${r.rule}: ${r.text}`).join('; '), { address: ch.address, action: ch.change });
          const result = await applyPlan(allowed, {
            fleet: session.fleet,
            providers: session.providers,
            store: this.store,
            state,
            observed,
            parallelism: this.opts.parallelism ?? 10,
            signalledAt: this.signalled,
            shouldStop: () => this.stopping,
            onEvent: (e) => {
              if (e.type === 'done') this.log[e.result.status === 'ok' ? 'info' : 'error'](`${e.action.kind} ${e.result.status}`, { fleet: session.fleet.name, address: e.action.address, action: e.action.kind, durationMs: (e.result.endedAt ?? 0) - (e.result.startedAt ?? 0), ...(e.result.error ? { error: e.result.error } : {}), ...(e.result.info ?? {}) });
              else if (e.type === 'warning') {
                this.log.warn(e.message, { fleet: session.fleet.name, address: e.address, action: 'warning' });
                if (/losing about/.test(e.message)) this.pendingAlertEvents.push({ kind: 'work-lost', id: `${e.address}:${Date.now()}`, address: e.address, message: e.message });
              } else if (e.type === 'skipped') this.log.warn(`${e.action.kind} skipped: ${e.reason}`, { fleet: session.fleet.name, address: e.action.address, action: e.action.kind });
            },
          });
          finalState = result.state;
          this.recordMigrations(allowed, result.results, finalState);
          if (result.failed.length > 0) {
            for (const f of result.failed) this.pendingAlertEvents.push({ kind: 'migration-failed', id: `${f.address}:${f.kind}:${Date.now()}`, address: f.address, message: f.error ?? 'failed' });
            throw new SpotfleetError('APPLY_FAILED', `${result.failed.length} action(s) failed: ${result.failed.map((f) => `${f.address} (${f.kind}): ${f.error ?? ''}`).join('; ')}`);
          }
        }
        this.updateCost(finalState);
        await this.acknowledgeNotices(session, observed, finalState);
        await this.updateMonitor(session, observed);
        await this.evaluateAlerts(session, observed, finalState);
        // Signals older than 10 minutes have done their job.
        for (const [k, t] of this.signalled) if (Date.now() - t > 600_000) this.signalled.delete(k);
        ok = true;
      } finally {
        await lock.release();
      }
    } catch (e) {
      this.health.reconcileFailed(e);
      this.lastReconcile = { at: new Date().toISOString(), durationMs: Date.now() - t0, ok: false, error: errorMessage(e) };
      throw e;
    } finally {
      this.metrics.observeReconcile((Date.now() - t0) / 1000, ok);
    }
    this.health.reconcileSucceeded();
    this.lastReconcile = { at: new Date().toISOString(), durationMs: Date.now() - t0, ok: true, changes };
    this.log.info('reconciled', { action: 'reconcile', durationMs: Date.now() - t0, changes });
  }

  /**
   * Once nothing of the fleet runs on a node with a notice any more (its workloads checkpointed,
   * stopped and moved), confirm the notice to the cloud where the provider is set to (Azure
   * StartRequests lets the eviction go ahead at once). Each notice is confirmed once.
   */
  private async acknowledgeNotices(session: Session, observed: Observed, state: StateFile): Promise<void> {
    for (const n of observed.notices) {
      if (this.acknowledged.has(n.id)) continue;
      const p = session.providers.get(n.provider);
      if (!p?.notices?.acknowledge) continue;
      const stillThere = Object.values(state.resources).some((r) => r.type === 'workload' && r.status === 'running' && r.provider === n.provider && r.node === n.node);
      if (stillThere) continue;
      const node = observed.nodes.find((x) => x.provider === n.provider && x.id === n.node);
      if (!node) continue;
      this.acknowledged.add(n.id);
      try {
        await p.notices.acknowledge(node, n);
        this.log.info('notice acknowledged', { action: 'acknowledge', provider: n.provider, node: n.node, notice: n.id });
      } catch (e) {
        this.acknowledged.delete(n.id);
        this.log.warn('acknowledging the notice failed', { action: 'acknowledge', provider: n.provider, node: n.node, err: e });
      }
    }
  }

  private recordMigrations(plan: Plan, results: ActionResult[], state: StateFile): void {
    for (const a of plan.actions) {
      if (a.kind !== 'start' || !a.migratedFrom) continue;
      const r = results.find((x) => x.id === a.id);
      const rec = state.resources[a.address] as WorkloadRecord | undefined;
      const move = rec?.moves.at(-1);
      if (r?.status === 'ok' && move) {
        this.metrics.migrationFinished(move.outcome === 'lost-work' ? 'lost-work' : 'succeeded', (move.downtimeMs ?? 0) / 1000);
        this.event('migration', `${a.address}: ${move.from ?? '?'} → ${move.to} (${move.reason}); downtime ${((move.downtimeMs ?? 0) / 1000).toFixed(1)}s; steps ${Object.entries(move.timings ?? {}).map(([k, v]) => `${k} ${(v / 1000).toFixed(1)}s`).join(', ')}`, a.address);
        this.log.info('migration complete', { address: a.address, action: 'migrate', from: move.from, to: move.to, reason: move.reason, downtimeMs: move.downtimeMs, timings: move.timings, outcome: move.outcome });
      } else {
        this.metrics.migrationFinished(r?.status === 'cancelled' ? 'aborted' : 'failed');
        this.event('migration-failed', `${a.address}: ${r?.error ?? r?.status ?? 'did not run'}`, a.address);
      }
    }
  }

  private updateCost(state: StateFile): void {
    const by: Record<string, number> = { spot: 0, 'on-demand': 0 };
    for (const r of Object.values(state.resources)) if (r.type === 'workload' && r.status === 'running' && r.capacity) by[r.capacity] = (by[r.capacity] ?? 0) + (r.pricePerGpuHour ?? 0) * r.gpus;
    this.metrics.setFleetCostPerHour(by);
  }

  /** Every live node of a provider that reads notices is monitored (spot for evictions, all for maintenance). */
  private async updateMonitor(session: Session, observed: Observed): Promise<void> {
    const byKey = new Map<string, NodeInfo>();
    for (const n of observed.nodes) byKey.set(`${n.provider}/${n.id}`, n);
    // Apply may have acquired nodes since the refresh: list them again (cheap) so new spot nodes are watched at once.
    // The notice fast path signals the instances it knows of: list them again too, since apply
    // may have started some after the refresh.
    const workloads: Observed['workloads'] = [];
    let workloadsOk = true;
    await Promise.all(
      [...session.providers].map(async ([name, p]) => {
        try {
          if (p.notices && p.nodes) for (const n of await p.nodes.list()) byKey.set(`${name}/${n.id}`, { ...n, provider: name });
          if (p.runtime) for (const w of await p.runtime.list()) workloads.push({ ...w, provider: name });
        } catch (e) {
          workloadsOk = false;
          this.log.warn('listing nodes and workloads failed', { provider: name, err: e });
        }
      }),
    );
    if (workloadsOk) this.lastObserved = { ...observed, workloads };
    const entries = [...byKey.values()]
      .filter((n) => n.state !== 'terminated' && session.providers.get(n.provider)?.notices)
      .map((node) => ({ provider: session.providers.get(node.provider) as Provider, node }));
    this.monitor.setNodes(entries);
    this.monitorHasNodes = true;
  }

  private async evaluateAlerts(session: Session, observed: Observed, state: StateFile): Promise<void> {
    if (session.rules.length === 0) {
      this.pendingAlertEvents = [];
      return;
    }
    const workloads = Object.values(state.resources).filter((r): r is WorkloadRecord => r.type === 'workload');
    const costPerHour = workloads.reduce((s, w) => s + (w.status === 'running' ? (w.pricePerGpuHour ?? 0) * w.gpus : 0), 0);
    const onDemand = Math.min(...observed.prices.filter((q) => q.capacity === 'on-demand').map((q) => q.pricePerGpuHour), ...observed.nodes.filter((n) => n.capacity === 'on-demand' && n.gpus > 0).map((n) => n.pricePerHour / n.gpus));
    const facts: AlertFacts = {
      fleet: session.fleet.name,
      now: Date.now(),
      notices: observed.notices.map((n) => ({ node: n.node, kind: n.kind, deadline: n.deadline, provider: n.provider, workloads: observed.workloads.filter((w) => w.node === n.node && w.provider === n.provider).map((w) => w.workload) })),
      events: this.pendingAlertEvents,
      workloads: workloads.map((w) => {
        const spec = session.fleet.workloads.find((x) => x.name === w.name);
        return {
          name: w.name,
          ...(w.lastCheckpoint ? { lastCheckpointAt: Date.parse(w.lastCheckpoint.mtime) } : {}),
          ...(spec?.checkpoint?.maxAgeMs !== undefined ? { checkpointMaxAgeMs: spec.checkpoint.maxAgeMs } : {}),
          ...(w.capacity ? { capacity: w.capacity } : {}),
          costPerHour: roundUsd((w.pricePerGpuHour ?? 0) * w.gpus),
        };
      }),
      markets: observed.prices.filter((q) => q.capacity === 'spot').map((q) => ({ pool: q.provider, ...(q.zone ? { zone: q.zone } : {}), gpuModel: q.gpuModel, spotPrice: q.pricePerGpuHour, onDemandPrice: Number.isFinite(onDemand) ? onDemand : q.pricePerGpuHour, available: q.available })),
      fleetCostPerHour: roundUsd(costPerHour),
      ...(session.fleet.budgetPerHour !== undefined ? { budgetPerHour: session.fleet.budgetPerHour } : {}),
      spotPriceAlertRatio: session.fleet.defaults.thresholds.spotPriceAlertRatio,
    };
    this.pendingAlertEvents = [];
    const { messages, state: next } = evaluateAlerts(session.rules, facts, this.alertState);
    this.alertState = next;
    await Promise.all(messages.map(async (m: AlertMessage) => {
      this.log.warn(`alert ${m.status}: ${m.summary}`, { action: 'alert', rule: m.rule, severity: m.severity, ...(m.address ? { address: m.address } : {}) });
      const failures = await deliverAlert(session.sinks, sinksFor(session.rules, m), m);
      for (const f of failures) this.log.error(`alert delivery to ${f.sink} failed: ${f.error}`, { action: 'alert' });
    }));
  }

  /** The live view for /status and `spotfleet status`. */
  view(): unknown {
    return {
      fleet: this.session?.fleet.name,
      pid: process.pid,
      lastReconcile: this.lastReconcile,
      health: this.health.snapshot().status,
      queueDepth: this.queue.len(),
      monitor: this.monitor.stats(),
      recentEvents: this.events.slice(-20),
    };
  }
}

/** Watch applies what policy allows: changes blocked by a mandatory policy are left out (and logged). */
function withoutMandatoryViolations(plan: Plan, report: (address: string, message: string) => void): Plan {
  const blocked = new Set<string>();
  for (const c of plan.changes) {
    const v = c.violations.filter((x) => x.level === 'mandatory');
    if (v.length === 0) continue;
    for (const x of v) report(c.address, `${x.policy}: ${x.message}`);
    for (const id of c.actions) blocked.add(id);
  }
  if (blocked.size === 0) return plan;
  // Anything that depends on a blocked action is blocked too.
  let grew = true;
  while (grew) {
    grew = false;
    for (const a of plan.actions) if (!blocked.has(a.id) && a.deps.some((d) => blocked.has(d))) {
      blocked.add(a.id);
      grew = true;
    }
  }
  return { ...plan, actions: plan.actions.filter((a) => !blocked.has(a.id)), changes: plan.changes.filter((c) => !c.actions.some((id) => blocked.has(id))) };
}
