// `spotfleet savings`: what the fleet paid, what on-demand would have cost, and what was saved, per
// workload or per label, from the ledger in the state file (no provider calls). Text table, JSON
// (with a format_version) or CSV. The totals are the sums of the rows as printed.
import type { Command } from 'commander';
import { TABLE_RULE, csvCell, formatTable } from '../core/text.js';
import { UsageError } from '../core/errors.js';
import { formatCents, formatDuration, parseDuration } from '../core/units.js';
import { SAVINGS_FORMAT_VERSION, formatGroupBy, parseGroupBy, summariseSavings, type LedgerGroupBy, type SavingsSummary } from '../engine/ledger.js';
import type { CliApp } from './app.js';
import { addStateOptions, openSession, type StateOptions } from './common.js';

interface SavingsCliOptions extends StateOptions {
  since?: string;
  by: string;
  json?: boolean;
  csv?: boolean;
}

/**
 * Parses `--since`: a duration back from now (`24h`, `7d`) or an ISO-8601 time. Returns the window's
 * start in ms epoch.
 */
export function parseSince(text: string, now: number): number {
  const ms = parseDuration(text);
  if (ms !== undefined) return now - ms;
  if (/^\d{4}-\d{2}-\d{2}/.test(text)) {
    const t = Date.parse(text);
    if (Number.isFinite(t)) return t;
  }
  throw new UsageError(`--since: "${text}" is neither a duration nor a time`, ['Expected a duration such as 24h or 7d, or an ISO-8601 time such as 2026-05-01T00:00:00Z.']);
}

export function parseByOption(text: string): LedgerGroupBy {
  const by = parseGroupBy(text);
  if (!by) throw new UsageError(`--by: expected "workload" or "label:KEY", got "${text}"`);
  return by;
}

const iso = (ms: number): string => new Date(ms).toISOString();
const hours = (h: number): string => h.toFixed(4);
const percent = (p: number): string => `${p.toFixed(2)}%`;
// Exact (with a ms part when there is one), so the TOTAL line is the sum of the rows as printed.
const seconds = (ms: number): string => formatDuration(ms);

/** The human table. Its TOTAL line is the sum of the rows above it. */
export function renderSavingsText(s: SavingsSummary, fleet: string): string {
  const out: string[] = [];
  out.push(`Savings of fleet ${fleet}, ${iso(s.from)} → ${iso(s.to)}${s.since === undefined ? ' (all recorded time)' : ''}, by ${formatGroupBy(s.by)}`);
  out.push('');
  if (s.rows.length === 0) {
    out.push('Nothing has run in this window: the ledger is empty.');
    return `${out.join('\n')}\n`;
  }
  const head = [s.by.kind === 'workload' ? 'WORKLOAD' : s.by.key.toUpperCase(), 'SPOT h', 'ON-DEMAND h', 'PAID', 'ON-DEMAND $', 'SAVED', 'SAVED %', 'MIGRATIONS', 'DOWNTIME'];
  const cells = (key: string, r: SavingsSummary['totals']): string[] => [
    key,
    hours(r.spotHours),
    hours(r.onDemandHours),
    formatCents(r.actualUsd),
    formatCents(r.onDemandUsd),
    formatCents(r.savedUsd),
    percent(r.savedPct),
    String(r.migrations),
    seconds(r.downtimeMs),
  ];
  const rows = s.rows.map((r) => cells(`${r.key}${r.onDemandEstimated ? ' *' : ''}`, r));
  // Money prints in cents; the TOTAL line adds the cents as printed, so the table adds up (the
  // exact totals, to $0.0001, are in --json and --csv).
  const cents = (k: 'actualUsd' | 'onDemandUsd' | 'savedUsd'): number => s.rows.reduce((t, r) => t + Math.round(r[k] * 100), 0) / 100;
  const printed = { ...s.totals, actualUsd: cents('actualUsd'), onDemandUsd: cents('onDemandUsd'), savedUsd: cents('savedUsd') };
  const total = cells('TOTAL', printed);
  out.push(...formatTable([head, ...rows, TABLE_RULE, total], { align: 'numeric' }));
  const phases = Object.entries(s.totals.phases).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${v} ${k}`).join(', ');
  if (phases) out.push('', `Workloads by phase: ${phases}${s.by.kind === 'workload' ? ` (${s.rows.map((r) => `${r.key} ${Object.keys(r.phases)[0] ?? '?'}`).join(', ')})` : ''}`);
  const notes = [...s.notes];
  if ((['actualUsd', 'onDemandUsd', 'savedUsd'] as const).some((k) => Math.round(s.totals[k] * 100) / 100 !== printed[k])) notes.push('money is rounded to cents per row; TOTAL adds the rows as printed (exact totals: --json)');
  if (notes.length > 0) {
    out.push('');
    for (const n of notes) out.push(`* ${n}`);
  }
  return `${out.join('\n')}\n`;
}

/** The JSON document (`format_version` 1.x): window, rows and totals, money rounded to $0.0001. */
export function renderSavingsJson(s: SavingsSummary, fleet: string): string {
  const doc = {
    format_version: SAVINGS_FORMAT_VERSION,
    fleet,
    window: { from: iso(s.from), to: iso(s.to), from_ms: s.from, to_ms: s.to, since: s.since === undefined ? null : iso(s.since) },
    by: formatGroupBy(s.by),
    rows: s.rows.map((r) => ({
      key: r.key,
      workloads: r.workloads,
      spot_hours: r.spotHours,
      on_demand_hours: r.onDemandHours,
      actual_usd: r.actualUsd,
      on_demand_usd: r.onDemandUsd,
      saved_usd: r.savedUsd,
      saved_pct: r.savedPct,
      migrations: r.migrations,
      failed_migrations: r.failedMigrations,
      downtime_ms: r.downtimeMs,
      by_capacity: Object.fromEntries(
        (['on-demand', 'spot'] as const).map((c) => [c, { ms: r.byCapacity[c].ms, gpu_hours: r.byCapacity[c].gpuHours, actual_usd: r.byCapacity[c].actualUsd, on_demand_usd: r.byCapacity[c].onDemandUsd }]),
      ),
      on_demand_estimated: r.onDemandEstimated,
      phases: r.phases,
    })),
    totals: {
      spot_hours: s.totals.spotHours,
      on_demand_hours: s.totals.onDemandHours,
      actual_usd: s.totals.actualUsd,
      on_demand_usd: s.totals.onDemandUsd,
      saved_usd: s.totals.savedUsd,
      saved_pct: s.totals.savedPct,
      migrations: s.totals.migrations,
      failed_migrations: s.totals.failedMigrations,
      downtime_ms: s.totals.downtimeMs,
      phases: s.totals.phases,
    },
    notes: s.notes,
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}


/** CSV with a header line and one line per row (no total line: spreadsheets sum). */
export function renderSavingsCsv(s: SavingsSummary): string {
  const lines = [['group', 'workloads', 'spot_hours', 'on_demand_hours', 'actual_usd', 'on_demand_usd', 'saved_usd', 'saved_pct', 'migrations', 'failed_migrations', 'downtime_s', 'phases'].join(',')];
  for (const r of s.rows) {
    lines.push(
      [r.key, r.workloads.join(' '), r.spotHours, r.onDemandHours, r.actualUsd.toFixed(4), r.onDemandUsd.toFixed(4), r.savedUsd.toFixed(4), r.savedPct.toFixed(2), r.migrations, r.failedMigrations, (r.downtimeMs / 1000).toFixed(3), Object.entries(r.phases).map(([k, v]) => `${k}:${v}`).join(' ')]
        .map(csvCell)
        .join(','),
    );
  }
  return `${lines.join('\n')}\n`;
}

export function register(program: Command, app: CliApp): void {
  const cmd = program
    .command('savings')
    .description('what the fleet paid vs on-demand, per workload or label, from the ledger in state')
    .argument('[path]', 'fleet file or folder', '.')
    .option('--since <when>', 'only this recent window: a duration (24h, 7d) or an ISO-8601 time (default: all recorded time)')
    .option('--by <group>', 'group rows by "workload" or "label:KEY" (a workload label in the spec)', 'workload')
    .option('--json', 'print as JSON (format_version 1.0)')
    .option('--csv', 'print as CSV with a header line');
  addStateOptions(cmd).action(async (path: string, opts: SavingsCliOptions) => {
    if (opts.json && opts.csv) throw new UsageError('--json and --csv cannot be used together');
    const now = Date.now();
    const by = parseByOption(opts.by);
    const since = opts.since !== undefined ? parseSince(opts.since, now) : undefined;
    const session = await openSession(app, path, { ...opts, withoutProviders: true });
    try {
      const state = await session.store.read();
      const summary = summariseSavings(state, { now, by, fleet: session.fleet, ...(since !== undefined ? { since } : {}) });
      if (opts.json) app.io.write(renderSavingsJson(summary, session.fleet.name));
      else if (opts.csv) app.io.write(renderSavingsCsv(summary));
      else app.io.write(renderSavingsText(summary, session.fleet.name));
    } finally {
      await session.close();
    }
  });
}
