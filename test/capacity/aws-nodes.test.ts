// The aws provider's bought instances as nodes, against the fake EC2 endpoint (real SDK, SigV4
// checked) whose launches boot as lab nodes (real sshd with the injected host key, real dockerd,
// fake nvidia-smi, the IMDS fake in the node's namespace): a lease is a node only once SSH answers
// with the injected key and docker and nvidia-smi respond; then containers run there, notices are
// read there, checkpoints move node to node; and the faults: capacity and quota errors (the next
// zone, remembered), a VM that never boots, one whose host key is not the injected one, bad
// credentials. Nothing paid is left running at the end.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeLab } from '../lab/gate.js';
import { startLab, type Lab } from '../lab/lab.js';
import { LabVms } from '../lab/cloud-vms.js';
import { waitUntil } from '../lab/fixtures.js';
import { startFakeEc2, type FakeEc2 } from '../fakes/ec2.js';
import { createAwsProvider, type AwsConfig } from '../../providers/aws/index.js';
import type { Lease, NodeAccess } from '../../src/core/types.js';
import type { Provider, ProviderPool } from '../../src/providers/sdk.js';
import { fingerprintOfPublicKey } from '../../src/providers/kit/capacity/index.js';
import { makeCtx } from '../markets/helpers.js';

const CREDS = { accessKeyId: 'AKIDSPOTFLEETLAB', secretAccessKey: 'lab-secret' };
const ENV = { AWS_ACCESS_KEY_ID: CREDS.accessKeyId, AWS_SECRET_ACCESS_KEY: CREDS.secretAccessKey };
const TYPES: Record<string, { gpus: number; gpuModel: string }> = { 'p3.2xlarge': { gpus: 1, gpuModel: 'V100' }, 'p3.8xlarge': { gpus: 4, gpuModel: 'V100' } };

describeLab('aws: bought EC2 instances become SSH + Docker nodes (fake EC2, lab nodes)', () => {
  let lab: Lab;
  let vms: LabVms;
  let ec2: FakeEc2;
  let dataDir: string;
  const providers: Provider[] = [];

  beforeAll(async () => {
    lab = await startLab({ nodes: [] });
    vms = new LabVms(lab, { cloud: 'aws', gpusOf: (t) => TYPES[t] ?? { gpus: 1, gpuModel: 'V100' } });
    ec2 = await startFakeEc2({
      credentials: CREDS,
      instanceTypes: { 'p3.2xlarge': { spotPrice: 0.918 }, 'p3.8xlarge': { spotPrice: 3.67 } },
      boot: (i, userData) => vms.boot(i.instanceId, i.instanceType, i.zone, userData),
      onTerminate: (i) => vms.terminate(i.instanceId),
    });
    ec2.control.setSpotPrice('p3.2xlarge', 0.9, 'us-east-1a');
    ec2.control.setSpotPrice('p3.2xlarge', 0.8, 'us-east-1b');
    dataDir = mkdtempSync(join(tmpdir(), 'sf-aws-nodes-'));
  }, 120_000);

  afterAll(async () => {
    await Promise.allSettled(providers.map(async (p) => p.close?.()));
    await ec2?.close();
    await vms?.close();
    await lab?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }, 120_000);

  const access = (o: Partial<NodeAccess> = {}): NodeAccess => ({ via: 'ssh', user: 'root', identityFile: lab.clientKeyPath, port: 22, runtime: 'docker', address: 'auto', readyTimeoutMs: 150_000, checkpointRoot: '/srv/spotfleet/checkpoints', ...o });
  const config = (): AwsConfig => ({
    region: 'us-east-1',
    endpoint: ec2.url,
    imageId: 'ami-0123456789abcdef0',
    securityGroupIds: ['sg-0lab'],
    instanceProfile: 'spotfleet-node',
    rootVolumeGiB: 200,
    tags: { team: 'ml' },
    instanceTypes: { 'p3.2xlarge': { gpuModel: 'V100', gpus: 1, onDemandPrice: 3.06 }, 'p3.8xlarge': { gpuModel: 'V100', gpus: 4, onDemandPrice: 12.24 } },
  });
  const make = (o: { pools?: ProviderPool[]; env?: Record<string, string>; name?: string } = {}) => {
    const pools = o.pools ?? [
      { name: 'spot', capacity: 'spot' as const, gpuModel: 'V100', node: access() },
      { name: 'od', capacity: 'on-demand' as const, gpuModel: 'V100', node: access() },
    ];
    const ctx = makeCtx({ name: o.name ?? 'cloud', fleet: 'lab-aws', env: o.env ?? ENV, pools, dataDir: join(dataDir, o.name ?? 'cloud') });
    const p = createAwsProvider(config(), ctx);
    providers.push(p);
    return { p, ctx };
  };
  const req = (key: string, capacity: 'spot' | 'on-demand' = 'spot') => ({ pool: capacity === 'spot' ? 'spot' : 'od', capacity, gpuModel: 'V100', gpus: 1, idempotencyKey: key, labels: { 'spotfleet.fleet': 'lab-aws', 'spotfleet.workload': 'w' } });
  const ready = (p: Provider, id: string): Promise<Lease> => waitUntil(`lease ${id} a ready node`, async () => (await p.capacity!.leases()).find((l) => l.id === id && l.node !== undefined), 150_000); // a loaded CI box can boot slowly
  // The verdict comes 20 s after launch; a loaded CI box may be slow to list and probe, so the wait
  // is as long as ready()'s, and a timeout says what the lease looked like last.
  const terminatedLease = (p: Provider, id: string): Promise<Lease> => {
    let last = 'nothing listed yet';
    return waitUntil(
      `lease ${id} terminated`,
      async () => {
        const l = (await p.capacity!.leases()).find((x) => x.id === id);
        last = l ? JSON.stringify({ state: l.state, node: l.node, error: l.error, ec2: ec2.control.instances().find((i) => i.instanceId === id)?.state }) : `no lease ${id} listed`;
        return l?.state === 'terminated' ? l : undefined;
      },
      150_000,
      () => last,
    );
  };
  const live = () => ec2.control.instances().filter((i) => i.state === 'pending' || i.state === 'running');

  it('a spot launch carries the bootstrap; the lease is a node only once SSH shows the injected host key and docker + nvidia-smi answer', async () => {
    const { p } = make();
    const lease = await p.capacity!.acquire(req('spot-1'));
    expect(lease).toMatchObject({ capacity: 'spot', zone: 'us-east-1b', pricePerHour: 0.8, state: 'pending' });
    expect(lease.node).toBeUndefined();
    const inst = ec2.control.instances().find((i) => i.instanceId === lease.id)!;
    expect(inst).toMatchObject({ securityGroupIds: ['sg-0lab'], iamInstanceProfile: 'spotfleet-node', blockDevices: [{ deviceName: '/dev/sda1', volumeSize: 200, volumeType: 'gp3' }], lifecycle: 'spot' });
    expect(inst.tags).toMatchObject({ team: 'ml', 'spotfleet:fleet': 'lab-aws', 'spotfleet:pool': 'spot' });
    expect(inst.userData).toMatch(/^#!\/bin\/sh\n/);
    expect(inst.userData).toContain(inst.tags['spotfleet:host-key']);
    expect(inst.userData).not.toContain(readFileSync(lab.clientKeyPath, 'utf8').split('\n')[1]);

    const up = await ready(p, lease.id);
    expect(up).toMatchObject({ state: 'active', node: lease.id });
    const vm = vms.vm(lease.id);
    expect(vm.node.hostKeyFingerprint).toBe(fingerprintOfPublicKey(inst.tags['spotfleet:host-key']!));
    const node = (await p.nodes!.list()).find((n) => n.id === lease.id)!;
    expect(node).toMatchObject({ state: 'ready', capacity: 'spot', gpus: 1, gpusFree: 1, zone: 'us-east-1b', pool: 'spot', leaseId: lease.id, pricePerHour: 0.8 });
    expect(node.meta).toMatchObject({ cloud: 'aws', instanceType: 'p3.2xlarge', privateIp: vm.node.address });

    // The same key is the same lease (no second launch).
    const before = ec2.control.requests.filter((r) => r.action === 'RunInstances').length;
    expect((await p.capacity!.acquire(req('spot-1'))).id).toBe(lease.id);
    expect(ec2.control.requests.filter((r) => r.action === 'RunInstances').length).toBe(before);
  }, 200_000);

  it('runs a container there, reads the IMDS notice on the node, and moves a checkpoint to an on-demand node with rsync', async () => {
    const { p } = make();
    const spot = (await p.capacity!.leases()).find((l) => l.pool === 'spot' && l.node)!;
    const inst = await p.runtime!.start({ fleet: 'lab-aws', workload: 'train', node: spot.node!, image: lab.image, env: { STEP_MS: '100' }, gpus: 1, checkpointPath: '/checkpoints', labels: {}, specHash: 'h1', idempotencyKey: 'train-1' });
    expect(inst).toMatchObject({ state: 'running', node: spot.node, workload: 'train' });
    expect((await p.runtime!.list()).map((i) => [i.workload, i.node, i.state])).toEqual([['train', spot.node, 'running']]);
    const ps = await lab.docker(vms.vm(spot.id).name, ['ps', '--format', '{{.Names}}']);
    expect(ps.stdout).toContain('train');

    const node = (await p.nodes!.list()).find((n) => n.id === spot.node)!;
    expect(await p.notices!.poll(node)).toEqual([]);
    await vms.metadata(spot.id).control('triggerSpotInterruption');
    const notices = await p.notices!.poll(node);
    expect(notices).toMatchObject([{ source: 'aws', kind: 'preemption', node: spot.node, action: 'terminate' }]);

    await p.runtime!.signal(spot.node!, inst.id, 'SIGUSR1');
    const since = new Date(Date.now() - 1000).toISOString();
    const ck = await waitUntil('a checkpoint on the spot node', async () => (await p.storage!.verify({ node, workload: 'train', since })) ?? undefined, 20_000);
    const od = await p.capacity!.acquire(req('od-1', 'on-demand'));
    expect(od).toMatchObject({ capacity: 'on-demand', pricePerHour: 3.06 });
    expect(ec2.control.instances().find((i) => i.instanceId === od.id)!.lifecycle).toBeUndefined();
    await ready(p, od.id);
    const odNode = (await p.nodes!.list()).find((n) => n.id === od.id)!;
    const moved = await p.storage!.transfer({ workload: 'train', from: node, to: odNode, checkpoint: ck });
    expect(moved.skipped).toBe(false);
    expect(moved.bytes).toBeGreaterThan(0);
    expect(readFileSync(join(vms.vm(od.id).node.srvDir, 'checkpoints', 'train', 'step'), 'utf8')).toBe(readFileSync(join(vms.vm(spot.id).node.srvDir, 'checkpoints', 'train', 'step'), 'utf8'));

    await p.runtime!.stop(spot.node!, inst.id, 5000);
    for (const l of [spot, od]) await p.capacity!.release(l.id);
    expect(live()).toEqual([]);
    expect(vms.running()).toEqual([]);
    expect((await p.capacity!.leases()).filter((l) => l.state !== 'terminated')).toEqual([]);
  }, 300_000);

  it('no capacity in a zone: launches in the next one, remembers the miss, quotes that zone unavailable', async () => {
    const { p } = make();
    ec2.control.noCapacity({ zone: 'us-east-1b', market: 'spot' });
    try {
      const lease = await p.capacity!.acquire(req('ice-1'));
      expect(lease.zone).toBe('us-east-1a');
      const tried = ec2.control.requests.filter((r) => r.action === 'RunInstances').slice(-4).map((r) => [r.params['Placement.AvailabilityZone'], r.status]);
      expect(tried).toContainEqual(['us-east-1b', 500]);
      expect(tried.at(-1)).toEqual(['us-east-1a', 200]);
      // Only p3.2xlarge was tried (and missed) in 1b: V100 there is still quoted, on the bigger type.
      const before = await p.capacity!.prices({ gpuModel: 'V100', capacity: 'spot', zones: ['us-east-1b'] });
      expect(before.map((q) => [q.zone, q.available, q.pricePerGpuHour > 0.8])).toEqual([['us-east-1b', true, true]]);
      // The planner's zone first, then the pool's others: the 4-GPU type has no capacity in 1b either, so it lands in 1a.
      const big = await p.capacity!.acquire({ ...req('ice-2'), gpus: 4, zone: 'us-east-1b' });
      expect(big.zone).toBe('us-east-1a');
      await p.capacity!.release(big.id);
      const quotes = await p.capacity!.prices({ gpuModel: 'V100', capacity: 'spot' });
      expect(quotes.map((q) => [q.zone, q.available]).sort()).toEqual([['us-east-1a', true], ['us-east-1b', false]]);
      await p.capacity!.release(lease.id);
    } finally {
      ec2.control.clearCapacityFaults();
    }
  }, 60_000);

  it('a quota error everywhere: a clear error naming provider and zones, and nothing launched', async () => {
    const { p } = make({ name: 'quota' });
    ec2.control.noCapacity({ market: 'on-demand', code: 'VcpuLimitExceeded' });
    try {
      const before = live().length;
      const err = (await p.capacity!.acquire(req('quota-1', 'on-demand')).then(() => new Error('acquired'), (e: unknown) => e as Error));
      expect(err).toBeInstanceOf(Error);
      expect(err.message).toMatch(/^provider "quota" \(lease\.od\): no on-demand EC2 capacity for 1× V100 in pool od now: p3\.2xlarge in us-east-1a: VcpuLimitExceeded/);
      expect(live().length).toBe(before);
      // Remembered for every zone: the next try does not call EC2 at all.
      const runs = ec2.control.requests.filter((r) => r.action === 'RunInstances').length;
      await expect(p.capacity!.acquire(req('quota-2', 'on-demand'))).rejects.toThrow(/VcpuLimitExceeded \d+s ago, skipped/);
      expect(ec2.control.requests.filter((r) => r.action === 'RunInstances').length).toBe(runs);
    } finally {
      ec2.control.clearCapacityFaults();
    }
  }, 60_000);

  it('a VM that never answers SSH is terminated after the ready timeout, with an error naming it', async () => {
    const { p } = make({ name: 'noboot', pools: [{ name: 'spot', capacity: 'spot', gpuModel: 'V100', node: access({ readyTimeoutMs: 20_000 }) }] });
    vms.failNext('never-boots');
    const lease = await p.capacity!.acquire(req('noboot-1'));
    const dead = await terminatedLease(p, lease.id);
    expect(dead.node).toBeUndefined();
    expect(dead.error).toMatch(new RegExp(`^EC2 instance ${lease.id} \\(pool spot, us-east-1[ab]\\) did not become a ready node within 20s of its launch: .*(connect|refused|ECONNREFUSED).*; spotfleet terminated it$`));
    expect(ec2.control.instances().find((i) => i.instanceId === lease.id)!.state).toBe('terminated');
    expect(vms.running().map((v) => v.id)).not.toContain(lease.id);
  }, 200_000);

  it('SSH that presents another host key is never trusted, and the VM is terminated with that reason', async () => {
    const { p } = make({ name: 'mitm', pools: [{ name: 'spot', capacity: 'spot', gpuModel: 'V100', node: access({ readyTimeoutMs: 20_000 }) }] });
    vms.failNext('wrong-host-key');
    const lease = await p.capacity!.acquire(req('mitm-1'));
    const dead = await terminatedLease(p, lease.id);
    expect(dead.error).toMatch(/presented a different host key than the one spotfleet injected/);
    expect(dead.error).toContain(lease.id);
    expect(ec2.control.instances().find((i) => i.instanceId === lease.id)!.state).toBe('terminated');
    // Nothing ran there: the host was never trusted.
    await expect(p.runtime!.start({ fleet: 'lab-aws', workload: 'x', node: lease.id, image: lab.image, env: {}, gpus: 1, labels: {}, specHash: 'h', idempotencyKey: 'x-1' })).rejects.toThrow(/not a ready node/);
  }, 200_000);

  it('bad credentials: the error names the provider and EC2, and nothing launched', async () => {
    const { p, ctx } = make({ name: 'badcreds', env: { AWS_ACCESS_KEY_ID: CREDS.accessKeyId, AWS_SECRET_ACCESS_KEY: 'wrong-secret' } });
    const before = ec2.control.instances().length;
    await expect(p.capacity!.acquire(req('bad-1'))).rejects.toThrow(/^provider "badcreds": EC2 DescribeInstances \(HTTP 401\): AuthFailure/);
    expect(ec2.control.instances().length).toBe(before);
    expect(JSON.stringify(ctx.logs)).not.toContain('wrong-secret');
  });
});
