// The contract between the planner/watch/backtest and the policy: one pure function per workload,
// `decideWorkload(input, ctx) → WorkloadDecision`. Plan, watch and backtest all call the same one, so
// what a backtest shows is what watch would do.
import type { CapacityType } from '../core/types.js';
import type { MigrationOverhead, Thresholds, WorkloadSpec } from '../spec/types.js';
import type { PolicySet } from './policy-set.js';
import type { ZoneStats } from './uptime.js';

/** One place a workload could run: a pool (and zone), on an existing node or on new capacity. */
export interface PlacementOption {
  pool: string;
  provider: string;
  capacity: CapacityType;
  zone?: string;
  gpuModel: string;
  /** USD per GPU-hour. */
  pricePerGpuHour: number;
  available: boolean;
  /** Expected preemptions per hour here, when known (market or trace). */
  preemptionRatePerHour?: number;
  /**
   * Spot only: ms epoch since which this capacity has been continuously available, when the market
   * or trace knows. Capacity that has just (re)appeared tends to vanish again soon; the deadline
   * strategy waits for it to prove itself before paying a changeover to go there.
   */
  availableSince?: number;
  /** An existing node with room for the workload; absent = capacity must be acquired. */
  node?: string;
  /** A node spotfleet keeps warm for evictions (no acquire, no start-up wait). */
  warm?: boolean;
  /** The pool's `maxPricePerHour` (USD per GPU-hour), when set: options priced above it are not taken. */
  maxPricePerHour?: number;
  /** The region a checkpoint moves to when the workload goes here; default from the zone's name (egress). */
  region?: string;
}

export interface CurrentPlacement {
  pool?: string;
  provider: string;
  capacity: CapacityType;
  zone?: string;
  node: string;
  pricePerGpuHour: number;
  /** ms epoch since it runs there. */
  since: number;
  /** The node has an eviction notice, or is gone: the workload must move. */
  evicted?: boolean;
}

export interface WorkloadHistory {
  /** ms epoch of each preemption/eviction this workload suffered. */
  preemptions: number[];
  /** ms epoch of the last move. */
  lastMoveAt?: number;
  /** Kept on on-demand until then (anti-flap cooldown, deadline safety net). */
  pinnedOnDemandUntil?: number;
  pinnedReason?: string;
}

export interface WorkloadProgress {
  /** Work done so far, ms of useful compute. */
  doneMs: number;
  /** ms epoch of the newest verified checkpoint. */
  lastCheckpointAt?: number;
}

export interface DecideContext {
  now: number;
  thresholds: Thresholds;
  /** Compiled policy set (CEL rules); absent = the built-in defaults only. */
  policies?: PolicySet;
}

export interface WorkloadDecisionInput {
  workload: WorkloadSpec;
  current?: CurrentPlacement;
  /** Every option the workload's allowed pools offer now (available or not). */
  options: PlacementOption[];
  history: WorkloadHistory;
  progress: WorkloadProgress;
  /** Measured by drill, or configured, or the default. */
  overhead: MigrationOverhead;
  /**
   * Optional: what has been seen of each pool/zone's spot availability, keyed by
   * `zoneStatsKey({ pool, zone })` (build it with `zoneStatsFromObservations`). With it, the
   * deadline strategy estimates how long each zone will last and moves only when the price
   * difference over the expected stay pays for the changeover, the egress and the risk.
   */
  zoneStats?: Record<string, ZoneStats>;
  /** Optional: the region the newest checkpoint is stored in (default: the current placement's zone's region). */
  checkpointRegion?: string;
  /** Optional: the checkpoint's size as measured (drill, transfers), GB; overrides `checkpoint.sizeGB` of the spec for egress. */
  checkpointSizeGB?: number;
}

/** Why: a rule and the numbers that decided it, for plan reason lines and `spotfleet explain`. */
export interface Reason {
  rule: string;
  text: string;
  numbers?: Record<string, number>;
}

export interface Money {
  /** USD/h the workload costs now (0 when not running). */
  nowPerHour: number;
  /** USD/h after the decision. */
  afterPerHour: number;
  /** One-off cost of the move in USD (paid-for time without progress + work lost). */
  migrationOverheadUsd: number;
  /** Expected net savings of the decision over the remaining runtime, USD, when computed. */
  expectedSavingsUsd?: number;
}

export interface Violation {
  policy: string;
  level: 'advisory' | 'mandatory';
  message: string;
}

export interface WorkloadDecision {
  workload: string;
  /**
   * stay: keep current placement; place: start (not running now); move: run elsewhere;
   * wait: do not run now (checkpoint and stop if running), by choice (deadline slack, waiting for spot);
   * none: no capacity fits.
   */
  action: 'stay' | 'place' | 'move' | 'wait' | 'none';
  target?: PlacementOption;
  eligibleForSpot: boolean;
  reasons: Reason[];
  money: Money;
  violations: Violation[];
  /** Set when the decision pins the workload to on-demand (cooldown, deadline net). */
  pinOnDemandUntil?: number;
}

/** Default migration overhead when neither drill nor the spec says: 60 s checkpoint, 30 s transfer, 30 s restart. */
export const DEFAULT_OVERHEAD: MigrationOverhead = { checkpointMs: 60_000, transferMs: 30_000, restartMs: 30_000 };
