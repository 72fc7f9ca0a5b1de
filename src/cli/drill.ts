// `spotfleet drill WORKLOAD [PATH]`: rehearse an eviction of one workload. It runs the real
// emergency path (checkpoint signal ∥ acquire, verified checkpoint, stop, transfer, resume on the
// fallback), measures each step, and stores checkpoint/transfer/restart times as the workload's
// measured migration overhead, which the cost model then uses instead of the configured guess.
// The workload really moves, so it shows the plan and asks first, as apply does; afterwards it
// releases the lease the workload left, so a rehearsal leaves nothing idle that is paid for.
import type { Command } from 'commander';
import { SpotfleetError, UsageError } from '../core/errors.js';
import { workloadAddress } from '../core/address.js';
import { formatBytes, formatDuration, parseDuration } from '../core/units.js';
import { applyPlan } from '../engine/apply.js';
import { makePlan } from '../engine/make-plan.js';
import { assertNoMandatoryViolations } from '../engine/policy-gate.js';
import { refreshFleet } from '../engine/refresh.js';
import { renderPlanText } from '../engine/render.js';
import type { Action, Plan } from '../engine/types.js';
import type { StateFile, WorkloadRecord } from '../state/types.js';
import type { CliApp } from './app.js';
import { addStateOptions, confirm, openSession, progressPrinter, takeLock, type StateOptions } from './common.js';

export function register(program: Command, app: CliApp): void {
  const cmd = program
    .command('drill')
    .description('rehearse an eviction of one workload and measure checkpoint, transfer and restart times')
    .argument('<workload>', 'workload name (or workload.NAME)')
    .argument('[path]', 'fleet file or folder', '.')
    .option('--deadline <duration>', 'the notice window to rehearse', '120s')
    .option('--auto-approve', 'run the drill without asking first');
  addStateOptions(cmd).action(async (name: string, path: string, opts: StateOptions & { deadline: string; autoApprove?: boolean }) => {
    const wl = name.startsWith('workload.') ? name.slice('workload.'.length) : name;
    const address = workloadAddress(wl);
    const session = await openSession(app, path, opts);
    const lock = await takeLock(session, 'drill', opts);
    try {
      if (!session.fleet.workloads.some((w) => w.name === wl)) throw new SpotfleetError('NOT_FOUND', `workload "${wl}" is not in the spec`);
      const state = await session.store.read();
      const observed = await refreshFleet(session.providers);
      const inst = observed.workloads.find((w) => w.workload === wl && w.fleet === session.fleet.name && w.state === 'running');
      if (!inst) throw new SpotfleetError('NOT_RUNNING', `${address} is not running; apply the fleet first`);
      const now = Date.now();
      const windowMs = parseDuration(opts.deadline);
      if (windowMs === undefined || windowMs <= 0) throw new UsageError(`--deadline: "${opts.deadline}" is not a duration`, ['Expected the notice window to rehearse, such as 30s or 2m.']);
      observed.notices.push({ id: `drill:${now}`, provider: inst.provider, node: inst.node, source: 'drill', kind: 'preemption', deadline: new Date(now + windowMs).toISOString(), receivedAt: new Date(now).toISOString() });
      // Planned as apply plans, with the fleet's policies: a move they forbid is not rehearsed.
      const { plan } = await makePlan(session, state, { now, observed, targets: [address] });
      // A rehearsal is not a preemption: it must not count against the preemption budget.
      for (const a of plan.actions) if (a.kind === 'start') delete a.evicted;
      assertNoMandatoryViolations(plan);
      if (!plan.actions.some((a) => a.kind === 'start' && a.address === address)) throw new SpotfleetError('DRILL_NO_TARGET', `no fallback capacity for ${address}: ${plan.warnings.join('; ') || 'nothing fits'}`);
      app.io.write(renderPlanText(plan, { color: app.io.color }));
      if (!opts.autoApprove) {
        await confirm(app, {
          what: 'drill',
          question: `\nDo you want to run this drill?\n  spotfleet will move ${address} off ${inst.node} as if it were evicted: the workload really moves.`,
          skip: '--auto-approve',
          cancelled: 'Drill cancelled.',
        });
      }
      app.io.out(`\nDrill: evicting ${address} from ${inst.node} (a rehearsal; the workload really moves)\n`);
      const res = await applyPlan(plan, { fleet: session.fleet, providers: session.providers, store: session.store, state, observed, onEvent: progressPrinter(app) });
      if (res.failed.length > 0) throw new SpotfleetError('DRILL_FAILED', `the drill failed: ${res.failed.map((f) => `${f.address} (${f.kind}): ${f.error ?? ''}`).join('; ')}`);
      const rec = res.state.resources[address] as WorkloadRecord | undefined;
      const move = rec?.moves.at(-1);
      const t = move?.timings ?? {};
      const measured = { checkpointMs: t.checkpoint ?? 0, transferMs: t.transfer ?? 0, restartMs: (t.start ?? 0) + (t.stop ?? 0), at: Date.now() };
      const stored = await session.store.update((s) => {
        const r = s.resources[address];
        if (r?.type === 'workload') r.measuredOverhead = measured;
      });
      const released = await releaseLeft(session, stored, inst.provider, inst.node, app);
      app.io.out(`\nDrill complete: ${address} moved ${move?.from ?? inst.node} → ${move?.to ?? '?'}`);
      for (const k of ['checkpoint', 'acquire', 'stop', 'transfer', 'start'] as const) if (t[k] !== undefined) app.io.out(`  ${k.padEnd(10)} ${formatDuration(t[k])}`);
      app.io.out(`  downtime   ${formatDuration(move?.downtimeMs ?? 0)}`);
      if (released.length > 0) app.io.out(`  released   ${released.join(', ')} (nothing runs there any more)`);
      app.io.out(`\nStored as the measured migration overhead of ${address} (checkpoint ${formatDuration(measured.checkpointMs)}, transfer ${formatDuration(measured.transferMs)}, restart ${formatDuration(measured.restartMs)}); the cost model uses it from now on.`);
      // The checkpoint the drill verified is recorded with its size: plans price a move across
      // regions with it (egress = size × USD/GB) in place of checkpoint.sizeGB.
      const size = (stored.resources[address] as WorkloadRecord | undefined)?.lastCheckpoint?.sizeBytes;
      if (size !== undefined && size > 0) app.io.out(`Its checkpoint measured ${formatBytes(size)}; moves across regions are priced with that size (egress) from now on.`);
    } finally {
      await lock?.release();
      await session.close();
    }
  });
}

/**
 * Releases the lease of the node the drill moved the workload off, once nothing of this fleet runs
 * there: the release the next plan would make, taken now. Returns the released addresses.
 */
async function releaseLeft(session: Awaited<ReturnType<typeof openSession>>, state: StateFile, provider: string, node: string, app: CliApp): Promise<string[]> {
  const observed = await refreshFleet(session.providers);
  const left = new Set(observed.leases.filter((l) => l.provider === provider && l.node === node).map((l) => l.id));
  if (left.size === 0) return [];
  const { plan: full } = await makePlan(session, state, { now: Date.now(), observed });
  const releases = full.actions.filter((a): a is Extract<Action, { kind: 'release' }> => a.kind === 'release' && a.deps.length === 0 && left.has(a.leaseId));
  if (releases.length === 0) return [];
  const addrs = new Set(releases.map((a) => a.address));
  const plan: Plan = { ...full, actions: releases, changes: full.changes.filter((c) => addrs.has(c.address)), targets: [...addrs] };
  const res = await applyPlan(plan, { fleet: session.fleet, providers: session.providers, store: session.store, state, observed, onEvent: progressPrinter(app) });
  if (res.failed.length > 0) throw new SpotfleetError('DRILL_FAILED', `the drill moved the workload, but releasing the lease it left failed: ${res.failed.map((f) => `${f.address}: ${f.error ?? ''}`).join('; ')}; \`spotfleet apply\` releases it`);
  return [...addrs];
}
