// How long will spot capacity in a zone last once we are there? Estimated online from what has been
// observed so far (no peeking): the lengths of the zone's completed up-periods, and how long it has
// been up now. Pure; the backtest updates ZoneStats tick by tick (ZoneStatsTracker), plan/watch
// build them from recorded availability observations (zoneStatsFromObservations).
//
// The estimate is the mean residual life at the current age a: among past up-periods longer than a,
// how much longer they lasted. Spot up-periods are heavy-tailed (shared/data: median 0.3–1.4 h,
// mean 0.7–10 h), so capacity that has just appeared tends to vanish soon, and capacity that has
// lasted long tends to last — a memoryless rate (1 / mean) gets both wrong. With little history a
// prior carries the estimate: sixteen pseudo-periods (total weight one) at the quantiles of a
// heavy-tailed Weibull (shape 0.6) with a 1-hour mean, and, once a zone has been up a while, one
// pseudo-sample "as long again as it has lasted" (the Lindy rule), so a zone never seen to end is
// not expected to end at once.
//
// From the same samples come the figures the move decision needs, for a move that costs a
// changeover of C hours without progress and a job with W hours of work left:
//   paidHours     = E[min(r, C + W)]       hours paid there before it ends (or the job does)
//   progressHours = E[min((r − C)+, W)]    hours of progress made there
//   endProb       = P(r < C + W)           chance it ends before the job, forcing another move
// where r is the residual up-time. Staying (no changeover) is the same with C = 0.
import { HOUR_MS } from '../core/units.js';
import { poolZoneKey } from '../core/address.js';

/** What has been seen of one zone's (pool's) spot availability. */
export interface ZoneStats {
  /** Lengths of the most recent completed up-periods, ms, oldest first (at most MAX_UP_PERIODS). */
  upPeriodsMs: number[];
  /** ms epoch since which it has been up without a break; absent when down (or never seen up). */
  upSinceMs?: number;
  /** ms of observation behind these numbers. */
  observedMs: number;
  /** Lengths of the most recent completed down-periods (between two up-periods), ms, oldest first (optional). */
  downPeriodsMs?: number[];
  /** ms epoch since which it has been down; absent when up or unknown. */
  downSinceMs?: number;
  /** Totals of all completed up- and down-periods ever seen, ms (optional; kept by the observers). */
  upTotalMs?: number;
  downTotalMs?: number;
  /** ms epoch of the first observation (live records; the backtest keeps it apart). */
  firstSeenMs?: number;
}

/** One availability observation of a pool/zone (what plan/watch record from refresh). */
export interface AvailabilityObservation {
  /** ms epoch. */
  at: number;
  pool: string;
  zone?: string;
  available: boolean;
}

/** Completed up-periods kept per zone: enough for the tail, bounded so a decision stays O(zones). */
export const MAX_UP_PERIODS = 64;

/** Mean up-time assumed for a zone with no history, ms (1 h: the median of the AWS V100 trace is 0.3–1.4 h). */
export const DEFAULT_PRIOR_UP_MS = HOUR_MS;

/** The key of a pool/zone in `WorkloadDecisionInput.zoneStats`. */
export function zoneStatsKey(o: { pool?: string | undefined; zone?: string | undefined }): string {
  return poolZoneKey(o.pool, o.zone);
}

/**
 * The zone name of a pool's market-wide record: `pool/*` in zoneStats is "some zone of the pool has
 * spot", observed at the same instants as the zones. Zones of one market fail together (a region
 * outage, a capacity crunch), so how often the market as a whole is down is measured, not
 * multiplied out from the zones as if they were independent.
 */
export const ANY_ZONE = '*';

/** The key of a pool's market-wide record in zoneStats. */
export function marketStatsKey(pool: string | undefined): string {
  return poolZoneKey(pool, ANY_ZONE);
}

/**
 * The observations with, per pool, the market-wide one (`pool/*`: some zone of the pool available)
 * for each instant its zones were observed at. zoneStatsFromObservations and advanceZoneStats (plan,
 * watch) take them in this way; the backtest's tracker keeps the same record tick by tick.
 */
export function withMarketObservations(observations: readonly AvailabilityObservation[]): AvailabilityObservation[] {
  const any = new Map<string, AvailabilityObservation>();
  for (const o of observations) {
    if (o.zone === ANY_ZONE) continue;
    const k = `${o.pool}\u0000${o.at}`;
    const m = any.get(k);
    if (!m) any.set(k, { at: o.at, pool: o.pool, zone: ANY_ZONE, available: o.available });
    else if (o.available) m.available = true;
  }
  return [...observations.filter((o) => o.zone !== ANY_ZONE), ...any.values()];
}

/**
 * ZoneStats per pool/zone from a series of observations (any order; each holds until the next
 * one of the same pool/zone), and per pool the market-wide record `pool/*` (withMarketObservations).
 * An up-period is closed by an observation of it being down; the one still open at the end is
 * `upSinceMs`. Pure: plan/watch pass the result as `zoneStats`.
 * @example decideWorkload({ ...input, zoneStats: zoneStatsFromObservations(observed) }, ctx)
 */
export function zoneStatsFromObservations(observations: readonly AvailabilityObservation[]): Record<string, ZoneStats> {
  const byKey = new Map<string, AvailabilityObservation[]>();
  for (const o of withMarketObservations(observations)) {
    const k = zoneStatsKey(o);
    let l = byKey.get(k);
    if (!l) byKey.set(k, (l = []));
    l.push(o);
  }
  const out: Record<string, ZoneStats> = {};
  for (const [k, list] of byKey) {
    list.sort((a, b) => a.at - b.at);
    const s: ZoneStats = { upPeriodsMs: [], observedMs: Math.max(0, (list[list.length - 1] as AvailabilityObservation).at - (list[0] as AvailabilityObservation).at) };
    for (const o of list) observe(s, o.at, o.available);
    out[k] = s;
  }
  return out;
}

function push(list: number[], ms: number): void {
  list.push(ms);
  if (list.length > MAX_UP_PERIODS) list.shift();
}

/** Takes in one observation (in time order): closes an up-period when it goes down, a down-period when it comes back. */
function observe(s: ZoneStats, at: number, available: boolean): void {
  if (available) {
    if (s.upSinceMs === undefined) {
      if (s.downSinceMs !== undefined) {
        push((s.downPeriodsMs ??= []), at - s.downSinceMs);
        s.downTotalMs = (s.downTotalMs ?? 0) + (at - s.downSinceMs);
      }
      delete s.downSinceMs;
      s.upSinceMs = at;
    }
  } else if (s.upSinceMs !== undefined) {
    push(s.upPeriodsMs, at - s.upSinceMs);
    s.upTotalMs = (s.upTotalMs ?? 0) + (at - s.upSinceMs);
    delete s.upSinceMs;
    s.downSinceMs = at;
  }
  // Down from the first observation on: that down-period's start is unknown, so it is not counted.
}

/**
 * Fraction of time a zone has been up, from its recorded up- and down-periods (and the current
 * one), with two prior hours split by `prior` (default one hour of each); `prior` with no history.
 */
export function availabilityFraction(stats: ZoneStats | undefined, now: number, prior = 0.5): number {
  let up = 2 * HOUR_MS * prior;
  let down = 2 * HOUR_MS * (1 - prior);
  if (stats) {
    if (stats.upTotalMs !== undefined) up += stats.upTotalMs;
    else for (const x of stats.upPeriodsMs) up += x;
    if (stats.downTotalMs !== undefined) down += stats.downTotalMs;
    else for (const x of stats.downPeriodsMs ?? []) down += x;
    if (stats.upSinceMs !== undefined && now > stats.upSinceMs) up += now - stats.upSinceMs;
    if (stats.downSinceMs !== undefined && now > stats.downSinceMs) down += now - stats.downSinceMs;
  }
  return up / (up + down);
}

/** Mean length of a zone's up-periods, hours, with one prior period of the prior mean (1 h). */
export function meanUpHours(stats: ZoneStats | undefined, priorUpMs = DEFAULT_PRIOR_UP_MS): number {
  let sum = priorUpMs;
  const p = stats?.upPeriodsMs ?? [];
  for (let i = 0; i < p.length; i++) sum += p[i] as number;
  return sum / (p.length + 1) / HOUR_MS;
}

/** Prior mean down-time (a zone with no history): 1 h. */
export const DEFAULT_PRIOR_DOWN_MS = HOUR_MS;

/**
 * Expected hours until a zone that is down now is back: the mean residual of its past
 * down-periods at the current down-age, with the same heavy-tailed prior as the up-time (mean 1 h)
 * and a "lasts as long again" sample. 0 when it is up.
 */
export function expectedDownHours(stats: ZoneStats | undefined, now: number, priorDownMs = DEFAULT_PRIOR_DOWN_MS): number {
  if (stats?.upSinceMs !== undefined) return 0;
  const since = stats?.downSinceMs;
  const age = since !== undefined && now >= since ? (now - since) / HOUR_MS : 0;
  let n = 0;
  let sum = 0;
  const visit = (r: number, w: number): void => {
    n += w;
    sum += w * r;
  };
  for (const q of PRIOR_UNIT) {
    const r = (q * priorDownMs) / HOUR_MS - age;
    if (r > 0) visit(r, 1 / PRIOR_POINTS);
  }
  if (age > 0) visit(age, 1);
  for (const d of stats?.downPeriodsMs ?? []) {
    const r = d / HOUR_MS - age;
    if (r > 0) visit(r, 1);
  }
  return n === 0 ? age : sum / n;
}

/** The expected figures of being in a zone (see the header), hours. */
export interface UptimeEstimate {
  /** How long it has been up, hours (0 when unknown). */
  ageHours: number;
  /** Expected further up-time, hours (mean residual life at the current age). */
  expectedUpHours: number;
  /** Completed up-periods longer than the current age that the estimate rests on. */
  samples: number;
  /** E[min(r, C + W)]. */
  paidHours: number;
  /** E[min((r − C)+, W)]. */
  progressHours: number;
  /** P(r < C + W). */
  endProb: number;
}

/** Shape of the prior up-time distribution: Weibull k = 0.6, heavy-tailed like the AWS traces. */
const PRIOR_SHAPE = 0.6;
const PRIOR_POINTS = 16;
/** Quantiles of a Weibull(k = 0.6) with mean 1, at (j + ½)/16: the prior's pseudo-periods, scaled by the prior mean. */
const PRIOR_UNIT: readonly number[] = (() => {
  const gamma = 1.5046; // Γ(1 + 1/0.6)
  const out: number[] = [];
  for (let j = 0; j < PRIOR_POINTS; j++) out.push(Math.pow(-Math.log(1 - (j + 0.5) / PRIOR_POINTS), 1 / PRIOR_SHAPE) / gamma);
  // Sixteen quantiles under-represent the far tail: scale them so their mean is the prior mean.
  const mean = out.reduce((a, b) => a + b, 0) / out.length;
  return out.map((q) => q / mean);
})();

function ageOf(stats: ZoneStats | undefined, now: number): number {
  const since = stats?.upSinceMs;
  return since !== undefined && now >= since ? (now - since) / HOUR_MS : 0;
}

// The weighted residual samples behind every estimate: observed up-periods longer than the age
// (weight 1 each), the prior's pseudo-periods longer than the age (total weight 1), and, once the
// zone has been up a while, one pseudo-sample "as long again as it has lasted" (Lindy; weight 1).
// The loops are written out (no callbacks, no allocation): the backtest asks this for every zone
// every tick.

/**
 * Expected up-time of a zone at `now`, and what a stay after a changeover of `changeoverHours`
 * would pay and yield with `workLeftHours` to go. `stats` undefined: the prior alone.
 * @example estimateUptime(stats, now, 0.2, 30).progressHours
 */
export function estimateUptime(stats: ZoneStats | undefined, now: number, changeoverHours: number, workLeftHours: number, priorUpMs = DEFAULT_PRIOR_UP_MS): UptimeEstimate {
  const C = changeoverHours;
  const W = workLeftHours;
  const cap = C + W;
  const age = ageOf(stats, now);
  const prior = priorUpMs / HOUR_MS;
  const periods = stats?.upPeriodsMs;
  const np = periods?.length ?? 0;
  let n = 0;
  let up = 0;
  let paid = 0;
  let prog = 0;
  let ends = 0;
  let samples = 0;
  for (let j = -1 - PRIOR_POINTS; j < np; j++) {
    let r: number;
    let w = 1;
    if (j < -1) {
      r = (PRIOR_UNIT[j + 1 + PRIOR_POINTS] as number) * prior - age;
      w = 1 / PRIOR_POINTS;
    } else if (j === -1) {
      if (!(age > 0)) continue;
      r = age;
    } else {
      r = ((periods as number[])[j] as number) / HOUR_MS - age;
      if (r > 0) samples++;
    }
    if (r <= 0) continue;
    n += w;
    up += w * r;
    paid += w * (r < cap ? r : cap);
    const p = r - C;
    prog += w * (p <= 0 ? 0 : p < W ? p : W);
    if (r < cap) ends += w;
  }
  if (n === 0) return { ageHours: age, expectedUpHours: 0, samples, paidHours: 0, progressHours: 0, endProb: 1 };
  return { ageHours: age, expectedUpHours: up / n, samples, paidHours: paid / n, progressHours: prog / n, endProb: ends / n };
}

/** P(it is still up `dHours` from now | up now), on the same samples as estimateUptime. */
export function survival(stats: ZoneStats | undefined, now: number, dHours: number, priorUpMs = DEFAULT_PRIOR_UP_MS): number {
  const age = ageOf(stats, now);
  const prior = priorUpMs / HOUR_MS;
  let n = 0;
  let alive = 0;
  for (const q of PRIOR_UNIT) {
    const r = q * prior - age;
    if (r <= 0) continue;
    n += 1 / PRIOR_POINTS;
    if (r > dHours) alive += 1 / PRIOR_POINTS;
  }
  if (age > 0) {
    n++;
    if (age > dHours) alive++;
  }
  const periods = stats?.upPeriodsMs ?? [];
  for (let i = 0; i < periods.length; i++) {
    const r = (periods[i] as number) / HOUR_MS - age;
    if (r <= 0) continue;
    n++;
    if (r > dHours) alive++;
  }
  return n === 0 ? 0 : alive / n;
}

/**
 * The live record moved on by one refresh: a copy of `prev` with each observation taken in (in
 * time order). plan and watch keep the result with the last observation, so the estimate grows
 * from everything spotfleet has seen of the market, never from the future.
 */
export function advanceZoneStats(prev: Readonly<Record<string, ZoneStats>> | undefined, observations: readonly AvailabilityObservation[]): Record<string, ZoneStats> {
  const out: Record<string, ZoneStats> = structuredClone({ ...(prev ?? {}) });
  for (const o of withMarketObservations(observations).sort((a, b) => a.at - b.at)) {
    const k = zoneStatsKey(o);
    const s = (out[k] ??= { upPeriodsMs: [], observedMs: 0, firstSeenMs: o.at });
    s.firstSeenMs ??= o.at;
    s.observedMs = Math.max(s.observedMs, o.at - s.firstSeenMs);
    observe(s, o.at, o.available);
  }
  return out;
}

/**
 * Keeps ZoneStats for a fixed list of zones from availability sampled on a clock (the backtest):
 * `observe(atMs, z, available)` once per zone per tick, in time order.
 */
export class ZoneStatsTracker {
  readonly stats: ZoneStats[];
  private readonly first: number[];

  constructor(zones: number) {
    this.stats = [];
    this.first = [];
    for (let z = 0; z < zones; z++) {
      this.stats.push({ upPeriodsMs: [], observedMs: 0 });
      this.first.push(NaN);
    }
  }

  observe(atMs: number, z: number, available: boolean): void {
    const s = this.stats[z] as ZoneStats;
    const f = this.first[z] as number;
    if (Number.isNaN(f)) this.first[z] = atMs;
    else s.observedMs = atMs - f;
    observe(s, atMs, available);
  }
}
