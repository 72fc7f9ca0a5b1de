// Rule: `defaults.fallback.to` names a declared pool (or on-demand), as a workload's own must.
import { poolChoices, type ResolveContext } from './context.js';

export function checkDefaultFallback(ctx: ResolveContext): void {
  const d = ctx.defaults;
  const to = d.fallback.to;
  if (d.ok && typeof to === 'string' && to !== 'on-demand' && !ctx.poolByName.has(to)) {
    ctx.err(ctx.at(d.loc, '/fallback/to'), `defaults.fallback.to names unknown pool "${to}"`, `"on-demand" or ${poolChoices(ctx)}`, 'unknown-reference', '/defaults/fallback/to');
  }
}
