// The savings ledger end to end, through the built CLI: apply a small fleet, move a workload off spot
// (so the ledger has closed segments), then `savings` (totals match the ledger in state.json, the
// TOTAL line is the sum of the rows), `report` (an HTML page that real headless Chromium renders,
// with the chart drawn and no network requests), and `explain` (the cost-benefit numbers).
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StateFile, WorkloadRecord } from '../../src/state/types.js';
import { cli, sleep, tempFleet, writeFleet, type TestWorkload } from './helpers.js';
import { addLabels, RUN_BROWSER, renderReport } from './report-helpers.js';

const HOUR = 3_600_000;
const round4 = (x: number): number => Math.round(x * 10_000) / 10_000;

let dir = '';
afterAll(() => {
  if (dir) cli(['destroy', '--auto-approve', dir], { cwd: dir });
});

function write(workloads: TestWorkload[]): void {
  writeFleet(dir, workloads);
  addLabels(dir, { 'train-a': { team: 'nlp' }, 'train-b': { team: 'vision' } });
}

function readState(): StateFile {
  return JSON.parse(readFileSync(join(dir, '.spotfleet/state.json'), 'utf8')) as StateFile;
}

beforeAll(async () => {
  dir = tempFleet([]);
  // train-a starts on spot (auto picks the cheap market); train-b is pinned to on-demand.
  write([{ name: 'train-a' }, { name: 'train-b', gpus: 2, capacity: 'on-demand' }]);
  const first = cli(['apply', '--auto-approve', dir], { cwd: dir });
  expect(first.stderr).toBe('');
  expect(first.code).toBe(0);
  await sleep(1500);
  // capacity: on-demand moves train-a off spot: its spot segment closes in the ledger.
  write([{ name: 'train-a', capacity: 'on-demand' }, { name: 'train-b', gpus: 2, capacity: 'on-demand' }]);
  const moved = cli(['apply', '--auto-approve', dir], { cwd: dir });
  expect(moved.code).toBe(0);
  expect(moved.stdout).toMatch(/workload\.train-a: Start complete/);
  await sleep(500);
});

describe('savings, report and explain on an applied fleet', () => {
  it('savings --json: totals match the ledger in state.json and are the sum of the rows', () => {
    const r = cli(['savings', '--json', dir], { cwd: dir });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.format_version).toBe('1.0');
    expect(doc.fleet).toBe('e2e');
    const now: number = doc.window.to_ms;

    // Recompute from the state file: closed segments, plus the open segment of each running
    // workload up to the report's `now`. Both now run on on-demand, so their counterfactual is
    // what they pay.
    const st = readState();
    const spot = st.ledger.filter((e) => e.workload === 'train-a' && e.capacity === 'spot');
    expect(spot.length).toBeGreaterThanOrEqual(1);
    const per = new Map<string, { actual: number; od: number; spotMs: number; odMs: number }>();
    const add = (w: string, capacity: string, ms: number, gpus: number, price: number, od: number): void => {
      const a = per.get(w) ?? { actual: 0, od: 0, spotMs: 0, odMs: 0 };
      a.actual += (ms / HOUR) * gpus * price;
      a.od += (ms / HOUR) * gpus * od;
      if (capacity === 'spot') a.spotMs += ms;
      else a.odMs += ms;
      per.set(w, a);
    };
    for (const e of st.ledger) add(e.workload, e.capacity, e.to - e.from, e.gpus, e.pricePerGpuHour, e.onDemandPricePerGpuHour);
    const records = Object.values(st.resources).filter((x): x is WorkloadRecord => x.type === 'workload');
    for (const w of records) {
      expect(w.capacity).toBe('on-demand');
      if (w.instanceId !== undefined && w.since !== undefined) add(w.name, 'on-demand', now - w.since, w.gpus, w.pricePerGpuHour ?? 0, w.pricePerGpuHour ?? 0);
    }
    expect(doc.rows.map((x: { key: string }) => x.key)).toEqual(['train-a', 'train-b']);
    for (const row of doc.rows) {
      const want = per.get(row.key);
      // Each row rounds per capacity type, then sums: within two 1/10,000 of the exact value.
      expect(Math.abs(row.actual_usd - round4(want?.actual ?? -1))).toBeLessThanOrEqual(0.00021);
      expect(Math.abs(row.on_demand_usd - round4(want?.od ?? -1))).toBeLessThanOrEqual(0.00021);
      expect(row.by_capacity.spot.ms).toBe(want?.spotMs);
      expect(row.by_capacity['on-demand'].ms).toBe(want?.odMs);
    }
    // Spot was cheaper than on-demand: train-a saved money, train-b (on-demand only) saved none.
    expect(doc.rows[0].saved_usd).toBeGreaterThan(0);
    expect(doc.rows[1].saved_usd).toBe(0);
    // Totals are exactly the sums of the rows.
    const sum = (k: string): number => round4(doc.rows.reduce((t: number, x: Record<string, number>) => t + (x[k] as number), 0));
    for (const k of ['actual_usd', 'on_demand_usd', 'saved_usd']) expect(doc.totals[k]).toBe(sum(k));
    // The move is counted with its recorded downtime.
    const moves = records.flatMap((w) => w.moves);
    expect(moves).toHaveLength(1);
    expect(doc.totals.migrations).toBe(1);
    expect(doc.totals.downtime_ms).toBe(moves[0]?.downtimeMs);
  });

  it('savings text and CSV, by label', () => {
    const t = cli(['savings', '--by', 'label:team', dir], { cwd: dir });
    expect(t.code).toBe(0);
    expect(t.stdout).toMatch(/^TEAM\s+SPOT h/m);
    const money = (line: string): number[] => [...line.matchAll(/\$(\d+(?:\.\d+)?)/g)].map((m) => Number(m[1]));
    const rows = t.stdout.split('\n').filter((l) => /^(nlp|vision)\b/.test(l));
    expect(rows).toHaveLength(2);
    const total = t.stdout.split('\n').find((l) => l.startsWith('TOTAL')) as string;
    expect(money(total)).toEqual([0, 1, 2].map((i) => round4(rows.reduce((s, l) => s + (money(l)[i] as number), 0))));
    const csv = cli(['savings', '--csv', dir], { cwd: dir });
    expect(csv.stdout.split('\n')[0]).toBe('group,workloads,spot_hours,on_demand_hours,actual_usd,on_demand_usd,saved_usd,saved_pct,migrations,failed_migrations,downtime_s,phases');
    expect(csv.stdout.split('\n').filter((l) => l !== '')).toHaveLength(3);
    const bad = cli(['savings', '--by', 'team', dir], { cwd: dir });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('--by: expected "workload" or "label:KEY", got "team"');
  });

  it.skipIf(!RUN_BROWSER)('report writes a self-contained page that headless Chromium renders with the chart drawn', async () => {
    const out = join(dir, 'report.html');
    const r = cli(['report', '--out', out, '--since', '1h', dir], { cwd: dir });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Wrote ${out}`);
    expect(existsSync(out)).toBe(true);
    const html = readFileSync(out, 'utf8');
    expect(html).not.toMatch(/https?:\/\//);
    const page = await renderReport(out, join(tmpdir(), 'spotfleet-report-e2e.png'));
    console.log(`report screenshot: ${page.screenshot}`);
    expect(page.title).toBe('spotfleet report: e2e');
    expect(page.requests).toEqual([]);
    expect(page.consoleErrors).toEqual([]);
    for (const line of [page.actual, page.onDemand]) {
      expect(line).not.toBeNull();
      expect(line?.points).toBeGreaterThan(20);
      expect(line?.width).toBeGreaterThan(100);
      expect(line?.height).toBeGreaterThan(10);
    }
    // SVG y grows downwards: the on-demand line ends above the actual one (money was saved).
    expect(page.onDemand?.lastY).toBeLessThan(page.actual?.lastY ?? 0);
    expect(page.savingsRows).toBe(2);
    expect(page.migrationRows).toBe(1);
    expect(page.totalCells[0]).toMatch(/^\d+\.\d{4}$/);
  });

  it('explain shows the numbers that decided a workload', () => {
    const r = cli(['explain', 'workload.train-a', dir], { cwd: dir });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^workload\.train-a: /);
    expect(r.stdout).toMatch(/now on od-v100\/lab \(on-demand\) node od-\d at \$3\.06\/GPU-h/);
    expect(r.stdout).toMatch(/spot-v100\/\S+ spot \$\d/);
    expect(r.stdout).toContain('[eligibility] capacity: on-demand in the spec');
    expect(r.stdout).toMatch(/\[cost-benefit\]/);
    for (const k of ['remainingHours', 'currentPricePerGpuHour', 'targetPricePerGpuHour', 'migrationOverheadUsd', 'netSavingsUsd', 'savingsPerHour', 'minSavingsPerHour']) expect(r.stdout).toMatch(new RegExp(`^\\s+${k}\\s+\\S`, 'm'));
    expect(r.stdout).toMatch(/^money:\n {2}now \$3\.06\/h, after \$3\.06\/h/m);
  });
});
