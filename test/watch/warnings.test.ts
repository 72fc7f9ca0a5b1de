// The bookkeeping of watch's early-warning controller on a real state store: an eviction notice
// after a warning on the same node counts as the warning's follow-up; a preemption the reconcile
// found with no notice counts as unannounced; every event counts once, however often it is seen.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Notice, Observed } from '../../src/core/types.js';
import { StateRecorder } from '../../src/engine/steps.js';
import type { Plan } from '../../src/engine/types.js';
import { LocalStateStore } from '../../src/state/store.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { WarningController } from '../../src/watch/warnings.js';
import type { WatchSession } from '../../src/watch/watch-session.js';
import { fleet, node, observed, pool, running, workload } from '../engine/builders.js';

const NOW = Date.parse('2026-12-01T12:00:00Z');

async function setup() {
  const store = new LocalStateStore(mkdtempSync(join(tmpdir(), 'sf-warnctl-')), 'test');
  const recorder = new StateRecorder(store, await store.read());
  await recorder.update((s) => {
    s.resources['workload.a'] = running('a', { provider: 'lab', node: 'spot-1', capacity: 'spot', pool: 'spot-lab', zone: 'z1' });
  });
  const f = fleet({ pools: [pool('spot-lab', 'lab', 'spot', { onWarning: 'ignore' }), pool('od', 'lab', 'on-demand')], workloads: [workload('a')] });
  const session = { fleet: f, providers: new Map(), marketProviders: new Set<string>(), runtimeProviders: new Set(['lab']), bidProviders: new Set<string>(), policies: undefined } as unknown as WatchSession;
  const obs: Observed = observed({ nodes: [node('spot-1', 'lab', { capacity: 'spot', zone: 'z1' }), node('od-1', 'lab')] });
  const lines: string[] = [];
  const log = createLogger({ level: 'info', stream: { write: (l: string) => void lines.push(l) } });
  let now = NOW;
  const ctl = new WarningController({ log, session: () => session, recorder: () => recorder, observed: () => obs, moveNow: () => undefined, reconcile: () => undefined, event: () => undefined, windowMs: 30 * 60_000, now: () => now });
  return { ctl, recorder, obs, lines, advance: (ms: number) => (now += ms) };
}

const notice = (kind: Notice['kind'], id: string, at: number): Notice => ({ id, provider: 'lab', node: 'spot-1', source: 'aws', kind, deadline: new Date(at + 120_000).toISOString(), receivedAt: new Date(at).toISOString() });

describe('WarningController bookkeeping', () => {
  it('a warning, then an eviction on the node within its window: counted as followed, once', async () => {
    const { ctl, recorder, obs } = await setup();
    const w = notice('rebalance', 'w1', NOW);
    const seen = { notice: w, provider: 'lab', node: obs.nodes[0]!, seenAt: NOW, via: 'poll' as const };
    ctl.onWarning(seen, w);
    ctl.onWarning(seen, w); // seen twice
    await ctl.stop(); // waits for the answers in flight
    let h = recorder.latest.poolHistory?.['spot-lab/z1'];
    expect(h).toMatchObject({ warnings: 1, warningsFollowed: 0, evictions: 0 });
    expect((recorder.latest.resources['workload.a'] as { lastWarning?: { response: string } }).lastWarning?.response).toBe('ignore');

    const { ctl: ctl2, recorder: r2, obs: o2 } = await setup();
    ctl2.onWarning({ notice: w, provider: 'lab', node: o2.nodes[0]!, seenAt: NOW, via: 'poll' }, w);
    await new Promise((r) => setTimeout(r, 200));
    const e = notice('preemption', 'e1', NOW + 60_000);
    ctl2.onEviction(e);
    ctl2.onEviction(e);
    await ctl2.stop();
    h = r2.latest.poolHistory?.['spot-lab/z1'];
    expect(h).toMatchObject({ warnings: 1, warningsFollowed: 1, evictions: 1, unannounced: 0 });
    expect((r2.latest.resources['workload.a'] as { lastWarning?: { outcome?: string } }).lastWarning?.outcome).toBe('followed');
  });

  it('a preemption the reconcile found with no notice counts as unannounced, once', async () => {
    const { ctl, recorder, obs } = await setup();
    const plan = { actions: [{ id: 'r1', kind: 'record', address: 'workload.a', deps: [], summary: '', workload: 'a', phase: 'recovering', message: 'gone', exit: { instanceId: 'i-a', node: 'spot-1', provider: 'lab', at: NOW, outcome: 'preempted' } }] } as unknown as Plan;
    await ctl.afterReconcile({ plan, state: recorder.latest, observed: obs });
    await ctl.afterReconcile({ plan, state: recorder.latest, observed: obs });
    expect(recorder.latest.poolHistory?.['spot-lab/z1']).toMatchObject({ evictions: 1, unannounced: 1, warnings: 0 });
  });
});
