// Every trace format of docs/traces.md, from the shipped examples and from small files written here:
// the data they give, what they assume, and file:line errors for bad rows (never a silent default).
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SpotfleetError } from '../../src/core/errors.js';
import { loadSpotTrace, tickAt, type LoadTraceOptions, type SpotTrace } from '../../src/core/trace.js';

const EX = join(process.cwd(), 'examples/traces');

function tmp(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'sf-trace-'));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

function fails(path: string, re: RegExp, opts: LoadTraceOptions = {}): void {
  let err: unknown;
  try {
    loadSpotTrace(path, opts);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(SpotfleetError);
  expect((err as Error).message).toMatch(re);
}

function at(t: SpotTrace, zone: string, iso: string): { a: number; p: number } {
  const k = tickAt(t, Date.parse(iso));
  const z = t.zones.indexOf(zone);
  return { a: (t.available[z] as Uint8Array)[k] as number, p: (t.spotPrice[z] as Float64Array)[k] as number };
}

describe('wide CSV', () => {
  it('reads the example folder with its zones.csv: prices, availability, regions, on-demand; nothing assumed', () => {
    const t = loadSpotTrace(join(EX, 'aws-v100-wide'));
    expect(t.format).toBe('wide');
    expect(t.zones).toEqual(['us-east-1f', 'us-east-2a', 'us-west-2a']);
    expect(t.times.length).toBe(1769);
    expect(t.onDemandPrice).toEqual([3.06, 3.06, 3.06]);
    expect(t.regions?.map((r) => r.region)).toEqual(['us-east-1', 'us-east-2', 'us-west-2']);
    expect(at(t, 'us-east-2a', '2023-03-13T00:02:23Z')).toEqual({ a: 1, p: 0.918 });
    expect(t.assumptions).toEqual([]);
  });

  it('handles a byte-order mark, quoted fields and CRLF exactly like the plain file', () => {
    const plain = 'timestamp_utc,a-1a_available,a-1a_spot_usd_per_hr\n2023-01-01T00:00:00Z,1,0.9\n2023-01-01T00:05:00Z,0,1.1\n';
    const fancy = '\uFEFF"timestamp_utc","a-1a_available","a-1a_spot_usd_per_hr"\r\n"2023-01-01T00:00:00Z",1,"0.9"\r\n\r\n2023-01-01T00:05:00Z,"0",1.1\r\n';
    const d = tmp({ 'plain.csv': plain, 'fancy.csv': fancy });
    const a = loadSpotTrace(join(d, 'plain.csv'));
    const b = loadSpotTrace(join(d, 'fancy.csv'));
    expect(b.zones).toEqual(['a-1a']);
    expect(Array.from(b.times)).toEqual(Array.from(a.times));
    expect(Array.from(b.available[0] as Uint8Array)).toEqual([1, 0]);
    expect(Array.from(b.spotPrice[0] as Float64Array)).toEqual([0.9, 1.1]);
  });

  it('names the file and line of a bad row (blank lines counted)', () => {
    const d = tmp({ 't.csv': 'timestamp_utc,z-1a_available,z-1a_spot_usd_per_hr\n2023-01-01T00:00:00Z,1,0.9\n\n2023-01-01T00:05:00Z,maybe,0.9\n' });
    fails(join(d, 't.csv'), /t\.csv:4: z-1a_available: expected 1 \(available\) or 0, got "maybe"/);
    const e = tmp({ 't.csv': 'timestamp_utc,z-1a_available,z-1a_spot_usd_per_hr\n2023-01-01T00:00:00Z,1,cheap\n' });
    fails(join(e, 't.csv'), /t\.csv:2: z-1a_spot_usd_per_hr: expected a price in USD per hour, got "cheap"/);
    const f = tmp({ 't.csv': 'timestamp_utc,z-1a_available\n2023-01-02T00:00:00Z,1\n2023-01-01T00:00:00Z,1\n' });
    fails(join(f, 't.csv'), /t\.csv:3: times must not go backwards/);
    const g = tmp({ 't.csv': 'timestamp_utc,z-1a_available\n2023-01-01T00:00:00Z,"1\n' });
    fails(join(g, 't.csv'), /t\.csv:2: not valid CSV/);
  });

  it('a bad zones.csv is an error, not ignored', () => {
    const trace = 'timestamp_utc,z-1a_available,z-1a_spot_usd_per_hr\n2023-01-01T00:00:00Z,1,0.9\n';
    fails(join(tmp({ 't/availability_spot_price.csv': trace, 't/zones.csv': 'name,price\nz-1a,3\n' }), 't'), /zones\.csv:1: expected a column named "zone"/);
    // A zones.csv that lists other zones is fine, and the report says which zones it lacks.
    expect(loadSpotTrace(join(tmp({ 't/availability_spot_price.csv': trace, 't/zones.csv': 'zone,region\n' }), 't')).assumptions).toContain('z-1a: not in zones.csv');
    fails(join(tmp({ 't/availability_spot_price.csv': trace, 't/zones.csv': 'zone,on_demand_usd_per_hr\nz-1a,3.06\nz-1b,lots\n' }), 't'), /zones\.csv:3: on_demand_usd_per_hr: expected an on-demand price in USD per hour, got "lots"/);
    fails(join(tmp({ 't/availability_spot_price.csv': trace, 't/zones.csv': 'zone,on_demand_usd_per_hr\nz-1a,3.06\nz-1a,3.06\n' }), 't'), /zones\.csv:3: zone z-1a is listed twice/);
    fails(join(tmp({ 't/availability_spot_price.csv': trace, 't/zones.csv': 'zone,price\nz-1a,3\n' }), 't'), /zones\.csv:1: expected an on_demand_usd_per_hr or region column/);
  });

  it('multi-node counts: capacity per tick, available at --min-launched, empty cells past a zone’s end', () => {
    const d = tmp({ 'm.csv': 'tick,offset_s,a-1a_available_of_16,b-2b_available_of_16\n0,0,16,3\n1,300,1,\n2,600,0,\n' });
    const t = loadSpotTrace(join(d, 'm.csv'));
    expect(Array.from(t.capacity?.[0] ?? [])).toEqual([16, 1, 0]);
    expect(Array.from(t.available[0] as Uint8Array)).toEqual([1, 1, 0]);
    expect(Array.from(t.available[1] as Uint8Array)).toEqual([1, 0, 0]);
    expect(t.assumptions?.join('\n')).toMatch(/b-2b: no availability from .* \(empty cells\), counted unavailable/);
    expect(t.assumptions?.join('\n')).toMatch(/counted from 1970-01-01/);
    const two = loadSpotTrace(join(d, 'm.csv'), { minLaunched: 2, startMs: Date.parse('2023-08-27T00:00:00Z') });
    expect(Array.from(two.available[0] as Uint8Array)).toEqual([1, 0, 0]);
    expect(two.times[0]).toBe(Date.parse('2023-08-27T00:00:00Z'));
  });
});

describe('long CSV', () => {
  it('reads the example with per-zone on-demand prices', () => {
    const t = loadSpotTrace(join(EX, 'long.csv'));
    expect(t.format).toBe('long');
    expect(t.zones.sort()).toEqual(['us-east-1f', 'us-east-2a', 'us-west-2a']);
    expect(t.onDemandPrice).toEqual([3.06, 3.06, 3.06]);
    expect(t.times.length).toBe(148);
  });

  it('takes rows in any order, zones with their own clocks, and names a bad row', () => {
    const text = 'zone,timestamp,available,spot_price,on_demand_price,region\nb-1b,2023-01-01T00:10:00Z,0,0.5,2,r1\na-1a,2023-01-01T00:00:00Z,1,0.4,3,r1\nb-1b,2023-01-01T00:00:00Z,yes,0.5,2,r1\n';
    const t = loadSpotTrace(join(tmp({ 'l.csv': text }), 'l.csv'));
    expect(Array.from(t.times)).toEqual([Date.parse('2023-01-01T00:00:00Z'), Date.parse('2023-01-01T00:10:00Z')]);
    expect(at(t, 'b-1b', '2023-01-01T00:00:00Z').a).toBe(1);
    expect(at(t, 'b-1b', '2023-01-01T00:10:00Z').a).toBe(0);
    expect(at(t, 'a-1a', '2023-01-01T00:10:00Z')).toEqual({ a: 1, p: 0.4 }); // holds until its next row
    expect(t.onDemandPrice[t.zones.indexOf('a-1a')]).toBe(3);
    expect(t.onDemandPrice[t.zones.indexOf('b-1b')]).toBe(2);
    expect(t.regions?.[0]?.region).toBe('r1');
    fails(join(tmp({ 'l.csv': 'timestamp,zone,available,spot_price\n2023-01-01T00:00:00Z,a,1,0.4\n2023-01-01T00:00:00Z,b,maybe,0.4\n' }), 'l.csv'), /l\.csv:3: available: expected 1\/0 or true\/false, got "maybe"/);
    fails(join(tmp({ 'l.csv': 'timestamp,zone,available\n' }), 'l.csv'), /l\.csv:1: expected a column named "spot_price"/);
  });
});

describe('probe log', () => {
  it('reads the example: available when ≥ 1 launched, counts as capacity, prices assumed', () => {
    const t = loadSpotTrace(join(EX, 'probes.csv'));
    expect(t.format).toBe('probe');
    expect(t.capacity).toBeDefined();
    expect(t.assumptions?.join('\n')).toMatch(/spot price: the trace has none; assumed 0\.3 × on-demand/);
  });

  it('--min-launched decides availability; launched above requested is an error with its line', () => {
    const text = 'timestamp,zone,requested,launched\n2023-01-01T00:00:00Z,a-1a,4,4\n2023-01-01T00:05:00Z,a-1a,4,1\n2023-01-01T00:10:00Z,a-1a,4,0\n';
    const f = join(tmp({ 'p.csv': text }), 'p.csv');
    expect(Array.from(loadSpotTrace(f).available[0] as Uint8Array)).toEqual([1, 1, 0]);
    expect(Array.from(loadSpotTrace(f, { minLaunched: 2 }).available[0] as Uint8Array)).toEqual([1, 0, 0]);
    expect(Array.from(loadSpotTrace(f).capacity?.[0] ?? [])).toEqual([4, 1, 0]);
    fails(join(tmp({ 'p.csv': 'timestamp,zone,requested,launched\n2023-01-01T00:00:00Z,a-1a,1,2\n' }), 'p.csv'), /p\.csv:2: launched: expected a whole number from 0 to requested \(1\), got "2"/);
  });
});

describe('aws ec2 describe-spot-price-history JSON', () => {
  it('reads the example, prices only: availability is assumed and said so', () => {
    const t = loadSpotTrace(join(EX, 'aws-describe-spot-price-history.json'));
    expect(t.format).toBe('aws-json');
    expect(t.zones).toEqual(['us-east-1f', 'us-east-2a', 'us-west-2a']);
    expect(t.assumptions?.some((a) => a.startsWith('availability: assumed available whenever a price is in force'))).toBe(true);
    expect(t.assumptions?.some((a) => /on-demand price: the trace has none/.test(a))).toBe(true);
    // The newest-first list is a step function in time order.
    expect(at(t, 'us-east-2a', '2023-03-13T00:02:23Z').p).toBe(0.918);
  });

  it('with --probe-log, availability comes from the probes and the assumption says that', () => {
    const t = loadSpotTrace(join(EX, 'aws-describe-spot-price-history.json'), { probeLog: join(EX, 'probes.csv') });
    expect(t.assumptions?.some((a) => a.startsWith('availability: assumed'))).toBe(false);
    expect(t.assumptions?.some((a) => a.startsWith('availability: from the probe log'))).toBe(true);
    const z = t.zones.indexOf('us-east-1f');
    const av = t.available[z] as Uint8Array;
    expect(av.some((a) => a === 0)).toBe(true);
    expect(av.some((a) => a === 1)).toBe(true);
  });

  it('errors: the line of a bad value, mixed instance types, broken JSON', () => {
    const rec = (z: string, p: string, t: string, type = 'p3.2xlarge'): string => `    {\n      "AvailabilityZone": "${z}",\n      "InstanceType": "${type}",\n      "ProductDescription": "Linux/UNIX",\n      "SpotPrice": ${p},\n      "Timestamp": "${t}"\n    }`;
    const doc = (...r: string[]): string => `{\n  "SpotPriceHistory": [\n${r.join(',\n')}\n  ]\n}\n`;
    const bad = join(tmp({ 'a.json': doc(rec('a-1a', '"0.9"', '2023-01-01T00:00:00Z'), rec('a-1a', '"free"', '2023-01-01T01:00:00Z')) }), 'a.json');
    fails(bad, /a\.json:14: SpotPrice: expected a price in USD per hour, got "free"/);
    const mixed = join(tmp({ 'a.json': doc(rec('a-1a', '"0.9"', '2023-01-01T00:00:00Z'), rec('a-1a', '"2.9"', '2023-01-01T00:00:00Z', 'p3.8xlarge')) }), 'a.json');
    fails(mixed, /several instance types \(p3\.2xlarge, p3\.8xlarge\): pick one with --instance-type/);
    expect(loadSpotTrace(mixed, { instanceType: 'p3.8xlarge' }).spotPrice[0]?.[0]).toBe(2.9);
    fails(join(tmp({ 'a.json': '{\n  "SpotPriceHistory": [\n    {"AvailabilityZone": "a",,}\n  ]\n}\n' }), 'a.json'), /a\.json:3: not valid JSON/);
  });
});

describe('SkyPilot spot-traces JSON', () => {
  it('reads the example folder: one zone per file, counts as capacity, --trace-start for dates', () => {
    const t = loadSpotTrace(join(EX, 'skypilot-16node'), { startMs: Date.parse('2023-08-27T00:00:00Z') });
    expect(t.format).toBe('skypilot');
    expect(t.zones).toEqual(['us-east-2b', 'us-west-2a', 'us-west-2c']);
    expect(t.times[0]).toBe(Date.parse('2023-08-27T00:00:00Z'));
    expect(t.times[1]).toBe(Date.parse('2023-08-27T00:05:00Z'));
    expect(Math.max(...(t.capacity?.[0] ?? []))).toBe(16);
  });

  it('a bad sample names its line; metadata.start_time sets the dates', () => {
    const f = join(tmp({ 'z-1a_v100_1.json': '{\n  "metadata": {"gap_seconds": 60, "start_time": "2024-05-01T00:00:00Z"},\n  "data": [\n    1,\n    0,\n    -3\n  ]\n}\n' }), 'z-1a_v100_1.json');
    fails(f, /z-1a_v100_1\.json:6: data\[2\]: expected a whole number of instances ≥ 0, got -3/);
    const ok = join(tmp({ 'z-1a_v100_1.json': '{"metadata": {"gap_seconds": 60, "start_time": "2024-05-01T00:00:00Z"}, "data": [1, 0, 1]}' }), 'z-1a_v100_1.json');
    const t = loadSpotTrace(ok);
    expect(t.zones).toEqual(['z-1a']);
    expect(t.times[2]).toBe(Date.parse('2024-05-01T00:02:00Z'));
  });
});

it('an unknown layout says which formats it knows', () => {
  fails(join(tmp({ 'x.csv': 'a,b\n1,2\n' }), 'x.csv'), /x\.csv:1: unknown trace format: expected a wide CSV/);
  fails(join(tmp({ 'x.json': '{"foo": 1}' }), 'x.json'), /x\.json:1: a JSON trace must be/);
});
