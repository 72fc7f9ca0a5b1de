// `spotfleet apply [PLANFILE]` and `spotfleet destroy`: show the plan, ask (unless --auto-approve;
// never ask when stdin is not a terminal), then converge with a bounded-parallel DAG walk. A saved
// plan is refused when the state moved. First Ctrl-C lets running actions finish and saves state;
// the second aborts (main.ts).
import type { Command } from 'commander';
import { CancelledError, SpotfleetError, UsageError } from '../core/errors.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { applyPlan, clearStalePending, type ApplyResult } from '../engine/apply.js';
import type { FleetSession } from '../engine/session.js';
import { StateRecorder } from '../engine/steps.js';
import type { StateFile } from '../state/types.js';
import { makePlan } from '../engine/make-plan.js';
import { assertPlanFresh } from '../engine/plan-staleness.js';
import { assertNoMandatoryViolations } from '../engine/policy-gate.js';
import { readSavedPlanIfAny } from '../engine/saved-plan.js';
import { refreshFleet } from '../engine/refresh.js';
import { renderPlanText } from '../engine/render.js';
import { planHasActions, planHasChanges, type Plan } from '../engine/types.js';
import type { UnsavedInfo } from '../state/recovery.js';
import type { CliApp } from './app.js';
import { addStateOptions, confirm, lockTimeoutMs, openSession, progressPrinter, takeLock, type StateOptions } from './common.js';
import { parseBool } from './util.js';

interface ApplyCliOptions extends StateOptions {
  autoApprove?: boolean;
  parallelism: string;
  target?: string[];
  refresh: string;
}


/** The running watch of this fleet, if any (it writes `watch.json` in the state folder). */
function runningWatch(stateDir: string): { pid: number; startedAt?: string } | undefined {
  try {
    const w = JSON.parse(readFileSync(join(stateDir, 'watch.json'), 'utf8')) as { pid?: unknown; startedAt?: string };
    if (typeof w.pid !== 'number') return undefined;
    process.kill(w.pid, 0);
    return { pid: w.pid, ...(w.startedAt ? { startedAt: w.startedAt } : {}) };
  } catch {
    return undefined;
  }
}

/** `saved`: the plan of `apply PLANFILE`, applied as it is once it proves fresh. */
async function runApply(app: CliApp, path: string, saved: Plan | undefined, opts: ApplyCliOptions, destroy: boolean): Promise<void> {
  const parallelism = Number(opts.parallelism);
  if (!Number.isInteger(parallelism) || parallelism < 1) throw new UsageError(`--parallelism: expected a positive whole number, got "${opts.parallelism}"`);
  const session = await openSession(app, path, opts);
  const watch = runningWatch(session.stateDir);
  if (destroy && opts.autoApprove && watch) {
    // Destroy is a desired state first: recorded at once (compare-and-swap, no lock needed), so a
    // running watch stops acting on this fleet now, even while it holds the lock for a reconcile.
    await session.store.update((s) => {
      s.fleetMode = { mode: 'destroyed', at: Date.now(), by: `destroy (pid ${process.pid})` };
    });
    if (watch) app.io.err(`The running watch (pid ${watch.pid}) sees the fleet as destroyed and stays idle until the next apply.`);
  }
  // A running watch holds the lock only while it reconciles: wait for that one reconcile.
  const lockOpts = watch && lockTimeoutMs(opts) < 120_000 ? { ...opts, lockTimeout: '120s' } : opts;
  if (watch && lockOpts !== opts) app.io.err(`Waiting for the running watch (pid ${watch.pid}) to finish its reconcile...`);
  const lock = await takeLock(session, destroy ? 'destroy' : 'apply', lockOpts).catch(async (e: unknown) => {
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
    if (saved) {
      plan = saved;
      assertPlanFresh(plan, state, session);
      observed = await refreshFleet(session.providers);
    } else {
      if (opts.target && opts.target.length > 0) app.io.err('Warning: resource targeting is in effect. The plan may be incomplete; --target is for exceptional situations, not routine use.');
      ({ plan, observed } = await makePlan(session, state, {
        now: Date.now(),
        refresh: parseBool('refresh', opts.refresh, true),
        ...(opts.target ? { targets: opts.target } : {}),
        ...(destroy ? { destroy: true } : {}),
      }));
    }
    app.io.write(renderPlanText(plan, { color: app.io.color }));
    if (!planHasActions(plan)) {
      await clearStalePending(session.store, state);
      await setMode(session, destroy, opts);
      return;
    }
    assertNoMandatoryViolations(plan);
    if (planHasChanges(plan) && !saved && !opts.autoApprove) {
      await confirm(app, {
        what: destroy ? 'destroy' : 'apply',
        question: destroy
          ? plan.targets
            ? `\nDo you really want to destroy ${plan.targets.join(', ')}?\n  spotfleet will perform the actions described above; nothing else is touched.`
            : '\nDo you really want to destroy everything this fleet runs?\n  spotfleet will checkpoint and stop every workload and release every lease.'
          : '\nDo you want to perform these actions?\n  spotfleet will perform the actions described above.',
        skip: '--auto-approve',
        cancelled: destroy ? 'Destroy cancelled.' : 'Apply cancelled.',
      });
    }
    // Apply restores the spec as the desired state (a destroy before it is over); destroy records
    // "nothing runs" before it stops anything, so a running watch never restarts what it stops.
    const recorder = new StateRecorder(session.store, await setMode(session, destroy, opts));
    if (opts.refresh !== 'false' && !saved) await session.store.saveObservation(observed);
    if (planHasChanges(plan)) app.io.out('');
    const progress = progressPrinter(app);
    const result = await applyPlan(plan, {
      fleet: session.fleet,
      providers: session.providers,
      store: session.store,
      state: recorder.latest,
      recorder,
      observed,
      parallelism,
      mode: destroy ? 'destroy' : 'apply',
      onEvent: progress,
      shouldStop: () => stopRequested || app.interrupted,
    }).finally(() => progress.stop());
    report(app, plan, result, destroy, session.store.unsaved?.());
    if (destroy && !(opts.target && opts.target.length > 0)) await assertNothingLeft(session);
  } finally {
    unhook();
    await lock?.release();
    await session.close();
  }
}

/** Records the fleet's desired state: active after apply, destroyed after destroy (not on a --target run). */
async function setMode(session: FleetSession, destroy: boolean, opts: ApplyCliOptions): Promise<StateFile> {
  if (opts.target && opts.target.length > 0) return session.store.read();
  const mode = destroy ? 'destroyed' : 'active';
  const cur = await session.store.read();
  if ((cur.fleetMode?.mode ?? 'active') === mode && (mode === 'active' || cur.fleetMode !== undefined)) return cur;
  return session.store.update((s) => {
    s.fleetMode = { mode, at: Date.now(), by: `${destroy ? 'destroy' : 'apply'} (pid ${process.pid})` };
  });
}

/**
 * "Destroy complete!" must be true: after the destroy, nothing of the fleet runs and no lease of it
 * is paid for, as the providers themselves report.
 */
async function assertNothingLeft(session: FleetSession): Promise<void> {
  const obs = await refreshFleet(session.providers, { notices: false });
  const left = [
    ...obs.workloads.filter((w) => w.fleet === session.fleet.name && w.state === 'running').map((w) => `workload.${w.workload} (${w.id} on ${w.provider}/${w.node})`),
    ...obs.leases.filter((l) => l.labels?.['spotfleet.fleet'] === session.fleet.name && l.state !== 'terminated' && l.state !== 'released').map((l) => `lease ${l.id} (${l.provider}, ${l.pool})`),
  ];
  if (left.length > 0) throw new SpotfleetError('DESTROY_INCOMPLETE', `Destroy did not finish: ${left.length} thing${left.length === 1 ? '' : 's'} of this fleet still run${left.length === 1 ? 's' : ''} or cost${left.length === 1 ? 's' : ''} money`, [...left, 'Run `spotfleet destroy` again.']);
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
    const pending = plan.changes.filter((c) => c.change === 'pending');
    if (pending.length > 0) {
      app.io.out(`${pending.length} workload${pending.length === 1 ? '' : 's'} cannot run yet (pending):`);
      for (const c of pending) app.io.out(`  ${c.address}: ${c.reasons.at(-1)?.text ?? ''}`);
    }
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
    const saved = readSavedPlanIfAny(arg);
    if (saved) await runApply(app, saved.spec, saved.plan, opts, false);
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
    .option('--target <address...>', 'destroy only these addresses (and what they depend on)')
    .option('--refresh <bool>', 'refresh from providers first', 'true');
  addStateOptions(cmd).action(async (path: string, opts: ApplyCliOptions) => runApply(app, path, undefined, opts, true));
}
