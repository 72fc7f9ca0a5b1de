// Spot traces: price and availability per zone over time, as in shared/data/spot-traces
// (`timestamp_utc` or `offset_s`, then `<zone>_available` with 1 = available, then
// `<zone>_spot_usd_per_hr`). Columnar typed arrays: 45 days × 9 zones is ~180k cells, and the sim
// market and backtest index it by binary search on time.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { SpotfleetError } from './errors.js';

export interface SpotTrace {
  /** Tick start times, ms since the epoch, ascending. */
  times: Float64Array;
  zones: string[];
  /** Per zone, 1 when spot capacity was available in that tick. */
  available: Uint8Array[];
  /** Per zone, spot price in USD per instance-hour (NaN when the trace has none). */
  spotPrice: Float64Array[];
  /** Per zone, on-demand USD per instance-hour. */
  onDemandPrice: number[];
  /** GPUs per instance in the trace (p3.2xlarge: 1). */
  gpusPerInstance: number;
  source: string;
}

export interface LoadTraceOptions {
  /** On-demand price when the trace has no zones.csv; default 3.06 (p3.2xlarge). */
  onDemandPrice?: number;
  gpusPerInstance?: number;
}

/** Loads a trace from a CSV file, or a folder holding `availability_spot_price.csv` (+ `zones.csv`). */
export function loadSpotTrace(path: string, opts: LoadTraceOptions = {}): SpotTrace {
  if (!existsSync(path)) throw new SpotfleetError('TRACE_NOT_FOUND', `trace not found: ${path}`);
  let csvPath = path;
  let zonesPath: string | undefined;
  if (statSync(path).isDirectory()) {
    csvPath = join(path, 'availability_spot_price.csv');
    if (!existsSync(csvPath)) throw new SpotfleetError('TRACE_INVALID', `${path}: no availability_spot_price.csv in this folder`);
    zonesPath = join(path, 'zones.csv');
  } else {
    const sibling = join(path, '..', 'zones.csv');
    if (existsSync(sibling)) zonesPath = sibling;
  }
  const onDemand = zonesPath && existsSync(zonesPath) ? parseZonesCsv(readFileSync(zonesPath, 'utf8')) : new Map<string, number>();
  return parseSpotTrace(readFileSync(csvPath, 'utf8'), csvPath, { ...opts, onDemandByZone: onDemand });
}

function parseZonesCsv(text: string): Map<string, number> {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  const head = (lines[0] ?? '').split(',');
  const zi = head.indexOf('zone');
  const oi = head.indexOf('on_demand_usd_per_hr');
  const out = new Map<string, number>();
  if (zi < 0 || oi < 0) return out;
  for (const l of lines.slice(1)) {
    const c = l.split(',');
    const v = Number(c[oi]);
    if (c[zi] && Number.isFinite(v)) out.set(c[zi], v);
  }
  return out;
}

/** Parses trace CSV text. Errors name the file and line. */
export function parseSpotTrace(
  text: string,
  source: string,
  opts: LoadTraceOptions & { onDemandByZone?: Map<string, number> } = {},
): SpotTrace {
  const lines = text.split(/\r?\n/);
  while (lines.length > 0 && (lines[lines.length - 1] ?? '').trim() === '') lines.pop();
  const header = (lines[0] ?? '').split(',').map((h) => h.trim());
  const tsCol = header.indexOf('timestamp_utc');
  const offCol = header.indexOf('offset_s');
  if (tsCol < 0 && offCol < 0) throw new SpotfleetError('TRACE_INVALID', `${source}:1:1: expected a timestamp_utc or offset_s column`);
  const zones: string[] = [];
  const availCols: number[] = [];
  const priceCols: number[] = [];
  header.forEach((h, i) => {
    const m = /^(.+)_available$/.exec(h);
    if (m?.[1]) {
      zones.push(m[1]);
      availCols.push(i);
      priceCols.push(header.indexOf(`${m[1]}_spot_usd_per_hr`));
    }
  });
  if (zones.length === 0) throw new SpotfleetError('TRACE_INVALID', `${source}:1:1: expected at least one <zone>_available column`);
  const n = lines.length - 1;
  const times = new Float64Array(n);
  const available = zones.map(() => new Uint8Array(n));
  const spotPrice = zones.map(() => new Float64Array(n).fill(Number.NaN));
  for (let r = 0; r < n; r++) {
    const cells = (lines[r + 1] as string).split(',');
    const t = tsCol >= 0 ? Date.parse(cells[tsCol] ?? '') : Number(cells[offCol] ?? '') * 1000;
    if (!Number.isFinite(t)) throw new SpotfleetError('TRACE_INVALID', `${source}:${r + 2}:1: expected a time, got "${cells[tsCol >= 0 ? tsCol : offCol] ?? ''}"`);
    if (r > 0 && t < (times[r - 1] as number)) throw new SpotfleetError('TRACE_INVALID', `${source}:${r + 2}:1: times must not go backwards`);
    times[r] = t;
    for (let z = 0; z < zones.length; z++) {
      const a = Number(cells[availCols[z] as number]);
      (available[z] as Uint8Array)[r] = a >= 1 ? 1 : 0;
      const pc = priceCols[z] as number;
      if (pc >= 0) {
        const p = Number(cells[pc]);
        if (Number.isFinite(p)) (spotPrice[z] as Float64Array)[r] = p;
      }
    }
  }
  const od = opts.onDemandPrice ?? 3.06;
  return {
    times,
    zones,
    available,
    spotPrice,
    onDemandPrice: zones.map((z) => opts.onDemandByZone?.get(z) ?? od),
    gpusPerInstance: opts.gpusPerInstance ?? 1,
    source,
  };
}

/** Index of the tick in force at time t (the last tick starting at or before t); -1 before the trace. */
export function tickAt(trace: SpotTrace, t: number): number {
  const ts = trace.times;
  if (ts.length === 0 || t < (ts[0] as number)) return -1;
  let lo = 0;
  let hi = ts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if ((ts[mid] as number) <= t) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** Restricts a trace to some zones (by name) and a time window [from, to). */
export function sliceTrace(trace: SpotTrace, opts: { zones?: string[]; from?: number; to?: number }): SpotTrace {
  const zi = opts.zones ? opts.zones.map((z) => {
    const i = trace.zones.indexOf(z);
    if (i < 0) throw new SpotfleetError('TRACE_INVALID', `zone "${z}" is not in the trace (it has ${trace.zones.join(', ')})`);
    return i;
  }) : trace.zones.map((_, i) => i);
  const a = opts.from === undefined ? 0 : Math.max(0, tickAt(trace, opts.from));
  let b = trace.times.length;
  if (opts.to !== undefined) {
    b = a;
    while (b < trace.times.length && (trace.times[b] as number) < opts.to) b++;
  }
  return {
    times: trace.times.slice(a, b),
    zones: zi.map((i) => trace.zones[i] as string),
    available: zi.map((i) => (trace.available[i] as Uint8Array).slice(a, b)),
    spotPrice: zi.map((i) => (trace.spotPrice[i] as Float64Array).slice(a, b)),
    onDemandPrice: zi.map((i) => trace.onDemandPrice[i] as number),
    gpusPerInstance: trace.gpusPerInstance,
    source: trace.source,
  };
}
