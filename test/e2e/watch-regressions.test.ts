// Regressions of `spotfleet watch` found by the e2e suite, each a minimal reproduction through the
// built CLI, kept so the bug stays fixed.
//
// 1. A pending record written by a watch that was killed (SIGKILL) is never cleared when the next
//    watch (or `apply`) resolves that step another way. Reproduction: one trainer on spot, a notice
//    on its node, a watch killed by the engine's crash hook at side-effect boundary 11 (the
//    transfer of the migration in flight: pending `transfer:train-a:3`). The restarted watch
//    re-plans: the workload is stopped, so it is placed afresh (acquire, transfer, start, release)
//    with new action ids; the old record's id never comes round again, and nothing else removes
//    records of a dead pid. `apply` and `plan` (exit 0) leave it too. Suspected cause:
//    src/engine/apply.ts only removes a pending record by the id of an action it runs
//    (`withPending`); nothing in plan/reconcile settles stale records of a dead holder (the
//    recorded pid is not alive) after the refresh has observed the outcome.
// 2. Watch logged "spec changed" and reconciled for every file written under the fleet's folder,
//    container runtime and checkpoint folders included: the spec watcher watched the whole tree.
//    It now watches the spec's files and the policy files the spec names, and nothing else.
// 3. A watch that hears a notice before its first reconcile (its monitor starts from the recorded
//    state) ran the emergency migration with the node as the state recorded it, without the
//    provider's own facts: "node market/sim-... has no checkpoint folder on this machine", and the
//    move waited for the reconcile. It now asks the provider for a node known only from the state.
import { appendFileSync, copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readState, runCli } from './crash-helpers.js';
import { destroyAll, killAllWatches, simEvict, startWatch, tempWatchFleet } from './watch-helpers.js';
import { activeLeases } from './helpers.js';

const dirs: string[] = [];
afterAll(async () => {
  await killAllWatches();
  const failures = await destroyAll(dirs);
  expect(failures, failures.join('\n')).toEqual([]);
}, 60_000);

describe('spotfleet watch: known bugs (e2e)', () => {
  it('a pending record left by a watch killed mid-migration is cleared after recovery', async () => {
    const dir = tempWatchFleet([{ name: 'train-a' }]);
    dirs.push(dir);
    const setup = await runCli(['apply', '--auto-approve', dir], { cwd: dir });
    expect(setup.code, setup.stdout + setup.stderr).toBe(0);
    const st0 = readState(dir);
    const node = Object.values(st0.resources).find((r) => r.type === 'lease') as { leaseId?: string } | undefined;
    expect(node?.leaseId).toBeDefined();
    await simEvict(dir, node?.leaseId as string, '60s');

    // Killed right after the copy, before its pending record is cleared (a fixed boundary count
    // lands elsewhere as soon as the watch writes the state once more or once less before it).
    const w1 = startWatch(dir, { env: { SPOTFLEET_TEST_CRASH_AFTER: 'transfer' } });
    const r1 = await w1.exited;
    expect(r1.signal, w1.tail()).toBe('SIGKILL');
    const stale = readState(dir).pending;
    expect(stale.length, 'the crash left a pending record (the transfer in flight)').toBeGreaterThan(0);

    const w2 = startWatch(dir);
    await w2.waitFor((l) => l.msg === 'start ok' && l.address === 'workload.train-a', { timeoutMs: 60_000, what: 'train-a started again' });
    await w2.waitFor((l) => l.action === 'reconcile' && l.msg === 'reconciled', { timeoutMs: 30_000, what: 'the reconcile' });
    w2.signal('SIGTERM');
    expect((await w2.exited).code).toBe(0);
    const apply = await runCli(['apply', '--auto-approve', dir], { cwd: dir });
    expect(apply.code).toBe(0);
    expect((await activeLeases(dir)).length).toBeLessThanOrEqual(1);

    const left = readState(dir).pending;
    expect(left, `stale pending records after the restarted watch and an apply converged: ${JSON.stringify(left)}`).toEqual([]);
  }, 120_000);

  it('a notice heard before the first reconcile is moved by the emergency migration itself', async () => {
    const dir = tempWatchFleet([{ name: 'train-a' }]);
    dirs.push(dir);
    const setup = await runCli(['apply', '--auto-approve', dir], { cwd: dir });
    expect(setup.code, setup.stdout + setup.stderr).toBe(0);
    const lease = Object.values(readState(dir).resources).find((r) => r.type === 'lease') as { leaseId?: string } | undefined;
    await simEvict(dir, lease?.leaseId as string, '60s');
    const w = startWatch(dir);
    const [moved] = await w.waitFor((l) => l.msg === 'migration complete' && l.address === 'workload.train-a', { timeoutMs: 60_000, what: 'the migration' });
    expect(moved, w.tail()).toBeDefined();
    // The emergency path did it: its steps are logged as such, and nothing failed on the way.
    expect(w.find((l) => l.migration === 'emergency' && l.msg === 'checkpoint ok').length, w.tail()).toBe(1);
    expect(w.find((l) => l.level === 'error'), w.tail()).toEqual([]);
    w.signal('SIGTERM');
    expect((await w.exited).code).toBe(0);
  }, 120_000);

  it('hears the spec and the policy files it names, not what runs write under the fleet folder', async () => {
    const dir = tempWatchFleet([{ name: 'train-a' }]);
    dirs.push(dir);
    mkdirSync(join(dir, 'rules'));
    const policy = join(dir, 'rules', 'team.yaml');
    copyFileSync(resolve(import.meta.dirname, '../../policies/default.yaml'), policy);
    writeFileSync(join(dir, 'fleet.yaml'), `${readFileSync(join(dir, 'fleet.yaml'), 'utf8').trimEnd()}\npolicies: [./rules/team.yaml]\n`);
    const w = startWatch(dir);
    await w.waitFor((l) => l.action === 'reconcile' && l.msg === 'reconciled', { timeoutMs: 60_000, what: 'the first reconcile' });

    let from = w.lines.length;
    for (let i = 0; i < 4; i++) {
      mkdirSync(join(dir, 'checkpoints', `train-${i}`), { recursive: true });
      writeFileSync(join(dir, 'checkpoints', `train-${i}`, 'ckpt.json'), '{"step":1}');
      mkdirSync(join(dir, 'runtime', `c${i}`), { recursive: true });
      writeFileSync(join(dir, 'runtime', `c${i}`, 'config.yaml'), 'x: 1\n');
      writeFileSync(join(dir, `notes-${i}.txt`), 'x');
    }
    await new Promise((r) => setTimeout(r, 2500));
    expect(w.find((l) => l.action === 'spec-change', from), w.tail()).toEqual([]);

    from = w.lines.length;
    appendFileSync(policy, '# tightened\n');
    const [changed] = await w.waitFor((l) => l.action === 'spec-change', { from, timeoutMs: 15_000, what: 'the policy change' });
    expect(changed?.paths).toEqual([policy]);
    await w.waitFor((l) => l.action === 'reconcile' && l.msg === 'reconciled', { from, timeoutMs: 30_000, what: 'the reconcile it triggered' });
    w.signal('SIGTERM');
    expect((await w.exited).code).toBe(0);
  }, 120_000);
});
