// Early warnings in the SSH lab, through the built CLI: three namespace nodes with the `docker`
// provider (engines over verified SSH), a and b AWS spot nodes (each with its IMDS fake at
// 169.254.169.254 in its own namespace, read by curl on the node), od on-demand. The trainer's
// checkpoint folder holds 24 MB of weights that do not change; transfers are limited to 8 MiB/s,
// pre-copies to 4 MiB/s.
//   1. A rebalance recommendation on a (pool onWarning: prepare): no signal, nothing stopped; the
//      checkpoint is pre-copied to the other spot node b by rsync, niced, under the pre-copy limit.
//   2. The spot interruption on a: the workload moves to b and rsync sends only the delta.
//   3. A spot interruption on b with no warning before it: the move to od copies everything, and
//      takes longer than the prepared move; watch logs the running transfer's bytes.
// watch is stopped by PID, the fleet destroyed and the lab closed in afterAll, even on failure.
import { readFileSync, rmSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeLab } from '../lab/gate.js';
import { startLab, type Lab } from '../lab/lab.js';
import { nodePids, startCloudFake, waitUntil, type CloudFake } from '../lab/fixtures.js';
import { describeRun as show, runCli } from './crash-helpers.js';
import { startWatch, type LogLine, type WatchProcess } from './watch-helpers.js';
import { containerLogs, dockerPs, labFleetYaml, poolOf, seedWeights, tearDownLabFleet, trainerLog, writeLabFleet, type LabFleetNode } from './lab-cli-helpers.js';

const NODES: LabFleetNode[] = [
  { name: 'a', capacity: 'spot', cloud: 'aws', pricePerHour: 1, gpus: 1 },
  { name: 'b', capacity: 'spot', cloud: 'aws', pricePerHour: 1.1, gpus: 1 },
  { name: 'od', capacity: 'on-demand', pricePerHour: 9, gpus: 2 },
];
const WEIGHTS = 24 << 20;

describeLab('early warnings in the SSH lab: prepare on a rebalance recommendation, then only the delta moves', () => {
  let lab: Lab | undefined;
  let dir = '';
  let watch: WatchProcess | undefined;
  const fakes = new Map<string, CloudFake>();

  beforeAll(async () => {
    lab = await startLab({ nodes: [{ name: 'a', cloud: 'aws', gpus: 1, gpuModel: 'H100 80GB HBM3' }, { name: 'b', cloud: 'aws', gpus: 1, gpuModel: 'H100 80GB HBM3' }, { name: 'od', gpus: 2, gpuModel: 'H100 80GB HBM3' }] });
    const l = lab;
    const [fa, fb] = await Promise.all([startCloudFake(l, 'a', 'aws'), startCloudFake(l, 'b', 'aws')]);
    fakes.set('a', fa).set('b', fb);
    const yaml = labFleetYaml(l, NODES, [{ name: 'train', spotPool: poolOf('a') }])
      .replace(`pools: [${poolOf('a')}, od]`, `pools: [${poolOf('a')}, ${poolOf('b')}, od]`)
      .replaceAll('maxPricePerHour: 2.0 }', 'maxPricePerHour: 2.0, onWarning: prepare }')
      .replace(/(transfer: \{[^}]*?) \}/, '$1, bwlimitKBps: 8192, precopyBwlimitKBps: 4096 }');
    expect(yaml).toContain('onWarning: prepare');
    expect(yaml).toContain('precopyBwlimitKBps: 4096');
    dir = writeLabFleet(l, yaml);
    // The model's frozen weights and a first verified checkpoint (step 0, its COMPLETE marker),
    // already in the workload's checkpoint folder on a.
    seedWeights(l, 'a', 'train', WEIGHTS);
  }, 180_000);

  afterAll(async () => {
    const problems = await tearDownLabFleet({ lab, dir, watch, fakes: fakes.values() });
    expect(problems, problems.join('\n')).toEqual([]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 150_000);

  it('a rebalance recommendation pre-copies to the other spot node (niced, nothing stopped); the interruption then moves only the delta; an unwarned one copies everything', async () => {
    const l = lab as Lab;
    const r = await runCli(['apply', '--auto-approve', dir], { cwd: dir, timeoutMs: 90_000 });
    expect(r.code, show(r)).toBe(0);
    const [c0] = await dockerPs(l, 'a', { workload: 'train' });
    expect(c0?.state).toBe('running');
    await waitUntil('the trainer started on a', async () => /start at step 0|resumed from step 0/.test(await containerLogs(l, 'a', c0!.id)));
    watch = startWatch(dir, { noticeInterval: '1s', interval: '30s' });
    const w = watch;
    await w.info();
    await w.waitFor((x) => x.msg === 'reconciled', { what: 'the first reconcile', timeoutMs: 60_000 });

    // 1. The warning: prepare on b; nothing stopped or signalled on a.
    let from = w.lines.length;
    await (fakes.get('a') as CloudFake).control('triggerRebalance');
    const [answer] = await w.waitFor((x) => x.msg === 'early warning answered: prepare', { from, what: 'the prepare answer', timeoutMs: 30_000 });
    expect(answer).toMatchObject({ node: 'a', kind: 'rebalance', configured: 'prepare' });
    expect(String(answer?.target)).toMatch(/spot-b.* on b/);
    await waitUntil('the pre-copy running on b', () => Promise.resolve(nodePids(l, 'b', 'rsync').length > 0), 30_000);
    for (const pid of nodePids(l, 'b', 'rsync')) expect(Number(readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ')[16]), 'the pre-copy is niced').toBe(19);
    const [copied] = await w.waitFor((x) => x.msg === 'pre-copy ok', { from, what: 'the pre-copy', timeoutMs: 60_000 });
    expect(Number(copied?.bytes)).toBeGreaterThan(WEIGHTS);
    // Under the pre-copy limit (4 MiB/s): at least about 6 s for 24 MiB.
    expect(Number(copied?.durationMs)).toBeGreaterThan(5000);
    expect(w.find((x) => x.msg === 'eviction notice' || x.msg === 'checkpoint signal sent', from)).toEqual([]);
    expect((await dockerPs(l, 'a', { workload: 'train' })).map((c) => c.id)).toEqual([c0!.id]);
    expect(trainerLog(await containerLogs(l, 'a', c0!.id)).checkpoints).toEqual([]);

    // 2. The interruption on a: to b, only the delta.
    await new Promise((res) => setTimeout(res, 1000));
    from = w.lines.length;
    await (fakes.get('a') as CloudFake).control('triggerSpotInterruption');
    const [m1] = await w.waitFor((x) => x.msg === 'migration complete' && x.address === 'workload.train', { from, what: 'the move off a', timeoutMs: 90_000 });
    expect(m1).toMatchObject({ from: 'a', to: 'b', outcome: 'succeeded' });
    const t1 = w.find((x) => x.msg === 'transfer ok' && x.address === 'workload.train', from)[0] as LogLine;
    expect(Number(t1.sentBytes), JSON.stringify(t1)).toBeLessThan(WEIGHTS / 10);
    const [c1] = await dockerPs(l, 'b', { workload: 'train' });
    const saved1 = trainerLog(await containerLogs(l, 'a', c0!.id)).checkpoints.at(-1)?.step;
    expect(await waitUntil('resumed on b', async () => trainerLog(await containerLogs(l, 'b', c1!.id)).resumedFrom)).toBe(saved1);
    const st = await runCli(['state', 'pull', dir, '--no-lock'], { cwd: dir });
    const rec = (JSON.parse(st.stdout) as { resources: Record<string, { moves?: { prepared?: boolean }[]; lastWarning?: { outcome?: string } }> }).resources['workload.train'];
    expect(rec?.moves?.at(-1)?.prepared).toBe(true);
    expect(rec?.lastWarning?.outcome).toBe('followed');

    // 3. An interruption on b with no warning: to od, everything copied, a longer downtime.
    await new Promise((res) => setTimeout(res, 1000));
    from = w.lines.length;
    await (fakes.get('b') as CloudFake).control('triggerSpotInterruption');
    const [m2] = await w.waitFor((x) => x.msg === 'migration complete' && x.address === 'workload.train', { from, what: 'the move off b', timeoutMs: 90_000 });
    expect(m2).toMatchObject({ from: 'b', to: 'od', outcome: 'succeeded' });
    const t2 = w.find((x) => x.msg === 'transfer ok' && x.address === 'workload.train', from)[0] as LogLine;
    expect(Number(t2.sentBytes)).toBeGreaterThan(WEIGHTS / 2);
    // While rsync ran, watch logged the transfer's figures (the first report with bytes at once).
    const live = w.find((x) => typeof x.msg === 'string' && x.msg.startsWith('transferring ') && x.address === 'workload.train', from);
    expect(live.length, 'a progress line for the running transfer').toBeGreaterThan(0);
    expect(live[0]).toMatchObject({ level: 'info', action: 'transfer', migration: 'emergency' });
    expect(Number(live[0]?.bytes)).toBeGreaterThan(0);
    expect(Number(live[0]?.totalBytes)).toBeGreaterThan(WEIGHTS);
    expect(String(live[0]?.msg)).toMatch(/^transferring [\d.]+ MB of 25\.\d MB \(\d+%\)/);
    console.info(`lab: prepared move a → b downtime ${String(m1?.downtimeMs)} ms (sent ${String(t1.sentBytes)} B); unprepared b → od ${String(m2?.downtimeMs)} ms (sent ${String(t2.sentBytes)} B)`);
    expect(Number(m1?.downtimeMs)).toBeLessThan(Number(m2?.downtimeMs));
    const nodes = await runCli(['nodes', dir, '--json'], { cwd: dir });
    expect(nodes.code, show(nodes)).toBe(0);
    const hist = (JSON.parse(nodes.stdout) as { pool_history: { pool: string; warnings: number; warnings_followed: number; evictions: number }[] }).pool_history;
    expect(hist.find((h) => h.pool === poolOf('a'))).toMatchObject({ warnings: 1, warnings_followed: 1, evictions: 1 });
    expect(hist.find((h) => h.pool === poolOf('b'))).toMatchObject({ warnings: 0, evictions: 1 });
  }, 300_000);
});
