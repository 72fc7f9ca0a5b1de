// The pure planner: given spec + observed + state, the right actions with the right dependencies.
import { describe, expect, it } from 'vitest';
import { planFleet } from '../../src/engine/plan.js';
import { renderPlanJson, renderPlanMarkdown, renderPlanText } from '../../src/engine/render.js';
import type { Action } from '../../src/engine/types.js';
import { NOW, fleet, instance, lease, node, observed, planOpts, pool, quote, running, state, workload } from './builders.js';

const kinds = (actions: Action[], address: string): string[] => actions.filter((a) => a.address === address).map((a) => a.kind);
const dep = (actions: Action[], id: string): string[] => (actions.find((a) => a.id === id)?.deps ?? []).map((d) => actions.find((a) => a.id === d)?.kind ?? d);

describe('planFleet', () => {
  it('places a new workload on the cheapest spot capacity: acquire, then start', () => {
    const f = fleet({ workloads: [workload('a')] });
    const obs = observed({ nodes: [node('od-1', 'lab')], prices: [quote('us-west-2a', 0.92), quote('us-east-1a', 1.6), quote('od', 3.06, { capacity: 'on-demand', zone: 'od' })] });
    const plan = planFleet(f, obs, state(), planOpts);
    const start = plan.actions.find((a) => a.kind === 'start');
    expect(start && start.kind === 'start' && start.target.zone).toBe('us-west-2a');
    expect(dep(plan.actions, start?.id ?? '')).toEqual(['acquire']);
    expect(plan.summary).toEqual({ add: 2, change: 0, destroy: 0, pending: 0 });
    expect(plan.cost).toEqual({ beforePerHour: 0, afterPerHour: 0.92 });
  });

  it('a running, matching fleet has no changes', () => {
    const f = fleet({ workloads: [workload('a', { capacity: 'on-demand' })] });
    const obs = observed({ nodes: [node('od-1', 'lab')], workloads: [instance('i-a', 'a', 'lab', 'od-1')] });
    const plan = planFleet(f, obs, state({ 'workload.a': running('a') }), planOpts);
    expect(plan.actions).toEqual([]);
    expect(plan.summary).toEqual({ add: 0, change: 0, destroy: 0, pending: 0 });
  });

  it('moving to on-demand checkpoints, stops, transfers, starts in order, and releases the lease after the transfer', () => {
    const f = fleet({ workloads: [workload('a', { capacity: 'on-demand' })] });
    const obs = observed({
      nodes: [node('od-1', 'lab'), node('sim-1', 'market', { capacity: 'spot', gpus: 1, pricePerHour: 0.92, leaseId: 'sim-1', pool: 'spot-v100', zone: 'us-west-2a' })],
      workloads: [instance('i-a', 'a', 'market', 'sim-1')],
      leases: [lease('sim-1')],
      prices: [quote('us-west-2a', 0.92)],
    });
    const st = state({ 'workload.a': running('a', { provider: 'market', node: 'sim-1', capacity: 'spot', pool: 'spot-v100', pricePerGpuHour: 0.92 }), 'lease.spot-v100.sim-1': { type: 'lease', address: 'lease.spot-v100.sim-1', provider: 'market', pool: 'spot-v100', leaseId: 'sim-1', node: 'sim-1', capacity: 'spot', gpus: 1, pricePerHour: 0.92, acquiredAt: 0, idempotencyKey: 'k' } });
    const plan = planFleet(f, obs, st, planOpts);
    expect(kinds(plan.actions, 'workload.a')).toEqual(['checkpoint', 'stop', 'transfer', 'start']);
    const transfer = plan.actions.find((a) => a.kind === 'transfer');
    const release = plan.actions.find((a) => a.kind === 'release');
    expect(release?.deps).toContain(transfer?.id);
    expect(dep(plan.actions, transfer?.id ?? '')).toEqual(['stop']);
    const change = plan.changes.find((c) => c.address === 'workload.a');
    expect(change?.change).toBe('replace');
    expect(change?.reasons.map((r) => r.text).join(' ')).toMatch(/on-demand/);
  });

  it('an eviction notice forces a move along the fallback rule, with the checkpoint wait bounded by the deadline', () => {
    const f = fleet({ workloads: [workload('a')] });
    const obs = observed({
      nodes: [node('od-1', 'lab'), node('sim-1', 'market', { capacity: 'spot', gpus: 1, pricePerHour: 0.92, leaseId: 'sim-1', pool: 'spot-v100', zone: 'us-west-2a' })],
      workloads: [instance('i-a', 'a', 'market', 'sim-1')],
      leases: [lease('sim-1')],
      prices: [quote('us-west-2a', 0.92)],
      notices: [{ id: 'n1', provider: 'market', node: 'sim-1', source: 'sim', kind: 'preemption', deadline: new Date(NOW + 120_000).toISOString(), receivedAt: new Date(NOW).toISOString() }],
    });
    const plan = planFleet(f, obs, state({ 'workload.a': running('a', { provider: 'market', node: 'sim-1', capacity: 'spot', pool: 'spot-v100' }) }), planOpts);
    const start = plan.actions.find((a) => a.kind === 'start');
    expect(start?.kind === 'start' && start.target.capacity).toBe('on-demand');
    const ck = plan.actions.find((a) => a.kind === 'checkpoint');
    expect(ck?.kind === 'checkpoint' && ck.waitMs).toBe(100_000);
    expect(plan.drift.map((d) => d.kind)).toContain('evicted');
  });

  it('a workload removed from the spec is checkpointed and stopped', () => {
    const f = fleet({ workloads: [] });
    const obs = observed({ nodes: [node('od-1', 'lab')], workloads: [instance('i-a', 'a', 'lab', 'od-1')] });
    const plan = planFleet(f, obs, state({ 'workload.a': running('a') }), planOpts);
    expect(kinds(plan.actions, 'workload.a')).toEqual(['checkpoint', 'stop']);
    expect(plan.summary.destroy).toBe(1);
  });

  it('a duplicate instance is stopped, an unmanaged one adopted, a vanished lease forgotten', () => {
    const f = fleet({ workloads: [workload('a', { capacity: 'on-demand' }), workload('b', { capacity: 'on-demand' })] });
    const obs = observed({
      nodes: [node('od-1', 'lab')],
      workloads: [instance('i-a', 'a', 'lab', 'od-1'), instance('i-a2', 'a', 'lab', 'od-1', { startedAt: '2026-11-23T00:30:00.000Z' }), instance('i-b', 'b', 'lab', 'od-1')],
    });
    const st = state({ 'workload.a': running('a'), 'lease.spot-v100.gone': { type: 'lease', address: 'lease.spot-v100.gone', provider: 'market', pool: 'spot-v100', leaseId: 'gone', capacity: 'spot', gpus: 1, pricePerHour: 1, acquiredAt: 0, idempotencyKey: 'k' } });
    const plan = planFleet(f, obs, st, planOpts);
    expect(plan.actions.find((a) => a.kind === 'stop')).toMatchObject({ instanceId: 'i-a2', duplicate: true });
    expect(plan.actions.find((a) => a.kind === 'adopt')).toMatchObject({ address: 'workload.b', instanceId: 'i-b' });
    expect(plan.actions.find((a) => a.kind === 'forget')?.address).toBe('lease.spot-v100.gone');
    expect(plan.drift.map((d) => d.kind).sort()).toEqual(['duplicate', 'unmanaged', 'vanished']);
  });

  it('a spec change (GPUs) restarts the workload from its checkpoint', () => {
    const f = fleet({ workloads: [workload('a', { capacity: 'on-demand', gpus: 2, specHash: 'h-new' })] });
    const obs = observed({ nodes: [node('od-1', 'lab')], workloads: [instance('i-a', 'a', 'lab', 'od-1')] });
    const plan = planFleet(f, obs, state({ 'workload.a': running('a') }), planOpts);
    expect(kinds(plan.actions, 'workload.a')).toEqual(['checkpoint', 'stop', 'start']);
    expect(plan.changes.find((c) => c.address === 'workload.a')?.reasons[0]?.text).toMatch(/spec changed/);
  });

  it('--target keeps only the targeted address and what it depends on', () => {
    const f = fleet({ workloads: [workload('a'), workload('b')] });
    const obs = observed({ nodes: [node('od-1', 'lab')], prices: [quote('us-west-2a', 0.92)] });
    const plan = planFleet(f, obs, state(), { ...planOpts, targets: ['workload.b'] });
    // The lease's address comes from its idempotency key (workload, incarnation, generation): the
    // same address in the plan and, once bought, in the state.
    const addrs = plan.actions.map((a) => a.address).sort();
    expect(addrs).toHaveLength(2);
    expect(addrs[0]).toMatch(/^lease\.spot-v100\.b-s\d+-g1$/);
    expect(addrs[1]).toBe('workload.b');
    // The cost line counts only what the targeted plan changes: b's placement, not a's.
    const all = planFleet(f, obs, state(), planOpts);
    const bAfter = all.changes.find((c) => c.address === 'workload.b')?.after?.pricePerHour ?? NaN;
    expect(all.cost.afterPerHour).toBeGreaterThan(bAfter);
    expect(plan.cost).toEqual({ beforePerHour: 0, afterPerHour: bAfter });
  });

  it('keeps a warm standby: acquires a missing one, keeps an idle one instead of releasing it', () => {
    const pools = [pool('spot-v100', 'market', 'spot', { maxPricePerHour: 2 }), pool('od-market', 'market', 'on-demand', { warmStandby: 1 })];
    const f = fleet({ pools, workloads: [workload('a', { capacity: 'on-demand', critical: false })] });
    const prices = [quote('us-west-2a', 0.92), quote('od', 3.06, { capacity: 'on-demand', zone: 'od' })];
    const fresh = planFleet(f, observed({ prices }), state(), planOpts);
    const standby = fresh.actions.filter((a) => a.kind === 'acquire' && a.address.startsWith('lease.od-market.standby-'));
    expect(standby).toHaveLength(1);
    expect(fresh.changes.find((c) => c.address === standby[0]?.address)?.reasons[0]?.rule).toBe('warm-standby');
    // An idle leased node in that pool is the standby: nothing to acquire, nothing to release.
    const idle = node('od-9', 'market', { capacity: 'on-demand', gpus: 1, pricePerHour: 3.06, leaseId: 'od-9', pool: 'od-market', zone: 'od' });
    const withIdle = planFleet(
      fleet({ pools, workloads: [] }),
      observed({ prices, nodes: [idle], leases: [lease('od-9', { pool: 'od-market', capacity: 'on-demand', zone: 'od', pricePerHour: 3.06 })] }),
      state({ 'lease.od-market.od-9': { type: 'lease', address: 'lease.od-market.od-9', provider: 'market', pool: 'od-market', leaseId: 'od-9', node: 'od-9', capacity: 'on-demand', gpus: 1, pricePerHour: 3.06, acquiredAt: 0, idempotencyKey: 'k' } }),
      planOpts,
    );
    expect(withIdle.actions).toEqual([]);
  });

  describe('pools[].idleRelease', () => {
    const MIN = 60_000;
    const idleNode = node('sim-1', 'market', { capacity: 'spot', gpus: 1, pricePerHour: 0.92, leaseId: 'sim-1', pool: 'spot-v100', zone: 'us-west-2a' });
    const leaseRec = { type: 'lease' as const, address: 'lease.spot-v100.sim-1', provider: 'market', pool: 'spot-v100', leaseId: 'sim-1', node: 'sim-1', capacity: 'spot' as const, gpus: 1, pricePerHour: 0.92, acquiredAt: NOW - 60 * MIN, idempotencyKey: 'k' };
    const pools = (idleRelease?: number) => [pool('spot-v100', 'market', 'spot', { maxPricePerHour: 2, ...(idleRelease !== undefined ? { idleReleaseMs: idleRelease } : {}) }), pool('od-v100', 'lab', 'on-demand')];
    /** The lease's node ran a job that ended `endedAgo` ms ago (the ledger keeps it after the record is gone). */
    const stateWithRunEnded = (endedAgo: number) => ({ ...state({ 'lease.spot-v100.sim-1': leaseRec }), ledger: [{ workload: 'gone', capacity: 'spot' as const, from: NOW - 50 * MIN, to: NOW - endedAgo, gpus: 1, pricePerGpuHour: 0.92, onDemandPricePerGpuHour: 3.06, pool: 'spot-v100', node: 'sim-1' }] });
    const obs = observed({ nodes: [node('od-1', 'lab'), idleNode], leases: [lease('sim-1')], prices: [quote('us-west-2a', 0.92)] });
    const releases = (actions: Action[]) => actions.filter((a) => a.kind === 'release').map((a) => a.address);

    it('by default an idle lease is released at once', () => {
      const plan = planFleet(fleet({ pools: pools(), workloads: [] }), obs, stateWithRunEnded(1 * MIN), planOpts);
      expect(releases(plan.actions)).toEqual(['lease.spot-v100.sim-1']);
      expect(plan.summary.destroy).toBe(1);
    });

    it('keeps an idle lease until idleRelease has passed since its last run, then releases it', () => {
      const kept = planFleet(fleet({ pools: pools(10 * MIN), workloads: [] }), obs, stateWithRunEnded(4 * MIN), planOpts);
      expect(kept.actions).toEqual([]);
      expect(kept.summary).toEqual({ add: 0, change: 0, destroy: 0, pending: 0 });
      const change = kept.changes.find((c) => c.address === 'lease.spot-v100.sim-1');
      expect(change).toMatchObject({ change: 'no-op', actions: [] });
      expect(change?.reasons[0]?.text).toBe("nothing runs on it since 2026-11-23T00:56:00.000Z; kept for the pool's idleRelease (10m), released in 6m");
      expect(renderPlanText(kept, { color: false })).toContain('No changes.');
      const late = planFleet(fleet({ pools: pools(10 * MIN), workloads: [] }), obs, stateWithRunEnded(11 * MIN), planOpts);
      expect(releases(late.actions)).toEqual(['lease.spot-v100.sim-1']);
      // Without any run on record, the lease has been idle since it was acquired (an hour ago).
      const never = planFleet(fleet({ pools: pools(10 * MIN), workloads: [] }), obs, state({ 'lease.spot-v100.sim-1': leaseRec }), planOpts);
      expect(releases(never.actions)).toEqual(['lease.spot-v100.sim-1']);
    });

    it('a lease this plan moves the work off is kept for idleRelease; destroy releases it at once', () => {
      const moving = observed({ ...obs, workloads: [instance('i-a', 'a', 'market', 'sim-1')] });
      const st = state({ 'workload.a': running('a', { provider: 'market', node: 'sim-1', capacity: 'spot', pool: 'spot-v100', pricePerGpuHour: 0.92 }), 'lease.spot-v100.sim-1': leaseRec });
      const f = fleet({ pools: pools(10 * MIN), workloads: [workload('a', { capacity: 'on-demand' })] });
      const plan = planFleet(f, moving, st, planOpts);
      expect(kinds(plan.actions, 'workload.a')).toEqual(['checkpoint', 'stop', 'transfer', 'start']);
      expect(releases(plan.actions)).toEqual([]);
      expect(plan.changes.find((c) => c.address === 'lease.spot-v100.sim-1')?.reasons[0]?.text).toMatch(/since 2026-11-23T01:00:00\.000Z; .*released in 10m$/);
      const destroy = planFleet(f, moving, st, { ...planOpts, destroy: true });
      expect(releases(destroy.actions)).toEqual(['lease.spot-v100.sim-1']);
    });

    it('a workload that needs capacity takes the kept idle node instead of buying another', () => {
      const f = fleet({ pools: pools(10 * MIN), workloads: [workload('b', { capacity: 'spot' })] });
      const plan = planFleet(f, obs, stateWithRunEnded(4 * MIN), planOpts);
      expect(plan.actions.filter((a) => a.kind === 'acquire')).toEqual([]);
      expect(plan.actions.find((a) => a.kind === 'start')).toMatchObject({ target: { node: 'sim-1' } });
      expect(releases(plan.actions)).toEqual([]);
    });
  });

  it('is deterministic: the same inputs render the same bytes', () => {
    const f = fleet({ workloads: [workload('b'), workload('a')] });
    const obs = observed({ nodes: [node('od-1', 'lab')], prices: [quote('us-west-2a', 0.92)] });
    const a = planFleet(f, obs, state(), planOpts);
    const b = planFleet(f, obs, state(), planOpts);
    expect(renderPlanJson(a)).toBe(renderPlanJson(b));
    expect(a.changes.map((c) => c.address)).toEqual([...a.changes.map((c) => c.address)].sort());
  });
});

describe('plan rendering', () => {
  // One plan with every action kind: acquire+start (new), checkpoint/stop/transfer/start (move),
  // checkpoint/stop (removed), stop (duplicate), adopt, release, forget.
  const f = fleet({ workloads: [workload('new'), workload('mover', { capacity: 'on-demand' }), workload('dup', { capacity: 'on-demand' }), workload('stray', { capacity: 'on-demand' })] });
  const obs = observed({
    nodes: [node('od-1', 'lab', { gpus: 8, pricePerHour: 24.48 }), node('sim-1', 'market', { capacity: 'spot', gpus: 1, pricePerHour: 0.92, leaseId: 'sim-1', pool: 'spot-v100', zone: 'us-west-2a' }), node('sim-9', 'market', { capacity: 'spot', gpus: 1, pricePerHour: 0.95, leaseId: 'sim-9', pool: 'spot-v100', zone: 'us-west-2b' })],
    workloads: [
      instance('i-mover', 'mover', 'market', 'sim-1'),
      instance('i-old', 'old', 'lab', 'od-1'),
      instance('i-dup', 'dup', 'lab', 'od-1'),
      instance('i-dup2', 'dup', 'lab', 'od-1', { startedAt: '2026-11-23T00:40:00.000Z' }),
      instance('i-stray', 'stray', 'lab', 'od-1'),
    ],
    leases: [lease('sim-1'), lease('sim-9', { zone: 'us-west-2b', pricePerHour: 0.95 })],
    prices: [quote('us-west-2a', 0.92), quote('us-west-2b', 0.95)],
  });
  const st = state({
    'workload.mover': running('mover', { provider: 'market', node: 'sim-1', capacity: 'spot', pool: 'spot-v100', instanceId: 'i-mover', pricePerGpuHour: 0.92 }),
    'workload.old': running('old', { instanceId: 'i-old' }),
    'workload.dup': running('dup', { instanceId: 'i-dup' }),
    'lease.spot-v100.sim-1': { type: 'lease', address: 'lease.spot-v100.sim-1', provider: 'market', pool: 'spot-v100', leaseId: 'sim-1', node: 'sim-1', capacity: 'spot', gpus: 1, pricePerHour: 0.92, acquiredAt: 0, idempotencyKey: 'k1' },
    'lease.spot-v100.gone': { type: 'lease', address: 'lease.spot-v100.gone', provider: 'market', pool: 'spot-v100', leaseId: 'gone', capacity: 'spot', gpus: 1, pricePerHour: 1, acquiredAt: 0, idempotencyKey: 'k2' },
  });
  const plan = planFleet(f, obs, st, planOpts);

  it('has every action kind', () => {
    expect(new Set(plan.actions.map((a) => a.kind))).toEqual(new Set(['acquire', 'start', 'checkpoint', 'stop', 'transfer', 'release', 'adopt', 'forget']));
  });
  it('human text', async () => {
    await expect(renderPlanText(plan, { color: false })).toMatchFileSnapshot('__snapshots__/plan-every-kind.txt');
  });
  it('JSON', async () => {
    const json = renderPlanJson(plan);
    expect(JSON.parse(json).format_version).toBe('1.0');
    await expect(json).toMatchFileSnapshot('__snapshots__/plan-every-kind.json');
  });
  it('markdown', async () => {
    await expect(renderPlanMarkdown(plan)).toMatchFileSnapshot('__snapshots__/plan-every-kind.md');
  });
});

describe('the checkpoint size the cost model prices egress with', () => {
  it("is the newest verified checkpoint's, measured (a drill records one), over the spec's checkpoint.sizeGB", () => {
    const spec = workload('a', { capacity: 'on-demand' });
    const f = fleet({ workloads: [{ ...spec, checkpoint: { ...(spec.checkpoint as NonNullable<typeof spec.checkpoint>), sizeGB: 100 } }] });
    const obs = observed({ nodes: [node('od-1', 'lab')], workloads: [instance('i-a', 'a', 'lab', 'od-1')] });
    const lastCheckpoint = { node: 'od-1', workload: 'a', path: '/checkpoints/step-40', mtime: new Date(NOW - 60_000).toISOString(), sizeBytes: 2.5e9 };
    const captured = new Map<string, { input: { checkpointSizeGB?: number } }>();
    planFleet(f, obs, state({ 'workload.a': running('a', { lastCheckpoint }) }), { ...planOpts, captureDecisions: captured as never });
    expect(captured.get('a')?.input.checkpointSizeGB).toBe(2.5);
    // No verified checkpoint yet: the spec's size stands (the input carries none of its own).
    const fresh = new Map<string, { input: { checkpointSizeGB?: number } }>();
    planFleet(f, obs, state({ 'workload.a': running('a') }), { ...planOpts, captureDecisions: fresh as never });
    expect(fresh.get('a')?.input.checkpointSizeGB).toBeUndefined();
  });

  it('not running, the checkpoint is priced from the region of the node that holds it', () => {
    const f = fleet({ workloads: [workload('a')] });
    const holder = node('sim-1', 'market', { capacity: 'spot', zone: 'us-east-1a', leaseId: 'sim-1', pool: 'spot-v100' });
    const obs = observed({ nodes: [node('od-1', 'lab'), holder], leases: [lease('sim-1', { zone: 'us-east-1a' })], prices: [quote('us-west-2a', 0.92), quote('us-east-1a', 1.6, { available: false })] });
    const lastCheckpoint = { node: 'sim-1', workload: 'a', path: '/checkpoints/step-40', mtime: new Date(NOW - 60_000).toISOString(), sizeBytes: 50e9 };
    const rec = running('a', { phase: 'pending', provider: 'market', node: 'sim-1', capacity: 'spot', pool: 'spot-v100', zone: 'us-east-1a', lastCheckpoint });
    delete rec.instanceId;
    const captured = new Map<string, { input: { checkpointRegion?: string; checkpointSizeGB?: number }; decision: { reasons: { numbers?: Record<string, number> }[] } }>();
    planFleet(f, obs, state({ 'workload.a': rec }), { ...planOpts, captureDecisions: captured as never });
    expect(captured.get('a')?.input).toMatchObject({ checkpointRegion: 'us-east-1', checkpointSizeGB: 50 });
    // Spot in us-west-2 means carrying 50 GB out of us-east-1: $0.02/GB.
    const priced = captured.get('a')?.decision.reasons.find((r) => r.numbers?.egressUsd !== undefined);
    expect(priced?.numbers?.egressUsd).toBe(1);
  });
});
