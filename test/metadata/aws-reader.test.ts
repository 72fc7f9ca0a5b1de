// AwsNoticeReader against the IMDS fake: notices of every documented shape, token caching and the
// refresh on 401, and faults (401, 404, 500, garbage, slow, unreachable) as clear ProviderErrors.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ProviderError } from '../../src/core/errors.js';
import { startAwsImdsServer, type AwsImdsControl } from '../fakes/aws-imds.js';
import type { FakeHandle } from '../fakes/http-util.js';
import { AwsNoticeReader, REBALANCE_DEADLINE_MS, createHttpTransport, type MetadataTransport } from '../../src/providers/kit/metadata/index.js';

const SPOT = '/latest/meta-data/spot/instance-action';
const MAINT = '/latest/meta-data/events/maintenance/scheduled';

describe('AwsNoticeReader', () => {
  let imds: FakeHandle<AwsImdsControl>;
  let transport: MetadataTransport;
  let reader: AwsNoticeReader;
  beforeAll(async () => {
    imds = await startAwsImdsServer({});
    transport = createHttpTransport();
  });
  afterAll(async () => {
    await transport.close?.();
    await imds.close();
  });
  const fresh = (over: Partial<ConstructorParameters<typeof AwsNoticeReader>[0]> = {}): AwsNoticeReader =>
    new AwsNoticeReader({ transport, baseUrl: imds.url, provider: 'aws-test', timeoutMs: 2000, ...over });
  afterEach(() => {
    imds.control.setFault(null);
    imds.control.clearSpotInterruption();
    imds.control.clearRebalance();
    imds.control.clearMaintenance();
    imds.control.setMaintenanceShape('array');
    for (const p of [SPOT, MAINT]) imds.control.overrideItem(p, null);
  });

  it('reports nothing while IMDS has no notice (404s and an empty maintenance list)', async () => {
    reader = fresh();
    expect(await reader.poll('i-a')).toEqual([]);
  });

  it('turns instance-action into a preemption notice with deadline = time and a stable id', async () => {
    reader = fresh();
    const { time } = imds.control.triggerSpotInterruption({ action: 'terminate' });
    const [n] = await reader.poll('i-a');
    expect(n).toMatchObject({ id: `aws:i-a:spot:terminate:${time}`, provider: 'aws-test', node: 'i-a', source: 'aws', kind: 'preemption', action: 'terminate', deadline: new Date(time).toISOString() });
    const again = await reader.poll('i-a');
    expect(again).toEqual([n]);
  });

  it.each(['stop', 'hibernate'] as const)('reports the %s action', async (action) => {
    reader = fresh();
    imds.control.triggerSpotInterruption({ action, time: '2026-05-01T10:02:00Z' });
    const [n] = await reader.poll('i-a');
    expect(n?.action).toBe(action);
    expect(n?.deadline).toBe('2026-05-01T10:02:00.000Z');
  });

  it('reports a rebalance recommendation with deadline noticeTime + 120 s', async () => {
    reader = fresh();
    imds.control.triggerRebalance({ noticeTime: '2026-05-01T10:00:00Z' });
    const [n] = await reader.poll('i-a');
    expect(n).toMatchObject({ kind: 'rebalance', id: 'aws:i-a:rebalance:2026-05-01T10:00:00Z', deadline: new Date(Date.parse('2026-05-01T10:00:00Z') + REBALANCE_DEADLINE_MS).toISOString() });
  });

  it('reads scheduled maintenance as an array and as a single object (AEMM), dates in IMDS format', async () => {
    reader = fresh();
    imds.control.addMaintenance({ code: 'instance-stop', notBefore: '21 Jan 2019 09:00:43 GMT', eventId: 'instance-event-1' });
    imds.control.addMaintenance({ code: 'system-reboot', notBefore: '2 Feb 2019 10:00:00 GMT', eventId: 'instance-event-2' });
    const arr = await reader.poll('i-a');
    expect(arr.map((n) => [n.kind, n.action, n.deadline, n.id])).toEqual([
      ['maintenance', 'instance-stop', '2019-01-21T09:00:43.000Z', 'aws:i-a:maintenance:instance-event-1'],
      ['maintenance', 'system-reboot', '2019-02-02T10:00:00.000Z', 'aws:i-a:maintenance:instance-event-2'],
    ]);
    imds.control.setMaintenanceShape('object');
    const obj = await reader.poll('i-a');
    expect(obj.map((n) => n.id)).toEqual(['aws:i-a:maintenance:instance-event-1']);
  });

  it('ignores completed and canceled maintenance events', async () => {
    reader = fresh();
    const ev = (state: string, id: string): Record<string, string> => ({ NotBefore: '21 Jan 2019 09:00:43 GMT', Code: 'system-reboot', Description: 'x', EventId: id, NotAfter: '21 Jan 2019 09:17:23 GMT', State: state });
    imds.control.overrideItem(MAINT, JSON.stringify([ev('completed', 'e1'), ev('canceled', 'e2'), ev('active', 'e3')]));
    expect((await reader.poll('i-a')).map((n) => n.id)).toEqual(['aws:i-a:maintenance:e3']);
    imds.control.overrideItem(MAINT, JSON.stringify(ev('canceled', 'e4')));
    expect(await reader.poll('i-a')).toEqual([]);
  });

  it('caches the token across polls', async () => {
    reader = fresh();
    const before = imds.control.state().tokensIssued;
    await reader.poll('i-a');
    await reader.poll('i-a');
    await reader.poll('i-a');
    expect(imds.control.state().tokensIssued - before).toBe(1);
  });

  it('gets a new token once when IMDS answers 401 (expired token), and goes on', async () => {
    reader = fresh();
    await reader.poll('i-a');
    const before = imds.control.state().tokensIssued;
    imds.control.expireTokens();
    imds.control.triggerSpotInterruption();
    const notices = await reader.poll('i-a');
    expect(notices.map((n) => n.kind)).toEqual(['preemption']);
    expect(imds.control.state().tokensIssued - before).toBe(1);
  });

  it('fails clearly when IMDS answers 401 even with a fresh token', async () => {
    reader = fresh();
    imds.control.setFault({ status: 401 });
    const err = await reader.poll('i-a').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    const msg = (err as Error).message;
    expect(msg).toContain('provider "aws-test"');
    expect(msg).toContain(`${imds.url}/latest/meta-data/`);
    expect(msg).toContain('HTTP 401');
    expect(msg).toContain('fresh IMDSv2 token');
  });

  it('treats 404 everywhere as "no notice", not an error', async () => {
    reader = fresh();
    imds.control.setFault({ status: 404 });
    expect(await reader.poll('i-a')).toEqual([]);
  });

  it('fails with a retryable error naming the URL on 500', async () => {
    reader = fresh();
    imds.control.setFault({ status: 500, paths: [SPOT] });
    const err = (await reader.poll('i-a').catch((e: unknown) => e)) as ProviderError;
    expect(err).toBeInstanceOf(ProviderError);
    expect(err.retryable).toBe(true);
    expect(err.message).toContain(`GET ${imds.url}${SPOT}: HTTP 500`);
    expect(err.address).toBe('node.aws-test.i-a');
  });

  it('fails clearly on garbage bodies, and on JSON of the wrong shape', async () => {
    reader = fresh();
    imds.control.setFault({ garbage: true, paths: [SPOT] });
    const e1 = (await reader.poll('i-a').catch((e: unknown) => e)) as ProviderError;
    expect(e1).toBeInstanceOf(ProviderError);
    expect(e1.message).toMatch(/unexpected answer \(HTTP 200\): expected \{"action"/);
    imds.control.setFault(null);
    imds.control.overrideItem(SPOT, JSON.stringify({ action: 'terminate', time: 'soon' }));
    await expect(reader.poll('i-a')).rejects.toThrow(/instance-action: unexpected answer/);
    imds.control.overrideItem(SPOT, JSON.stringify({ action: 'explode', time: '2026-05-01T10:02:00Z' }));
    await expect(reader.poll('i-a')).rejects.toThrow(ProviderError);
    imds.control.overrideItem(SPOT, null);
    imds.control.overrideItem(MAINT, JSON.stringify([{ Code: 'system-reboot', NotBefore: 'next tuesday' }]));
    await expect(reader.poll('i-a')).rejects.toThrow(/maintenance\/scheduled: unexpected answer/);
  });

  it('gives up on a slow answer after timeoutMs with an error, not a hang', async () => {
    reader = fresh({ timeoutMs: 200 });
    imds.control.setFault({ delayMs: 3000, paths: [SPOT] });
    const err = (await reader.poll('i-a').catch((e: unknown) => e)) as ProviderError;
    expect(err).toBeInstanceOf(ProviderError);
    expect(err.message).toContain('no answer from');
    expect(err.retryable).toBe(true);
  });

  it('fails clearly when IMDS cannot be reached, and on a refused token request', async () => {
    const dead = new AwsNoticeReader({ transport, baseUrl: 'http://127.0.0.1:1', provider: 'aws-test' });
    await expect(dead.poll('i-a')).rejects.toThrow(/aws metadata PUT http:\/\/127\.0\.0\.1:1\/latest\/api\/token: cannot reach/);
    expect(() => new AwsNoticeReader({ transport, baseUrl: imds.url, provider: 'x', tokenTtlSeconds: 0 })).toThrow(RangeError);
  });

  it('reads identity items', async () => {
    expect(await fresh().identity('i-a', 'instance-id')).toBe('i-1234567890abcdef0');
  });
});
