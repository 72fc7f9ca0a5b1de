// AWS eviction notices read directly from IMDSv2 when spotfleet runs on the EC2 instance itself:
// the `notices` capability and its config keys, for providers/aws/index.ts to compose with the
// EC2 capacity capability. Notices of other instances are read over SSH (the ssh provider).
import type { NodeInfo } from '../../src/core/types.js';
import type { NoticesCapability, ProviderContext } from '../../src/providers/sdk.js';
import { AWS_METADATA_URL, AwsNoticeReader, createHttpTransport } from '../../src/providers/kit/metadata/index.js';

/** The notice-related config keys of the aws provider. */
export interface AwsNoticesConfig {
  /** Base URL of IMDS (scheme and host). Default http://169.254.169.254. */
  metadataUrl?: string;
  /** Node name this instance has in the fleet (in addition to its instance id). */
  node?: string;
  /** IMDSv2 token lifetime, 1..21600 s. Default 21600. */
  tokenTtlSeconds?: number;
  /** Limit per metadata request, in ms. Default 2000. */
  timeoutMs?: number;
}

/** JSON Schema fragment: spread `properties` into the aws provider's configSchema.properties. */
export const awsNoticesConfigSchema = {
  properties: {
    metadataUrl: { description: 'Base URL of the instance metadata service (scheme and host). Default http://169.254.169.254.', type: 'string', pattern: '^https?://[^\\s]+$' },
    node: { description: 'The fleet node name of the instance spotfleet runs on; its notices are read directly from IMDS.', type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$' },
    tokenTtlSeconds: { description: 'IMDSv2 session token lifetime in seconds (1..21600). Default 21600.', type: 'integer', minimum: 1, maximum: 21600 },
    timeoutMs: { description: 'Limit per metadata request, in ms. Default 2000.', type: 'integer', minimum: 1 },
  },
} as const;

export interface AwsNotices {
  notices: NoticesCapability;
  /** The instance id IMDS reports (read once, cached). */
  instanceId(): Promise<string>;
  close(): Promise<void>;
}

/**
 * The direct-IMDS notices capability. `poll(node)` reads IMDS only for the instance spotfleet runs
 * on: the node whose id (or lease id) is the instance id IMDS reports, or whose id is `node`
 * from the config; every other node gets no notices from here.
 * @example const { notices } = createAwsNotices({ metadataUrl: imds.url }, ctx);
 */
export function createAwsNotices(config: AwsNoticesConfig, ctx: ProviderContext): AwsNotices {
  const transport = createHttpTransport();
  const reader = new AwsNoticeReader({
    transport,
    baseUrl: config.metadataUrl ?? AWS_METADATA_URL,
    provider: ctx.name,
    now: () => ctx.now(),
    log: ctx.log,
    ...(config.tokenTtlSeconds !== undefined ? { tokenTtlSeconds: config.tokenTtlSeconds } : {}),
    ...(config.timeoutMs !== undefined ? { timeoutMs: config.timeoutMs } : {}),
  });
  let id: string | undefined;
  const instanceId = async (): Promise<string> => {
    id ??= await reader.identity(config.node ?? ctx.name, 'instance-id');
    return id;
  };
  const mine = async (node: NodeInfo): Promise<boolean> => {
    if (config.node !== undefined && node.id === config.node) return true;
    const me = await instanceId();
    return node.id === me || node.leaseId === me;
  };
  return {
    notices: {
      async poll(node) {
        if (!(await mine(node))) return [];
        return reader.poll(node.id);
      },
    },
    instanceId,
    close: async () => {
      await transport.close?.();
    },
  };
}
