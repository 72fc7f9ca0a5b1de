// GcpNoticeReader against the GCE fake: poll and the wait_for_change watch, every documented value,
// and faults (503, garbage, a server that is not GCE) as clear ProviderErrors.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ProviderError } from '../../src/core/errors.js';
import type { Notice } from '../../src/core/types.js';
import { startGceMetadataServer, type GceMetadataControl } from '../fakes/gce-metadata.js';
import type { FakeHandle } from '../fakes/http-util.js';
import { GcpNoticeReader, createHttpTransport, type MetadataTransport } from '../../src/providers/kit/metadata/index.js';
import { memoryLogger } from './util.js';

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('GcpNoticeReader', () => {
  let gce: FakeHandle<GceMetadataControl>;
  let transport: MetadataTransport;
  beforeAll(async () => {
    gce = await startGceMetadataServer({ name: 'vm-a' });
    transport = createHttpTransport();
  });
  afterAll(async () => {
    await transport.close?.();
    await gce.close();
  });
  afterEach(() => {
    gce.control.setFault(null);
    gce.control.clearPreempted();
    gce.control.setMaintenanceEvent('NONE');
  });
  const fresh = (over: Partial<ConstructorParameters<typeof GcpNoticeReader>[0]> = {}): GcpNoticeReader => new GcpNoticeReader({ transport, baseUrl: gce.url, provider: 'gcp-test', ...over });

  it('reports nothing for preempted FALSE and maintenance NONE or MIGRATE', async () => {
    const r = fresh();
    expect(await r.poll('vm-a')).toEqual([]);
    gce.control.setMaintenanceEvent('MIGRATE_ON_HOST_MAINTENANCE');
    expect(await r.poll('vm-a')).toEqual([]);
  });

  it('turns preempted TRUE into a preemption 30 s after it was first seen, stable across polls', async () => {
    let now = Date.parse('2026-04-01T00:00:00Z');
    const r = fresh({ now: () => now });
    gce.control.preempt();
    const [n] = await r.poll('vm-a');
    expect(n).toMatchObject({ provider: 'gcp-test', node: 'vm-a', source: 'gcp', kind: 'preemption', receivedAt: '2026-04-01T00:00:00.000Z', deadline: '2026-04-01T00:00:30.000Z' });
    expect(n?.id).toMatch(/^gcp:vm-a:preempted:[0-9a-f]{16}$/);
    now += 5000;
    expect(await r.poll('vm-a')).toEqual([n]);
  });

  it('turns TERMINATE_ON_HOST_MAINTENANCE into a maintenance notice', async () => {
    const r = fresh();
    gce.control.setMaintenanceEvent('TERMINATE_ON_HOST_MAINTENANCE');
    const [n] = await r.poll('vm-a');
    expect(n).toMatchObject({ kind: 'maintenance', action: 'TERMINATE_ON_HOST_MAINTENANCE' });
  });

  it('fails with a retryable error on 503 and a clear one on garbage', async () => {
    const r = fresh();
    gce.control.setFault({ status: 503 });
    const e = (await r.poll('vm-a').catch((x: unknown) => x)) as ProviderError;
    expect(e).toBeInstanceOf(ProviderError);
    expect(e.retryable).toBe(true);
    expect(e.message).toContain(`gcp metadata GET ${gce.url}/computeMetadata/v1/instance/`);
    expect(e.message).toContain('HTTP 503');
    gce.control.setFault(null);
    gce.control.setValue('instance/preempted', 'MAYBE');
    await expect(r.poll('vm-a')).rejects.toThrow(/expected TRUE or FALSE, got "MAYBE"/);
    gce.control.setFault({ garbage: true });
    await expect(r.poll('vm-a')).rejects.toThrow(ProviderError);
  });

  it('refuses an answer without Metadata-Flavor: Google (not a GCE metadata server)', async () => {
    const srv: Server = createServer((_req, res) => res.end('FALSE'));
    await new Promise<void>((ok) => srv.listen(0, '127.0.0.1', ok));
    try {
      const r = new GcpNoticeReader({ transport, baseUrl: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`, provider: 'gcp-test' });
      await expect(r.poll('vm-a')).rejects.toThrow(/lacks the "Metadata-Flavor: Google" header/);
    } finally {
      srv.closeAllConnections();
      await new Promise<void>((ok) => srv.close(() => ok()));
    }
  });

  it('watch long-polls with wait_for_change and reports each new notice once', async () => {
    const r = fresh({ watchTimeoutSec: 30 });
    const seen: Notice[] = [];
    const ac = new AbortController();
    const done = r.watch('vm-a', (n) => seen.push(n), ac.signal);
    await until(() => gce.control.state().waiting === 2, 'both long-polls to hang');
    gce.control.preempt();
    await until(() => seen.length === 1, 'the preemption notice');
    gce.control.setMaintenanceEvent('TERMINATE_ON_HOST_MAINTENANCE');
    await until(() => seen.length === 2, 'the maintenance notice');
    await until(() => gce.control.state().waiting === 2, 'long-polls to hang again');
    ac.abort();
    await done;
    expect(seen.map((n) => n.kind).sort()).toEqual(['maintenance', 'preemption']);
    const waits = gce.control.state().requests.filter((q) => q.wait);
    expect(waits.length).toBeGreaterThanOrEqual(2);
  });

  it('watch survives errors: logs, waits retryDelayMs, and goes on', async () => {
    const log = memoryLogger();
    const r = fresh({ retryDelayMs: 50, log, watchTimeoutSec: 30 });
    const seen: Notice[] = [];
    const ac = new AbortController();
    gce.control.setFault({ status: 503 });
    const done = r.watch('vm-a', (n) => seen.push(n), ac.signal);
    await until(() => log.lines.filter((l) => l.level === 'warn').length >= 2, 'failed polls to be logged');
    gce.control.setFault(null);
    gce.control.preempt();
    await until(() => seen.length === 1, 'the preemption notice after recovery');
    ac.abort();
    await done;
    expect(seen[0]?.kind).toBe('preemption');
    expect(String(log.lines[0]?.fields?.error)).toContain('HTTP 503');
  });
});
