// `spotfleet backtest [PATH] --trace FILE|DIR`: replays the fleet's workloads (or one `--job`) on a
// spot trace with spotfleet's policy (the same decideWorkload as plan and watch), the baselines and
// the exact offline optimum; prints a table, `--json`, or writes an HTML page with charts.
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { UsageError } from '../core/errors.js';
import { HOUR_MS, parseDuration } from '../core/units.js';
import { loadSpotTrace } from '../core/trace.js';
import { runBacktest, type BacktestWorkload } from '../backtest/run.js';
import { backtestJson, renderBacktestHtml, renderBacktestText } from '../backtest/render.js';
import { loadFleet } from '../spec/load.js';
import { DEFAULT_OVERHEAD } from '../policy/types.js';
import { loadPolicySet } from '../policy/policy-set.js';
import type { MigrationOverhead, Thresholds, WorkloadSpec } from '../spec/types.js';
import type { CliApp } from './app.js';

interface BacktestFlags {
  trace?: string;
  from?: string;
  to?: string;
  zones?: string;
  windows: string;
  changeover?: string;
  job?: string;
  deadline?: string;
  gpus: string;
  notice: string;
  checkpointTime?: string;
  checkpointInterval: string;
  tick?: string;
  json?: boolean;
  html?: string;
}

/** Thresholds when no fleet gives them (the documented spec defaults). */
export const BACKTEST_THRESHOLDS: Thresholds = {
  minSavingsPerHour: 0.5,
  minRuntimeMs: 30 * 60_000,
  spotPriceAlertRatio: 0.8,
  maxPreemptions: 3,
  preemptionWindowMs: HOUR_MS,
  cooldownMs: HOUR_MS,
};

function dur(flag: string, v: string): number {
  const ms = parseDuration(v);
  if (ms === undefined) throw new UsageError(`--${flag}: expected a duration like 90s, 30m, 0.2h, got "${v}"`);
  return ms;
}

function time(flag: string, v: string): number {
  const t = Date.parse(v);
  if (!Number.isFinite(t)) throw new UsageError(`--${flag}: expected an ISO-8601 time like 2023-02-20T00:00:00Z, got "${v}"`);
  return t;
}

/** `--changeover X` sets the whole changeover: the checkpoint part stays (capped by X), the rest is transfer + restart. */
function overheadFor(base: MigrationOverhead, f: BacktestFlags): MigrationOverhead {
  let o = base;
  if (f.changeover !== undefined) {
    const total = dur('changeover', f.changeover);
    const ck = Math.min(o.checkpointMs, total);
    o = { checkpointMs: ck, transferMs: 0, restartMs: total - ck };
  }
  if (f.checkpointTime !== undefined) {
    const ck = dur('checkpoint-time', f.checkpointTime);
    const total = o.checkpointMs + o.transferMs + o.restartMs;
    o = { checkpointMs: ck, transferMs: 0, restartMs: Math.max(0, total - ck) };
  }
  return o;
}

function jobWorkload(f: BacktestFlags): WorkloadSpec {
  const gpus = Number(f.gpus);
  if (!Number.isInteger(gpus) || gpus < 1) throw new UsageError(`--gpus: expected a whole number ≥ 1, got "${f.gpus}"`);
  return {
    name: 'job',
    env: {},
    gpus,
    class: 'training',
    capacity: 'auto',
    expectedDurationMs: dur('job', f.job as string),
    fallback: { to: 'on-demand', revertToSpot: true, minDwellMs: 30 * 60_000 },
    labels: {},
    checkpoint: { path: '/checkpoints', signal: 'SIGUSR1', stopGraceMs: 60_000, resumeEnv: 'RESUME_FROM_CHECKPOINT' },
    critical: false, restartPolicy: 'OnFailure', backoffLimit: 6,
    specHash: 'backtest',
    pos: { file: '<--job>', line: 1, col: 1 },
  };
}

export function register(program: Command, app: CliApp): void {
  program
    .command('backtest')
    .description('Replay the policy on a spot trace against greedy, Uniform Progress, on-demand and the offline optimum')
    .argument('[path]', 'fleet file or folder (its workloads with expectedDuration); or use --job')
    .requiredOption('--trace <file|dir>', 'spot trace CSV, or a folder with availability_spot_price.csv (+ zones.csv)')
    .option('--from <time>', 'replay from this ISO-8601 time (default: the trace start)')
    .option('--to <time>', 'replay until this ISO-8601 time (default: the trace end)')
    .option('--zones <a,b,c>', 'trace zones the workloads may use (default: their pools’ zones, else all)')
    .option('--windows <n>', 'start windows spread over the range', '5')
    .option('--changeover <dur>', 'checkpoint + transfer + restart time per move (default: the spec’s overhead, else 2m)')
    .option('--job <dur>', 'without a fleet: one job of this much work')
    .option('--deadline <dur>', 'deadline after each window start (default: 1.5 × the work)')
    .option('--gpus <n>', 'with --job: GPUs', '1')
    .option('--notice <dur>', 'eviction notice window; the emergency checkpoint succeeds when it fits', '120s')
    .option('--checkpoint-time <dur>', 'checkpoint part of the changeover (default: the spec’s, else 60s)')
    .option('--checkpoint-interval <dur>', 'periodic checkpoints (what a failed emergency checkpoint falls back to)', '1h')
    .option('--tick <dur>', 'simulated tick (default: the trace’s median step)')
    .option('--json', 'print the result as JSON (docs/json.md)')
    .option('--html <file>', 'write a self-contained HTML page with charts')
    .action(async (path: string | undefined, f: BacktestFlags) => {
      const windows = Number(f.windows);
      if (!Number.isInteger(windows) || windows < 1) throw new UsageError(`--windows: expected a whole number ≥ 1, got "${f.windows}"`);
      if (path === undefined && f.job === undefined) throw new UsageError('give a fleet PATH or --job DURATION');
      if (path !== undefined && f.job !== undefined) throw new UsageError('give either a fleet PATH or --job, not both');
      const trace = loadSpotTrace(resolve(f.trace as string));
      const zonesFlag = f.zones?.split(',').map((z) => z.trim()).filter((z) => z !== '');
      const deadlineFlag = f.deadline !== undefined ? dur('deadline', f.deadline) : undefined;
      let thresholds = BACKTEST_THRESHOLDS;
      let policies: unknown;
      const workloads: BacktestWorkload[] = [];
      const add = (spec: WorkloadSpec, zones: string[], spotPool?: string, odPool?: string): void => {
        const workMs = spec.expectedDurationMs as number;
        const w: BacktestWorkload = { spec, workMs, deadlineMs: deadlineFlag ?? Math.round(workMs * 1.5), zones, overhead: overheadFor(spec.overhead ?? DEFAULT_OVERHEAD, f) };
        if (spotPool !== undefined) w.spotPool = spotPool;
        if (odPool !== undefined) w.onDemandPool = odPool;
        workloads.push(w);
      };
      if (f.job !== undefined) {
        add(jobWorkload(f), zonesFlag ?? []);
      } else {
        const { fleet } = await loadFleet(resolve(path as string), { checkProviders: false });
        thresholds = fleet.defaults.thresholds;
        if (fleet.policies.length > 0) policies = loadPolicySet(fleet.policies);
        for (const spec of fleet.workloads) {
          if (spec.expectedDurationMs === undefined) {
            app.io.err(`workload.${spec.name}: skipped (no expectedDuration to replay)`);
            continue;
          }
          const pools = fleet.pools.filter((p) => spec.pools === undefined || spec.pools.includes(p.name));
          const spot = pools.find((p) => p.capacity === 'spot');
          const od = pools.find((p) => p.capacity === 'on-demand');
          const poolZones = [...new Set(pools.flatMap((p) => p.zones ?? []))].filter((z) => trace.zones.includes(z)).sort();
          add(spec, zonesFlag ?? poolZones, spot?.name, od?.name);
        }
        if (workloads.length === 0) throw new UsageError(`${path as string}: no workload with expectedDuration to replay`);
      }
      const opts: Parameters<typeof runBacktest>[0] = {
        trace,
        workloads,
        windows,
        thresholds,
        noticeMs: dur('notice', f.notice),
        checkpointIntervalMs: dur('checkpoint-interval', f.checkpointInterval),
        timelines: f.html !== undefined,
      };
      if (policies !== undefined) opts.policies = policies;
      if (f.from !== undefined) opts.fromMs = time('from', f.from);
      if (f.to !== undefined) opts.toMs = time('to', f.to);
      if (f.tick !== undefined) opts.tickMs = dur('tick', f.tick);
      const res = runBacktest(opts);
      if (f.html !== undefined) writeFileSync(resolve(f.html), renderBacktestHtml(res));
      if (f.json) app.io.out(JSON.stringify(backtestJson(res), null, 2));
      else app.io.out(renderBacktestText(res));
    });
}
