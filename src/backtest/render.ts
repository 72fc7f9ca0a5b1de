// Renderers of a BacktestResult: the text table, the JSON document (format_version "1.0") and a
// self-contained HTML page with inline SVG charts (cumulative cost and placement per policy).
// Deterministic: no timestamps of the run itself, numbers rounded in one place.
import { JSON_FORMAT_VERSION } from '../core/json.js';
import { formatTable } from '../core/text.js';
import { formatRate, roundUsd } from '../core/units.js';
import { CHART_CSS, PALETTE, SPOT_SHADES, niceTicks, policyColour, spanWords } from '../engine/chart.js';
import { IDLE, ON_DEMAND, SPOT0 } from './model.js';
import type { SpotTrace } from '../core/trace.js';
import type { FleetResult } from './fleet.js';
import type { BacktestResult, WorkloadResult } from './run.js';

export const BACKTEST_FORMAT_VERSION = JSON_FORMAT_VERSION;

const r2 = (x: number): string => x.toFixed(2);

/** The text table: per workload, one row per policy (means over the windows). */
export function renderBacktestText(res: BacktestResult): string {
  const out: string[] = [];
  out.push(`Backtest on ${res.trace}`);
  out.push(`  ${new Date(res.fromMs).toISOString()} → ${new Date(res.toMs).toISOString()}, ${res.tickSeconds}-s ticks`);
  for (const a of res.assumptions) out.push(`  assumed: ${a}`);
  for (const w of res.workloads) {
    out.push('');
    out.push(`workload.${w.workload}: ${r2(w.workHours)} h of work on ${w.gpus} GPU${w.gpus === 1 ? '' : 's'}, deadline ${r2(w.deadlineHours)} h, changeover ${r2(w.changeoverHours)} h, zones ${w.zones.join(', ')}`);
    out.push(`  ${w.windows.length} window${w.windows.length === 1 ? '' : 's'} (means per window); emergency checkpoint ${w.emergencyCheckpointOk ? 'fits the notice: no work lost on preemption' : 'exceeds the notice: work since the periodic checkpoint is lost'}`);
    // Egress only when some move paid it (a checkpoint size and zones in several regions).
    const egress = w.summary.some((s) => s.meanEgressUsd > 0);
    const head = ['policy', 'cost', ...(egress ? ['egress'] : []), 'spot h', 'on-demand h', 'migrations', 'preemptions', 'lost h', 'finish h', 'deadline met', 'cost/optimum'];
    const rows = w.summary.map((s) => [
      s.policy,
      `$${r2(roundUsd(s.meanCostUsd))}`,
      ...(egress ? [`$${r2(roundUsd(s.meanEgressUsd))}`] : []),
      r2(s.meanSpotHours),
      r2(s.meanOnDemandHours),
      s.meanMigrations.toFixed(1),
      s.meanPreemptions.toFixed(1),
      r2(s.meanLostWorkHours),
      s.meanFinishHours === undefined ? '-' : r2(s.meanFinishHours),
      `${s.deadlinesMet}/${s.windows}`,
      s.costOverOptimum === undefined ? '-' : s.costOverOptimum.toFixed(3),
    ]);
    out.push(...formatTable([head, ...rows], { align: 'numeric', indent: '  ' }));
  }
  return `${out.join('\n')}\n`;
}

/** Placement segments [fromTick, toTick, location] of a timeline. */
function segments(tl: Uint8Array, names: (loc: number) => string): { from: number; to: number; at: string }[] {
  const segs: { from: number; to: number; at: string }[] = [];
  let start = 0;
  for (let k = 1; k <= tl.length; k++) {
    if (k === tl.length || tl[k] !== tl[start]) {
      segs.push({ from: start, to: k, at: names(tl[start] as number) });
      start = k;
    }
  }
  return segs;
}

function locName(w: WorkloadResult, loc: number): string {
  if (loc === IDLE) return 'idle';
  if (loc === ON_DEMAND) return 'on-demand';
  return `spot:${w.zones[loc - SPOT0] ?? '?'}`;
}

/** The JSON document (`format_version` "1.0", docs/json.md); timelines as placement segments in ticks. */
export function backtestJson(res: BacktestResult): unknown {
  return {
    format_version: BACKTEST_FORMAT_VERSION,
    trace: res.trace,
    trace_format: res.traceFormat ?? null,
    assumptions: res.assumptions,
    from: new Date(res.fromMs).toISOString(),
    to: new Date(res.toMs).toISOString(),
    tick_seconds: res.tickSeconds,
    policies: res.policies,
    workloads: res.workloads.map((w) => ({
      workload: w.workload,
      gpus: w.gpus,
      work_hours: w.workHours,
      deadline_hours: w.deadlineHours,
      changeover_hours: w.changeoverHours,
      zones: w.zones,
      ticks: w.ticks,
      emergency_checkpoint_ok: w.emergencyCheckpointOk,
      summary: w.summary.map((s) => ({
        policy: s.policy,
        windows: s.windows,
        mean_cost_usd: roundUsd(s.meanCostUsd),
        mean_spot_hours: roundUsd(s.meanSpotHours),
        mean_on_demand_hours: roundUsd(s.meanOnDemandHours),
        mean_migrations: roundUsd(s.meanMigrations),
        mean_preemptions: roundUsd(s.meanPreemptions),
        mean_lost_work_hours: roundUsd(s.meanLostWorkHours),
        mean_egress_usd: roundUsd(s.meanEgressUsd),
        mean_finish_hours: s.meanFinishHours === undefined ? null : roundUsd(s.meanFinishHours),
        deadlines_met: s.deadlinesMet,
        cost_over_optimum: s.costOverOptimum === undefined ? null : roundUsd(s.costOverOptimum),
      })),
      windows: w.windows.map((win) => ({
        start: new Date(win.startMs).toISOString(),
        runs: win.runs.map((r) => ({
          policy: r.policy,
          cost_usd: roundUsd(r.costUsd),
          spot_hours: roundUsd(r.spotHours),
          on_demand_hours: roundUsd(r.onDemandHours),
          idle_hours: roundUsd(r.idleHours),
          changeover_hours: roundUsd(r.changeoverHours),
          migrations: r.migrations,
          preemptions: r.preemptions,
          lost_work_hours: roundUsd(r.lostWorkHours),
          egress_usd: roundUsd(r.egressUsd),
          finish_hours: r.finishHours === undefined ? null : roundUsd(r.finishHours),
          deadline_met: r.deadlineMet,
          placement: segments(r.timeline, (l) => locName(w, l)),
        })),
      })),
    })),
  };
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** The colour of a placement, the same as on the report page: on-demand red, spot zones blue. */
function locColor(loc: number): string {
  if (loc === IDLE) return PALETTE.idle;
  if (loc === ON_DEMAND) return PALETTE.onDemand;
  return SPOT_SHADES[(loc - SPOT0) % SPOT_SHADES.length] as string;
}

/**
 * Ticks where a run makes a changeover after its first start: every start on a placement (a move,
 * or a restart after a preemption), as the simulator counts migrations.
 */
function migrationTicks(tl: Uint8Array): number[] {
  const starts: number[] = [];
  for (let k = 0; k < tl.length; k++) {
    const loc = tl[k] as number;
    if (loc !== IDLE && (k === 0 || loc !== tl[k - 1])) starts.push(k);
  }
  return starts.slice(1);
}

/**
 * One window's chart: cumulative cost per policy (each in its own colour, migrations marked on
 * its line), then one placement strip per policy. Both axes have ticks and titles.
 */
function windowSvg(w: WorkloadResult, winIndex: number): string {
  const win = w.windows[winIndex];
  if (!win) return '';
  const width = 900;
  const plotH = 260;
  const stripH = 16;
  const left = 150;
  const right = 20;
  const top = 20;
  const ticks = Math.max(1, ...win.runs.map((r) => r.timeline.length), w.ticks.deadline);
  const hours = (ticks * w.ticks.tickSeconds) / 3600;
  const maxCost = Math.max(0, ...win.runs.map((r) => r.cumulativeCost[r.cumulativeCost.length - 1] ?? 0));
  const y$ = niceTicks(maxCost, 5);
  const xH = niceTicks(hours, 8);
  const plotW = width - left - right;
  const x = (k: number): number => left + (plotW * k) / ticks;
  const xh = (h: number): number => left + (plotW * h) / hours;
  const y = (c: number): number => top + plotH - (plotH * c) / y$.top;
  const parts: string[] = [];
  const stripsTop = top + plotH + 46;
  const height = stripsTop + win.runs.length * (stripH + 4) + 10;
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="cumulative cost and placement">`);
  parts.push(`<rect x="${left}" y="${top}" width="${plotW}" height="${plotH}" fill="#fbfcfe" class="plot"/>`);
  for (const c of y$.ticks) {
    const yy = y(c).toFixed(1);
    parts.push(`<line x1="${left}" x2="${left + plotW}" y1="${yy}" y2="${yy}" class="grid"/><g class="tick" data-axis="y"><line x1="${left - 5}" x2="${left}" y1="${yy}" y2="${yy}"/><text x="${left - 8}" y="${yy}" text-anchor="end" dominant-baseline="middle">$${esc(formatRate(c))}</text></g>`);
  }
  for (const hh of xH.ticks) {
    if (hh > hours + 1e-9) continue;
    const xx = xh(hh).toFixed(1);
    parts.push(`<g class="tick" data-axis="x"><line x1="${xx}" x2="${xx}" y1="${top + plotH}" y2="${top + plotH + 5}"/><text x="${xx}" y="${top + plotH + 18}" text-anchor="middle">${esc(formatRate(hh))}</text></g>`);
  }
  parts.push(`<line x1="${left}" x2="${left + plotW}" y1="${top + plotH}" y2="${top + plotH}" class="axis"/><line x1="${left}" x2="${left}" y1="${top}" y2="${top + plotH}" class="axis"/>`);
  parts.push(`<text x="${left + plotW / 2}" y="${top + plotH + 36}" class="axis-title" data-axis="x" text-anchor="middle">hours since the window start</text>`);
  parts.push(`<text x="14" y="${top + plotH / 2}" class="axis-title" data-axis="y" text-anchor="middle" transform="rotate(-90 14 ${top + plotH / 2})">cumulative cost (USD)</text>`);
  const dl = x(w.ticks.deadline);
  parts.push(`<line x1="${dl}" y1="${top}" x2="${dl}" y2="${top + plotH}" stroke="${PALETTE.deadline}" stroke-dasharray="4 3" class="deadline"/><text x="${dl - 4}" y="${top + 12}" text-anchor="end" font-size="11" fill="${PALETTE.deadline}">deadline</text>`);
  for (const r of win.runs) {
    const n = r.cumulativeCost.length;
    const step = Math.max(1, Math.floor(n / 400));
    const pts: string[] = [`${x(0).toFixed(1)},${y(0).toFixed(1)}`];
    for (let k = 0; k < n; k += step) pts.push(`${x(k + 1).toFixed(1)},${y(r.cumulativeCost[k] as number).toFixed(1)}`);
    if (n > 0) pts.push(`${x(n).toFixed(1)},${y(r.cumulativeCost[n - 1] as number).toFixed(1)}`);
    const colour = policyColour(r.policy);
    parts.push(`<polyline class="cost" data-policy="${esc(r.policy)}" fill="none" stroke="${colour}" stroke-width="2" points="${pts.join(' ')}"/>`);
    for (const k of migrationTicks(r.timeline)) {
      const cost = k > 0 ? (r.cumulativeCost[k - 1] as number) : 0;
      parts.push(`<circle class="migration-mark" data-policy="${esc(r.policy)}" cx="${x(k).toFixed(1)}" cy="${y(cost).toFixed(1)}" r="3.5" stroke="${colour}" stroke-width="1"><title>${esc(`${r.policy}: migration at ${((k * w.ticks.tickSeconds) / 3600).toFixed(2)} h`)}</title></circle>`);
    }
  }
  win.runs.forEach((r, i) => {
    const yy = stripsTop + i * (stripH + 4);
    parts.push(`<text x="${left - 8}" y="${yy + 12}" text-anchor="end" font-size="11" fill="${policyColour(r.policy)}" class="strip-label">${esc(r.policy)}</text>`);
    for (const s of segments(r.timeline, (l) => String(l))) {
      const loc = Number(s.at);
      parts.push(`<rect class="placement" data-at="${esc(locName(w, loc))}" x="${x(s.from).toFixed(1)}" y="${yy}" width="${Math.max(0.5, x(s.to) - x(s.from)).toFixed(1)}" height="${stripH}" fill="${locColor(loc)}"><title>${esc(`${r.policy}: ${locName(w, loc)}, ${(s.from * w.ticks.tickSeconds / 3600).toFixed(2)}–${(s.to * w.ticks.tickSeconds / 3600).toFixed(2)} h`)}</title></rect>`);
    }
  });
  parts.push('</svg>');
  return parts.join('');
}

/** A self-contained HTML page: summary tables and one chart per workload and window. */
export function renderBacktestHtml(res: BacktestResult): string {
  const body: string[] = [];
  body.push(`<h1>spotfleet backtest</h1><p id="span">Trace <code>${esc(res.trace)}</code>: ${esc(spanWords(res.toMs - res.fromMs))} of trace, ${esc(new Date(res.fromMs).toISOString())} → ${esc(new Date(res.toMs).toISOString())}, ${res.tickSeconds}-s ticks.</p>`);
  if (res.assumptions.length > 0) body.push(`<ul class="assumptions">${res.assumptions.map((a) => `<li>assumed: ${esc(a)}</li>`).join('')}</ul>`);
  for (const w of res.workloads) {
    body.push(`<h2>workload.${esc(w.workload)}</h2><p>${w.workHours.toFixed(2)} h of work, deadline ${w.deadlineHours.toFixed(2)} h, changeover ${w.changeoverHours.toFixed(2)} h, zones ${esc(w.zones.join(', '))}.</p>`);
    body.push('<table><thead><tr><th>policy</th><th>mean cost</th><th>spot h</th><th>on-demand h</th><th>migrations</th><th>preemptions</th><th>lost h</th><th>deadline met</th><th>cost/optimum</th></tr></thead><tbody>');
    for (const s of w.summary) {
      body.push(`<tr><td>${esc(s.policy)}</td><td>$${r2(roundUsd(s.meanCostUsd))}</td><td>${r2(s.meanSpotHours)}</td><td>${r2(s.meanOnDemandHours)}</td><td>${s.meanMigrations.toFixed(1)}</td><td>${s.meanPreemptions.toFixed(1)}</td><td>${r2(s.meanLostWorkHours)}</td><td>${s.deadlinesMet}/${s.windows}</td><td>${s.costOverOptimum === undefined ? '-' : s.costOverOptimum.toFixed(3)}</td></tr>`);
    }
    body.push('</tbody></table>');
    const legend = [['idle', IDLE], ['on-demand', ON_DEMAND], ...w.zones.map((z, i) => [`spot:${z}`, SPOT0 + i] as const)] as const;
    body.push(`<p class="legend">Lines: ${w.summary.map((s) => `<span><i style="background:${policyColour(s.policy)}"></i>${esc(s.policy)}</span>`).join(' ')} <span><i class="dot"></i>migration</span></p>`);
    body.push(`<p class="legend">Placement: ${legend.map(([n, l]) => `<span><i style="background:${locColor(l)}"></i>${esc(n as string)}</span>`).join(' ')}</p>`);
    w.windows.forEach((win, i) => {
      body.push(`<h3>window ${i + 1}: from ${new Date(win.startMs).toISOString()}</h3>`);
      body.push(windowSvg(w, i));
    });
  }
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>spotfleet backtest</title>
<style>body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse}td,th{padding:2px 10px;border-bottom:1px solid #ddd;text-align:right}td:first-child,th:first-child{text-align:left}.legend span{margin-right:1em}.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:middle}.legend i.dot{border-radius:50%;width:9px;height:9px;background:${PALETTE.migration}}
${CHART_CSS.replace(/\n/g, ' ')}</style>
</head><body>
${body.join('\n')}
</body></html>
`;
}

/** The fleet backtest as text: the workloads, where capacity limits come from, one row per policy. */
export function renderFleetText(trace: SpotTrace, res: FleetResult): string {
  const out: string[] = [];
  out.push(`Fleet backtest on ${trace.source}`);
  out.push(`  ${res.workloads} workloads competing for ${res.capacity}; zones ${res.zones.join(', ')}; ${res.windows.length} window${res.windows.length === 1 ? '' : 's'}`);
  for (const a of trace.assumptions ?? []) out.push(`  assumed: ${a}`);
  out.push(`  lower bound: each workload's own optimum without competition, summed${res.meanLowerBoundUsd !== undefined ? ` ($${r2(roundUsd(res.meanLowerBoundUsd))} per window)` : ''}`);
  out.push('');
  const head = ['policy', 'fleet cost', 'spot h', 'on-demand h', 'migrations', 'preemptions', 'deadline met', 'cost/lower bound'];
  const rows = res.summary.map((s) => [
    s.policy,
    `$${r2(roundUsd(s.meanCostUsd))}`,
    r2(s.meanSpotHours),
    r2(s.meanOnDemandHours),
    s.meanMigrations.toFixed(1),
    s.meanPreemptions.toFixed(1),
    `${s.deadlinesMet}/${s.runs}`,
    s.costOverLowerBound === undefined ? '-' : s.costOverLowerBound.toFixed(3),
  ]);
  out.push(...formatTable([head, ...rows], { align: 'numeric', indent: '  ' }));
  out.push('  (hours, migrations and preemptions are means per workload; cost is the whole fleet per window)');
  return `${out.join('\n')}\n`;
}

/** The fleet backtest as JSON (same format_version as the single-workload document; `mode: "fleet"`). */
export function fleetJson(trace: SpotTrace, res: FleetResult): unknown {
  return {
    format_version: BACKTEST_FORMAT_VERSION,
    mode: 'fleet',
    trace: trace.source,
    trace_format: trace.format ?? null,
    assumptions: trace.assumptions ?? [],
    workloads: res.workloads,
    zones: res.zones,
    capacity: res.capacity,
    mean_lower_bound_usd: res.meanLowerBoundUsd === undefined ? null : roundUsd(res.meanLowerBoundUsd),
    summary: res.summary.map((s) => ({
      policy: s.policy,
      mean_cost_usd: roundUsd(s.meanCostUsd),
      cost_over_lower_bound: s.costOverLowerBound === undefined ? null : roundUsd(s.costOverLowerBound),
      deadlines_met: s.deadlinesMet,
      runs: s.runs,
      mean_migrations: roundUsd(s.meanMigrations),
      mean_preemptions: roundUsd(s.meanPreemptions),
      mean_spot_hours: roundUsd(s.meanSpotHours),
      mean_on_demand_hours: roundUsd(s.meanOnDemandHours),
    })),
    windows: res.windows.map((w) => ({
      start: new Date(w.startMs).toISOString(),
      lower_bound_usd: w.lowerBoundUsd === undefined ? null : roundUsd(w.lowerBoundUsd),
      cost_usd: Object.fromEntries(Object.entries(w.costs).map(([k, v]) => [k, roundUsd(v)])),
    })),
  };
}
