// What a plan is: one data object that the text, JSON and markdown renderers and `apply` all read.
// Actions form a DAG (deps by id); resource changes group them by address for humans.
import type { CapacityType, CheckpointInfo } from '../core/types.js';
import type { Money, Reason, Violation } from '../policy/types.js';

export const PLAN_FORMAT_VERSION = '1.0';

export type ActionKind = 'acquire' | 'start' | 'checkpoint' | 'stop' | 'transfer' | 'release' | 'adopt' | 'forget' | 'alert';

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

export interface AcquireAction extends ActionBase {
  kind: 'acquire';
  provider: string;
  pool: string;
  capacity: CapacityType;
  gpuModel: string;
  gpus: number;
  zone?: string;
  maxPricePerGpuHour?: number;
  bidPerGpuHour?: number;
  offerId?: string;
  idempotencyKey: string;
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

export type Action = AcquireAction | StartAction | CheckpointAction | StopAction | TransferAction | ReleaseAction | AdoptAction | ForgetAction;

export type ChangeKind = 'create' | 'update' | 'replace' | 'delete' | 'read' | 'no-op';

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
  kind: 'died' | 'vanished' | 'unmanaged' | 'duplicate' | 'moved' | 'evicted';
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
  summary: { add: number; change: number; destroy: number };
  cost: { beforePerHour: number; afterPerHour: number };
  /** Targeted plan (--target): only these addresses. */
  targets?: string[];
  /** Results of the `scope: plan` policy rules, run on the plan's JSON (absent: none ran). */
  policyViolations?: Violation[];
  /** Checkpoints known per workload (for rendering transfers). */
  checkpoints?: Record<string, CheckpointInfo>;
}

export function planHasChanges(plan: Plan): boolean {
  return plan.actions.length > 0;
}
