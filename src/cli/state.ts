// `spotfleet state list | show | rm | mv | pull | push`: read and surgically edit the state, as
// Terraform's state commands do. Nothing here touches what runs: `rm` forgets an address, `mv`
// renames one, `push` replaces the whole state (with Terraform's lineage and serial checks). Every
// edit takes the state lock and goes through the StateStore, so any backend behaves the same.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { compareAddress, parseAddress } from '../core/address.js';
import { SpotfleetError, UsageError } from '../core/errors.js';
import { jsonDocument, toSnakeJson } from '../core/json.js';
import { upgradeState } from '../state/store.js';
import { STATE_VERSION, type ResourceRecord, type StateFile } from '../state/types.js';
import type { CliApp } from './app.js';
import { addStateOptions, openSession, takeLock, type StateOptions } from './common.js';
import { addressMatches, addressesAndPath, renderRecord, strictAddress, withIsoTimes } from './state-view.js';

interface PathOption extends StateOptions {
  path?: string;
}

const pathHelp = 'fleet file or folder (default: the current folder; may also be given as the last argument)';

async function withState<T>(app: CliApp, path: string | undefined, opts: StateOptions, fn: (s: StateFile, session: Awaited<ReturnType<typeof openSession>>) => Promise<T>, lockFor?: string): Promise<T> {
  const session = await openSession(app, path, { ...opts, withoutProviders: true });
  try {
    const lock = lockFor ? await takeLock(session, lockFor, opts) : undefined;
    try {
      return await fn(await session.store.read(), session);
    } finally {
      await lock?.release();
    }
  } finally {
    await session.close();
  }
}

function notFound(missing: string[]): SpotfleetError {
  return new SpotfleetError('NOT_FOUND', `no such address in the state: ${missing.join(', ')}`, ['List the addresses with `spotfleet state list`.']);
}

/** Checks a state file read from disk or stdin before it may replace the current one. */
export function parseStateFile(text: string, source: string): StateFile {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new SpotfleetError('STATE_INVALID', `${source} is not valid JSON: ${(e as Error).message}`);
  }
  const s = parsed as Partial<StateFile>;
  if (typeof s !== 'object' || s === null || typeof s.version !== 'number' || typeof s.serial !== 'number' || typeof s.lineage !== 'string' || typeof s.resources !== 'object' || s.resources === null) {
    throw new SpotfleetError('STATE_INVALID', `${source} is not a spotfleet state: it needs version, serial, lineage and resources`, ['`spotfleet state pull > state.json` writes one.']);
  }
  if (s.version > STATE_VERSION) throw new SpotfleetError('STATE_VERSION', `${source} has state version ${s.version}, newer than this spotfleet understands (${STATE_VERSION})`);
  for (const [addr, r] of Object.entries(s.resources)) {
    if (r.address !== addr || !parseAddress(addr)) throw new SpotfleetError('STATE_INVALID', `${source}: resource "${addr}" is not recorded under its own address`);
  }
  // An older state version is upgraded the way the store upgrades what it reads.
  return upgradeState({ pending: [], ledger: [], fleet: '', ...s } as StateFile);
}

function readStdin(): string {
  return readFileSync(0, 'utf8');
}

export function register(program: Command, app: CliApp): void {
  const state = program.command('state').description('inspect and edit the state');

  addStateOptions(
    state
      .command('list')
      .description('list the addresses in the state, or those under the given addresses (prefixes or * globs)')
      .argument('[address...]', 'filters: workload, lease.spot-v100, workload.train-*')
      .option('--id <id>', 'only the resource with this instance or lease id')
      .option('--path <path>', pathHelp),
  ).action(async (args: string[], opts: PathOption & { id?: string }) => {
    const { addresses: filters, path } = addressesAndPath(args, opts.path);
    await withState(app, path, opts, async (s) => {
      const all = Object.values(s.resources).sort((a, b) => compareAddress(a.address, b.address));
      for (const r of all) {
        if (filters.length > 0 && !filters.some((f) => addressMatches(r.address, f))) continue;
        if (opts.id !== undefined && (r.type === 'workload' ? r.instanceId : r.leaseId) !== opts.id) continue;
        app.io.out(r.address);
      }
    });
  });

  addStateOptions(
    state
      .command('show')
      .description('show one address as recorded in the state (times in ISO-8601)')
      .argument('<address>')
      .argument('[path]', pathHelp)
      .option('--json', 'print the record as JSON'),
  ).action(async (address: string, pathArg: string | undefined, opts: StateOptions & { json?: boolean }) => {
    const { addresses, path } = addressesAndPath([address, ...(pathArg !== undefined ? [pathArg] : [])], undefined);
    if (addresses.length !== 1) throw new UsageError('state show takes exactly one address', ['Expected workload.NAME or lease.POOL.ID.']);
    const addr = strictAddress(addresses[0] as string, 'state show');
    await withState(app, path, opts, async (s) => {
      const r = s.resources[addr];
      if (!r) throw notFound([addr]);
      if (opts.json) app.io.stdout.write(jsonDocument({ address: addr, type: r.type, values: toSnakeJson(withIsoTimes(r)) }));
      else app.io.stdout.write(renderRecord(r));
    });
  });

  addStateOptions(
    state
      .command('rm')
      .description('forget addresses (what runs is not touched; the next plan may adopt it again)')
      .argument('<address...>', 'one or more addresses, then optionally the fleet path')
      .option('--path <path>', pathHelp)
      .option('--dry-run', 'say what would be removed, change nothing'),
  ).action(async (args: string[], opts: PathOption & { dryRun?: boolean }) => {
    const { addresses, path } = addressesAndPath(args, opts.path);
    if (addresses.length === 0) throw new UsageError('state rm needs at least one address');
    for (const a of addresses) strictAddress(a, 'state rm');
    await withState(
      app,
      path,
      opts,
      async (s, session) => {
        const missing = addresses.filter((a) => !s.resources[a]);
        if (missing.length > 0) throw notFound(missing);
        const unique = [...new Set(addresses)];
        if (opts.dryRun) {
          for (const a of unique) app.io.out(`Would remove ${a}`);
          return;
        }
        for (const a of unique) delete s.resources[a];
        await session.store.write(s);
        for (const a of unique) app.io.out(`Removed ${a}`);
        app.io.out(`Successfully removed ${unique.length} resource instance(s).`);
      },
      'state rm',
    );
  });

  addStateOptions(
    state
      .command('mv')
      .description('move a record to another address of the same type (what runs is not touched)')
      .argument('<args...>', 'SOURCE DESTINATION, then optionally the fleet path')
      .option('--path <path>', pathHelp)
      .option('--dry-run', 'say what would move, change nothing'),
  ).action(async (args: string[], opts: PathOption & { dryRun?: boolean }) => {
    const { addresses, path } = addressesAndPath(args, opts.path);
    if (addresses.length !== 2) throw new UsageError(`state mv takes a source and a destination address, got ${addresses.length} address${addresses.length === 1 ? '' : 'es'}`);
    const src = strictAddress(addresses[0] as string, 'state mv');
    const dst = strictAddress(addresses[1] as string, 'state mv');
    const ps = parseAddress(src);
    const pd = parseAddress(dst);
    if (ps?.kind !== pd?.kind) throw new UsageError(`cannot move ${src} to ${dst}: a ${ps?.kind ?? '?'} can only move to a ${ps?.kind ?? '?'} address`);
    await withState(
      app,
      path,
      opts,
      async (s, session) => {
        const r = s.resources[src];
        if (!r) throw notFound([src]);
        if (s.resources[dst]) throw new SpotfleetError('ADDRESS_TAKEN', `cannot move ${src} to ${dst}: ${dst} is already in the state`, ['Remove it first with `spotfleet state rm`, or pick another address.']);
        if (opts.dryRun) {
          app.io.out(`Would move "${src}" to "${dst}"`);
          return;
        }
        const moved: ResourceRecord = { ...r, address: dst };
        if (moved.type === 'workload') moved.name = pd?.parts[0] as string;
        else moved.pool = pd?.parts[0] as string;
        delete s.resources[src];
        s.resources[dst] = moved;
        await session.store.write(s);
        app.io.out(`Move "${src}" to "${dst}"`);
        app.io.out('Successfully moved 1 object(s).');
      },
      'state mv',
    );
  });

  addStateOptions(
    state
      .command('pull')
      .description('print the state as JSON on standard output (for backups and `state push`)')
      .argument('[path]', pathHelp),
  ).action(async (path: string | undefined, opts: StateOptions) => {
    await withState(app, path, opts, async (s) => {
      app.io.stdout.write(`${JSON.stringify(s, null, 2)}\n`);
    });
  });

  addStateOptions(
    state
      .command('push')
      .description('replace the state\'s content with a file ("-" reads standard input); refuses another lineage or an older serial')
      .argument('<file>', 'a state file, as `spotfleet state pull` prints it, or - for standard input')
      .argument('[path]', pathHelp)
      .option('--force', 'write it even when the lineage differs or its serial is older (dangerous)'),
  ).action(async (file: string, path: string | undefined, opts: StateOptions & { force?: boolean }) => {
    const source = file === '-' ? 'standard input' : file;
    let text: string;
    try {
      text = file === '-' ? readStdin() : readFileSync(file, 'utf8');
    } catch (e) {
      throw new SpotfleetError('STATE_INVALID', `cannot read ${source}: ${(e as Error).message}`);
    }
    const pushed = parseStateFile(text, source);
    await withState(
      app,
      path,
      opts,
      async (cur, session) => {
        const problems: string[] = [];
        if (pushed.lineage !== cur.lineage) problems.push(`it has lineage ${pushed.lineage}, but the state has lineage ${cur.lineage}: it is the state of something else`);
        if (pushed.serial < cur.serial) problems.push(`its serial ${pushed.serial} is older than the state's serial ${cur.serial}: the state changed since it was pulled`);
        if (pushed.fleet && pushed.fleet !== session.fleet.name) problems.push(`it is the state of fleet "${pushed.fleet}", not "${session.fleet.name}"`);
        if (problems.length > 0 && !opts.force) {
          throw new SpotfleetError('STATE_PUSH_REFUSED', `refusing to push ${source}: ${problems[0] as string}`, [...problems.slice(1), 'Run `spotfleet state pull` for the current state, or use --force to overwrite it anyway.']);
        }
        for (const p of problems) app.io.err(`Warning: --force: ${p}`);
        if (pushed.lineage !== cur.lineage) app.io.err(`Warning: --force: the state keeps its lineage ${cur.lineage}; its content is replaced by ${source}'s`);
        // The store writes compare-and-swap on serial and lineage: the pushed content goes in as
        // the next serial of the current state, which also makes every saved plan stale.
        const written = await session.store.write({ ...pushed, fleet: session.fleet.name, lineage: cur.lineage, serial: cur.serial });
        app.io.out(`Pushed ${source} to ${session.store.location} (serial ${written.serial}, ${Object.keys(written.resources).length} resource(s)).`);
      },
      'state push',
    );
  });
}
