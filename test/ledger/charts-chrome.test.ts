// The charts of `report` and `backtest --html`, looked at in real headless Chromium (screenshots
// are saved under the temp folder and their paths printed): both axes have ticks and titles; one
// colour means one thing on both pages (spotfleet/actual green, on-demand red, spot blue,
// migrations purple), read from the rendered SVG; migrations are marked on the cost chart; and the
// report's header gives the span of the data it shows, not the window it was asked for.
// Skips without chromium; fails without it under SPOTFLEET_REAL_PEERS=1, as every real-peer suite.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOUR_MS } from '../../src/core/units.js';
import { PALETTE } from '../../src/engine/chart.js';
import { ledgerSegments, migrationsIn, summariseSavings } from '../../src/engine/ledger.js';
import { renderReportHtml } from '../../src/engine/report-html.js';
import type { StateFile } from '../../src/state/types.js';
import { CHROMIUM, HAVE_CHROMIUM, RUN_BROWSER } from '../e2e/report-helpers.js';

const ROOT = resolve(import.meta.dirname, '../..');
const CLI = join(ROOT, 'dist/src/cli/main.js');
const T0 = Date.parse('2026-11-01T00:00:00Z');
const h = (n: number): number => T0 + n * HOUR_MS;

function state(ledger: StateFile['ledger'], moves: { at: number; from: string; to: string; outcome: 'ok' | 'failed' }[]): StateFile {
  return {
    version: 1, serial: 1, lineage: 'l', fleet: 'research', pending: [], ledger,
    resources: { 'workload.train-a': { type: 'workload', address: 'workload.train-a', name: 'train-a', phase: 'succeeded', failures: 0, recoveries: 0, gpus: 4, doneMs: 0, generation: 3, preemptions: [], moves: moves.map((m) => ({ ...m, reason: 'test move', downtimeMs: 30_000 })) } },
  };
}

/** What a chart page looks like to a browser: ticks, titles, colours, markers, header. */
interface Looked {
  xTicks: number;
  yTicks: number;
  titles: string[];
  span: string;
  stroke: Record<string, string>;
  fill: Record<string, string>;
  migrationMarks: number;
  marksByPolicy: Record<string, number>;
  requests: string[];
  screenshot: string;
}

const LOOK = `(() => {
  const css = (el, p) => el ? getComputedStyle(el)[p] : '';
  const q = (s) => document.querySelector(s);
  const vis = (els) => [...els].filter((e) => { const b = e.getBoundingClientRect(); return b.width > 0 || b.height > 0; }).length;
  return {
    xTicks: vis(document.querySelectorAll('svg .tick[data-axis="x"] text')),
    yTicks: vis(document.querySelectorAll('svg .tick[data-axis="y"] text')),
    titles: [...document.querySelectorAll('svg .axis-title')].map((t) => t.textContent),
    span: (q('#span') || {}).textContent || '',
    stroke: {
      actual: css(q('#cost-actual'), 'stroke'), onDemandLine: css(q('#cost-on-demand'), 'stroke'),
      spotfleet: css(q('polyline[data-policy="spotfleet"]'), 'stroke'), onDemandPolicy: css(q('polyline[data-policy="on-demand"]'), 'stroke'),
    },
    fill: {
      onDemandStrip: css(q('rect.placement[data-at="on-demand"]'), 'fill'),
      spotStrip: css(q('rect.placement[data-at^="spot:"]'), 'fill'),
      migration: css(q('.migration-mark'), 'fill'),
    },
    migrationMarks: vis(document.querySelectorAll('.migration-marker, circle.migration-mark')),
    marksByPolicy: Object.fromEntries(['spotfleet', 'greedy', 'uniform-progress', 'on-demand', 'optimum'].map((p) => [p, document.querySelectorAll('circle.migration-mark[data-policy="' + p + '"]').length])),
  };
})()`;

async function look(html: string, name: string): Promise<Looked> {
  if (!HAVE_CHROMIUM) throw new Error(`chromium is not installed at ${CHROMIUM}; SPOTFLEET_REAL_PEERS=1 requires it`);
  const dir = mkdtempSync(join(tmpdir(), 'sf-charts-'));
  const path = join(dir, `${name}.html`);
  writeFileSync(path, html);
  const profile = mkdtempSync(join(tmpdir(), 'sf-chromium-'));
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'], viewport: { width: 1000, height: 900 } });
  try {
    const page = await context.newPage();
    const url = pathToFileURL(path).href;
    const requests: string[] = [];
    page.on('request', (r) => {
      if (r.url() !== url) requests.push(r.url());
    });
    await page.goto(url, { waitUntil: 'load' });
    const facts = await page.evaluate<Omit<Looked, 'requests' | 'screenshot'>>(LOOK);
    const screenshot = join(tmpdir(), `spotfleet-${name}.png`);
    await page.screenshot({ path: screenshot, fullPage: true });
    console.log(`${name} screenshot: ${screenshot}`);
    return { ...facts, requests, screenshot };
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

/** `#1f7a4d` → `rgb(31, 122, 77)`, as getComputedStyle reports colours. */
const rgb = (hex: string): string => `rgb(${[1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)).join(', ')})`;

describe.runIf(RUN_BROWSER)('charts in headless Chromium', () => {
  let report: Looked;
  let backtest: Looked;
  let migrations: Record<string, number> = {};
  const dirs: string[] = [];

  beforeAll(async () => {
    // A day: spot, an eviction to on-demand, a failed move, back to spot; three migrations.
    const st = state(
      [
        { workload: 'train-a', capacity: 'spot', from: h(0), to: h(6), gpus: 4, pricePerGpuHour: 0.92, onDemandPricePerGpuHour: 3.06 },
        { workload: 'train-a', capacity: 'on-demand', from: h(6.05), to: h(9), gpus: 4, pricePerGpuHour: 3.06, onDemandPricePerGpuHour: 3.06 },
        { workload: 'train-a', capacity: 'spot', from: h(9.02), to: h(20), gpus: 4, pricePerGpuHour: 1.1, onDemandPricePerGpuHour: 3.06 },
      ],
      [
        { at: h(6.05), from: 'sim-1', to: 'od-1', outcome: 'ok' },
        { at: h(8.5), from: 'od-1', to: 'sim-2', outcome: 'failed' },
        { at: h(9.02), from: 'od-1', to: 'sim-3', outcome: 'ok' },
      ],
    );
    const now = h(24);
    report = await look(renderReportHtml({ fleet: 'research', summary: summariseSavings(st, { now }), segments: ledgerSegments(st, { now }), migrations: migrationsIn(st, { now }) }), 'report-day');

    const dir = mkdtempSync(join(tmpdir(), 'sf-bt-html-'));
    dirs.push(dir);
    const html = join(dir, 'bt.html');
    // One zone that loses its spot capacity now and then: policies restart and move.
    const r = spawnSync(process.execPath, [CLI, 'backtest', '--trace', join(ROOT, 'examples/quickstart/traces'), '--job', '30h', '--deadline', '60h', '--changeover', '0.2h', '--windows', '1', '--zones', 'us-west-2a', '--json', '--html', html], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as { workloads: { windows: { runs: { policy: string; migrations: number }[] }[] }[] };
    migrations = Object.fromEntries((doc.workloads[0]?.windows[0]?.runs ?? []).map((x) => [x.policy, x.migrations]));
    const { readFileSync } = await import('node:fs');
    backtest = await look(readFileSync(html, 'utf8'), 'backtest');
  }, 120_000);
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('both charts have ticks and a title on each axis', () => {
    for (const [name, p] of [['report', report], ['backtest', backtest]] as const) {
      expect(p.xTicks, `${name} x ticks`).toBeGreaterThanOrEqual(4);
      expect(p.yTicks, `${name} y ticks`).toBeGreaterThanOrEqual(3);
      expect(p.titles, name).toContain('cumulative cost (USD)');
      expect(p.requests, name).toEqual([]);
    }
    expect(report.titles).toContain('time (UTC)');
    expect(backtest.titles).toContain('hours since the window start');
  });

  it('one colour per meaning across both pages', () => {
    // What spotfleet paid (report) and spotfleet's policy (backtest): the same green.
    expect(report.stroke.actual).toBe(rgb(PALETTE.spotfleet));
    expect(backtest.stroke.spotfleet).toBe(rgb(PALETTE.spotfleet));
    // On-demand: the counterfactual line, the all-on-demand policy and on-demand placement.
    expect(report.stroke.onDemandLine).toBe(rgb(PALETTE.onDemand));
    expect(backtest.stroke.onDemandPolicy).toBe(rgb(PALETTE.onDemand));
    expect(backtest.fill.onDemandStrip).toBe(rgb(PALETTE.onDemand));
    // Spot placement is blue, never a colour a line of another meaning uses; migrations purple.
    expect(backtest.fill.spotStrip).toMatch(/^rgb\(\d+, \d+, \d+\)$/);
    expect([report.stroke.actual, report.stroke.onDemandLine]).not.toContain(backtest.fill.spotStrip);
    expect(report.fill.migration).toBe(rgb(PALETTE.migration));
    expect(backtest.fill.migration).toBe(rgb(PALETTE.migration));
  });

  it('migrations are marked on the cost charts', () => {
    expect(report.migrationMarks).toBe(3);
    // A mark per migration the simulator counted, on each policy's own line.
    expect(Object.values(migrations).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    expect(backtest.marksByPolicy).toEqual(migrations);
  });

  it("the report's header gives the span of its data: 3 minutes in a 7-day window read as 3m", async () => {
    expect(report.span).toMatch(/^20h of recorded cost: 2026-11-01T00:00:00Z → 2026-11-01T20:00:00Z · window: all recorded time · by workload$/);
    const now = h(0) + 10 * 60_000;
    const st = state([{ workload: 'train-a', capacity: 'spot', from: h(0), to: h(0) + 3 * 60_000, gpus: 1, pricePerGpuHour: 0.92, onDemandPricePerGpuHour: 3.06 }], []);
    const since = now - 7 * 24 * HOUR_MS;
    const short = await look(renderReportHtml({ fleet: 'research', summary: summariseSavings(st, { now, since }), segments: ledgerSegments(st, { now, since }), migrations: migrationsIn(st, { now, since }) }), 'report-3m');
    expect(short.span).toMatch(/^3m of recorded cost: 2026-11-01T00:00:00Z → 2026-11-01T00:03:00Z · window: since 2026-10-25T00:10:00Z · by workload$/);
    expect(short.xTicks).toBeGreaterThanOrEqual(4);
  });
});
