// What the state file holds: Terraform's version/serial/lineage discipline, resources by address,
// and pending-operation records written before each side effect (Pulumi's idea), so a crash leaves
// a record, never an orphan. Workload history (moves, preemptions) feeds the policy's anti-flap.
import type { CapacityType, CheckpointInfo } from '../core/types.js';
import type { PoolHistory, PreparedMove, WarningRecord } from '../policy/warning.js';

/** Version 2 added the workload lifecycle (phase, exits, restarts, moves in flight, fleet mode). */
export const STATE_VERSION = 2;

/**
 * Where a workload is in its lifecycle. A workload is a job unless its restart policy says
 * otherwise: it is pending until placed, runs, may be checkpointed and moved (`migrating`, with the
 * move recorded) or restarted after a failure or a preemption (`recovering`), and ends in one of
 * the terminal phases. Every command reads this one record.
 */
export type WorkloadPhase =
  | 'pending'
  | 'starting'
  | 'running'
  | 'checkpointing'
  | 'migrating'
  | 'recovering'
  | 'succeeded'
  | 'failed'
  | 'cancelled';

export const TERMINAL_PHASES: ReadonlySet<WorkloadPhase> = new Set(['succeeded', 'failed', 'cancelled']);

/** Why a workload waits. */
export type PendingReasonCode = 'no-capacity' | 'waiting-for-spot' | 'blocked-by-policy' | 'backoff' | 'not-applied' | 'refresh-skipped';

export interface PendingReason {
  code: PendingReasonCode;
  message: string;
  /** ms epoch: since when it waits for this reason. */
  since: number;
  /** ms epoch: when it may start again (back-off). */
  until?: number;
}

/** How an instance of the workload ended. */
export interface ExitRecord {
  instanceId: string;
  node: string;
  provider: string;
  /** Absent when the runtime does not know (the node died with it). */
  code?: number;
  /** ms epoch. */
  at: number;
  /** What spotfleet made of it. */
  outcome: 'succeeded' | 'failed' | 'preempted' | 'stopped';
}

/** A node's place in a move: where it ran, or where it goes. */
export interface MoveEnd {
  provider: string;
  node?: string;
  pool?: string;
  capacity?: CapacityType;
  zone?: string;
}

/**
 * A move in flight, recorded before the workload is stopped so that a crash between any two steps
 * leaves enough to finish it: where from, where to, why, the fallback rule that chose the target,
 * and the checkpoint it resumes from.
 */
export interface MoveInFlight {
  /** ms epoch the move began (the checkpoint signal or the decision). */
  startedAt: number;
  from: MoveEnd & { instanceId?: string };
  to: MoveEnd;
  reason: string;
  /** The source was evicted (a notice or a dead node): an emergency move. */
  evicted: boolean;
  /** The workload's `fallback.to` when the move began. */
  fallback: string;
  /** The last step that finished: stopped means the source no longer runs. */
  step: 'decided' | 'checkpointed' | 'stopped' | 'transferred';
  /** The verified checkpoint the workload resumes from. */
  checkpoint?: CheckpointInfo;
  /** ms epoch of the notice's deadline, when evicted by a notice. */
  deadline?: number;
}

/** One instance the workload ran as, for `logs --all-instances` and the history. */
export interface InstanceRef {
  provider: string;
  node: string;
  id: string;
  /** ms epoch. */
  startedAt: number;
  endedAt?: number;
  /** ms epoch it was removed from its node (a day after it exited; its output went with it). */
  removedAt?: number;
}

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
  /** The target was prepared for an early warning (acquired, checkpoint pre-copied): only the delta moved. */
  prepared?: boolean;
}

/** Whether the fleet should run (`active`, after apply) or nothing at all (`destroyed`). */
export interface FleetMode {
  mode: 'active' | 'destroyed';
  /** ms epoch. */
  at: number;
  /** Which command set it (`apply`, `destroy`), and where. */
  by: string;
}

export interface WorkloadRecord {
  type: 'workload';
  address: string;
  name: string;
  phase: WorkloadPhase;
  /** Set while pending or recovering: why it waits. */
  pendingReason?: PendingReason;
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
  /** Counts starts; part of idempotency keys so a retried step reuses the same lease/instance. */
  generation: number;
  /**
   * Names this lifecycle of the workload in idempotency keys, so that a workload created again (after
   * destroy, or after its record was removed) never reuses the keys of an earlier one.
   */
  incarnation?: string;
  /** The last instance exit spotfleet saw. */
  lastExit?: ExitRecord;
  /** Failed exits that count against backoffLimit (preemptions never do). */
  failures: number;
  /** Restarts after preemptions or vanished instances (SkyPilot's recoveries), reported apart. */
  recoveries: number;
  /** ms epoch the workload reached a terminal phase. */
  finishedAt?: number;
  /** The move in flight, from the decision until the workload runs on the target. */
  move?: MoveInFlight;
  /**
   * The checkpoint signal sent to an instance (ms epoch), recorded so that a restarted or newly
   * elected watch finishing the move waits for that checkpoint instead of signalling again.
   */
  checkpointSignal?: { instanceId: string; at: number };
  /** The checkpoint the current instance resumed from (a failed resume marks it bad). */
  resumedFrom?: CheckpointInfo;
  /** `spotfleet rerun` asked for a run from scratch: the next start ignores the checkpoints. */
  startFresh?: boolean;
  /** Checkpoints a resume failed from: never resumed from again. */
  badCheckpoints?: string[];
  /** Every instance it ran as, newest last (bounded). */
  instances?: InstanceRef[];
  lastCheckpoint?: CheckpointInfo;
  preemptions: number[];
  lastMoveAt?: number;
  pinnedOnDemandUntil?: number;
  pinnedReason?: string;
  moves: MoveRecord[];
  /** Measured migration overhead from drill, ms. */
  measuredOverhead?: { checkpointMs: number; transferMs: number; restartMs: number; at: number };
  /** A target acquired and pre-copied for an early warning, held until the warning's window ends. */
  prepared?: PreparedMove;
  /** The last early warning on its node and the answer watch gave, with its numbers (`explain`). */
  lastWarning?: WarningRecord;
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
  /** The fencing epoch of the watch leader that wrote it (watch replicas on a shared backend). */
  epoch?: number;
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
  /** Absent in a state no apply or destroy has written yet: active. */
  fleetMode?: FleetMode;
  /** What spotfleet remembers of each pool/zone's preemptions and warnings (`pool/zone` → record). */
  poolHistory?: Record<string, PoolHistory>;
}
