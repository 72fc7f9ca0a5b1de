// The Azure Scheduled Events fake as an HTTP server: the Metadata header, the document and its
// incarnation, StartRequests acknowledgements, identity and versions.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAzureEventsServer, type AzureEventsControl } from '../fakes/azure-events.js';
import type { FakeHandle } from '../fakes/http-util.js';
import { raw } from './util.js';

const M = { Metadata: 'true' };
interface Doc {
  DocumentIncarnation: number;
  Events: Record<string, unknown>[];
}

describe('Azure Scheduled Events fake', () => {
  let az: FakeHandle<AzureEventsControl>;
  const events = (v = '2020-07-01'): string => `${az.url}/metadata/scheduledevents?api-version=${v}`;
  const doc = async (): Promise<Doc> => JSON.parse((await raw(events(), { headers: M })).body) as Doc;
  beforeAll(async () => {
    az = await startAzureEventsServer({ vmName: 'vm-a' });
  });
  afterAll(async () => az.close());

  it('answers 400 without Metadata: true or without api-version', async () => {
    expect((await raw(events())).status).toBe(400);
    expect((await raw(`${az.url}/metadata/scheduledevents`, { headers: M })).status).toBe(400);
    expect((await raw(events('1999-01-01'), { headers: M })).status).toBe(400);
  });

  it('serves an empty document, then events with every documented field; incarnation goes up on change', async () => {
    const d0 = await doc();
    expect(d0.Events).toEqual([]);
    const ev = az.control.addEvent({ EventType: 'Preempt', NotBefore: Date.parse('2026-03-01T12:00:30Z') });
    const d1 = await doc();
    expect(d1.DocumentIncarnation).toBe(d0.DocumentIncarnation + 1);
    expect(d1.Events).toEqual([
      {
        EventId: ev.EventId,
        EventStatus: 'Scheduled',
        EventType: 'Preempt',
        ResourceType: 'VirtualMachine',
        Resources: ['vm-a'],
        NotBefore: 'Sun, 01 Mar 2026 12:00:30 GMT',
        Description: 'Preempt scheduled by the fake',
        EventSource: 'Platform',
        DurationInSeconds: -1,
      },
    ]);
    // Same incarnation, same events.
    expect((await doc()).DocumentIncarnation).toBe(d1.DocumentIncarnation);
    // An older api-version leaves out the later fields.
    const old = JSON.parse((await raw(events('2019-01-01'), { headers: M })).body) as Doc;
    expect(old.Events[0]).not.toHaveProperty('DurationInSeconds');
    expect(old.Events[0]).not.toHaveProperty('Description');
  });

  it('accepts StartRequests for an event, records it, starts the event (NotBefore empty)', async () => {
    az.control.clearEvents();
    const ev = az.control.addEvent({ EventType: 'Reboot' });
    const before = (await doc()).DocumentIncarnation;
    const r = await raw(events(), { method: 'POST', headers: { ...M, 'Content-Type': 'application/json' }, body: JSON.stringify({ StartRequests: [{ EventId: ev.EventId }] }) });
    expect(r.status).toBe(200);
    expect(az.control.state().acks).toContainEqual({ EventId: ev.EventId, known: true });
    const after = await doc();
    expect(after.DocumentIncarnation).toBe(before + 1);
    expect(after.Events[0]).toMatchObject({ EventId: ev.EventId, EventStatus: 'Started', NotBefore: '' });
  });

  it('answers 400 to a malformed StartRequests body or a missing header', async () => {
    const post = (body: string, headers: Record<string, string> = M): Promise<number> => raw(events(), { method: 'POST', headers, body }).then((r) => r.status);
    expect(await post('not json')).toBe(400);
    expect(await post('{}')).toBe(400);
    expect(await post('{"StartRequests":[{"EventId":42}]}')).toBe(400);
    expect(await post('{"StartRequests":[]}')).toBe(400);
    expect(await post('{"StartRequests":[{"EventId":"x"}]}', {})).toBe(400);
  });

  it('serves the compute name as text', async () => {
    const r = await raw(`${az.url}/metadata/instance/compute/name?api-version=2021-02-01&format=text`, { headers: M });
    expect(r.status).toBe(200);
    expect(r.body).toBe('vm-a');
  });

  it('removes a finished event; incarnation goes up', async () => {
    az.control.clearEvents();
    const ev = az.control.addEvent({ EventType: 'Freeze', Resources: ['vm-b'] });
    const d1 = await doc();
    az.control.removeEvent(ev.EventId);
    const d2 = await doc();
    expect(d2.Events).toEqual([]);
    expect(d2.DocumentIncarnation).toBe(d1.DocumentIncarnation + 1);
  });
});
