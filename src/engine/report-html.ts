// Renders `spotfleet report`: one self-contained HTML page (no scripts, no external resources; a
// Content-Security-Policy forbids them) with the headline savings, an inline SVG chart of
// cumulative cost over time (actual vs the on-demand counterfactual), the savings table and the
// table of migrations. Pure and deterministic: the page shows only times from its inputs.
import { formatDuration, formatUsd } from '../core/units.js';
import { CHART_CSS, PALETTE, niceTicks, spanWords } from './chart.js';
import { cumulativeCost, formatGroupBy, type LedgerSegment, type MigrationRow, type SavingsSummary } from './ledger.js';

export interface ReportInput {
  fleet: string;
  summary: SavingsSummary;
  segments: readonly LedgerSegment[];
  migrations: readonly MigrationRow[];
}

const CHART = { width: 880, height: 340, left: 78, right: 24, top: 20, bottom: 44 } as const;

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

const iso = (ms: number): string => new Date(ms).toISOString().replace('.000Z', 'Z');
const fx = (n: number): string => (Math.round(n * 10) / 10).toFixed(1);

function timeLabel(t: number, spanMs: number): string {
  const s = new Date(t).toISOString();
  if (spanMs >= 3 * 86_400_000) return s.slice(5, 10);
  if (spanMs >= 3_600_000) return `${s.slice(5, 10)} ${s.slice(11, 16)}`;
  return s.slice(11, 19);
}

/**
 * The inline SVG chart of cumulative cost: two polylines (#cost-actual, #cost-on-demand), both axes
 * with ticks and titles, and a marker per migration (`.migration-marker`, its details in a title).
 * `legend` gives the totals to print (the table's, so the page agrees with itself); default: the
 * series' ends.
 */
export function renderCostChart(segments: readonly LedgerSegment[], from: number, to: number, legend?: { actualUsd: number; onDemandUsd: number }, migrations: readonly MigrationRow[] = []): string {
  const series = cumulativeCost(segments, from, to);
  const { width, height, left, right, top, bottom } = CHART;
  const w = width - left - right;
  const h = height - top - bottom;
  const last = series[series.length - 1];
  const maxY = series.reduce((m, p) => Math.max(m, p.actualUsd, p.onDemandUsd), 0);
  const { ticks: yTicks, top: top$ } = niceTicks(maxY, 5);
  const span = Math.max(1, to - from);
  const x = (t: number): number => left + ((t - from) / span) * w;
  const y = (usd: number): number => top + h - (usd / top$) * h;
  const pts = (f: (p: (typeof series)[number]) => number): string => series.map((p) => `${fx(x(p.t))},${fx(y(f(p)))}`).join(' ');
  const out: string[] = [];
  out.push(`<svg id="cost-chart" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="Cumulative cost over time: actual versus on-demand">`);
  out.push(`<rect x="${left}" y="${top}" width="${w}" height="${h}" class="plot"/>`);
  for (const v of yTicks) {
    const yy = fx(y(v));
    out.push(`<line x1="${left}" x2="${left + w}" y1="${yy}" y2="${yy}" class="grid"/><g class="tick" data-axis="y"><line x1="${left - 5}" x2="${left}" y1="${yy}" y2="${yy}"/><text x="${left - 8}" y="${yy}" text-anchor="end" dominant-baseline="middle">${esc(formatUsd(v))}</text></g>`);
  }
  for (let i = 0; i <= 4; i++) {
    const t = from + (span * i) / 4;
    const xx = fx(x(t));
    out.push(`<g class="tick" data-axis="x"><line x1="${xx}" x2="${xx}" y1="${top + h}" y2="${top + h + 5}"/><text x="${xx}" y="${top + h + 18}" text-anchor="${i === 0 ? 'start' : i === 4 ? 'end' : 'middle'}">${esc(timeLabel(t, span))}</text></g>`);
  }
  // Each migration: a dashed line at its time and a mark on top, the move in its tooltip.
  for (const m of migrations) {
    if (m.at < from || m.at > to) continue;
    const xx = fx(x(m.at));
    const what = `${iso(m.at)} ${m.workload}: ${m.from ?? '?'} → ${m.to} (${m.outcome}): ${m.reason}`;
    out.push(`<g class="migration-marker" data-workload="${esc(m.workload)}" data-outcome="${esc(m.outcome)}"><title>${esc(what)}</title><line x1="${xx}" x2="${xx}" y1="${top}" y2="${top + h}" class="migration"/><path d="M${xx},${fx(top + 7)} l-5,-7 h10 z" class="migration-mark"/></g>`);
  }
  // The gap between the lines is what was saved.
  const area = [...series.map((p) => `${fx(x(p.t))},${fx(y(p.onDemandUsd))}`), ...[...series].reverse().map((p) => `${fx(x(p.t))},${fx(y(p.actualUsd))}`)].join(' ');
  out.push(`<polygon points="${area}" class="saved"/>`);
  out.push(`<polyline id="cost-on-demand" points="${pts((p) => p.onDemandUsd)}" class="line od"/>`);
  out.push(`<polyline id="cost-actual" points="${pts((p) => p.actualUsd)}" class="line actual"/>`);
  out.push(`<line x1="${left}" x2="${left + w}" y1="${top + h}" y2="${top + h}" class="axis"/><line x1="${left}" x2="${left}" y1="${top}" y2="${top + h}" class="axis"/>`);
  out.push(`<text x="${left + w / 2}" y="${height - 6}" class="axis-title" data-axis="x" text-anchor="middle">time (UTC)</text>`);
  out.push(`<text x="14" y="${top + h / 2}" class="axis-title" data-axis="y" text-anchor="middle" transform="rotate(-90 14 ${top + h / 2})">cumulative cost (USD)</text>`);
  const inWindow = migrations.filter((m) => m.at >= from && m.at <= to).length;
  out.push(`<g class="legend" transform="translate(${left + 12},${top + 14})"><line x1="0" x2="22" y1="0" y2="0" class="line od"/><text x="28" y="4">on-demand counterfactual ${esc(formatUsd(legend?.onDemandUsd ?? last?.onDemandUsd ?? 0))}</text><line x1="0" x2="22" y1="20" y2="20" class="line actual"/><text x="28" y="24">actual ${esc(formatUsd(legend?.actualUsd ?? last?.actualUsd ?? 0))}</text>${inWindow > 0 ? `<line x1="0" x2="22" y1="40" y2="40" class="migration"/><text x="28" y="44">migration (${inWindow})</text>` : ''}</g>`);
  out.push('</svg>');
  return out.join('\n');
}

function savingsTable(s: SavingsSummary): string {
  const head = [s.by.kind === 'workload' ? 'workload' : s.by.key, 'spot h', 'on-demand h', 'paid', 'on-demand $', 'saved', 'saved %', 'migrations', 'downtime'];
  const cells = (r: SavingsSummary['totals']): string[] => [r.spotHours.toFixed(4), r.onDemandHours.toFixed(4), formatUsd(r.actualUsd), formatUsd(r.onDemandUsd), formatUsd(r.savedUsd), `${r.savedPct.toFixed(2)}%`, String(r.migrations), formatDuration(r.downtimeMs)];
  const rows = s.rows.map((r) => `<tr><th scope="row">${esc(r.key)}${r.onDemandEstimated ? ' *' : ''}</th>${cells(r).map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`);
  const total = `<tr class="total"><th scope="row">TOTAL</th>${cells(s.totals).map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`;
  if (s.rows.length === 0) return '<p class="empty">Nothing ran in this window: the ledger is empty.</p>';
  return `<table id="savings"><thead><tr>${head.map((c) => `<th scope="col">${esc(c)}</th>`).join('')}</tr></thead><tbody>\n${rows.join('\n')}\n</tbody><tfoot>${total}</tfoot></table>`;
}

function migrationsTable(ms: readonly MigrationRow[]): string {
  if (ms.length === 0) return '<p class="empty">No migrations in this window.</p>';
  const head = ['time (UTC)', 'workload', 'from → to', 'reason', 'downtime', 'outcome'];
  const rows = ms.map(
    (m) =>
      `<tr class="${m.outcome === 'ok' ? 'ok' : 'bad'}"><td>${esc(iso(m.at))}</td><td>${esc(m.workload)}</td><td>${esc(m.from ?? '?')} → ${esc(m.to)}</td><td class="reason">${esc(m.reason)}</td><td>${esc(m.downtimeMs === undefined ? '-' : formatDuration(m.downtimeMs))}</td><td>${esc(m.outcome)}${m.lostWorkMs ? ` (lost ${esc(formatDuration(m.lostWorkMs))})` : ''}</td></tr>`,
  );
  return `<table id="migrations"><thead><tr>${head.map((c) => `<th scope="col">${esc(c)}</th>`).join('')}</tr></thead><tbody>\n${rows.join('\n')}\n</tbody></table>`;
}

const STYLE = `
:root { color-scheme: light; --fg: #1d2330; --muted: #5b6475; --line: #d9dee7; --actual: ${PALETTE.spotfleet}; --od: ${PALETTE.onDemand}; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); margin: 24px auto; max-width: 960px; padding: 0 16px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; }
.sub { color: var(--muted); margin: 0 0 16px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; min-width: 120px; }
.card b { display: block; font-size: 20px; } .card span { color: var(--muted); font-size: 12px; }
.card.saved b { color: var(--actual); }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid var(--line); padding: 5px 8px; text-align: right; white-space: nowrap; }
th:first-child, td:first-child, #migrations th, #migrations td { text-align: left; }
#migrations td.reason { white-space: normal; }
thead th { color: var(--muted); font-weight: 600; }
tfoot th, tfoot td { font-weight: 700; border-top: 2px solid var(--fg); }
tr.bad td { color: var(--od); }
.empty, .notes { color: var(--muted); }
.notes { list-style: none; padding-left: 0; }
svg .plot { fill: #fbfcfe; stroke: none; }
svg text { font-size: 11px; fill: var(--muted); } svg .legend text { font-size: 12px; fill: var(--fg); }
${CHART_CSS}
svg .line { fill: none; stroke-width: 2.5; stroke-linejoin: round; } svg .actual { stroke: var(--actual); } svg .od { stroke: var(--od); stroke-dasharray: 6 4; }
svg .saved { fill: rgba(31, 122, 77, 0.10); stroke: none; }
`;

/** Where the chart starts: where the spending does, so a short history in a long window stays legible. */
function chartFrom(r: ReportInput): number {
  const s = r.summary;
  return Math.min(s.to, Math.max(s.from, r.segments.reduce((m, x) => Math.min(m, x.from), s.to)));
}

/**
 * The header's time span, as it is: how much recorded time the page covers (first to last cost),
 * then the window it was asked for. Three minutes of data in a 7-day window read as three minutes.
 */
export function spanHeader(r: ReportInput): string {
  const s = r.summary;
  const window = s.since === undefined ? 'window: all recorded time' : `window: since ${iso(s.since)}`;
  if (r.segments.length === 0) return `No recorded cost in this window · ${window}`;
  const first = r.segments.reduce((m, x) => Math.min(m, x.from), Number.POSITIVE_INFINITY);
  const last = r.segments.reduce((m, x) => Math.max(m, x.to), 0);
  return `${spanWords(last - first)} of recorded cost: ${iso(first)} → ${iso(last)} · ${window}`;
}

/**
 * The report page. Self-contained: inline CSS and SVG only.
 * @example writeFileSync('report.html', renderReportHtml({ fleet, summary, segments, migrations }))
 */
export function renderReportHtml(r: ReportInput): string {
  const s = r.summary;
  const t = s.totals;
  const card = (label: string, value: string, cls = ''): string => `<div class="card${cls ? ` ${cls}` : ''}"><b>${esc(value)}</b><span>${esc(label)}</span></div>`;
  const parts = [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8">',
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>spotfleet report: ${esc(r.fleet)}</title>`,
    `<style>${STYLE}</style></head><body>`,
    `<h1>spotfleet savings report: ${esc(r.fleet)}</h1>`,
    `<p class="sub" id="span">${esc(spanHeader(r))} · by ${esc(formatGroupBy(s.by))}</p>`,
    '<div class="cards">',
    card('paid', formatUsd(t.actualUsd)),
    card('on-demand would have cost', formatUsd(t.onDemandUsd)),
    card(`saved (${t.savedPct.toFixed(2)}%)`, formatUsd(t.savedUsd), 'saved'),
    card('hours on spot', t.spotHours.toFixed(4)),
    card('hours on on-demand', t.onDemandHours.toFixed(4)),
    card('migrations', String(t.migrations)),
    card('downtime', formatDuration(t.downtimeMs)),
    '</div>',
    '<h2>Cumulative cost</h2>',
    // The chart starts where the spending does, so a short history in a long window stays legible.
    renderCostChart(r.segments, chartFrom(r), s.to, t, r.migrations),
    '<h2>Savings</h2>',
    savingsTable(s),
    ...(s.notes.length > 0 ? [`<ul class="notes">${s.notes.map((n) => `<li>* ${esc(n)}</li>`).join('')}</ul>`] : []),
    '<h2>Migrations</h2>',
    migrationsTable(r.migrations),
    '</body></html>',
    '',
  ];
  return parts.join('\n');
}
