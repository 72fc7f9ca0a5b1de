// Readers for each trace format of docs/traces.md. Each turns its input into per-zone step series
// (a value holds from its time until the next one), which `buildTrace` aligns on the union of all
// times into a SpotTrace. CSV goes through csv-parse (quotes, BOM, CRLF), JSON through JSON.parse;
// every bad row or value is reported as file:line (for JSON, the line is found by re-reading the
// text with positions, only on that error path).
import { createRequire } from 'node:module';
import type { CsvError } from 'csv-parse/sync';
import type { Node } from 'yaml';
import { SpotfleetError } from './errors.js';
import { regionOfZone, type RegionRef } from './egress.js';
import type { LoadTraceOptions, SpotTrace } from './trace.js';

// The parsers load when a trace is read: `validate` and `plan` import this module through the sim
// provider without reading any trace, and loading them costs every run milliseconds.
const requireHere = createRequire(import.meta.url);

/** wide: shared/data CSV; long: one row per zone and time; probe: launch probes; aws-json: describe-spot-price-history; skypilot: spot-traces JSON. */
export type TraceFormat = 'wide' | 'long' | 'probe' | 'aws-json' | 'skypilot';

/** One zone's samples; each holds until the next. */
export interface ZoneSeries {
  times: number[];
  /** 1 available, 0 not. */
  avail: number[];
  /** USD per instance-hour; NaN = unknown in that sample. */
  price: number[];
  /** Instances available, when the source counts them. */
  count?: number[];
  /** True when the source gives no availability at all (prices only): assumed available while priced. */
  assumedAvailable?: boolean;
  /** True when the source gives no prices at all. */
  noPrices?: boolean;
  onDemand?: number;
  region?: string;
  /** Times of early warnings (rebalance recommendations) the source records for the zone. */
  warnings?: number[];
}

export interface ZoneInfo {
  onDemand?: number;
  region?: string;
}

function bad(source: string, line: number, msg: string): SpotfleetError {
  return new SpotfleetError('TRACE_INVALID', `${source}:${line}: ${msg}`);
}

interface CsvRows {
  header: string[];
  rows: { line: number; cells: string[] }[];
}

/** CSV text → header and rows with their line numbers (BOM, quotes and CRLF handled by csv-parse). */
export function readCsv(text: string, source: string): CsvRows {
  const records: { record: string[]; line: number }[] = [];
  const { parse: parseCsv, CsvError: CsvErrorClass } = requireHere('csv-parse/sync') as typeof import('csv-parse/sync');
  try {
    // on_record hands us the line each record ends on (cheaper than `info`, which copies per record).
    parseCsv(text, {
      bom: true,
      skip_empty_lines: true,
      relax_column_count: true,
      trim: true,
      on_record: (record: string[], ctx: { lines: number }) => {
        records.push({ record, line: ctx.lines });
        return null;
      },
    });
  } catch (e) {
    if (e instanceof CsvErrorClass) {
      const line = (e as CsvError & { lines?: number }).lines ?? 1;
      throw bad(source, line, `not valid CSV: ${e.message.replace(/^[^:]*: /, '')}`);
    }
    throw e;
  }
  const first = records[0];
  if (!first) throw bad(source, 1, 'the file is empty: expected a header row');
  return { header: first.record.map((h) => h.trim()), rows: records.slice(1).map((r) => ({ line: r.line, cells: r.record })) };
}

/**
 * A time: ISO-8601 (a time without an offset is UTC, as the upstream traces mean it), or a number of
 * seconds since the epoch (milliseconds when ≥ 1e12). NaN when it is neither.
 */
export function parseTraceTime(s: string): number {
  const t = s.trim();
  if (/^\d+(\.\d+)?$/.test(t)) {
    const n = Number(t);
    return n >= 1e12 ? n : n * 1000;
  }
  let iso = t.replace(/^(\d{4}-\d{2}-\d{2}) (\d)/, '$1T$2');
  if (/^\d{4}-\d{2}-\d{2}T[\d:.]+$/.test(iso)) iso += 'Z';
  if (!/^\d{4}-\d{2}-\d{2}/.test(iso)) return NaN;
  return Date.parse(iso);
}

function num(cell: string | undefined): number {
  if (cell === undefined) return NaN;
  const t = cell.trim().replace(/^\$/, '');
  return t === '' ? NaN : Number(t);
}

function parseAvailable(cell: string): number | undefined {
  const t = cell.trim().toLowerCase();
  if (t === '1' || t === 'true' || t === 'yes' || t === 'available') return 1;
  if (t === '0' || t === 'false' || t === 'no' || t === 'unavailable') return 0;
  return undefined;
}

function series(): ZoneSeries {
  return { times: [], avail: [], price: [] };
}

/** Guesses the format from the file name and its first line / top-level keys. */
export function detectFormat(text: string, source: string): TraceFormat {
  const head = text.replace(/^\uFEFF/, '').trimStart();
  if (head.startsWith('{') || head.startsWith('[')) {
    if (/"SpotPriceHistory"/.test(head.slice(0, 4096)) || head.startsWith('[')) return 'aws-json';
    if (/"data"\s*:/.test(head)) return 'skypilot';
    throw bad(source, 1, 'a JSON trace must be `aws ec2 describe-spot-price-history` output ({"SpotPriceHistory": [...]}) or SkyPilot spot-traces JSON ({"metadata": {"gap_seconds": N}, "data": [...]})');
  }
  const firstLine = (head.split(/\r?\n/, 1)[0] ?? '').toLowerCase();
  const cols = firstLine.split(',').map((c) => c.trim().replace(/^"|"$/g, ''));
  if (cols.includes('requested') && cols.includes('launched')) return 'probe';
  if (cols.includes('zone') && cols.includes('available')) return 'long';
  if (cols.some((c) => /_(available|running)(_of_\d+)?$/.test(c))) return 'wide';
  throw bad(source, 1, 'unknown trace format: expected a wide CSV (timestamp_utc, <zone>_available, <zone>_spot_usd_per_hr), a long CSV (timestamp, zone, available, spot_price), a probe log (timestamp, zone, requested, launched), or JSON (see docs/traces.md)');
}

/**
 * The wide CSV: `timestamp_utc` (or `timestamp`, or `offset_s`), `<zone>_available` (1/0) or
 * `<zone>_available_of_N` / `<zone>_running_of_N` (counts), and `<zone>_spot_usd_per_hr`; an
 * optional `<zone>_rebalance` (1 on a row = a rebalance recommendation then) records early warnings.
 */
export function parseWideCsv(text: string, source: string, opts: LoadTraceOptions, notes: string[]): Map<string, ZoneSeries> {
  const { header, rows } = readCsv(text, source);
  const tsCol = header.findIndex((h) => h === 'timestamp_utc' || h === 'timestamp');
  const offCol = header.indexOf('offset_s');
  if (tsCol < 0 && offCol < 0) throw bad(source, 1, 'expected a timestamp_utc, timestamp or offset_s column');
  const cols: { zone: string; avail: number; price: number; counted: boolean; warn: number }[] = [];
  header.forEach((h, i) => {
    const m = /^(.+)_(available|running)(_of_\d+)?$/.exec(h);
    if (m?.[1]) cols.push({ zone: m[1], avail: i, price: header.indexOf(`${m[1]}_spot_usd_per_hr`), counted: m[3] !== undefined, warn: header.indexOf(`${m[1]}_rebalance`) });
  });
  if (cols.length === 0) throw bad(source, 1, 'expected at least one <zone>_available column');
  const minLaunched = opts.minLaunched ?? 1;
  const base = offCol >= 0 && tsCol < 0 ? opts.startMs ?? 0 : 0;
  if (offCol >= 0 && tsCol < 0) {
    notes.push(opts.startMs !== undefined
      ? `times: offset_s counted from ${new Date(base).toISOString()} (--trace-start)`
      : 'times: the trace has offsets only (offset_s); counted from 1970-01-01T00:00:00Z (give --trace-start for real dates)');
  }
  const out = new Map<string, ZoneSeries>();
  for (const c of cols) {
    const s = series();
    if (c.counted) s.count = [];
    if (c.price < 0) s.noPrices = true;
    if (c.warn >= 0) s.warnings = [];
    out.set(c.zone, s);
  }
  const ended = new Set<string>();
  let prev = -Infinity;
  for (const { line, cells } of rows) {
    const raw = cells[tsCol >= 0 ? tsCol : offCol] ?? '';
    const t = tsCol >= 0 ? parseTraceTime(raw) : base + num(raw) * 1000;
    if (!Number.isFinite(t)) throw bad(source, line, `expected a time in column ${tsCol >= 0 ? header[tsCol] : 'offset_s'}, got "${raw}"`);
    if (t < prev) throw bad(source, line, 'times must not go backwards');
    prev = t;
    for (const c of cols) {
      const s = out.get(c.zone) as ZoneSeries;
      const cell = (cells[c.avail] ?? '').trim();
      let a: number;
      if (cell === '') {
        // Multi-node traces leave a zone's column empty past its end: no data, counted unavailable.
        if (!ended.has(c.zone)) {
          ended.add(c.zone);
          notes.push(`${c.zone}: no availability from ${new Date(t).toISOString()} on (empty cells), counted unavailable`);
        }
        a = 0;
        s.count?.push(0);
      } else if (c.counted) {
        const n = Number(cell);
        if (!Number.isInteger(n) || n < 0) throw bad(source, line, `${header[c.avail] as string}: expected a whole number of instances ≥ 0, got "${cell}"`);
        a = n >= minLaunched ? 1 : 0;
        s.count?.push(n);
      } else {
        const v = parseAvailable(cell);
        if (v === undefined) throw bad(source, line, `${header[c.avail] as string}: expected 1 (available) or 0, got "${cell}"`);
        a = v;
      }
      let p = NaN;
      if (c.price >= 0) {
        const pc = (cells[c.price] ?? '').trim();
        if (pc !== '') {
          p = num(pc);
          if (!Number.isFinite(p) || p < 0) throw bad(source, line, `${header[c.price] as string}: expected a price in USD per hour, got "${pc}"`);
        }
      }
      s.times.push(t);
      s.avail.push(a);
      s.price.push(p);
      if (c.warn >= 0) {
        const w = (cells[c.warn] ?? '').trim();
        if (w !== '' && w !== '0') {
          if (w !== '1') throw bad(source, line, `${header[c.warn] as string}: expected 1 (a rebalance recommendation) or 0, got "${w}"`);
          s.warnings?.push(t);
        }
      }
    }
  }
  if (cols.some((c) => c.counted)) notes.push(`availability: a zone counts as available when at least ${minLaunched} instance(s) of its count are up (--min-launched)`);
  return out;
}

function columnIndex(header: string[], names: string[], source: string, required: boolean): number {
  const lower = header.map((h) => h.toLowerCase());
  for (const n of names) {
    const i = lower.indexOf(n);
    if (i >= 0) return i;
  }
  if (required) throw bad(source, 1, `expected a column named ${names.map((n) => `"${n}"`).join(' or ')} (the header has ${header.join(', ')})`);
  return -1;
}

/** The time and the zone of a row of a long CSV (prices, or a probe log). */
function timeAndZone(cells: string[], ti: number, zi: number, source: string, line: number): { t: number; z: string } {
  const rawT = cells[ti] ?? '';
  const t = parseTraceTime(rawT);
  if (!Number.isFinite(t)) throw bad(source, line, `timestamp: expected an ISO-8601 time or epoch seconds, got "${rawT}"`);
  const z = (cells[zi] ?? '').trim();
  if (z === '') throw bad(source, line, 'zone: expected a zone name, got an empty cell');
  return { t, z };
}

/** The long CSV: `timestamp, zone, available, spot_price[, on_demand_price][, region]`, one row per zone and time. */
export function parseLongCsv(text: string, source: string, notes: string[]): Map<string, ZoneSeries> {
  const { header, rows } = readCsv(text, source);
  const ti = columnIndex(header, ['timestamp', 'timestamp_utc', 'time'], source, true);
  const zi = columnIndex(header, ['zone', 'availability_zone'], source, true);
  const ai = columnIndex(header, ['available'], source, true);
  const pi = columnIndex(header, ['spot_price', 'spot_usd_per_hr'], source, true);
  const oi = columnIndex(header, ['on_demand_price', 'on_demand_usd_per_hr'], source, false);
  const ri = columnIndex(header, ['region'], source, false);
  const out = new Map<string, ZoneSeries>();
  const events: { t: number; z: string; a: number; p: number; line: number }[] = [];
  for (const { line, cells } of rows) {
    const { t, z } = timeAndZone(cells, ti, zi, source, line);
    const a = parseAvailable(cells[ai] ?? '');
    if (a === undefined) throw bad(source, line, `available: expected 1/0 or true/false, got "${cells[ai] ?? ''}"`);
    const pc = (cells[pi] ?? '').trim();
    const p = pc === '' ? NaN : num(pc);
    if (pc !== '' && (!Number.isFinite(p) || p < 0)) throw bad(source, line, `spot_price: expected USD per hour, got "${pc}"`);
    let s = out.get(z);
    if (!s) {
      s = series();
      out.set(z, s);
    }
    if (oi >= 0) {
      const oc = (cells[oi] ?? '').trim();
      if (oc !== '') {
        const o = num(oc);
        if (!Number.isFinite(o) || o < 0) throw bad(source, line, `on_demand_price: expected USD per hour, got "${oc}"`);
        if (s.onDemand !== undefined && s.onDemand !== o && !notes.some((n) => n.startsWith(`${z}: on-demand price changes`))) notes.push(`${z}: on-demand price changes over the trace; the last one ($${o}/h) is used throughout`);
        s.onDemand = o;
      }
    }
    if (ri >= 0 && (cells[ri] ?? '').trim() !== '') s.region = (cells[ri] as string).trim();
    events.push({ t, z, a, p, line });
  }
  if (events.length === 0) throw bad(source, 2, 'no rows after the header');
  // Rows may come in any order (grouped by zone, or by time): sort per zone by time, stable.
  events.sort((x, y) => x.t - y.t || x.line - y.line);
  for (const e of events) {
    const s = out.get(e.z) as ZoneSeries;
    s.times.push(e.t);
    s.avail.push(e.a);
    s.price.push(e.p);
  }
  return out;
}

/** A probe log: `timestamp, zone, requested, launched`; available when launched ≥ minLaunched. */
export function parseProbeLog(text: string, source: string, minLaunched: number, notes: string[]): Map<string, ZoneSeries> {
  const { header, rows } = readCsv(text, source);
  const ti = columnIndex(header, ['timestamp', 'timestamp_utc', 'time'], source, true);
  const zi = columnIndex(header, ['zone', 'availability_zone'], source, true);
  const qi = columnIndex(header, ['requested'], source, true);
  const li = columnIndex(header, ['launched'], source, true);
  const events: { t: number; z: string; n: number; line: number }[] = [];
  for (const { line, cells } of rows) {
    const { t, z } = timeAndZone(cells, ti, zi, source, line);
    const q = Number((cells[qi] ?? '').trim());
    const n = Number((cells[li] ?? '').trim());
    if (!Number.isInteger(q) || q < 1) throw bad(source, line, `requested: expected a whole number ≥ 1, got "${cells[qi] ?? ''}"`);
    if (!Number.isInteger(n) || n < 0 || n > q) throw bad(source, line, `launched: expected a whole number from 0 to requested (${q}), got "${cells[li] ?? ''}"`);
    events.push({ t, z, n, line });
  }
  if (events.length === 0) throw bad(source, 2, 'no probes after the header');
  events.sort((x, y) => x.t - y.t || x.line - y.line);
  const out = new Map<string, ZoneSeries>();
  for (const e of events) {
    let s = out.get(e.z);
    if (!s) {
      s = { ...series(), count: [], noPrices: true };
      out.set(e.z, s);
    }
    s.times.push(e.t);
    s.avail.push(e.n >= minLaunched ? 1 : 0);
    s.price.push(NaN);
    s.count?.push(e.n);
  }
  notes.push(`availability: from probes, a zone is available when at least ${minLaunched} instance(s) launched (--min-launched), until its next probe`);
  return out;
}

/** Line and column of the node at `path` in JSON text (for error messages only: slow, exact). */
export function jsonPosition(text: string, path: (string | number)[]): { line: number; col: number } {
  const { LineCounter, parseDocument, isMap, isSeq } = requireHere('yaml') as typeof import('yaml');
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, keepSourceTokens: false });
  let node: unknown = doc.contents;
  for (const k of path) {
    if (isMap(node)) node = node.get(k, true);
    else if (isSeq(node) && typeof k === 'number') node = node.get(k, true);
    else break;
  }
  const range = (node as Node | undefined)?.range;
  return lc.linePos(range ? range[0] : 0);
}

function parseJson(text: string, source: string): unknown {
  try {
    return JSON.parse(text.replace(/^\uFEFF/, '')) as unknown;
  } catch (e) {
    // Node reports "... at position N" (and line/column on newer versions): turn N into line:col.
    const m = /position (\d+)/.exec((e as Error).message);
    let line = 1;
    if (m?.[1]) line = text.slice(0, Number(m[1])).split('\n').length;
    throw bad(source, line, `not valid JSON: ${(e as Error).message}`);
  }
}

/**
 * `aws ec2 describe-spot-price-history --output json`: `{ "SpotPriceHistory": [{ AvailabilityZone,
 * InstanceType, ProductDescription, SpotPrice, Timestamp }] }` (or the bare array from `--query`).
 * Prices only: availability is assumed wherever a price is in force, and recorded as an assumption.
 */
export function parseAwsPriceHistory(text: string, source: string, opts: LoadTraceOptions, notes: string[]): Map<string, ZoneSeries> {
  const doc = parseJson(text, source);
  const list = Array.isArray(doc) ? doc : (doc as { SpotPriceHistory?: unknown } | null)?.SpotPriceHistory;
  const listPath: (string | number)[] = Array.isArray(doc) ? [] : ['SpotPriceHistory'];
  if (!Array.isArray(list)) throw bad(source, 1, 'expected {"SpotPriceHistory": [...]} as printed by `aws ec2 describe-spot-price-history --output json`');
  const at = (i: number, key?: string): number => jsonPosition(text, key ? [...listPath, i, key] : [...listPath, i]).line;
  const types = new Set<string>();
  const products = new Set<string>();
  const events: { t: number; z: string; p: number; i: number }[] = [];
  list.forEach((r: unknown, i) => {
    if (typeof r !== 'object' || r === null) throw bad(source, at(i), 'expected a price record object');
    const rec = r as Record<string, unknown>;
    for (const k of ['AvailabilityZone', 'SpotPrice', 'Timestamp']) {
      if (typeof rec[k] !== 'string' && typeof rec[k] !== 'number') throw bad(source, at(i), `record ${i + 1}: expected "${k}"`);
    }
    const type = typeof rec.InstanceType === 'string' ? rec.InstanceType : '';
    const prod = typeof rec.ProductDescription === 'string' ? rec.ProductDescription : '';
    if (opts.instanceType !== undefined && type !== opts.instanceType) return;
    if (opts.productDescription !== undefined && prod !== opts.productDescription) return;
    types.add(type);
    products.add(prod);
    const p = Number(rec.SpotPrice);
    if (!Number.isFinite(p) || p < 0) throw bad(source, at(i, 'SpotPrice'), `SpotPrice: expected a price in USD per hour, got ${JSON.stringify(rec.SpotPrice)}`);
    const t = parseTraceTime(String(rec.Timestamp));
    if (!Number.isFinite(t)) throw bad(source, at(i, 'Timestamp'), `Timestamp: expected an ISO-8601 time, got ${JSON.stringify(rec.Timestamp)}`);
    events.push({ t, z: String(rec.AvailabilityZone), p, i });
  });
  if (types.size > 1) throw new SpotfleetError('TRACE_INVALID', `${source}: prices of several instance types (${[...types].sort().join(', ')}): pick one with --instance-type`);
  if (products.size > 1) throw new SpotfleetError('TRACE_INVALID', `${source}: prices of several products (${[...products].sort().join(', ')}): pick one with --product-description`);
  if (events.length === 0) throw bad(source, 1, 'no price records' + (opts.instanceType !== undefined ? ` for ${opts.instanceType}` : ''));
  // AWS lists newest first; a price holds from its timestamp until the zone's next one.
  events.sort((a, b) => a.t - b.t || a.i - b.i);
  const out = new Map<string, ZoneSeries>();
  for (const e of [...events].sort((a, b) => a.z.localeCompare(b.z))) if (!out.has(e.z)) out.set(e.z, { ...series(), assumedAvailable: true });
  for (const e of events) {
    const s = out.get(e.z) as ZoneSeries;
    s.times.push(e.t);
    s.avail.push(1);
    s.price.push(e.p);
  }
  notes.push(`availability: assumed available whenever a price is in force (describe-spot-price-history has prices only; give --probe-log for real availability)`);
  return out;
}

/**
 * SkyPilot spot-traces JSON (`{"metadata": {"gap_seconds": N}, "data": [...]}`, one file per zone,
 * named `<zone>_<gpu>_<count>.json`); data is 1/0 or a count of instances available. Optional
 * `metadata.start_time` (ISO or epoch seconds) and `prices` (one per sample).
 */
export function parseSkyPilotJson(text: string, source: string, opts: LoadTraceOptions, notes: string[]): Map<string, ZoneSeries> {
  const doc = parseJson(text, source) as { metadata?: { gap_seconds?: unknown; start_time?: unknown }; data?: unknown; prices?: unknown } | null;
  const gap = Number(doc?.metadata?.gap_seconds);
  if (!(gap > 0)) throw bad(source, jsonPosition(text, ['metadata']).line, 'expected metadata.gap_seconds > 0');
  const data = doc?.data;
  if (!Array.isArray(data)) throw bad(source, 1, 'expected "data": [...] (instances available per tick)');
  const prices = Array.isArray(doc?.prices) ? (doc.prices as unknown[]) : undefined;
  if (prices && prices.length !== data.length) throw bad(source, jsonPosition(text, ['prices']).line, `prices has ${prices.length} entries, data has ${data.length}`);
  let start = opts.startMs;
  const st = doc?.metadata?.start_time;
  if (st !== undefined) {
    start = typeof st === 'string' || typeof st === 'number' ? parseTraceTime(String(st)) : NaN;
    if (!Number.isFinite(start)) throw bad(source, jsonPosition(text, ['metadata', 'start_time']).line, `metadata.start_time: expected an ISO-8601 time or epoch seconds, got ${JSON.stringify(st)}`);
  } else if (start === undefined) {
    start = 0;
    if (!notes.some((n) => n.startsWith('times: SkyPilot'))) notes.push('times: SkyPilot traces carry no start time; counted from 1970-01-01T00:00:00Z (give --trace-start for real dates)');
  }
  const file = source.split(/[\\/]/).pop() ?? source;
  const zone = file.replace(/\.json$/, '').split('_')[0] ?? file;
  const minLaunched = opts.minLaunched ?? 1;
  const s: ZoneSeries = { ...series(), count: [] };
  if (!prices) s.noPrices = true;
  for (let i = 0; i < data.length; i++) {
    const v: unknown = data[i];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw bad(source, jsonPosition(text, ['data', i]).line, `data[${i}]: expected a whole number of instances ≥ 0, got ${JSON.stringify(v)}`);
    s.times.push(start + i * gap * 1000);
    s.avail.push(v >= minLaunched ? 1 : 0);
    s.count?.push(v);
    let p = NaN;
    if (prices) {
      p = Number(prices[i]);
      if (!Number.isFinite(p) || p < 0) throw bad(source, jsonPosition(text, ['prices', i]).line, `prices[${i}]: expected USD per hour, got ${JSON.stringify(prices[i])}`);
    }
    s.price.push(p);
  }
  if (!notes.some((n) => n.startsWith('availability: SkyPilot'))) notes.push(`availability: SkyPilot data counts instances; available when at least ${minLaunched} (--min-launched)`);
  return new Map([[zone, s]]);
}

/** Replaces the availability of price series with a probe log's (prices stay; zones without probes keep the assumption). */
export function mergeProbes(prices: Map<string, ZoneSeries>, probes: Map<string, ZoneSeries>, probeSource: string, notes: string[]): Map<string, ZoneSeries> {
  const out = new Map<string, ZoneSeries>();
  for (const [z, ps] of prices) {
    const pr = probes.get(z);
    if (!pr) {
      out.set(z, ps);
      notes.push(`${z}: not in the probe log ${probeSource}; ${ps.assumedAvailable ? 'assumed available while priced' : 'availability from the trace'}`);
      continue;
    }
    const times = [...new Set([...ps.times, ...pr.times])].sort((a, b) => a - b);
    const m: ZoneSeries = { times, avail: [], price: [], count: [] };
    if (ps.onDemand !== undefined) m.onDemand = ps.onDemand;
    if (ps.region !== undefined) m.region = ps.region;
    let i = -1;
    let j = -1;
    for (const t of times) {
      while (i + 1 < ps.times.length && (ps.times[i + 1] as number) <= t) i++;
      while (j + 1 < pr.times.length && (pr.times[j + 1] as number) <= t) j++;
      m.price.push(i >= 0 ? (ps.price[i] as number) : NaN);
      m.avail.push(j >= 0 ? (pr.avail[j] as number) : 0);
      m.count?.push(j >= 0 ? (pr.count?.[j] ?? 0) : 0);
    }
    out.set(z, m);
  }
  for (const z of probes.keys()) if (!prices.has(z)) notes.push(`${z}: in the probe log but without prices in the trace; left out`);
  const i = notes.findIndex((n) => n.startsWith('availability: assumed available'));
  if (i >= 0) notes.splice(i, 1);
  notes.push(`availability: from the probe log ${probeSource} (a zone is available from a probe that launched enough instances until the next probe)`);
  return out;
}

/** zones.csv beside a trace: `zone` and `on_demand_usd_per_hr` and/or `region`. A bad file is an error. */
export function parseZonesCsv(text: string, source: string): Map<string, ZoneInfo> {
  const { header, rows } = readCsv(text, source);
  const zi = columnIndex(header, ['zone'], source, true);
  const oi = columnIndex(header, ['on_demand_usd_per_hr', 'on_demand_price'], source, false);
  const ri = columnIndex(header, ['region'], source, false);
  if (oi < 0 && ri < 0) throw bad(source, 1, `expected an on_demand_usd_per_hr or region column (the header has ${header.join(', ')})`);
  const out = new Map<string, ZoneInfo>();
  for (const { line, cells } of rows) {
    const z = (cells[zi] ?? '').trim();
    if (z === '') throw bad(source, line, 'zone: expected a zone name, got an empty cell');
    if (out.has(z)) throw bad(source, line, `zone ${z} is listed twice`);
    const info: ZoneInfo = {};
    if (oi >= 0) {
      const c = (cells[oi] ?? '').trim();
      const v = num(c);
      if (!Number.isFinite(v) || v < 0) throw bad(source, line, `${header[oi] as string}: expected an on-demand price in USD per hour, got "${c}"`);
      info.onDemand = v;
    }
    if (ri >= 0 && (cells[ri] ?? '').trim() !== '') info.region = (cells[ri] as string).trim();
    out.set(z, info);
  }
  return out;
}

/** Aligns per-zone series on the union of their times into a SpotTrace (values hold until the next sample). */
export function buildTrace(
  byZone: Map<string, ZoneSeries>,
  ctx: { source: string; format: TraceFormat; opts: LoadTraceOptions; zonesInfo: Map<string, ZoneInfo> | undefined; notes: string[] },
): SpotTrace {
  const zones = [...byZone.keys()];
  if (zones.length === 0) throw new SpotfleetError('TRACE_INVALID', `${ctx.source}: the trace has no zones`);
  const all = [...byZone.values()];
  // Most traces share one clock: take it as is when every zone has the same times.
  const first = all[0] as ZoneSeries;
  const same = all.every((s) => s.times.length === first.times.length && s.times.every((t, i) => t === first.times[i]));
  const timesArr = same ? first.times : [...new Set(all.flatMap((s) => s.times))].sort((a, b) => a - b);
  const n = timesArr.length;
  const times = Float64Array.from(timesArr);
  const counted = all.some((s) => s.count !== undefined);
  const available: Uint8Array[] = [];
  const spotPrice: Float64Array[] = [];
  const capacity: Uint16Array[] = [];
  const onDemandPrice: number[] = [];
  const regions: RegionRef[] = [];
  const od = ctx.opts.onDemandPrice ?? 3.06;
  const odDefaulted: string[] = [];
  const spotDefaulted: string[] = [];
  for (const z of zones) {
    const s = byZone.get(z) as ZoneSeries;
    const info = ctx.zonesInfo?.get(z);
    const zoneOd = info?.onDemand ?? s.onDemand;
    if (zoneOd === undefined) odDefaulted.push(z);
    const odz = zoneOd ?? od;
    onDemandPrice.push(odz);
    const reg = info?.region ?? s.region;
    regions.push(reg !== undefined ? { cloud: regionOfZone(z).cloud, region: reg } : regionOfZone(z));
    const a = new Uint8Array(n);
    const p = new Float64Array(n).fill(NaN);
    const c = counted ? new Uint16Array(n) : undefined;
    const fillPrice = s.noPrices ? ctx.opts.spotPrice ?? Math.round(0.3 * odz * 10_000) / 10_000 : undefined;
    if (fillPrice !== undefined) spotDefaulted.push(`${z} $${fillPrice}/h`);
    let j = -1;
    for (let k = 0; k < n; k++) {
      const t = times[k] as number;
      if (same) j = k;
      else while (j + 1 < s.times.length && (s.times[j + 1] as number) <= t) j++;
      if (j < 0) continue;
      a[k] = s.avail[j] as number;
      p[k] = fillPrice ?? (s.price[j] as number);
      if (c) c[k] = s.count ? Math.min(65535, s.count[j] as number) : (s.avail[j] as number);
    }
    available.push(a);
    spotPrice.push(p);
    if (c) capacity.push(c);
  }
  const notes = [...ctx.notes];
  if (odDefaulted.length > 0) {
    notes.push(ctx.opts.onDemandPrice !== undefined
      ? `on-demand price: $${od}/h (--on-demand-price) for ${odDefaulted.join(', ')}`
      : `on-demand price: the trace has none for ${odDefaulted.join(', ')}; assumed $${od}/h (p3.2xlarge; give --on-demand-price or a zones.csv)`);
  }
  if (spotDefaulted.length > 0) notes.push(`spot price: the trace has none; assumed ${ctx.opts.spotPrice !== undefined ? '(--spot-price)' : '0.3 × on-demand'}: ${spotDefaulted.join(', ')}`);
  if (ctx.zonesInfo) for (const z of zones) if (!ctx.zonesInfo.has(z)) notes.push(`${z}: not in zones.csv`);
  const trace: SpotTrace = {
    times,
    zones,
    available,
    spotPrice,
    onDemandPrice,
    gpusPerInstance: ctx.opts.gpusPerInstance ?? 1,
    source: ctx.source,
    regions,
    format: ctx.format,
    assumptions: notes,
  };
  if (counted) trace.capacity = capacity;
  if (zones.some((z) => byZone.get(z)?.warnings !== undefined)) trace.warnings = zones.map((z) => byZone.get(z)?.warnings ?? []);
  return trace;
}
