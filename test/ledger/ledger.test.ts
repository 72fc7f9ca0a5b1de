// The savings ledger's pure functions, against hand-computed values: segments (closed + open, clipped
// to a window), money per group, totals that are the sums of the rows, the cumulative series, and
// the renderings (text, JSON, CSV, HTML).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HOUR_MS, roundUsd } from '../../src/core/units.js';
import { cumulativeCost, ledgerSegments, migrationsIn, NO_LABEL, openSegmentOnDemandPrice, parseGroupBy, summariseSavings } from '../../src/engine/ledger.js';
import { renderReportHtml } from '../../src/engine/report-html.js';
import { parseSince, renderSavingsCsv, renderSavingsJson, renderSavingsText } from '../../src/cli/savings.js';
import type { LedgerEntry, MoveRecord, StateFile, WorkloadRecord } from '../../src/state/types.js';
import { workload } from '../engine/builders.js';

const T0 = Date.parse('2026-11-01T00:00:00Z');
const h = (n: number): number => T0 + n * HOUR_MS;

function entry(wl: string, capacity: 'spot' | 'on-demand', from: number, to: number, gpus: number, price: number, od: number): LedgerEntry {
  return { workload: wl, capacity, from: h(from), to: h(to), gpus, pricePerGpuHour: price, onDemandPricePerGpuHour: od, pool: capacity === 'spot' ? 'spot-v100' : 'od-v100' };
}

function rec(name: string, o: Partial<WorkloadRecord> = {}): WorkloadRecord {
  return { type: 'workload', address: `workload.${name}`, name, phase: 'running', failures: 0, recoveries: 0, gpus: 1, doneMs: 0, generation: 0, preemptions: [], moves: [], ...o };
}

function move(at: number, from: string, to: string, downtimeMs: number, outcome: MoveRecord['outcome'] = 'ok'): MoveRecord {
  return { at: h(at), from, to, reason: 'test move', downtimeMs, outcome };
}

/**
 * a: 4 GPUs; spot 0–2 h at $0.50 (od $3.06), on-demand 2–3 h at $3.06, spot again from 3 h at $0.60 (open).
 * b: 2 GPUs on on-demand at $2.50 from 1 h (open).
 * c: 1 GPU; spot 1–1.5 h at $0.40 (od $3.06), since removed from the state.
 * now = 4 h.
 */
function sample(): StateFile {
  return {
    version: 1,
    serial: 7,
    lineage: 'l',
    fleet: 'test',
    pending: [],
    ledger: [entry('a', 'spot', 0, 2, 4, 0.5, 3.06), entry('a', 'on-demand', 2, 3, 4, 3.06, 3.06), entry('c', 'spot', 1, 1.5, 1, 0.4, 3.06)],
    resources: {
      'workload.a': rec('a', { gpus: 4, capacity: 'spot', pricePerGpuHour: 0.6, since: h(3), pool: 'spot-v100', node: 's-1', moves: [move(2, 's-0', 'od-1', 90_000), move(3, 'od-1', 's-1', 30_000)] }),
      'workload.b': rec('b', { gpus: 2, capacity: 'on-demand', pricePerGpuHour: 2.5, since: h(1), pool: 'od-v100', node: 'od-2' }),
      'lease.spot-v100.x': { type: 'lease', address: 'lease.spot-v100.x', provider: 'market', pool: 'spot-v100', leaseId: 'x', capacity: 'spot', gpus: 4, pricePerHour: 2.4, acquiredAt: h(3), idempotencyKey: 'k' },
    },
  };
}

const fleet = { workloads: [workload('a', { labels: { team: 'nlp' } }), workload('b'), workload('c', { labels: { team: 'nlp' } })] };

describe('ledgerSegments', () => {
  it('adds the open segment of each running workload up to now, sorted by start', () => {
    const segs = ledgerSegments(sample(), { now: h(4), fleet });
    expect(segs.map((s) => [s.workload, s.capacity, (s.from - T0) / HOUR_MS, (s.to - T0) / HOUR_MS, s.open])).toEqual([
      ['a', 'spot', 0, 2, false],
      ['b', 'on-demand', 1, 4, true],
      ['c', 'spot', 1, 1.5, false],
      ['a', 'on-demand', 2, 3, false],
      ['a', 'spot', 3, 4, true],
    ]);
    // a's open spot segment takes its own latest counterfactual, flagged as inferred.
    expect(segs[4]).toMatchObject({ onDemandPricePerGpuHour: 3.06, onDemandEstimated: true });
    // b runs on on-demand: the counterfactual is what it pays, not an estimate.
    expect(segs[1]?.onDemandPricePerGpuHour).toBe(2.5);
    expect(segs[1]?.onDemandEstimated).toBeUndefined();
  });

  it('clips to the window and drops what lies outside it', () => {
    const segs = ledgerSegments(sample(), { now: h(4), since: h(2.5), fleet });
    expect(segs.map((s) => [s.workload, (s.from - T0) / HOUR_MS, (s.to - T0) / HOUR_MS])).toEqual([
      ['a', 2.5, 3],
      ['b', 2.5, 4],
      ['a', 3, 4],
    ]);
  });

  it('infers an open spot segment\'s counterfactual from a workload with the same GPU model', () => {
    const st = sample();
    st.resources['workload.d'] = rec('d', { capacity: 'spot', pricePerGpuHour: 0.7, since: h(3) });
    const f = { workloads: [...fleet.workloads, workload('d')] };
    expect(openSegmentOnDemandPrice(st, st.resources['workload.d'], f)).toEqual({ price: 3.06, estimated: true });
    // Without any basis it charges what was paid: no savings claimed.
    const bare: StateFile = { ...st, ledger: [], resources: { 'workload.d': st.resources['workload.d'] } };
    expect(openSegmentOnDemandPrice(bare, bare.resources['workload.d'] as WorkloadRecord, f)).toEqual({ price: 0.7, estimated: true });
  });
});

describe('summariseSavings', () => {
  it('by workload: hand-computed money, hours, migrations and downtime', () => {
    const s = summariseSavings(sample(), { now: h(4), fleet });
    // a: spot 2h×4×0.5 = 4.00 (od 24.48); od 1h×4×3.06 = 12.24 (12.24); open spot 1h×4×0.6 = 2.40 (12.24)
    // b: 3h×2×2.5 = 15.00 (15.00); c: 0.5h×1×0.4 = 0.20 (1.53)
    expect(s.rows.map((r) => [r.key, r.actualUsd, r.onDemandUsd, r.savedUsd, r.savedPct, r.spotHours, r.onDemandHours, r.migrations, r.downtimeMs])).toEqual([
      ['a', 18.64, 48.96, 30.32, 61.93, 3, 1, 2, 120_000],
      ['b', 15, 15, 0, 0, 0, 3, 0, 0],
      ['c', 0.2, 1.53, 1.33, 86.93, 0.5, 0, 0, 0],
    ]);
    expect(s.totals).toEqual({ spotHours: 3.5, onDemandHours: 4, actualUsd: 33.84, onDemandUsd: 65.49, savedUsd: 31.65, savedPct: 48.33, migrations: 2, failedMigrations: 0, downtimeMs: 120_000, phases: { removed: 1, running: 2 } });
    expect(s.rows[0]?.byCapacity).toEqual({ spot: { ms: 3 * HOUR_MS, gpuHours: 12, actualUsd: 6.4, onDemandUsd: 36.72 }, 'on-demand': { ms: HOUR_MS, gpuHours: 4, actualUsd: 12.24, onDemandUsd: 12.24 } });
    expect(s.rows[0]?.onDemandEstimated).toBe(true);
    expect(s.notes).toHaveLength(1);
    expect(s.from).toBe(h(0));
    expect(s.to).toBe(h(4));
  });

  it('within --since: only the window counts, moves included', () => {
    const s = summariseSavings(sample(), { now: h(4), since: h(2.5), fleet });
    // a: od 0.5h×4×3.06 = 6.12 (6.12) + open spot 2.40 (12.24); b: 1.5h×2×2.5 = 7.50
    expect(s.rows.map((r) => [r.key, r.actualUsd, r.onDemandUsd, r.savedUsd, r.migrations, r.downtimeMs])).toEqual([
      ['a', 8.52, 18.36, 9.84, 1, 30_000],
      ['b', 7.5, 7.5, 0, 0, 0],
    ]);
    expect(s.totals.savedUsd).toBe(9.84);
    expect(s.since).toBe(h(2.5));
  });

  it('by label: workloads without the label go last, under (none)', () => {
    const s = summariseSavings(sample(), { now: h(4), by: { kind: 'label', key: 'team' }, fleet });
    expect(s.rows.map((r) => [r.key, r.workloads, r.actualUsd, r.onDemandUsd])).toEqual([
      ['nlp', ['a', 'c'], 18.84, 50.49],
      [NO_LABEL, ['b'], 15, 15],
    ]);
  });

  it('totals are the sums of the rounded rows (thirds of a cent do not drift)', () => {
    const third = 1 / 3;
    const st: StateFile = { ...sample(), resources: {}, ledger: ['x', 'y', 'z'].map((w) => ({ workload: w, capacity: 'spot', from: h(0), to: h(1), gpus: 1, pricePerGpuHour: third, onDemandPricePerGpuHour: 1 })) };
    const s = summariseSavings(st, { now: h(1) });
    expect(s.rows.map((r) => r.actualUsd)).toEqual([0.3333, 0.3333, 0.3333]);
    expect(s.totals.actualUsd).toBe(0.9999);
    expect(s.totals.savedUsd).toBe(2.0001);
  });

  it('for any ledger, every total is the sum of its rows and saved = on-demand − paid', () => {
    const seg = fc.record({
      workload: fc.constantFrom('a', 'b', 'c', 'd'),
      capacity: fc.constantFrom('spot' as const, 'on-demand' as const),
      start: fc.integer({ min: 0, max: 48 * 60 }),
      minutes: fc.integer({ min: 1, max: 600 }),
      gpus: fc.integer({ min: 1, max: 8 }),
      price: fc.double({ min: 0.01, max: 5, noNaN: true }),
      od: fc.double({ min: 0.01, max: 5, noNaN: true }),
    });
    fc.assert(
      fc.property(fc.array(seg, { maxLength: 30 }), fc.integer({ min: 0, max: 48 * 60 }), (segs, sinceMin) => {
        const st: StateFile = { ...sample(), resources: {}, ledger: segs.map((x) => ({ workload: x.workload, capacity: x.capacity, from: T0 + x.start * 60_000, to: T0 + (x.start + x.minutes) * 60_000, gpus: x.gpus, pricePerGpuHour: x.price, onDemandPricePerGpuHour: x.od })) };
        const s = summariseSavings(st, { now: h(60), since: T0 + sinceMin * 60_000 });
        const sum = (f: (r: (typeof s.rows)[number]) => number): number => roundUsd(s.rows.reduce((t, r) => t + f(r), 0));
        expect(s.totals.actualUsd).toBe(sum((r) => r.actualUsd));
        expect(s.totals.onDemandUsd).toBe(sum((r) => r.onDemandUsd));
        expect(s.totals.savedUsd).toBe(sum((r) => r.savedUsd));
        expect(s.totals.savedUsd).toBe(roundUsd(s.totals.onDemandUsd - s.totals.actualUsd));
        for (const r of s.rows) expect(r.savedUsd).toBe(roundUsd(r.onDemandUsd - r.actualUsd));
      }),
      { numRuns: 200 },
    );
  });
});

describe('cumulativeCost', () => {
  it('is exact at every segment boundary and ends at the totals', () => {
    const segs = ledgerSegments(sample(), { now: h(4), fleet });
    const pts = cumulativeCost(segs, h(0), h(4), 8);
    const at = (n: number): { actualUsd: number; onDemandUsd: number } | undefined => pts.find((p) => p.t === h(n));
    // At 1 h only a's first spot hour: 4 GPUs × 0.5 = 2.00 (od 12.24).
    expect(roundUsd(at(1)?.actualUsd ?? -1)).toBe(2);
    expect(roundUsd(at(1)?.onDemandUsd ?? -1)).toBe(12.24);
    expect(at(0)).toMatchObject({ actualUsd: 0, onDemandUsd: 0 });
    // At 2 h: a 4.00 + b 1h×2×2.5 = 5.00 + c 0.20 → 9.20; od 24.48 + 5.00 + 1.53 = 31.01.
    expect(roundUsd(at(2)?.actualUsd ?? -1)).toBe(9.2);
    expect(roundUsd(at(2)?.onDemandUsd ?? -1)).toBe(31.01);
    const last = pts.at(-1);
    expect(last?.t).toBe(h(4));
    expect(roundUsd(last?.actualUsd ?? -1)).toBe(33.84);
    expect(roundUsd(last?.onDemandUsd ?? -1)).toBe(65.49);
    for (let i = 1; i < pts.length; i++) {
      expect(pts[i]!.t).toBeGreaterThan(pts[i - 1]!.t);
      expect(pts[i]!.actualUsd).toBeGreaterThanOrEqual(pts[i - 1]!.actualUsd);
    }
  });
});

describe('migrationsIn', () => {
  it('lists moves in the window, oldest first', () => {
    expect(migrationsIn(sample(), { now: h(4) }).map((m) => [m.workload, m.from, m.to, m.downtimeMs])).toEqual([
      ['a', 's-0', 'od-1', 90_000],
      ['a', 'od-1', 's-1', 30_000],
    ]);
    expect(migrationsIn(sample(), { now: h(4), since: h(2.5) })).toHaveLength(1);
  });
});

describe('options', () => {
  it('parses --by and --since', () => {
    expect(parseGroupBy('workload')).toEqual({ kind: 'workload' });
    expect(parseGroupBy('label:team')).toEqual({ kind: 'label', key: 'team' });
    expect(parseGroupBy('label:')).toBeUndefined();
    expect(parseGroupBy('team')).toBeUndefined();
    expect(parseSince('24h', h(48))).toBe(h(24));
    expect(parseSince('2026-11-01T00:00:00Z', 0)).toBe(T0);
    expect(() => parseSince('yesterday', 0)).toThrow(/--since: "yesterday" is neither a duration nor a time/);
  });
});

describe('renderings', () => {
  const s = summariseSavings(sample(), { now: h(4), fleet });

  it('text: one line per row and a TOTAL line that is their sum', () => {
    const text = renderSavingsText(s, 'test');
    const lines = text.split('\n');
    const money = (line: string): number[] => [...line.matchAll(/\$(\d+(?:\.\d+)?)/g)].map((m) => Number(m[1]));
    const rowLines = lines.filter((l) => /^(a|b|c)\b/.test(l));
    expect(rowLines).toHaveLength(3);
    const total = lines.find((l) => l.startsWith('TOTAL')) as string;
    const sums = [0, 1, 2].map((i) => roundUsd(rowLines.reduce((t, l) => t + (money(l)[i] as number), 0)));
    expect(money(total)).toEqual(sums);
    expect(money(total)).toEqual([33.84, 65.49, 31.65]);
    expect(total).toMatch(/48\.33%/);
    expect(text).toContain('a *');
  });

  it('JSON: a format_version, rows and totals in snake_case', () => {
    const doc = JSON.parse(renderSavingsJson(s, 'test'));
    expect(doc.format_version).toBe('1.0');
    expect(doc.by).toBe('workload');
    expect(doc.totals).toMatchObject({ actual_usd: 33.84, on_demand_usd: 65.49, saved_usd: 31.65, saved_pct: 48.33, spot_hours: 3.5, on_demand_hours: 4 });
    expect(doc.rows[0]).toMatchObject({ key: 'a', actual_usd: 18.64, by_capacity: { spot: { gpu_hours: 12 } } });
    expect(doc.window.from).toBe('2026-11-01T00:00:00.000Z');
  });

  it('CSV: a header and one line per row, fields quoted when needed', () => {
    const csv = renderSavingsCsv(summariseSavings(sample(), { now: h(4), by: { kind: 'label', key: 'team' }, fleet }));
    expect(csv.split('\n')).toEqual([
      'group,workloads,spot_hours,on_demand_hours,actual_usd,on_demand_usd,saved_usd,saved_pct,migrations,failed_migrations,downtime_s,phases',
      'nlp,a c,3.5,1,18.8400,50.4900,31.6500,62.69,2,0,120.000,running:1 removed:1',
      '(none),b,0,3,15.0000,15.0000,0.0000,0.00,0,0,0.000,running:1',
      '',
    ]);
  });

  it('HTML: self-contained, with both cost lines, the savings and the migrations', () => {
    const st = sample();
    const html = renderReportHtml({ fleet: 'te<st', summary: s, segments: ledgerSegments(st, { now: h(4), fleet }), migrations: migrationsIn(st, { now: h(4) }) });
    expect(html).not.toMatch(/https?:\/\//);
    expect(html).not.toMatch(/<script|<link|src=/i);
    expect(html).toContain('te&lt;st');
    const points = (id: string): number => (new RegExp(`id="${id}" points="([^"]+)"`).exec(html)?.[1] ?? '').split(' ').length;
    expect(points('cost-actual')).toBeGreaterThan(50);
    expect(points('cost-on-demand')).toBe(points('cost-actual'));
    expect(html).toMatch(/<td>s-0 → od-1<\/td>/);
    expect(html).toMatch(/<tr class="total"><th scope="row">TOTAL<\/th>.*<td>\$33\.84<\/td><td>\$65\.49<\/td><td>\$31\.65<\/td>/);
    // Deterministic: the same inputs give the same bytes.
    expect(renderReportHtml({ fleet: 'te<st', summary: s, segments: ledgerSegments(st, { now: h(4), fleet }), migrations: migrationsIn(st, { now: h(4) }) })).toBe(html);
  });
});
