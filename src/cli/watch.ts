// `spotfleet watch [PATH]`: run the controller as a service (or `--once` for cron). SIGTERM or
// Ctrl-C finishes the steps in flight, saves state and exits 0; SIGHUP reloads.
import type { Command } from 'commander';
import { UsageError } from '../core/errors.js';
import { parseDuration } from '../core/units.js';
import { createLogger, type LogLevel } from '../telemetry/logger.js';
import { Controller } from '../watch/controller.js';
import { specPathArg, stateDirOf, type CliApp } from './app.js';
import { lockTimeoutMs } from './common.js';
import { formatLogLine } from './log-text.js';
import { ExitCode } from './exit.js';

interface WatchOptions {
  interval: string;
  noticeInterval: string;
  priceInterval: string;
  listen: string;
  once?: boolean;
  parallelism: string;
  logLevel: string;
  logFormat: string;
  state?: string;
  lockTimeout: string;
  warningWindow: string;
}

function duration(flag: string, v: string): number {
  const ms = parseDuration(v);
  if (ms === undefined || ms <= 0) throw new UsageError(`--${flag}: "${v}" is not a duration`, ['Expected a duration such as 500ms, 2s, 30s or 5m.']);
  return ms;
}

export function register(program: Command, app: CliApp): void {
  program
    .command('watch')
    .description('keep the fleet converged: reconcile on a timer, on spec edits and market moves, and migrate on eviction notices')
    .argument('[path]', 'fleet file or folder', '.')
    .option('--interval <duration>', 'reconcile at least this often', '30s')
    .option('--notice-interval <duration>', 'poll every spot node for eviction notices this often', '2s')
    .option('--price-interval <duration>', 'check market prices and availability this often', '15s')
    .option('--listen <host:port>', 'serve /healthz, /metrics and /status here ("off" for none)', '127.0.0.1:9464')
    .option('--once', 'reconcile once and exit (for cron)')
    .option('--parallelism <n>', 'how many actions run at once', '10')
    .option('--log-level <level>', 'trace, debug, info, warn or error', 'info')
    .option('--log-format <format>', 'auto (text on a terminal, else JSON), text or json', 'auto')
    .option('--state <dir>', 'state folder (default: .spotfleet next to the spec)')
    .option('--lock-timeout <duration>', 'wait this long for the state lock each reconcile', '60s')
    .option('--warning-window <duration>', 'how long a rebalance recommendation is watched for the eviction that may follow (a target prepared for it is kept that long)', '30m')
    .action(async (path: string, opts: WatchOptions) => {
      const level = opts.logLevel as LogLevel;
      if (!['trace', 'debug', 'info', 'warn', 'error'].includes(level)) throw new UsageError(`--log-level: expected trace, debug, info, warn or error, got "${opts.logLevel}"`);
      const parallelism = Number(opts.parallelism);
      if (!Number.isInteger(parallelism) || parallelism < 1) throw new UsageError(`--parallelism: expected a positive whole number, got "${opts.parallelism}"`);
      const spec = specPathArg(path);
      // Through the Io: a JSON line keeps C1 and bidi controls raw, which a terminal would obey.
      if (!['auto', 'text', 'json'].includes(opts.logFormat)) throw new UsageError(`--log-format: expected auto, text or json, got "${opts.logFormat}"`);
      const text = opts.logFormat === 'text' || (opts.logFormat === 'auto' && Boolean(app.io.stdout.isTTY));
      const write = text ? (line: string): void => app.io.write(formatLogLine(line, app.io)) : (line: string): void => app.io.write(line);
      const log = createLogger({ level: app.debug ? 'debug' : level, stream: { write } });
      const controller = new Controller({
        specPath: spec,
        stateDir: stateDirOf(spec, opts.state),
        log,
        intervalMs: duration('interval', opts.interval),
        noticeIntervalMs: duration('notice-interval', opts.noticeInterval),
        priceIntervalMs: duration('price-interval', opts.priceInterval),
        listen: opts.once ? 'off' : opts.listen,
        parallelism,
        lockTimeoutMs: lockTimeoutMs({ lockTimeout: opts.lockTimeout }),
        warningWindowMs: duration('warning-window', opts.warningWindow),
      });
      if (opts.once) {
        const ok = await controller.runOnce();
        if (!ok) process.exitCode = ExitCode.Error;
        return;
      }
      let done!: () => void;
      const finished = new Promise<void>((r) => (done = r));
      const unhook = app.onInterrupt((sig) => {
        log.info(`received ${sig}`, { fleet: controller.fleetName(), action: 'signal' });
        controller.stop().then(done, (e: unknown) => {
          log.error('stop failed', { err: e });
          done();
        });
      });
      const onHup = (): void => controller.reload();
      process.on('SIGHUP', onHup);
      try {
        await controller.start();
        await finished;
      } finally {
        unhook();
        process.off('SIGHUP', onHup);
      }
    });
}
