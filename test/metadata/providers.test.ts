// The on-node providers against the fakes: gcp and azure (`nodes` + `notices`, config schema),
// and the aws notices piece that providers/aws/index.ts composes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeInfo, Notice } from '../../src/core/types.js';
import { startAwsImdsServer, type AwsImdsControl } from '../fakes/aws-imds.js';
import { startAzureEventsServer, type AzureEventsControl } from '../fakes/azure-events.js';
import { startGceMetadataServer, type GceMetadataControl } from '../fakes/gce-metadata.js';
import type { FakeHandle } from '../fakes/http-util.js';
import { validateProviderConfig } from '../../src/providers/registry.js';
import type { ProviderFactory } from '../../src/providers/sdk.js';
import { awsNoticesConfigSchema, createAwsNotices } from '../../providers/aws/notices.js';
import { provider as azureFactory } from '../../providers/azure/index.js';
import { provider as gcpFactory } from '../../providers/gcp/index.js';
import { testContext } from './util.js';

const pos = (): { file: string; line: number; col: number } => ({ file: 'fleet.yaml', line: 1, col: 1 });
const problems = (f: ProviderFactory, cfg: Record<string, unknown>): string[] => validateProviderConfig(f, 'p', cfg, pos).map((p) => p.message);

describe('gcp provider (on the VM)', () => {
  let gce: FakeHandle<GceMetadataControl>;
  beforeAll(async () => {
    gce = await startGceMetadataServer({ name: 'vm-g', zone: 'europe-west4-a' });
  });
  afterAll(async () => gce.close());

  it('validates its config', () => {
    expect(problems(gcpFactory as unknown as ProviderFactory, { gpuModel: 'A100', gpus: 1, pricePerHour: 1.2 })).toEqual([]);
    expect(problems(gcpFactory as unknown as ProviderFactory, { gpuModel: 'A100', gpus: 1, pricePerHour: 1, metadataUrl: 'ftp://x', bogus: 1 }).join('\n')).toMatch(/metadataUrl[\s\S]*bogus|bogus[\s\S]*metadataUrl/);
  });

  it('lists its own node with name and zone from the metadata server, and reads its notices', async () => {
    const p = await gcpFactory.create({ metadataUrl: gce.url, gpuModel: 'A100', gpus: 8, pricePerHour: 9.5 }, testContext('gcp'));
    try {
      const [node] = await p.nodes!.list();
      expect(node).toMatchObject({ id: 'vm-g', provider: 'gcp', gpuModel: 'A100', gpus: 8, capacity: 'spot', zone: 'europe-west4-a', pricePerHour: 9.5, state: 'ready' });
      const me = node as NodeInfo;
      expect(await p.notices!.poll(me)).toEqual([]);
      expect(await p.notices!.poll({ ...me, id: 'other' })).toEqual([]);
      gce.control.preempt();
      expect((await p.notices!.poll(me)).map((n) => n.kind)).toEqual(['preemption']);
      expect(await p.notices!.poll({ ...me, id: 'other' })).toEqual([]);
      gce.control.clearPreempted();
      // watch (long-poll) reports a change
      const seen: Notice[] = [];
      const ac = new AbortController();
      const w = p.notices!.watch!(me, (n) => seen.push(n), ac.signal);
      for (let i = 0; i < 500 && gce.control.state().waiting < 2; i++) await new Promise((r) => setTimeout(r, 10));
      gce.control.setMaintenanceEvent('TERMINATE_ON_HOST_MAINTENANCE');
      for (let i = 0; i < 500 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      ac.abort();
      await w;
      expect(seen.map((n) => n.action)).toEqual(['TERMINATE_ON_HOST_MAINTENANCE']);
    } finally {
      await p.close?.();
    }
  });

  it('uses the configured node name and zone without asking', async () => {
    const p = await gcpFactory.create({ metadataUrl: gce.url, node: 'trainer-1', zone: 'z1', capacity: 'on-demand', gpuModel: 'L4', gpus: 1, pricePerHour: 1 }, testContext('g2'));
    expect((await p.nodes!.list())[0]).toMatchObject({ id: 'trainer-1', zone: 'z1', capacity: 'on-demand' });
    await p.close?.();
  });
});

describe('azure provider (on the VM)', () => {
  let az: FakeHandle<AzureEventsControl>;
  beforeAll(async () => {
    az = await startAzureEventsServer({ vmName: 'vm-z', zone: '2' });
  });
  afterAll(async () => az.close());

  it('validates its config', () => {
    expect(problems(azureFactory as unknown as ProviderFactory, { gpuModel: 'A100', gpus: 1, pricePerHour: 1, acknowledge: true, vmName: 'x' })).toEqual([]);
    expect(problems(azureFactory as unknown as ProviderFactory, { gpuModel: 'A100', gpus: 1, pricePerHour: 1, acknowledge: 'yes' })).toHaveLength(1);
  });

  it('lists its node, reads its Scheduled Events, and acknowledges only when configured', async () => {
    const off = await azureFactory.create({ metadataUrl: az.url, gpuModel: 'A100', gpus: 1, pricePerHour: 3 }, testContext('az'));
    expect('acknowledge' in off.notices!).toBe(false);
    await off.close?.();
    const p = await azureFactory.create({ metadataUrl: az.url, acknowledge: true, gpuModel: 'A100', gpus: 1, pricePerHour: 3 }, testContext('az'));
    try {
      const [node] = await p.nodes!.list();
      expect(node).toMatchObject({ id: 'vm-z', zone: '2', provider: 'az' });
      const ev = az.control.addEvent({ EventType: 'Preempt' });
      const [n] = await p.notices!.poll(node as NodeInfo);
      expect(n).toMatchObject({ kind: 'preemption', provider: 'az', node: 'vm-z' });
      await p.notices!.acknowledge!(node as NodeInfo, n as Notice);
      expect(az.control.state().acks).toEqual([{ EventId: ev.EventId, known: true }]);
    } finally {
      await p.close?.();
    }
  });
});

describe('aws notices (for providers/aws)', () => {
  let imds: FakeHandle<AwsImdsControl>;
  beforeAll(async () => {
    imds = await startAwsImdsServer({ instanceId: 'i-0self' });
  });
  afterAll(async () => imds.close());

  it('exports a schema fragment with the documented keys', () => {
    expect(Object.keys(awsNoticesConfigSchema.properties).sort()).toEqual(['metadataUrl', 'node', 'timeoutMs', 'tokenTtlSeconds']);
  });

  it('reads IMDS for the instance it runs on (by instance id, lease id or configured node name) only', async () => {
    const a = createAwsNotices({ metadataUrl: imds.url, node: 'gpu-a', tokenTtlSeconds: 300 }, testContext('aws'));
    try {
      const node = (id: string, leaseId?: string): NodeInfo => ({ id, provider: 'aws', gpuModel: 'A100', gpus: 8, capacity: 'spot', pricePerHour: 10, state: 'ready', ...(leaseId ? { leaseId } : {}) });
      imds.control.triggerSpotInterruption();
      expect(await a.instanceId()).toBe('i-0self');
      expect((await a.notices.poll(node('i-0self'))).map((n) => n.kind)).toEqual(['preemption']);
      expect((await a.notices.poll(node('gpu-a'))).map((n) => n.node)).toEqual(['gpu-a']);
      expect((await a.notices.poll(node('n1', 'i-0self'))).length).toBe(1);
      expect(await a.notices.poll(node('i-0other'))).toEqual([]);
    } finally {
      await a.close();
    }
  });
});
