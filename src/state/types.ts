// What the state file holds: Terraform's version/serial/lineage discipline, resources by address,
// and pending-operation records written before each side effect (Pulumi's idea), so a crash leaves
// a record, never an orphan. Workload history (moves, preemptions) feeds the policy's anti-flap.
import type { CapacityType, CheckpointInfo } from '../core/types.js';

export const STATE_VERSION = 1;

export interface MoveRecord {
  /** ms epoch. */
  at: number;
  from?: string;
  to: string;
  reason: string;
  /** Step timings of the move, ms. */
  timings?: Record<string, number>;
  downtimeMs?: number;
  lostWorkMs?: number;
  costUsd?: number;
  outcome: 'ok' | 'failed' | 'lost-work';
}

export interface WorkloadRecord {
  type: 'workload';
  address: string;
  name: string;
  status: 'running' | 'stopped';
  provider?: string;
  node?: string;
  instanceId?: string;
  pool?: string;
  capacity?: CapacityType;
  zone?: string;
  /** USD per GPU-hour at placement. */
  pricePerGpuHour?: number;
  /** The on-demand price per GPU-hour when it was placed: the ledger's counterfactual. */
  onDemandPricePerGpuHour?: number;
  gpus: number;
  specHash?: string;
  /** ms epoch when it started on its current placement. */
  since?: number;
  /** ms of useful work done before the current run (the current run adds now − since). */
  doneMs: number;
  /** Counts moves; part of idempotency keys so a retried step reuses the same lease/instance. */
  generation: number;
  lastCheckpoint?: CheckpointInfo;
  preemptions: number[];
  lastMoveAt?: number;
  pinnedOnDemandUntil?: number;
  pinnedReason?: string;
  moves: MoveRecord[];
  /** Measured migration overhead from drill, ms. */
  measuredOverhead?: { checkpointMs: number; transferMs: number; restartMs: number; at: number };
}

export interface LeaseRecord {
  type: 'lease';
  address: string;
  provider: string;
  pool: string;
  leaseId: string;
  node?: string;
  capacity: CapacityType;
  zone?: string;
  gpus: number;
  pricePerHour: number;
  acquiredAt: number;
  idempotencyKey: string;
}

export type ResourceRecord = WorkloadRecord | LeaseRecord;

export interface PendingOperation {
  id: string;
  address: string;
  action: string;
  /** ms epoch. */
  startedAt: number;
  pid: number;
  /** Plain data needed to recognise the effect later (idempotency key, node, lease). */
  data: Record<string, string | number | boolean>;
}

/** One segment of time a workload ran on some capacity, for the savings ledger. */
export interface LedgerEntry {
  workload: string;
  capacity: CapacityType;
  pool?: string;
  node?: string;
  /** ms epoch. */
  from: number;
  to: number;
  gpus: number;
  pricePerGpuHour: number;
  /** The on-demand price per GPU-hour at the time: the counterfactual. */
  onDemandPricePerGpuHour: number;
}

export interface StateFile {
  version: number;
  serial: number;
  lineage: string;
  fleet: string;
  resources: Record<string, ResourceRecord>;
  pending: PendingOperation[];
  ledger: LedgerEntry[];
}
