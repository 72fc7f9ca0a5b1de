// `spotfleet force-unlock ID`: remove a state lock left by a process that cannot release it. As
// in Terraform it asks first, showing who holds the lock, unless --force; a lock whose holder is a
// process on this host that has died is removed without asking (nothing can be using it).
import { hostname } from 'node:os';
import type { Command } from 'commander';
import { LockError, SpotfleetError } from '../core/errors.js';
import type { CliApp } from './app.js';
import { addStateOptions, confirm, openSession, type StateOptions } from './common.js';

/** Whether the lock holder may still run: alive on this host, or on another host (unknown). */
export function holderMayBeAlive(holder: { pid: number; host: string }): boolean {
  if (holder.host !== hostname()) return true;
  try {
    process.kill(holder.pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function register(program: Command, app: CliApp): void {
  const cmd = program
    .command('force-unlock')
    .description('release the state lock by its ID (asks first while its holder may be running)')
    .argument('<lock-id>')
    .argument('[path]', 'fleet file or folder', '.')
    .option('--force', 'do not ask for confirmation');
  addStateOptions(cmd).action(async (id: string, path: string, opts: StateOptions & { force?: boolean }) => {
    const session = await openSession(app, path, { ...opts, withoutProviders: true });
    try {
      const holder = await session.store.holder();
      if (!holder) throw new SpotfleetError('NOT_LOCKED', `the state at ${session.store.location} is not locked`);
      if (holder.id !== id) throw new LockError(`lock ID "${id}" does not match the current lock`, holder);
      if (!opts.force && holderMayBeAlive(holder)) {
        const where = holder.host === hostname() ? `process ${holder.pid} on this host is still running` : `it was taken on ${holder.host}, where spotfleet cannot tell whether process ${holder.pid} still runs`;
        await confirm(app, {
          what: 'force-unlock',
          question: `Lock ID: ${holder.id}\n  Holder: pid ${holder.pid} on ${holder.host}, running "${holder.command}" since ${holder.time}\n  The holder may still be using the state: ${where}.\n\nDo you really want to force-unlock?\n  spotfleet will remove the lock on the state.\n  This lets other spotfleet commands change the state even though it may still be in use.`,
          skip: '--force',
          cancelled: 'force-unlock cancelled: the lock is still held.',
        });
      }
      await session.store.forceUnlock(id);
      app.io.out('spotfleet state has been successfully unlocked!');
    } finally {
      await session.close();
    }
  });
}
