// Shared plumbing for the commands that touch state and providers: the --state and --lock-timeout
// options, opening the fleet, taking the lock, and progress lines while apply runs.
import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { CancelledError, UsageError, type SpecProblem } from '../core/errors.js';
import { formatBytes, formatDuration, parseDuration } from '../core/units.js';
import type { ApplyEvent } from '../engine/apply.js';
import { describeTransferProgress } from '../engine/progress.js';
import type { TransferProgress } from '../providers/sdk.js';
import { openFleet, type FleetSession } from '../engine/session.js';
import type { BackendOverride } from '../state/backend.js';
import type { LockHandle } from '../state/store.js';
import { stateDirOf, specPathArg, type CliApp } from './app.js';
import { paint } from '../core/text.js';

export interface StateOptions extends BackendOptions {
  state?: string;
  lockTimeout?: string;
  lock?: boolean;
}

/** --backend and --backend-url: override the spec's `backend:` for one command. */
export interface BackendOptions {
  backend?: string;
  backendUrl?: string;
}

export function addBackendOptions(cmd: Command): Command {
  return cmd
    .option('--backend <type>', 'state backend for this command, over the spec\'s backend: (local or postgres)')
    .option('--backend-url <url>', 'postgres URL, or ${VAR} to read it from the environment (default: the spec\'s url, else $SPOTFLEET_PG_URL)');
}

export function backendOverride(opts: BackendOptions): BackendOverride {
  return { ...(opts.backend !== undefined ? { type: opts.backend } : {}), ...(opts.backendUrl !== undefined ? { url: opts.backendUrl } : {}) };
}

export function addStateOptions(cmd: Command): Command {
  return addBackendOptions(cmd)
    .option('--state <dir>', 'state folder (default: .spotfleet next to the spec)')
    .option('--lock-timeout <duration>', 'wait this long for the state lock', '0s')
    .option('--no-lock', 'do not take the state lock (dangerous)');
}

export function lockTimeoutMs(opts: StateOptions): number {
  const ms = parseDuration(opts.lockTimeout ?? '0s');
  if (ms === undefined) throw new UsageError(`--lock-timeout: "${opts.lockTimeout}" is not a duration`, ['Expected a duration such as 0s, 30s or 5m.']);
  return ms;
}

export async function openSession(app: CliApp, path: string | undefined, opts: StateOptions & { withoutProviders?: boolean }): Promise<FleetSession> {
  const spec = specPathArg(path);
  const session = await openFleet(spec, { stateDir: stateDirOf(spec, opts.state), backend: backendOverride(opts), ...(opts.withoutProviders ? { withoutProviders: true } : {}) });
  printSpecWarnings(app, session.warnings);
  return session;
}

/** The spec's warnings, each `file:line:col: warning: message`, on stderr. */
export function printSpecWarnings(app: CliApp, warnings: readonly SpecProblem[]): void {
  for (const w of warnings) app.io.err(`${w.file}:${w.line}:${w.col}: warning: ${w.message}`);
}

export interface ConfirmOptions {
  /** The command, for the error when it cannot ask (`apply`, `force-unlock`). */
  what: string;
  /** The question, printed before the prompt. */
  question: string;
  /** The flag that skips the question (`--auto-approve`, `--force`). */
  skip: string;
  /** The message when the answer is not "yes". */
  cancelled: string;
}

/**
 * Asks for "yes", as Terraform does. Never asks when standard input is not a terminal or with
 * `-input=false`: then it fails and names the flag that skips the question.
 */
export async function confirm(app: CliApp, o: ConfirmOptions): Promise<void> {
  if (!app.input) throw new UsageError(`${o.what} needs confirmation, but input is disabled (-input=false)`, [`Run it with ${o.skip} to go ahead without asking.`]);
  if (!app.io.stdin.isTTY) throw new UsageError(`${o.what} needs confirmation, but standard input is not a terminal`, [`Run it with ${o.skip} to go ahead without asking.`]);
  const rl = createInterface({ input: app.io.stdin, output: app.io.stdout });
  try {
    app.io.out(o.question);
    app.io.out("  Only 'yes' will be accepted to approve.\n");
    const answer = await rl.question('  Enter a value: ');
    if (answer.trim() !== 'yes') throw new CancelledError(o.cancelled);
  } finally {
    rl.close();
  }
}

/** Takes the state lock for `command` (unless --no-lock); returns a release function. */
export async function takeLock(session: FleetSession, command: string, opts: StateOptions): Promise<LockHandle | undefined> {
  if (opts.lock === false) return undefined;
  return session.store.lock(command, lockTimeoutMs(opts));
}

export interface ProgressPrinterOptions {
  /** How often a running action says it is still running; default 10 s, as Terraform (env SPOTFLEET_PROGRESS_INTERVAL). */
  intervalMs?: number;
  now?: () => number;
}

const STILL: Record<string, string> = {
  acquire: 'acquiring',
  start: 'starting',
  checkpoint: 'checkpointing',
  stop: 'stopping',
  transfer: 'transferring',
  release: 'releasing',
  adopt: 'adopting',
  forget: 'forgetting',
};

/** `12.3 MB at 4.10 MB/s` (`1.20 GB` from a gigabyte on), or just the size when the time is unknown or zero. */
export function formatTransfer(bytes: number, ms: number | undefined): string {
  return ms !== undefined && ms > 0 ? `${formatBytes(bytes)} at ${formatBytes((bytes * 1000) / ms)}/s` : formatBytes(bytes);
}

function progressInterval(app: CliApp, o: ProgressPrinterOptions): number {
  if (o.intervalMs !== undefined) return o.intervalMs;
  const env = app.io.env.SPOTFLEET_PROGRESS_INTERVAL;
  const ms = env ? parseDuration(env) : undefined;
  return ms !== undefined && ms > 0 ? ms : 10_000;
}

/**
 * Prints a line per action as apply runs: start; every interval while it runs, Terraform's
 * `Still transferring... [20s elapsed]`, or, once a transfer reports bytes,
 * `Transferring... 412 MB of 1.20 GB (34%), 56.0 MB/s [20s elapsed]`; done with the elapsed time,
 * failure, skip. Call `stop()` when apply returns.
 */
export function progressPrinter(app: CliApp, o: ProgressPrinterOptions = {}): ((e: ApplyEvent) => void) & { stop(): void } {
  const io = app.io;
  const now = o.now ?? Date.now;
  const every = progressInterval(app, o);
  const running = new Map<string, { timer: NodeJS.Timeout; startedAt: number; progress?: TransferProgress }>();
  const finish = (id: string): void => {
    const r = running.get(id);
    if (r) clearInterval(r.timer);
    running.delete(id);
  };
  const printer = (e: ApplyEvent): void => {
    if (e.type === 'start') {
      const a = e.action;
      io.out(`${a.address}: ${capitalise(a.kind)}: ${a.summary}...`);
      const entry: { timer: NodeJS.Timeout; startedAt: number; progress?: TransferProgress } = {
        startedAt: now(),
        timer: setInterval(() => {
          const elapsed = `[${formatDuration(Math.round((now() - entry.startedAt) / 1000) * 1000)} elapsed]`;
          // Before the first byte (ssh handshake, file list) rsync says 0 at 0 kB/s: nothing to show yet.
          if (entry.progress && entry.progress.bytes > 0) io.out(`${a.address}: ${capitalise(STILL[a.kind] ?? `${a.kind}ing`)}... ${describeTransferProgress(entry.progress)} ${elapsed}`);
          else io.out(`${a.address}: Still ${STILL[a.kind] ?? `${a.kind}ing`}... ${elapsed}`);
        }, every),
      };
      // Progress lines never keep the process alive on their own.
      entry.timer.unref();
      running.set(a.id, entry);
    } else if (e.type === 'progress') {
      const r = running.get(e.action.id);
      if (r) r.progress = { bytes: e.bytes, ...(e.totalBytes !== undefined ? { totalBytes: e.totalBytes } : {}), ...(e.bytesPerSec !== undefined ? { bytesPerSec: e.bytesPerSec } : {}) };
    } else if (e.type === 'done') {
      finish(e.action.id);
      const ms = (e.result.endedAt ?? 0) - (e.result.startedAt ?? 0);
      if (e.result.status === 'ok') io.out(`${e.action.address}: ${capitalise(e.action.kind)} complete after ${formatDuration(Math.round(ms / 100) * 100)}${extra(e.result.info)}`);
      else io.out(`${e.action.address}: ${paint(io, 'red', `${capitalise(e.action.kind)} failed`)} after ${formatDuration(ms)}: ${e.result.error ?? ''}`);
    } else if (e.type === 'skipped') {
      finish(e.action.id);
      io.out(`${e.action.address}: ${capitalise(e.action.kind)} skipped: ${e.reason}`);
    } else io.out(`${e.address}: ${paint(io, 'yellow', 'Warning:')} ${e.message}`);
  };
  return Object.assign(printer, {
    stop(): void {
      for (const id of [...running.keys()]) finish(id);
    },
  });
}

function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function extra(info: Record<string, string | number | boolean> | undefined): string {
  if (!info) return '';
  const parts: string[] = [];
  if (typeof info.instance === 'string') parts.push(`instance ${info.instance}`);
  if (typeof info.node === 'string' && info.node) parts.push(`node ${info.node}`);
  if (info.resumed === true) parts.push('resumed from checkpoint');
  if (typeof info.verifiedMs === 'number') parts.push(`checkpoint verified in ${formatDuration(info.verifiedMs)}`);
  if (typeof info.bytes === 'number' && info.skipped !== true) parts.push(formatTransfer(info.bytes, typeof info.transferMs === 'number' ? info.transferMs : undefined));
  if (info.skipped === true) parts.push('nothing to copy');
  if (typeof info.lease === 'string') parts.push(`lease ${info.lease}`);
  return parts.length ? ` [${parts.join(', ')}]` : '';
}
