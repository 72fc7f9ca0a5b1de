// Boot faults of a bought VM through the built CLI (the fake EC2, whose launches boot as lab nodes):
// a VM that never answers SSH, and one whose SSH presents another host key than the one spotfleet
// injected. Each makes `apply` fail with an error naming the provider, the lease address and the
// instance, after the pool's ready timeout; the VM is terminated and nothing of the fleet is left
// running (paid for) in the fake's books or in the lab.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startFakeEc2, type FakeEc2 } from '../fakes/ec2.js';
import { describeLab } from '../lab/gate.js';
import { startLab, type Lab } from '../lab/lab.js';
import { LabVms, type BootFault } from '../lab/cloud-vms.js';
import { runCli, type CliRun } from './crash-helpers.js';
import { CLOUD_FLEET, cloudFleetYaml } from './cloud-fleet.js';

const CREDS = { accessKeyId: 'AKIDBOOTFAULTS', secretAccessKey: 'boot-faults-secret' };
const ENV = { AWS_ACCESS_KEY_ID: CREDS.accessKeyId, AWS_SECRET_ACCESS_KEY: CREDS.secretAccessKey };
const show = (r: CliRun): string => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

describeLab('boot faults of bought VMs through the CLI (fake EC2 + lab)', () => {
  let lab: Lab | undefined;
  let vms: LabVms | undefined;
  let ec2: FakeEc2 | undefined;
  let dir = '';
  const ours = () => ec2!.control.instances().filter((i) => i.tags['spotfleet:fleet'] === CLOUD_FLEET);
  const live = () => ours().filter((i) => i.state === 'pending' || i.state === 'running');

  beforeAll(async () => {
    lab = await startLab({ nodes: [] });
    const v = (vms = new LabVms(lab, { cloud: 'aws', gpusOf: () => ({ gpus: 1, gpuModel: 'V100' }) }));
    ec2 = await startFakeEc2({
      credentials: CREDS,
      instanceTypes: { 'p3.2xlarge': { spotPrice: 0.918 } },
      boot: (i, userData) => v.boot(i.instanceId, i.instanceType, i.zone, userData),
      onTerminate: (i) => v.terminate(i.instanceId),
    });
    dir = mkdtempSync(join(tmpdir(), 'sf-boot-faults-'));
    const providerConfig = `{ region: us-east-1, endpoint: ${JSON.stringify(ec2.url)}, imageId: ami-0123456789abcdef0, instanceTypes: { p3.2xlarge: { gpuModel: V100, gpus: 1, onDemandPrice: 3.06 } } }`;
    writeFileSync(join(dir, 'fleet.yaml'), cloudFleetYaml(lab, { providerConfig }, { readyTimeout: '15s' }).replace('CLOUD_TYPE', 'aws'));
  }, 120_000);

  afterAll(async () => {
    try {
      if (dir && ec2 && live().length > 0) await runCli(['destroy', '--auto-approve', dir], { cwd: dir, env: ENV, timeoutMs: 120_000 });
    } finally {
      await ec2?.close();
      await vms?.close();
      await lab?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);

  const cases: [BootFault, string, RegExp][] = [
    ['never-boots', 'a VM that never answers SSH', /did not become a ready node within 15s of its launch: .*(connect|refused|ECONNREFUSED|timed out)/],
    ['wrong-host-key', 'SSH that presents another host key than the injected one', /did not become a ready node within 15s of its launch: SSH at root@[\d.]+:22 presented a different host key than the one spotfleet injected/],
  ];
  it.each(cases)('%s (%s): apply fails naming the provider and the instance; the VM is terminated, nothing is left running', async (fault, _what, why) => {
    const before = new Set(ours().map((i) => i.instanceId));
    vms!.failNext(fault);
    const r = await runCli(['apply', '--auto-approve', dir], { cwd: dir, env: ENV, timeoutMs: 150_000 });
    expect(r.code, show(r)).toBe(1);
    const bought = ours().filter((i) => !before.has(i.instanceId));
    expect(bought.map((i) => i.lifecycle), JSON.stringify(bought)).toEqual(['spot']);
    const id = bought[0]!.instanceId;
    const out = r.stdout + r.stderr;
    expect(out).toMatch(new RegExp(`provider "cloud" \\(lease\\.spot\\.[\\w-]+\\): lease ${id} ended before it was ready: EC2 instance ${id} \\(pool spot, us-east-1[ab]\\) `));
    expect(out).toMatch(why);
    expect(out).toMatch(/spotfleet terminated it; it was released/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(live(), 'nothing of the fleet is left running').toEqual([]);
    expect(vms!.running().map((v) => v.id)).toEqual([]);
    // The next plan wants the lease again: nothing was recorded for the VM that failed.
    const p = await runCli(['plan', dir], { cwd: dir, env: ENV });
    expect(p.code, show(p)).toBe(0);
    expect(p.stdout).toMatch(/\+ lease\.spot\./);
  }, 180_000);

  it('a launch EC2 ends at once (an internal error on launch): apply fails with EC2\'s own reason, at once, not after the ready timeout', async () => {
    const before = new Set(ours().map((i) => i.instanceId));
    vms!.failNext('bad-script');
    const t0 = Date.now();
    const r = await runCli(['apply', '--auto-approve', dir], { cwd: dir, env: ENV, timeoutMs: 150_000 });
    const took = Date.now() - t0;
    expect(r.code, show(r)).toBe(1);
    const bought = ours().filter((i) => !before.has(i.instanceId));
    expect(bought.map((i) => i.state), JSON.stringify(bought)).toEqual(['terminated']);
    const id = bought[0]!.instanceId;
    // EC2 lists only live instances; asked by id, it tells why it ended the launch.
    expect(r.stdout + r.stderr).toMatch(new RegExp(`provider "cloud" \\(lease\\.spot\\.[\\w-]+\\): lease ${id} ended before it was ready: EC2 instance ${id}: Server\\.InternalError: Internal error on launch \\(the machine got no bootstrap script\\); it was released`));
    expect(r.stderr).not.toMatch(/\n\s+at /);
    // Not the 120 s a lease gets to become a node (nor the pool's 15 s ready timeout): the launch is over.
    expect(took, show(r)).toBeLessThan(60_000);
    expect(live()).toEqual([]);
  }, 180_000);
});
