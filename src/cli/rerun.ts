// `spotfleet rerun workload.NAME`: run a finished (succeeded, failed or cancelled) workload again.
// A succeeded job never runs again by accident; this is the explicit way to ask. The record goes
// back to pending with its failure count reset; the next `apply` (or the running watch, at its next
// reconcile) starts it: a succeeded job from scratch, a failed or cancelled one from its newest
// verified checkpoint (`--fresh` starts either from scratch).
import type { Command } from 'commander';
import { SpotfleetError, UsageError } from '../core/errors.js';
import { parseAddress } from '../core/address.js';
import { isTerminal } from '../engine/lifecycle.js';
import { readControllerStatus } from './status.js';
import type { CliApp } from './app.js';
import { addStateOptions, openSession, takeLock, type StateOptions } from './common.js';

export function register(program: Command, app: CliApp): void {
  const cmd = program
    .command('rerun')
    .description('run a finished workload again (at the next apply, or the next reconcile of watch)')
    .argument('<address>', 'workload.NAME')
    .argument('[path]', 'fleet file or folder', '.')
    .option('--fresh', 'start from scratch, not from the newest checkpoint');
  addStateOptions(cmd).action(async (address: string, path: string, opts: StateOptions & { fresh?: boolean }) => {
    const parsed = parseAddress(address);
    if (parsed?.kind !== 'workload') throw new UsageError(`rerun takes a workload address (workload.NAME), got "${address}"`);
    const name = parsed.parts[0] as string;
    const session = await openSession(app, path, { ...opts, withoutProviders: true });
    const lock = await takeLock(session, 'rerun', opts).catch(async (e: unknown) => {
      await session.close();
      throw e;
    });
    try {
      if (!session.fleet.workloads.some((w) => w.name === name)) throw new SpotfleetError('NOT_FOUND', `workload "${name}" is not in the spec`);
      const s = await session.store.read();
      const r = s.resources[address];
      if (r?.type !== 'workload') throw new SpotfleetError('NOT_FOUND', `${address} has never run (no record in the state); \`spotfleet apply\` starts it`);
      if (!isTerminal(r.phase)) throw new SpotfleetError('NOT_FINISHED', `${address} is ${r.phase}, not finished: there is nothing to run again`, ['rerun is for succeeded, failed or cancelled workloads.']);
      const was = r.phase;
      const fresh = opts.fresh === true || was === 'succeeded';
      await session.store.update((st) => {
        const w = st.resources[address];
        if (w?.type !== 'workload') return;
        w.phase = 'pending';
        w.pendingReason = { code: 'not-applied', message: `rerun requested (was ${was})`, since: Date.now() };
        w.failures = 0;
        w.recoveries = 0;
        delete w.finishedAt;
        if (fresh) w.startFresh = true;
      });
      app.io.out(`${address} was ${was}; it will run again ${fresh ? 'from scratch' : 'from its newest verified checkpoint'}.`);
      const watch = await readControllerStatus(session.stateDir, session.store);
      app.io.out(watch ? `The running watch (pid ${watch.info.pid}) starts it at its next reconcile.` : 'Run `spotfleet apply` to start it.');
    } finally {
      await lock?.release();
      await session.close();
    }
  });
}
