// A lower bound on the cost / optimum that ANY deterministic online policy can guarantee, by the
// branching argument: take traces that are identical up to tick h and differ after it. An online
// policy sees only the past, so it makes the same decisions on all of them up to h and is in one
// and the same state at h (place, progress, changeover under way). Whatever that state, on each
// branch b it pays at least what it paid to reach it plus the cheapest way to finish from it on b
// (as if it knew b's future from then on), and b's optimum is exact. So
//
//     min over states s reachable by h  of  max over branches b of  (cost to s + cheapest finish from s on b) / optimum(b)
//
// is a lower bound on max over the branches of (its cost / the optimum) for every deterministic
// online policy. It bounds those traces, not others: a bound above 1.10 proves that no online policy
// keeps cost ≤ 1.10 × optimum on every one of the branch traces; it says nothing about other traces,
// nor about a p90 over a set of windows.
//
// The model is the simulator's and the offline optimum's (optimum.ts): per tick idle (free), on
// on-demand, or on spot in one zone; every start or move costs `changeoverTicks` paid ticks at the
// target without progress; preemptions lose nothing (the emergency checkpoint; an online policy can
// only do worse). With checkpoint egress (moves across regions pay size × price), the checkpoint's
// region is part of the state, as in the egress optimum (optimum.ts): idle in region r, on-demand in
// region r (it runs where the checkpoint is), spot in zone z (region of z); a start in a spot zone
// pays the changeover plus the egress from the state's region, and the start state is "no checkpoint
// yet" (leaving it is free).
import { SpotfleetError } from '../core/errors.js';
import { IDLE, ON_DEMAND, SPOT0, type Grid, type Job } from './model.js';
import { locationCosts } from './optimum.js';

/** Cost-to-finish tables of one branch: V(k, p, l) for decision points (changeover done) at tick k. */
interface Backward {
  /** Layers kept, each (W + 1) × L, index p × L + l; ∞ = cannot finish by the deadline. */
  layers: Map<number, Float64Array>;
  cost: Float64Array[];
}

/**
 * The states when moves across regions pay egress (as offlineOptimumWithEgress): idle_r = r,
 * on-demand_r = R + r, spot z = 2R + z, for regions 0..R−1 where R − 1 is "no checkpoint yet".
 */
interface EgressSpace {
  S: number;
  R: number;
  /** Location code (model.ts) of a state. */
  loc: Uint8Array;
  /** Region of a state (the checkpoint's). */
  region: Uint8Array;
  /** USD of egress to start in state t from state st: [st × S + t] (0 for idle and on-demand targets). */
  egress: Float64Array;
  /** The start state: idle with the checkpoint in job.homeRegion, or nowhere yet. */
  home: number;
}

function egressSpace(grid: Grid, job: Job): EgressSpace | undefined {
  const eg = job.egressUsd;
  if (!eg || !eg.some((x) => x > 0)) return undefined;
  if (!grid.regions || !grid.zoneRegion) throw new SpotfleetError('BACKTEST_UNSUPPORTED', 'the branching lower bound with egress needs the zones\' regions');
  const R = grid.regions.length + 1;
  // The model moves the checkpoint only by starting in a zone; a policy can also start a changeover
  // and abandon it (the egress paid, the checkpoint moved). That detour is never cheaper than going
  // straight when egress obeys the triangle inequality (through real regions: nothing moves back to
  // "no checkpoint yet"), which the bound therefore requires.
  for (let i = 0; i < R; i++) for (let j = 0; j < R; j++) for (let k = 0; k < R - 1; k++) {
    if ((eg[i * R + j] as number) > (eg[i * R + k] as number) + (eg[k * R + j] as number) + 1e-12) throw new SpotfleetError('BACKTEST_UNSUPPORTED', 'the branching lower bound needs egress prices that obey the triangle inequality');
  }
  const Z = grid.zones.length;
  const S = 2 * R + Z;
  const loc = new Uint8Array(S);
  const region = new Uint8Array(S);
  for (let st = 0; st < S; st++) {
    loc[st] = st < R ? IDLE : st < 2 * R ? ON_DEMAND : SPOT0 + (st - 2 * R);
    region[st] = st < R ? st : st < 2 * R ? st - R : (grid.zoneRegion[st - 2 * R] as number);
  }
  const egress = new Float64Array(S * S);
  for (let st = 0; st < S; st++) for (let t = 2 * R; t < S; t++) egress[st * S + t] = eg[(region[st] as number) * R + (region[t] as number)] as number;
  return { S, R, loc, region, egress, home: job.homeRegion ?? R - 1 };
}

/** Whether a changeover from state st into state t is a move the model has (t ≠ st; on-demand only in st's region). */
function canStart(sp: EgressSpace, st: number, t: number): boolean {
  if (t === st || t < sp.R) return false;
  return t >= 2 * sp.R || t - sp.R === sp.region[st];
}

function dims(grid: Grid, job: Job): { W: number; D: number; C: number; L: number; space: EgressSpace | undefined } {
  return { W: job.workTicks, D: Math.min(job.deadlineTicks, grid.ticks), C: job.changeoverTicks, L: SPOT0 + grid.zones.length, space: egressSpace(grid, job) };
}

/**
 * The frame of both backward recursions (with and without egress): layers of `n` states per tick
 * from the deadline D (every state from `doneFrom` on, the work finished, costs 0; the rest ∞) down
 * to `down`. `fill` computes tick k's layer `v` (already ∞ but the finished states) from tick k + 1
 * (`next`) and tick k + C (`far`, when a changeover started at k ends by the deadline). Layers
 * neither the recursion (C ticks ahead at most) nor `keep` needs are freed as it goes.
 */
function sweepBackward(
  n: number,
  doneFrom: number,
  D: number,
  C: number,
  down: number,
  keep: (k: number) => boolean,
  fill: (k: number, v: Float64Array, next: Float64Array, far: Float64Array | undefined) => void,
): Map<number, Float64Array> {
  const all: (Float64Array | undefined)[] = new Array<Float64Array | undefined>(D + 1);
  const done = new Float64Array(n).fill(Infinity);
  done.fill(0, doneFrom, n);
  all[D] = done;
  for (let k = D - 1; k >= down; k--) {
    const v = new Float64Array(n).fill(Infinity);
    v.fill(0, doneFrom, n);
    fill(k, v, all[k + 1] as Float64Array, C > 0 && k + C <= D ? all[k + C] : undefined);
    all[k] = v;
    const drop = k + Math.max(C, 1);
    if (drop < D && !keep(drop)) all[drop] = undefined;
  }
  const layers = new Map<number, Float64Array>();
  for (let k = down; k <= D; k++) if (all[k] && keep(k)) layers.set(k, all[k] as Float64Array);
  return layers;
}

/** backward() with egress: the same recursion over the states of `sp` (O(states²) per cell). */
function backwardEgress(grid: Grid, job: Job, sp: EgressSpace, down: number, keep: (k: number) => boolean): Backward {
  const { W, D, C, L } = dims(grid, job);
  const { cost, change } = locationCosts(grid, job, L, D, C);
  const S = sp.S;
  const N = (W + 1) * S;
  const layers = sweepBackward(N, W * S, D, C, down, keep, (k, v, next, far) => {
    for (let p = Math.max(0, W - (D - k)); p < Math.min(W, Math.max(0, k - C) + 1); p++) {
      const nextP = p + 1 === W ? -1 : (p + 1) * S;
      for (let st = 0; st < S; st++) {
        let best = next[p * S + (sp.region[st] as number)] as number;
        const l = sp.loc[st] as number;
        if (l !== IDLE) {
          const ct = (cost[l] as Float64Array)[k] as number;
          if (ct !== Infinity) best = Math.min(best, ct + (nextP < 0 ? 0 : (next[nextP + st] as number)));
        }
        for (let t = sp.R; t < S; t++) {
          if (!canStart(sp, st, t)) continue;
          const tl = sp.loc[t] as number;
          const e = sp.egress[st * S + t] as number;
          let m: number;
          if (C === 0) {
            const ct = (cost[tl] as Float64Array)[k] as number;
            m = ct === Infinity ? Infinity : e + ct + (nextP < 0 ? 0 : (next[nextP + t] as number));
          } else {
            const ch = (change[tl] as Float64Array)[k] as number;
            m = far === undefined || ch === Infinity ? Infinity : e + ch + (far[p * S + t] as number);
          }
          if (m < best) best = m;
        }
        v[p * S + st] = best;
      }
    }
  });
  return { layers, cost };
}

/**
 * The frame of both forward sweeps (with and without egress): layers of `n` states per tick, all
 * unreached (∞) but `start` at tick 0 (cost 0). For each tick k < hMax, `expand` carries tick k's
 * costs on: to `next` (tick k + 1), to a later tick through `layer` (a changeover ends at k + C),
 * or into `done.by` (the work finished). Only ticks k … k + C are alive while k is expanded; the
 * layers `keep` asks for are returned with the cheapest cost to be done by each tick.
 */
function sweepForward(
  n: number,
  start: number,
  hMax: number,
  keep: (k: number) => boolean,
  expand: (k: number, f: Float64Array, next: Float64Array, layer: (k: number) => Float64Array, done: { by: number }) => void,
): { layers: Map<number, Float64Array>; doneBy: Map<number, number> } {
  const live = new Map<number, Float64Array>();
  const layer = (k: number): Float64Array => {
    let x = live.get(k);
    if (!x) live.set(k, (x = new Float64Array(n).fill(Infinity)));
    return x;
  };
  layer(0)[start] = 0;
  const kept = new Map<number, Float64Array>();
  const doneByAt = new Map<number, number>();
  const done = { by: Infinity };
  for (let k = 0; k <= hMax; k++) {
    const f = layer(k);
    doneByAt.set(k, done.by);
    if (keep(k)) kept.set(k, f);
    live.delete(k);
    if (k === hMax) break;
    expand(k, f, layer(k + 1), layer, done);
  }
  return { layers: kept, doneBy: doneByAt };
}

/** forward() with egress, over the states of `sp`. */
function forwardEgress(grid: Grid, job: Job, sp: EgressSpace, hMax: number, keep: (k: number) => boolean): { layers: Map<number, Float64Array>; doneBy: Map<number, number>; cost: Float64Array[] } {
  const { W, D, C, L } = dims(grid, job);
  const { cost, change } = locationCosts(grid, job, L, D, C);
  const S = sp.S;
  const N = (W + 1) * S;
  const swept = sweepForward(N, sp.home, hMax, keep, (k, f, next, layer, done) => {
    for (let p = 0; p < Math.min(W, k + 1); p++) {
      for (let st = 0; st < S; st++) {
        const x = f[p * S + st] as number;
        if (x === Infinity) continue;
        const idle = p * S + (sp.region[st] as number);
        if (x < (next[idle] as number)) next[idle] = x;
        const work = (t: number, extra: number): void => {
          const ct = (cost[sp.loc[t] as number] as Float64Array)[k] as number;
          if (ct === Infinity) return;
          if (p + 1 === W) done.by = Math.min(done.by, x + extra + ct);
          else if (x + extra + ct < (next[(p + 1) * S + t] as number)) next[(p + 1) * S + t] = x + extra + ct;
        };
        if (sp.loc[st] !== IDLE) work(st, 0);
        for (let t = sp.R; t < S; t++) {
          if (!canStart(sp, st, t)) continue;
          const e = sp.egress[st * S + t] as number;
          if (C === 0) work(t, e);
          else if (k + C <= D) {
            const ch = (change[sp.loc[t] as number] as Float64Array)[k] as number;
            const to = layer(k + C);
            if (ch !== Infinity && x + e + ch < (to[p * S + t] as number)) to[p * S + t] = x + e + ch;
          }
        }
      }
    }
  });
  return { ...swept, cost };
}

/** The optimum's recursion from the deadline down to tick `down`, keeping the layers `keep` asks for. */
function backward(grid: Grid, job: Job, down: number, keep: (k: number) => boolean): Backward {
  const { W, D, C, L, space } = dims(grid, job);
  if (space) return backwardEgress(grid, job, space, down, keep);
  const { cost, change } = locationCosts(grid, job, L, D, C);
  const S = (W + 1) * L;
  const stay = new Float64Array(L);
  const layers = sweepBackward(S, W * L, D, C, down, keep, (k, v, next, far) => {
    // Progress below W − (D − k) cannot finish (∞); above k − C cannot have been made.
    for (let p = Math.max(0, W - (D - k)); p < Math.min(W, Math.max(0, k - C) + 1); p++) {
      const idle = next[p * L + IDLE] as number;
      let b1 = Infinity;
      let a1 = -1;
      let b2 = Infinity;
      for (let l = ON_DEMAND; l < L; l++) {
        const ct = (cost[l] as Float64Array)[k] as number;
        stay[l] = ct === Infinity ? Infinity : ct + (p + 1 === W ? 0 : (next[(p + 1) * L + l] as number));
        let m: number;
        if (C === 0) m = stay[l] as number;
        else {
          const ch = (change[l] as Float64Array)[k] as number;
          m = far === undefined || ch === Infinity ? Infinity : ch + (far[p * L + l] as number);
        }
        if (m < b1) {
          b2 = b1;
          b1 = m;
          a1 = l;
        } else if (m < b2) b2 = m;
      }
      for (let l = 0; l < L; l++) {
        let best = idle;
        if (l !== IDLE && (stay[l] as number) < best) best = stay[l] as number;
        const mv = a1 !== l ? b1 : b2;
        if (mv < best) best = mv;
        v[p * L + l] = best;
      }
    }
  });
  return { layers, cost };
}

/** Cheapest cost to reach each decision point (k, p, l), for the ticks `keep` asks for, and the cheapest cost to be done by each tick `at`. */
function forward(grid: Grid, job: Job, hMax: number, keep: (k: number) => boolean): { layers: Map<number, Float64Array>; doneBy: Map<number, number>; cost: Float64Array[] } {
  const { W, D, C, L, space } = dims(grid, job);
  if (space) return forwardEgress(grid, job, space, hMax, keep);
  const { cost, change } = locationCosts(grid, job, L, D, C);
  const S = (W + 1) * L;
  const swept = sweepForward(S, IDLE, hMax, keep, (k, f, next, layer, done) => {
    for (let p = 0; p < Math.min(W, k + 1); p++) {
      for (let l = 0; l < L; l++) {
        const x = f[p * L + l] as number;
        if (x === Infinity) continue;
        if (x < (next[p * L + IDLE] as number)) next[p * L + IDLE] = x;
        // Work a tick where it is (or, with no changeover, anywhere).
        for (let m = C === 0 ? ON_DEMAND : l; m < (C === 0 ? L : l + 1); m++) {
          if (m === IDLE) continue;
          const ct = (cost[m] as Float64Array)[k] as number;
          if (ct === Infinity) continue;
          if (p + 1 === W) done.by = Math.min(done.by, x + ct);
          else if (x + ct < (next[(p + 1) * L + m] as number)) next[(p + 1) * L + m] = x + ct;
        }
        if (C > 0 && k + C <= D) {
          const to = layer(k + C);
          for (let m = ON_DEMAND; m < L; m++) {
            if (m === l) continue;
            const ch = (change[m] as Float64Array)[k] as number;
            if (ch !== Infinity && x + ch < (to[p * L + m] as number)) to[p * L + m] = x + ch;
          }
        }
      }
    }
  });
  return { ...swept, cost };
}

type Forward = ReturnType<typeof forward>;

/**
 * The bound at h from the prefix (forward, shared by all branches) and each branch's cost-to-finish
 * layers h … h + C. Every schedule is in exactly one of the cut states at h, so each branch's optimum
 * is the least total over them; the bound is the least, over the states, of the worst ratio.
 */
function combine(fw: Forward, backs: Backward[], job: Job, L: number, h: number, D: number, sp?: EgressSpace): BranchBound {
  const W = job.workTicks;
  const C = job.changeoverTicks;
  // Each cut state's total on each branch, in one list per branch (same order), then the optima.
  const totals: number[][] = backs.map(() => []);
  const doneBy = fw.doneBy.get(h) ?? Infinity;
  if (doneBy < Infinity) for (const t of totals) t.push(doneBy);
  const fh = fw.layers.get(h) as Float64Array;
  for (let p = 0; p < W; p++) {
    for (let l = 0; l < L; l++) {
      const pre = fh[p * L + l] as number;
      if (pre === Infinity) continue;
      backs.forEach((bk, b) => (totals[b] as number[]).push(pre + ((bk.layers.get(h) as Float64Array)[p * L + l] as number)));
    }
  }
  // Into a changeover to m started at k0 (its ticks before h paid, and up): on each branch, finish
  // it (its ticks from h on must be up there) and go on from m, or abandon it — which is never
  // cheaper than being idle at h (the simulator lets a policy abandon a changeover, or be preempted in it).
  if (sp) inChangeoverEgress(fw, backs, totals, sp, W, C, h, D);
  else for (let k0 = Math.max(0, h - C + 1); k0 < h; k0++) {
    if (k0 + C > D) continue;
    const f0 = fw.layers.get(k0) as Float64Array;
    for (let m = ON_DEMAND; m < L; m++) {
      let paid = 0;
      for (let k = k0; k < h; k++) paid += (fw.cost[m] as Float64Array)[k] as number;
      if (paid === Infinity) continue;
      for (let p = 0; p < W; p++) {
        let pre = Infinity;
        for (let l = 0; l < L; l++) if (l !== m) pre = Math.min(pre, f0[p * L + l] as number);
        if (pre === Infinity) continue;
        pre += paid;
        backs.forEach((bk, b) => {
          let finish = (bk.layers.get(k0 + C) as Float64Array)[p * L + m] as number;
          for (let k = h; k < k0 + C; k++) finish += (bk.cost[m] as Float64Array)[k] as number;
          const abandon = (bk.layers.get(h) as Float64Array)[p * L + IDLE] as number;
          (totals[b] as number[]).push(pre + Math.min(finish, abandon));
        });
      }
    }
  }
  const optima = totals.map((t) => t.reduce((a, x) => Math.min(a, x), Infinity));
  if (optima.some((o) => !Number.isFinite(o) || o <= 0)) return { bound: 1, h, optima };
  let bound = Infinity;
  const n = (totals[0] as number[]).length;
  for (let i = 0; i < n; i++) {
    let worst = 0;
    for (let b = 0; b < totals.length && worst < bound; b++) worst = Math.max(worst, ((totals[b] as number[])[i] as number) / (optima[b] as number));
    bound = Math.min(bound, worst);
  }
  return { bound: Number.isFinite(bound) ? bound : 1, h, optima };
}

/**
 * combine()'s changeovers under way at h, with egress: into state t, started at k0 from any state
 * that can start it (its egress paid at the start, the checkpoint then in t's region); on each
 * branch finished and gone on from t, or abandoned for idle in t's region.
 */
function inChangeoverEgress(fw: Forward, backs: Backward[], totals: number[][], sp: EgressSpace, W: number, C: number, h: number, D: number): void {
  const S = sp.S;
  for (let k0 = Math.max(0, h - C + 1); k0 < h; k0++) {
    if (k0 + C > D) continue;
    const f0 = fw.layers.get(k0) as Float64Array;
    for (let t = sp.R; t < S; t++) {
      const m = sp.loc[t] as number;
      let paid = 0;
      for (let k = k0; k < h; k++) paid += (fw.cost[m] as Float64Array)[k] as number;
      if (paid === Infinity) continue;
      for (let p = 0; p < W; p++) {
        let pre = Infinity;
        for (let st = 0; st < S; st++) if (canStart(sp, st, t)) pre = Math.min(pre, (f0[p * S + st] as number) + (sp.egress[st * S + t] as number));
        if (pre === Infinity) continue;
        pre += paid;
        backs.forEach((bk, b) => {
          let finish = (bk.layers.get(k0 + C) as Float64Array)[p * S + t] as number;
          for (let k = h; k < k0 + C; k++) finish += (bk.cost[m] as Float64Array)[k] as number;
          const abandon = (bk.layers.get(h) as Float64Array)[p * S + (sp.region[t] as number)] as number;
          (totals[b] as number[]).push(pre + Math.min(finish, abandon));
        });
      }
    }
  }
}

/** The same window with everything from tick h on taken from `future` (same zones, same clock). */
export function spliceGrid(grid: Grid, h: number, future: { avail: Uint8Array[]; spotPerGpuHour: Float64Array[] }): Grid {
  const avail = grid.avail.map((a, z) => {
    const out = a.slice();
    const f = future.avail[z] as Uint8Array;
    for (let k = h; k < out.length; k++) out[k] = k < f.length ? (f[k] as number) : 0;
    return out;
  });
  const spot = grid.spotPerGpuHour.map((a, z) => {
    const out = a.slice();
    const f = future.spotPerGpuHour[z] as Float64Array;
    for (let k = h; k < out.length; k++) out[k] = k < f.length ? (f[k] as number) : (a[Math.min(k, a.length - 1)] as number);
    return out;
  });
  return { ...grid, avail, spotPerGpuHour: spot };
}

/** Futures for a branch at h: every zone down from h on; every zone keeping its state at h−1 (prices too). */
export function simpleFutures(grid: Grid, h: number): { label: string; avail: Uint8Array[]; spotPerGpuHour: Float64Array[] }[] {
  const n = grid.ticks;
  const down = grid.zones.map(() => new Uint8Array(n));
  const frozen = grid.avail.map((a) => new Uint8Array(n).fill((a[Math.max(0, h - 1)] as number) === 1 ? 1 : 0));
  const flatPrice = grid.spotPerGpuHour.map((a) => new Float64Array(n).fill(a[Math.max(0, h - 1)] as number));
  return [
    { label: 'all spot down after h', avail: down, spotPerGpuHour: flatPrice },
    { label: 'every zone as at h from then on', avail: frozen, spotPerGpuHour: flatPrice },
  ];
}

export interface BranchBound {
  /** Lower bound on max over the branches of cost / optimum, for every deterministic online policy. */
  bound: number;
  /** Branch tick. */
  h: number;
  /** The branches' optima (the first is the window itself when the caller passes it first). */
  optima: number[];
  /** groupBounds: the bound from the window and the other windows' futures only. */
  splicedOnly?: number;
}

/**
 * The branching bound for traces `branches` (grids identical in ticks < h; the caller builds them
 * with spliceGrid), as in the header.
 */
export function branchBound(branches: Grid[], job: Job, h: number): BranchBound {
  const first = branches[0];
  if (!first) throw new Error('internal: no branches');
  const { D, C, L, space } = dims(first, job);
  if (h <= 0 || h >= D) return { bound: 1, h, optima: [] };
  const near = (k: number): boolean => k >= h - C && k <= h + C;
  const fw = forward(first, job, h, near);
  return combine(fw, branches.map((g) => backward(g, job, h, near)), job, space ? space.S : L, h, D, space);
}

/**
 * The bound of each window of `group` (same zones and clock) at each tick of `hs`, with branches:
 * the window itself; the window with its future from h on taken from each other window of the
 * group; every zone down from h on; every zone as at h from then on. The cost-to-finish from h on a
 * spliced trace is the other window's own, so one forward and one backward pass per window serve
 * every h and every pairing; only the two simple futures need a pass (from h on) per h.
 * Returns, per window, per h, the bound (optima lists the branches' optima, the window's first).
 */
export function groupBounds(group: Grid[], job: Job, hs: number[]): BranchBound[][] {
  const first = group[0];
  if (!first) return [];
  const { D, C, L: L0, space } = dims(first, job);
  const L = space ? space.S : L0;
  const ok = hs.filter((h) => h > 0 && h < D);
  if (ok.length === 0) return group.map(() => []);
  const near = (k: number): boolean => ok.some((h) => k >= h - C && k <= h + C);
  const backs = group.map((g) => backward(g, job, Math.min(...ok), near));
  return group.map((g, i) => {
    const fw = forward(g, job, Math.max(...ok), near);
    const others = backs.filter((_, j) => j !== i);
    return ok.map((h) => {
      const nearH = (k: number): boolean => k >= h && k <= h + C;
      const simple = simpleFutures(g, h).map((f) => backward(spliceGrid(g, h, f), job, h, nearH));
      const all = combine(fw, [backs[i] as Backward, ...others, ...simple], job, L, h, D, space);
      // The same from the table's own futures only (no made-up "all down" / "as at h").
      const spliced = others.length > 0 ? combine(fw, [backs[i] as Backward, ...others], job, L, h, D, space).bound : 1;
      return { ...all, splicedOnly: spliced };
    });
  });
}
