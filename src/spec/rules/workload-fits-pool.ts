// Rule: every workload fits some pool it may use: GPU model, capacity type and, for providers with a
// static inventory (`config.nodes`), a node with enough GPUs. Markets are assumed to offer any count
// of their model. Linear: pools are indexed by model and the answer is cached per workload shape.
import type { CapacityPreference } from '../../core/types.js';
import type { PoolSpec } from '../types.js';
import { isObj, type ResolveContext } from './context.js';

type Shape = { any: number; byModel: Map<string, number> } | undefined;

export function checkWorkloadsFitPools(ctx: ResolveContext): void {
  const pools = ctx.out.pools;
  const poolShapes = shapesOf(ctx, pools);
  const fits = (p: PoolSpec, w: { gpus: number; gpuModel?: string; capacity: CapacityPreference }): boolean => {
    if (w.capacity !== 'auto' && w.capacity !== p.capacity) return false;
    const wm = w.gpuModel?.toLowerCase();
    if (wm && p.gpuModel && p.gpuModel.toLowerCase() !== wm) return false;
    const shape = poolShapes.get(p.name);
    if (!shape) return true;
    if (w.gpus === 0) return shape.any >= 0 || shape.byModel.size === 0;
    if (!wm) return shape.any >= w.gpus;
    return (shape.byModel.get(wm) ?? -1) >= w.gpus || (shape.byModel.get('') ?? -1) >= w.gpus;
  };
  // Pools indexed by model so a fleet of many workloads does not scan every pool per workload.
  const poolsByModel = new Map<string, PoolSpec[]>();
  const poolsAnyModel: PoolSpec[] = [];
  for (const p of pools) {
    if (!p.gpuModel) poolsAnyModel.push(p);
    else {
      const k = p.gpuModel.toLowerCase();
      const arr = poolsByModel.get(k) ?? [];
      arr.push(p);
      poolsByModel.set(k, arr);
    }
  }
  const fitCache = new Map<string, boolean>();
  const resolvedPool = new Map(pools.map((p) => [p.name, p] as const));

  for (const { l, w, unknownPool } of ctx.resolvedWorkloads) {
    const v = l.v;
    // cached per shape: 10,000 workloads usually share a handful of shapes
    const shapeKey = `${w.gpus}|${w.gpuModel?.toLowerCase() ?? ''}|${w.capacity}|${w.pools?.join(',') ?? '*'}`;
    let ok = fitCache.get(shapeKey);
    if (ok === undefined) {
      let candidates: Iterable<PoolSpec>;
      if (w.pools) candidates = w.pools.map((pn) => resolvedPool.get(pn)).filter((p): p is PoolSpec => p !== undefined);
      else if (w.gpuModel) candidates = [...(poolsByModel.get(w.gpuModel.toLowerCase()) ?? []), ...poolsAnyModel];
      else candidates = pools;
      ok = false;
      for (const p of candidates) {
        if (fits(p, w)) {
          ok = true;
          break;
        }
      }
      fitCache.set(shapeKey, ok);
    }
    if (unknownPool) {
      // already reported as an unknown pool; "fits no pool" would only repeat it
    } else if (!ok && pools.length > 0 && !(w.pools && w.pools.length === 0)) {
      const what = `${w.gpus} GPU${w.gpus === 1 ? '' : 's'}${w.gpuModel ? ` of ${w.gpuModel}` : ''}, capacity ${w.capacity}${w.pools ? `, pools ${w.pools.join(', ')}` : ''}`;
      const sub = typeof v.gpuModel === 'string' ? '/gpuModel' : typeof v.gpus === 'number' ? '/gpus' : '/name';
      ctx.err(ctx.at(l, sub), `workload "${w.name}" (${what}) fits no pool`, `a pool with that GPU model and capacity${pools.length <= 8 ? ` (pools: ${pools.map((p) => `${p.name} ${p.capacity}${p.gpuModel ? ` ${p.gpuModel}` : ''}`).join('; ')})` : ''}`, 'no-fitting-pool', `${l.ptr}${sub}`);
    } else if (!ok && pools.length === 0) {
      ctx.err(ctx.at(l, '/name'), `workload "${w.name}" fits no pool: the fleet has no pools`, 'pools: [{ name, provider, capacity, gpuModel }]', 'no-fitting-pool', l.ptr);
    }
  }
}

/**
 * What each pool can hold: for providers with a static inventory (`config.nodes`), the largest node
 * per GPU model; undefined (fits anything) for markets, and for a matching node whose GPU count is
 * not in the config (ssh/docker hosts read it from nvidia-smi at run time).
 */
function shapesOf(ctx: ResolveContext, pools: readonly PoolSpec[]): Map<string, Shape> {
  const poolShapes = new Map<string, Shape>();
  for (const p of pools) {
    const prov = ctx.providerItems.get(p.provider);
    const nodes = prov && isObj(prov.v.config) && Array.isArray(prov.v.config.nodes) ? prov.v.config.nodes : undefined;
    if (!nodes) {
      poolShapes.set(p.name, undefined);
      continue;
    }
    const byModel = new Map<string, number>();
    let any = -1;
    let unknown = false;
    for (const n of nodes) {
      if (!isObj(n)) continue;
      if (typeof n.capacity === 'string' && n.capacity !== p.capacity) continue;
      const model = typeof n.gpuModel === 'string' ? n.gpuModel.toLowerCase() : '';
      if (p.gpuModel && model && model !== p.gpuModel.toLowerCase()) continue;
      if (typeof n.gpus !== 'number') {
        unknown = true;
        continue;
      }
      byModel.set(model, Math.max(byModel.get(model) ?? -1, n.gpus));
      any = Math.max(any, n.gpus);
    }
    poolShapes.set(p.name, unknown ? undefined : { any, byModel });
  }
  return poolShapes;
}
