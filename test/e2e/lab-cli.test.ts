// The built CLI against the real-peer lab, end to end, as a user runs it (issue 5, first "must
// show"): a fleet on four namespace nodes with the `docker` provider (engines over verified SSH):
// a (AWS spot), b (GCP spot), c (Azure spot) and od (on-demand, the fallback of all three).
//   1. `apply --auto-approve` places one trainer container on each spot node; `docker ps` on the
//      node shows it with spotfleet's labels.
//   2. with `watch` running, an eviction posted on a node's metadata fake (bound to
//      169.254.169.254 inside that node's namespace, read from the node over SSH) leads to:
//      USR1 to the container, a verified checkpoint, stop with the grace period, a copy to od (small: through the controller), and a
//      container on od whose log shows it resumed from the saved step; once for each cloud.
//   3. the Azure Preempt is acknowledged to the platform with StartRequests (acknowledgeNotices).
// watch is stopped by PID, the fleet destroyed and the lab closed in afterAll, even on failure.
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeLab } from '../lab/gate.js';
import { startLab, type Lab } from '../lab/lab.js';
import { startCloudFake, waitUntil, type CloudFake } from '../lab/fixtures.js';
import { describeRun as show, runCli } from './crash-helpers.js';
import { startWatch, type LogLine, type WatchProcess } from './watch-helpers.js';
import { containerLogs, dockerPs, FLEET_NAME, poolOf, tearDownLabFleet, tempLabFleet, trainerLog, type LabFleetNode, type LabFleetWorkload } from './lab-cli-helpers.js';

const NODES: LabFleetNode[] = [
  { name: 'a', capacity: 'spot', cloud: 'aws', pricePerHour: 1, gpus: 1 },
  { name: 'b', capacity: 'spot', cloud: 'gcp', pricePerHour: 1, gpus: 1 },
  { name: 'c', capacity: 'spot', cloud: 'azure', pricePerHour: 1, gpus: 1, vmName: 'lab-vm-c' },
  { name: 'od', capacity: 'on-demand', pricePerHour: 9, gpus: 3 },
];
const WORKLOADS: LabFleetWorkload[] = [
  { name: 'train-aws', spotPool: poolOf('a') },
  { name: 'train-gcp', spotPool: poolOf('b') },
  { name: 'train-azure', spotPool: poolOf('c') },
];
const HOME: Record<string, string> = { 'train-aws': 'a', 'train-gcp': 'b', 'train-azure': 'c' };

describeLab('spotfleet CLI in the lab: apply, then watch moves workloads on AWS/GCP/Azure notices', () => {
  let lab: Lab | undefined;
  let dir = '';
  let watch: WatchProcess | undefined;
  const fakes = new Map<string, CloudFake>();

  beforeAll(async () => {
    lab = await startLab({
      nodes: [
        { name: 'a', cloud: 'aws', gpus: 1, gpuModel: 'H100 80GB HBM3' },
        { name: 'b', cloud: 'gcp', gpus: 1, gpuModel: 'H100 80GB HBM3' },
        { name: 'c', cloud: 'azure', gpus: 1, gpuModel: 'H100 80GB HBM3' },
        { name: 'od', gpus: 3, gpuModel: 'H100 80GB HBM3' },
      ],
    });
    const l = lab;
    const [aws, gcp, az] = await Promise.all([startCloudFake(l, 'a', 'aws'), startCloudFake(l, 'b', 'gcp'), startCloudFake(l, 'c', 'azure', ['--name', 'lab-vm-c'])]);
    fakes.set('aws', aws).set('gcp', gcp).set('azure', az);
    dir = tempLabFleet(l, NODES, WORKLOADS);
  });

  afterAll(async () => {
    const problems = await tearDownLabFleet({
      lab,
      dir,
      watch,
      fakes: fakes.values(),
      afterDestroy: async (l) => {
        const left: string[] = [];
        for (const n of NODES) {
          const ps = await dockerPs(l, n.name).catch((e: unknown) => [{ name: String(e) }]);
          if (ps.length > 0) left.push(`containers still running on ${n.name} after destroy: ${JSON.stringify(ps)}`);
        }
        return left;
      },
    });
    expect(problems, problems.join('\n')).toEqual([]);
    // Reached only when cleanup found nothing wrong; otherwise the folder stays for a look at its state.
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 150_000);

  it('apply places each workload as a container on its spot node, with spotfleet labels', async () => {
    const l = lab as Lab;
    const r = await runCli(['apply', '--auto-approve', dir], { cwd: dir, timeoutMs: 90_000 });
    expect(r.code, show(r)).toBe(0);
    for (const w of WORKLOADS) {
      const home = HOME[w.name] as string;
      const ps = await dockerPs(l, home, { workload: w.name });
      expect(ps, `docker ps on ${home}`).toHaveLength(1);
      const c = ps[0]!;
      expect(c.state).toBe('running');
      expect(c.labels['spotfleet.fleet']).toBe(FLEET_NAME);
      expect(c.labels['spotfleet.workload']).toBe(w.name);
      expect(c.labels['spotfleet.spec-hash']).toMatch(/^\S+$/);
      await waitUntil(`${w.name} trainer started on ${home}`, async () => (await containerLogs(l, home, c.id)).includes('start at step 0'));
    }
    // nothing of the fleet runs on the on-demand node yet
    expect(await dockerPs(l, 'od')).toEqual([]);
  }, 120_000);

  /**
   * Starts watch once (for all three evictions), posts the eviction with `trigger`, and checks the
   * whole path: notice → USR1 → verified checkpoint → stop → copy → resumed on od.
   */
  async function evictAndCheck(workload: string, cloud: 'aws' | 'gcp' | 'azure', trigger: () => Promise<unknown>): Promise<{ migrated: LogLine; from: number }> {
    const l = lab as Lab;
    const home = HOME[workload] as string;
    if (!watch) {
      watch = startWatch(dir, { noticeInterval: '1s', interval: '30s' });
      await watch.info();
      await watch.waitFor((x) => x.msg === 'reconciled', { what: 'the first reconcile', timeoutMs: 60_000 });
    }
    const from = watch.lines.length;
    const before = await dockerPs(l, home, { workload });
    expect(before.map((c) => c.state), `${workload} runs on ${home} before the notice`).toEqual(['running']);
    const old = before[0]!;
    // let it make some progress, so the resumed step means something
    await new Promise((r) => setTimeout(r, 1500));
    await trigger();

    const addr = `workload.${workload}`;
    const [notice] = await watch.waitFor((x) => x.msg === 'eviction notice' && x.node === home, { from, what: `the ${cloud} notice for ${home}`, timeoutMs: 30_000 });
    expect(notice).toMatchObject({ source: cloud, kind: 'preemption', provider: 'lab' });
    await watch.waitFor((x) => x.msg === 'checkpoint signal sent' && x.address === addr, { from, what: `the checkpoint signal to ${workload}` });
    const [migrated] = await watch.waitFor((x) => x.msg === 'migration complete' && x.address === addr, { from, what: `${workload}'s migration`, timeoutMs: 60_000 });
    const m = migrated as LogLine;
    expect(m).toMatchObject({ from: home, to: 'od', outcome: 'succeeded' });
    const timings = m.timings as Record<string, number>;
    for (const k of ['checkpoint', 'stop', 'transfer', 'start']) expect(Object.keys(timings), `timings of ${workload}'s move`).toContain(k);
    // Each step logged as done once, in this order, after the signal: the checkpoint verified as
    // newer than the signal (not the "no checkpoint verified" fallback), a clean stop, a real copy.
    const at = (pred: (x: LogLine) => boolean, what: string): LogLine => {
      const hits = watch!.find(pred, from);
      expect(hits, `${what} for ${workload}\n${watch!.tail()}`).toHaveLength(1);
      return hits[0]!;
    };
    const steps = ['checkpoint', 'stop', 'transfer', 'start'].map((kind) => at((x) => x.action === kind && x.address === addr && x.msg === `${kind} ok`, `${kind} ok`));
    const [ck, stop, transfer, start] = steps as [LogLine, LogLine, LogLine, LogLine];
    const signal = at((x) => x.msg === 'checkpoint signal sent' && x.address === addr, 'the signal');
    const order = [signal, ...steps].map((x) => watch!.lines.indexOf(x));
    expect(order, 'signal → checkpoint → stop → transfer → start').toEqual([...order].sort((p, q) => p - q));
    expect(typeof ck.verifiedMs, `checkpoint verified after the signal: ${JSON.stringify(ck)}`).toBe('number');
    expect(ck.verified).toBeUndefined();
    expect(stop.exitCode).toBe(0);
    expect(transfer).toMatchObject({ skipped: false });
    expect(transfer.bytes as number).toBeGreaterThan(0);
    expect(start).toMatchObject({ node: 'od', resumed: true });
    expect(watch.find((x) => x.level === 'error' || /losing about|restarts from the beginning/.test(x.msg), from), 'no error, no lost work').toEqual([]);

    // On the spot node: the old container got USR1 (checkpoint, keeps going), then TERM at the stop
    // (checkpoint, exit 0); the checkpoint folder holds the step it reached.
    const after = await dockerPs(l, home, { workload, all: true });
    expect(after.map((c) => [c.id, c.state])).toEqual([[old.id, 'exited']]);
    const inspect = await l.docker(home, ['inspect', '--format', '{{.State.ExitCode}}', old.id]);
    expect(inspect.stdout.trim(), 'the trainer exited on SIGTERM within the grace period').toBe('0');
    const oldLog = trainerLog(await containerLogs(l, home, old.id));
    expect(oldLog.checkpoints.map((c) => c.reason), `${workload} on ${home}: USR1 first, then TERM`).toEqual(['USR1', 'TERM']);
    const saved = oldLog.checkpoints.at(-1)!.step;
    expect(saved, 'the TERM checkpoint is at or past the USR1 one, and past step 0').toBeGreaterThanOrEqual(Math.max(1, oldLog.checkpoints[0]!.step));
    expect(readFileSync(join(l.node(home).srvDir, 'checkpoints', workload, 'step'), 'utf8').trim(), 'the source copy is kept').toBe(String(saved));
    // the copy (small: through the controller) brought it to od
    expect(readFileSync(join(l.node('od').srvDir, 'checkpoints', workload, 'step'), 'utf8').trim()).toBe(String(saved));

    // On od: the new container, labelled as migrated, resumed from the saved step.
    const moved = await dockerPs(l, 'od', { workload });
    expect(moved, `${workload} runs once on od`).toHaveLength(1);
    const c = moved[0]!;
    expect(c.state).toBe('running');
    expect(c.labels).toMatchObject({ 'spotfleet.fleet': FLEET_NAME, 'spotfleet.workload': workload, 'spotfleet.migrated-from': home, 'spotfleet.original-type': 'spot' });
    const resumed = await waitUntil(`${workload} resumed on od`, async () => trainerLog(await containerLogs(l, 'od', c.id)).resumedFrom);
    expect(resumed, `${workload} resumed from the step it saved on ${home}`).toBe(saved);
    // Timings are printed (benchmarks measure them), never asserted.
    console.info(`${cloud}: ${workload} ${home} → od resumed at step ${saved}; downtime ${String(m.downtimeMs)} ms; ${JSON.stringify(timings)}`);
    return { migrated: m, from };
  }

  it('AWS spot interruption on a: USR1, verified checkpoint, stop, copy to od, resumed from the saved step', async () => {
    await evictAndCheck('train-aws', 'aws', () => (fakes.get('aws') as CloudFake).control('triggerSpotInterruption'));
    // spotfleet logs shows the trainer's output across the move, from the docker provider's containers on both nodes.
    const logs = await runCli(['logs', 'workload.train-aws', dir, '--all-instances'], { cwd: dir });
    expect(logs.code, logs.stdout + logs.stderr).toBe(0);
    expect(logs.stdout.match(/^==> \S+ on lab\/(a|od),/gm), logs.stdout).toHaveLength(2);
    expect(logs.stdout).toMatch(/start at step 0/);
    expect(logs.stdout).toMatch(/resumed/);
  }, 120_000);

  it('GCP preemption on b: the same path, within the 30 s notice', async () => {
    await evictAndCheck('train-gcp', 'gcp', () => (fakes.get('gcp') as CloudFake).control('preempt'));
  }, 120_000);

  let azureEventId = '';
  it('Azure Preempt on c: the same path, within the 30 s notice', async () => {
    await evictAndCheck('train-azure', 'azure', async () => {
      const ev = await (fakes.get('azure') as CloudFake).control<{ EventId: string }>('addEvent', { EventType: 'Preempt', Resources: ['lab-vm-c'] });
      azureEventId = ev.EventId;
    });
  }, 120_000);

  // Known to fail today: nothing in src/watch or src/engine calls `notices.acknowledge`, so the
  // provider's `acknowledgeNotices: true` never reaches the platform (see the issue-5 report).
  it('Azure Preempt is acknowledged to the platform with StartRequests (acknowledgeNotices: true)', async () => {
    expect(azureEventId, 'the Azure eviction ran').not.toBe('');
    const az = fakes.get('azure') as CloudFake;
    const acks = await waitUntil('a StartRequests for the Preempt', async () => {
      const st = await az.control<{ acks: { EventId: string; known: boolean }[] }>('state');
      return st.acks.length > 0 ? st.acks : undefined;
    }, 10_000).catch(() => [] as { EventId: string; known: boolean }[]);
    expect(acks, 'StartRequests acknowledgements recorded by the Azure fake').toEqual([{ EventId: azureEventId, known: true }]);
  }, 30_000);
});
