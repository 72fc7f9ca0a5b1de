// `spotfleet drill` through the built CLI: it shows the plan and asks before it moves a live
// workload (refusing without a terminal unless --auto-approve), and after the move it releases
// the spot lease the workload left, so a rehearsal leaves nothing idle that is paid for. It plans
// with the fleet's policies, as apply does: a move a mandatory policy forbids is not rehearsed. The
// checkpoint it verified is the size the cost model prices egress with from then on.
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readState, runCli, runningInstances } from './crash-helpers.js';
import { activeLeases } from './helpers.js';
import { destroyAll, tempWatchFleet } from './watch-helpers.js';

const dirs: string[] = [];
afterAll(async () => {
  const failures = await destroyAll(dirs);
  expect(failures, failures.join('\n')).toEqual([]);
}, 120_000);

const show = (r: { code: number; stdout: string; stderr: string }): string => `exit ${r.code}\n${r.stdout}\n${r.stderr}`;

describe('spotfleet drill (e2e)', () => {
  it('asks first, then moves the workload and releases the spot lease it left', async () => {
    const dir = tempWatchFleet([{ name: 'train-a' }]);
    dirs.push(dir);
    const ap = await runCli(['apply', '--auto-approve', dir], { cwd: dir, timeoutMs: 120_000 });
    expect(ap.code, show(ap)).toBe(0);
    const [before] = await runningInstances(dir);
    expect(before?.provider, 'on a bought spot lease').toBe('market');
    const leases = await activeLeases(dir);
    expect(leases.map((l) => l.node)).toEqual([before?.node]);

    // Not a terminal and no --auto-approve: it shows the plan, refuses, and nothing moves.
    const asked = await runCli(['drill', 'train-a', dir, '--deadline', '30s'], { cwd: dir });
    expect(asked.code, show(asked)).not.toBe(0);
    expect(asked.stdout).toMatch(/workload\.train-a/);
    expect(asked.stderr).toMatch(/drill needs confirmation.*--auto-approve/s);
    expect(await runningInstances(dir)).toEqual([expect.objectContaining({ id: before?.id, node: before?.node })]);

    const d = await runCli(['drill', 'train-a', dir, '--deadline', '30s', '--auto-approve'], { cwd: dir, timeoutMs: 120_000 });
    expect(d.code, show(d)).toBe(0);
    expect(d.stdout).toMatch(/Drill complete: workload\.train-a moved/);
    expect(d.stdout).toMatch(/released\s+lease\./);
    const after = await runningInstances(dir);
    expect(after).toHaveLength(1);
    expect(after[0]?.node).not.toBe(before?.node);
    expect(await activeLeases(dir), 'the spot lease it left is released').toEqual([]);
    // The size of the checkpoint it moved is learned: state, drill's report and explain agree.
    const rec = readState(dir).resources['workload.train-a'] as { lastCheckpoint?: { sizeBytes: number } };
    const bytes = rec.lastCheckpoint?.sizeBytes ?? 0;
    expect(bytes).toBeGreaterThan(0);
    const shown = `${(bytes / 1e6).toFixed(2)} MB`;
    expect(d.stdout).toContain(`Its checkpoint measured ${shown}; moves across regions are priced with that size (egress) from now on.`);
    const ex = await runCli(['explain', 'workload.train-a', dir], { cwd: dir });
    expect(ex.code, show(ex)).toBe(0);
    expect(ex.stdout).toContain(`checkpoint size ${shown} (measured: the newest verified checkpoint), for egress across regions`);
  }, 240_000);

  it('honours the fleet\'s policies: a move a mandatory policy denies is refused, and nothing moves', async () => {
    const dir = tempWatchFleet([{ name: 'train-b' }]);
    dirs.push(dir);
    const ap = await runCli(['apply', '--auto-approve', dir], { cwd: dir, timeoutMs: 120_000 });
    expect(ap.code, show(ap)).toBe(0);
    const [before] = await runningInstances(dir);
    expect(before?.provider, 'on a bought spot lease').toBe('market');
    // Beside the fleet, so loaded as its policy set: an evicted train-b may not be moved anywhere.
    const policy = join(dir, 'stay-put.yaml');
    writeFileSync(
      policy,
      [
        'apiVersion: spotfleet.dev/v1',
        'kind: PolicySet',
        'metadata: { name: stay-put }',
        'rules:',
        '  - name: train-b-stays-put',
        '    enforcement: mandatory',
        '    match: workload.name == "train-b"',
        '    deny: current.evicted && action == "move"',
        '    message: train-b is never moved off its node',
        '',
      ].join('\n'),
    );
    const d = await runCli(['drill', 'train-b', dir, '--deadline', '30s', '--auto-approve'], { cwd: dir, timeoutMs: 120_000 });
    expect(d.code, show(d)).not.toBe(0);
    expect(d.stderr).toMatch(/train-b-stays-put/);
    expect(d.stdout).not.toMatch(/Drill complete/);
    expect(await runningInstances(dir)).toEqual([expect.objectContaining({ id: before?.id, node: before?.node })]);
    rmSync(policy);
  }, 240_000);
});
