// `spotfleet force-unlock ID`: remove a state lock left by a process that cannot release it.
import type { Command } from 'commander';
import type { CliApp } from './app.js';
import { addStateOptions, openSession, type StateOptions } from './common.js';

export function register(program: Command, app: CliApp): void {
  const cmd = program
    .command('force-unlock')
    .description('release the state lock by its ID (only when no spotfleet holds it)')
    .argument('<lock-id>')
    .argument('[path]', 'fleet file or folder', '.');
  addStateOptions(cmd).action(async (id: string, path: string, opts: StateOptions) => {
    const session = await openSession(app, path, { ...opts, withoutProviders: true });
    try {
      await session.store.forceUnlock(id);
      app.io.out('spotfleet state has been successfully unlocked!');
    } finally {
      await session.close();
    }
  });
}
