// `spotfleet explain ADDR`: refresh, plan with decision capture, and print why the planner wants a
// workload where it wants it — its inputs, every rule that fired with the numbers that decided it,
// the money, and the policy results; and, for a workload on a node with an early warning, the
// priced answer (ignore, prepare, move now) watch gave or would give, with its numbers. Read-only:
// it takes no lock and changes nothing.
import type { Command } from 'commander';
import { parseAddress } from '../core/address.js';
import { SpotfleetError, UsageError } from '../core/errors.js';
import { jsonDocument, toSnakeJson } from '../core/json.js';
import { makePlan } from '../engine/make-plan.js';
import { renderExplanation } from '../policy/explain.js';
import type { WorkloadDecision, WorkloadDecisionInput } from '../policy/types.js';
import { DEFAULT_WARNING_WINDOW_MS, decideWarning, isEarlyWarning, isDueWarning, poolHistoryKey, renderWarningDecision, warningWindowEnd, type PoolHistory, type WarningRecord } from '../policy/warning.js';
import type { Notice } from '../core/types.js';
import type { Fleet } from '../spec/types.js';
import type { CliApp } from './app.js';
import { addStateOptions, openSession, type StateOptions } from './common.js';
import { parseBool } from './util.js';

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
      const { observed } = await makePlan(session, state, { now, refresh, captureDecisions: captured });
      const got = captured.get(name);
      if (!got) throw new SpotfleetError('NOTHING_TO_EXPLAIN', `the planner made no placement decision for ${address}`);
      const rec = state.resources[address];
      const wrec = rec?.type === 'workload' ? rec : undefined;
      const live = liveWarning(session.fleet, got.input, observed.notices, state.poolHistory, wrec?.lastWarning, now);
      const warning = live ?? wrec?.lastWarning;
      const history = warning && got.input.current ? state.poolHistory?.[poolHistoryKey(got.input.current.pool ?? '', got.input.current.zone)] : undefined;
      if (opts.json) {
        app.io.stdout.write(jsonDocument({ address, at: new Date(now).toISOString(), refreshed: refresh, input: toSnakeJson(got.input), decision: toSnakeJson(got.decision), ...(warning ? { warning: toSnakeJson({ ...warning, live: live !== undefined, ...(wrec?.prepared ? { prepared: wrec.prepared } : {}) }) } : {}) }));
        return;
      }
      app.io.write(renderExplanation(got.input, got.decision, now));
      if (warning) app.io.write(`\n${renderWarningDecision(warning, { ...(history ? { history } : {}), ...(wrec?.prepared ? { prepared: wrec.prepared } : {}), ...(live ? { live: true } : {}) })}`);
      if (!refresh) app.io.err('Warning: refresh skipped (--refresh=false): the explanation reflects the state file only.');
    } finally {
      await session.close();
    }
  });
}

/**
 * An early warning on the workload's node that watch has not answered (no record of it): the
 * answer it would give now, priced with the same inputs (default warning window).
 */
function liveWarning(fleet: Fleet, input: WorkloadDecisionInput, notices: readonly Notice[], history: Record<string, PoolHistory> | undefined, recorded: WarningRecord | undefined, now: number): WarningRecord | undefined {
  const cur = input.current;
  if (!cur || cur.evicted) return undefined;
  const n = notices.find((x) => x.provider === cur.provider && x.node === cur.node && isEarlyWarning(x) && !isDueWarning(x));
  if (!n || recorded?.noticeId === n.id) return undefined;
  const windowEnd = warningWindowEnd(n, DEFAULT_WARNING_WINDOW_MS);
  const configured = fleet.pools.find((p) => p.name === cur.pool)?.onWarning ?? 'auto';
  const hist = history?.[poolHistoryKey(cur.pool ?? '', cur.zone)];
  const d = decideWarning({ ...input, current: cur, notice: { kind: n.kind, deadline: windowEnd, receivedAt: Date.parse(n.receivedAt) }, configured, ...(hist ? { poolHistory: hist } : {}) }, now);
  const t = d.target;
  return {
    noticeId: n.id, kind: n.kind, source: n.source, ...(n.action ? { action: n.action } : {}), node: n.node, at: now, deadline: Date.parse(n.deadline), windowEnd, configured, response: d.response,
    ...(t ? { target: { pool: t.pool, ...(t.zone ? { zone: t.zone } : {}), capacity: t.capacity, ...(t.node ? { node: t.node } : {}), pricePerGpuHour: t.pricePerGpuHour } } : {}),
    numbers: d.numbers, reasons: d.reasons.map((r) => r.text),
  };
}
