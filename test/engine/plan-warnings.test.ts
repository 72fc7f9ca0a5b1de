// The planner and early warnings: a warning is not an eviction (nothing moves for it alone); a
// warning watch marked due moves only the workloads it names; an evicted workload goes to the
// target prepared for it (its lease kept, its node reserved) until the warning's window ends, then
// the lease is released; a pool/zone that was just preempted is priced as riskier.
import { describe, expect, it } from 'vitest';
import type { Notice } from '../../src/core/types.js';
import { planFleet } from '../../src/engine/plan.js';
import type { WorkloadDecision, WorkloadDecisionInput } from '../../src/policy/types.js';
import { recordPoolEvent, type PreparedMove } from '../../src/policy/warning.js';
import type { LeaseRecord } from '../../src/state/types.js';
import { NOW, fleet, instance, lease, node, observed, planOpts, quote, running, state, workload } from './builders.js';

const simNode = (id: string, zone: string) => node(id, 'market', { capacity: 'spot', gpus: 1, pricePerHour: 0.92, leaseId: id, pool: 'spot-v100', zone });
const notice = (kind: Notice['kind'], o: Partial<Notice> = {}): Notice => ({ id: `n-${kind}`, provider: 'market', node: 'sim-1', source: 'sim', kind, deadline: new Date(NOW + 600_000).toISOString(), receivedAt: new Date(NOW).toISOString(), ...o });
const leaseRec = (id: string): LeaseRecord => ({ type: 'lease', address: `lease.spot-v100.${id}`, provider: 'market', pool: 'spot-v100', leaseId: id, node: id, capacity: 'spot', gpus: 1, pricePerHour: 0.93, acquiredAt: 0, idempotencyKey: id });

function world(notices: Notice[], extra: { prepared?: boolean } = {}) {
  const f = fleet({ workloads: [workload('a'), workload('b')] });
  const obs = observed({
    nodes: [node('od-1', 'lab'), simNode('sim-1', 'us-east-2a'), ...(extra.prepared ? [simNode('sim-2', 'us-west-2a')] : [])],
    workloads: [instance('i-a', 'a', 'market', 'sim-1'), instance('i-b', 'b', 'market', 'sim-1')],
    leases: [lease('sim-1', { zone: 'us-east-2a', gpus: 2 }), ...(extra.prepared ? [lease('sim-2', { labels: { 'spotfleet.fleet': 'test', 'spotfleet.workload': 'a' } })] : [])],
    prices: [quote('us-east-2a', 0.92), quote('us-west-2a', 0.93), quote('od', 3.06, { capacity: 'on-demand', zone: 'od' })],
    notices,
  });
  const onSim = { provider: 'market', node: 'sim-1', capacity: 'spot' as const, pool: 'spot-v100', zone: 'us-east-2a', pricePerGpuHour: 0.92 };
  const st = state({ 'workload.a': running('a', onSim), 'workload.b': running('b', onSim), 'lease.spot-v100.sim-1': leaseRec('sim-1') });
  if (extra.prepared) st.resources['lease.spot-v100.sim-2'] = leaseRec('sim-2');
  return { f, obs, st };
}

const prepared = (o: Partial<PreparedMove> = {}): PreparedMove => ({
  noticeId: 'n-rebalance', kind: 'rebalance', response: 'prepare', binding: false, fromNode: 'sim-1', provider: 'market', pool: 'spot-v100', zone: 'us-west-2a', capacity: 'spot',
  pricePerGpuHour: 0.93, node: 'sim-2', leaseId: 'sim-2', state: 'ready', at: NOW - 60_000, until: NOW + 600_000, ...o,
});

describe('planFleet and early warnings', () => {
  it('a rebalance recommendation or a maintenance event alone moves nothing; an eviction notice moves both', () => {
    for (const kind of ['rebalance', 'maintenance'] as const) {
      const { f, obs, st } = world([notice(kind)]);
      const plan = planFleet(f, obs, st, planOpts);
      expect(plan.actions.filter((a) => a.kind === 'stop' || a.kind === 'start'), kind).toEqual([]);
      expect(plan.drift.map((d) => d.kind), kind).not.toContain('evicted');
    }
    const { f, obs, st } = world([notice('preemption')]);
    const plan = planFleet(f, obs, st, planOpts);
    expect(plan.actions.filter((a) => a.kind === 'start').map((a) => a.address).sort()).toEqual(['workload.a', 'workload.b']);
  });

  it('a due warning naming one workload moves only that one', () => {
    const due = notice('rebalance', { id: 'n-rebalance:due', detail: { due: true, workloads: 'a' } });
    const { f, obs, st } = world([notice('rebalance'), due]);
    const plan = planFleet(f, obs, st, planOpts);
    expect(plan.actions.filter((a) => a.kind === 'start').map((a) => a.address)).toEqual(['workload.a']);
  });

  it('an evicted workload goes to its prepared target (no acquire, transfer there); the lease is kept, not released, while prepared', () => {
    const { f, obs, st } = world([notice('rebalance'), notice('preemption', { id: 'n-p' })], { prepared: true });
    const rec = st.resources['workload.a'];
    if (rec?.type === 'workload') rec.prepared = prepared();
    const plan = planFleet(f, obs, st, planOpts);
    const start = plan.actions.find((a) => a.kind === 'start' && a.address === 'workload.a');
    expect(start?.kind === 'start' && start.target.node).toBe('sim-2');
    expect(plan.actions.some((a) => a.kind === 'acquire' && a.address.includes('-a'))).toBe(false);
    const tr = plan.actions.find((a) => a.kind === 'transfer' && a.address === 'workload.a');
    expect(tr?.kind === 'transfer' && tr.to.node).toBe('sim-2');
    expect(plan.changes.find((c) => c.address === 'workload.a')?.reasons.map((r) => r.text).join(' ')).toMatch(/prepared for the rebalance warning/);
    // b (nothing prepared for it) follows the fallback rule, and may not take a's prepared node.
    const sb = plan.actions.find((a) => a.kind === 'start' && a.address === 'workload.b');
    expect(sb?.kind === 'start' && sb.target.node).not.toBe('sim-2');
    expect(plan.actions.filter((a) => a.kind === 'release').map((a) => a.kind === 'release' && a.leaseId)).not.toContain('sim-2');
  });

  it('no eviction: the prepared lease is kept until the window ends, then released', () => {
    const { f, obs, st } = world([notice('rebalance')], { prepared: true });
    const rec = st.resources['workload.a'];
    if (rec?.type === 'workload') rec.prepared = prepared();
    const during = planFleet(f, obs, st, planOpts);
    expect(during.actions.filter((a) => a.kind === 'release')).toEqual([]);
    expect(during.actions.filter((a) => a.kind === 'start')).toEqual([]);
    if (rec?.type === 'workload') rec.prepared = prepared({ until: NOW - 1 });
    const after = planFleet(f, obs, st, planOpts);
    expect(after.actions.filter((a) => a.kind === 'release').map((a) => a.kind === 'release' && a.leaseId)).toEqual(['sim-2']);
  });

  it('while the acquire is under way, the lease is known by its labels and kept', () => {
    const { f, obs, st } = world([notice('rebalance')], { prepared: true });
    delete st.resources['lease.spot-v100.sim-2'];
    const rec = st.resources['workload.a'];
    if (rec?.type === 'workload') rec.prepared = prepared({ state: 'acquiring', leaseId: undefined as unknown as string, node: undefined as unknown as string });
    const plan = planFleet(f, obs, st, planOpts);
    expect(plan.actions.filter((a) => a.kind === 'release')).toEqual([]);
  });

  it('a pool/zone just preempted is priced as riskier in the options', () => {
    const { f, obs, st } = world([]);
    const captured = new Map<string, { input: WorkloadDecisionInput; decision: WorkloadDecision }>();
    planFleet(f, obs, st, { ...planOpts, captureDecisions: captured });
    const before = captured.get('a')?.input.options.find((o) => o.zone === 'us-west-2a')?.preemptionRatePerHour;
    st.poolHistory = { 'spot-v100/us-west-2a': recordPoolEvent(recordPoolEvent(undefined, 'eviction', NOW - 60_000), 'eviction', NOW - 30_000) };
    planFleet(f, obs, st, { ...planOpts, captureDecisions: captured });
    const after = captured.get('a')?.input.options.find((o) => o.zone === 'us-west-2a')?.preemptionRatePerHour ?? 0;
    expect(after).toBeGreaterThan(before ?? 0);
    expect(captured.get('a')?.input.options.find((o) => o.zone === 'us-east-2a')?.preemptionRatePerHour ?? 0).toBeLessThan(after);
  });
});
