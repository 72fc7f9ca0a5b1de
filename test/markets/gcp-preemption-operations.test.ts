// The fleet-level GCP notice source: the in-repo Compute API fake as an HTTP server (operation
// lists per zone and aggregated, filter, paging, bearer auth, Google's error shape), then the gcp
// provider's `preemptionOperations` through the notice monitor: a preempted VM is a notice for the
// node it names, with the 30 s window as its deadline, and other operations are not.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeInfo } from '../../src/core/types.js';
import { parseOperationFilter, startFakeGceOperations, type FakeGceOperationsControl } from '../fakes/gce-operations.js';
import type { FakeHandle } from '../fakes/http-util.js';
import { provider as gcp } from '../../providers/gcp/index.js';
import { noticeOfOperation } from '../../providers/gcp/preemption-operations.js';
import { NoticeMonitor, type NoticeMonitorError, type SeenNotice } from '../../src/watch/notice-monitor.js';
import { makeCtx, sleep, until } from './helpers.js';


let api: FakeHandle<FakeGceOperationsControl>;
beforeAll(async () => {
  api = await startFakeGceOperations({ token: 'tok-1' });
});
afterAll(async () => {
  await api.close();
});

const get = async (path: string, token = 'tok-1'): Promise<{ status: number; body: Record<string, unknown> }> => {
  const res = await fetch(`${api.url}${path}`, { headers: { Authorization: `Bearer ${token}` } });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};

describe('the Compute API operations fake, over HTTP', () => {
  it('lists preemptions per zone and aggregated, with the filter, paging and empty-scope warnings', async () => {
    const t = Date.parse('2026-11-23T12:00:00Z');
    api.control.preempt('p1', 'us-central1-a', 'vm-a', t);
    api.control.operation('p1', 'us-central1-a', 'vm-a', 'compute.instances.start', t + 1000);
    api.control.preempt('p1', 'us-central1-b', 'vm-b', t + 2000);
    const filter = encodeURIComponent('(operationType = "compute.instances.preempted") AND (insertTime > "2026-11-23T11:59:00Z")');
    const zone = await get(`/compute/v1/projects/p1/zones/us-central1-a/operations?filter=${filter}`);
    expect(zone.status).toBe(200);
    expect(zone.body.kind).toBe('compute#operationList');
    const items = zone.body.items as Record<string, unknown>[];
    expect(items.map((o) => [o.operationType, o.targetLink, o.status, o.user])).toEqual([['compute.instances.preempted', 'https://www.googleapis.com/compute/v1/projects/p1/zones/us-central1-a/instances/vm-a', 'DONE', 'system']]);
    const agg = await get(`/compute/v1/projects/p1/aggregated/operations?filter=${filter}`);
    expect(agg.body.kind).toBe('compute#operationAggregatedList');
    const scopes = agg.body.items as Record<string, { operations?: unknown[]; warning?: { code: string } }>;
    expect(scopes['zones/us-central1-a']?.operations).toHaveLength(1);
    expect(scopes['zones/us-central1-b']?.operations).toHaveLength(1);
    expect(scopes['zones/us-central1-c']?.warning?.code).toBe('NO_RESULTS_ON_PAGE');
    const later = encodeURIComponent('(operationType = "compute.instances.preempted") AND (insertTime > "2026-11-23T12:00:01Z")');
    const onlyB = await get(`/compute/v1/projects/p1/aggregated/operations?filter=${later}`);
    expect((onlyB.body.items as Record<string, { operations?: unknown[] }>)['zones/us-central1-a']?.operations).toBeUndefined();
    const page1 = await get(`/compute/v1/projects/p1/aggregated/operations?filter=${filter}&maxResults=1`);
    expect(typeof page1.body.nextPageToken).toBe('string');
    const page2 = await get(`/compute/v1/projects/p1/aggregated/operations?filter=${filter}&maxResults=1&pageToken=${page1.body.nextPageToken as string}`);
    expect(page2.body.nextPageToken).toBeUndefined();
  });

  it('answers bad auth and bad filters in Google JSON error form', async () => {
    const noAuth = await get('/compute/v1/projects/p1/aggregated/operations', 'wrong');
    expect(noAuth.status).toBe(401);
    expect(noAuth.body.error).toMatchObject({ code: 401, status: 'UNAUTHENTICATED' });
    const bad = await get(`/compute/v1/projects/p1/aggregated/operations?filter=${encodeURIComponent('operationType ~ preempted')}`);
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: 400, status: 'INVALID_ARGUMENT' });
    expect(parseOperationFilter('operationType="compute.instances.preempted"')).toEqual([{ field: 'operationType', op: '=', value: 'compute.instances.preempted' }]);
  });

  it('maps a preemption operation to a notice with the 30 s window', () => {
    const op = api.control.preempt('p2', 'us-central1-c', 'vm-c', Date.parse('2026-11-23T12:00:00Z'));
    expect(noticeOfOperation(op, 'cloud', Date.now())).toMatchObject({ node: 'vm-c', kind: 'preemption', source: 'gcp', deadline: '2026-11-23T12:00:30.000Z', detail: { zone: 'us-central1-c', via: 'compute-api' } });
    expect(noticeOfOperation({ ...op, operationType: 'compute.instances.stop' }, 'cloud', Date.now())).toBeUndefined();
  });
});

describe('gcp provider: preemptionOperations through the notice monitor', () => {
  it('hears a preempted VM of the project within a listing, for the node it names, and nothing else', async () => {
    const p = await gcp.create(
      { gpuModel: 'A100', gpus: 1, pricePerHour: 1.2, node: 'vm-self', zone: 'us-central1-a', metadataUrl: 'http://127.0.0.1:9', preemptionOperations: { project: 'p3', endpoint: api.url, intervalMs: 200 } },
      makeCtx({ name: 'gce', env: { GOOGLE_OAUTH_ACCESS_TOKEN: 'tok-1' } }),
    );
    const host = (id: string, instanceId: string): NodeInfo => ({ id, provider: 'gpu', gpuModel: 'A100', gpus: 1, capacity: 'spot', pricePerHour: 1.2, state: 'ready', meta: { instanceId } });
    const ssh = { name: 'gpu', notices: { poll: async () => Promise.resolve([]) } };
    const seen: SeenNotice[] = [];
    const errors: NoticeMonitorError[] = [];
    const m = new NoticeMonitor({ intervalMs: 1000, onNotice: (s) => seen.push(s), onError: (e) => errors.push(e) });
    m.setNodes([
      { provider: p, node: { id: 'vm-self', provider: 'gce', gpuModel: 'A100', gpus: 1, capacity: 'spot', pricePerHour: 1.2, state: 'ready', zone: 'us-central1-a' } },
      { provider: ssh, node: host('gcp-a100-1', 'vm-east-7') },
      { provider: ssh, node: host('gcp-a100-2', 'vm-east-8') },
    ]);
    m.start();
    try {
      await until('the first listing', () => api.control.requests().some((r) => r.path === '/compute/v1/projects/p3/aggregated/operations') || undefined);
      api.control.operation('p3', 'us-central1-b', 'vm-east-8', 'compute.instances.start');
      const t0 = Date.now();
      api.control.preempt('p3', 'us-central1-b', 'vm-east-7');
      api.control.preempt('p3', 'us-central1-a', 'vm-self');
      await until('both preemptions', () => (seen.length >= 2 ? true : undefined));
      expect(Date.now() - t0).toBeLessThan(3000);
      await sleep(500);
      expect(seen.map((s) => [s.provider, s.node.id, s.notice.kind, s.via]).sort()).toEqual([
        ['gce', 'vm-self', 'preemption', 'watch'],
        ['gpu', 'gcp-a100-1', 'preemption', 'watch'],
      ]);
      expect(errors).toEqual([]);
      expect(m.stats()).toMatchObject({ fleetSources: 1, covered: 1 });
    } finally {
      await m.stop();
      await p.close?.();
    }
  });
});
