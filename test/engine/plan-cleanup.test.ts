// Exited instances of ours are removed from their nodes a day after they ended, but each workload's
// newest: the plan shows it (never "No changes" while apply would remove something), and only
// where the runtime can remove.
import { describe, expect, it } from 'vitest';
import { EXITED_KEPT_MS, planFleet } from '../../src/engine/plan.js';
import { renderPlanText } from '../../src/engine/render.js';
import { planHasChanges, type Action, type RemoveAction } from '../../src/engine/types.js';
import { NOW, fleet, instance, node, observed, planOpts, running, state, workload } from './builders.js';

const H = 3_600_000;
const opts = { ...planOpts, removableProviders: new Set(['lab']) };
const removed = (actions: Action[]): string[] => actions.filter((a): a is RemoveAction => a.kind === 'remove').map((a) => a.instanceId).sort();
/** An exited instance of workload `wl` that ended `hoursAgo` before NOW. */
const exited = (id: string, wl: string, hoursAgo: number, o: Parameters<typeof instance>[4] = {}): ReturnType<typeof instance> =>
  instance(id, wl, 'lab', 'od-1', { state: 'exited', exitCode: 0, startedAt: new Date(NOW - (hoursAgo + 1) * H).toISOString(), endedAt: new Date(NOW - hoursAgo * H).toISOString(), ...o });

describe('exited instances: kept a day, and the newest while the record stays', () => {
  const f = fleet({ workloads: [workload('a', { capacity: 'on-demand' })] });
  const day = EXITED_KEPT_MS / H;
  const old = [exited('i-1', 'a', day + 3), exited('i-2', 'a', day + 2, { exitCode: 137 })];

  it('a running workload with two instances that exited over a day ago: the older is removed, the newest kept, and the plan says so', () => {
    expect(day).toBe(24);
    const obs = observed({ nodes: [node('od-1', 'lab')], workloads: [instance('i-a', 'a', 'lab', 'od-1'), ...old] });
    const plan = planFleet(f, obs, state({ 'workload.a': running('a') }), opts);
    expect(removed(plan.actions)).toEqual(['i-1']);
    const remove = plan.actions.find((a) => a.kind === 'remove') as RemoveAction;
    expect(remove).toMatchObject({ address: 'workload.a', provider: 'lab', node: 'od-1', deps: [] });
    const change = plan.changes.find((c) => c.address === 'workload.a');
    expect(change?.change).toBe('update');
    expect(change?.actions).toEqual([remove.id]);
    expect(change?.reasons.at(-1)?.text).toBe('remove 1 instance that exited more than 1d ago (kept: the newest, i-2 on od-1)');
    expect(planHasChanges(plan)).toBe(true);
    const text = renderPlanText(plan, { color: false });
    expect(text).not.toContain('No changes');
    expect(text).toContain('# cleanup: remove 1 instance that exited more than 1d ago');
    expect(plan.summary).toEqual({ add: 0, change: 1, destroy: 0, pending: 0 });
  });

  it('instances that exited within the day stay (their logs with them): no changes', () => {
    const obs = observed({ nodes: [node('od-1', 'lab')], workloads: [instance('i-a', 'a', 'lab', 'od-1'), exited('i-1', 'a', 23), exited('i-2', 'a', 1), exited('i-3', 'a', 0.1)] });
    const plan = planFleet(f, obs, state({ 'workload.a': running('a') }), opts);
    expect(plan.actions).toEqual([]);
    expect(planHasChanges(plan)).toBe(false);
  });

  it('the instance the record names is kept even when another ended later; its exit is recorded in the same change', () => {
    const obs = observed({ nodes: [node('od-1', 'lab')], workloads: [exited('i-1', 'a', 30), exited('i-2', 'a', 26), exited('i-0', 'a', 40)] });
    const plan = planFleet(f, obs, state({ 'workload.a': running('a', { instanceId: 'i-1' }) }), opts);
    expect(removed(plan.actions)).toEqual(['i-0']);
    expect(plan.actions.filter((a) => a.address === 'workload.a').map((a) => a.kind).sort()).toEqual(['record', 'remove']);
  });

  it('a finished job keeps its newest exited instance for good; once the older one is gone, no changes', () => {
    const st = state({ 'workload.a': running('a', { phase: 'succeeded', instanceId: 'i-2', finishedAt: NOW - 26 * H, lastExit: { instanceId: 'i-2', node: 'od-1', provider: 'lab', at: NOW - 26 * H, outcome: 'succeeded', code: 0 } }) });
    const first = planFleet(f, observed({ nodes: [node('od-1', 'lab')], workloads: old }), st, opts);
    expect(removed(first.actions)).toEqual(['i-1']);
    expect(first.changes.find((c) => c.address === 'workload.a')?.reasons.map((r) => r.rule)).toEqual(['lifecycle', 'cleanup']);
    const after = planFleet(f, observed({ nodes: [node('od-1', 'lab')], workloads: [old[1] as ReturnType<typeof instance>] }), st, opts);
    expect(after.actions).toEqual([]);
    expect(planHasChanges(after)).toBe(false);
  });

  it('a workload removed from the spec keeps none past the day (its record goes); destroy keeps the newest, like its record', () => {
    const none = fleet({ workloads: [] });
    const obs = observed({ nodes: [node('od-1', 'lab')], workloads: [...old, exited('i-3', 'a', 2)] });
    const st = state({ 'workload.a': running('a', { phase: 'succeeded', instanceId: 'i-3' }) });
    const plan = planFleet(none, obs, st, opts);
    expect(removed(plan.actions)).toEqual(['i-1', 'i-2']);
    expect(plan.changes.find((c) => c.address === 'workload.a')?.change).toBe('delete');
    expect(plan.actions.filter((a) => a.address === 'workload.a').map((a) => a.kind).sort()).toEqual(['forget', 'remove', 'remove']);
    const destroy = planFleet(f, observed({ nodes: [node('od-1', 'lab')], workloads: old }), st, { ...opts, destroy: true });
    expect(removed(destroy.actions)).toEqual(['i-1']);
  });

  it('instances of a workload in neither the spec nor the state go once their day is over', () => {
    const obs = observed({ nodes: [node('od-1', 'lab')], workloads: [exited('i-x', 'ghost', 25), exited('i-y', 'ghost', 5)] });
    const plan = planFleet(f, obs, state({ 'workload.a': running('a') }), opts);
    expect(removed(plan.actions)).toEqual(['i-x']);
    const change = plan.changes.find((c) => c.address === 'workload.ghost');
    expect(change?.change).toBe('delete');
    expect(change?.reasons[0]?.text).toContain('ghost is in neither the spec nor the state');
    expect(plan.summary.destroy).toBe(1);
  });

  it('not where the runtime cannot remove, not without a refresh, not in an emergency plan (no removable providers given)', () => {
    const obs = observed({ nodes: [node('od-1', 'lab')], workloads: [instance('i-a', 'a', 'lab', 'od-1'), ...old] });
    const st = state({ 'workload.a': running('a') });
    expect(removed(planFleet(f, obs, st, { ...opts, removableProviders: new Set(['market']) }).actions)).toEqual([]);
    expect(removed(planFleet(f, obs, st, { ...opts, refreshSkipped: true }).actions)).toEqual([]);
    expect(removed(planFleet(f, obs, st, planOpts).actions)).toEqual([]);
  });

  it('a targeted plan removes only for its targets', () => {
    const two = fleet({ workloads: [workload('a', { capacity: 'on-demand' }), workload('b', { capacity: 'on-demand' })] });
    const obs = observed({
      nodes: [node('od-1', 'lab', { gpus: 2 })],
      workloads: [instance('i-a', 'a', 'lab', 'od-1'), instance('i-b', 'b', 'lab', 'od-1'), ...old, exited('i-b1', 'b', 30), exited('i-b2', 'b', 29)],
    });
    const plan = planFleet(two, obs, state({ 'workload.a': running('a'), 'workload.b': running('b') }), { ...opts, targets: ['workload.b'] });
    expect(removed(plan.actions)).toEqual(['i-b1']);
  });
});
