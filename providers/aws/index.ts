// The `aws` provider: EC2 capacity (spot and on-demand, providers/aws/ec2.ts) whose instances
// become SSH + Docker nodes spotfleet runs work on (src/providers/kit/capacity: the pool's `node`
// says how they are reached; their notices are read on the node from IMDSv2), when instance types
// are configured; and instance-metadata eviction notices (providers/aws/notices.ts) for the
// instance spotfleet itself runs on. Either part may be used alone.
import type { Notice } from '../../src/core/types.js';
import type { NoticesCapability, Provider, ProviderContext, ProviderFactory } from '../../src/providers/sdk.js';
import { LeasedNodes } from '../../src/providers/kit/capacity/index.js';
import { checkEc2Pool, createEc2Driver, ec2ConfigProperties, ec2Configured, ec2DependentRequired, type Ec2CapacityConfig } from './ec2.js';
import { awsNoticesConfigSchema, createAwsNotices, type AwsNoticesConfig } from './notices.js';
import { createInterruptionQueue, interruptionQueueSchema, type InterruptionQueueConfig } from './interruption-queue.js';

export type AwsConfig = Ec2CapacityConfig & AwsNoticesConfig & { interruptionQueue?: InterruptionQueueConfig };

export const configSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'aws provider config',
  description:
    'EC2 spot/on-demand capacity through the AWS SDK (credentials from the usual chain) when `instanceTypes` is set, its instances run work over SSH + Docker; ' +
    'IMDSv2 eviction notices for the instance spotfleet runs on when a notice key is set or when there is no capacity.',
  type: 'object',
  additionalProperties: false,
  properties: { ...ec2ConfigProperties, ...awsNoticesConfigSchema.properties, interruptionQueue: interruptionQueueSchema },
  dependentRequired: ec2DependentRequired,
} as const;

const NOTICE_KEYS = Object.keys(awsNoticesConfigSchema.properties) as (keyof AwsNoticesConfig)[];

/**
 * IMDS notices are on when any notice key is set, or when there is neither capacity nor an
 * interruption queue (then they are the provider's only purpose). A capacity-only config never
 * reads instance metadata itself: spotfleet may run off EC2, where the metadata address is not the
 * instance's own; the notices of the instances it buys are read on those instances, over SSH.
 */
export function awsNoticesEnabled(config: AwsConfig): boolean {
  return NOTICE_KEYS.some((k) => config[k] !== undefined) || (!ec2Configured(config) && config.interruptionQueue === undefined);
}

/** Builds the provider instance; exported for tests that pass a context directly. */
export function createAwsProvider(config: AwsConfig, ctx: ProviderContext): Provider {
  const p: { -readonly [K in keyof Provider]: Provider[K] } = { name: ctx.name, type: 'aws' };
  const closers: (() => Promise<void>)[] = [];
  let bought: NoticesCapability | undefined;
  if (ec2Configured(config)) {
    const leased = new LeasedNodes({ ctx, driver: createEc2Driver(config, ctx), ...(config.capacityMissTtlSeconds !== undefined ? { capacityMissTtlMs: config.capacityMissTtlSeconds * 1000 } : {}) });
    const caps = leased.capabilities();
    p.capacity = caps.capacity;
    p.nodes = caps.nodes;
    // Work runs on the bought instances of pools that say how they are reached (`pools[].node`).
    if ((ctx.pools ?? []).some((x) => x.node !== undefined)) {
      p.runtime = caps.runtime;
      p.storage = caps.storage;
      p.notices = bought = caps.notices;
    }
    closers.push(() => leased.close());
  }
  if (awsNoticesEnabled(config)) {
    const notices: AwsNoticesConfig = {};
    for (const k of NOTICE_KEYS) if (config[k] !== undefined) (notices as Record<string, unknown>)[k] = config[k];
    const n = createAwsNotices(notices, ctx);
    const own = n.notices;
    closers.push(() => n.close());
    // Both: the instance spotfleet runs on answers from its own IMDS, the bought ones on the node.
    p.notices = bought
      ? {
          poll: async (node) => {
            const [a, b] = await Promise.all([bought.poll(node), own.poll(node)]);
            const seen = new Set(a.map((x: Notice) => x.id));
            return [...a, ...b.filter((x) => !seen.has(x.id))];
          },
          acknowledge: async (node, notice) => {
            await bought.acknowledge?.(node, notice);
          },
        }
      : n.notices;
  }
  if (config.interruptionQueue) {
    // The fleet-level source: every instance's notices from one queue; IMDS (when on) stays the
    // per-node poll for the instance spotfleet itself runs on.
    const q = createInterruptionQueue(config.interruptionQueue, ctx);
    const own = p.notices;
    p.notices = {
      poll: own ? (node) => own.poll(node) : async () => Promise.resolve([]),
      fleet: q.fleet,
      acknowledge: async (node, notice) => {
        if (!(await q.acknowledge(notice))) await own?.acknowledge?.(node, notice);
      },
    };
    closers.push(() => q.close());
  }
  p.close = async () => {
    for (const c of closers) await c();
  };
  return p;
}

/** The aws provider factory (`type: aws`). */
export const provider: ProviderFactory<AwsConfig> = {
  type: 'aws',
  description: 'AWS: EC2 spot and on-demand instances (SDK v3) that run work over SSH + Docker, and IMDSv2 eviction notices',
  configSchema,
  create: (config, ctx) => createAwsProvider(config, ctx),
  checkPool: (config, pool) => checkEc2Pool(config, pool),
};
