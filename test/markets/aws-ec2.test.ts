// The aws provider's EC2 capacity through the real AWS SDK v3 against the in-repo fake EC2 endpoint
// over HTTP (endpoint override, SigV4-checked static fake credentials): spot price history,
// spot/on-demand launches with ClientToken idempotency, describe, terminate. The instances here
// never boot (no lab): they stay leases that are not nodes yet; test/capacity/aws-nodes.test.ts
// boots them as lab nodes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EC2Client, RunInstancesCommand } from '@aws-sdk/client-ec2';
import { ProviderError } from '../../src/core/errors.js';
import { createProvider, silentLogger } from '../../src/providers/registry.js';
import { startFakeEc2, type FakeEc2 } from '../fakes/ec2.js';
import { createAwsProvider, type AwsConfig } from '../../providers/aws/index.js';
import { generateEd25519 } from '../../src/providers/kit/capacity/index.js';
import type { NodeAccess } from '../../src/core/types.js';
import type { ProviderPool } from '../../src/providers/sdk.js';
import { makeCtx } from './helpers.js';

const CREDS = { accessKeyId: 'AKIDSPOTFLEETTEST', secretAccessKey: 'fake-secret-key' };
const ENV = { AWS_ACCESS_KEY_ID: CREDS.accessKeyId, AWS_SECRET_ACCESS_KEY: CREDS.secretAccessKey };

describe('aws provider: EC2 capacity against the fake EC2 endpoint', () => {
  let ec2: FakeEc2;
  let config: AwsConfig;
  beforeAll(async () => {
    ec2 = await startFakeEc2({ credentials: CREDS, instanceTypes: { 'p3.2xlarge': { spotPrice: 0.918 }, 'p3.8xlarge': { spotPrice: 3.67 } } });
    // Known prices now (hand-checked below): zone a 0.90 and 4.00 (= 1.00/GPU), zone b 0.80 and 4.00.
    ec2.control.setSpotPrice('p3.2xlarge', 0.9);
    ec2.control.setSpotPrice('p3.2xlarge', 0.8, 'us-east-1b');
    ec2.control.setSpotPrice('p3.8xlarge', 4.0);
    config = {
      region: 'us-east-1',
      endpoint: ec2.url,
      imageId: 'ami-0123456789abcdef0',
      subnetId: 'subnet-0abc',
      keyName: 'ops',
      tags: { team: 'ml' },
      instanceTypes: {
        'p3.2xlarge': { gpuModel: 'V100', gpus: 1, onDemandPrice: 3.06 },
        'p3.8xlarge': { gpuModel: 'V100', gpus: 4, onDemandPrice: 12.24 },
      },
    };
  });
  afterAll(async () => {
    await ec2.close();
  });

  // Nodes are reached at their public address, which the fake never gives: no SSH is attempted here.
  const keyDir = mkdtempSync(join(tmpdir(), 'aws-key-'));
  writeFileSync(join(keyDir, 'id'), generateEd25519('test').private, { mode: 0o600 });
  const access: NodeAccess = { via: 'ssh', user: 'ubuntu', identityFile: join(keyDir, 'id'), port: 22, runtime: 'docker', address: 'public', readyTimeoutMs: 600_000 };
  const POOLS: ProviderPool[] = [
    { name: 'spot-v100', capacity: 'spot', gpuModel: 'V100', node: access },
    { name: 'od-v100', capacity: 'on-demand', gpuModel: 'V100', node: access },
  ];
  const make = (env: Record<string, string> = ENV, extra: Partial<AwsConfig> = {}, pools: ProviderPool[] = POOLS) => {
    const ctx = makeCtx({ name: 'cloud', fleet: 'research', env, pools });
    const p = createAwsProvider({ ...config, ...extra }, ctx);
    return { p, cap: p.capacity!, nodes: p.nodes!, ctx };
  };
  const actions = (a: string) => ec2.control.requests.filter((r) => r.action === a);

  it('quotes spot prices per GPU-hour from the price history, and on-demand from config in the zones sold', async () => {
    const { cap } = make();
    const quotes = await cap.prices({ gpuModel: 'V100' });
    expect(quotes.map((q) => [q.capacity, q.zone ?? '-', q.pricePerGpuHour])).toEqual([
      ['spot', 'us-east-1b', 0.8],
      ['spot', 'us-east-1a', 0.9],
      ['on-demand', 'us-east-1a', 3.06],
      ['on-demand', 'us-east-1b', 3.06],
    ]);
    const req = actions('DescribeSpotPriceHistory').at(-1)!;
    expect(req.params).toMatchObject({ Version: '2016-11-15', 'InstanceType.1': 'p3.2xlarge', 'InstanceType.2': 'p3.8xlarge', 'ProductDescription.1': 'Linux/UNIX' });
    expect(await cap.prices({ gpuModel: 'A100' })).toEqual([]);
    expect((await cap.prices({ gpuModel: 'V100', capacity: 'spot', zones: ['us-east-1a'] })).map((q) => q.zone)).toEqual(['us-east-1a']);
  });

  it('launches spot with market options and ClientToken, idempotently; the lease is no node until SSH verifies it', async () => {
    const { cap, nodes } = make();
    const before = actions('RunInstances').length;
    const req = { pool: 'spot-v100', capacity: 'spot' as const, gpuModel: 'V100', gpus: 1, maxPricePerGpuHour: 2, idempotencyKey: 'apply-7/spot-v100/0', labels: { team: 'nlp' } };
    const lease = await cap.acquire(req);
    expect(lease).toMatchObject({ provider: 'cloud', pool: 'spot-v100', capacity: 'spot', gpuModel: 'V100', gpus: 1, zone: 'us-east-1b', pricePerHour: 0.8, state: 'pending', labels: { team: 'nlp' } });
    expect(lease.id).toMatch(/^i-[0-9a-f]{17}$/);
    const run = actions('RunInstances').at(-1)!.params;
    expect(run.ClientToken).toMatch(/^[0-9a-f]{32}$/);
    expect(Buffer.from(run.UserData!, 'base64').toString()).toMatch(/^#!\/bin\/sh\n/);
    expect(run).toMatchObject({
      ImageId: 'ami-0123456789abcdef0',
      InstanceType: 'p3.2xlarge',
      'Placement.AvailabilityZone': 'us-east-1b',
      SubnetId: 'subnet-0abc',
      KeyName: 'ops',
      'InstanceMarketOptions.MarketType': 'spot',
      // Max price = the tighter of the pool cap (2.00/GPU-h) and on-demand (3.06): 2.00 × 1 GPU.
      'InstanceMarketOptions.SpotOptions.MaxPrice': '2.0000',
      'TagSpecification.1.ResourceType': 'instance',
    });
    const tags = ec2.control.instances().find((i) => i.instanceId === lease.id)!.tags;
    expect(tags).toMatchObject({ team: 'ml', 'spotfleet:fleet': 'research', 'spotfleet:pool': 'spot-v100', 'spotfleet:label:team': 'nlp', 'spotfleet:price-per-hour': '0.8' });

    const again = await cap.acquire(req);
    expect(again.id).toBe(lease.id);
    expect(actions('RunInstances').length - before).toBe(1);

    // EC2 says running, but nothing has answered SSH with the injected host key: not a node yet.
    const leases = await cap.leases();
    expect(leases.find((l) => l.id === lease.id)).toMatchObject({ state: 'pending', capacity: 'spot', pricePerHour: 0.8 });
    expect(leases.find((l) => l.id === lease.id)!.node).toBeUndefined();
    const node = (await nodes.list()).find((n) => n.id === lease.id);
    expect(node).toMatchObject({ provider: 'cloud', state: 'provisioning', capacity: 'spot', gpuModel: 'V100', gpus: 1, zone: 'us-east-1b', pool: 'spot-v100', meta: { cloud: 'aws', instanceType: 'p3.2xlarge', notReady: 'it has no public address yet' } });
    expect(typeof node!.meta!.privateIp).toBe('string');
  });

  it('EC2 itself honours the ClientToken: the same token launches once (real SDK, fake endpoint)', async () => {
    const client = new EC2Client({ region: 'us-east-1', endpoint: ec2.url, credentials: CREDS });
    try {
      const input = { ImageId: 'ami-0123456789abcdef0', InstanceType: 'p3.2xlarge' as const, MinCount: 1, MaxCount: 1, ClientToken: 'direct-token-1' };
      const a = await client.send(new RunInstancesCommand(input));
      const b = await client.send(new RunInstancesCommand(input));
      expect(b.Instances?.[0]?.InstanceId).toBe(a.Instances?.[0]?.InstanceId);
      expect(b.ReservationId).toBe(a.ReservationId);
      await expect(client.send(new RunInstancesCommand({ ...input, InstanceType: 'p3.8xlarge' }))).rejects.toMatchObject({ name: 'IdempotentParameterMismatch' });
    } finally {
      client.destroy();
    }
  });

  it('launches on-demand on the smallest type that fits, without market options', async () => {
    const { cap } = make();
    const lease = await cap.acquire({ pool: 'od-v100', capacity: 'on-demand', gpuModel: 'V100', gpus: 3, idempotencyKey: 'od-1', labels: {} });
    expect(lease).toMatchObject({ capacity: 'on-demand', gpus: 4, pricePerHour: 12.24 });
    const run = actions('RunInstances').at(-1)!.params;
    expect(run.InstanceType).toBe('p3.8xlarge');
    expect(Object.keys(run).some((k) => k.startsWith('InstanceMarketOptions'))).toBe(false);
  });

  it('does not launch spot when the pool cap is below the spot price', async () => {
    const { cap } = make();
    const before = actions('RunInstances').length;
    const err = await cap.acquire({ pool: 'spot-v100', capacity: 'spot', gpuModel: 'V100', gpus: 1, maxPricePerGpuHour: 0.5, idempotencyKey: 'cap-1', labels: {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect((err as Error).message).toContain('p3.2xlarge in us-east-1b: spot $0.8/GPU-h is above the cap $0.5/GPU-h');
    expect(actions('RunInstances').length).toBe(before);
  });

  it("turns EC2 errors into ProviderErrors with EC2's code, and does not try elsewhere on a non-capacity error", async () => {
    const { cap } = make();
    ec2.control.failNext(1, { action: 'RunInstances', code: 'InvalidAMIID.NotFound', status: 400 });
    const before = actions('RunInstances').length;
    const err = await cap.acquire({ pool: 'spot-v100', capacity: 'spot', gpuModel: 'V100', gpus: 1, idempotencyKey: 'bad-ami', labels: {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect((err as Error).message).toMatch(/^provider "cloud" \(lease\.spot-v100\): EC2 RunInstances \(HTTP 400\): InvalidAMIID\.NotFound: injected InvalidAMIID\.NotFound/);
    expect(actions('RunInstances').length - before).toBe(1);
  });

  it('refuses to buy for a pool that does not say how its nodes are reached', async () => {
    const { cap } = make(ENV, {}, [{ name: 'spot-v100', capacity: 'spot', gpuModel: 'V100' }]);
    await expect(cap.acquire({ pool: 'spot-v100', capacity: 'spot', gpuModel: 'V100', gpus: 1, idempotencyKey: 'no-node', labels: {} })).rejects.toThrow(/pool "spot-v100" does not say how its nodes are reached/);
  });

  it('terminates on release, idempotently, and drops the lease', async () => {
    const { cap } = make();
    const lease = await cap.acquire({ pool: 'spot-v100', capacity: 'spot', gpuModel: 'V100', gpus: 1, idempotencyKey: 'rel-1', labels: {} });
    await cap.release(lease.id);
    expect(actions('TerminateInstances').at(-1)!.params).toMatchObject({ 'InstanceId.1': lease.id });
    expect((await cap.leases()).map((l) => l.id)).not.toContain(lease.id);
    expect(ec2.control.instances().find((i) => i.instanceId === lease.id)!.state).toBe('terminated');
    await cap.release(lease.id);
    await cap.release('i-00000000000000000');
  });

  it('the same key buying again after its instance ended is a new launch, not the old ClientToken', async () => {
    const { cap } = make();
    const req = { pool: 'spot-v100', capacity: 'spot' as const, gpuModel: 'V100', gpus: 1, idempotencyKey: 'fleet:train:g0:acquire', labels: {} };
    const first = await cap.acquire(req);
    await cap.release(first.id);
    // A destroy and a new apply plan the same key again; EC2 would answer a reused ClientToken with
    // the terminated instance (or refuse it, the user data being new).
    const second = await cap.acquire(req);
    expect(second.id).not.toBe(first.id);
    expect(second.state).toBe('pending');
    const tokens = actions('RunInstances').slice(-2).map((r) => r.params.ClientToken);
    expect(new Set(tokens).size).toBe(2);
  });

  it('a spot instance EC2 reclaimed at its launch is a terminated lease with EC2\'s reason; another process no longer lists it', async () => {
    const { cap } = make();
    const lease = await cap.acquire({ pool: 'spot-v100', capacity: 'spot', gpuModel: 'V100', gpus: 1, idempotencyKey: 'reclaim-1', labels: {} });
    ec2.control.interrupt(lease.id);
    // The process that launched it asks EC2 by id: it ended, and why.
    const mine = (await cap.leases()).filter((l) => l.id === lease.id);
    expect(mine.map((l) => [l.state, l.node, l.error])).toEqual([['terminated', undefined, `EC2 instance ${lease.id}: Server.SpotInstanceTermination: Spot instance termination`]]);
    // Another process (a later CLI run) only lists live instances: it is gone.
    expect((await make().cap.leases()).map((l) => l.id)).not.toContain(lease.id);
  });

  it('rides over a 500 with the SDK retry, and fails clearly on bad credentials', async () => {
    const { cap } = make();
    const before = actions('DescribeInstances').length;
    ec2.control.failNext(1, { action: 'DescribeInstances', code: 'InternalError', status: 500 });
    await cap.leases();
    expect(actions('DescribeInstances').length - before).toBe(2);

    const bad = make({ AWS_ACCESS_KEY_ID: CREDS.accessKeyId, AWS_SECRET_ACCESS_KEY: 'wrong' });
    await expect(bad.cap.leases()).rejects.toThrow(/provider "cloud": EC2 DescribeInstances \(HTTP 401\): AuthFailure/);
    expect(JSON.stringify(bad.ctx.logs)).not.toContain('wrong');
  });

  it('composes capacity, the bought nodes and IMDS notices by config, without touching metadata at creation', () => {
    const capOnly = make(ENV, {}, []);
    expect([Boolean(capOnly.p.capacity), Boolean(capOnly.p.runtime), Boolean(capOnly.p.notices)]).toEqual([true, false, false]);
    const withNodes = make();
    expect([Boolean(withNodes.p.capacity), Boolean(withNodes.p.runtime), Boolean(withNodes.p.storage), Boolean(withNodes.p.notices)]).toEqual([true, true, true, true]);
    const both = make(ENV, { metadataUrl: 'http://127.0.0.1:9' });
    expect([Boolean(both.p.capacity), Boolean(both.p.nodes), Boolean(both.p.notices)]).toEqual([true, true, true]);
    const noticesOnly = createAwsProvider({ metadataUrl: 'http://127.0.0.1:9' }, makeCtx({ name: 'imds' }));
    expect([Boolean(noticesOnly.capacity), Boolean(noticesOnly.notices)]).toEqual([false, true]);
  });

  it('loads through the registry: capacity only when instance types are set, and they need a region', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'aws-reg-'));
    try {
      const opts = { fleet: 'research', specDir: stateDir, stateDir, log: silentLogger, env: ENV };
      const p = await createProvider({ name: 'cloud', type: 'aws', config: { ...config } }, opts);
      expect(p.capacity).toBeDefined();
      expect((await p.capacity!.prices({ gpuModel: 'V100', capacity: 'on-demand' }))[0]!.pricePerGpuHour).toBe(3.06);
      await p.close?.();
      await expect(createProvider({ name: 'cloud', type: 'aws', config: { instanceTypes: config.instanceTypes } }, opts)).rejects.toThrow(/region/);
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
    }
  });
});
