// The fleet-level AWS notice source: the in-repo SQS fake as an HTTP server, driven by the real AWS
// SDK v3 client (AWS JSON 1.0 protocol, SigV4, MD5OfBody checked by the SDK), then the aws
// provider's interruption queue through the notice monitor: EventBridge's EC2 events become notices
// for the right nodes, are deleted once acknowledged, come back while unacknowledged, and events
// that warn of nothing are deleted at once.
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeleteMessageCommand, ReceiveMessageCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { NodeInfo } from '../../src/core/types.js';
import { rebalanceEvent, scheduledChangeEvent, spotInterruptionEvent, startFakeSqs, stateChangeEvent, type FakeSqsControl } from '../fakes/sqs.js';
import type { FakeHandle } from '../fakes/http-util.js';
import { NoticeMonitor, type SeenNotice } from '../../src/watch/notice-monitor.js';
import { createAwsProvider } from '../../providers/aws/index.js';
import { noticesOfEvent } from '../../providers/aws/interruption-queue.js';
import { makeCtx, sleep, until } from './helpers.js';

const CREDS = { accessKeyId: 'AKIDSPOTFLEETTEST', secretAccessKey: 'fake-secret-key' };
const ENV = { AWS_ACCESS_KEY_ID: CREDS.accessKeyId, AWS_SECRET_ACCESS_KEY: CREDS.secretAccessKey };

let sqs: FakeHandle<FakeSqsControl>;
beforeAll(async () => {
  sqs = await startFakeSqs({ visibilityTimeoutS: 30 });
});
afterAll(async () => {
  await sqs.close();
});

function rawPost(target: string, body: string, headers: Record<string, string>): Promise<{ status: number; json: Record<string, unknown>; headers: Record<string, unknown> }> {
  const u = new URL(sqs.url);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, method: 'POST', path: '/', headers: { 'Content-Type': 'application/x-amz-json-1.0', 'X-Amz-Target': target, ...headers } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as Record<string, unknown>, headers: res.headers }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('the SQS fake, through the AWS SDK', () => {
  const client = (): SQSClient => new SQSClient({ region: 'us-east-1', endpoint: sqs.url, credentials: CREDS });

  it('sends, long-polls, hides a received message, delivers it again with a new handle, and deletes by the newest handle only', async () => {
    const url = sqs.control.createQueue('sdk-roundtrip');
    const c = client();
    const body = spotInterruptionEvent('i-0abc123def4567890');
    // A long poll started first is answered by the send, not by the end of its wait.
    const t0 = Date.now();
    const waiting = c.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 10, VisibilityTimeout: 1, MessageSystemAttributeNames: ['ApproximateReceiveCount', 'SentTimestamp'] }));
    await sleep(200);
    const sent = await c.send(new SendMessageCommand({ QueueUrl: url, MessageBody: body }));
    const first = await waiting;
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(first.Messages?.map((m) => [m.MessageId, m.Body, m.Attributes?.ApproximateReceiveCount])).toEqual([[sent.MessageId, body, '1']]);
    // Hidden for its visibility timeout, then back with a new handle.
    expect((await c.send(new ReceiveMessageCommand({ QueueUrl: url, WaitTimeSeconds: 0 }))).Messages).toBeUndefined();
    const again = await c.send(new ReceiveMessageCommand({ QueueUrl: url, WaitTimeSeconds: 5, MessageSystemAttributeNames: ['All'] }));
    const m2 = again.Messages?.[0];
    expect(m2?.Attributes?.ApproximateReceiveCount).toBe('2');
    expect(m2?.ReceiptHandle).not.toBe(first.Messages?.[0]?.ReceiptHandle);
    // The old handle "succeeds" but deletes nothing; the newest one deletes.
    await c.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: first.Messages?.[0]?.ReceiptHandle }));
    expect(sqs.control.state().queues.find((q) => q.url === url)).toMatchObject({ inFlight: 1, deleted: 0 });
    await c.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: m2?.ReceiptHandle }));
    expect(sqs.control.state().queues.find((q) => q.url === url)).toMatchObject({ visible: 0, inFlight: 0, deleted: 1 });
    c.destroy();
  });

  it('answers errors the way SQS does: typed JSON with x-amzn-query-error, which the SDK turns into named errors', async () => {
    const c = client();
    await expect(c.send(new ReceiveMessageCommand({ QueueUrl: `${sqs.url}/123456789012/nope` }))).rejects.toMatchObject({ name: 'QueueDoesNotExist' });
    const url = sqs.control.createQueue('errors');
    await expect(c.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: 'garbage' }))).rejects.toMatchObject({ name: 'ReceiptHandleIsInvalid' });
    c.destroy();
    const unsigned = await rawPost('AmazonSQS.ReceiveMessage', JSON.stringify({ QueueUrl: url }), {});
    expect(unsigned.status).toBe(403);
    expect(unsigned.json.__type).toBe('com.amazon.coral.service#MissingAuthenticationTokenException');
    const auth = `AWS4-HMAC-SHA256 Credential=${CREDS.accessKeyId}/20260101/us-east-1/sqs/aws4_request, SignedHeaders=host;x-amz-date, Signature=${'0'.repeat(64)}`;
    const tooMany = await rawPost('AmazonSQS.ReceiveMessage', JSON.stringify({ QueueUrl: url, MaxNumberOfMessages: 11 }), { Authorization: auth });
    expect(tooMany.status).toBe(400);
    expect(tooMany.json.__type).toBe('com.amazonaws.sqs#InvalidParameterValue');
    expect(tooMany.headers['x-amzn-query-error']).toBe('InvalidParameterValue;Sender');
    const unknown = await rawPost('AmazonSQS.PurgeEverything', '{}', { Authorization: auth });
    expect(unknown.json.__type).toBe('com.amazon.coral.service#UnknownOperationException');
  });
});

describe('EventBridge EC2 events as notices', () => {
  it('maps interruption, rebalance, state change and scheduled change; ignores the rest', () => {
    const at = Date.parse('2026-11-23T12:00:00Z');
    const now = at + 1000;
    const [spot] = noticesOfEvent(spotInterruptionEvent('i-0aaa', { at, action: 'stop' }), 'cloud', now);
    expect(spot).toMatchObject({ node: 'i-0aaa', kind: 'preemption', action: 'stop', deadline: '2026-11-23T12:02:00.000Z', source: 'aws', provider: 'cloud' });
    expect(noticesOfEvent(rebalanceEvent('i-0bbb', { at }), 'cloud', now)[0]).toMatchObject({ node: 'i-0bbb', kind: 'rebalance' });
    expect(noticesOfEvent(stateChangeEvent('i-0ccc', 'shutting-down', { at }), 'cloud', now)[0]).toMatchObject({ node: 'i-0ccc', kind: 'termination', deadline: '2026-11-23T12:00:00.000Z' });
    expect(noticesOfEvent(stateChangeEvent('i-0ccc', 'running', { at }), 'cloud', now)).toEqual([]);
    const health = noticesOfEvent(scheduledChangeEvent(['i-0ddd', 'i-0eee'], { at, startTime: at + 86_400_000 }), 'cloud', now);
    expect(health.map((n) => [n.node, n.kind, n.deadline])).toEqual([
      ['i-0ddd', 'maintenance', '2026-11-24T12:00:00.000Z'],
      ['i-0eee', 'maintenance', '2026-11-24T12:00:00.000Z'],
    ]);
    expect(noticesOfEvent('not json', 'cloud', now)).toEqual([]);
    expect(noticesOfEvent(JSON.stringify({ id: 'x', source: 'aws.s3', 'detail-type': 'Object Created', detail: {} }), 'cloud', now)).toEqual([]);
  });
});

describe('aws provider: interruptionQueue through the notice monitor', () => {
  it('turns queued events into notices for the fleet nodes, deletes handled and irrelevant messages, and hears again what was not handled', async () => {
    const url = sqs.control.createQueue('fleet-events');
    const p = createAwsProvider({ interruptionQueue: { url, region: 'us-east-1', endpoint: sqs.url, visibilityTimeoutSeconds: 1, receivers: 2 } }, makeCtx({ name: 'cloud', env: ENV }));
    expect(p.notices?.fleet).toBeDefined();
    const nodes: NodeInfo[] = ['i-0000000000000001', 'i-0000000000000002'].map((id) => ({ id, provider: 'cloud', gpuModel: 'V100', gpus: 1, capacity: 'spot', pricePerHour: 0.9, state: 'ready', leaseId: id }));
    const seen: SeenNotice[] = [];
    const m = new NoticeMonitor({ intervalMs: 1000, onNotice: (s) => seen.push(s), onError: () => undefined });
    m.setNodes(nodes.map((node) => ({ provider: p, node })));
    m.start();
    try {
      await until('the receivers polling', () => sqs.control.requests().filter((r) => r.queueUrl === url && r.action === 'ReceiveMessage').length >= 2);
      sqs.control.send(url, stateChangeEvent('i-0000000000000001', 'running'));
      sqs.control.send(url, spotInterruptionEvent('i-0000000000000002'));
      const got = await until('the interruption', () => seen.find((s) => s.node.id === 'i-0000000000000002'));
      expect(got.notice).toMatchObject({ kind: 'preemption', action: 'terminate', source: 'aws' });
      expect(seen).toHaveLength(1);
      // The state change warned of nothing: deleted. The interruption waits for its acknowledgement.
      await until('the state change deleted', () => sqs.control.state().queues.find((q) => q.url === url)?.deleted === 1 || undefined);
      // Not acknowledged within the visibility timeout: delivered again (the monitor reports it once).
      const receives = (): number => sqs.control.requests().filter((r) => r.queueUrl === url && r.action === 'ReceiveMessage').length;
      const before = receives();
      await sleep(1500);
      expect(receives()).toBeGreaterThan(before);
      expect(sqs.control.state().queues.find((q) => q.url === url)).toMatchObject({ deleted: 1 });
      expect(seen).toHaveLength(1);
      // Acknowledged (its workloads are safe): deleted.
      await p.notices?.acknowledge?.(got.node, got.notice);
      await until('the interruption deleted', () => sqs.control.state().queues.find((q) => q.url === url)?.deleted === 2 || undefined);
      expect(m.stats()).toMatchObject({ fleetSources: 1, covered: 2, polls: 0 });
    } finally {
      await m.stop();
      await p.close?.();
    }
  });
});
