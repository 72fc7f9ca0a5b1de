// Rule: a workload's `pools` and `fallback.to` name declared pools. Checked even in items with
// schema errors, so one typo does not hide another.
import { isObj, poolChoices, str, type ResolveContext } from './context.js';

export function checkWorkloadReferences(ctx: ResolveContext): void {
  for (const l of ctx.lists.workloads) {
    const v = l.v;
    const name = str(v.name);
    const allowed = Array.isArray(v.pools) ? v.pools : undefined;
    allowed?.forEach((pn, i) => {
      if (typeof pn === 'string' && !ctx.poolByName.has(pn)) {
        ctx.unknownPoolRefs.add(l);
        ctx.err(ctx.at(l, `/pools/${i}`), `workload "${name ?? '?'}" allows unknown pool "${pn}"`, poolChoices(ctx), 'unknown-reference', `${l.ptr}/pools/${i}`);
      }
    });
    const fbTo = str(isObj(v.fallback) ? v.fallback.to : undefined);
    if (fbTo !== undefined && fbTo !== 'on-demand' && !ctx.poolByName.has(fbTo)) {
      ctx.err(ctx.at(l, '/fallback/to'), `workload "${name ?? '?'}" falls back to unknown pool "${fbTo}"`, `"on-demand" or ${poolChoices(ctx)}`, 'unknown-reference', `${l.ptr}/fallback/to`);
    }
  }
}
