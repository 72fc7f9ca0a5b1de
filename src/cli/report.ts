// `spotfleet report`: writes the savings report as one self-contained HTML page (chart of cumulative
// cost, actual vs on-demand; the savings table; the migrations), from the ledger in the state file.
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { formatUsd } from '../core/units.js';
import { ledgerSegments, migrationsIn, summariseSavings } from '../engine/ledger.js';
import { renderReportHtml } from '../engine/report-html.js';
import type { CliApp } from './app.js';
import { addStateOptions, openSession, type StateOptions } from './common.js';
import { parseByOption, parseSince } from './savings.js';

interface ReportCliOptions extends StateOptions {
  out: string;
  since: string;
  by: string;
}

export function register(program: Command, app: CliApp): void {
  const cmd = program
    .command('report')
    .description('write a self-contained HTML savings report: cost over time, savings, migrations')
    .argument('[path]', 'fleet file or folder', '.')
    .option('--out <file>', 'where to write the page', 'report.html')
    .option('--since <when>', 'the window: a duration back from now (7d, 24h), an ISO-8601 time, or "all"', '7d')
    .option('--by <group>', 'group the savings table by "workload" or "label:KEY"', 'workload');
  addStateOptions(cmd).action(async (path: string, opts: ReportCliOptions) => {
    const now = Date.now();
    const by = parseByOption(opts.by);
    const since = opts.since === 'all' ? undefined : parseSince(opts.since, now);
    const session = await openSession(app, path, { ...opts, withoutProviders: true });
    try {
      const state = await session.store.read();
      const window = { now, fleet: session.fleet, ...(since !== undefined ? { since } : {}) };
      const summary = summariseSavings(state, { ...window, by });
      const html = renderReportHtml({ fleet: session.fleet.name, summary, segments: ledgerSegments(state, window), migrations: migrationsIn(state, window) });
      const out = resolve(opts.out);
      // A page meant to be shared: ordinary file mode, unlike the private state file.
      writeFileSync(out, html);
      app.io.out(`Wrote ${out}: paid ${formatUsd(summary.totals.actualUsd)}, on-demand ${formatUsd(summary.totals.onDemandUsd)}, saved ${formatUsd(summary.totals.savedUsd)} (${summary.totals.savedPct.toFixed(2)}%), ${summary.totals.migrations} migration(s).`);
    } finally {
      await session.close();
    }
  });
}
