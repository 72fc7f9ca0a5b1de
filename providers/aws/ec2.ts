// EC2 for the `aws` provider, through the AWS SDK v3 (@aws-sdk/client-ec2), as a cloud driver of
// the capacity kit (src/providers/kit/capacity): spot prices from DescribeSpotPriceHistory,
// on-demand prices from the Price List API (@aws-sdk/client-pricing; cached with their time, a
// dated table standing in when it is unreachable; a price in config wins), launches with RunInstances (spot market options or on-demand,
// subnets per zone, security groups, instance profile, root volume, tags, the bootstrap script as
// user-data, ClientToken per idempotency key and option), the fleet's instances from
// DescribeInstances (by tag), and TerminateInstances. Credentials come from the SDK's usual chain;
// `endpoint` overrides the service URL (tests, LocalStack).
import { createHash } from 'node:crypto';
import {
  DescribeInstancesCommand,
  DescribeSpotPriceHistoryCommand,
  EC2Client,
  RunInstancesCommand,
  TerminateInstancesCommand,
  type EC2ClientConfig,
  type Instance,
  type RunInstancesCommandInput,
  type SpotPrice,
  type Tag,
} from '@aws-sdk/client-ec2';
import { GetProductsCommand, PricingClient, type PricingClientConfig } from '@aws-sdk/client-pricing';
import { join } from 'node:path';
import { ProviderError, errorMessage } from '../../src/core/errors.js';
import type { PriceQuery, ProviderContext, ProviderPool, PoolProblem } from '../../src/providers/sdk.js';
import type { CapacityErrorInfo, CloudDriver, CloudInstance, CloudOffering, LaunchRequest } from '../../src/providers/kit/capacity/index.js';
import { PriceBook, idempotencyDigest, offeringPrice, priceKey, typesForGpu, type PriceKey } from '../../src/providers/kit/capacity/index.js';
import { checkMachinePool, hasMachineTypes, launchImage, machineOffering, machineTypesSchema } from '../../src/providers/kit/capacity/machine-types.js';
import { AWS_PRICE_TABLE } from './price-table.js';
import { credentialsFromEnv } from './credentials.js';

export interface Ec2InstanceTypeConfig {
  gpuModel: string;
  gpus: number;
  /** On-demand USD per instance-hour; default the Price List API's (set it for negotiated prices). */
  onDemandPrice?: number;
}

export interface Ec2CapacityConfig {
  region?: string;
  /** Service URL override (tests, LocalStack); default the SDK's regional endpoint. */
  endpoint?: string;
  instanceTypes?: Record<string, Ec2InstanceTypeConfig>;
  /** AMI every pool launches unless its `node.image` names another. */
  imageId?: string;
  /** One subnet for every launch (or `subnets` per zone). */
  subnetId?: string;
  /** Subnet per availability zone: launches in a zone go into its subnet; zones without one are not used. */
  subnets?: Record<string, string>;
  /** Zones to buy on-demand capacity in (default: the keys of `subnets`, else the zones with spot prices). */
  zones?: string[];
  securityGroupIds?: string[];
  /** Instance profile name, or its ARN. */
  instanceProfile?: string;
  /** Root EBS volume size in GiB (gp3); default the AMI's. */
  rootVolumeGiB?: number;
  /** The AMI's root device name. Default /dev/sda1 (Ubuntu, Deep Learning AMIs); /dev/xvda on Amazon Linux. */
  rootDeviceName?: string;
  keyName?: string;
  /** Extra tags on every instance spotfleet launches. */
  tags?: Record<string, string>;
  /** SDK attempts per call, retries on throttling/5xx included (default 3). */
  maxAttempts?: number;
  /** How long an offering that had no capacity is skipped and quoted unavailable, in seconds (default 180). */
  capacityMissTtlSeconds?: number;
  /** Price List API endpoint override (tests). */
  pricingEndpoint?: string;
  /** Region of the Price List API endpoint (us-east-1, ap-south-1 or eu-central-1). Default us-east-1. */
  pricingRegion?: string;
}

/** JSON Schema properties of the EC2 part of the aws config (composed in index.ts). */
export const ec2ConfigProperties = {
  region: { type: 'string', minLength: 1, description: 'AWS region, e.g. us-east-1' },
  endpoint: { type: 'string', pattern: '^https?://', description: 'EC2 endpoint override (tests, LocalStack)' },
  instanceTypes: machineTypesSchema('Instance types spotfleet may launch: GPU model, GPUs and on-demand $/h each', {
    onDemandPrice: { type: 'number', minimum: 0, description: 'USD per instance-hour; default the Price List API price' },
  }),
  imageId: { type: 'string', pattern: '^ami-', description: 'AMI to launch (a pool may name another with node.image)' },
  subnetId: { type: 'string', minLength: 1, description: 'Subnet for every launch' },
  subnets: { type: 'object', minProperties: 1, additionalProperties: { type: 'string', pattern: '^subnet-' }, description: 'Subnet per availability zone, e.g. { us-east-1a: subnet-0abc }' },
  zones: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 }, description: 'Zones to buy on-demand capacity in' },
  securityGroupIds: { type: 'array', minItems: 1, items: { type: 'string', pattern: '^sg-' }, description: 'Security groups (must let spotfleet reach port 22, and nodes reach each other on 22 for checkpoint transfers)' },
  instanceProfile: { type: 'string', minLength: 1, description: 'IAM instance profile name or ARN' },
  rootVolumeGiB: { type: 'integer', minimum: 8, maximum: 16384, description: 'Root EBS volume size (gp3) in GiB' },
  rootDeviceName: { type: 'string', pattern: '^/dev/', description: "The AMI's root device name (default /dev/sda1)" },
  keyName: { type: 'string', minLength: 1 },
  tags: { type: 'object', additionalProperties: { type: 'string', maxLength: 256 } },
  maxAttempts: { type: 'integer', minimum: 1, maximum: 10, default: 3 },
  capacityMissTtlSeconds: { type: 'integer', minimum: 0, maximum: 86400, description: 'How long an offering that had no capacity is skipped (default 180)' },
  pricingEndpoint: { type: 'string', pattern: '^https?://', description: 'Price List API endpoint override (tests)' },
  pricingRegion: { enum: ['us-east-1', 'ap-south-1', 'eu-central-1'], description: 'Region of the Price List API endpoint (default us-east-1)' },
} as const;

/** EC2 capacity is on when instance types are configured; then the region is required. */
export const ec2DependentRequired = { instanceTypes: ['region'] } as const;

export function ec2Configured(c: Ec2CapacityConfig): boolean {
  return hasMachineTypes(c.instanceTypes);
}

/** Tags spotfleet writes on its instances; `list()` finds its own by TAG_FLEET. */
export const TAG_FLEET = 'spotfleet:fleet';
export const TAG_POOL = 'spotfleet:pool';
export const TAG_KEY = 'spotfleet:idempotency-key';
export const TAG_PRICE = 'spotfleet:price-per-hour';
export const TAG_GPU_MODEL = 'spotfleet:gpu-model';
export const TAG_GPUS = 'spotfleet:gpus';
/** The public half of the host key spotfleet injected: pinned when it connects. */
export const TAG_HOST_KEY = 'spotfleet:host-key';
const LABEL_PREFIX = 'spotfleet:label:';

/** EC2 takes ClientToken up to 64 ASCII characters; longer keys are hashed (still stable). */
export function clientTokenFor(key: string): string {
  return key.length <= 64 && /^[\x20-\x7e]+$/.test(key) ? key : createHash('sha256').update(key).digest('hex');
}

const LIVE_STATES = ['pending', 'running', 'shutting-down', 'stopping', 'stopped'];

/**
 * EC2 errors that mean "no capacity for this offering now" (try the next one, remember the miss);
 * the scope says how far the miss reaches. Quotas are per region and capacity type.
 */
const CAPACITY_CODES: Record<string, CapacityErrorInfo['scope']> = {
  InsufficientInstanceCapacity: 'zone',
  InsufficientHostCapacity: 'zone',
  InsufficientCapacity: 'zone',
  UnfulfillableCapacity: 'zone',
  InsufficientFreeAddressesInSubnet: 'zone',
  Unsupported: 'zone',
  SpotMaxPriceTooLow: 'zone',
  MaxSpotInstanceCountExceeded: 'all',
  VcpuLimitExceeded: 'all',
  InstanceLimitExceeded: 'region',
};

/** The offline checks of a pool that uses an aws provider (validate). */
export function checkEc2Pool(config: Ec2CapacityConfig, pool: ProviderPool): PoolProblem[] {
  const out = checkMachinePool(config.instanceTypes, pool, {
    key: 'instanceTypes',
    noun: 'instance type',
    without: 'it reads notices only',
    example: 'instanceTypes: { p5.48xlarge: { gpuModel: H100, gpus: 8 } } and region in the aws provider config',
    user: 'ubuntu',
    configImage: config.imageId !== undefined,
    noImage: { message: 'names no machine image to launch', expected: 'node.image: ami-… in the pool, or imageId: ami-… in the aws provider config' },
    imageForm: { pattern: /^ami-/, is: 'an AMI id', expected: 'ami-0123456789abcdef0' },
  });
  if (!ec2Configured(config)) return out;
  if (config.subnets !== undefined && pool.zones !== undefined) {
    for (const [i, z] of pool.zones.entries()) if (config.subnets[z] === undefined) out.push({ path: `/zones/${i}`, message: `zone ${z} has no subnet in the provider's subnets`, expected: `one of ${Object.keys(config.subnets).sort().join(', ')}` });
  }
  return out;
}

/** Creates the EC2 driver for one aws provider instance. */
export function createEc2Driver(config: Ec2CapacityConfig, ctx: ProviderContext): CloudDriver {
  const types = config.instanceTypes ?? {};
  if (config.region === undefined) throw new ProviderError(ctx.name, 'EC2 capacity needs `region` next to `instanceTypes`');
  const region = config.region;
  const clientConfig: EC2ClientConfig = { region, maxAttempts: config.maxAttempts ?? 3 };
  if (config.endpoint !== undefined) clientConfig.endpoint = config.endpoint;
  // The usual chain reads process.env; a context with its own env (tests, watch) hands keys over
  // explicitly. Otherwise the SDK's default chain decides (env, profile, SSO, container, instance).
  const credentials = credentialsFromEnv(ctx.env);
  if (credentials !== undefined) clientConfig.credentials = credentials;
  const client = new EC2Client(clientConfig);
  const pricingConfig: PricingClientConfig = { region: config.pricingRegion ?? 'us-east-1', maxAttempts: config.maxAttempts ?? 3 };
  if (config.pricingEndpoint !== undefined) pricingConfig.endpoint = config.pricingEndpoint;
  if (clientConfig.credentials !== undefined) pricingConfig.credentials = clientConfig.credentials;
  let pricing: PricingClient | undefined;

  /** On-demand Linux prices of instance types in this region, from the Price List API. */
  async function fetchOnDemand(keys: PriceKey[]): Promise<Partial<Record<PriceKey, number>>> {
    pricing ??= new PricingClient(pricingConfig);
    const p = pricing;
    const out: Partial<Record<PriceKey, number>> = {};
    await Promise.all(
      keys.map(async (k) => {
        const type = k.slice('on-demand|'.length);
        const match = (Field: string, Value: string) => ({ Type: 'TERM_MATCH' as const, Field, Value });
        const r = await call('Price List GetProducts', () =>
          p.send(
            new GetProductsCommand({
              ServiceCode: 'AmazonEC2',
              Filters: [match('instanceType', type), match('regionCode', region), match('operatingSystem', 'Linux'), match('tenancy', 'Shared'), match('preInstalledSw', 'NA'), match('capacitystatus', 'Used'), match('licenseModel', 'No License required')],
              FormatVersion: 'aws_v1',
              MaxResults: 10,
            }),
          ),
        );
        for (const item of r.PriceList ?? []) {
          // The SDK hands each price list entry over as a JSON string (a String object, not a primitive).
          const d = JSON.parse(String(item)) as { product?: { attributes?: Record<string, string> }; terms?: { OnDemand?: Record<string, { priceDimensions?: Record<string, { unit?: string; pricePerUnit?: { USD?: string } }> }> } };
          if (d.product?.attributes?.instanceType !== type) continue;
          for (const term of Object.values(d.terms?.OnDemand ?? {})) {
            for (const dim of Object.values(term.priceDimensions ?? {})) {
              const usd = Number(dim.pricePerUnit?.USD);
              if (dim.unit === 'Hrs' && Number.isFinite(usd) && usd > 0) out[k] = usd;
            }
          }
        }
      }),
    );
    return out;
  }
  const book = new PriceBook({
    provider: ctx.name,
    source: 'AWS Price List API',
    file: join(ctx.dataDir, `prices-ec2-${region}.json`),
    fetch: fetchOnDemand,
    ...(region === AWS_PRICE_TABLE.region ? { table: AWS_PRICE_TABLE } : {}),
    log: ctx.log,
    now: () => ctx.now(),
  });

  async function call<T>(action: string, fn: () => Promise<T>, address?: string): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      const err = e as { name?: string; message?: string; $metadata?: { httpStatusCode?: number }; $retryable?: unknown };
      const status = err.$metadata?.httpStatusCode;
      const msg = `EC2 ${action}${status !== undefined ? ` (HTTP ${status})` : ''}: ${err.name ?? 'Error'}: ${err.message ?? String(e)}`;
      throw new ProviderError(ctx.name, msg, { retryable: status === undefined || status >= 500 || err.$retryable !== undefined, cause: e, ...(address !== undefined ? { address } : {}) });
    }
  }

  /** The spot price in effect now for each (instance type, zone), USD per instance-hour. */
  async function currentSpot(instanceTypes: string[]): Promise<Map<string, { price: number; at: string }>> {
    const out = new Map<string, { price: number; at: string; ts: number }>();
    if (instanceTypes.length === 0) return out;
    let next: string | undefined;
    do {
      const token = next;
      const r = await call('DescribeSpotPriceHistory', () =>
        client.send(
          new DescribeSpotPriceHistoryCommand({
            InstanceTypes: instanceTypes as never,
            ProductDescriptions: ['Linux/UNIX'],
            // A start time of now returns the price in effect now, per type and zone.
            StartTime: new Date(ctx.now()),
            ...(token !== undefined ? { NextToken: token } : {}),
          }),
        ),
      );
      for (const p of r.SpotPriceHistory ?? []) addPoint(out, p);
      next = r.NextToken !== undefined && r.NextToken !== '' ? r.NextToken : undefined;
    } while (next !== undefined);
    return new Map([...out].map(([k, v]) => [k, { price: v.price, at: v.at }]));
  }

  function addPoint(out: Map<string, { price: number; at: string; ts: number }>, p: SpotPrice): void {
    if (p.InstanceType === undefined || p.AvailabilityZone === undefined || p.SpotPrice === undefined) return;
    const key = `${p.InstanceType}|${p.AvailabilityZone}`;
    const ts = p.Timestamp?.getTime() ?? 0;
    const seen = out.get(key);
    if (seen && seen.ts >= ts) return;
    out.set(key, { price: Number(p.SpotPrice), at: new Date(ts).toISOString(), ts });
  }

  function tagsOf(i: Instance): Record<string, string> {
    const t: Record<string, string> = {};
    for (const tag of i.Tags ?? []) if (tag.Key !== undefined) t[tag.Key] = tag.Value ?? '';
    return t;
  }

  function toInstance(i: Instance): CloudInstance {
    const tags = tagsOf(i);
    const type = i.InstanceType ?? '';
    const conf = types[type];
    const state = i.State?.Name;
    const labels: Record<string, string> = {};
    for (const [k, v] of Object.entries(tags)) if (k.startsWith(LABEL_PREFIX)) labels[k.slice(LABEL_PREFIX.length)] = v;
    const inst: CloudInstance = {
      id: i.InstanceId ?? '',
      pool: tags[TAG_POOL] ?? '',
      capacity: i.InstanceLifecycle === 'spot' ? 'spot' : 'on-demand',
      gpuModel: tags[TAG_GPU_MODEL] ?? conf?.gpuModel ?? '',
      gpus: Number(tags[TAG_GPUS] ?? conf?.gpus ?? 0),
      pricePerHour: Number(tags[TAG_PRICE] ?? conf?.onDemandPrice ?? 0),
      launchedAt: (i.LaunchTime ?? new Date(0)).getTime(),
      state: state === 'pending' ? 'pending' : state === 'running' ? 'running' : state === 'terminated' ? 'terminated' : 'stopping',
      labels,
      meta: { region, instanceType: type, instanceId: i.InstanceId ?? '' },
    };
    const zone = i.Placement?.AvailabilityZone;
    if (zone !== undefined) inst.zone = zone;
    if (i.PublicIpAddress !== undefined) inst.publicAddress = i.PublicIpAddress;
    if (i.PrivateIpAddress !== undefined) inst.privateAddress = i.PrivateIpAddress;
    if (tags[TAG_HOST_KEY] !== undefined) inst.hostKey = tags[TAG_HOST_KEY];
    if (tags[TAG_KEY] !== undefined) inst.idempotencyKey = tags[TAG_KEY];
    if (i.StateReason?.Message !== undefined && inst.state !== 'running' && inst.state !== 'pending') inst.stateReason = i.StateReason.Message;
    return inst;
  }

  async function ownInstances(): Promise<Instance[]> {
    const out: Instance[] = [];
    let next: string | undefined;
    do {
      const token = next;
      const r = await call('DescribeInstances', () =>
        client.send(
          new DescribeInstancesCommand({
            Filters: [{ Name: `tag:${TAG_FLEET}`, Values: [ctx.fleet] }, { Name: 'instance-state-name', Values: LIVE_STATES }],
            ...(token !== undefined ? { NextToken: token } : {}),
          }),
        ),
      );
      for (const res of r.Reservations ?? []) out.push(...(res.Instances ?? []));
      next = r.NextToken !== undefined && r.NextToken !== '' ? r.NextToken : undefined;
    } while (next !== undefined);
    return out.sort((a, b) => (a.InstanceId ?? '').localeCompare(b.InstanceId ?? ''));
  }

  /** Zones to offer on-demand capacity in: configured, else where spot prices say the type is sold. */
  function onDemandZones(type: string, spot: Map<string, unknown>): (string | undefined)[] {
    if (config.zones) return config.zones;
    if (config.subnets) return Object.keys(config.subnets).sort();
    const seen = [...spot.keys()].filter((k) => k.startsWith(`${type}|`)).map((k) => k.split('|')[1] as string).sort();
    return seen.length > 0 ? seen : [undefined];
  }

  return {
    cloud: 'aws',
    label: 'EC2',

    async list() {
      return (await ownInstances()).map(toInstance);
    },

    async describe(ids) {
      // By id, EC2 shows ended instances for about an hour, with their StateReason; ids it does not
      // know yet (its listing is eventually consistent) fail the whole call, so each is asked alone.
      const out = await Promise.all(
        ids.map(async (id) => {
          try {
            const r = await call('DescribeInstances', () => client.send(new DescribeInstancesCommand({ InstanceIds: [id] })));
            return (r.Reservations ?? []).flatMap((res) => res.Instances ?? []).filter((i) => i.Tags?.some((t) => t.Key === TAG_FLEET && t.Value === ctx.fleet));
          } catch (e) {
            if (/InvalidInstanceID\.NotFound/.test(errorMessage(e))) return [];
            throw e;
          }
        }),
      );
      return out.flat().map(toInstance);
    },

    async offerings(query: PriceQuery): Promise<CloudOffering[]> {
      const matching = typesForGpu(types, query.gpuModel);
      const out: CloudOffering[] = [];
      const spot = await currentSpot(matching.map(([t]) => t));
      const usable = (zone: string | undefined): boolean => zone === undefined || config.subnets === undefined || config.subnets[zone] !== undefined;
      if (query.capacity !== 'on-demand') {
        for (const [key, p] of spot) {
          const [type, zone] = key.split('|') as [string, string];
          const conf = types[type];
          if (!conf || !usable(zone)) continue;
          out.push(machineOffering(type, conf, 'spot', { pricePerHour: p.price, at: p.at, source: 'EC2 spot price history' }, zone));
        }
      }
      if (query.capacity === 'spot') return out;
      // On-demand: the configured price, else the Price List API's (acquire also caps spot by it).
      const unpriced = matching.filter(([, c]) => c.onDemandPrice === undefined).map(([t]) => priceKey('on-demand', t));
      const list = unpriced.length > 0 ? await book.get(unpriced) : undefined;
      const at = new Date(ctx.now()).toISOString();
      for (const [type, conf] of matching) {
        const price = offeringPrice(conf.onDemandPrice, list, priceKey('on-demand', type), at);
        if (price === undefined) {
          ctx.log.warn('no on-demand price for an instance type; set onDemandPrice in the config', { provider: ctx.name, instanceType: type, region, source: list?.source });
          continue;
        }
        for (const zone of onDemandZones(type, spot)) if (usable(zone)) out.push(machineOffering(type, conf, 'on-demand', price, zone));
      }
      return out;
    },

    async launch(l: LaunchRequest): Promise<CloudInstance> {
      const { address, option: o } = l;
      const image = launchImage(ctx.name, l, config.imageId, { what: 'AMI', key: 'imageId' });
      const input: RunInstancesCommandInput = {
        ImageId: image,
        InstanceType: o.type as never,
        MinCount: 1,
        MaxCount: 1,
        ClientToken: clientTokenFor(l.token),
        UserData: Buffer.from(l.bootScript, 'utf8').toString('base64'),
      };
      if (o.capacity === 'spot') {
        input.InstanceMarketOptions = {
          MarketType: 'spot',
          SpotOptions: { SpotInstanceType: 'one-time', InstanceInterruptionBehavior: 'terminate', ...(l.maxPricePerHour !== undefined ? { MaxPrice: l.maxPricePerHour.toFixed(4) } : {}) },
        };
      }
      if (o.zone !== undefined) input.Placement = { AvailabilityZone: o.zone };
      const subnet = (o.zone !== undefined ? config.subnets?.[o.zone] : undefined) ?? config.subnetId;
      if (subnet !== undefined) input.SubnetId = subnet;
      if (config.securityGroupIds !== undefined) input.SecurityGroupIds = [...config.securityGroupIds];
      if (config.instanceProfile !== undefined) input.IamInstanceProfile = config.instanceProfile.startsWith('arn:') ? { Arn: config.instanceProfile } : { Name: config.instanceProfile };
      if (config.rootVolumeGiB !== undefined) {
        input.BlockDeviceMappings = [{ DeviceName: config.rootDeviceName ?? '/dev/sda1', Ebs: { VolumeSize: config.rootVolumeGiB, VolumeType: 'gp3', DeleteOnTermination: true } }];
      }
      if (config.keyName !== undefined) input.KeyName = config.keyName;
      const tags: Tag[] = [
        ...Object.entries(config.tags ?? {}).map(([Key, Value]) => ({ Key, Value })),
        ...Object.entries(l.req.labels).map(([k, Value]) => ({ Key: `${LABEL_PREFIX}${k}`, Value })),
        { Key: 'Name', Value: `spotfleet-${ctx.fleet}-${l.req.pool}` },
        { Key: TAG_FLEET, Value: ctx.fleet },
        { Key: TAG_POOL, Value: l.req.pool },
        { Key: TAG_KEY, Value: idempotencyDigest(l.req.idempotencyKey) },
        { Key: TAG_PRICE, Value: String(o.pricePerHour) },
        { Key: TAG_GPU_MODEL, Value: o.gpuModel },
        { Key: TAG_GPUS, Value: String(o.gpus) },
        { Key: TAG_HOST_KEY, Value: l.hostKeyPublic },
      ];
      input.TagSpecifications = [{ ResourceType: 'instance', Tags: tags }, { ResourceType: 'volume', Tags: tags.filter((t) => t.Key === TAG_FLEET || t.Key === TAG_POOL || t.Key === 'Name') }];
      const r = await call('RunInstances', () => client.send(new RunInstancesCommand(input)), address);
      const inst = r.Instances?.[0];
      if (!inst?.InstanceId) throw new ProviderError(ctx.name, 'EC2 RunInstances returned no instance', { address });
      return toInstance(inst);
    },

    async terminate(id: string): Promise<void> {
      try {
        await client.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
      } catch (e) {
        // Already gone is terminated: release is idempotent.
        if ((e as { name?: string }).name === 'InvalidInstanceID.NotFound') return;
        await call('TerminateInstances', () => Promise.reject(e instanceof Error ? e : new Error(String(e))), `node.${ctx.name}.${id}`);
      }
    },

    capacityError(e: unknown): CapacityErrorInfo | undefined {
      const err = ((e as { cause?: unknown }).cause ?? e) as { name?: string; message?: string };
      const scope = err.name !== undefined ? CAPACITY_CODES[err.name] : undefined;
      return scope !== undefined ? { code: err.name as string, message: err.message ?? '', scope } : undefined;
    },

    close: async () => {
      client.destroy();
      pricing?.destroy();
    },
  };
}
