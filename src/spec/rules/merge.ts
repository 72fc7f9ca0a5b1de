// Rule: merge the fleet's files into one. Lists (pools, workloads, alerts, sinks) concatenate,
// providers merge by name (a name defined twice is an error), and the singletons (metadata,
// defaults, budgetPerHour, backend) may be set by one file only.
import { encodeSegment } from '../source.js';
import { fmtPos, isObj, type ResolveContext } from './context.js';

export function mergeFiles(ctx: ResolveContext): void {
  const { lists, providerItems, singles, policyItems, at, err } = ctx;
  for (const src of ctx.input.sources) {
    const data = src.data;
    if (!isObj(data)) continue;
    const bad = ctx.input.schemaBad.get(src) ?? new Set<string>();
    for (const key of ['pools', 'workloads', 'alerts', 'sinks'] as const) {
      const arr = data[key];
      if (!Array.isArray(arr)) continue;
      arr.forEach((item, i) => {
        const ptr = `/${key}/${i}`;
        if (isObj(item)) lists[key].push({ src, ptr, v: item, bad: bad.has(ptr) });
      });
    }
    if (isObj(data.providers)) {
      for (const [name, item] of Object.entries(data.providers)) {
        const ptr = `/providers/${encodeSegment(name)}`;
        const prev = providerItems.get(name);
        if (prev) {
          err(at({ src, ptr }, '', 'key'), `provider "${name}" is defined twice`, `a unique provider name; "${name}" is first defined at ${fmtPos(at(prev, '', 'key'))}`, 'duplicate-name', ptr);
          continue;
        }
        if (isObj(item)) providerItems.set(name, { src, ptr, v: item, bad: bad.has(ptr) });
      }
    }
    for (const key of ['metadata', 'defaults', 'budgetPerHour', 'backend'] as const) {
      if (!(key in data)) continue;
      const prev = singles.get(key);
      const ptr = `/${key}`;
      if (prev) {
        err(at({ src, ptr }, '', 'key'), `${key} is set in more than one file`, `${key} in one file only; it is first set at ${fmtPos(at(prev, '', 'key'))}`, 'duplicate-name', ptr);
        continue;
      }
      singles.set(key, { src, ptr, v: isObj(data[key]) ? (data[key]) : {}, value: data[key], bad: bad.has(ptr) });
    }
    if (Array.isArray(data.policies)) {
      data.policies.forEach((p, i) => {
        if (typeof p === 'string' && p.length > 0) policyItems.push({ src, ptr: `/policies/${i}`, value: p });
      });
    }
  }
}
