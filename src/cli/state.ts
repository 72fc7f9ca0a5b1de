// `spotfleet state list | show ADDR | rm ADDR`: read and surgically edit the state, as Terraform's
// state commands do. `rm` forgets an address without touching what runs.
import type { Command } from 'commander';
import { SpotfleetError } from '../core/errors.js';
import { compareAddress } from '../core/address.js';
import type { CliApp } from './app.js';
import { addStateOptions, openSession, takeLock, type StateOptions } from './common.js';

export function register(program: Command, app: CliApp): void {
  const state = program.command('state').description('inspect and edit the state');
  addStateOptions(state.command('list').description('list every address in the state').argument('[path]', 'fleet file or folder', '.')).action(async (path: string, opts: StateOptions) => {
    const session = await openSession(app, path, { ...opts, withoutProviders: true });
    try {
      const s = await session.store.read();
      for (const a of Object.keys(s.resources).sort(compareAddress)) app.io.out(a);
    } finally {
      await session.close();
    }
  });
  addStateOptions(state.command('show').description('show one address as recorded in the state').argument('<address>').argument('[path]', 'fleet file or folder', '.')).action(async (address: string, path: string, opts: StateOptions) => {
    const session = await openSession(app, path, { ...opts, withoutProviders: true });
    try {
      const s = await session.store.read();
      const r = s.resources[address];
      if (!r) throw new SpotfleetError('NOT_FOUND', `no such address in the state: ${address}`, ['List the addresses with `spotfleet state list`.']);
      app.io.out(JSON.stringify(r, null, 2));
    } finally {
      await session.close();
    }
  });
  addStateOptions(state.command('rm').description('forget an address (what runs is not touched)').argument('<address...>').option('--path <path>', 'fleet file or folder', '.')).action(async (addresses: string[], opts: StateOptions & { path: string }) => {
    const session = await openSession(app, opts.path, { ...opts, withoutProviders: true });
    const lock = await takeLock(session, 'state rm', opts);
    try {
      const s = await session.store.read();
      const missing = addresses.filter((a) => !s.resources[a]);
      if (missing.length > 0) throw new SpotfleetError('NOT_FOUND', `no such address in the state: ${missing.join(', ')}`);
      for (const a of addresses) delete s.resources[a];
      await session.store.write(s);
      for (const a of addresses) app.io.out(`Removed ${a}`);
      app.io.out(`Successfully removed ${addresses.length} resource instance(s).`);
    } finally {
      await lock?.release();
      await session.close();
    }
  });
}
