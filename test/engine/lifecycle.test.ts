// What the providers' report says about each recorded instance (liveEnds): the same judgement the
// planner makes, shared with `status`, and never a verdict for a provider that could not be read.
import { describe, expect, it } from 'vitest';
import { liveEnds, unreadableProviders } from '../../src/engine/lifecycle.js';
import { instance, node, observed, running } from './builders.js';

describe('liveEnds', () => {
  const recs = [running('job'), running('train', { node: 'od-2' }), running('gone', { node: 'od-3' }), running('far', { provider: 'remote', node: 'r-1' })];

  it('judges each recorded instance that no longer runs, and leaves running ones out', () => {
    const obs = observed({
      nodes: [node('od-1', 'lab'), node('od-2', 'lab'), node('od-3', 'lab'), node('r-1', 'remote')],
      workloads: [instance('i-job', 'job', 'lab', 'od-1', { state: 'exited', exitCode: 0 }), instance('i-train', 'train', 'lab', 'od-2'), instance('i-far', 'far', 'remote', 'r-1', { state: 'exited', exitCode: 3 })],
    });
    const ends = liveEnds(recs, obs, []);
    expect(ends.get('job')).toMatchObject({ verdict: 'succeeded' });
    expect(ends.has('train')).toBe(false);
    expect(ends.get('gone')).toMatchObject({ verdict: 'preempted', instance: undefined });
    expect(ends.get('far')).toMatchObject({ verdict: 'failed', instance: { exitCode: 3 } });
  });

  it('a provider whose workloads or nodes could not be read is unknown, not ended', () => {
    const obs = observed({
      nodes: [node('od-1', 'lab'), node('od-2', 'lab'), node('od-3', 'lab')],
      workloads: [instance('i-train', 'train', 'lab', 'od-2')],
      unknown: [{ provider: 'remote', capability: 'runtime.list', error: 'connection refused' }],
    });
    expect(unreadableProviders(obs)).toEqual(new Set(['remote']));
    const ends = liveEnds(recs, obs, []);
    expect(ends.get('far')).toBe('unknown');
    expect(ends.get('job')).toMatchObject({ verdict: 'preempted' });
    // Only the listings make a provider unreadable: a failed price read does not.
    expect(unreadableProviders(observed({ unknown: [{ provider: 'remote', capability: 'capacity.prices', error: 'x' }] }))).toEqual(new Set());
  });

  it('an instance spotfleet recorded it was stopping is stopped, not preempted', () => {
    const obs = observed({ nodes: [node('od-1', 'lab')] });
    const ends = liveEnds([running('job')], obs, [{ id: 'op-1', action: 'stop', address: 'workload.job', startedAt: 0, pid: 1, data: { instance: 'i-job' } }]);
    expect(ends.get('job')).toMatchObject({ verdict: 'stopped' });
  });
});
