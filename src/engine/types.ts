// What a plan is: one data object that the text, JSON and markdown renderers and `apply` all read.
// Actions form a DAG (deps by id); resource changes group them by address for humans.
import type { CapacityType } from '../core/types.js';
import type { AcquireRequest } from '../providers/sdk.js';
import type { Money, Reason, Violation } from '../policy/types.js';
import type { ExitRecord, MoveInFlight, PendingReason, WorkloadPhase } from '../state/types.js';

export const PLAN_FORMAT_VERSION = '1.0';

export type ActionKind = 'acquire' | 'start' | 'checkpoint' | 'stop' | 'transfer' | 'release' | 'adopt' | 'forget' | 'record' | 'remove';

/** Where a workload runs or will run. */
export interface PlacementRef {
  provider: string;
  node?: string;
  pool?: string;
  capacity: CapacityType;
  zone?: string;
  pricePerGpuHour: number;
  /** The lease this placement needs acquired first (action id), when new capacity. */
  leaseAction?: string;
}

export interface ActionBase {
  id: string;
  kind: ActionKind;
  address: string;
  deps: string[];
  /** One line for progress output. */
  summary: string;
}

/** What an acquire asks its provider for: the SDK's request, less the labels the step adds. */
export type AcquireSpec = Omit<AcquireRequest, 'labels'>;

export interface AcquireAction extends ActionBase {
  kind: 'acquire';
  provider: string;
  /** The request as the provider gets it (the step adds the fleet's labels). */
  request: AcquireSpec;
  /** The workload that asked for it. */
  forWorkload: string;
}

export interface StartAction extends ActionBase {
  kind: 'start';
  workload: string;
  target: PlacementRef;
  /** Resume: take the newest checkpoint of this workload (on the target, after transfer). */
  resume: boolean;
  idempotencyKey: string;
  generation: number;
  /** The lifecycle the key belongs to (recorded, so later keys of the same lifecycle follow on). */
  incarnation: string;
  /** Resume only from these checkpoints' successors: paths a failed resume marked bad. */
  excludeCheckpoints?: string[];
  /** A restart after a failure or a preemption (counted in the record's history, not a move). */
  restart?: 'failure' | 'preemption' | 'rerun';
  /** When moving: where it came from (label migrated_from) and the capacity it had. */
  migratedFrom?: string;
  originalType?: CapacityType;
  moveReason?: string;
  /** The move is because the source node was evicted (counts as a preemption for anti-flap). */
  evicted?: boolean;
}

export interface CheckpointAction extends ActionBase {
  kind: 'checkpoint';
  workload: string;
  provider: string;
  node: string;
  instanceId: string;
  /** ms budget to wait for a verified checkpoint. */
  waitMs: number;
}

export interface StopAction extends ActionBase {
  kind: 'stop';
  workload: string;
  provider: string;
  node: string;
  instanceId: string;
  graceMs: number;
  /** Stopping a duplicate or an instance already recorded elsewhere: do not touch the state record. */
  duplicate?: boolean;
  /** The workload is removed from the spec (state record goes after stop). */
  removing?: boolean;
  /** destroy: the workload is cancelled (its record stays, so the next apply resumes it). */
  cancel?: boolean;
  /** The move this stop begins: recorded in the state before the stop, so a crash can finish it. */
  move?: Omit<MoveInFlight, 'step' | 'checkpoint' | 'startedAt'>;
}

export interface TransferAction extends ActionBase {
  kind: 'transfer';
  workload: string;
  from: { provider: string; node: string };
  /** Target node id, or the acquire action whose lease becomes the node. */
  to: PlacementRef;
}

export interface ReleaseAction extends ActionBase {
  kind: 'release';
  provider: string;
  pool: string;
  leaseId: string;
}

/** Record a lease or instance found running with our labels (crash recovery, import). */
export interface AdoptAction extends ActionBase {
  kind: 'adopt';
  record: 'workload' | 'lease';
  provider: string;
  node?: string;
  instanceId?: string;
  leaseId?: string;
  pool?: string;
}

export interface ForgetAction extends ActionBase {
  kind: 'forget';
}

/**
 * Records a lifecycle transition the plan observed or decided, with no effect outside the state:
 * an instance's end (succeeded, failed, preempted), a workload that waits (pending, with why), a
 * workload cancelled by destroy, a move that is over.
 */
export interface RecordAction extends ActionBase {
  kind: 'record';
  workload: string;
  phase: WorkloadPhase;
  pendingReason?: PendingReason;
  /** An instance end to record (closes its ledger segment at the exit time). */
  exit?: ExitRecord;
  countFailure?: boolean;
  countRecovery?: boolean;
  /** The move in flight is over (or abandoned). */
  clearMove?: boolean;
  /** Only when the record still names this instance (or none): a newer writer wins. */
  expectInstance?: string;
  /** Why, for the log and the alert. */
  message: string;
}

/**
 * Removes an exited instance of ours from its node (the container, or the process record and its
 * output) once it ended more than a day ago (EXITED_KEPT_MS); each workload keeps its newest exited
 * instance (how its last run ended, its logs). Checkpoints live apart and are not touched.
 */
export interface RemoveAction extends ActionBase {
  kind: 'remove';
  workload: string;
  provider: string;
  node: string;
  instanceId: string;
}

export type Action = AcquireAction | StartAction | CheckpointAction | StopAction | TransferAction | ReleaseAction | AdoptAction | ForgetAction | RecordAction | RemoveAction;

/** `pending`: the workload should run but cannot yet (no capacity, waiting for spot, back-off, policy). */
export type ChangeKind = 'create' | 'update' | 'replace' | 'delete' | 'read' | 'no-op' | 'pending';

/** One address's change, as a human reads it. */
export interface ResourceChange {
  address: string;
  change: ChangeKind;
  /** `+`, `~`, `-/+`, `-`, `<=`. */
  before?: { node?: string; capacity?: CapacityType; pool?: string; zone?: string; pricePerHour?: number };
  after?: { node?: string; capacity?: CapacityType; pool?: string; zone?: string; pricePerHour?: number };
  reasons: Reason[];
  money?: Money;
  actions: string[];
  violations: Violation[];
}

export interface DriftItem {
  address: string;
  kind: 'died' | 'vanished' | 'unmanaged' | 'duplicate' | 'moved' | 'evicted' | 'exited';
  message: string;
}

export interface Plan {
  formatVersion: string;
  fleet: string;
  /** ISO-8601 when the plan was made (not shown in text output). */
  createdAt: string;
  /** State the plan was made against: a saved plan is refused when these moved. */
  state: { lineage: string; serial: number };
  specHash: string;
  changes: ResourceChange[];
  actions: Action[];
  drift: DriftItem[];
  warnings: string[];
  summary: { add: number; change: number; destroy: number; pending: number };
  cost: { beforePerHour: number; afterPerHour: number };
  /** Targeted plan (--target): only these addresses. */
  targets?: string[];
  /** Results of the `scope: plan` policy rules, run on the plan's JSON (absent: none ran). */
  policyViolations?: Violation[];
}

/**
 * True when the fleet does not match its spec: something would change, or a workload that should
 * run is pending. `plan -detailed-exitcode` exits 2 on it; "No changes" is printed only when false.
 */
export function planHasChanges(plan: Plan): boolean {
  return plan.changes.some((c) => c.change !== 'no-op' && c.change !== 'read');
}

/** True when apply has something to do, state records included (a finished job to record, say). */
export function planHasActions(plan: Plan): boolean {
  return plan.actions.length > 0;
}
