// The `aws` provider: EC2 capacity (spot and on-demand, providers/aws/ec2.ts) when instance types
// are configured, and instance-metadata eviction notices (providers/aws/notices.ts) for the
// instance spotfleet itself runs on. Either part may be used alone: a fleet that runs spotfleet on
// an EC2 instance needs only the notices; a fleet that buys EC2 capacity from a laptop or CI needs
// only the capacity (notices of launched instances are read on the node, over SSH).
import type { Provider, ProviderContext, ProviderFactory } from '../../src/providers/sdk.js';
import { createEc2Capacity, ec2ConfigProperties, ec2Configured, ec2DependentRequired, type Ec2CapacityConfig } from './ec2.js';
import { awsNoticesConfigSchema, createAwsNotices, type AwsNoticesConfig } from './notices.js';
import { createInterruptionQueue, interruptionQueueSchema, type InterruptionQueueConfig } from './interruption-queue.js';

export type AwsConfig = Ec2CapacityConfig & AwsNoticesConfig & { interruptionQueue?: InterruptionQueueConfig };

export const configSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'aws provider config',
  description:
    'EC2 spot/on-demand capacity through the AWS SDK (credentials from the usual chain) when `instanceTypes` is set; ' +
    'IMDSv2 eviction notices for the instance spotfleet runs on when a notice key is set or when there is no capacity.',
  type: 'object',
  additionalProperties: false,
  properties: { ...ec2ConfigProperties, ...awsNoticesConfigSchema.properties, interruptionQueue: interruptionQueueSchema },
  dependentRequired: ec2DependentRequired,
} as const;

const NOTICE_KEYS = Object.keys(awsNoticesConfigSchema.properties) as (keyof AwsNoticesConfig)[];

/**
 * IMDS notices are on when any notice key is set, or when there is neither capacity nor an
 * interruption queue (then they are the provider's only purpose). Otherwise instance metadata is
 * never read: spotfleet may run off EC2, where the metadata address is not the instance's own.
 */
export function awsNoticesEnabled(config: AwsConfig): boolean {
  return NOTICE_KEYS.some((k) => config[k] !== undefined) || (!ec2Configured(config) && config.interruptionQueue === undefined);
}

/** Builds the provider instance; exported for tests that pass a context directly. */
export function createAwsProvider(config: AwsConfig, ctx: ProviderContext): Provider {
  const p: { -readonly [K in keyof Provider]: Provider[K] } = { name: ctx.name, type: 'aws' };
  const closers: (() => Promise<void>)[] = [];
  if (ec2Configured(config)) {
    const ec2 = createEc2Capacity(config, ctx);
    p.capacity = ec2.capacity;
    p.nodes = ec2.nodes;
    closers.push(() => ec2.close());
  }
  if (awsNoticesEnabled(config)) {
    const notices: AwsNoticesConfig = {};
    for (const k of NOTICE_KEYS) if (config[k] !== undefined) (notices as Record<string, unknown>)[k] = config[k];
    const n = createAwsNotices(notices, ctx);
    p.notices = n.notices;
    closers.push(() => n.close());
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
  description: 'AWS: EC2 spot and on-demand capacity (SDK v3) and IMDSv2 eviction notices',
  configSchema,
  create: (config, ctx) => createAwsProvider(config, ctx),
};
