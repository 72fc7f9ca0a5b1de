// How well the expected up-time estimate (src/policy/uptime.ts) predicts what a zone then does, at
// the moments the policy decides to go (back) to it: when it has just come back (age 0) and after
// 0.2, 0.5 and 1 h up. Each zone's availability is fed tick by tick into the same ZoneStatsTracker
// the backtest uses, so every estimate rests on the past only; the bench then looks ahead in the
// trace to score it (that is what a scoring rule does; the estimator never sees it).
// Per market it prints, for the shipped estimator (the zone's own periods), for the same shrunk
// toward the other zones of the market (a reference, not shipped: see below), and for the prior
// alone (no history: what knowing nothing of the zone gives):
// - log-loss of P(the stay yields less than one changeover of progress) = 1 − survival(2C), the
//   question behind "is returning to a flapping zone worth a changeover"; the constant that knows
//   the market's flap share in hindsight is printed as a reference (no online estimator has it);
// - RMSE of the expected progress E[min((r − C)+, W)] against the progress the stay really gave;
// - calibration: the estimates in five bins by expected progress, mean predicted against realized.
// Target: the estimator's log-loss below the prior's on every market (it learns something). Rounds
// of #16 used it to test estimators conditioned on recent flapping before running the policy bench
// (docs/traces.md, "Measured and not adopted").
// The market-shrunk reference (round 4 of #16, not adopted): each figure n/(n + k) × the zone's own
// estimate + k/(n + k) × the same estimate over the other zones' completed up-periods (same age,
// same prior), n the zone's completed up-periods, k = SHRINK_K; all zones go through one tracker,
// so the other zones' periods are the past too.
import { existsSync } from 'node:fs';
import { loadSpotTrace, type SpotTrace } from '../../src/core/trace.js';
import { buildGrid, medianStepMs } from '../../src/backtest/model.js';
import { generateSyntheticTrace, SYNTHETIC_REGIMES } from '../../src/backtest/synthetic.js';
import { estimateUptime, survival, ZoneStatsTracker, type ZoneStats } from '../../src/policy/uptime.js';

const TRACE = process.env.SPOTFLEET_TRACE ?? '/work/shared/data/spot-traces/aws-p3.2xlarge-v100-9az-2023-02-15';
const H = 3_600_000;
/** Changeover and work left, hours (the policy bench's 0.2 h changeover, half of its 40 h job). */
const C = 0.2;
const W = 20;
const AGES_H = [0, 0.2, 0.5, 1];
/** Completed up-periods a zone needs before it is scored (the prior carries the rest). */
const MIN_PERIODS = 3;
/** Pseudo-count of the market-shrunk reference (SPOTFLEET_SHRINK_K; 4 unless set). */
const SHRINK_K = Number(process.env.SPOTFLEET_SHRINK_K ?? 4);

interface Point {
  /** Estimator: P(flap), expected progress. */
  flap: number;
  prog: number;
  /** Shrunk toward the other zones of the market (reference). */
  flapM: number;
  progM: number;
  /** Prior alone. */
  flap0: number;
  prog0: number;
  /** Realized: flapped (residual < 2C), progress made. */
  flapped: boolean;
  progress: number;
}

function score(trace: SpotTrace, out: Point[]): void {
  const dt = medianStepMs(trace);
  const start = trace.times[0] as number;
  const ticks = Math.floor(((trace.times[trace.times.length - 1] as number) - start) / dt);
  const grid = buildGrid(trace, start, ticks, dt);
  const ageTicks = AGES_H.map((a) => Math.round((a * H) / dt));
  const Z = grid.zones.length;
  // For scoring only: the tick each up-period ends at (ticks when it is still up at the end: not scored).
  const endAts: Int32Array[] = [];
  for (let z = 0; z < Z; z++) {
    const avail = grid.avail[z] as Uint8Array;
    const endAt = new Int32Array(ticks).fill(ticks);
    for (let k = ticks - 2; k >= 0; k--) endAt[k] = avail[k + 1] === 1 ? (endAt[k + 1] as number) : k + 1;
    endAts.push(endAt);
  }
  // All zones of the market in one tracker, as the backtest keeps them (the shrunk reference reads
  // the other zones' periods at the same tick).
  const tracker = new ZoneStatsTracker(Z);
  const upSince = new Array<number>(Z).fill(-1);
  for (let k = 0; k < ticks; k++) {
    const now = start + k * dt;
    for (let z = 0; z < Z; z++) tracker.observe(now, z, (grid.avail[z] as Uint8Array)[k] === 1);
    for (let z = 0; z < Z; z++) {
      const endAt = endAts[z] as Int32Array;
      if ((grid.avail[z] as Uint8Array)[k] !== 1) {
        upSince[z] = -1;
        continue;
      }
      if ((upSince[z] as number) < 0) upSince[z] = k;
      const stats = tracker.stats[z] as ZoneStats;
      if (!ageTicks.includes(k - (upSince[z] as number)) || stats.upPeriodsMs.length < MIN_PERIODS || (endAt[k] as number) >= ticks) continue;
      const r = (((endAt[k] as number) - k) * dt) / H;
      const est = estimateUptime(stats, now, C, W);
      const others: ZoneStats = { upPeriodsMs: [], observedMs: stats.observedMs };
      for (let y = 0; y < Z; y++) if (y !== z) others.upPeriodsMs.push(...(tracker.stats[y] as ZoneStats).upPeriodsMs);
      if (stats.upSinceMs !== undefined) others.upSinceMs = stats.upSinceMs;
      const w = others.upPeriodsMs.length > 0 ? stats.upPeriodsMs.length / (stats.upPeriodsMs.length + SHRINK_K) : 1;
      const estO = estimateUptime(others, now, C, W);
      const blind: ZoneStats = { upPeriodsMs: [], observedMs: stats.observedMs };
      if (stats.upSinceMs !== undefined) blind.upSinceMs = stats.upSinceMs;
      const est0 = estimateUptime(blind, now, C, W);
      out.push({
        flap: 1 - survival(stats, now, 2 * C),
        prog: est.progressHours,
        flapM: 1 - (w * survival(stats, now, 2 * C) + (1 - w) * survival(others, now, 2 * C)),
        progM: w * est.progressHours + (1 - w) * estO.progressHours,
        flap0: 1 - survival(blind, now, 2 * C),
        prog0: est0.progressHours,
        flapped: r < 2 * C,
        progress: Math.min(Math.max(r - C, 0), W),
      });
    }
  }
}

function logLoss(ps: number[], ys: boolean[]): number {
  let s = 0;
  for (let i = 0; i < ps.length; i++) {
    const p = Math.min(0.99, Math.max(0.01, ps[i] as number));
    s -= Math.log(ys[i] ? p : 1 - p);
  }
  return s / Math.max(1, ps.length);
}

function rmse(a: number[], b: number[]): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += ((a[i] as number) - (b[i] as number)) ** 2;
  return Math.sqrt(s / Math.max(1, a.length));
}

function calibration(pts: Point[], pred: (p: Point) => number): string {
  const sorted = [...pts].sort((a, b) => pred(a) - pred(b));
  const bins: string[] = [];
  for (let i = 0; i < 5; i++) {
    const g = sorted.slice(Math.floor((i * sorted.length) / 5), Math.floor(((i + 1) * sorted.length) / 5));
    const m = (f: (p: Point) => number): number => g.reduce((a, p) => a + f(p), 0) / Math.max(1, g.length);
    bins.push(`${m(pred).toFixed(2)}→${m((p) => p.progress).toFixed(2)}`);
  }
  return bins.join('  ');
}

function row(label: string, pts: Point[]): boolean {
  const ys = pts.map((p) => p.flapped);
  const share = ys.filter(Boolean).length / Math.max(1, ys.length);
  const ll = logLoss(pts.map((p) => p.flap), ys);
  const llM = logLoss(pts.map((p) => p.flapM), ys);
  const ll0 = logLoss(pts.map((p) => p.flap0), ys);
  const llRef = logLoss(pts.map(() => share), ys);
  const real = pts.map((p) => p.progress);
  const ok = ll < ll0;
  const f = (x: number, d: number, w: number): string => x.toFixed(d).padStart(w);
  console.log(
    `  ${label.padEnd(38)} ${String(pts.length).padStart(6)} ${f(share, 2, 5)}   ${f(ll, 4, 9)} ${f(llM, 4, 9)} ${f(ll0, 4, 7)} ${f(llRef, 4, 7)}   ${f(rmse(pts.map((p) => p.prog), real), 3, 9)} ${f(rmse(pts.map((p) => p.progM), real), 3, 9)} ${f(rmse(pts.map((p) => p.prog0), real), 3, 7)}   ${ok ? 'ok' : 'MISS'}`,
  );
  console.log(`  ${''.padEnd(38)} calibration (expected progress → realized, h, five bins): ${calibration(pts, (p) => p.prog)}`);
  console.log(`  ${''.padEnd(38)} shrunk toward the market (k = ${SHRINK_K}, not shipped):           ${calibration(pts, (p) => p.progM)}`);
  return ok;
}

console.log(`expected up-time at a return (ages ${AGES_H.join(', ')} h), changeover ${C} h, work left ${W} h; a flap: the stay gives less than one changeover of progress`);
console.log(`  ${''.padEnd(38)} ${''.padStart(6)} ${''.padStart(5)}   ${'log-loss of P(flap)'.padEnd(35)}   RMSE of progress`);
console.log(`  ${'market'.padEnd(38)} ${'points'.padStart(6)} ${'flaps'.padStart(5)}   ${'estimator'.padStart(9)} ${'shrunk'.padStart(9)} ${'prior'.padStart(7)} ${'share*'.padStart(7)}   ${'estimator'.padStart(9)} ${'shrunk'.padStart(9)} ${'prior'.padStart(7)}   target: estimator's log-loss < prior's`);
let misses = 0;
if (existsSync(TRACE)) {
  const pts: Point[] = [];
  score(loadSpotTrace(TRACE), pts);
  if (!row('AWS V100 9-zone trace', pts)) misses++;
} else console.log(`  trace ${TRACE} missing: set SPOTFLEET_TRACE`);
for (const regime of SYNTHETIC_REGIMES) {
  const pts: Point[] = [];
  for (let seed = 1; seed <= 10; seed++) score(generateSyntheticTrace(regime, seed), pts);
  if (!row(`synthetic ${regime}, seeds 1–10`, pts)) misses++;
}
console.log("  (* the market's flap share, known only in hindsight: a reference no online estimator has)");
console.log(misses === 0 ? 'all markets: the estimator beats the prior alone' : `${misses} market(s): MISS`);
