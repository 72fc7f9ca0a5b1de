// molt leases that carry a host address, through the built CLI: the molt reference server (in this
// process) provisions each bid that carries a bootstrap script as a lab node (test/lab/cloud-vms.ts:
// its own sshd with the host key and login keys read from that script, dockerd, a fake nvidia-smi),
// and gives the lease its SSH address. spotfleet reaches it like a bought cloud VM:
//   1. `validate` refuses a molt pool that says nothing of its nodes (and runLocally with `node:`);
//   2. `apply` bids with the bootstrap, waits until SSH answers with the injected host key and docker
//      and nvidia-smi respond, and runs the workload in a container there;
//   3. the seller preempts the lease: `watch` reads the notice from the API, checkpoints the
//      container, buys another molt host, rsyncs the checkpoint node to node and resumes there; the
//      preempted lease is released by spotfleet;
//   4. `destroy` releases every lease and leaves no machine running;
//   5. a host the seller cannot provision, and one that never answers SSH, fail the apply naming the
//      provider and the lease, and the lease is released: nothing is paid for.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startMoltServer, type MoltServer } from '../../providers/molt/reference-server.js';
import { describeLab } from '../lab/gate.js';
import { startLab, type Lab } from '../lab/lab.js';
import { LabVms } from '../lab/cloud-vms.js';
import { waitUntil } from '../lab/fixtures.js';
import { describeRun as show, runCli } from './crash-helpers.js';
import { startWatch, type LogLine, type WatchProcess } from './watch-helpers.js';
import { containerLogs, dockerPs, trainerLog } from './lab-cli-helpers.js';

const TOKEN = 'molt-hosts-e2e-token';
const FLEET = 'molt-hosts';
const ENV = { MOLT_TOKEN: TOKEN };

function fleetYaml(lab: Lab, url: string, o: { node?: boolean; runLocally?: boolean; readyTimeout?: string } = {}): string {
  const node = o.node === false ? '' : `\n    node: { via: ssh, user: root, identityFile: ${JSON.stringify(lab.clientKeyPath)}, runtime: docker, readyTimeout: ${o.readyTimeout ?? '90s'}, checkpointRoot: /srv/spotfleet/checkpoints }`;
  return `apiVersion: spotfleet.dev/v1
kind: Fleet
metadata: { name: ${FLEET} }
providers:
  market:
    type: molt
    config: { url: ${JSON.stringify(url)}, tokenEnv: MOLT_TOKEN, retryBaseMs: 20${o.runLocally ? ', runLocally: true' : ''} }
pools:
  - name: spot
    provider: market
    capacity: spot
    gpuModel: V100
    maxPricePerHour: 2.5${node}
defaults:
  checkpoint: { path: /checkpoints, signal: SIGUSR1, stopGrace: 10s, resumeEnv: RESUME_FROM_CHECKPOINT, marker: COMPLETE }
workloads:
  - name: train
    image: ${JSON.stringify(lab.image)}
    gpus: 1
    gpuModel: V100
    class: training
    capacity: spot
    expectedDuration: 8h
    pools: [spot]
    fallback: { to: spot, revertToSpot: false, minDwell: 30m }
`;
}

describeLab('spotfleet CLI on molt: leases with a host address are SSH + Docker nodes that run the work', () => {
  let lab: Lab | undefined;
  let vms: LabVms | undefined;
  let molt: MoltServer | undefined;
  let dir = '';
  let watch: WatchProcess | undefined;
  let firstId = '';
  let secondId = '';
  const ours = () => molt!.control.leases().filter((l) => l.labels['spotfleet.dev/fleet'] === FLEET);
  const live = () => ours().filter((l) => l.status === 'pending' || l.status === 'active' || l.status === 'preempting');
  const released = (id: string) => molt!.control.requests.some((r) => r.method === 'DELETE' && r.path === `/v1/leases/${id}` && r.status === 200);

  beforeAll(async () => {
    lab = await startLab({ nodes: [] });
    const v = (vms = new LabVms(lab, { cloud: 'none', gpusOf: () => ({ gpus: 1, gpuModel: 'V100' }) }));
    molt = await startMoltServer({
      token: TOKEN,
      generate: false,
      market: [{ gpuModel: 'V100', spotPrice: 0.9, onDemandPrice: 3.0, zones: ['molt-east-1', 'molt-west-1'], volatility: 0 }],
      offers: [
        { id: 'of-v100-east-1', gpuModel: 'V100', minGpus: 1, maxGpus: 1, pricePerGpuHour: 0.9, zone: 'molt-east-1' },
        { id: 'of-v100-east-2', gpuModel: 'V100', minGpus: 1, maxGpus: 1, pricePerGpuHour: 0.91, zone: 'molt-east-1' },
        { id: 'of-v100-west-1', gpuModel: 'V100', minGpus: 1, maxGpus: 1, pricePerGpuHour: 0.92, zone: 'molt-west-1' },
        { id: 'of-v100-west-2', gpuModel: 'V100', minGpus: 1, maxGpus: 1, pricePerGpuHour: 0.93, zone: 'molt-west-1' },
      ],
      boot: async (lease, script) => ({ address: (await v.boot(lease.id, lease.gpuModel, lease.zone, script)).privateIp }),
      onEnd: (lease) => v.terminate(lease.id),
    });
    molt.control.setSpotPrice('V100', 0.9);
    dir = mkdtempSync(join(tmpdir(), 'sf-molt-hosts-'));
    writeFileSync(join(dir, 'fleet.yaml'), fleetYaml(lab, molt.url));
  }, 120_000);

  afterAll(async () => {
    const problems: string[] = [];
    try {
      const stuck = await watch?.stop();
      if (stuck) problems.push(stuck);
      if (dir && molt && live().length > 0) {
        const r = await runCli(['destroy', '--auto-approve', dir], { cwd: dir, env: ENV, timeoutMs: 120_000 });
        if (r.code !== 0) problems.push(`destroy in cleanup: ${show(r)}`);
      }
    } finally {
      await molt?.close();
      await vms?.close();
      await lab?.close();
    }
    expect(problems, problems.join('\n')).toEqual([]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 180_000);

  it('validate refuses a molt pool that does not say how its hosts are reached, and node: with runLocally', async () => {
    const bad = mkdtempSync(join(tmpdir(), 'sf-molt-hosts-bad-'));
    try {
      writeFileSync(join(bad, 'fleet.yaml'), fleetYaml(lab!, molt!.url, { node: false }));
      const r = await runCli(['validate', bad], { cwd: bad, env: ENV });
      expect(r.code, show(r)).toBe(1);
      expect(r.stdout + r.stderr).toMatch(/fleet\.yaml:\d+:\d+.*does not say how the molt hosts it buys are reached/);
      writeFileSync(join(bad, 'fleet.yaml'), fleetYaml(lab!, molt!.url, { runLocally: true }));
      const l = await runCli(['validate', bad], { cwd: bad, env: ENV });
      expect(l.code, show(l)).toBe(1);
      expect(l.stdout + l.stderr).toMatch(/fleet\.yaml:\d+:\d+.*runs leases as simulated local hosts \(runLocally\)/);
    } finally {
      rmSync(bad, { recursive: true, force: true });
    }
    const v = await runCli(['validate', dir], { cwd: dir, env: ENV });
    expect(v.code, show(v)).toBe(0);
  }, 60_000);

  it('apply bids with the bootstrap and the workload runs in a container on the molt host', async () => {
    const r = await runCli(['apply', '--auto-approve', dir], { cwd: dir, env: ENV, timeoutMs: 150_000 });
    expect(r.code, show(r)).toBe(0);
    const leases = live();
    expect(leases, JSON.stringify(ours())).toHaveLength(1);
    const lease = leases[0]!;
    firstId = lease.id;
    expect(lease.host?.address).toBe(vms!.vm(firstId).node.address);
    // The host key spotfleet pinned rides in the lease's labels; the private half never does.
    expect(lease.labels['spotfleet.dev/host-key']).toMatch(/^ssh-ed25519 AAAA/);
    expect(JSON.stringify(lease)).not.toContain('PRIVATE KEY');
    const vm = vms!.vm(firstId);
    const ps = await dockerPs(lab!, vm.name, { fleet: FLEET });
    expect(ps, `docker ps on the molt host ${firstId}`).toHaveLength(1);
    expect(ps[0]).toMatchObject({ state: 'running', labels: { 'spotfleet.fleet': FLEET, 'spotfleet.workload': 'train' } });
    await waitUntil('the trainer started', async () => (await containerLogs(lab!, vm.name, ps[0]!.id)).includes('start at step 0'));
    const nodes = await runCli(['nodes', dir], { cwd: dir, env: ENV });
    expect(nodes.code, show(nodes)).toBe(0);
    expect(nodes.stdout).toContain(firstId);
  }, 180_000);

  it('a preemption moves the workload to another molt host spotfleet buys; the preempted lease is released', async () => {
    expect(firstId, 'apply ran').not.toBe('');
    const first = vms!.vm(firstId);
    watch = startWatch(dir, { noticeInterval: '1s', interval: '30s', env: ENV });
    await watch.info();
    await watch.waitFor((x) => x.msg === 'reconciled', { what: 'the first reconcile', timeoutMs: 90_000 });
    const from = watch.lines.length;
    await new Promise((r) => setTimeout(r, 1500));
    molt!.control.preempt(firstId, 120_000);

    const [notice] = await watch.waitFor((x) => x.msg === 'eviction notice' && x.node === firstId, { from, what: `the molt notice for ${firstId}`, timeoutMs: 30_000 });
    expect(notice).toMatchObject({ source: 'molt', provider: 'market' });
    const [migrated] = await watch.waitFor((x) => x.msg === 'migration complete' && x.address === 'workload.train', { from, what: "train's migration", timeoutMs: 150_000 });
    const m = migrated as LogLine;
    expect(m).toMatchObject({ from: firstId, outcome: 'succeeded' });
    secondId = String(m.to);
    expect(live().map((l) => l.id)).toContain(secondId);
    await waitUntil(`lease ${firstId} released`, async () => released(firstId), 60_000);
    await waitUntil('the preempted host gone from the lab', async () => !vms!.running().some((v) => v.id === firstId), 30_000);
    await vms!.gone(firstId);

    const old = vms!.archived(firstId);
    const oldLog = trainerLog(old[0]!.log);
    expect(oldLog.checkpoints.map((c) => c.reason)).toEqual(['USR1', 'TERM']);
    const saved = oldLog.checkpoints.at(-1)!.step;
    const second = vms!.vm(secondId);
    expect(readFileSync(join(first.node.srvDir, 'checkpoints', 'train', 'step'), 'utf8').trim()).toBe(String(saved));
    expect(readFileSync(join(second.node.srvDir, 'checkpoints', 'train', 'step'), 'utf8').trim(), 'rsync brought the checkpoint').toBe(String(saved));
    const moved = await dockerPs(lab!, second.name, { fleet: FLEET });
    expect(moved).toHaveLength(1);
    expect(moved[0]!.labels).toMatchObject({ 'spotfleet.workload': 'train', 'spotfleet.migrated-from': firstId });
    const resumed = await waitUntil('train resumed on the second molt host', async () => trainerLog(await containerLogs(lab!, second.name, moved[0]!.id)).resumedFrom);
    expect(resumed).toBe(saved);
    watch.signal('SIGTERM');
    await watch.exited;
  }, 240_000);

  it('destroy releases every lease and no molt host is left running', async () => {
    const r = await runCli(['destroy', '--auto-approve', dir], { cwd: dir, env: ENV, timeoutMs: 150_000 });
    expect(r.code, show(r)).toBe(0);
    expect(live()).toEqual([]);
    expect(secondId === '' || released(secondId)).toBe(true);
    await waitUntil('no molt host in the lab', async () => vms!.running().length === 0, 30_000);
  }, 180_000);

  it('a host the seller cannot provision: apply fails naming the provider and the lease, and releases it', async () => {
    vms!.failNext('bad-script');
    const r = await runCli(['apply', '--auto-approve', dir], { cwd: dir, env: ENV, timeoutMs: 150_000 });
    expect(r.code, show(r)).toBe(1);
    const failed = ours().find((l) => l.endReason === 'failed');
    expect(failed, JSON.stringify(ours())).toBeDefined();
    expect(r.stdout + r.stderr).toMatch(new RegExp(`provider "market".*lease ${failed!.id} ended before it was ready: molt lease ${failed!.id}: the lease ended \\(failed\\): the machine could not be provisioned`));
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(live()).toEqual([]);
  }, 180_000);

  it('a host that never answers SSH: apply fails after the ready timeout naming the provider and the lease, and releases it', async () => {
    const quick = mkdtempSync(join(tmpdir(), 'sf-molt-hosts-quick-'));
    try {
      writeFileSync(join(quick, 'fleet.yaml'), fleetYaml(lab!, molt!.url, { readyTimeout: '15s' }));
      const before = new Set(ours().map((l) => l.id));
      vms!.failNext('never-boots');
      const r = await runCli(['apply', '--auto-approve', quick], { cwd: quick, env: ENV, timeoutMs: 150_000 });
      expect(r.code, show(r)).toBe(1);
      const bought = ours().filter((l) => !before.has(l.id));
      expect(bought.map((l) => l.status), JSON.stringify(bought)).toEqual(['released']);
      const id = bought[0]!.id;
      expect(r.stdout + r.stderr).toMatch(new RegExp(`provider "market" \\(lease\\.spot\\.[\\w-]+\\): lease ${id} ended before it was ready: molt lease ${id} \\(pool spot, molt-(east|west)-1\\) did not become a ready node within 15s of its launch: .*; spotfleet terminated it; it was released`));
      expect(live()).toEqual([]);
      await waitUntil('the host gone from the lab', async () => !vms!.running().some((v) => v.id === id), 30_000);
    } finally {
      rmSync(quick, { recursive: true, force: true });
    }
  }, 180_000);
});
