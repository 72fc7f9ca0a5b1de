// `spotfleet apply [PLANFILE]` and `spotfleet destroy`: show the plan, ask (unless --auto-approve;
// never ask when stdin is not a terminal), then converge with a bounded-parallel DAG walk. A saved
// plan is refused when the state moved. First Ctrl-C lets running actions finish and saves state;
// the second aborts (main.ts).
import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { CancelledError, SpotfleetError, UsageError } from '../core/errors.js';
import { applyPlan, clearStalePending, type ApplyResult } from '../engine/apply.js';
import { assertNoMandatoryViolations, assertPlanFresh, isSavedPlanFile, makePlan, readSavedPlan, readSavedPlanFile } from '../engine/reconcile.js';
import { refreshFleet } from '../engine/refresh.js';
import { renderPlanText } from '../engine/render.js';
import { planHasChanges, type Plan } from '../engine/types.js';
import type { UnsavedInfo } from '../state/recovery.js';
import type { CliApp } from './app.js';
import { addStateOptions, openSession, progressPrinter, takeLock, type StateOptions } from './common.js';
import { parseBool } from './plan.js';

interface ApplyCliOptions extends StateOptions {
  autoApprove?: boolean;
  parallelism: string;
  target?: string[];
  refresh: string;
}

async function confirm(app: CliApp, question: string): Promise<void> {
  if (!app.io.stdin.isTTY) {
    throw new UsageError('apply needs confirmation, but standard input is not a terminal', ['Run it with --auto-approve to apply without asking.']);
  }
  const rl = createInterface({ input: app.io.stdin, output: app.io.stdout });
  try {
    app.io.out(question);
    app.io.out("  Only 'yes' will be accepted to approve.\n");
    const answer = await rl.question('  Enter a value: ');
    if (answer.trim() !== 'yes') throw new CancelledError('Apply cancelled.');
  } finally {
    rl.close();
  }
}

async function runApply(app: CliApp, path: string, planFile: string | undefined, opts: ApplyCliOptions, destroy: boolean): Promise<void> {
  const parallelism = Number(opts.parallelism);
  if (!Number.isInteger(parallelism) || parallelism < 1) throw new UsageError(`--parallelism: expected a positive whole number, got "${opts.parallelism}"`);
  const session = await openSession(app, path, opts);
  const lock = await takeLock(session, destroy ? 'destroy' : 'apply', opts).catch(async (e: unknown) => {
    await session.close();
    throw e;
  });
  let stopRequested = false;
  const unhook = app.onInterrupt(() => {
    stopRequested = true;
    app.io.err('\nInterrupt received.\nPlease wait for spotfleet to exit or data loss may occur.\nGracefully shutting down: running actions finish, state is saved. Interrupt again to abort.');
  });
  try {
    const state = await session.store.read();
    let plan: Plan;
    let observed;
    if (planFile) {
      plan = readSavedPlan(planFile);
      assertPlanFresh(plan, state, session);
      observed = await refreshFleet(session.providers);
    } else {
      if (opts.target && opts.target.length > 0) app.io.err('Warning: resource targeting is in effect; --target is not for routine use.');
      ({ plan, observed } = await makePlan(session, state, {
        now: Date.now(),
        refresh: parseBool('refresh', opts.refresh, true),
        ...(opts.target ? { targets: opts.target } : {}),
        ...(destroy ? { destroy: true } : {}),
      }));
    }
    app.io.write(renderPlanText(plan, { color: app.io.color }));
    if (!planHasChanges(plan)) {
      await clearStalePending(session.store, state);
      return;
    }
    assertNoMandatoryViolations(plan);
    if (!planFile && !opts.autoApprove) {
      await confirm(app, destroy ? '\nDo you really want to destroy everything this fleet runs?\n  spotfleet will checkpoint and stop every workload and release every lease.' : '\nDo you want to perform these actions?\n  spotfleet will perform the actions described above.');
    }
    app.io.out('');
    const result = await applyPlan(plan, {
      fleet: session.fleet,
      providers: session.providers,
      store: session.store,
      state,
      observed,
      parallelism,
      onEvent: progressPrinter(app),
      shouldStop: () => stopRequested || app.interrupted,
    });
    report(app, plan, result, destroy, session.store.unsaved?.());
  } finally {
    unhook();
    await lock?.release();
    await session.close();
  }
}

function report(app: CliApp, plan: Plan, r: ApplyResult, destroy: boolean, unsaved: UnsavedInfo | undefined): void {
  const failedAddrs = [...new Set(r.failed.map((f) => f.address))].sort();
  const ok = r.failed.length === 0 && !r.cancelled && r.results.every((x) => x.status === 'ok');
  if (unsaved) {
    // Never "State was saved" when a write failed: say what is kept where, and how to recover.
    const failed = r.failed.map((f) => `${f.address} (${f.kind}): ${f.error ?? 'failed'}`);
    throw new SpotfleetError('STATE_NOT_SAVED', `${destroy ? 'Destroy' : 'Apply'} stopped: the state could not be written (${unsaved.failures} write${unsaved.failures === 1 ? '' : 's'} failed: ${unsaved.error})`, [
      ...failed,
      unsaved.path ? `What this run changed is kept in ${unsaved.path} (mode 0600).` : 'What this run changed could not be written anywhere; the providers still know what runs.',
      'To recover: make room or fix the permissions of the state folder, then run `spotfleet apply` again: it finds what runs from the providers (the pending records in the state name what was in flight) and converges.',
    ]);
  }
  if (ok) {
    app.io.out(`\n${destroy ? 'Destroy' : 'Apply'} complete! Resources: ${plan.summary.add} added, ${plan.summary.change} changed, ${plan.summary.destroy} destroyed.`);
    return;
  }
  const skipped = r.results.filter((x) => x.status === 'skipped' || x.status === 'cancelled');
  const details = [
    ...r.failed.map((f) => `${f.address} (${f.kind}): ${f.error ?? 'failed'}`),
    ...skipped.map((s) => `${s.address} (${s.kind}) ${s.status}: ${s.error ?? ''}`),
    'State was saved; run `spotfleet apply` again to converge.',
  ];
  if (r.cancelled && r.failed.length === 0) throw new CancelledError(`Apply interrupted: ${skipped.length} action${skipped.length === 1 ? '' : 's'} did not run; state was saved.`);
  throw new SpotfleetError('APPLY_FAILED', `${r.failed.length} action${r.failed.length === 1 ? '' : 's'} failed: ${failedAddrs.join(', ')}`, details);
}

export function register(program: Command, app: CliApp): void {
  const apply = program
    .command('apply')
    .description('converge the fleet: make what runs match the spec (or apply a saved plan)')
    .argument('[plan-or-path]', 'a saved plan file from `plan --out`, or the fleet file/folder', '.')
    .option('--auto-approve', 'apply without asking')
    .option('--parallelism <n>', 'how many actions run at once', '10')
    .option('--target <address...>', 'apply only these addresses (not for routine use)')
    .option('--refresh <bool>', 'refresh from providers first', 'true');
  addStateOptions(apply).action(async (arg: string, opts: ApplyCliOptions) => {
    if (isSavedPlanFile(arg)) await runApply(app, readSavedPlanFile(arg).spec, arg, opts, false);
    else await runApply(app, arg, undefined, opts, false);
  });
}

export function registerDestroy(program: Command, app: CliApp): void {
  const cmd = program
    .command('destroy')
    .description('checkpoint and stop every workload the fleet runs, and release its leases')
    .argument('[path]', 'fleet file or folder', '.')
    .option('--auto-approve', 'destroy without asking')
    .option('--parallelism <n>', 'how many actions run at once', '10')
    .option('--refresh <bool>', 'refresh from providers first', 'true');
  addStateOptions(cmd).action(async (path: string, opts: ApplyCliOptions) => runApply(app, path, undefined, opts, true));
}
