// Rule: `defaults:`: the thresholds (durations and money that must parse) and the checkpoint,
// fallback, overhead and passEnv the workloads inherit. Ignored when the schema found a problem in it.
import { isObj, type ResolveContext } from './context.js';

export function resolveDefaults(ctx: ResolveContext): void {
  const d = ctx.defaults;
  const set = ctx.singles.get('defaults');
  if (set) d.loc = set;
  d.ok = !d.loc.bad;
  const dv = d.loc.v;
  if (!d.ok || !isObj(dv)) return;
  if (Array.isArray(dv.passEnv)) d.passEnv = dv.passEnv.filter((x): x is string => typeof x === 'string');
  const t = dv.thresholds;
  if (isObj(t)) {
    const th = d.thresholds;
    th.minSavingsPerHour = ctx.money(d.loc, '/thresholds/minSavingsPerHour') ?? th.minSavingsPerHour;
    th.minRuntimeMs = ctx.duration(d.loc, '/thresholds/minRuntime') ?? th.minRuntimeMs;
    if (typeof t.spotPriceAlertRatio === 'number') th.spotPriceAlertRatio = t.spotPriceAlertRatio;
    if (typeof t.maxPreemptions === 'number') th.maxPreemptions = t.maxPreemptions;
    th.preemptionWindowMs = ctx.duration(d.loc, '/thresholds/preemptionWindow') ?? th.preemptionWindowMs;
    th.cooldownMs = ctx.duration(d.loc, '/thresholds/cooldown') ?? th.cooldownMs;
  }
  if (isObj(dv.checkpoint)) d.checkpoint = dv.checkpoint;
  if (isObj(dv.fallback)) d.fallback = dv.fallback;
  if (isObj(dv.overhead)) d.overhead = dv.overhead;
}
