// The cost model, in dollars throughout (pure). Given a current placement (or none) and a
// candidate, it prices the move: gross savings over the remaining runtime, the one-off migration
// overhead, and the expected cost of preemptions, and reduces them to one figure per remaining
// hour that decide compares with `minSavingsPerHour`. Every intermediate value is returned so that
// reasons, `spotfleet explain` and CEL policies see exactly the numbers that decided.
//
// Definitions (G = GPUs, R = remaining hours, prices in USD per GPU-hour):
//   grossSavingsUsd        = (pCurrent − pTarget) × G × R
//   changeoverHours        = (checkpoint + transfer + restart) / 1h
//   changeoverUsd          = changeoverHours × (pCurrent + pTarget) × G
//                            — BOTH sides are paid during a changeover: the source until it stops,
//                              the target from the moment it is acquired (conservative: acquire
//                              runs in parallel with the checkpoint, so the target is paid anyway)
//   lostWorkUsd            = lostWorkHours × pTarget × G
//                            — work done since the newest verified checkpoint is redone on the target
//   egressUsd              = checkpoint.sizeGB × egress USD/GB from the checkpoint's region to the
//                            target's (src/core/egress.ts; 0 inside a region or without a size)
//   migrationOverheadUsd   = changeoverUsd + lostWorkUsd + egressUsd (changeover and lost work: 0 for a first placement)
//   perPreemptionUsd(x)    = changeoverHours × (pX + pFallback) × G + lostPerPreemptionHours × pFallback × G
//   preemptionCostX        = rateX × R × perPreemptionUsd(x)        (rate: preemptions per hour)
//   expectedPreemptionCostUsd = preemptionCostTarget − preemptionCostCurrent
//                            — leaving a risky placement for a safe one is worth its avoided risk
//   netSavingsUsd          = grossSavingsUsd − migrationOverheadUsd − expectedPreemptionCostUsd
//   savingsPerHour         = netSavingsUsd / R   (0 when R = 0)
// A move pays when savingsPerHour ≥ minSavingsPerHour.
import { HOUR_MS, roundUsd } from '../core/units.js';

export interface CostInputs {
  gpus: number;
  /** Remaining runtime in hours (R). */
  remainingHours: number;
  /** True when the workload runs now and the decision would move it (migration overhead applies). */
  running: boolean;
  /**
   * USD per GPU-hour of the baseline the target is compared with: what is paid now, or for a first
   * placement the best on-demand option (0 when there is none).
   */
  currentPricePerGpuHour: number;
  /** Preemptions per hour where it runs now (0 on on-demand or when unknown). */
  currentPreemptionRatePerHour: number;
  targetPricePerGpuHour: number;
  targetPreemptionRatePerHour: number;
  /** USD per GPU-hour of the capacity a preempted workload falls back to. */
  fallbackPricePerGpuHour: number;
  checkpointMs: number;
  transferMs: number;
  restartMs: number;
  /** Work since the newest verified checkpoint, hours (lost by moving now). */
  lostWorkHours: number;
  /** Work lost per preemption, hours (half the checkpoint interval when it is known). */
  lostPerPreemptionHours: number;
  /** USD to move the checkpoint to the target's region (egress); default 0. */
  egressUsd?: number;
}

/** Every figure of one priced option, USD unless the name says otherwise; rounded by roundUsd. */
export interface CostNumbers {
  gpus: number;
  remainingHours: number;
  currentPricePerGpuHour: number;
  targetPricePerGpuHour: number;
  fallbackPricePerGpuHour: number;
  nowPerHour: number;
  afterPerHour: number;
  grossSavingsUsd: number;
  changeoverHours: number;
  changeoverUsd: number;
  lostWorkHours: number;
  lostWorkUsd: number;
  egressUsd: number;
  migrationOverheadUsd: number;
  preemptionRatePerHour: number;
  currentPreemptionRatePerHour: number;
  expectedPreemptions: number;
  perPreemptionUsd: number;
  preemptionCostTargetUsd: number;
  preemptionCostCurrentUsd: number;
  expectedPreemptionCostUsd: number;
  netSavingsUsd: number;
  savingsPerHour: number;
  /** Target's $/h plus its expected preemption cost per hour: what ranks candidates. */
  effectivePerHour: number;
}

/** Names of every CostNumbers field, in a stable order (CEL schema, explain). */
export const COST_NUMBER_KEYS: readonly (keyof CostNumbers)[] = [
  'gpus', 'remainingHours', 'currentPricePerGpuHour', 'targetPricePerGpuHour', 'fallbackPricePerGpuHour',
  'nowPerHour', 'afterPerHour', 'grossSavingsUsd', 'changeoverHours', 'changeoverUsd', 'lostWorkHours',
  'lostWorkUsd', 'egressUsd', 'migrationOverheadUsd', 'preemptionRatePerHour', 'currentPreemptionRatePerHour',
  'expectedPreemptions', 'perPreemptionUsd', 'preemptionCostTargetUsd', 'preemptionCostCurrentUsd',
  'expectedPreemptionCostUsd', 'netSavingsUsd', 'savingsPerHour', 'effectivePerHour',
];

/** Prices one option against the current placement. Pure; see the header for the formulas. */
export function priceMove(c: CostInputs): CostNumbers {
  const G = c.gpus;
  const R = c.remainingHours;
  const pCur = c.currentPricePerGpuHour;
  const pTgt = c.targetPricePerGpuHour;
  const pFb = c.fallbackPricePerGpuHour;
  const changeoverHours = (c.checkpointMs + c.transferMs + c.restartMs) / HOUR_MS;
  const changeoverUsd = c.running ? changeoverHours * (pCur + pTgt) * G : 0;
  const lostWorkHours = c.running ? c.lostWorkHours : 0;
  const lostWorkUsd = lostWorkHours * pTgt * G;
  const egressUsd = c.egressUsd ?? 0;
  const migrationOverheadUsd = changeoverUsd + lostWorkUsd + egressUsd;
  const perPreemptionUsd = changeoverHours * (pTgt + pFb) * G + c.lostPerPreemptionHours * pFb * G;
  const perPreemptionCurUsd = changeoverHours * (pCur + pFb) * G + c.lostPerPreemptionHours * pFb * G;
  const expectedPreemptions = c.targetPreemptionRatePerHour * R;
  const preemptionCostTargetUsd = expectedPreemptions * perPreemptionUsd;
  const curRate = c.currentPreemptionRatePerHour;
  const preemptionCostCurrentUsd = curRate * R * perPreemptionCurUsd;
  const expectedPreemptionCostUsd = preemptionCostTargetUsd - preemptionCostCurrentUsd;
  const grossSavingsUsd = (pCur - pTgt) * G * R;
  const netSavingsUsd = grossSavingsUsd - migrationOverheadUsd - expectedPreemptionCostUsd;
  const savingsPerHour = R > 0 ? netSavingsUsd / R : 0;
  return {
    gpus: G,
    remainingHours: roundUsd(R),
    currentPricePerGpuHour: pCur,
    targetPricePerGpuHour: pTgt,
    fallbackPricePerGpuHour: pFb,
    nowPerHour: roundUsd(pCur * G),
    afterPerHour: roundUsd(pTgt * G),
    grossSavingsUsd: roundUsd(grossSavingsUsd),
    changeoverHours: roundUsd(changeoverHours),
    changeoverUsd: roundUsd(changeoverUsd),
    lostWorkHours: roundUsd(lostWorkHours),
    lostWorkUsd: roundUsd(lostWorkUsd),
    egressUsd: roundUsd(egressUsd),
    migrationOverheadUsd: roundUsd(migrationOverheadUsd),
    preemptionRatePerHour: c.targetPreemptionRatePerHour,
    currentPreemptionRatePerHour: curRate,
    expectedPreemptions: roundUsd(expectedPreemptions),
    perPreemptionUsd: roundUsd(perPreemptionUsd),
    preemptionCostTargetUsd: roundUsd(preemptionCostTargetUsd),
    preemptionCostCurrentUsd: roundUsd(preemptionCostCurrentUsd),
    expectedPreemptionCostUsd: roundUsd(expectedPreemptionCostUsd),
    netSavingsUsd: roundUsd(netSavingsUsd),
    savingsPerHour: roundUsd(savingsPerHour),
    effectivePerHour: roundUsd(pTgt * G + c.targetPreemptionRatePerHour * perPreemptionUsd),
  };
}

/** Effective USD/h of an option for ranking, without allocating: price plus expected preemption cost per hour. */
export function effectivePerHour(pricePerGpuHour: number, rate: number, gpus: number, changeoverHours: number, fallbackPricePerGpuHour: number, lostPerPreemptionHours: number): number {
  const perPreemption = changeoverHours * (pricePerGpuHour + fallbackPricePerGpuHour) * gpus + lostPerPreemptionHours * fallbackPricePerGpuHour * gpus;
  return pricePerGpuHour * gpus + rate * perPreemption;
}
