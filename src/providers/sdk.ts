// The provider SDK: the one small interface every provider implements, with optional capabilities.
// Built-in providers (providers/<name>/) import only this folder and src/core, exactly as an
// external plugin package would. Requests and results are plain serialisable data.
//
// SDK 1.1 adds, backwards compatibly (optional fields a 1.0 provider ignores):
// StartRequest.passEnv; VerifyRequest.exclude, command, commandTimeoutMs and keep; and states the
// readiness rule of RuntimeCapability.signal. A caller cannot tell a 1.0 storage from a 1.1 one, so
// it checks that a returned checkpoint is not one it excluded. TransferRequest.lowPriority and
// signal, and TransferResult.sentBytes, are optional the same way (a pre-copy for an early warning),
// and so is TransferRequest.onProgress (live bytes for progress lines; a storage may never call it).
import type {
  CapacityType,
  CheckpointInfo,
  Lease,
  NodeAccess,
  NodeInfo,
  Notice,
  NoticeKind,
  Offer,
  PriceQuote,
  WorkloadInstance,
} from '../core/types.js';

/** A JSON Schema (draft 2020-12 or 07) for a provider's `config`. */
export type JsonSchema = Record<string, unknown>;

/** Structured logger handed to providers; never log secrets. */
export interface ProviderLogger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export interface ProviderContext {
  /** Instance name from the spec (`lab`, `market`). */
  name: string;
  /** Fleet name (metadata.name). */
  fleet: string;
  /** Folder the spec's relative paths resolve against. */
  specDir: string;
  /** Private folder for this provider instance's own records (`.spotfleet/providers/<name>`). */
  dataDir: string;
  log: ProviderLogger;
  /** Wall clock in ms; injectable for tests. */
  now(): number;
  /** Environment variables (tokens come from here, never from the spec). */
  env: Readonly<Record<string, string | undefined>>;
  /**
   * The fleet's pools that use this provider instance, with how their nodes are reached
   * (`pools[].node`). A capacity provider needs this outside `acquire` too: a `watch` in another
   * process lists, reaches and runs work on the nodes of leases an earlier `apply` bought.
   */
  pools?: readonly ProviderPool[];
}

/** A pool as its provider sees it. */
export interface ProviderPool {
  name: string;
  capacity: CapacityType;
  gpuModel?: string;
  zones?: string[];
  /** USD per GPU-hour. */
  maxPricePerHour?: number;
  node?: NodeAccess;
}

/** A problem a provider finds in a pool that uses it (`ProviderFactory.checkPool`). */
export interface PoolProblem {
  /** JSON pointer inside the pool item: `` (the pool), `/node`, `/gpuModel`, `/provider`, ... */
  path: string;
  message: string;
  expected?: string;
  severity?: 'error' | 'warning';
}

/** What a plugin module exports (as `provider` or default export). */
export interface ProviderFactory<C = Record<string, unknown>> {
  type: string;
  /** One line for `spotfleet providers`. */
  description: string;
  configSchema: JsonSchema;
  create(config: C, ctx: ProviderContext): Provider | Promise<Provider>;
  /**
   * Offline checks of a pool that uses this provider (run by `validate` after the config passed
   * its schema): a pool a capacity provider cannot buy nodes for (no instance type of its GPU
   * model, no machine image, no `node` saying how to reach them) is an error, not "No changes".
   */
  checkPool?(config: C, pool: ProviderPool): PoolProblem[];
}

export interface Provider {
  readonly name: string;
  readonly type: string;
  capacity?: CapacityCapability;
  nodes?: NodesCapability;
  runtime?: RuntimeCapability;
  notices?: NoticesCapability;
  storage?: StorageCapability;
  alerts?: AlertsCapability;
  /** Drills and demos only: simulated evictions (`spotfleet sim`). Never called by apply or watch. */
  simulation?: SimulationCapability;
  /** Release connections, timers; called once when the CLI or watch is done. */
  close?(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// capacity: markets (sim, molt, aws). Acquire turns money into a lease that becomes a node.

export interface PriceQuery {
  gpuModel?: string;
  capacity?: CapacityType;
  zones?: string[];
}

export interface AcquireRequest {
  pool: string;
  capacity: CapacityType;
  gpuModel: string;
  gpus: number;
  zone?: string;
  /** USD per GPU-hour cap (pool maxPricePerHour, and never above on-demand for spot). */
  maxPricePerGpuHour?: number;
  /** Bid price per GPU-hour, for markets that take bids. */
  bidPerGpuHour?: number;
  offerId?: string;
  durationHours?: number;
  /** Same key, same lease: acquire must be idempotent so a retried apply never buys twice. */
  idempotencyKey: string;
  labels: Record<string, string>;
}

export interface CapacityCapability {
  prices(query: PriceQuery): Promise<PriceQuote[]>;
  offers?(query: PriceQuery & { minGpus?: number; maxPricePerGpuHour?: number }): Promise<Offer[]>;
  acquire(req: AcquireRequest): Promise<Lease>;
  /** Idempotent: releasing a lease that is already gone succeeds. */
  release(leaseId: string): Promise<void>;
  leases(): Promise<Lease[]>;
  renew?(leaseId: string, durationHours: number): Promise<Lease>;
}

// ---------------------------------------------------------------------------------------------
// nodes: inventory (static hosts, or the nodes behind leases).

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface NodesCapability {
  list(): Promise<NodeInfo[]>;
  /** Runs argv on the node, without a shell; every argument is passed as data. */
  exec?(node: string, argv: string[], opts?: { timeoutMs?: number }): Promise<ExecResult>;
}

// ---------------------------------------------------------------------------------------------
// runtime: workloads on nodes.

export interface StartRequest {
  fleet: string;
  workload: string;
  node: string;
  image?: string;
  command?: string[];
  /** The spec's `env`. Runtimes never add spotfleet's own environment to it (it holds secrets). */
  env: Record<string, string>;
  /**
   * Names of variables whose values the runtime copies from spotfleet's environment
   * (`ProviderContext.env`) into the workload's: the spec's `passEnv` allow-list. Optional (added
   * in SDK 1.1); unset variables are left out, and `env` wins over a passed value.
   */
  passEnv?: string[];
  gpus: number;
  /** Where the workload writes checkpoints, as it sees the path. */
  checkpointPath?: string;
  /** When set, the workload resumes: the resume env var is set to this path. */
  resumeFrom?: { env: string; path: string };
  labels: Record<string, string>;
  specHash: string;
  /** Same key, same instance: start must be idempotent. */
  idempotencyKey: string;
}

export interface RuntimeCapability {
  /** Every instance this provider runs for the fleet (running and recently exited). */
  list(): Promise<WorkloadInstance[]>;
  start(req: StartRequest): Promise<WorkloadInstance>;
  /**
   * Sends a (checkpoint) signal. It must never reach a default handler: a runtime sends it only
   * once the workload catches it (on Linux, /proc/PID/status `SigCgt`), waiting a bounded time
   * for that, and otherwise rejects with a retryable ProviderError saying it was not sent. A
   * default handler would end the workload (SIGUSR1 in Python) or, in Node.js, open its inspector.
   */
  signal(node: string, instanceId: string, signal: string): Promise<void>;
  /** SIGTERM, then SIGKILL after graceMs. Idempotent: stopping a stopped instance succeeds. */
  stop(node: string, instanceId: string, graceMs: number): Promise<{ exitCode?: number }>;
  logs?(node: string, instanceId: string, opts?: { tailLines?: number }): Promise<string>;
  /** Forget an exited instance (remove its record / container). */
  remove?(node: string, instanceId: string): Promise<void>;
  /**
   * One instance, cheaply (without listing every node): undefined when the runtime does not know
   * it. Waiting for a checkpoint uses it to notice at once that the workload exited.
   */
  inspect?(node: string, instanceId: string): Promise<WorkloadInstance | undefined>;
}

// ---------------------------------------------------------------------------------------------
// notices: eviction signals.

/**
 * A fleet-level notice source: one stream for every node of the provider (the EC2 events that
 * EventBridge puts on an SQS queue, the Compute API's preemption operations), instead of one poll
 * per node. Each notice's `node` is the cloud's identity of the instance (EC2 instance id, GCE
 * instance name); watch matches it to the provider's nodes by id or leaseId, and to any node whose
 * `meta.instanceId` is that identity.
 */
export interface FleetNoticeSource {
  /**
   * Calls onNotice for each notice until `signal` aborts, then resolves. Rejects (or resolves
   * before the abort) when the source fails: watch then polls the nodes one by one again and
   * retries the source after a back-off.
   */
  watch(onNotice: (n: Notice) => void, signal: AbortSignal): Promise<void>;
}

export interface NoticesCapability {
  /** One poll of one node. Must be cheap: watch calls it every couple of seconds per spot node. */
  poll(node: NodeInfo): Promise<Notice[]>;
  /** Fleet-level source; while it runs, the provider's nodes are not polled one by one. */
  fleet?: FleetNoticeSource;
  /** Confirm a notice to the cloud when configured (Azure StartRequests). */
  acknowledge?(node: NodeInfo, notice: Notice): Promise<void>;
  /**
   * Push-style readers (GCE `wait_for_change` long-poll): calls onNotice for each new notice until
   * `signal` aborts, then resolves; handles its own errors and retries. The watch loop uses this
   * when present, and `poll` otherwise.
   */
  watch?(node: NodeInfo, onNotice: (n: Notice) => void, signal: AbortSignal): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// simulation: drills, demos and tests (local, sim). Kept apart from `notices` so the production
// contract holds only what watch uses; a provider offering it also offers `notices`, whose poll()
// reports what `evict` posts.

export interface SimulationCapability {
  /**
   * Posts a simulated eviction notice for a node (`spotfleet sim evict`). notices.poll() returns
   * it until the deadline; after the deadline the node is dead: its workloads are killed and it
   * reports state `terminated`.
   */
  evict(node: NodeInfo, opts: { inMs: number; kind?: NoticeKind }): Promise<Notice>;
  /** Brings a node that a simulated notice terminated back (`spotfleet sim restore`); static nodes only. */
  restore?(node: NodeInfo): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// storage: checkpoints.

export interface VerifyRequest {
  node: NodeInfo;
  workload: string;
  /** Only a checkpoint newer than this (ISO-8601) counts; absent = the newest at all. */
  since?: string;
  marker?: string;
  minSizeBytes?: number;
  /**
   * Checkpoint paths (as verify returned them) that must not be returned, e.g. one a resume failed
   * on: the newest other checkpoint that passes is returned instead (null when none). Optional
   * (SDK 1.1); a storage whose unit of checkpoint is the whole workload folder (ssh nodes) returns
   * null when that folder is excluded.
   */
  exclude?: string[];
  /**
   * The workload's `checkpoint.verify` argv. Run on the node where the checkpoint lives (never
   * through a shell; over ssh every argument is quoted), newest candidate first, with the
   * checkpoint's path as its last argument and in CHECKPOINT_PATH; the first that exits 0 is
   * returned. Optional (SDK 1.1); absent, the file checks above decide alone.
   */
  command?: string[];
  /** Time limit of one run of `command`, ms. Default 60 s; a run cut off counts as a failed check. */
  commandTimeoutMs?: number;
  /**
   * Keep only this many newest finished checkpoints: once verify returns one, older ones beyond
   * that many are deleted (never the one returned, never one in progress). 0 or absent keeps all.
   * Optional (SDK 1.1).
   */
  keep?: number;
}

export interface TransferRequest {
  workload: string;
  from: NodeInfo;
  to: NodeInfo;
  /** The checkpoint to move (from verify). */
  checkpoint: CheckpointInfo;
  /**
   * A pre-copy ahead of a possible eviction (an early warning): it must yield to everything else on
   * the nodes and the link (rsync's bandwidth limit on SSH nodes), so it never delays an
   * eviction's own checkpoint. Optional: a storage that ignores it copies as usual.
   */
  lowPriority?: boolean;
  /** Abandons the copy (the eviction came; its own transfer takes over). Optional to honour. */
  signal?: AbortSignal;
  /**
   * Live progress while the copy runs, for progress lines and logs: at most about once a second.
   * Optional to honour (a storage may report only at the end, or never). The caller's callback
   * returns quickly and never throws.
   */
  onProgress?: (p: TransferProgress) => void;
}

/** How far a running transfer is. */
export interface TransferProgress {
  /** Bytes handled so far in this copy (sent, or matched against what the target already had). */
  bytes: number;
  /** The size of what is being copied, when known; files already in place count here but not in `bytes`. */
  totalBytes?: number;
  /** The current rate, bytes per second, when the copier measures one. */
  bytesPerSec?: number;
}

export interface TransferResult {
  /** The checkpoint as it now stands on the target, verified. */
  checkpoint: CheckpointInfo;
  bytes: number;
  durationMs: number;
  /**
   * Of `bytes`, how many crossed the link; the rest the target already had (a pre-copied earlier
   * checkpoint, rsync's matched data). Optional: absent means all of them.
   */
  sentBytes?: number;
  /** True when nothing had to move (shared storage, or the same node). */
  skipped: boolean;
}

export interface StorageCapability {
  verify(req: VerifyRequest): Promise<CheckpointInfo | null>;
  /** Copies the checkpoint; never deletes the source before the target copy verifies. */
  transfer(req: TransferRequest): Promise<TransferResult>;
  /** Can this provider move checkpoints between these two nodes? */
  canTransfer?(from: NodeInfo, to: NodeInfo): boolean;
}

// ---------------------------------------------------------------------------------------------
// alerts.

export interface AlertMessage {
  rule: string;
  severity: 'info' | 'warning' | 'critical';
  status: 'firing' | 'resolved';
  summary: string;
  address?: string;
  fleet: string;
  fields?: Record<string, string | number | boolean>;
  /** ISO-8601. */
  at: string;
}

export interface AlertsCapability {
  send(alert: AlertMessage): Promise<void>;
}

/** Names of the capabilities, for `spotfleet providers` and error messages. */
export const CAPABILITIES = ['capacity', 'nodes', 'runtime', 'notices', 'storage', 'alerts'] as const;
export type CapabilityName = (typeof CAPABILITIES)[number];

export function capabilitiesOf(p: Provider): CapabilityName[] {
  return CAPABILITIES.filter((c) => p[c] !== undefined);
}
