// The resolved fleet: what `loadFleet` returns after YAML → schema → semantic rules, with defaults
// applied, durations in milliseconds and money in USD/h. The engine, the policy and watch read only
// this; the raw YAML shape lives in fleet.schema.json.
import type { SourcePos } from '../core/errors.js';
import type { CapacityPreference, CapacityType, NodeAccess, WorkloadClass } from '../core/types.js';

export type RestartPolicy = 'Never' | 'OnFailure' | 'Always';

export interface ProviderInstanceSpec {
  /** Instance name: the key under `providers:`. */
  name: string;
  /** Built-in type (`local`, `sim`, `ssh`, ...) or, with `package`, the external plugin's type. */
  type: string;
  /** npm package name of an external provider, when not built in. */
  package?: string;
  /** Raw config, validated against the provider's own schema when the provider loads. */
  config: Record<string, unknown>;
  pos: SourcePos;
  /** Where `config:` starts, so config errors point into the fleet file. */
  configPos: SourcePos;
}

export interface PoolSpec {
  name: string;
  provider: string;
  capacity: CapacityType;
  gpuModel?: string;
  /** USD per GPU-hour; no bid or acquire above it. */
  maxPricePerHour?: number;
  /** Zones this pool may use; all the provider offers when absent. */
  zones?: string[];
  /** Keep this many nodes ready in this pool so an eviction needs no acquire. */
  warmStandby?: number;
  /**
   * How long a lease nothing runs on is kept (its node can take the next workload) before it is
   * released. Absent or 0: released at once; warmStandby is what keeps idle nodes ready.
   */
  idleReleaseMs?: number;
  /** How workloads here answer an early warning (rebalance, maintenance); `auto` prices the three. */
  onWarning: 'auto' | 'prepare' | 'move' | 'ignore';
  labels: Record<string, string>;
  /** How the nodes this pool buys are reached (capacity providers), with defaults applied. */
  node?: NodeAccess;
  pos: SourcePos;
}

export interface CheckpointContract {
  /** Path inside the workload where it writes checkpoints. */
  path: string;
  /** Signal that asks the workload to checkpoint now, e.g. SIGUSR1. */
  signal: string;
  /** Time between SIGTERM and SIGKILL. */
  stopGraceMs: number;
  /** Env var that carries the checkpoint to resume from. */
  resumeEnv: string;
  /** Alert when the newest checkpoint is older than this. */
  maxAgeMs?: number;
  /** Only a file with this name counts as a finished checkpoint (optional marker). */
  marker?: string;
  minSizeBytes?: number;
  /** Checkpoints live on storage every node sees (NFS, bucket mount): no transfer. */
  shared?: boolean;
  /** Size of one checkpoint, GB: what a move across regions pays egress on. */
  sizeGB?: number;
  /**
   * argv run on the node where a checkpoint lives to check it (its path is the last argument and
   * CHECKPOINT_PATH); exit 0 means usable. Absent: the file checks alone (marker, minSize).
   */
  verify?: string[];
  /** Keep only this many newest checkpoints; 0 keeps all. Absent: DEFAULT_CHECKPOINT_KEEP. */
  keep?: number;
}

export interface FallbackRule {
  /** `on-demand`, or the name of another pool. */
  to: string;
  revertToSpot: boolean;
  minDwellMs: number;
}

export interface Thresholds {
  minSavingsPerHour: number;
  minRuntimeMs: number;
  spotPriceAlertRatio: number;
  /** More than this many preemptions within `preemptionWindowMs` keeps a workload on on-demand for `cooldownMs`. */
  maxPreemptions: number;
  preemptionWindowMs: number;
  cooldownMs: number;
}

export interface MigrationOverhead {
  checkpointMs: number;
  transferMs: number;
  restartMs: number;
}

export interface WorkloadSpec {
  name: string;
  image?: string;
  /** argv; never run through a shell. */
  command?: string[];
  env: Record<string, string>;
  /**
   * Names of variables passed from spotfleet's environment (the allow-list `passEnv`, the
   * workload's and defaults' merged, sorted). Values are read by the runtime, never stored here.
   */
  passEnv?: string[];
  gpus: number;
  gpuModel?: string;
  class: WorkloadClass;
  capacity: CapacityPreference;
  expectedDurationMs?: number;
  /** ISO-8601. */
  deadline?: string;
  fallback: FallbackRule;
  /** Pools this workload may run in; all that fit when absent. */
  pools?: string[];
  labels: Record<string, string>;
  checkpoint?: CheckpointContract;
  /** Configured migration overhead (drill measurements override it). */
  overhead?: MigrationOverhead;
  /** Critical workloads may keep a warm standby of their own. */
  critical: boolean;
  /** What a non-zero exit does (Kubernetes' names); Always makes the workload a service. */
  restartPolicy: RestartPolicy;
  /** Failed exits allowed before the workload is failed; preemptions never count. */
  backoffLimit: number;
  /** Stable hash of the fields that require a restart when they change. */
  specHash: string;
  pos: SourcePos;
}

export type Severity = 'info' | 'warning' | 'critical';

export interface AlertRuleSpec {
  name: string;
  /** CEL expression, or one of the built-in event names (preemption, migration-failed, ...). */
  when: string;
  severity: Severity;
  notify: string[];
  pos: SourcePos;
  /** Where the `when` expression starts (inside the quotes when quoted), for CEL errors. */
  whenPos?: SourcePos;
}

export interface AlertSinkSpec {
  name: string;
  type: 'log' | 'webhook' | 'command' | 'provider';
  /** For webhook: URL (may reference env as ${VAR}); for command: argv; for provider: instance name. */
  url?: string;
  command?: string[];
  provider?: string;
  pos: SourcePos;
}

export interface Fleet {
  apiVersion: 'spotfleet.dev/v1';
  name: string;
  labels: Record<string, string>;
  /** Absolute path of the spec file or folder that was loaded. */
  source: string;
  /** Folder relative paths in the spec resolve against (the file's folder, or the folder itself). */
  dir: string;
  files: string[];
  providers: ProviderInstanceSpec[];
  pools: PoolSpec[];
  workloads: WorkloadSpec[];
  defaults: {
    checkpoint?: CheckpointContract;
    thresholds: Thresholds;
  };
  alerts: AlertRuleSpec[];
  sinks: AlertSinkSpec[];
  /** Absolute paths of policy files. */
  policies: string[];
  /** Budget in USD per hour for the whole fleet, when set. */
  budgetPerHour?: number;
  /** Where the state lives; absent means the local file (the embedded default). */
  backend?: BackendSpec;
}

/**
 * The state backend as the spec names it. A postgres URL stays a template (`${SPOTFLEET_PG_URL}`)
 * here: it is resolved from the environment only when the store opens, so the secret never enters
 * the resolved fleet, plans or logs.
 */
export type BackendSpec =
  | { type: 'local'; pos: SourcePos }
  | { type: 'postgres'; url: string; schema?: string; pos: SourcePos; urlPos: SourcePos };

/** A warning found while loading a spec that is still valid. */
/** A file in a fleet folder that is not part of the fleet document (and why). */
export interface SkippedFile {
  file: string;
  reason: string;
}

export interface LoadResult {
  fleet: Fleet;
  warnings: import('../core/errors.js').SpecProblem[];
  /** Files of a fleet folder that are not `kind: Fleet` documents: policy sets (loaded as policies) and other YAML. */
  skipped: SkippedFile[];
  /** The fleet's policy files (`fleet.policies`), compiled once here; absent when it has none. */
  policies?: import('../policy/policy-set.js').PolicySet;
}
