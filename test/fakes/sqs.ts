// A fake Amazon SQS that speaks the AWS JSON 1.0 protocol the SDK uses (POST, `Content-Type:
// application/x-amz-json-1.0`, `X-Amz-Target: AmazonSQS.<Action>`, SigV4 `Authorization`), for the
// queue that EventBridge fills with EC2 events (Karpenter's and NTH's queue mode): SendMessage,
// ReceiveMessage (long polling, visibility timeout, a new receipt handle per receive, MD5OfBody),
// DeleteMessage (only the newest receipt handle deletes, as in SQS) and DeleteMessageBatch.
// Errors answer 400 with `{"__type": "com.amazonaws.sqs#…", "message": …}` and the
// `x-amzn-query-error` header. Signatures are checked for shape (credential scope names `sqs`), not
// recomputed. Plus builders for the EventBridge events EC2 sends, and a control API for tests.
import { createHash, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readBody, serveFake, type FakeHandle, type FakeServerOptions } from './http-util.js';

export interface FakeSqsOptions extends FakeServerOptions {
  /** Account id in queue URLs. Default 123456789012. */
  account?: string;
  /** Default visibility timeout of new queues, seconds. Default 30. */
  visibilityTimeoutS?: number;
}

export interface FakeSqsRequest {
  action: string;
  queueUrl?: string;
  at: number;
  waitTimeSeconds?: number;
}

export interface FakeSqsQueueState {
  url: string;
  /** Messages that a receive would return now. */
  visible: number;
  /** Received and not deleted, still invisible. */
  inFlight: number;
  deleted: number;
}

export interface FakeSqsControl {
  /** Creates a queue (idempotent) and returns its URL. */
  createQueue(name: string): string;
  /** Puts a message on a queue, as EventBridge does; returns its MessageId. */
  send(queueUrl: string, body: string): string;
  state(): { queues: FakeSqsQueueState[]; requests: number };
  /** Every request so far (action, queue, time). */
  requests(): FakeSqsRequest[];
  /** Answers every request with this HTTP status and a throttling error until cleared (undefined). */
  failWith(status: number | undefined): void;
}

interface Msg {
  id: string;
  body: string;
  md5: string;
  sentAt: number;
  receiveCount: number;
  firstReceiveAt?: number;
  visibleAt: number;
  handle?: string;
}

interface Queue {
  url: string;
  visibilityS: number;
  messages: Msg[];
  deleted: number;
  waiters: Set<() => void>;
}

class SqsError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly queryError: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

const md5 = (s: string): string => createHash('md5').update(s, 'utf8').digest('hex');

/** Starts the fake SQS endpoint. `url` is the endpoint the SDK is pointed at. */
export async function startFakeSqs(opts: FakeSqsOptions = {}): Promise<FakeHandle<FakeSqsControl>> {
  const account = opts.account ?? '123456789012';
  const queues = new Map<string, Queue>();
  const requests: FakeSqsRequest[] = [];
  const closing = new AbortController();
  let failStatus: number | undefined;
  let base = '';

  const queueOf = (url: unknown): Queue => {
    const q = typeof url === 'string' ? queues.get(url) : undefined;
    if (!q) throw new SqsError('com.amazonaws.sqs#QueueDoesNotExist', 'The specified queue does not exist.', 'AWS.SimpleQueueService.NonExistentQueue;Sender');
    return q;
  };
  const invalid = (message: string): SqsError => new SqsError('com.amazonaws.sqs#InvalidParameterValue', message, 'InvalidParameterValue;Sender');
  const wake = (q: Queue): void => {
    for (const w of [...q.waiters]) w();
  };

  const control: FakeSqsControl = {
    createQueue(name) {
      const url = `${base}/${account}/${name}`;
      if (!queues.has(url)) queues.set(url, { url, visibilityS: opts.visibilityTimeoutS ?? 30, messages: [], deleted: 0, waiters: new Set() });
      return url;
    },
    send(queueUrl, body) {
      const q = queueOf(queueUrl);
      const m: Msg = { id: randomUUID(), body, md5: md5(body), sentAt: Date.now(), receiveCount: 0, visibleAt: 0 };
      q.messages.push(m);
      wake(q);
      return m.id;
    },
    state() {
      const now = Date.now();
      return {
        queues: [...queues.values()].map((q) => ({ url: q.url, visible: q.messages.filter((m) => m.visibleAt <= now).length, inFlight: q.messages.filter((m) => m.visibleAt > now).length, deleted: q.deleted })),
        requests: requests.length,
      };
    },
    requests: () => [...requests],
    failWith(status) {
      failStatus = status;
    },
  };

  const takeVisible = (q: Queue, max: number, visibilityS: number): Msg[] => {
    const now = Date.now();
    const out: Msg[] = [];
    for (const m of q.messages) {
      if (out.length >= max) break;
      if (m.visibleAt > now) continue;
      m.receiveCount += 1;
      m.firstReceiveAt ??= now;
      m.visibleAt = now + visibilityS * 1000;
      m.handle = `${m.id}#${randomUUID()}`;
      out.push(m);
    }
    // A message whose visibility ends while a long poll waits shows up on the next receive.
    return out;
  };

  const receive = async (req: IncomingMessage, b: Record<string, unknown>): Promise<unknown> => {
    const q = queueOf(b.QueueUrl);
    const max = b.MaxNumberOfMessages === undefined ? 1 : b.MaxNumberOfMessages;
    if (typeof max !== 'number' || !Number.isInteger(max) || max < 1 || max > 10) throw invalid(`Value ${JSON.stringify(max)} for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided.`);
    const wait = b.WaitTimeSeconds === undefined ? 0 : b.WaitTimeSeconds;
    if (typeof wait !== 'number' || !Number.isInteger(wait) || wait < 0 || wait > 20) throw invalid(`Value ${JSON.stringify(wait)} for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20, if provided.`);
    const vis = b.VisibilityTimeout === undefined ? q.visibilityS : b.VisibilityTimeout;
    if (typeof vis !== 'number' || !Number.isInteger(vis) || vis < 0 || vis > 43_200) throw invalid(`Value ${JSON.stringify(vis)} for parameter VisibilityTimeout is invalid. Reason: Must be >= 0 and <= 43200, if provided.`);
    const until = Date.now() + wait * 1000;
    let got = takeVisible(q, max, vis);
    while (got.length === 0 && Date.now() < until && !closing.signal.aborted && !req.socket.destroyed) {
      // Woken by a send, or when the next invisible message comes back, or at the end of the wait.
      const nextBack = Math.min(...q.messages.filter((m) => m.visibleAt > Date.now()).map((m) => m.visibleAt), until);
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(t);
          q.waiters.delete(done);
          resolve();
        };
        const t = setTimeout(done, Math.max(1, nextBack - Date.now()));
        q.waiters.add(done);
      });
      got = takeVisible(q, max, vis);
    }
    if (got.length === 0) return {};
    const names = new Set([...(Array.isArray(b.AttributeNames) ? b.AttributeNames : []), ...(Array.isArray(b.MessageSystemAttributeNames) ? b.MessageSystemAttributeNames : [])].map(String));
    const all = names.has('All');
    return {
      Messages: got.map((m) => {
        const attrs: Record<string, string> = {};
        if (all || names.has('SentTimestamp')) attrs.SentTimestamp = String(m.sentAt);
        if (all || names.has('ApproximateReceiveCount')) attrs.ApproximateReceiveCount = String(m.receiveCount);
        if (all || names.has('ApproximateFirstReceiveTimestamp')) attrs.ApproximateFirstReceiveTimestamp = String(m.firstReceiveAt);
        if (all || names.has('SenderId')) attrs.SenderId = 'AIDAEVENTBRIDGE';
        return { MessageId: m.id, ReceiptHandle: m.handle, MD5OfBody: m.md5, Body: m.body, ...(Object.keys(attrs).length > 0 ? { Attributes: attrs } : {}) };
      }),
    };
  };

  const deleteOne = (q: Queue, handle: unknown): void => {
    if (typeof handle !== 'string' || !handle.includes('#')) throw new SqsError('com.amazonaws.sqs#ReceiptHandleIsInvalid', `The input receipt handle "${String(handle)}" is not a valid receipt handle.`, 'ReceiptHandleIsInvalid;Sender');
    const i = q.messages.findIndex((m) => m.handle === handle);
    // An older handle of a message received again "succeeds" without deleting, as SQS documents.
    if (i >= 0) {
      q.messages.splice(i, 1);
      q.deleted += 1;
    }
  };

  const actions: Record<string, (req: IncomingMessage, b: Record<string, unknown>) => unknown> = {
    SendMessage: (_req, b) => {
      if (typeof b.MessageBody !== 'string' || b.MessageBody === '') throw invalid('The request must contain the parameter MessageBody.');
      const id = control.send(queueOf(b.QueueUrl).url, b.MessageBody);
      return { MD5OfMessageBody: md5(b.MessageBody), MessageId: id };
    },
    ReceiveMessage: receive,
    DeleteMessage: (_req, b) => {
      deleteOne(queueOf(b.QueueUrl), b.ReceiptHandle);
      return {};
    },
    DeleteMessageBatch: (_req, b) => {
      const q = queueOf(b.QueueUrl);
      const entries = Array.isArray(b.Entries) ? (b.Entries as { Id?: unknown; ReceiptHandle?: unknown }[]) : [];
      if (entries.length === 0) throw new SqsError('com.amazonaws.sqs#EmptyBatchRequest', 'There should be at least one DeleteMessageBatchRequestEntry in the request.', 'AWS.SimpleQueueService.EmptyBatchRequest;Sender');
      const Successful: { Id: string }[] = [];
      const Failed: { Id: string; SenderFault: boolean; Code: string; Message: string }[] = [];
      for (const e of entries) {
        try {
          deleteOne(q, e.ReceiptHandle);
          Successful.push({ Id: String(e.Id) });
        } catch (err) {
          Failed.push({ Id: String(e.Id), SenderFault: true, Code: 'ReceiptHandleIsInvalid', Message: (err as Error).message });
        }
      }
      return { Successful, Failed };
    },
  };

  const handler = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const reply = (status: number, body: unknown, headers: Record<string, string> = {}): void => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'Content-Type': 'application/x-amz-json-1.0', 'Content-Length': String(Buffer.byteLength(text)), 'x-amzn-RequestId': randomUUID(), ...headers });
      res.end(text);
    };
    const fail = (e: SqsError): void => reply(e.status, { __type: e.type, message: e.message }, { 'x-amzn-query-error': e.queryError });
    const raw = (await readBody(req)).toString('utf8');
    const target = String(req.headers['x-amz-target'] ?? '');
    const action = target.startsWith('AmazonSQS.') ? target.slice('AmazonSQS.'.length) : '';
    let body: Record<string, unknown> = {};
    try {
      body = raw === '' ? {} : (JSON.parse(raw) as Record<string, unknown>);
    } catch {
      fail(new SqsError('com.amazon.coral.service#SerializationException', 'Start of structure or map found where not expected.', 'SerializationException;Sender'));
      return;
    }
    requests.push({ action: action || target, ...(typeof body.QueueUrl === 'string' ? { queueUrl: body.QueueUrl } : {}), at: Date.now(), ...(typeof body.WaitTimeSeconds === 'number' ? { waitTimeSeconds: body.WaitTimeSeconds } : {}) });
    if (req.method !== 'POST') return fail(new SqsError('com.amazon.coral.service#UnknownOperationException', 'Only POST is accepted.', 'UnknownOperationException;Sender'));
    if (!String(req.headers['content-type'] ?? '').startsWith('application/x-amz-json-1.0')) return fail(new SqsError('com.amazon.coral.service#UnknownOperationException', 'Content-Type must be application/x-amz-json-1.0.', 'UnknownOperationException;Sender'));
    const auth = String(req.headers.authorization ?? '');
    if (!/^AWS4-HMAC-SHA256 Credential=[^/]+\/\d{8}\/[a-z0-9-]+\/sqs\/aws4_request, SignedHeaders=[^,]+, Signature=[0-9a-f]{64}$/.test(auth)) {
      return fail(new SqsError('com.amazon.coral.service#MissingAuthenticationTokenException', 'Request is missing Authentication Token (a SigV4 signature for service sqs).', 'MissingAuthenticationToken;Sender', 403));
    }
    if (failStatus !== undefined) return fail(new SqsError('com.amazonaws.sqs#RequestThrottled', 'Rate exceeded.', 'RequestThrottled;Sender', failStatus));
    const fn = actions[action];
    if (!fn) return fail(new SqsError('com.amazon.coral.service#UnknownOperationException', `Unknown operation ${target}.`, 'UnknownOperationException;Sender'));
    try {
      reply(200, await fn(req, body));
    } catch (e) {
      if (e instanceof SqsError) fail(e);
      else throw e;
    }
  };

  const fake = await serveFake(handler, control, opts, () => {
    closing.abort();
    for (const q of queues.values()) wake(q);
  });
  base = fake.url;
  return fake;
}

// ---- EventBridge events, as EC2 and AWS Health put them on the queue ---------------------------

export interface Ec2EventOptions {
  region?: string;
  account?: string;
  /** Event time, ms epoch. Default now. */
  at?: number;
}

function envelope(detailType: string, source: string, resources: string[], detail: Record<string, unknown>, o: Ec2EventOptions): string {
  const region = o.region ?? 'us-east-1';
  return JSON.stringify({
    version: '0',
    id: randomUUID(),
    'detail-type': detailType,
    source,
    account: o.account ?? '123456789012',
    time: new Date(o.at ?? Date.now()).toISOString().replace(/\.\d{3}Z$/, 'Z'),
    region,
    resources,
    detail,
  });
}

/** "EC2 Spot Instance Interruption Warning": two minutes before the instance is interrupted. */
export function spotInterruptionEvent(instanceId: string, o: Ec2EventOptions & { action?: 'terminate' | 'stop' | 'hibernate'; zone?: string } = {}): string {
  // The documented sample names the zone, not the region, in the ARN; consumers read detail.
  return envelope('EC2 Spot Instance Interruption Warning', 'aws.ec2', [`arn:aws:ec2:${o.zone ?? `${o.region ?? 'us-east-1'}a`}:instance/${instanceId}`], { 'instance-id': instanceId, 'instance-action': o.action ?? 'terminate' }, o);
}

/** "EC2 Instance Rebalance Recommendation": elevated risk of interruption, no deadline. */
export function rebalanceEvent(instanceId: string, o: Ec2EventOptions = {}): string {
  return envelope('EC2 Instance Rebalance Recommendation', 'aws.ec2', [`arn:aws:ec2:${o.region ?? 'us-east-1'}:${o.account ?? '123456789012'}:instance/${instanceId}`], { 'instance-id': instanceId }, o);
}

/** "EC2 Instance State-change Notification". */
export function stateChangeEvent(instanceId: string, state: 'pending' | 'running' | 'stopping' | 'stopped' | 'shutting-down' | 'terminated', o: Ec2EventOptions = {}): string {
  return envelope('EC2 Instance State-change Notification', 'aws.ec2', [`arn:aws:ec2:${o.region ?? 'us-east-1'}:${o.account ?? '123456789012'}:instance/${instanceId}`], { 'instance-id': instanceId, state }, o);
}

/** "AWS Health Event" of category scheduledChange for EC2 (scheduled stop, retirement, reboot). */
export function scheduledChangeEvent(instanceIds: string[], o: Ec2EventOptions & { startTime: number; eventTypeCode?: string }): string {
  return envelope('AWS Health Event', 'aws.health', [], {
    eventArn: `arn:aws:health:${o.region ?? 'us-east-1'}::event/EC2/${o.eventTypeCode ?? 'AWS_EC2_INSTANCE_STOP_SCHEDULED'}/${randomUUID()}`,
    service: 'EC2',
    eventTypeCode: o.eventTypeCode ?? 'AWS_EC2_INSTANCE_STOP_SCHEDULED',
    eventTypeCategory: 'scheduledChange',
    startTime: new Date(o.startTime).toUTCString(),
    affectedEntities: instanceIds.map((entityValue) => ({ entityValue })),
  }, o);
}
