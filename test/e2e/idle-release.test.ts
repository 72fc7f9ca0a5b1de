// pools[].idleRelease through the built CLI, on the quickstart providers (the sim market's leases,
// real trainer processes): with it, a lease nothing runs on any more (the workload was removed) is
// kept, and plan says why and when it goes; without it (the default) the next apply releases it;
// destroy never keeps one.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { activeLeases, cli, runningByWorkload, tempFleet, writeFleet } from './helpers.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) cli(['destroy', '--auto-approve', d], { cwd: d });
});

/** The fleet file with `idleRelease` set on the sim market's spot pool. */
function withIdleRelease(dir: string, value: string): void {
  const p = join(dir, 'fleet.yaml');
  const text = readFileSync(p, 'utf8');
  const next = text.replace('{ name: spot-v100, provider: market, capacity: spot, gpuModel: V100, maxPricePerHour: 2.0 }', `{ name: spot-v100, provider: market, capacity: spot, gpuModel: V100, maxPricePerHour: 2.0, idleRelease: ${value} }`);
  expect(next).not.toBe(text);
  writeFileSync(p, next);
}

describe('pools[].idleRelease through the CLI', () => {
  it('keeps an idle lease for idleRelease and plan says so; without it the lease is released at once', async () => {
    const dir = tempFleet([{ name: 'job', capacity: 'spot' }]);
    dirs.push(dir);
    withIdleRelease(dir, '30m');
    const first = cli(['apply', '--auto-approve', dir], { cwd: dir });
    expect(first.code, first.stderr).toBe(0);
    const leases = await activeLeases(dir);
    expect(leases).toHaveLength(1);
    expect((await runningByWorkload(dir)).get('job')).toHaveLength(1);

    // The workload goes away: its lease stays, idle, for the pool's idleRelease.
    writeFleet(dir, []);
    withIdleRelease(dir, '30m');
    const removed = cli(['apply', '--auto-approve', dir], { cwd: dir });
    expect(removed.code, removed.stderr).toBe(0);
    expect(removed.stdout).toContain('0 added, 0 changed, 1 destroyed');
    expect(removed.stdout).not.toMatch(/release lease/);
    expect(await activeLeases(dir)).toEqual(leases);
    const plan = cli(['plan', '--detailed-exitcode', dir], { cwd: dir });
    expect(plan.code, plan.stdout + plan.stderr).toBe(0);
    expect(plan.stdout).toContain('No changes.');
    const json = JSON.parse(cli(['plan', '--json', dir], { cwd: dir }).stdout) as { resource_changes?: { address: string; change: { actions: string[] }; reasons?: { text: string }[] }[] };
    const kept = json.resource_changes?.find((c) => c.address.startsWith('lease.spot-v100.'));
    expect(kept, JSON.stringify(json)).toBeDefined();
    expect(kept!.change.actions).toEqual(['no-op']);
    expect(JSON.stringify(kept)).toMatch(/kept for the pool's idleRelease \(30m\), released in (29m\d*s?|30m)/);

    // Without idleRelease (the default), an idle lease is released at once.
    writeFleet(dir, []);
    const released = cli(['apply', '--auto-approve', dir], { cwd: dir });
    expect(released.code, released.stderr).toBe(0);
    expect(released.stdout).toMatch(/lease\.spot-v100\.\S+: Release complete/);
    expect(await activeLeases(dir)).toEqual([]);
  }, 120_000);

  it('destroy releases a lease idleRelease would keep', async () => {
    const dir = tempFleet([{ name: 'job', capacity: 'spot' }]);
    dirs.push(dir);
    withIdleRelease(dir, '30m');
    expect(cli(['apply', '--auto-approve', dir], { cwd: dir }).code).toBe(0);
    expect(await activeLeases(dir)).toHaveLength(1);
    const d = cli(['destroy', '--auto-approve', dir], { cwd: dir });
    expect(d.code, d.stderr).toBe(0);
    expect(await activeLeases(dir)).toEqual([]);
  }, 120_000);
});
