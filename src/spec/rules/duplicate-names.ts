// Rule: pool, workload, alert and sink names are unique across the whole fleet (all its files), in
// one pass per kind; the first of each name is indexed for the reference rules.
import { fmtPos, str, type Located, type ResolveContext } from './context.js';

export function checkDuplicateNames(ctx: ResolveContext): void {
  const indexNames = (kind: string, items: Located[]): Map<string, Located> => {
    const byName = new Map<string, Located>();
    for (const l of items) {
      const name = str(l.v.name);
      if (name === undefined) continue;
      const prev = byName.get(name);
      if (prev) {
        ctx.err(ctx.at(l, '/name'), `${kind} "${name}" is defined twice`, `a unique ${kind} name; "${name}" is first defined at ${fmtPos(ctx.at(prev, '/name'))}`, 'duplicate-name', `${l.ptr}/name`);
      } else {
        byName.set(name, l);
      }
    }
    return byName;
  };
  ctx.poolByName = indexNames('pool', ctx.lists.pools);
  indexNames('workload', ctx.lists.workloads);
  indexNames('alert', ctx.lists.alerts);
  ctx.sinkByName = indexNames('sink', ctx.lists.sinks);
}
