// Deadline-aware strategy for workloads with `expectedDuration` and `deadline`: whether to use spot,
// wait for spot (spending slack), or go to on-demand and stay (the safety net). Consulted by
// decideWorkload; the backtest measures it against the offline optimum.
import type { DecideContext, Reason, WorkloadDecisionInput } from './types.js';

export interface DeadlineAdvice {
  /**
   * spot-or-wait: run on spot when some is available, otherwise wait (no cost) — slack allows it;
   * spot-or-on-demand: the usual rules (spot when it pays, else on-demand);
   * on-demand: the safety net: on-demand now and until done.
   */
  mode: 'spot-or-wait' | 'spot-or-on-demand' | 'on-demand';
  reason: Reason;
  /** Pin to on-demand until this time (ms epoch) — the safety net holds until the job is done. */
  pinUntil?: number;
}

/**
 * Advice for a workload with a deadline; undefined when the workload has no deadline or no
 * expected duration (then the usual rules apply).
 */
export function adviseDeadline(_input: WorkloadDecisionInput, _ctx: DecideContext): DeadlineAdvice | undefined {
  return undefined;
}
