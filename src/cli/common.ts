// Shared plumbing for the commands that touch state and providers: the --state and --lock-timeout
// options, opening the fleet, taking the lock, and progress lines while apply runs.
import type { Command } from 'commander';
import { UsageError } from '../core/errors.js';
import { formatDuration, parseDuration } from '../core/units.js';
import type { ApplyEvent } from '../engine/apply.js';
import { openFleet, type FleetSession } from '../engine/session.js';
import type { BackendOverride } from '../state/backend.js';
import type { LockHandle } from '../state/store.js';
import { stateDirOf, specPathArg, type CliApp } from './app.js';
import { paint } from './io.js';

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
  for (const w of session.warnings) app.io.err(`${w.file}:${w.line}:${w.col}: warning: ${w.message}`);
  return session;
}

/** Takes the state lock for `command` (unless --no-lock); returns a release function. */
export async function takeLock(session: FleetSession, command: string, opts: StateOptions): Promise<LockHandle | undefined> {
  if (opts.lock === false) return undefined;
  return session.store.lock(command, lockTimeoutMs(opts));
}

/** Prints a line per action as apply runs: start, done with elapsed time, failure, skip. */
export function progressPrinter(app: CliApp): (e: ApplyEvent) => void {
  const io = app.io;
  return (e) => {
    if (e.type === 'start') io.out(`${e.action.address}: ${capitalise(e.action.kind)}: ${e.action.summary}...`);
    else if (e.type === 'done') {
      const ms = (e.result.endedAt ?? 0) - (e.result.startedAt ?? 0);
      if (e.result.status === 'ok') io.out(`${e.action.address}: ${capitalise(e.action.kind)} complete after ${formatDuration(Math.round(ms / 100) * 100)}${extra(e.result.info)}`);
      else io.out(`${e.action.address}: ${paint(io, 'red', `${capitalise(e.action.kind)} failed`)} after ${formatDuration(ms)}: ${e.result.error ?? ''}`);
    } else if (e.type === 'skipped') io.out(`${e.action.address}: ${capitalise(e.action.kind)} skipped: ${e.reason}`);
    else io.out(`${e.address}: ${paint(io, 'yellow', 'Warning:')} ${e.message}`);
  };
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
  if (typeof info.bytes === 'number') parts.push(`${info.bytes} bytes`);
  if (typeof info.lease === 'string') parts.push(`lease ${info.lease}`);
  return parts.length ? ` [${parts.join(', ')}]` : '';
}
