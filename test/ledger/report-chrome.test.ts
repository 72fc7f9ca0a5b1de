// The report page from a hand-built day of history (spot, an eviction to on-demand, back to spot, a
// failed move), rendered in real headless Chromium: both cost lines are drawn across the plot, the
// on-demand line ends above the actual one by the saved amount, the tables have their rows, and the
// page makes no network request. Skips without chromium, fails without it under SPOTFLEET_REAL_PEERS=1.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HOUR_MS } from '../../src/core/units.js';
import { ledgerSegments, migrationsIn, summariseSavings } from '../../src/engine/ledger.js';
import { renderReportHtml } from '../../src/engine/report-html.js';
import type { StateFile } from '../../src/state/types.js';
import { RUN_BROWSER, renderReport } from '../e2e/report-helpers.js';

const T0 = Date.parse('2026-11-01T00:00:00Z');
const h = (n: number): number => T0 + n * HOUR_MS;

function day(): StateFile {
  return {
    version: 1,
    serial: 40,
    lineage: 'l',
    fleet: 'research',
    pending: [],
    ledger: [
      { workload: 'train-a', capacity: 'spot', from: h(0), to: h(6), gpus: 4, pricePerGpuHour: 0.92, onDemandPricePerGpuHour: 3.06, pool: 'spot-v100' },
      { workload: 'train-a', capacity: 'on-demand', from: h(6.05), to: h(9), gpus: 4, pricePerGpuHour: 3.06, onDemandPricePerGpuHour: 3.06, pool: 'od-v100' },
      { workload: 'eval', capacity: 'on-demand', from: h(2), to: h(5), gpus: 1, pricePerGpuHour: 3.06, onDemandPricePerGpuHour: 3.06, pool: 'od-v100' },
    ],
    resources: {
      'workload.train-a': {
        type: 'workload', address: 'workload.train-a', name: 'train-a', phase: 'running', failures: 0, recoveries: 0, gpus: 4, capacity: 'spot', pricePerGpuHour: 1.1, pool: 'spot-v100', node: 'sim-3', since: h(9.02), doneMs: 0, generation: 2, preemptions: [h(6)],
        moves: [
          { at: h(6.05), from: 'sim-1', to: 'od-1', reason: 'eviction notice (aws, 120s)', downtimeMs: 95_000, outcome: 'ok' },
          { at: h(8.5), from: 'od-1', to: 'sim-2', reason: 'back to spot: saves $8.16/h', downtimeMs: 0, outcome: 'failed' },
          { at: h(9.02), from: 'od-1', to: 'sim-3', reason: 'back to spot: saves $7.84/h', downtimeMs: 40_000, outcome: 'ok' },
        ],
      },
    },
  };
}

describe('report page in headless Chromium', () => {
  it.skipIf(!RUN_BROWSER)('draws both cost lines across the plot and the tables', async () => {
    const st = day();
    const now = h(24);
    const summary = summariseSavings(st, { now });
    const html = renderReportHtml({ fleet: 'research', summary, segments: ledgerSegments(st, { now }), migrations: migrationsIn(st, { now }) });
    const dir = mkdtempSync(join(tmpdir(), 'sf-report-'));
    const path = join(dir, 'report.html');
    writeFileSync(path, html);
    const page = await renderReport(path, join(tmpdir(), 'spotfleet-report-day.png'));
    console.log(`report screenshot: ${page.screenshot}`);
    expect(page.requests).toEqual([]);
    expect(page.consoleErrors).toEqual([]);
    const a = page.actual;
    const o = page.onDemand;
    expect(a?.points).toBeGreaterThan(60);
    expect(o?.points).toBe(a?.points);
    // Both lines span the plot's width (880 − 78 − 24) and rise well off the baseline.
    expect(a?.width).toBeCloseTo(778, 0);
    expect(o?.width).toBeCloseTo(778, 0);
    expect(o?.height).toBeGreaterThan(200);
    expect(a?.height).toBeGreaterThan(50);
    expect(o?.height).toBeGreaterThan(a?.height ?? Infinity);
    expect(o?.lastY).toBeLessThan(a?.lastY ?? 0);
    expect(page.savingsRows).toBe(2);
    expect(page.migrationRows).toBe(3);
    // train-a: 6h×4×0.92 + 2.95h×4×3.06 + 14.98h×4×1.1 = 22.08 + 36.108 + 65.912 = 124.10;
    // eval: 3h×3.06 = 9.18 → paid $133.28.
    expect(page.totalCells[2]).toBe('$133.28');
  });
});
