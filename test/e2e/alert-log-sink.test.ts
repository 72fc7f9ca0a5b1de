// The documented default alert sink `log` exists (issue #11): through the built CLI, a watched
// fleet over its budget fires `budget-exceeded` to `log` (the default `notify`), which writes the
// alert as a JSON line; before, every alert sent there failed with "no alert sink named log".
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from './crash-helpers.js';
import { destroyAll, killAllWatches, startWatch, tempWatchFleet, watchFleetYaml } from './watch-helpers.js';

const dirs: string[] = [];
afterAll(async () => {
  await killAllWatches();
  const failures = await destroyAll(dirs);
  expect(failures, failures.join('\n')).toEqual([]);
}, 60_000);

describe('alert sinks', () => {
  it('an alert with the default notify reaches the built-in log sink', async () => {
    const workloads = [{ name: 'train-a', capacity: 'on-demand' as const }];
    const dir = tempWatchFleet(workloads);
    dirs.push(dir);
    writeFileSync(join(dir, 'fleet.yaml'), `${watchFleetYaml(workloads)}budgetPerHour: 0.01\nalerts:\n  - { name: over-budget, when: budget-exceeded, severity: critical }\n`);
    const setup = await runCli(['apply', '--auto-approve', dir], { cwd: dir });
    expect(setup.code, setup.stdout + setup.stderr).toBe(0);
    const w = startWatch(dir, { interval: '2s' });
    const [line] = await w.waitFor((l) => (l as { alert?: { rule?: string } }).alert?.rule === 'over-budget', { timeoutMs: 60_000, what: 'the alert on the log sink' });
    expect((line as unknown as { alert: Record<string, unknown> }).alert).toMatchObject({ rule: 'over-budget', severity: 'critical', status: 'firing', fleet: 'e2e', address: 'fleet.e2e' });
    expect(w.find((l) => /alert delivery to log failed|no alert sink named/.test(l.msg ?? ''))).toEqual([]);
    w.signal('SIGTERM');
    expect((await w.exited).code).toBe(0);
  }, 120_000);
});
