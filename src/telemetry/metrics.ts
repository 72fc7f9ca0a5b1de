// The watch controller's Prometheus metrics, on a private prom-client Registry (never the global
// one, so tests and several controllers in one process do not share counters). The controller
// records through the typed WatchMetrics methods; /metrics renders the registry as text.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { CapacityType, NoticeKind } from '../core/types.js';
import { spotfleetVersion } from '../core/version.js';

/** How an emergency or planned migration ended. */
export type MigrationOutcome =
  /** Resumed on the target from a checkpoint newer than the signal. */
  | 'succeeded'
  /** Resumed, but from an older verified checkpoint: some work was lost. */
  | 'lost-work'
  /** Could not be resumed anywhere. */
  | 'failed'
  /** Stopped part-way (shutdown, superseded by a newer decision). */
  | 'aborted';

export interface WatchMetricsOptions {
  /** Prefix of every metric name. Default `spotfleet_`. */
  prefix?: string;
  /** The fleet's name: a `fleet` label on every series, so several fleets can share a Prometheus. */
  fleet?: string;
  /** Labels on every series (e.g. `{ fleet: 'research' }`); `fleet` above wins over one here. */
  defaultLabels?: Record<string, string>;
  /** Version in `spotfleet_build_info`. Default: this package's version. */
  version?: string;
  /**
   * Notice sources (the `cloud` label) to create notice series for at start, at 0, so a rate() or
   * an alert on them works before the first notice. Default: aws, gcp, azure, sim, local.
   */
  noticeSources?: readonly string[];
  /** Provider instances and the capabilities watch polls on them, for provider_poll_errors_total at 0. */
  providers?: readonly { name: string; capabilities: readonly string[] }[];
  /** Reconcile error reasons to create at 0 (reconcileError's `reason`). Default: spec, provider_failed, apply_failed, internal. */
  reconcileErrorReasons?: readonly string[];
  /** Clock for the last-success timestamp, ms epoch. Default Date.now. */
  now?: () => number;
  /** Also export Node process metrics (CPU, memory, event-loop lag) on this registry. Default true. */
  processMetrics?: boolean;
}

/** The metrics the controller records. Every method is cheap and never throws. */
export interface WatchMetrics {
  /** The private registry (for tests, or to add more collectors). */
  readonly registry: Registry;
  /** Content-Type of `render()`. */
  readonly contentType: string;
  /** One reconcile of a fleet took `seconds`; `ok` true also sets the last-success timestamp to now. */
  observeReconcile(seconds: number, ok: boolean): void;
  /** A reconcile failed (counted by `reason`: spec, provider, apply, internal, ...). */
  reconcileError(reason: string): void;
  /** Keys ready in the work queue. */
  setQueueDepth(depth: number): void;
  /** A new notice was seen. `cloud` is the notice's source (aws, gcp, azure, sim, local). */
  noticeReceived(cloud: string, kind: NoticeKind): void;
  /** Time from a notice being seen to the checkpoint signal going out, in seconds. */
  observeNoticeToSignal(seconds: number, cloud: string): void;
  /** A migration ended; `downtimeSeconds` from the workload stopping to running again, when known. */
  migrationFinished(outcome: MigrationOutcome, downtimeSeconds?: number): void;
  /** The fleet's current spend in USD per hour by capacity type; a type not given is set to 0. */
  setFleetCostPerHour(byCapacity: Partial<Record<CapacityType, number>>): void;
  /** A provider call made by watch's monitors (notice or price polls) failed. */
  providerPollError(provider: string, capability: string): void;
  /** Workloads per lifecycle phase; a phase not given is set to 0. */
  setWorkloadPhases(byPhase: Record<string, number>): void;
  /** A workload restarted: after a failed exit (counts against backoffLimit) or a preemption (never does). */
  workloadRestarted(kind: 'failure' | 'preemption'): void;
  /**
   * The fleet and its providers, once the spec is loaded: a `fleet` label on every series, and
   * provider_poll_errors_total at 0 for each provider and capability watch polls. Idempotent.
   */
  describeFleet(fleet: string, providers: readonly { name: string; capabilities: readonly string[] }[]): void;
  /** The registry in Prometheus text format. */
  render(): Promise<string>;
}

/** Every migration outcome, so each has a series from the start. */
export const MIGRATION_OUTCOMES: readonly MigrationOutcome[] = ['succeeded', 'lost-work', 'failed', 'aborted'];
const NOTICE_KINDS: readonly NoticeKind[] = ['preemption', 'rebalance', 'maintenance', 'termination'];
const DEFAULT_NOTICE_SOURCES = ['aws', 'gcp', 'azure', 'sim', 'local'];
const DEFAULT_ERROR_REASONS = ['spec', 'provider_failed', 'apply_failed', 'internal'];

/** Buckets for reconcile and downtime: 50 ms to 10 min. */
const DURATION_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
/** Notice-to-signal must stay well under the 30 s GCP/Azure window: fine buckets up to 30 s. */
const SIGNAL_BUCKETS = [0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30];
/** Downtime of one migration: seconds to tens of minutes. */
const DOWNTIME_BUCKETS = [1, 5, 10, 20, 30, 60, 90, 120, 180, 300, 600, 1800];

const CAPACITY_TYPES: readonly CapacityType[] = ['on-demand', 'spot'];
const PHASES = ['pending', 'starting', 'running', 'checkpointing', 'migrating', 'recovering', 'succeeded', 'failed', 'cancelled'] as const;

/**
 * Creates the controller's metrics on a new private registry.
 * @example
 * const m = createWatchMetrics({ defaultLabels: { fleet: 'research' } });
 * m.noticeReceived('aws', 'preemption');
 * const text = await m.render();
 */
export function createWatchMetrics(opts: WatchMetricsOptions = {}): WatchMetrics {
  const p = opts.prefix ?? 'spotfleet_';
  const registry = new Registry();
  const labels = { ...opts.defaultLabels, ...(opts.fleet !== undefined ? { fleet: opts.fleet } : {}) };
  if (Object.keys(labels).length > 0) registry.setDefaultLabels(labels);
  const now = opts.now ?? Date.now;
  if (opts.processMetrics ?? true) collectDefaultMetrics({ register: registry });
  const registers = [registry];

  const reconcileDuration = new Histogram({
    name: `${p}reconcile_duration_seconds`,
    help: 'Duration of one reconcile of the fleet (refresh, decide, plan, apply).',
    labelNames: ['outcome'] as const,
    buckets: DURATION_BUCKETS,
    registers,
  });
  const reconcileErrors = new Counter({
    name: `${p}reconcile_errors_total`,
    help: 'Reconciles that failed, by reason.',
    labelNames: ['reason'] as const,
    registers,
  });
  const queueDepth = new Gauge({
    name: `${p}queue_depth`,
    help: 'Keys ready in the controller work queue.',
    registers,
  });
  const notices = new Counter({
    name: `${p}notices_received_total`,
    help: 'Eviction notices seen, by cloud (notice source) and kind.',
    labelNames: ['cloud', 'kind'] as const,
    registers,
  });
  const noticeToSignal = new Histogram({
    name: `${p}notice_to_signal_seconds`,
    help: 'Time from a notice being seen to the checkpoint signal being sent.',
    labelNames: ['cloud'] as const,
    buckets: SIGNAL_BUCKETS,
    registers,
  });
  const migrations = new Counter({
    name: `${p}migrations_total`,
    help: 'Migrations finished, by outcome.',
    labelNames: ['outcome'] as const,
    registers,
  });
  const downtime = new Histogram({
    name: `${p}migration_downtime_seconds`,
    help: 'Downtime of one migrated workload: from stop on the source to running on the target.',
    labelNames: ['outcome'] as const,
    buckets: DOWNTIME_BUCKETS,
    registers,
  });
  const cost = new Gauge({
    name: `${p}fleet_cost_usd_per_hour`,
    help: 'Current spend of the fleet in USD per hour, by capacity type.',
    labelNames: ['capacity'] as const,
    registers,
  });
  const pollErrors = new Counter({
    name: `${p}provider_poll_errors_total`,
    help: 'Failed provider polls by watch (notices, prices), by provider instance and capability.',
    labelNames: ['provider', 'capability'] as const,
    registers,
  });
  const phases = new Gauge({
    name: `${p}workloads`,
    help: 'Workloads of the fleet by lifecycle phase (pending, running, migrating, recovering, succeeded, failed, cancelled, ...).',
    labelNames: ['phase'] as const,
    registers,
  });
  const restarts = new Counter({
    name: `${p}workload_restarts_total`,
    help: 'Workload restarts: kind failure counts against backoffLimit, kind preemption (recoveries) never does.',
    labelNames: ['kind'] as const,
    registers,
  });
  for (const ph of PHASES) phases.set({ phase: ph }, 0);
  for (const k of ['failure', 'preemption']) restarts.inc({ kind: k }, 0);
  const buildInfo = new Gauge({
    name: `${p}build_info`,
    help: 'Always 1; the labels say which spotfleet and Node.js run.',
    labelNames: ['version', 'node_version'] as const,
    registers,
  });
  const lastSuccess = new Gauge({
    name: `${p}last_successful_reconcile_timestamp_seconds`,
    help: 'Unix time of the last reconcile that succeeded (0 until the first one): alert on time() minus this.',
    registers,
  });
  // Series that should read 0 rather than be absent before the first event: a rate() or an alert
  // over a series that does not exist yet sees nothing, not zero.
  buildInfo.set({ version: opts.version ?? spotfleetVersion(), node_version: process.version }, 1);
  lastSuccess.set(0);
  for (const c of CAPACITY_TYPES) cost.set({ capacity: c }, 0);
  queueDepth.set(0);
  for (const outcome of ['ok', 'error']) reconcileDuration.zero({ outcome });
  for (const reason of opts.reconcileErrorReasons ?? DEFAULT_ERROR_REASONS) reconcileErrors.inc({ reason }, 0);
  for (const cloud of opts.noticeSources ?? DEFAULT_NOTICE_SOURCES) {
    for (const kind of NOTICE_KINDS) notices.inc({ cloud, kind }, 0);
    noticeToSignal.zero({ cloud });
  }
  for (const outcome of MIGRATION_OUTCOMES) {
    migrations.inc({ outcome }, 0);
    downtime.zero({ outcome });
  }
  for (const pr of opts.providers ?? []) for (const capability of pr.capabilities) pollErrors.inc({ provider: pr.name, capability }, 0);

  const finite = (x: number): boolean => Number.isFinite(x) && x >= 0;

  return {
    registry,
    contentType: registry.contentType,
    observeReconcile(seconds, ok) {
      if (finite(seconds)) reconcileDuration.observe({ outcome: ok ? 'ok' : 'error' }, seconds);
      if (ok) lastSuccess.set(now() / 1000);
    },
    reconcileError(reason) {
      reconcileErrors.inc({ reason });
    },
    setQueueDepth(depth) {
      if (finite(depth)) queueDepth.set(depth);
    },
    noticeReceived(cloud, kind) {
      notices.inc({ cloud, kind });
    },
    observeNoticeToSignal(seconds, cloud) {
      if (finite(seconds)) noticeToSignal.observe({ cloud }, seconds);
    },
    migrationFinished(outcome, downtimeSeconds) {
      migrations.inc({ outcome });
      if (downtimeSeconds !== undefined && finite(downtimeSeconds)) downtime.observe({ outcome }, downtimeSeconds);
    },
    setFleetCostPerHour(byCapacity) {
      for (const c of CAPACITY_TYPES) {
        const v = byCapacity[c] ?? 0;
        cost.set({ capacity: c }, Number.isFinite(v) ? v : 0);
      }
    },
    providerPollError(provider, capability) {
      pollErrors.inc({ provider, capability });
    },
    setWorkloadPhases(byPhase) {
      for (const ph of new Set([...PHASES, ...Object.keys(byPhase)])) phases.set({ phase: ph }, byPhase[ph] ?? 0);
    },
    workloadRestarted(kind) {
      restarts.inc({ kind });
    },
    describeFleet(fleet, providers) {
      // `fleet` from the options wins (it was given explicitly); default labels apply at render.
      if (opts.fleet === undefined) registry.setDefaultLabels({ ...labels, fleet });
      for (const pr of providers) for (const capability of pr.capabilities) pollErrors.inc({ provider: pr.name, capability }, 0);
    },
    render() {
      return registry.metrics();
    },
  };
}
