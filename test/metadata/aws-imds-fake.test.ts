// The AWS IMDSv2 fake as an HTTP server: token rules, 401s, methods, notice items and faults.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAwsImdsServer } from '../fakes/aws-imds.js';
import type { FakeHandle } from '../fakes/http-util.js';
import type { AwsImdsControl } from '../fakes/aws-imds.js';
import { raw } from './util.js';

const TTL = 'X-aws-ec2-metadata-token-ttl-seconds';

describe('AWS IMDS fake', () => {
  let imds: FakeHandle<AwsImdsControl>;
  let clock = Date.parse('2026-03-01T12:00:00Z');
  beforeAll(async () => {
    imds = await startAwsImdsServer({ now: () => clock, instanceId: 'i-0abc', availabilityZone: 'eu-west-1b', region: 'eu-west-1' });
  });
  afterAll(async () => imds.close());

  const token = async (ttl = '60'): Promise<string> => {
    const r = await raw(`${imds.url}/latest/api/token`, { method: 'PUT', headers: { [TTL]: ttl } });
    expect(r.status).toBe(200);
    return r.body;
  };

  it('issues tokens for TTL 1..21600 and echoes the TTL header', async () => {
    for (const ttl of ['1', '21600']) {
      const r = await raw(`${imds.url}/latest/api/token`, { method: 'PUT', headers: { [TTL]: ttl } });
      expect(r.status).toBe(200);
      expect(r.headers['x-aws-ec2-metadata-token-ttl-seconds']).toBe(ttl);
      expect(r.body.length).toBeGreaterThan(16);
    }
  });

  it('answers 400 for a missing, non-numeric or out-of-range TTL', async () => {
    for (const headers of [{}, { [TTL]: 'abc' }, { [TTL]: '0' }, { [TTL]: '21601' }, { [TTL]: '-5' }, { [TTL]: '1.5' }]) {
      const r = await raw(`${imds.url}/latest/api/token`, { method: 'PUT', headers });
      expect(r.status, JSON.stringify(headers)).toBe(400);
    }
  });

  it('refuses a token PUT that carries X-Forwarded-For, and GET on the token path', async () => {
    expect((await raw(`${imds.url}/latest/api/token`, { method: 'PUT', headers: { [TTL]: '60', 'X-Forwarded-For': '10.0.0.1' } })).status).toBe(403);
    expect((await raw(`${imds.url}/latest/api/token`)).status).toBe(405);
  });

  it('answers 401 without a token, with an unknown token, and with an expired one', async () => {
    const path = `${imds.url}/latest/meta-data/instance-id`;
    expect((await raw(path)).status).toBe(401);
    expect((await raw(path, { headers: { 'X-aws-ec2-metadata-token': 'nope' } })).status).toBe(401);
    const t = await token('5');
    expect((await raw(path, { headers: { 'X-aws-ec2-metadata-token': t } })).body).toBe('i-0abc');
    clock += 6000;
    expect((await raw(path, { headers: { 'X-aws-ec2-metadata-token': t } })).status).toBe(401);
  });

  it('allows IMDSv1 when tokens are optional, but still rejects a bad token', async () => {
    imds.control.setRequireToken(false);
    try {
      expect((await raw(`${imds.url}/latest/meta-data/instance-id`)).body).toBe('i-0abc');
      expect((await raw(`${imds.url}/latest/meta-data/instance-id`, { headers: { 'X-aws-ec2-metadata-token': 'bad' } })).status).toBe(401);
    } finally {
      imds.control.setRequireToken(true);
    }
  });

  it('allows only GET and HEAD on metadata paths', async () => {
    const t = await token();
    const h = { 'X-aws-ec2-metadata-token': t };
    expect((await raw(`${imds.url}/latest/meta-data/instance-id`, { method: 'POST', headers: h, body: 'x' })).status).toBe(405);
    const head = await raw(`${imds.url}/latest/meta-data/instance-id`, { method: 'HEAD', headers: h });
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
  });

  it('serves identity items', async () => {
    const h = { 'X-aws-ec2-metadata-token': await token() };
    expect((await raw(`${imds.url}/latest/meta-data/placement/availability-zone`, { headers: h })).body).toBe('eu-west-1b');
    expect((await raw(`${imds.url}/latest/meta-data/placement/region`, { headers: h })).body).toBe('eu-west-1');
    expect((await raw(`${imds.url}/latest/meta-data/instance-type`, { headers: h })).body).toBe('p4d.24xlarge');
  });

  it('answers 404 for instance-action until triggered, then {action,time} two minutes ahead', async () => {
    const h = { 'X-aws-ec2-metadata-token': await token() };
    const url = `${imds.url}/latest/meta-data/spot/instance-action`;
    expect((await raw(url, { headers: h })).status).toBe(404);
    expect((await raw(`${imds.url}/latest/meta-data/spot/termination-time`, { headers: h })).status).toBe(404);
    imds.control.triggerSpotInterruption();
    const r = await raw(url, { headers: h });
    expect(r.status).toBe(200);
    const v = JSON.parse(r.body) as { action: string; time: string };
    expect(v.action).toBe('terminate');
    expect(v.time).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
    expect(Date.parse(v.time)).toBe(Math.floor(clock / 1000) * 1000 + 120_000);
    expect((await raw(`${imds.url}/latest/meta-data/spot/termination-time`, { headers: h })).body).toBe(v.time);
    imds.control.clearSpotInterruption();
    expect((await raw(url, { headers: h })).status).toBe(404);
  });

  it('honours a trigger delay', async () => {
    const h = { 'X-aws-ec2-metadata-token': await token('21600') };
    const url = `${imds.url}/latest/meta-data/spot/instance-action`;
    imds.control.triggerSpotInterruption({ action: 'stop', delaySec: 30 });
    expect((await raw(url, { headers: h })).status).toBe(404);
    clock += 31_000;
    expect(JSON.parse((await raw(url, { headers: h })).body)).toMatchObject({ action: 'stop' });
    imds.control.clearSpotInterruption();
  });

  it('serves the rebalance recommendation and scheduled maintenance as an array or one object', async () => {
    const h = { 'X-aws-ec2-metadata-token': await token('21600') };
    expect((await raw(`${imds.url}/latest/meta-data/events/recommendations/rebalance`, { headers: h })).status).toBe(404);
    imds.control.triggerRebalance({ noticeTime: '2026-03-01T12:00:00Z' });
    expect(JSON.parse((await raw(`${imds.url}/latest/meta-data/events/recommendations/rebalance`, { headers: h })).body)).toEqual({ noticeTime: '2026-03-01T12:00:00Z' });
    const url = `${imds.url}/latest/meta-data/events/maintenance/scheduled`;
    expect(JSON.parse((await raw(url, { headers: h })).body)).toEqual([]);
    imds.control.addMaintenance({ code: 'system-reboot', notBefore: Date.parse('2019-01-21T09:00:43Z'), eventId: 'instance-event-0d59937288b749b32' });
    const arr = JSON.parse((await raw(url, { headers: h })).body) as Record<string, string>[];
    expect(arr).toHaveLength(1);
    expect(arr[0]).toMatchObject({ Code: 'system-reboot', NotBefore: '21 Jan 2019 09:00:43 GMT', State: 'active', EventId: 'instance-event-0d59937288b749b32' });
    imds.control.setMaintenanceShape('object');
    const obj = JSON.parse((await raw(url, { headers: h })).body) as Record<string, string>;
    expect(Array.isArray(obj)).toBe(false);
    expect(obj.EventId).toBe('instance-event-0d59937288b749b32');
    imds.control.setMaintenanceShape('array');
    imds.control.clearMaintenance();
    imds.control.clearRebalance();
  });

  it('injects faults on metadata paths but not on the token path', async () => {
    const h = { 'X-aws-ec2-metadata-token': await token('21600') };
    const url = `${imds.url}/latest/meta-data/spot/instance-action`;
    imds.control.setFault({ status: 500 });
    expect((await raw(url, { headers: h })).status).toBe(500);
    expect((await raw(`${imds.url}/latest/api/token`, { method: 'PUT', headers: { [TTL]: '60' } })).status).toBe(200);
    imds.control.setFault({ garbage: true, paths: ['/latest/meta-data/spot/'] });
    const g = await raw(url, { headers: h });
    expect(g.status).toBe(200);
    expect(() => JSON.parse(g.body) as unknown).toThrow();
    expect((await raw(`${imds.url}/latest/meta-data/instance-id`, { headers: h })).status).toBe(200);
    imds.control.setFault(null);
    expect((await raw(url, { headers: h })).status).toBe(404);
    expect(imds.control.state().requests.some((r) => r.status === 500)).toBe(true);
  });
});
