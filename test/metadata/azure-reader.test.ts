// AzureNoticeReader against the Scheduled Events fake: only this VM's events, every EventType,
// Started events, StartRequests acknowledgement, the slow first call, and faults.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ProviderError } from '../../src/core/errors.js';
import { startAzureEventsServer, type AzureEventsControl } from '../fakes/azure-events.js';
import type { FakeHandle } from '../fakes/http-util.js';
import { AzureNoticeReader, createHttpTransport, type MetadataTransport } from '../../src/providers/kit/metadata/index.js';

describe('AzureNoticeReader', () => {
  let az: FakeHandle<AzureEventsControl>;
  let transport: MetadataTransport;
  beforeAll(async () => {
    az = await startAzureEventsServer({ vmName: 'vm-a' });
    transport = createHttpTransport();
  });
  afterAll(async () => {
    await transport.close?.();
    await az.close();
  });
  afterEach(() => {
    az.control.setFault(null);
    az.control.clearEvents();
  });
  const fresh = (over: Partial<ConstructorParameters<typeof AzureNoticeReader>[0]> = {}): AzureNoticeReader =>
    new AzureNoticeReader({ transport, baseUrl: az.url, provider: 'az-test', vmName: 'vm-a', ...over });

  it('reports only events whose Resources name this VM', async () => {
    az.control.addEvent({ EventType: 'Reboot', Resources: ['vm-b', 'vm-c'] });
    const mine = az.control.addEvent({ EventType: 'Preempt', Resources: ['vm-b', 'VM-A'], NotBefore: 'Mon, 19 Sep 2016 18:29:47 GMT' });
    const ns = await fresh().poll('node-a');
    expect(ns).toHaveLength(1);
    expect(ns[0]).toMatchObject({ id: `azure:node-a:${mine.EventId}`, provider: 'az-test', node: 'node-a', source: 'azure', kind: 'preemption', action: 'Preempt', deadline: '2016-09-19T18:29:47.000Z' });
    expect(ns[0]?.detail).toMatchObject({ eventId: mine.EventId, eventStatus: 'Scheduled', eventSource: 'Platform', durationInSeconds: -1 });
  });

  it('maps every EventType to a notice kind', async () => {
    for (const t of ['Freeze', 'Reboot', 'Redeploy', 'Preempt', 'Terminate'] as const) az.control.addEvent({ EventType: t, EventId: `id-${t}` });
    const ns = await fresh().poll('n');
    expect(Object.fromEntries(ns.map((n) => [n.action, n.kind]))).toEqual({ Freeze: 'maintenance', Reboot: 'maintenance', Redeploy: 'maintenance', Preempt: 'preemption', Terminate: 'termination' });
  });

  it('gives a started Preempt (empty NotBefore) first seen + 30 s, and a started Reboot first seen', async () => {
    const now = Date.parse('2026-04-01T00:00:00Z');
    az.control.addEvent({ EventType: 'Preempt', EventStatus: 'Started', EventId: 'p' });
    az.control.addEvent({ EventType: 'Reboot', EventStatus: 'Started', EventId: 'r' });
    const ns = await fresh({ now: () => now }).poll('n');
    expect(ns.map((n) => [n.action, n.deadline])).toEqual([
      ['Preempt', '2026-04-01T00:00:30.000Z'],
      ['Reboot', '2026-04-01T00:00:00.000Z'],
    ]);
  });

  it('reads the VM name from IMDS when not configured', async () => {
    az.control.addEvent({ EventType: 'Terminate' });
    const ns = await new AzureNoticeReader({ transport, baseUrl: az.url, provider: 'az-test' }).poll('n');
    expect(ns.map((n) => n.kind)).toEqual(['termination']);
  });

  it('acknowledges with StartRequests: the fake records it and the event starts', async () => {
    const ev = az.control.addEvent({ EventType: 'Preempt' });
    const r = fresh();
    const [n] = await r.poll('n');
    await r.acknowledge(n as NonNullable<typeof n>);
    expect(az.control.state().acks).toEqual([{ EventId: ev.EventId, known: true }]);
    const [after] = await r.poll('n');
    expect(after?.detail?.eventStatus).toBe('Started');
    expect(after?.id).toBe(n?.id);
  });

  it('waits long for the first call (the service switching on) and short afterwards', async () => {
    const slow = await startAzureEventsServer({ vmName: 'vm-a', firstCallDelayMs: 600 });
    try {
      const r = new AzureNoticeReader({ transport, baseUrl: slow.url, provider: 'az-test', vmName: 'vm-a', timeoutMs: 200 });
      expect(await r.poll('n')).toEqual([]);
      slow.control.setFault({ delayMs: 600 });
      await expect(r.poll('n')).rejects.toThrow(/no answer from .* within 200 ms/);
    } finally {
      await slow.close();
    }
  });

  it('fails clearly on 400, 500, garbage and a document of the wrong shape', async () => {
    const r = fresh();
    az.control.setFault({ status: 400 });
    await expect(r.poll('n')).rejects.toThrow(/azure metadata GET http:\/\/127\.0\.0\.1:\d+\/metadata\/scheduledevents\?api-version=2020-07-01: HTTP 400.*Metadata: true/);
    az.control.setFault({ status: 500 });
    const e = (await r.poll('n').catch((x: unknown) => x)) as ProviderError;
    expect(e).toBeInstanceOf(ProviderError);
    expect(e.retryable).toBe(true);
    az.control.setFault({ garbage: true });
    await expect(r.poll('n')).rejects.toThrow(/unexpected answer \(HTTP 200\): expected \{"DocumentIncarnation"/);
  });

  it('refuses to acknowledge a notice without an EventId', async () => {
    await expect(fresh().acknowledge({ id: 'x', provider: 'p', node: 'n', source: 'azure', kind: 'preemption', deadline: '', receivedAt: '' })).rejects.toThrow(/carries no Azure EventId/);
  });
});
