// The early-warning backtest: warnings from a trace that records them (a wide CSV's
// `<zone>_rebalance` column) or from the seeded synthetic regime, each priced under ignore,
// prepare, move now, the priced answer and the configured one, against the hindsight optimum; and
// the table through the built CLI (`backtest --warnings`).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadSpotTrace, parseSpotTrace } from '../../src/core/trace.js';
import { runWarningBacktest, warningEvents } from '../../src/backtest/warnings.js';
import { workloadSpec } from './helpers.js';

const M = 60_000;
const overhead = { checkpointMs: 60_000, transferMs: 120_000, restartMs: 60_000 };
const QUICKSTART = resolve(import.meta.dirname, '../../examples/quickstart/traces');
const CLI = resolve(import.meta.dirname, '../../dist/src/cli/main.js');

/** Two zones, 10-minute rows; zone a warned at 00:10 (a drop at 00:30 follows) and at 01:20 (nothing follows). */
function tracedCsv(): string {
  const rows = ['timestamp_utc,a_available,a_spot_usd_per_hr,a_rebalance,b_available,b_spot_usd_per_hr'];
  for (let i = 0; i < 18; i++) {
    const t = new Date(Date.UTC(2024, 0, 1, 0, i * 10)).toISOString();
    const aUp = i === 3 || i === 4 ? 0 : 1;
    const warn = i === 1 || i === 8 ? 1 : 0;
    rows.push(`${t},${aUp},0.9,${warn},1,1.0`);
  }
  return `${rows.join('\n')}\n`;
}

describe('early-warning backtest', () => {
  it('takes the warnings a trace records, and tells the followed ones from the rest', () => {
    const trace = parseSpotTrace(tracedCsv(), 'warned.csv', { onDemandPrice: 3.06 });
    expect(trace.warnings?.map((w) => w.length)).toEqual([2, 0]);
    const { source, events } = warningEvents(trace, 30 * M, { seed: 1 });
    expect(source).toBe('trace');
    expect(events.map((e) => [e.zone, new Date(e.at).toISOString().slice(11, 16), e.followedAt !== undefined ? new Date(e.followedAt).toISOString().slice(11, 16) : null])).toEqual([
      ['a', '00:10', '00:30'],
      ['a', '01:20', null],
    ]);
  });

  it('prices every answer against the optimum: nothing beats it, and each forced answer is what it says', () => {
    const trace = parseSpotTrace(tracedCsv(), 'warned.csv', { onDemandPrice: 3.06 });
    const r = runWarningBacktest({ trace, spec: workloadSpec({ expectedDurationMs: 8 * 3_600_000 }), overhead, configured: 'prepare', synthetic: { seed: 1 } });
    expect(r.warnings).toBe(2);
    expect(r.followed).toBe(1);
    const opt = r.rows.find((x) => x.policy === 'optimum');
    expect(opt?.overOptimumUsd).toBe(0);
    for (const row of r.rows) expect(row.costUsd).toBeGreaterThanOrEqual((opt?.costUsd ?? 0) - 1e-9);
    expect(r.rows.find((x) => x.policy === 'ignore')).toMatchObject({ ignored: 2, prepared: 0, moved: 0 });
    expect(r.rows.find((x) => x.policy === 'configured (onWarning: prepare)')).toMatchObject({ prepared: 2 });
    // Not followed: ignoring costs nothing and preparing pays an idle target for the window.
    const unfollowed = r.events.find((e) => e.followedAt === undefined);
    expect(unfollowed?.costs.ignore).toBe(0);
    expect(unfollowed?.costs.prepare).toBeGreaterThan(0);
    // Followed: ignoring pays the emergency downtime, more than the prepared one.
    const followed = r.events.find((e) => e.followedAt !== undefined);
    expect(followed?.costs.ignore).toBeGreaterThan(0);
  });

  it('without warnings in the trace, a seeded synthetic regime: some followed, some not, the same every run', () => {
    const trace = loadSpotTrace(QUICKSTART);
    const a = runWarningBacktest({ trace, spec: workloadSpec({ expectedDurationMs: 8 * 3_600_000 }), overhead, configured: 'auto', synthetic: { seed: 7 } });
    const b = runWarningBacktest({ trace, spec: workloadSpec({ expectedDurationMs: 8 * 3_600_000 }), overhead, configured: 'auto', synthetic: { seed: 7 } });
    expect(a.source).toBe('synthetic');
    expect(a.followed).toBeGreaterThan(0);
    expect(a.followed).toBeLessThan(a.warnings);
    expect(b.rows).toEqual(a.rows);
    const auto = a.rows.find((x) => x.policy === 'auto (priced)');
    // The priced answer does at least as well as the best single answer on this regime.
    const fixed = a.rows.filter((x) => ['ignore', 'prepare', 'move-now'].includes(x.policy)).map((x) => x.costUsd);
    expect(auto?.costUsd).toBeLessThanOrEqual(Math.min(...fixed) + 1e-9);
    const none = runWarningBacktest({ trace, spec: workloadSpec(), overhead, configured: 'auto', synthetic: { seed: 7, warnedShare: 0, falseAlarmsPerZoneDay: 0 } });
    expect(none.warnings).toBe(0);
  });

  it('`backtest --warnings` prints the table, and --json carries it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sf-bt-warn-'));
    writeFileSync(join(dir, 'warned.csv'), tracedCsv());
    const text = spawnSync(process.execPath, [CLI, 'backtest', '--job', '1h', '--trace', join(dir, 'warned.csv'), '--warnings', '--on-warning', 'ignore', '--windows', '1'], { encoding: 'utf8', cwd: dir });
    expect(text.status, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/Early warnings: 2 warning\(s\), 1 followed by an interruption within 30 min/);
    expect(text.stdout).toMatch(/the trace's own rebalance recommendations/);
    for (const p of ['ignore', 'prepare', 'move-now', 'auto (priced)', 'configured (onWarning: ignore)', 'optimum']) expect(text.stdout).toContain(p);
    const json = spawnSync(process.execPath, [CLI, 'backtest', '--job', '1h', '--trace', join(dir, 'warned.csv'), '--warnings', '--windows', '1', '--json'], { encoding: 'utf8', cwd: dir });
    expect(json.status, json.stderr).toBe(0);
    const doc = JSON.parse(json.stdout) as { warnings: { warnings: number; rows: { policy: string; over_optimum_usd: number }[] } };
    expect(doc.warnings.warnings).toBe(2);
    expect(doc.warnings.rows.find((x) => x.policy === 'optimum')?.over_optimum_usd).toBe(0);
    const bad = spawnSync(process.execPath, [CLI, 'backtest', '--job', '1h', '--trace', join(dir, 'warned.csv'), '--warnings', '--on-warning', 'panic'], { encoding: 'utf8', cwd: dir });
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/--on-warning: expected one of auto, prepare, move, ignore/);
  });
});
