// Live transfer progress through the built CLI, in the SSH lab: a `docker` fleet over two
// namespace nodes (spot a, on-demand od), the workload's checkpoint folder holding 24 MiB of
// weights, transfers limited to 4 MiB/s so the copy runs for seconds. `drill` moves the workload
// a → od by rsync over SSH; with progress lines every second, its output shows
// `workload.train: Transferring... N MB of 25.2 MB (P%), R MB/s [Ns elapsed]` before the transfer
// completes. The fleet is destroyed and the lab closed in afterAll, even on failure.
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeLab } from '../lab/gate.js';
import { startLab, type Lab } from '../lab/lab.js';
import { waitUntil } from '../lab/fixtures.js';
import { describeRun as show, runCli } from './crash-helpers.js';
import { containerLogs, dockerPs, labFleetYaml, poolOf, seedWeights, tearDownLabFleet, writeLabFleet, type LabFleetNode } from './lab-cli-helpers.js';

const NODES: LabFleetNode[] = [
  { name: 'a', capacity: 'spot', pricePerHour: 1, gpus: 1 },
  { name: 'od', capacity: 'on-demand', pricePerHour: 9, gpus: 1 },
];
const WEIGHTS = 24 << 20;

describeLab('transfer progress in the SSH lab: drill prints bytes moved while rsync runs', () => {
  let lab: Lab | undefined;
  let dir = '';

  beforeAll(async () => {
    lab = await startLab({ nodes: [{ name: 'a', gpus: 1, gpuModel: 'H100 80GB HBM3' }, { name: 'od', gpus: 1, gpuModel: 'H100 80GB HBM3' }] });
    const yaml = labFleetYaml(lab, NODES, [{ name: 'train', spotPool: poolOf('a') }]).replace(/(transfer: \{[^}]*?) \}/, '$1, bwlimitKBps: 4096 }');
    expect(yaml).toContain('bwlimitKBps: 4096');
    dir = writeLabFleet(lab, yaml);
    // Frozen weights and a first verified checkpoint already in the workload's folder on a.
    seedWeights(lab, 'a', 'train', WEIGHTS);
  }, 180_000);

  afterAll(async () => {
    const problems = await tearDownLabFleet({ lab, dir });
    expect(problems, problems.join('\n')).toEqual([]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 150_000);

  it('drill a → od: "Transferring... N MB of 25.2 MB (P%), R MB/s [Ns elapsed]" lines while rsync runs, then the transfer completes', async () => {
    const l = lab as Lab;
    const ap = await runCli(['apply', '--auto-approve', dir], { cwd: dir, timeoutMs: 90_000 });
    expect(ap.code, show(ap)).toBe(0);
    const [c0] = await dockerPs(l, 'a', { workload: 'train' });
    expect(c0?.state).toBe('running');
    await waitUntil('the trainer started on a', async () => /start at step 0|resumed from step 0/.test(await containerLogs(l, 'a', c0!.id)));

    const d = await runCli(['drill', 'train', dir, '--deadline', '60s', '--auto-approve'], { cwd: dir, env: { SPOTFLEET_PROGRESS_INTERVAL: '1s', NO_COLOR: '1' }, timeoutMs: 120_000 });
    expect(d.code, show(d)).toBe(0);
    expect(d.stdout).toMatch(/Drill complete: workload\.train moved a → od/);
    const lines = d.stdout.split('\n');
    const progress = lines.filter((x) => x.startsWith('workload.train: Transferring... '));
    expect(progress.length, show(d)).toBeGreaterThan(0);
    // The folder is the weights plus the trainer's small files: 25.2 MB and a little.
    for (const x of progress) expect(x).toMatch(/^workload\.train: Transferring\.\.\. [\d.]+ MB of 25\.\d MB \(\d{1,3}%\)(, [\d.]+ MB\/s)? \[\d+s elapsed\]$/);
    const parts = progress.map((x) => Number(/\.\.\. ([\d.]+) MB/.exec(x)?.[1]));
    expect(parts.some((mb) => mb > 0 && mb < 25), show(d)).toBe(true);
    expect(progress.some((x) => / MB\/s /.test(x))).toBe(true);
    // Printed while the transfer ran: after its start line, before its completion line.
    const started = lines.findIndex((x) => x.startsWith('workload.train: Transfer: '));
    const done = lines.findIndex((x) => x.startsWith('workload.train: Transfer complete after '));
    expect(started, show(d)).toBeGreaterThanOrEqual(0);
    expect(done).toBeGreaterThan(started);
    for (const x of progress) {
      const i = lines.indexOf(x);
      expect(i).toBeGreaterThan(started);
      expect(i).toBeLessThan(done);
    }
    expect(lines[done]).toMatch(/\[25\.\d MB at [\d.]+ MB\/s\]$/);
    expect((await dockerPs(l, 'od', { workload: 'train' })).map((c) => c.state)).toEqual(['running']);
  }, 240_000);
});
