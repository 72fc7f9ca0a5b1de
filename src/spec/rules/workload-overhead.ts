// Rule: a workload's migration overhead guess (checkpoint, transfer, restart) is its own
// `overhead` over `defaults.overhead`; its own durations must parse.
import type { MigrationOverhead } from '../types.js';
import { isObj, type ResolveContext } from './context.js';

export function resolveWorkloadOverhead(ctx: ResolveContext): void {
  const defaultOverhead = ctx.defaults.overhead;
  for (const { l, w } of ctx.resolvedWorkloads) {
    const ownOh = isObj(l.v.overhead) ? l.v.overhead : undefined;
    if (!ownOh && !defaultOverhead) continue;
    const oh: MigrationOverhead = { checkpointMs: 0, transferMs: 0, restartMs: 0 };
    for (const [field, key] of [['checkpoint', 'checkpointMs'], ['transfer', 'transferMs'], ['restart', 'restartMs']] as const) {
      if (ownOh && typeof ownOh[field] === 'string') oh[key] = ctx.duration(l, `/overhead/${field}`) ?? 0;
      else if (defaultOverhead && typeof defaultOverhead[field] === 'string') oh[key] = ctx.parseDuration(defaultOverhead[field]) ?? 0;
    }
    w.overhead = oh;
  }
}
