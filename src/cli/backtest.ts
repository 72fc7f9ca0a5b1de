// `spotfleet backtest [PATH] --trace FILE|DIR`: replays the fleet's workloads (or one `--job`) on a
// spot trace with spotfleet's policy (the same decideWorkload as plan and watch), the baselines and
// the exact offline optimum; prints a table, `--json`, or writes an HTML page with charts.
// The trace is any format of docs/traces.md, or `--synthetic REGIME --seed N`; `--compete` (or
// `--fleet N` with --job) replays the workloads together on per-zone instance limits. `--warnings`
// adds the early-warning table: each answer to a warning (ignore, prepare, move now, the priced
// one, the pool's onWarning) priced on the trace's warnings, or a synthetic regime of them.
import { readdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { UsageError } from '../core/errors.js';
import { HOUR_MS, parseDuration } from '../core/units.js';
import { loadSpotTrace, sliceTrace, type LoadTraceOptions, type SpotTrace, type TraceFormat } from '../core/trace.js';
import { runBacktest, type BacktestWorkload } from '../backtest/run.js';
import { runFleetBacktest } from '../backtest/fleet.js';
import { generateSyntheticTrace, SYNTHETIC_REGIMES } from '../backtest/synthetic.js';
import { renderWarningBacktestText, runWarningBacktest, warningBacktestJson } from '../backtest/warnings.js';
import type { OnWarning } from '../policy/warning.js';
import { backtestJson, fleetJson, renderBacktestHtml, renderBacktestText, renderFleetText } from '../backtest/render.js';
import { loadFleet } from '../spec/load.js';
import { DEFAULT_OVERHEAD } from '../policy/types.js';
import type { PolicySet } from '../policy/policy-set.js';
import type { MigrationOverhead, Thresholds, WorkloadSpec } from '../spec/types.js';
import type { CliApp } from './app.js';

interface BacktestFlags {
  trace?: string;
  traceFormat?: string;
  probeLog?: string;
  minLaunched?: string;
  onDemandPrice?: string;
  spotPrice?: string;
  traceStart?: string;
  instanceType?: string;
  productDescription?: string;
  synthetic?: string;
  seed: string;
  checkpointSize?: string;
  compete?: boolean;
  fleet?: string;
  capacityPerZone?: string;
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
  warnings?: boolean;
  onWarning?: string;
  warningWindow: string;
  warnedShare: string;
  falseAlarms: string;
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

function count(flag: string, v: string, min: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${flag}: expected a whole number ≥ ${min}, got "${v}"`);
  return n;
}

function usd(flag: string, v: string): number {
  const n = Number(v.replace(/^\$/, ''));
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`--${flag}: expected USD per hour like 3.06, got "${v}"`);
  return n;
}

const FORMATS: readonly TraceFormat[] = ['wide', 'long', 'probe', 'aws-json', 'skypilot'];

function loadTrace(f: BacktestFlags): SpotTrace {
  if (f.synthetic !== undefined) {
    if (f.trace !== undefined) throw new UsageError('give either --trace or --synthetic, not both');
    return generateSyntheticTrace(f.synthetic, count('seed', f.seed, 0));
  }
  if (f.trace === undefined) throw new UsageError('give --trace FILE|DIR (see docs/traces.md for the formats) or --synthetic REGIME', [`Regimes: ${SYNTHETIC_REGIMES.join(', ')}`]);
  const o: LoadTraceOptions = {};
  if (f.traceFormat !== undefined) {
    if (!(FORMATS as readonly string[]).includes(f.traceFormat)) throw new UsageError(`--trace-format: expected one of ${FORMATS.join(', ')}, got "${f.traceFormat}"`);
    o.format = f.traceFormat as TraceFormat;
  }
  if (f.probeLog !== undefined) o.probeLog = resolve(f.probeLog);
  if (f.minLaunched !== undefined) o.minLaunched = count('min-launched', f.minLaunched, 1);
  if (f.onDemandPrice !== undefined) o.onDemandPrice = usd('on-demand-price', f.onDemandPrice);
  if (f.spotPrice !== undefined) o.spotPrice = usd('spot-price', f.spotPrice);
  if (f.traceStart !== undefined) o.startMs = time('trace-start', f.traceStart);
  if (f.instanceType !== undefined) o.instanceType = f.instanceType;
  if (f.productDescription !== undefined) o.productDescription = f.productDescription;
  const trace = loadSpotTrace(resolve(f.trace), o);
  // An explicit on-demand price wins over the trace's own (as the sim provider's onDemandPrice does).
  if (o.onDemandPrice !== undefined && trace.onDemandPrice.some((p) => p !== o.onDemandPrice)) {
    trace.onDemandPrice = trace.zones.map(() => o.onDemandPrice as number);
    (trace.assumptions ??= []).push(`on-demand price: $${o.onDemandPrice}/h for every zone (--on-demand-price)`);
  }
  return trace;
}

function jobWorkload(f: BacktestFlags, name = 'job'): WorkloadSpec {
  const gpus = Number(f.gpus);
  if (!Number.isInteger(gpus) || gpus < 1) throw new UsageError(`--gpus: expected a whole number ≥ 1, got "${f.gpus}"`);
  const checkpoint: WorkloadSpec['checkpoint'] = { path: '/checkpoints', signal: 'SIGUSR1', stopGraceMs: 60_000, resumeEnv: 'RESUME_FROM_CHECKPOINT' };
  if (f.checkpointSize !== undefined && checkpoint) {
    const gb = Number(f.checkpointSize.replace(/\s*GB$/i, ''));
    if (!Number.isFinite(gb) || gb < 0) throw new UsageError(`--checkpoint-size: expected a size in GB like 50, got "${f.checkpointSize}"`);
    checkpoint.sizeGB = gb;
  }
  return {
    name,
    env: {},
    gpus,
    class: 'training',
    capacity: 'auto',
    expectedDurationMs: dur('job', f.job as string),
    fallback: { to: 'on-demand', revertToSpot: true, minDwellMs: 30 * 60_000 },
    labels: {},
    checkpoint,
    critical: false, restartPolicy: 'OnFailure', backoffLimit: 6,
    specHash: 'backtest',
    pos: { file: '<--job>', line: 1, col: 1 },
  };
}

const ANSWERS: readonly OnWarning[] = ['auto', 'prepare', 'move', 'ignore'];

/** The early-warning table for the first workload (its spot pool's onWarning, or --on-warning). */
function warningBacktest(f: BacktestFlags, trace: SpotTrace, w: BacktestWorkload, poolOnWarning: OnWarning | undefined): ReturnType<typeof runWarningBacktest> {
  if (f.onWarning !== undefined && !(ANSWERS as readonly string[]).includes(f.onWarning)) throw new UsageError(`--on-warning: expected one of ${ANSWERS.join(', ')}, got "${f.onWarning}"`);
  const share = Number(f.warnedShare);
  if (!(share >= 0 && share <= 1)) throw new UsageError(`--warned-share: expected a share between 0 and 1, got "${f.warnedShare}"`);
  const falseAlarms = Number(f.falseAlarms);
  if (!(falseAlarms >= 0)) throw new UsageError(`--false-alarms: expected a number ≥ 0 per zone and day, got "${f.falseAlarms}"`);
  const sliced = w.zones.length > 0 ? sliceTrace(trace, { zones: w.zones }) : trace;
  return runWarningBacktest({
    trace: sliced,
    spec: w.spec,
    overhead: w.overhead,
    windowMs: dur('warning-window', f.warningWindow),
    configured: (f.onWarning as OnWarning | undefined) ?? poolOnWarning ?? 'auto',
    synthetic: { seed: count('seed', f.seed, 0), warnedShare: share, falseAlarmsPerZoneDay: falseAlarms },
    checkpointIntervalMs: dur('checkpoint-interval', f.checkpointInterval),
  });
}

export function register(program: Command, app: CliApp): void {
  program
    .command('backtest')
    .description('Replay the policy on a spot trace against greedy, Uniform Progress, on-demand and the offline optimum')
    .argument('[path]', 'fleet file or folder (its workloads with expectedDuration); default: the current folder, unless --job')
    .option('--trace <file|dir>', 'spot trace: wide/long CSV, probe log, describe-spot-price-history JSON or SkyPilot JSON (docs/traces.md)')
    .option('--trace-format <format>', `force the trace format (${['wide', 'long', 'probe', 'aws-json', 'skypilot'].join(', ')}; default: detected)`)
    .option('--probe-log <file>', 'a probe log (timestamp, zone, requested, launched) whose availability replaces the trace’s')
    .option('--min-launched <n>', 'probe logs and counted traces: a zone is available when at least this many instances launched (default 1)')
    .option('--on-demand-price <usd>', 'on-demand USD per instance-hour (traces without one assume 3.06, and say so)')
    .option('--spot-price <usd>', 'spot USD per instance-hour for traces without prices (default 0.3 × on-demand)')
    .option('--trace-start <time>', 'ISO-8601 time of the first sample, for traces without wall-clock times (SkyPilot JSON, offset_s)')
    .option('--instance-type <type>', 'describe-spot-price-history: keep this instance type')
    .option('--product-description <text>', 'describe-spot-price-history: keep this product (e.g. "Linux/UNIX")')
    .option('--synthetic <regime>', `a generated market instead of a trace: ${SYNTHETIC_REGIMES.join(', ')}`)
    .option('--seed <n>', 'with --synthetic: the seed', '1')
    .option('--from <time>', 'replay from this ISO-8601 time (default: the trace start)')
    .option('--to <time>', 'replay until this ISO-8601 time (default: the trace end)')
    .option('--zones <a,b,c>', 'trace zones the workloads may use (default: their pools’ zones, else all)')
    .option('--windows <n>', 'start windows spread over the range', '5')
    .option('--changeover <dur>', 'checkpoint + transfer + restart time per move (default: the spec’s overhead, else 2m)')
    .option('--job <dur>', 'without a fleet: one job of this much work')
    .option('--deadline <dur>', 'deadline after each window start (default: 1.5 × the work)')
    .option('--gpus <n>', 'with --job: GPUs', '1')
    .option('--checkpoint-size <GB>', 'with --job: checkpoint size; a move across regions pays it × the egress price')
    .option('--fleet <n>', 'with --job: n copies of the job competing for the zones’ instances (implies --compete)')
    .option('--compete', 'replay the workloads together, competing for the instances each zone has')
    .option('--capacity-per-zone <n>', 'with --compete, for traces without instance counts: instances a zone offers while available')
    .option('--notice <dur>', 'eviction notice window; the emergency checkpoint succeeds when it fits', '120s')
    .option('--checkpoint-time <dur>', 'checkpoint part of the changeover (default: the spec’s, else 60s)')
    .option('--checkpoint-interval <dur>', 'periodic checkpoints (what a failed emergency checkpoint falls back to)', '1h')
    .option('--tick <dur>', 'simulated tick (default: the trace’s median step)')
    .option('--warnings', 'also price the answers to early warnings (ignore, prepare, move now, priced, configured) against the optimum')
    .option('--on-warning <answer>', 'with --warnings: the configured answer (auto, prepare, move, ignore; default: the spot pool’s onWarning, else auto)')
    .option('--warning-window <dur>', 'with --warnings: how long a warning waits for its interruption', '30m')
    .option('--warned-share <0..1>', 'with --warnings, traces without warnings: share of interruptions warned ahead', '0.8')
    .option('--false-alarms <n>', 'with --warnings, traces without warnings: warnings nothing follows, per zone and day', '4')
    .option('--json', 'print the result as JSON (docs/json.md)')
    .option('--html <file>', 'write a self-contained HTML page with charts')
    .action(async (pathArg: string | undefined, f: BacktestFlags) => {
      const windows = Number(f.windows);
      if (!Number.isInteger(windows) || windows < 1) throw new UsageError(`--windows: expected a whole number ≥ 1, got "${f.windows}"`);
      if (pathArg !== undefined && f.job !== undefined) throw new UsageError('give either a fleet PATH or --job, not both');
      if (f.fleet !== undefined && f.job === undefined) throw new UsageError('--fleet N needs --job (for a fleet spec, use --compete)');
      const path = f.job === undefined ? pathArg ?? '.' : undefined;
      const trace = loadTrace(f);
      const zonesFlag = f.zones?.split(',').map((z) => z.trim()).filter((z) => z !== '');
      const deadlineFlag = f.deadline !== undefined ? dur('deadline', f.deadline) : undefined;
      let thresholds = BACKTEST_THRESHOLDS;
      let policies: PolicySet | undefined;
      const workloads: BacktestWorkload[] = [];
      let poolOnWarning: OnWarning | undefined;
      const add = (spec: WorkloadSpec, zones: string[], spotPool?: string, odPool?: string): void => {
        const workMs = spec.expectedDurationMs as number;
        const w: BacktestWorkload = { spec, workMs, deadlineMs: deadlineFlag ?? Math.round(workMs * 1.5), zones, overhead: overheadFor(spec.overhead ?? DEFAULT_OVERHEAD, f) };
        if (spotPool !== undefined) w.spotPool = spotPool;
        if (odPool !== undefined) w.onDemandPool = odPool;
        workloads.push(w);
      };
      if (f.job !== undefined) {
        const copies = f.fleet !== undefined ? count('fleet', f.fleet, 1) : 1;
        for (let i = 1; i <= copies; i++) add(jobWorkload(f, copies === 1 ? 'job' : `job-${String(i).padStart(String(copies).length, '0')}`), zonesFlag ?? []);
      } else {
        if (pathArg === undefined && !readdirSync(process.cwd()).some((f) => /\.ya?ml$/.test(f))) {
          throw new UsageError('no fleet in the current folder: give a fleet PATH, or --job DURATION for a quick job');
        }
        const loaded = await loadFleet(resolve(path as string), { checkProviders: false });
        const { fleet } = loaded;
        thresholds = fleet.defaults.thresholds;
        policies = loaded.policies;
        for (const spec of fleet.workloads) {
          if (spec.expectedDurationMs === undefined) {
            app.io.err(`workload.${spec.name}: skipped (no expectedDuration to replay)`);
            continue;
          }
          const pools = fleet.pools.filter((p) => spec.pools === undefined || spec.pools.includes(p.name));
          const spot = pools.find((p) => p.capacity === 'spot');
          poolOnWarning ??= spot?.onWarning;
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
      if (f.compete || f.fleet !== undefined) {
        const fo: Parameters<typeof runFleetBacktest>[0] = { ...opts };
        if (f.capacityPerZone !== undefined) fo.capacityPerZone = count('capacity-per-zone', f.capacityPerZone, 1);
        if (f.html !== undefined) throw new UsageError('--html draws single-workload runs; it does not combine with --compete/--fleet');
        const fr = runFleetBacktest(fo);
        if (f.json) app.io.out(JSON.stringify(fleetJson(trace, fr), null, 2));
        else app.io.out(renderFleetText(trace, fr));
        return;
      }
      const warned = f.warnings ? warningBacktest(f, trace, workloads[0] as BacktestWorkload, poolOnWarning) : undefined;
      const res = runBacktest(opts);
      if (f.html !== undefined) writeFileSync(resolve(f.html), renderBacktestHtml(res));
      if (f.json) app.io.out(JSON.stringify({ ...(backtestJson(res) as Record<string, unknown>), ...(warned ? { warnings: warningBacktestJson(warned) } : {}) }, null, 2));
      else app.io.out(renderBacktestText(res) + (warned ? `\n${renderWarningBacktestText(warned)}` : ''));
    });
}
