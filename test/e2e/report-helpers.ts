// Renders a report page in real headless Chromium (playwright-core driving the system's
// /usr/bin/chromium), records every network request the page tries, measures the chart's
// polylines, and takes a screenshot. Chromium missing: the suite skips on a developer machine and
// fails under SPOTFLEET_REAL_PEERS=1 (CI), as every real-peer suite does.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.SPOTFLEET_CHROMIUM ?? '/usr/bin/chromium';
export const REAL_PEERS = process.env.SPOTFLEET_REAL_PEERS === '1';
export const HAVE_CHROMIUM = existsSync(CHROMIUM);
/** Run the browser checks when chromium is here, or when CI demands it (then they fail loudly). */
export const RUN_BROWSER = HAVE_CHROMIUM || REAL_PEERS;

export interface LineFacts {
  points: number;
  width: number;
  height: number;
  /** Last point in SVG user units (the cumulative total). */
  lastY: number;
  firstY: number;
}

export interface RenderedReport {
  title: string;
  /** Requests other than the page itself: a self-contained page makes none. */
  requests: string[];
  actual: LineFacts | null;
  onDemand: LineFacts | null;
  savingsRows: number;
  migrationRows: number;
  totalCells: string[];
  consoleErrors: string[];
  screenshot: string;
}

// Runs in the page. A string, because the repo's tsconfig has no DOM types.
const MEASURE = `(() => {
  const line = (id) => {
    const el = document.getElementById(id);
    if (!el || !el.points) return null;
    const box = el.getBBox();
    const n = el.points.numberOfItems;
    return { points: n, width: box.width, height: box.height, firstY: n > 0 ? el.points.getItem(0).y : NaN, lastY: n > 0 ? el.points.getItem(n - 1).y : NaN };
  };
  return {
    title: document.title,
    actual: line('cost-actual'),
    onDemand: line('cost-on-demand'),
    savingsRows: document.querySelectorAll('#savings tbody tr').length,
    migrationRows: document.querySelectorAll('#migrations tbody tr').length,
    totalCells: [...document.querySelectorAll('#savings tfoot td')].map((td) => td.textContent || ''),
  };
})()`;

/** Opens `htmlPath` in headless Chromium, measures the chart, and saves a PNG to `screenshot`. */
export async function renderReport(htmlPath: string, screenshot: string): Promise<RenderedReport> {
  if (!HAVE_CHROMIUM) throw new Error(`chromium is not installed at ${CHROMIUM} (apt-get install -y chromium); SPOTFLEET_REAL_PEERS=1 requires it`);
  const profile = mkdtempSync(join(tmpdir(), 'sf-chromium-'));
  // A fresh profile per run: playwright takes it as launchPersistentContext's userDataDir.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1000, height: 900 },
  });
  try {
    const page = await context.newPage();
    const url = pathToFileURL(htmlPath).href;
    const requests: string[] = [];
    const consoleErrors: string[] = [];
    page.on('request', (r) => {
      if (r.url() !== url) requests.push(r.url());
    });
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    await page.goto(url, { waitUntil: 'load' });
    const facts = await page.evaluate<Omit<RenderedReport, 'requests' | 'consoleErrors' | 'screenshot'>>(MEASURE);
    await page.screenshot({ path: screenshot, fullPage: true });
    return { ...facts, requests, consoleErrors, screenshot };
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

/** Adds `labels:` to workloads of a fleet written by `writeFleet` (which has no labels option). */
export function addLabels(dir: string, labels: Record<string, Record<string, string>>): void {
  const path = join(dir, 'fleet.yaml');
  let text = readFileSync(path, 'utf8');
  for (const [name, l] of Object.entries(labels)) {
    const line = `  - name: ${name}\n`;
    if (!text.includes(line)) throw new Error(`addLabels: no workload ${name} in ${path}`);
    text = text.replace(line, `${line}    labels: ${JSON.stringify(l)}\n`);
  }
  writeFileSync(path, text);
}
