// Issue 6's proof of savings on a watched fleet: `watch` runs a quickstart-like fleet, spot nodes
// get eviction notices and the trainers migrate; then `savings --json` totals must match the
// ledger in state.json (closed segments plus the open ones up to the report's time), and
// `report` must write a page whose chart headless Chromium draws.
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { StateFile, WorkloadRecord } from '../../src/state/types.js';
import { cli, sleep } from './helpers.js';
import { RUN_BROWSER, renderReport } from './report-helpers.js';
import { destroyAll, killAllWatches, simEvict, startWatch, tempWatchFleet } from './watch-helpers.js';

const HOUR = 3_600_000;
const dirs: string[] = [];
afterAll(async () => {
  await killAllWatches();
  await destroyAll(dirs);
}, 180_000);

describe('savings after a watched fleet survived evictions', () => {
  it('savings totals match the ledger, and the report renders', async () => {
    const dir = tempWatchFleet([{ name: 'train-a' }, { name: 'train-b', gpus: 2 }]);
    dirs.push(dir);
    const watch = startWatch(dir);
    const placed = await watch.waitFor((l) => l.msg === 'start ok', { count: 2, timeoutMs: 60_000, what: 'both trainers started' });
    const nodes = [...new Set(placed.map((l) => (typeof l.node === 'string' ? l.node : '')))].filter(Boolean);
    expect(nodes.length).toBeGreaterThanOrEqual(1);
    await sleep(1500);
    const from = watch.lines.length;
    for (const n of nodes) await simEvict(dir, n, '30s');
    await watch.waitFor((l) => l.msg === 'migration complete', { from, count: 2, timeoutMs: 60_000, what: 'both trainers migrated' });
    await sleep(1500);
    watch.signal('SIGTERM');
    expect((await watch.exited).code).toBe(0);

    const r = cli(['savings', '--json', dir], { cwd: dir });
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    const now: number = doc.window.to_ms;
    const st = JSON.parse(readFileSync(join(dir, '.spotfleet/state.json'), 'utf8')) as StateFile;
    // Recompute from the ledger: every closed segment, plus each running workload's open one.
    let actual = 0;
    let onDemand = 0;
    for (const e of st.ledger) {
      actual += ((e.to - e.from) / HOUR) * e.gpus * e.pricePerGpuHour;
      onDemand += ((e.to - e.from) / HOUR) * e.gpus * e.onDemandPricePerGpuHour;
    }
    const records = Object.values(st.resources).filter((x): x is WorkloadRecord => x.type === 'workload');
    for (const w of records) {
      if (w.instanceId === undefined || w.since === undefined) continue;
      actual += ((now - w.since) / HOUR) * w.gpus * (w.pricePerGpuHour ?? 0);
      onDemand += ((now - w.since) / HOUR) * w.gpus * (w.onDemandPricePerGpuHour ?? w.pricePerGpuHour ?? 0);
    }
    expect(st.ledger.some((e) => e.capacity === 'spot')).toBe(true);
    // Rows round once per capacity type: the totals agree with the exact sums to within rounding.
    expect(Math.abs(doc.totals.actual_usd - actual)).toBeLessThanOrEqual(0.001);
    expect(Math.abs(doc.totals.on_demand_usd - onDemand)).toBeLessThanOrEqual(0.001);
    expect(doc.totals.migrations).toBe(records.reduce((n, w) => n + w.moves.length, 0));
    expect(doc.totals.migrations).toBeGreaterThanOrEqual(2);
    // And the totals are the sums of the rows.
    const sum = (k: string): number => Math.round(doc.rows.reduce((t: number, x: Record<string, number>) => t + (x[k] as number), 0) * 10_000) / 10_000;
    for (const k of ['actual_usd', 'on_demand_usd', 'saved_usd']) expect(doc.totals[k]).toBe(sum(k));

    const out = join(dir, 'report.html');
    const rep = cli(['report', dir, '--out', out], { cwd: dir });
    expect(rep.code).toBe(0);
    if (RUN_BROWSER) {
      const page = await renderReport(out, join(tmpdir(), 'spotfleet-report-watch.png'));
      expect(page.requests).toEqual([]);
      expect(page.consoleErrors).toEqual([]);
      for (const line of [page.actual, page.onDemand]) {
        expect(line?.points).toBeGreaterThan(2);
        expect(line?.width).toBeGreaterThan(50);
      }
      expect(page.migrationRows).toBeGreaterThanOrEqual(2);
    }
  }, 240_000);
});
