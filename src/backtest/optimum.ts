// The offline optimum: the cheapest schedule that finishes by the deadline knowing the whole trace,
// by exact dynamic programming over ticks × progress (ticks of work) × location (idle, on-demand,
// spot in zone z), with the changeover as a macro step of C paid ticks at the new location.
//
// Why this is exact for the simulator's model (simulate.ts): a schedule there is a location per
// tick; aborting a changeover part-way is never cheaper than not starting it (idling instead costs
// nothing and arrives at the same state), and a clairvoyant schedule never loses work (it knows the
// preemption and checkpoints before it, which costs no progress in the model). So the minimum over
// "stay / go idle / start a full changeover elsewhere" per state equals the minimum over all
// per-tick schedules. `optimum.test.ts` checks this against brute force on tiny traces.
//
// Size: only progress values that can still meet the deadline are kept (a band of slack + 1 values
// per tick), the value function lives in a ring of C + 1 layers of a Float64Array, and choices in
// one Uint8Array: a 60-hour window of 195-s ticks with 3 zones is ~2 MB and a few ms.
import { SpotfleetError } from '../core/errors.js';
import { IDLE, ON_DEMAND, SPOT0, isAvailable, tickCost, type Grid, type Job } from './model.js';

export interface OptimumResult {
  /** Minimum USD to finish by the deadline. */
  costUsd: number;
  /** Location code per tick, until completion. */
  schedule: Uint8Array;
}

/** Cells above which the exact optimum is refused (memory for the choice table, bytes). */
export const MAX_OPTIMUM_CELLS = 400_000_000;

/**
 * Per location: the cost of one tick (∞ where it is unavailable), and the cost of a full changeover
 * of C ticks starting at tick k (∞ when any of those ticks is unavailable or it runs past D).
 */
export function locationCosts(grid: Grid, job: Job, L: number, D: number, C: number): { cost: Float64Array[]; change: Float64Array[] } {
  const cost: Float64Array[] = [];
  const change: Float64Array[] = [];
  for (let l = 0; l < L; l++) {
    const c = new Float64Array(D);
    const ch = new Float64Array(D).fill(Infinity);
    if (l !== IDLE) {
      for (let k = 0; k < D; k++) c[k] = isAvailable(grid, l, k) ? tickCost(grid, job, l, k) : Infinity;
      for (let k = 0; k + C <= D; k++) {
        let sum = 0;
        for (let j = k; j < k + C; j++) sum += c[j] as number;
        ch[k] = sum;
      }
    }
    cost.push(c);
    change.push(ch);
  }
  return { cost, change };
}

/**
 * The exact offline optimum for `job` on `grid`, or undefined when no schedule meets the deadline
 * (the deadline is shorter than the work plus one changeover, or the grid is shorter than it).
 */
export function offlineOptimum(grid: Grid, job: Job): OptimumResult | undefined {
  if (job.egressUsd && grid.regions && grid.regions.length > 1 && job.egressUsd.some((x) => x > 0)) return offlineOptimumWithEgress(grid, job);
  const W = job.workTicks;
  const D = Math.min(job.deadlineTicks, grid.ticks);
  const C = job.changeoverTicks;
  const L = SPOT0 + grid.zones.length;
  if (W + C > D) return undefined;
  const band = D - W + 1;
  const cells = D * band * L;
  if (cells > MAX_OPTIMUM_CELLS) {
    throw new SpotfleetError('BACKTEST_TOO_LARGE', `the exact optimum for ${D} ticks with ${band - 1} ticks of slack and ${L - 2} zones needs ${Math.round(cells / 1e6)} MB; use shorter windows (--windows, --deadline) or fewer zones`);
  }
  // Per location: cost of one tick, and cost of a full changeover starting at tick k (∞ when the
  // location is not available for all C ticks or the changeover would run past the deadline).
  const { cost, change } = locationCosts(grid, job, L, D, C);
  const S = (W + 1) * L;
  const R = Math.max(C, 1) + 1;
  const ring: Float64Array[] = [];
  for (let i = 0; i < R; i++) ring.push(new Float64Array(S).fill(Infinity));
  const choice = new Uint8Array(cells);
  const pLo = (k: number): number => Math.max(0, W - (D - k));
  const pHi = (k: number): number => Math.min(W - 1, Math.max(0, k - C));
  const layer = (k: number): Float64Array => ring[k % R] as Float64Array;
  // Layer D: done is free, anything else is too late.
  {
    const v = layer(D);
    v.fill(Infinity);
    v.fill(0, W * L, S);
  }
  const moveVal = new Float64Array(L);
  const stayVal = new Float64Array(L);
  for (let k = D - 1; k >= 0; k--) {
    const v = layer(k);
    const lo = pLo(k);
    const hi = pHi(k);
    v.fill(Infinity, 0, S);
    v.fill(0, W * L, S);
    const next = layer(k + 1);
    const far = k + C <= D ? layer(k + C) : undefined;
    for (let p = lo; p <= hi; p++) {
      const idleVal = next[p * L + IDLE] as number;
      for (let l = ON_DEMAND; l < L; l++) {
        const ct = (cost[l] as Float64Array)[k] as number;
        stayVal[l] = ct === Infinity ? Infinity : ct + (p + 1 === W ? 0 : (next[(p + 1) * L + l] as number));
      }
      // Best and second-best move target, so "move elsewhere than l" is O(1) per l.
      let b1 = Infinity;
      let a1 = -1;
      let b2 = Infinity;
      let a2 = -1;
      for (let l = ON_DEMAND; l < L; l++) {
        let m: number;
        if (C === 0) m = stayVal[l] as number;
        else {
          const ch = (change[l] as Float64Array)[k] as number;
          m = far === undefined || ch === Infinity ? Infinity : ch + (far[p * L + l] as number);
        }
        moveVal[l] = m;
        if (m < b1) {
          b2 = b1;
          a2 = a1;
          b1 = m;
          a1 = l;
        } else if (m < b2) {
          b2 = m;
          a2 = l;
        }
      }
      const base = (k * band + (p - lo)) * L;
      for (let l = 0; l < L; l++) {
        let best = idleVal;
        let arg = IDLE;
        if (l !== IDLE) {
          const sv = stayVal[l] as number;
          if (sv <= best) {
            best = sv;
            arg = l;
          }
        }
        const mv = a1 !== l ? b1 : b2;
        const ma = a1 !== l ? a1 : a2;
        if (ma >= 0 && mv < best) {
          best = mv;
          arg = ma;
        }
        v[p * L + l] = best;
        choice[base + l] = arg;
      }
    }
  }
  const total = layer(0)[0 * L + IDLE] as number;
  if (!Number.isFinite(total)) return undefined;
  // Walk the choices forward from (tick 0, no progress, idle).
  const schedule = new Uint8Array(D);
  let k = 0;
  let p = 0;
  let l = IDLE;
  while (p < W && k < D) {
    const a = choice[(k * band + (p - pLo(k))) * L + l] as number;
    if (a === IDLE) {
      schedule[k++] = IDLE;
      l = IDLE;
    } else if (a === l || C === 0) {
      schedule[k++] = a;
      p++;
      l = a;
    } else {
      for (let j = 0; j < C; j++) schedule[k++] = a;
      l = a;
    }
  }
  return { costUsd: total, schedule: schedule.slice(0, k) };
}

/**
 * The exact optimum when moves across regions pay egress: the checkpoint's region becomes part of
 * the state. States per (tick, progress): idle in region r, on-demand in region r (on-demand runs
 * where the checkpoint is, so it never pays egress), spot in zone z (region of z). A start in a spot
 * zone pays the changeover plus the egress from the state's region. O(states × targets) per cell
 * instead of O(states): still a few hundred ms for a 60-hour window of 195-s ticks and 5 zones.
 */
function offlineOptimumWithEgress(grid: Grid, job: Job): OptimumResult | undefined {
  const W = job.workTicks;
  const D = Math.min(job.deadlineTicks, grid.ticks);
  const C = job.changeoverTicks;
  const Z = grid.zones.length;
  // Regions 0..R−1, and R: no checkpoint yet (the start state; leaving it is free).
  const R = (grid.regions as unknown[]).length + 1;
  const zr = grid.zoneRegion as Uint8Array;
  const eg = job.egressUsd as Float64Array;
  const S = 2 * R + Z; // idle_r = r, od_r = R + r, spot z = 2R + z
  if (S > 255) throw new SpotfleetError('BACKTEST_TOO_LARGE', `the exact optimum with egress supports at most 255 states (${Z} zones in ${R} regions)`);
  if (W + C > D) return undefined;
  const band = D - W + 1;
  const cells = D * band * S;
  if (cells > MAX_OPTIMUM_CELLS) {
    throw new SpotfleetError('BACKTEST_TOO_LARGE', `the exact optimum with egress for ${D} ticks with ${band - 1} ticks of slack and ${Z} zones in ${R} regions needs ${Math.round(cells / 1e6)} MB; use shorter windows or fewer zones`);
  }
  const regionOf = (st: number): number => (st < R ? st : st < 2 * R ? st - R : (zr[st - 2 * R] as number));
  const locOf = (st: number): number => (st < R ? IDLE : st < 2 * R ? ON_DEMAND : SPOT0 + (st - 2 * R));
  // Per location (as in offlineOptimum): tick cost and full-changeover cost from tick k.
  const L = SPOT0 + Z;
  const { cost, change } = locationCosts(grid, job, L, D, C);
  const N = (W + 1) * S;
  const RING = Math.max(C, 1) + 1;
  const ring: Float64Array[] = [];
  for (let i = 0; i < RING; i++) ring.push(new Float64Array(N).fill(Infinity));
  const choice = new Uint8Array(cells);
  const pLo = (k: number): number => Math.max(0, W - (D - k));
  const pHi = (k: number): number => Math.min(W - 1, Math.max(0, k - C));
  const layer = (k: number): Float64Array => ring[k % RING] as Float64Array;
  layer(D).fill(Infinity).fill(0, W * S, N);
  for (let k = D - 1; k >= 0; k--) {
    const v = layer(k);
    v.fill(Infinity, 0, N);
    v.fill(0, W * S, N);
    const next = layer(k + 1);
    const far = k + C <= D ? layer(k + C) : undefined;
    const lo = pLo(k);
    const hi = pHi(k);
    for (let p = lo; p <= hi; p++) {
      const base = (k * band + (p - lo)) * S;
      const nextP = p + 1 === W ? undefined : (p + 1) * S;
      for (let st = 0; st < S; st++) {
        const r = regionOf(st);
        // Idle (stay in, or go to, idle in this region).
        let best = next[p * S + r] as number;
        let arg = r;
        const loc = locOf(st);
        // Stay where it runs.
        if (loc !== IDLE) {
          const ct = (cost[loc] as Float64Array)[k] as number;
          if (ct !== Infinity) {
            const sv = ct + (nextP === undefined ? 0 : (next[nextP + st] as number));
            if (sv <= best) {
              best = sv;
              arg = st;
            }
          }
        }
        // Start somewhere else: on-demand in this region, or a spot zone.
        for (let t = R + r; t < S; t = t === R + r ? 2 * R : t + 1) {
          if (t === st) continue;
          const tl = locOf(t);
          const e = t >= 2 * R ? (eg[r * R + (zr[t - 2 * R] as number)] as number) : 0;
          let m: number;
          if (C === 0) {
            const ct = (cost[tl] as Float64Array)[k] as number;
            m = ct === Infinity ? Infinity : e + ct + (nextP === undefined ? 0 : (next[nextP + t] as number));
          } else {
            const ch = (change[tl] as Float64Array)[k] as number;
            m = far === undefined || ch === Infinity ? Infinity : e + ch + (far[p * S + t] as number);
          }
          if (m < best) {
            best = m;
            arg = t;
          }
        }
        v[p * S + st] = best;
        choice[base + st] = arg;
      }
    }
  }
  const home = job.homeRegion ?? R - 1;
  const total = layer(0)[0 * S + home] as number;
  if (!Number.isFinite(total)) return undefined;
  const schedule = new Uint8Array(D);
  let k = 0;
  let p = 0;
  let st = home;
  while (p < W && k < D) {
    const a = choice[(k * band + (p - pLo(k))) * S + st] as number;
    if (a < R) {
      schedule[k++] = IDLE;
      st = a;
    } else if (a === st || C === 0) {
      schedule[k++] = locOf(a);
      p++;
      st = a;
    } else {
      for (let j = 0; j < C; j++) schedule[k++] = locOf(a);
      st = a;
    }
  }
  return { costUsd: total, schedule: schedule.slice(0, k) };
}
