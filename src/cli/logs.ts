// `spotfleet logs workload.NAME [-f] [--all-instances]`: a workload's output across all its moves
// and restarts, from whichever provider ran each instance (local, sim, ssh, docker). The state
// records every instance the workload ran as; `-f` follows the current one and carries on with the
// next after a move or a restart, until the workload ends (as `kubectl logs -f` does).
import type { Command } from 'commander';
import { SpotfleetError, UsageError, errorMessage } from '../core/errors.js';
import { parseAddress } from '../core/address.js';
import { isTerminal } from '../engine/lifecycle.js';
import type { FleetSession } from '../engine/session.js';
import type { InstanceRef, WorkloadRecord } from '../state/types.js';
import { readControllerStatus } from './status.js';
import type { CliApp } from './app.js';
import { addStateOptions, openSession, type StateOptions } from './common.js';

interface LogsOptions extends StateOptions {
  follow?: boolean;
  allInstances?: boolean;
  tail?: string;
}

function instancesOf(r: WorkloadRecord): InstanceRef[] {
  const list = [...(r.instances ?? [])];
  if (r.instanceId && r.provider && r.node && !list.some((i) => i.id === r.instanceId)) list.push({ provider: r.provider, node: r.node, id: r.instanceId, startedAt: r.since ?? 0 });
  return list;
}

async function readLogs(session: FleetSession, i: InstanceRef, tail?: number): Promise<string> {
  if (i.removedAt !== undefined) return `(removed from ${i.provider}/${i.node} at ${new Date(i.removedAt).toISOString()}, a day after it exited: its output went with it)\n`;
  const p = session.providers.get(i.provider);
  if (!p?.runtime?.logs) throw new SpotfleetError('NO_LOGS', `provider ${i.provider} cannot show logs`);
  try {
    return await p.runtime.logs(i.node, i.id, tail !== undefined ? { tailLines: tail } : {});
  } catch (e) {
    return `(the logs of ${i.id} on ${i.provider}/${i.node} cannot be read: ${errorMessage(e)})\n`;
  }
}

function header(i: InstanceRef): string {
  return `==> ${i.id} on ${i.provider}/${i.node}, started ${new Date(i.startedAt).toISOString()}${i.endedAt ? `, ended ${new Date(i.endedAt).toISOString()}` : ''} <==`;
}

export function register(program: Command, app: CliApp): void {
  const cmd = program
    .command('logs')
    .description("a workload's output across its moves and restarts")
    .argument('<address>', 'workload.NAME')
    .argument('[path]', 'fleet file or folder', '.')
    .option('-f, --follow', 'keep printing new output, across moves and restarts, until the workload ends')
    .option('--all-instances', 'every instance it ran as, oldest first (default: the current or last one)')
    .option('--tail <lines>', 'only the last lines of each instance');
  addStateOptions(cmd).action(async (address: string, path: string, opts: LogsOptions) => {
    const parsed = parseAddress(address);
    if (parsed?.kind !== 'workload') throw new UsageError(`logs takes a workload address (workload.NAME), got "${address}"`);
    const tail = opts.tail !== undefined ? Number(opts.tail) : undefined;
    if (tail !== undefined && (!Number.isInteger(tail) || tail < 0)) throw new UsageError(`--tail: expected a whole number of lines, got "${opts.tail}"`);
    const session = await openSession(app, path, opts);
    try {
      const read = async (): Promise<WorkloadRecord> => {
        const r = (await session.store.read()).resources[address];
        if (r?.type !== 'workload') throw new SpotfleetError('NOT_FOUND', `${address} has never run (no record in the state)`);
        return r;
      };
      let rec = await read();
      const all = instancesOf(rec);
      if (all.length === 0) throw new SpotfleetError('NOT_FOUND', `${address} has no instance yet (${rec.phase})`);
      const shown = opts.allInstances ? all : all.slice(-1);
      let current = shown.at(-1) as InstanceRef;
      let printed = 0;
      for (const i of shown) {
        if (opts.allInstances || opts.follow) app.io.out(header(i));
        const text = await readLogs(session, i, tail);
        app.io.stdout.write(text);
        if (i === current) printed = tail === undefined ? text.length : (await readLogs(session, i)).length;
      }
      if (!opts.follow) return;
      while (!app.interrupted) {
        await new Promise((r) => setTimeout(r, 1000));
        rec = await read();
        const latest = instancesOf(rec).at(-1);
        const text = await readLogs(session, current);
        if (text.length > printed) app.io.stdout.write(text.slice(printed));
        printed = Math.max(printed, text.length);
        if (latest && latest.id !== current.id) {
          // It moved or restarted: carry on with the new instance from its beginning.
          current = latest;
          printed = 0;
          app.io.out(header(current));
          continue;
        }
        if (isTerminal(rec.phase) && rec.instanceId === undefined) {
          app.io.out(`==> ${address} ${rec.phase}${rec.lastExit?.code !== undefined ? ` (exit ${rec.lastExit.code})` : ''} <==`);
          return;
        }
        // With no watch to restart or move it, an instance that exited is the end of the story.
        const inst = await session.providers.get(current.provider)?.runtime?.inspect?.(current.node, current.id).catch(() => undefined);
        if (inst && inst.state !== 'running' && !(await readControllerStatus(session.stateDir, session.store))) {
          const rest = await readLogs(session, current);
          if (rest.length > printed) app.io.stdout.write(rest.slice(printed));
          app.io.out(`==> ${current.id} exited${inst.exitCode !== undefined ? ` with code ${inst.exitCode}` : ''} <==`);
          return;
        }
      }
    } finally {
      await session.close();
    }
  });
}
