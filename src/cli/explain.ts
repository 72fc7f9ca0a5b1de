// `spotfleet explain ADDR`: refresh, plan with decision capture, and print why the planner wants a
// workload where it wants it — its inputs, every rule that fired with the numbers that decided it,
// the money, and the policy results. Read-only: it takes no lock and changes nothing.
import type { Command } from 'commander';
import { parseAddress } from '../core/address.js';
import { SpotfleetError, UsageError } from '../core/errors.js';
import { jsonDocument, toSnakeJson } from '../core/json.js';
import { makePlan } from '../engine/reconcile.js';
import { renderExplanation } from '../policy/explain.js';
import type { WorkloadDecision, WorkloadDecisionInput } from '../policy/types.js';
import type { CliApp } from './app.js';
import { addStateOptions, openSession, type StateOptions } from './common.js';
import { parseBool } from './plan.js';

interface ExplainCliOptions extends StateOptions {
  refresh: string;
  json?: boolean;
}

export function register(program: Command, app: CliApp): void {
  const cmd = program
    .command('explain')
    .description('show every number that decided where a workload should run')
    .argument('<address>', 'what to explain: workload.NAME')
    .argument('[path]', 'fleet file or folder', '.')
    .option('--refresh <bool>', 'refresh from providers first (false: use the state as it is)', 'true')
    .option('--json', 'print the decision input and the decision as JSON');
  addStateOptions(cmd).action(async (address: string, path: string, opts: ExplainCliOptions) => {
    const parsed = parseAddress(address);
    if (!parsed) throw new UsageError(`"${address}" is not an address`, ['Expected workload.NAME, for example workload.train-a.']);
    if (parsed.kind !== 'workload') throw new UsageError(`explain works on workloads, not ${parsed.kind} addresses: "${address}"`, ['Expected workload.NAME; `spotfleet state show ADDR` shows other resources.']);
    const name = parsed.parts[0] as string;
    const refresh = parseBool('refresh', opts.refresh, true);
    const session = await openSession(app, path, opts);
    try {
      const state = await session.store.read();
      const inSpec = session.fleet.workloads.some((w) => w.name === name);
      const inState = state.resources[address]?.type === 'workload';
      if (!inSpec && !inState) {
        const known = session.fleet.workloads.map((w) => `workload.${w.name}`).sort();
        throw new SpotfleetError('ADDRESS_UNKNOWN', `${address} is neither in the fleet spec nor in the state`, known.length > 0 ? [`Workloads in the spec: ${known.join(', ')}`] : ['The spec has no workloads.']);
      }
      if (!inSpec) {
        throw new SpotfleetError('NOTHING_TO_EXPLAIN', `${address} is no longer in the fleet spec: the plan checkpoints and stops it (no placement decision to explain)`);
      }
      const now = Date.now();
      const captured = new Map<string, { input: WorkloadDecisionInput; decision: WorkloadDecision }>();
      // Exactly what `plan` does, with the decisions captured.
      await makePlan(session, state, { now, refresh, captureDecisions: captured });
      const got = captured.get(name);
      if (!got) throw new SpotfleetError('NOTHING_TO_EXPLAIN', `the planner made no placement decision for ${address}`);
      if (opts.json) {
        app.io.stdout.write(jsonDocument({ address, at: new Date(now).toISOString(), refreshed: refresh, input: toSnakeJson(got.input), decision: toSnakeJson(got.decision) }));
        return;
      }
      app.io.write(renderExplanation(got.input, got.decision, now));
      if (!refresh) app.io.err('Warning: refresh skipped (--refresh=false): the explanation reflects the state file only.');
    } finally {
      await session.close();
    }
  });
}
