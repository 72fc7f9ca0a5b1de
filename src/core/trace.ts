// Spot traces: price and availability per zone over time. Columnar typed arrays: 45 days × 9 zones
// is ~180k cells, and the sim market and backtest index it by binary search on time.
//
// `loadSpotTrace` reads every format docs/traces.md describes (the wide CSV of shared/data, the
// JSON of `aws ec2 describe-spot-price-history`, SkyPilot's spot-traces JSON, a long-format CSV and
// a probe log) through trace-formats.ts, with a real CSV/JSON parser and file:line errors. What a
// format does not say (no availability, no on-demand price, no start time) is filled with a stated
// default and recorded in `assumptions`, which the backtest prints.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { SpotfleetError } from './errors.js';
import { regionOfZone, type RegionRef } from './egress.js';
import {
  buildTrace,
  detectFormat,
  mergeProbes,
  parseAwsPriceHistory,
  parseLongCsv,
  parseProbeLog,
  parseSkyPilotJson,
  parseWideCsv,
  parseZonesCsv,
  type TraceFormat,
  type ZoneSeries,
} from './trace-formats.js';

export type { TraceFormat } from './trace-formats.js';

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
  /** Per zone, the region its checkpoint lives in (from zones.csv, else from the zone's name). */
  regions?: RegionRef[];
  /** Per zone, instances that could be had in that tick, when the trace counts them (multi-node, probe logs). */
  capacity?: Uint16Array[];
  /** What the loader assumed where the trace is silent (printed by the backtest). */
  assumptions?: string[];
  /** The format it was read as. */
  format?: TraceFormat;
  /** Per zone, times (ms epoch) of the early warnings (rebalance recommendations) the trace records; absent = it records none. */
  warnings?: number[][];
}

export interface LoadTraceOptions {
  /** On-demand USD per instance-hour when the trace has none; default 3.06 (p3.2xlarge), recorded as an assumption. */
  onDemandPrice?: number;
  gpusPerInstance?: number;
  /** Force a format instead of detecting it from the name and content. */
  format?: TraceFormat;
  /** A probe log whose availability replaces the trace's (price-only traces: describe-spot-price-history). */
  probeLog?: string;
  /** Probe logs and counted traces: a zone is available when at least this many instances launched; default 1. */
  minLaunched?: number;
  /** Spot USD per instance-hour for traces without prices (SkyPilot, probe logs); default 0.3 × on-demand. */
  spotPrice?: number;
  /** ms epoch of the first sample for traces without wall-clock times (SkyPilot JSON without start_time, offset_s). */
  startMs?: number;
  /** describe-spot-price-history: keep only this instance type / product description. */
  instanceType?: string;
  productDescription?: string;
}

/**
 * Loads a trace from a file or folder in any supported format (see docs/traces.md).
 * @example loadSpotTrace('examples/traces/aws-describe-spot-price-history.json', { probeLog: 'probes.csv' })
 */
export function loadSpotTrace(path: string, opts: LoadTraceOptions = {}): SpotTrace {
  if (!existsSync(path)) throw new SpotfleetError('TRACE_NOT_FOUND', `trace not found: ${path}`);
  const notes: string[] = [];
  let zonesPath: string | undefined;
  let series: Map<string, ZoneSeries>;
  let format: TraceFormat;
  let source = path;
  if (statSync(path).isDirectory()) {
    const wide = join(path, 'availability_spot_price.csv');
    const jsons = readdirSync(path).filter((f) => extname(f) === '.json').sort();
    if (opts.format !== 'skypilot' && existsSync(wide)) {
      format = 'wide';
      source = wide;
      series = parseWideCsv(readFileSync(wide, 'utf8'), wide, opts, notes);
    } else if (jsons.length > 0) {
      format = 'skypilot';
      series = new Map();
      for (const f of jsons) {
        const file = join(path, f);
        const one = parseSkyPilotJson(readFileSync(file, 'utf8'), file, opts, notes);
        for (const [z, s] of one) {
          if (series.has(z)) throw new SpotfleetError('TRACE_INVALID', `${file}: zone ${z} appears in two files of ${path}`);
          series.set(z, s);
        }
      }
    } else {
      throw new SpotfleetError('TRACE_INVALID', `${path}: no availability_spot_price.csv and no SkyPilot *.json trace in this folder`);
    }
    if (existsSync(join(path, 'zones.csv'))) zonesPath = join(path, 'zones.csv');
  } else {
    const text = readFileSync(path, 'utf8');
    format = opts.format ?? detectFormat(text, path);
    const sibling = join(path, '..', 'zones.csv');
    if (basename(path) !== 'zones.csv' && existsSync(sibling)) zonesPath = sibling;
    switch (format) {
      case 'wide':
        series = parseWideCsv(text, path, opts, notes);
        break;
      case 'long':
        series = parseLongCsv(text, path, notes);
        break;
      case 'probe':
        series = parseProbeLog(text, path, opts.minLaunched ?? 1, notes);
        break;
      case 'aws-json':
        series = parseAwsPriceHistory(text, path, opts, notes);
        break;
      case 'skypilot':
        series = parseSkyPilotJson(text, path, opts, notes);
        break;
    }
  }
  if (opts.probeLog !== undefined) {
    if (!existsSync(opts.probeLog)) throw new SpotfleetError('TRACE_NOT_FOUND', `probe log not found: ${opts.probeLog}`);
    const probes = parseProbeLog(readFileSync(opts.probeLog, 'utf8'), opts.probeLog, opts.minLaunched ?? 1, []);
    series = mergeProbes(series, probes, opts.probeLog, notes);
  }
  const zonesInfo = zonesPath ? parseZonesCsv(readFileSync(zonesPath, 'utf8'), zonesPath) : undefined;
  return buildTrace(series, { source, format, opts, zonesInfo, notes });
}

/** Parses wide trace CSV text (the format of shared/data). Errors name the file and line. */
export function parseSpotTrace(text: string, source: string, opts: LoadTraceOptions & { onDemandByZone?: Map<string, number> } = {}): SpotTrace {
  const notes: string[] = [];
  const series = parseWideCsv(text, source, opts, notes);
  const zonesInfo = opts.onDemandByZone ? new Map([...opts.onDemandByZone].map(([z, p]) => [z, { onDemand: p }])) : undefined;
  return buildTrace(series, { source, format: 'wide', opts, zonesInfo, notes });
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

/** The region of each zone of a trace (the trace's own, else from the zone names). */
export function traceRegions(trace: SpotTrace): RegionRef[] {
  return trace.regions ?? trace.zones.map(regionOfZone);
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
  const out: SpotTrace = {
    times: trace.times.slice(a, b),
    zones: zi.map((i) => trace.zones[i] as string),
    available: zi.map((i) => (trace.available[i] as Uint8Array).slice(a, b)),
    spotPrice: zi.map((i) => (trace.spotPrice[i] as Float64Array).slice(a, b)),
    onDemandPrice: zi.map((i) => trace.onDemandPrice[i] as number),
    gpusPerInstance: trace.gpusPerInstance,
    source: trace.source,
  };
  if (trace.regions) out.regions = zi.map((i) => trace.regions?.[i] as RegionRef);
  if (trace.capacity) out.capacity = zi.map((i) => (trace.capacity?.[i] as Uint16Array).slice(a, b));
  if (trace.assumptions) out.assumptions = trace.assumptions;
  if (trace.format) out.format = trace.format;
  if (trace.warnings) {
    const from = out.times[0] ?? 0;
    const to = b < trace.times.length ? (trace.times[b] as number) : Infinity;
    out.warnings = zi.map((i) => (trace.warnings?.[i] ?? []).filter((t) => t >= from && t < to));
  }
  return out;
}
