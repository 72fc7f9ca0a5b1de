// The replayed market: a spot trace on a scaled, wrapping clock. Pure functions over the trace and
// the clock record; the provider (index.ts) adds files and processes. Simulated times are
// "unwrapped" milliseconds (they keep growing past the trace end), mapped into the trace modulo
// its span, so a long-running fleet replays the trace again instead of running off its end.
import { tickAt, type SpotTrace } from '../../src/core/trace.js';
import { HOUR_MS } from '../../src/core/units.js';

/** What every CLI run agrees on: the wall time the clock started and the sim time it started at. */
export interface SimClock {
  /** ms epoch (wall) when the clock (re)started. */
  wallStart: number;
  /** Unwrapped sim time (ms) at wallStart. */
  simStart: number;
  speed: number;
  /** The configured `start`, so a changed config restarts the clock. */
  startConfig: string | null;
}

export function simNow(clock: SimClock, wall: number): number {
  return clock.simStart + (wall - clock.wallStart) * clock.speed;
}

/** Wall time at which the sim clock reaches `sim`. */
export function wallAt(clock: SimClock, sim: number): number {
  return clock.wallStart + (sim - clock.simStart) / clock.speed;
}

/** A trace with the indexes the market needs. */
export class Market {
  readonly trace: SpotTrace;
  readonly t0: number;
  /** Length of one replay of the trace (last tick lasts one median step). */
  readonly span: number;
  private readonly nextDown: Int32Array[];
  readonly preemptionRate: number[];

  constructor(trace: SpotTrace) {
    this.trace = trace;
    const n = trace.times.length;
    this.t0 = n > 0 ? (trace.times[0] as number) : 0;
    const steps: number[] = [];
    for (let i = 1; i < n; i++) steps.push((trace.times[i] as number) - (trace.times[i - 1] as number));
    steps.sort((a, b) => a - b);
    const step = steps.length > 0 ? (steps[steps.length >> 1] as number) : 60_000;
    this.span = n > 0 ? (trace.times[n - 1] as number) - this.t0 + step : step;
    this.nextDown = trace.available.map((av) => {
      const next = new Int32Array(n);
      let j = -1;
      for (let i = n - 1; i >= 0; i--) {
        if (av[i] === 0) j = i;
        next[i] = j;
      }
      return next;
    });
    // Preemptions per available hour over the whole trace: available→unavailable transitions.
    this.preemptionRate = trace.available.map((av) => {
      let downs = 0;
      let upMs = 0;
      for (let i = 0; i < n; i++) {
        const end = i + 1 < n ? (trace.times[i + 1] as number) : this.t0 + this.span;
        if (av[i] === 1) {
          upMs += end - (trace.times[i] as number);
          if (i + 1 < n && av[i + 1] === 0) downs++;
        }
      }
      return upMs > 0 ? downs / (upMs / HOUR_MS) : 0;
    });
  }

  /** Position in the trace of an unwrapped sim time: the replay cycle and the trace time. */
  wrap(sim: number): { cycle: number; t: number } {
    const cycle = Math.floor((sim - this.t0) / this.span);
    return { cycle, t: sim - cycle * this.span };
  }

  tick(sim: number): number {
    return Math.max(0, tickAt(this.trace, this.wrap(sim).t));
  }

  available(zone: number, sim: number): boolean {
    return (this.trace.available[zone] as Uint8Array)[this.tick(sim)] === 1;
  }

  /** Spot price per instance-hour in force; falls back to the newest known price, then on-demand. */
  spotPrice(zone: number, sim: number): number {
    const prices = this.trace.spotPrice[zone] as Float64Array;
    for (let i = this.tick(sim); i >= 0; i--) {
      const p = prices[i] as number;
      if (!Number.isNaN(p)) return p;
    }
    return this.trace.onDemandPrice[zone] as number;
  }

  /**
   * The first sim moment in [from, to] at which the zone is unavailable, or undefined. A lease
   * acquired at `from` is preempted at that moment.
   */
  firstUnavailable(zone: number, from: number, to: number): number | undefined {
    const n = this.trace.times.length;
    if (n === 0 || to < from) return undefined;
    const next = this.nextDown[zone] as Int32Array;
    const w = this.wrap(from);
    let cycle = w.cycle;
    let i = tickAt(this.trace, w.t);
    if (i >= 0 && (this.trace.available[zone] as Uint8Array)[i] === 0) return from;
    // Bounded: a zone that is never unavailable would otherwise loop through every replay.
    for (let guard = 0; guard < 100_000; guard++) {
      const j = i + 1 < n ? (next[i + 1] as number) : -1;
      if (j >= 0) {
        const at = (this.trace.times[j] as number) + cycle * this.span;
        return at <= to ? at : undefined;
      }
      cycle += 1;
      if (this.t0 + cycle * this.span > to) return undefined;
      i = -1;
    }
    return undefined;
  }
}
