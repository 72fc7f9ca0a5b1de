// Free GPUs per node, indexed so the planner finds the best-fitting node of a pool in time that
// does not grow with the number of nodes: each pool's eligible nodes are grouped by zone, GPU model
// and price (nodes alike in every way decide cares about), and each group buckets its nodes by free
// GPUs. Offering one best-fit node per group keeps placement linear in workloads.
import type { NodeInfo } from '../core/types.js';

export interface NodeGroup {
  pool: string;
  provider: string;
  capacity: NodeInfo['capacity'];
  zone?: string;
  gpuModel: string;
  pricePerGpuHour: number;
  /** Free GPUs → node keys with exactly that many free. */
  buckets: Map<number, Set<string>>;
  maxGpus: number;
}

export class FreeGpuIndex {
  private readonly groupsByPool = new Map<string, NodeGroup[]>();
  private readonly groupsOfNode = new Map<string, NodeGroup[]>();
  private readonly groupByKey = new Map<string, NodeGroup>();

  constructor(readonly free: Map<string, number>) {}

  /** Adds a node as eligible for a pool. */
  add(pool: string, key: string, n: NodeInfo, pricePerGpuHour: number): void {
    const gk = `${pool}\u0000${n.zone ?? ''}\u0000${n.gpuModel}\u0000${pricePerGpuHour}`;
    let g = this.groupByKey.get(gk);
    if (!g) {
      g = { pool, provider: n.provider, capacity: n.capacity, gpuModel: n.gpuModel, pricePerGpuHour, buckets: new Map(), maxGpus: 0, ...(n.zone !== undefined ? { zone: n.zone } : {}) };
      this.groupByKey.set(gk, g);
      const list = this.groupsByPool.get(pool) ?? [];
      list.push(g);
      this.groupsByPool.set(pool, list);
    }
    g.maxGpus = Math.max(g.maxGpus, n.gpus);
    const f = this.free.get(key) ?? 0;
    const b = g.buckets.get(f) ?? new Set<string>();
    b.add(key);
    g.buckets.set(f, b);
    const gs = this.groupsOfNode.get(key) ?? [];
    gs.push(g);
    this.groupsOfNode.set(key, gs);
  }

  groups(pool: string): readonly NodeGroup[] {
    return this.groupsByPool.get(pool) ?? [];
  }

  /** The node of the group with the fewest free GPUs that still fits `gpus` (best fit). */
  bestFit(g: NodeGroup, gpus: number, exclude?: string): string | undefined {
    for (let f = Math.max(gpus, 0); f <= g.maxGpus; f++) {
      const b = g.buckets.get(f);
      if (!b) continue;
      for (const k of b) if (k !== exclude) return k;
    }
    return undefined;
  }

  /** Any node of the group other than `exclude` (for an option that is shown as unavailable). */
  anyNode(g: NodeGroup, exclude?: string): string | undefined {
    for (const b of g.buckets.values()) for (const k of b) if (k !== exclude) return k;
    return undefined;
  }

  /** Changes a node's free GPUs, moving it between buckets in every group it belongs to. */
  setFree(key: string, value: number): void {
    const old = this.free.get(key) ?? 0;
    this.free.set(key, value);
    if (old === value) return;
    for (const g of this.groupsOfNode.get(key) ?? []) {
      g.buckets.get(old)?.delete(key);
      const b = g.buckets.get(value) ?? new Set<string>();
      b.add(key);
      g.buckets.set(value, b);
    }
  }
}
