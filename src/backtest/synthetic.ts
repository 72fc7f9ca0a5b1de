// Synthetic spot markets for stress: seeded, deterministic traces of the regimes a policy must
// survive on markets nobody has shown us yet (`spotfleet backtest --synthetic REGIME --seed N`).
// Each regime is a story of a real market, not a fit to one trace:
// - flicker: flat prices (as GCP, which reprices at most monthly) and availability that comes and
//   goes; each zone's mean up-time is drawn from minutes to days (log-uniform), up-periods are
//   heavy-tailed (Weibull, shape 0.6) like the AWS traces;
// - region-outage: zones flicker on their own, and every zone of a region goes down together now and
//   then for 1–6 h;
// - price-spikes: plenty of capacity, cheap prices, and spikes of 1.2–3 × on-demand lasting 1–8 h;
// - long-outage: good zones, and outages of the whole market lasting 3–12 h;
// - rare-cheap: many cheap zones, each available ~10% of the time in short stretches.
// Zones are named like AWS zones in two or three regions so egress and region outages mean something.
import { UsageError } from '../core/errors.js';
import { HOUR_MS } from '../core/units.js';
import type { SpotTrace } from '../core/trace.js';

export const SYNTHETIC_REGIMES = ['flicker', 'region-outage', 'price-spikes', 'long-outage', 'rare-cheap'] as const;
export type SyntheticRegime = (typeof SYNTHETIC_REGIMES)[number];

export interface SyntheticOptions {
  /** Length of the trace; default 6 days (a day of history, a 60-hour window and room to overshoot). */
  spanMs?: number;
  /** Sample step; default 2 minutes (fine enough for minute-long up-times). */
  stepMs?: number;
  /** ms epoch of the first sample; default 2024-01-01T00:00:00Z. */
  startMs?: number;
  /** On-demand USD per instance-hour; default 3.06. */
  onDemandPrice?: number;
}

const DAY = 24 * HOUR_MS;

/** mulberry32: a small, fast, well-mixed 32-bit PRNG; enough for reproducible markets. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Weibull with the given mean and shape (shape < 1: heavy tail). */
function weibull(r: () => number, mean: number, shape: number): number {
  // Γ(1 + 1/k) for k = 0.6: 1.5046; general k via a Lanczos-free approximation is not needed here.
  const g = shape === 0.6 ? 1.5046 : shape === 1 ? 1 : gamma1p(1 / shape);
  const scale = mean / g;
  return scale * Math.pow(-Math.log(1 - r()), 1 / shape);
}

function gamma1p(x: number): number {
  // Γ(1 + x) by Stirling with corrections; x in (0, 3].
  const z = 1 + x + 6;
  const lg = (z - 0.5) * Math.log(z) - z + 0.5 * Math.log(2 * Math.PI) + 1 / (12 * z) - 1 / (360 * z ** 3);
  let p = 1;
  for (let i = 0; i < 6; i++) p *= 1 + x + i;
  return Math.exp(lg) / p;
}

function logUniform(r: () => number, lo: number, hi: number): number {
  return Math.exp(Math.log(lo) + r() * (Math.log(hi) - Math.log(lo)));
}

/** Alternating up/down periods over n steps. */
function alternate(r: () => number, n: number, stepMs: number, upMean: number, downMean: number, shape: number, out: Uint8Array): void {
  let up = r() < upMean / (upMean + downMean);
  let k = 0;
  while (k < n) {
    const len = Math.max(1, Math.round(weibull(r, up ? upMean : downMean, shape) / stepMs));
    if (up) out.fill(1, k, Math.min(n, k + len));
    k += len;
    up = !up;
  }
}

/** Random outage intervals (all ones in `mask` set to 0 there). */
function outages(r: () => number, n: number, stepMs: number, everyMs: number, minMs: number, maxMs: number, mask: Uint8Array[]): void {
  let t = weibull(r, everyMs, 1);
  while (t < n * stepMs) {
    const len = minMs + r() * (maxMs - minMs);
    const a = Math.floor(t / stepMs);
    const b = Math.min(n, Math.ceil((t + len) / stepMs));
    for (const m of mask) m.fill(0, a, b);
    t += len + weibull(r, everyMs, 1);
  }
}

/**
 * A seeded synthetic trace of one regime (see the header).
 * @example generateSyntheticTrace('flicker', 3).zones
 */
export function generateSyntheticTrace(regime: string, seed: number, opts: SyntheticOptions = {}): SpotTrace {
  if (!(SYNTHETIC_REGIMES as readonly string[]).includes(regime)) {
    throw new UsageError(`unknown synthetic regime "${regime}" (one of ${SYNTHETIC_REGIMES.join(', ')})`);
  }
  if (!Number.isInteger(seed) || seed < 0) throw new UsageError(`--seed: expected a whole number ≥ 0, got ${seed}`);
  const span = opts.spanMs ?? 6 * DAY;
  const step = opts.stepMs ?? 120_000;
  const start = opts.startMs ?? Date.parse('2024-01-01T00:00:00Z');
  const od = opts.onDemandPrice ?? 3.06;
  const n = Math.floor(span / step);
  // Different regimes with the same seed are different markets.
  const r = rng((seed * 7919 + SYNTHETIC_REGIMES.indexOf(regime as SyntheticRegime) * 104_729 + 1) >>> 0);
  const M = 60_000;
  let zones: string[];
  const avail: Uint8Array[] = [];
  const price: Float64Array[] = [];
  const flat = (p: number): Float64Array => new Float64Array(n).fill(p);
  const jitter = (): number => Math.round((0.28 + r() * 0.06) * od * 10_000) / 10_000;
  switch (regime as SyntheticRegime) {
    case 'flicker': {
      zones = ['us-east-1a', 'us-east-1b', 'us-east-1c', 'us-west-2a', 'us-west-2b', 'us-west-2c'];
      for (let z = 0; z < zones.length; z++) {
        const up = logUniform(r, 5 * M, 3 * DAY);
        const down = up * logUniform(r, 0.15, 1.2);
        const a = new Uint8Array(n);
        alternate(r, n, step, up, down, 0.6, a);
        avail.push(a);
        price.push(flat(jitter()));
      }
      break;
    }
    case 'region-outage': {
      zones = ['us-east-1a', 'us-east-1b', 'us-east-1c', 'us-west-2a', 'us-west-2b', 'us-west-2c'];
      for (let z = 0; z < zones.length; z++) {
        const a = new Uint8Array(n);
        const up = logUniform(r, 1 * HOUR_MS, 12 * HOUR_MS);
        alternate(r, n, step, up, up * logUniform(r, 0.1, 0.5), 0.6, a);
        avail.push(a);
        price.push(flat(jitter()));
      }
      outages(r, n, step, 12 * HOUR_MS, 1 * HOUR_MS, 6 * HOUR_MS, avail.slice(0, 3));
      outages(r, n, step, 12 * HOUR_MS, 1 * HOUR_MS, 6 * HOUR_MS, avail.slice(3, 6));
      break;
    }
    case 'price-spikes': {
      zones = ['us-east-1a', 'us-east-1b', 'us-east-2a', 'us-west-2a'];
      for (let z = 0; z < zones.length; z++) {
        const a = new Uint8Array(n);
        const up = logUniform(r, 6 * HOUR_MS, 3 * DAY);
        alternate(r, n, step, up, up * logUniform(r, 0.02, 0.1), 0.6, a);
        avail.push(a);
        const p = flat(jitter());
        let t = weibull(r, 12 * HOUR_MS, 1);
        while (t < span) {
          const len = HOUR_MS + r() * 7 * HOUR_MS;
          const k0 = Math.floor(t / step);
          const k1 = Math.min(n, Math.ceil((t + len) / step));
          p.fill(Math.round((1.2 + r() * 1.8) * od * 10_000) / 10_000, k0, k1);
          t += len + weibull(r, 12 * HOUR_MS, 1);
        }
        price.push(p);
      }
      break;
    }
    case 'long-outage': {
      zones = ['us-east-1a', 'us-east-2a', 'us-west-2a'];
      for (let z = 0; z < zones.length; z++) {
        const a = new Uint8Array(n);
        const up = logUniform(r, 3 * HOUR_MS, 2 * DAY);
        alternate(r, n, step, up, up * logUniform(r, 0.05, 0.3), 0.6, a);
        avail.push(a);
        price.push(flat(jitter()));
      }
      outages(r, n, step, 18 * HOUR_MS, 3 * HOUR_MS, 12 * HOUR_MS, avail);
      break;
    }
    case 'rare-cheap': {
      zones = [];
      for (const reg of ['us-east-1', 'us-east-2', 'us-west-2']) for (const l of 'abcd') zones.push(`${reg}${l}`);
      for (let z = 0; z < zones.length; z++) {
        const a = new Uint8Array(n);
        const up = logUniform(r, 15 * M, 3 * HOUR_MS);
        alternate(r, n, step, up, up * logUniform(r, 6, 14), 0.6, a);
        avail.push(a);
        price.push(flat(Math.round((0.15 + r() * 0.05) * od * 10_000) / 10_000));
      }
      break;
    }
  }
  const times = new Float64Array(n);
  for (let k = 0; k < n; k++) times[k] = start + k * step;
  return {
    times,
    zones,
    available: avail,
    spotPrice: price,
    onDemandPrice: zones.map(() => od),
    gpusPerInstance: 1,
    source: `synthetic:${regime}:seed=${seed}`,
    assumptions: [`synthetic market "${regime}", seed ${seed}: generated, not observed`],
  };
}
