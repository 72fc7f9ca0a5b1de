// `spotfleet import ADDR ID`: adopt something already running into the state — a workload
// instance (`workload.NAME INSTANCE_ID`) or a lease (`lease.POOL LEASE_ID`).
import type { Command } from 'commander';
import { SpotfleetError } from '../core/errors.js';
import { parseAddress, leaseAddress } from '../core/address.js';
import { applyPlan } from '../engine/apply.js';
import { refreshFleet } from '../engine/refresh.js';
import { PLAN_FORMAT_VERSION, type Plan } from '../engine/types.js';
import { specHashOf } from '../engine/plan.js';
import type { CliApp } from './app.js';
import { addStateOptions, openSession, takeLock, type StateOptions } from './common.js';

export function register(program: Command, app: CliApp): void {
  const cmd = program
    .command('import')
    .description('adopt a running workload (workload.NAME ID) or lease (lease.POOL ID) into the state')
    .argument('<address>')
    .argument('<id>')
    .argument('[path]', 'fleet file or folder', '.');
  addStateOptions(cmd).action(async (address: string, id: string, path: string, opts: StateOptions) => {
    const parsed = parseAddress(address);
    if (!parsed || (parsed.kind !== 'workload' && parsed.kind !== 'lease')) {
      throw new SpotfleetError('USAGE', `cannot import "${address}": expected workload.NAME or lease.POOL`);
    }
    const session = await openSession(app, path, opts);
    const lock = await takeLock(session, 'import', opts);
    try {
      const state = await session.store.read();
      const observed = await refreshFleet(session.providers);
      let plan: Plan;
      const base = { formatVersion: PLAN_FORMAT_VERSION, fleet: session.fleet.name, createdAt: new Date().toISOString(), state: { lineage: state.lineage, serial: state.serial }, specHash: specHashOf(session.fleet), changes: [], drift: [], warnings: [], summary: { add: 0, change: 0, destroy: 0, pending: 0 }, cost: { beforePerHour: 0, afterPerHour: 0 } };
      if (parsed.kind === 'workload') {
        const name = parsed.parts[0] as string;
        if (!session.fleet.workloads.some((w) => w.name === name)) throw new SpotfleetError('NOT_FOUND', `workload "${name}" is not in the spec; add it before importing`);
        const inst = observed.workloads.find((w) => w.id === id && w.state === 'running');
        if (!inst) throw new SpotfleetError('NOT_FOUND', `no running instance with ID "${id}" on any provider of this fleet`);
        if (state.resources[address]?.type === 'workload' && state.resources[address].instanceId !== undefined) throw new SpotfleetError('ALREADY_MANAGED', `${address} is already in the state; remove it first with \`spotfleet state rm ${address}\``);
        plan = { ...base, actions: [{ id: 'adopt:1', kind: 'adopt', address, deps: [], summary: `import ${id}`, record: 'workload', provider: inst.provider, node: inst.node, instanceId: inst.id }] };
      } else {
        const lease = observed.leases.find((l) => l.id === id);
        if (!lease) throw new SpotfleetError('NOT_FOUND', `no lease with ID "${id}" on any provider of this fleet`);
        plan = { ...base, actions: [{ id: 'adopt:1', kind: 'adopt', address: leaseAddress(lease.pool, lease.id), deps: [], summary: `import lease ${id}`, record: 'lease', provider: lease.provider, leaseId: lease.id, pool: lease.pool }] };
      }
      const r = await applyPlan(plan, { fleet: session.fleet, providers: session.providers, store: session.store, state, observed });
      if (r.failed.length > 0) throw new SpotfleetError('IMPORT_FAILED', r.failed.map((f) => f.error).join('; '));
      app.io.out(`${address}: Import prepared and recorded (${id}).\n\nImport successful! The resource is now managed by spotfleet.`);
    } finally {
      await lock?.release();
      await session.close();
    }
  });
}
