// The fleet-level AWS notice source: EC2's interruption, rebalance and state-change events (and AWS
// Health scheduled changes) that an EventBridge rule sends to one SQS queue, read with long polls
// through the SDK, as Karpenter and the Node Termination Handler's queue mode do. One stream for
// every instance of the fleet instead of one IMDS poll per node over SSH.
//
// A message becomes a notice for its instance and stays on the queue until the controller
// acknowledges the notice (its workloads are safe) or the notice's deadline has passed; until then
// it comes back after the visibility timeout (the monitor drops repeats), so a controller that
// dies meanwhile hears it again. A message that is no notice (an instance starting, another event
// type, unreadable) is deleted at once.
import { DeleteMessageCommand, ReceiveMessageCommand, SQSClient, type Message, type SQSClientConfig } from '@aws-sdk/client-sqs';
import { ProviderError } from '../../src/core/errors.js';
import type { Notice } from '../../src/core/types.js';
import type { FleetNoticeSource, ProviderContext } from '../../src/providers/sdk.js';
import { credentialsFromEnv } from './credentials.js';

export interface InterruptionQueueConfig {
  /** The queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME). */
  url: string;
  /** Region; default the one in the queue URL. */
  region?: string;
  /** Service URL override (tests, LocalStack); default the SDK's (the queue URL's host). */
  endpoint?: string;
  /** Long polls in flight at once (each takes up to 10 messages). Default 2. */
  receivers?: number;
  /** Seconds a received, unacknowledged message stays hidden before it comes back. Default 60. */
  visibilityTimeoutSeconds?: number;
}

export const interruptionQueueSchema = {
  description: 'An SQS queue that an EventBridge rule fills with EC2 Spot interruption, rebalance and state-change events (and AWS Health scheduled changes): one notice stream for every instance, instead of polling each node.',
  type: 'object',
  additionalProperties: false,
  required: ['url'],
  properties: {
    url: { description: 'Queue URL, e.g. https://sqs.us-east-1.amazonaws.com/123456789012/spotfleet-interruptions.', type: 'string', pattern: '^https?://[^\\s]+$' },
    region: { description: 'AWS region; default the one in the queue URL.', type: 'string', minLength: 1 },
    endpoint: { description: 'SQS endpoint override (tests, LocalStack).', type: 'string', pattern: '^https?://' },
    receivers: { description: 'Long polls in flight at once, 10 messages each. Default 2.', type: 'integer', minimum: 1, maximum: 16 },
    visibilityTimeoutSeconds: { description: 'Seconds an unacknowledged message stays hidden before it is delivered again. Default 60.', type: 'integer', minimum: 1, maximum: 43200 },
  },
} as const;

/** Notice window of a Spot interruption warning: two minutes. */
const SPOT_WARNING_MS = 120_000;
/** A rebalance recommendation has no deadline; as for IMDS, the notice time plus two minutes. */
const REBALANCE_MS = 120_000;
const GONE_STATES = new Set(['stopping', 'stopped', 'shutting-down', 'terminated']);

interface EventBridgeEvent {
  id?: unknown;
  'detail-type'?: unknown;
  source?: unknown;
  time?: unknown;
  detail?: Record<string, unknown>;
}

/**
 * The notices one queued event stands for (none for events that warn of nothing). Exported for
 * tests; `receivedAt` is when spotfleet read it.
 */
export function noticesOfEvent(body: string, provider: string, receivedAt: number): Notice[] {
  let ev: EventBridgeEvent;
  try {
    ev = JSON.parse(body) as EventBridgeEvent;
  } catch {
    return [];
  }
  if (typeof ev !== 'object' || ev === null || typeof ev.id !== 'string') return [];
  const time = typeof ev.time === 'string' ? Date.parse(ev.time) : NaN;
  const at = Number.isFinite(time) ? time : receivedAt;
  const d = ev.detail ?? {};
  const type = ev['detail-type'];
  const base = { provider, source: 'aws', receivedAt: new Date(receivedAt).toISOString() };
  const one = (instance: unknown, kind: Notice['kind'], action: string, deadline: number): Notice[] =>
    typeof instance === 'string' && /^i-[0-9a-f]+$/.test(instance)
      ? [{ ...base, id: `aws:event:${ev.id as string}:${instance}`, node: instance, kind, action, deadline: new Date(deadline).toISOString(), detail: { eventId: ev.id as string, detailType: String(type), via: 'sqs' } }]
      : [];
  if (ev.source === 'aws.ec2' && type === 'EC2 Spot Instance Interruption Warning') {
    return one(d['instance-id'], 'preemption', typeof d['instance-action'] === 'string' ? d['instance-action'] : 'terminate', at + SPOT_WARNING_MS);
  }
  if (ev.source === 'aws.ec2' && type === 'EC2 Instance Rebalance Recommendation') return one(d['instance-id'], 'rebalance', 'rebalance-recommendation', at + REBALANCE_MS);
  if (ev.source === 'aws.ec2' && type === 'EC2 Instance State-change Notification') {
    // The instance is going or gone now: no time left to wait for.
    return typeof d.state === 'string' && GONE_STATES.has(d.state) ? one(d['instance-id'], 'termination', d.state, at) : [];
  }
  if (ev.source === 'aws.health' && type === 'AWS Health Event' && d.service === 'EC2' && d.eventTypeCategory === 'scheduledChange') {
    const start = typeof d.startTime === 'string' ? Date.parse(d.startTime) : NaN;
    const code = typeof d.eventTypeCode === 'string' ? d.eventTypeCode : 'scheduledChange';
    const entities = Array.isArray(d.affectedEntities) ? (d.affectedEntities as { entityValue?: unknown }[]) : [];
    return entities.flatMap((e) => one(e.entityValue, 'maintenance', code, Number.isFinite(start) ? start : at));
  }
  return [];
}

export interface InterruptionQueue {
  fleet: FleetNoticeSource;
  /** Deletes the messages behind a notice (the controller has handled it); false when it is not ours. */
  acknowledge(notice: Notice): Promise<boolean>;
  close(): Promise<void>;
}

/** Creates the queue reader for an aws provider instance. */
export function createInterruptionQueue(config: InterruptionQueueConfig, ctx: ProviderContext): InterruptionQueue {
  const region = config.region ?? /sqs[.-]([a-z0-9-]+)\.amazonaws\.com/.exec(config.url)?.[1];
  if (region === undefined) throw new ProviderError(ctx.name, `interruptionQueue: no region in ${config.url}; set interruptionQueue.region`);
  const clientConfig: SQSClientConfig = { region, maxAttempts: 2 };
  if (config.endpoint !== undefined) clientConfig.endpoint = config.endpoint;
  const credentials = credentialsFromEnv(ctx.env);
  if (credentials !== undefined) clientConfig.credentials = credentials;
  const client = new SQSClient(clientConfig);
  const receivers = config.receivers ?? 2;
  const visibility = config.visibilityTimeoutSeconds ?? 60;
  /** Notice id → the newest receipt handle of its message, and the notice's deadline. */
  const held = new Map<string, { handle: string; deadline: number }>();

  const fail = (what: string, e: unknown): ProviderError => {
    const err = e as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
    const status = err.$metadata?.httpStatusCode;
    return new ProviderError(ctx.name, `SQS ${what} ${config.url}${status !== undefined ? ` (HTTP ${status})` : ''}: ${err.name ?? 'Error'}: ${err.message ?? String(e)}`, { retryable: true });
  };
  const remove = async (handle: string): Promise<void> => {
    try {
      await client.send(new DeleteMessageCommand({ QueueUrl: config.url, ReceiptHandle: handle }));
    } catch (e) {
      ctx.log.warn('deleting a queue message failed; it is delivered again later', { err: fail('DeleteMessage', e).message });
    }
  };
  /** Notices past their deadline are over: their messages go. */
  const sweep = async (): Promise<void> => {
    const now = ctx.now();
    for (const [id, h] of held) {
      if (h.deadline >= now) continue;
      held.delete(id);
      await remove(h.handle);
    }
  };

  const handle = async (m: Message, onNotice: (n: Notice) => void): Promise<void> => {
    if (!m.ReceiptHandle) return;
    const notices = noticesOfEvent(m.Body ?? '', ctx.name, ctx.now());
    if (notices.length === 0) {
      await remove(m.ReceiptHandle);
      return;
    }
    for (const n of notices) {
      const deadline = Date.parse(n.deadline);
      if (deadline < ctx.now() - 60_000) continue; // long over: nothing to warn of any more
      held.set(n.id, { handle: m.ReceiptHandle, deadline });
      onNotice(n);
    }
    if (notices.every((n) => !held.has(n.id))) await remove(m.ReceiptHandle);
  };

  const receiveLoop = async (onNotice: (n: Notice) => void, signal: AbortSignal): Promise<void> => {
    while (!signal.aborted) {
      let out;
      try {
        out = await client.send(new ReceiveMessageCommand({ QueueUrl: config.url, MaxNumberOfMessages: 10, WaitTimeSeconds: 20, VisibilityTimeout: visibility, MessageSystemAttributeNames: ['SentTimestamp'] }), { abortSignal: signal });
      } catch (e) {
        if (signal.aborted) return;
        throw fail('ReceiveMessage', e);
      }
      for (const m of out.Messages ?? []) await handle(m, onNotice);
      await sweep();
    }
  };

  return {
    fleet: {
      async watch(onNotice, signal) {
        // One failing receiver ends the watch: the monitor falls back to polling and retries later.
        const inner = new AbortController();
        const stop = (): void => inner.abort();
        signal.addEventListener('abort', stop, { once: true });
        try {
          await Promise.all(
            Array.from({ length: receivers }, () =>
              receiveLoop(onNotice, inner.signal).catch((e: unknown) => {
                inner.abort();
                throw e;
              }),
            ),
          );
        } finally {
          signal.removeEventListener('abort', stop);
        }
      },
    },
    async acknowledge(notice) {
      const h = held.get(notice.id);
      if (!h) return false;
      held.delete(notice.id);
      // Other notices from the same message (a Health event names several instances) keep it.
      if (![...held.values()].some((x) => x.handle === h.handle)) await remove(h.handle);
      return true;
    },
    close: async () => {
      client.destroy();
      await Promise.resolve();
    },
  };
}
