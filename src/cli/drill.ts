// `spotfleet drill WORKLOAD [PATH]`: rehearse an eviction of one workload. It runs the real
// emergency path (checkpoint signal ∥ acquire, verified checkpoint, stop, transfer, resume on the
// fallback), measures each step, and stores checkpoint/transfer/restart times as the workload's
// measured migration overhead, which the cost model then uses instead of the configured guess.
import type { Command } from 'commander';
import { SpotfleetError, UsageError } from '../core/errors.js';
import { workloadAddress } from '../core/address.js';
import { formatDuration, parseDuration } from '../core/units.js';
import { applyPlan } from '../engine/apply.js';
import { planFleet } from '../engine/plan.js';
import { refreshFleet } from '../engine/refresh.js';
import type { WorkloadRecord } from '../state/types.js';
import type { CliApp } from './app.js';
import { addStateOptions, openSession, progressPrinter, takeLock, type StateOptions } from './common.js';

export function register(program: Command, app: CliApp): void {
  const cmd = program
    .command('drill')
    .description('rehearse an eviction of one workload and measure checkpoint, transfer and restart times')
    .argument('<workload>', 'workload name (or workload.NAME)')
    .argument('[path]', 'fleet file or folder', '.')
    .option('--deadline <duration>', 'the notice window to rehearse', '120s');
  addStateOptions(cmd).action(async (name: string, path: string, opts: StateOptions & { deadline: string }) => {
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
      const plan = planFleet(session.fleet, observed, state, { now, marketProviders: session.marketProviders, runtimeProviders: session.runtimeProviders, bidProviders: session.bidProviders, targets: [address] });
      // A rehearsal is not a preemption: it must not count against the preemption budget.
      for (const a of plan.actions) if (a.kind === 'start') delete a.evicted;
      if (!plan.actions.some((a) => a.kind === 'start' && a.address === address)) throw new SpotfleetError('DRILL_NO_TARGET', `no fallback capacity for ${address}: ${plan.warnings.join('; ') || 'nothing fits'}`);
      app.io.out(`Drill: evicting ${address} from ${inst.node} (a rehearsal; the workload really moves)\n`);
      const res = await applyPlan(plan, { fleet: session.fleet, providers: session.providers, store: session.store, state, observed, onEvent: progressPrinter(app) });
      if (res.failed.length > 0) throw new SpotfleetError('DRILL_FAILED', `the drill failed: ${res.failed.map((f) => `${f.address} (${f.kind}): ${f.error ?? ''}`).join('; ')}`);
      const rec = res.state.resources[address] as WorkloadRecord | undefined;
      const move = rec?.moves.at(-1);
      const t = move?.timings ?? {};
      const measured = { checkpointMs: t.checkpoint ?? 0, transferMs: t.transfer ?? 0, restartMs: (t.start ?? 0) + (t.stop ?? 0), at: Date.now() };
      const next = structuredClone(res.state);
      const r = next.resources[address];
      if (r?.type === 'workload') r.measuredOverhead = measured;
      await session.store.write(next);
      app.io.out(`\nDrill complete: ${address} moved ${move?.from ?? inst.node} → ${move?.to ?? '?'}`);
      for (const k of ['checkpoint', 'acquire', 'stop', 'transfer', 'start'] as const) if (t[k] !== undefined) app.io.out(`  ${k.padEnd(10)} ${formatDuration(t[k])}`);
      app.io.out(`  downtime   ${formatDuration(move?.downtimeMs ?? 0)}`);
      app.io.out(`\nStored as the measured migration overhead of ${address} (checkpoint ${formatDuration(measured.checkpointMs)}, transfer ${formatDuration(measured.transferMs)}, restart ${formatDuration(measured.restartMs)}); the cost model uses it from now on.`);
    } finally {
      await lock?.release();
      await session.close();
    }
  });
}
