// EC2 capacity for the `aws` provider, through the AWS SDK v3 (@aws-sdk/client-ec2): spot prices
// from DescribeSpotPriceHistory, on-demand prices from config (the Pricing API is out of scope),
// launches with RunInstances (spot market options, ClientToken = the idempotency key), leases as
// the instances tagged for this fleet (DescribeInstances), release with TerminateInstances.
// Credentials come from the SDK's usual chain; `endpoint` overrides the service URL (tests, LocalStack).
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
import { ProviderError } from '../../src/core/errors.js';
import type { Lease, NodeInfo, PriceQuote } from '../../src/core/types.js';
import { roundUsd } from '../../src/core/units.js';
import type { AcquireRequest, CapacityCapability, NodesCapability, PriceQuery, ProviderContext } from '../../src/providers/sdk.js';
import { computeBid } from '../../src/core/bid.js';

export interface Ec2InstanceTypeConfig {
  gpuModel: string;
  gpus: number;
  /** On-demand USD per instance-hour. */
  onDemandPrice: number;
}

export interface Ec2CapacityConfig {
  region?: string;
  /** Service URL override (tests, LocalStack); default the SDK's regional endpoint. */
  endpoint?: string;
  instanceTypes?: Record<string, Ec2InstanceTypeConfig>;
  imageId?: string;
  subnetId?: string;
  keyName?: string;
  /** Extra tags on every instance spotfleet launches. */
  tags?: Record<string, string>;
  /** SDK attempts per call, retries on throttling/5xx included (default 3). */
  maxAttempts?: number;
}

/** JSON Schema properties of the EC2 part of the aws config (composed in index.ts). */
export const ec2ConfigProperties = {
  region: { type: 'string', minLength: 1, description: 'AWS region, e.g. us-east-1' },
  endpoint: { type: 'string', pattern: '^https?://', description: 'EC2 endpoint override (tests, LocalStack)' },
  instanceTypes: {
    type: 'object',
    minProperties: 1,
    description: 'Instance types spotfleet may launch: GPU model, GPUs and on-demand $/h each',
    additionalProperties: {
      type: 'object',
      additionalProperties: false,
      required: ['gpuModel', 'gpus', 'onDemandPrice'],
      properties: {
        gpuModel: { type: 'string', minLength: 1 },
        gpus: { type: 'integer', minimum: 1 },
        onDemandPrice: { type: 'number', minimum: 0, description: 'USD per instance-hour' },
      },
    },
  },
  imageId: { type: 'string', pattern: '^ami-', description: 'AMI to launch' },
  subnetId: { type: 'string', minLength: 1 },
  keyName: { type: 'string', minLength: 1 },
  tags: { type: 'object', additionalProperties: { type: 'string', maxLength: 256 } },
  maxAttempts: { type: 'integer', minimum: 1, maximum: 10, default: 3 },
} as const;

/** EC2 capacity is on when instance types are configured; then region and image are required. */
export const ec2DependentRequired = { instanceTypes: ['region', 'imageId'] } as const;

export function ec2Configured(c: Ec2CapacityConfig): boolean {
  return c.instanceTypes !== undefined && Object.keys(c.instanceTypes).length > 0;
}

/** Tags spotfleet writes on its instances; `leases()` finds its own by TAG_FLEET. */
export const TAG_FLEET = 'spotfleet:fleet';
export const TAG_POOL = 'spotfleet:pool';
export const TAG_KEY = 'spotfleet:idempotency-key';
export const TAG_PRICE = 'spotfleet:price-per-hour';
export const TAG_GPU_MODEL = 'spotfleet:gpu-model';
export const TAG_GPUS = 'spotfleet:gpus';
const LABEL_PREFIX = 'spotfleet:label:';

/** EC2 takes ClientToken up to 64 ASCII characters; longer keys are hashed (still stable). */
export function clientTokenFor(key: string): string {
  return key.length <= 64 && /^[\x20-\x7e]+$/.test(key) ? key : createHash('sha256').update(key).digest('hex');
}

const LIVE_STATES = ['pending', 'running', 'shutting-down', 'stopping', 'stopped'];

export interface Ec2Capacity {
  capacity: CapacityCapability;
  nodes: NodesCapability;
  close(): Promise<void>;
}

/** Creates the EC2 capacity and nodes capabilities for one aws provider instance. */
export function createEc2Capacity(config: Ec2CapacityConfig, ctx: ProviderContext): Ec2Capacity {
  const types = config.instanceTypes ?? {};
  if (config.region === undefined || config.imageId === undefined) throw new ProviderError(ctx.name, 'EC2 capacity needs `region` and `imageId` next to `instanceTypes`');
  const region = config.region;
  const imageId = config.imageId;
  const clientConfig: EC2ClientConfig = { region, maxAttempts: config.maxAttempts ?? 3 };
  if (config.endpoint !== undefined) clientConfig.endpoint = config.endpoint;
  // The usual chain reads process.env; a context with its own env (tests, watch) hands keys over
  // explicitly. Otherwise the SDK's default chain decides (env, profile, SSO, container, instance).
  const keyId = ctx.env.AWS_ACCESS_KEY_ID;
  const secret = ctx.env.AWS_SECRET_ACCESS_KEY;
  if (keyId !== undefined && keyId !== '' && secret !== undefined && secret !== '') {
    const session = ctx.env.AWS_SESSION_TOKEN;
    clientConfig.credentials = session !== undefined && session !== '' ? { accessKeyId: keyId, secretAccessKey: secret, sessionToken: session } : { accessKeyId: keyId, secretAccessKey: secret };
  }
  const client = new EC2Client(clientConfig);

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

  function typesFor(gpuModel: string | undefined): [string, Ec2InstanceTypeConfig][] {
    return Object.entries(types)
      .filter(([, t]) => gpuModel === undefined || t.gpuModel.toLowerCase() === gpuModel.toLowerCase())
      .sort(([a], [b]) => a.localeCompare(b));
  }

  /** The spot price in effect now for each (instance type, zone), USD per instance-hour. */
  async function currentSpot(instanceTypes: string[], zone?: string): Promise<Map<string, { price: number; at: string }>> {
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
            ...(zone !== undefined ? { AvailabilityZone: zone } : {}),
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

  function toLease(i: Instance): Lease {
    const tags = tagsOf(i);
    const type = i.InstanceType ?? '';
    const conf = types[type];
    const state = i.State?.Name;
    const labels: Record<string, string> = {};
    for (const [k, v] of Object.entries(tags)) if (k.startsWith(LABEL_PREFIX)) labels[k.slice(LABEL_PREFIX.length)] = v;
    const lease: Lease = {
      id: i.InstanceId ?? '',
      provider: ctx.name,
      pool: tags[TAG_POOL] ?? '',
      capacity: i.InstanceLifecycle === 'spot' ? 'spot' : 'on-demand',
      gpuModel: tags[TAG_GPU_MODEL] ?? conf?.gpuModel ?? '',
      gpus: Number(tags[TAG_GPUS] ?? conf?.gpus ?? 0),
      pricePerHour: Number(tags[TAG_PRICE] ?? conf?.onDemandPrice ?? 0),
      acquiredAt: (i.LaunchTime ?? new Date(0)).toISOString(),
      state: state === 'pending' ? 'pending' : state === 'running' ? 'active' : 'terminated',
      labels,
    };
    const zone = i.Placement?.AvailabilityZone;
    if (zone !== undefined) lease.zone = zone;
    if (state === 'running') lease.node = lease.id;
    return lease;
  }

  async function ownInstances(extra: { Name: string; Values: string[] }[] = []): Promise<Instance[]> {
    const out: Instance[] = [];
    let next: string | undefined;
    do {
      const token = next;
      const r = await call('DescribeInstances', () =>
        client.send(
          new DescribeInstancesCommand({
            Filters: [{ Name: `tag:${TAG_FLEET}`, Values: [ctx.fleet] }, { Name: 'instance-state-name', Values: LIVE_STATES }, ...extra],
            ...(token !== undefined ? { NextToken: token } : {}),
          }),
        ),
      );
      for (const res of r.Reservations ?? []) out.push(...(res.Instances ?? []));
      next = r.NextToken !== undefined && r.NextToken !== '' ? r.NextToken : undefined;
    } while (next !== undefined);
    return out.sort((a, b) => (a.InstanceId ?? '').localeCompare(b.InstanceId ?? ''));
  }

  const capacity: CapacityCapability = {
    async prices(query: PriceQuery): Promise<PriceQuote[]> {
      const matching = typesFor(query.gpuModel);
      const at = new Date(ctx.now()).toISOString();
      const best = new Map<string, PriceQuote>();
      const keep = (q: PriceQuote): void => {
        const key = `${q.gpuModel}|${q.capacity}|${q.zone ?? ''}`;
        const seen = best.get(key);
        if (!seen || q.pricePerGpuHour < seen.pricePerGpuHour) best.set(key, q);
      };
      if (query.capacity !== 'on-demand') {
        const spot = await currentSpot(matching.map(([t]) => t));
        for (const [key, p] of spot) {
          const [type, zone] = key.split('|') as [string, string];
          const conf = types[type];
          if (!conf || (query.zones !== undefined && !query.zones.includes(zone))) continue;
          keep({ provider: ctx.name, gpuModel: conf.gpuModel, capacity: 'spot', zone, pricePerGpuHour: roundUsd(p.price / conf.gpus), available: true, at: p.at });
        }
      }
      if (query.capacity !== 'spot') {
        // On-demand is region-wide here: no zone, always available (capacity errors show at launch).
        for (const [, conf] of matching) keep({ provider: ctx.name, gpuModel: conf.gpuModel, capacity: 'on-demand', pricePerGpuHour: roundUsd(conf.onDemandPrice / conf.gpus), available: true, at });
      }
      // Cheapest first (the conformance order), ties by model, capacity, zone.
      return [...best.values()].sort((a, b) => a.pricePerGpuHour - b.pricePerGpuHour || a.gpuModel.localeCompare(b.gpuModel) || a.capacity.localeCompare(b.capacity) || (a.zone ?? '').localeCompare(b.zone ?? ''));
    },

    async acquire(req: AcquireRequest): Promise<Lease> {
      const address = `lease.${req.pool}`;
      const token = clientTokenFor(req.idempotencyKey);
      // Same key, same lease, even when prices moved since the first try (which would change the
      // RunInstances parameters and make EC2 refuse the ClientToken as a mismatch).
      const existing = (await ownInstances([{ Name: `tag:${TAG_KEY}`, Values: [token] }]))[0];
      if (existing) return toLease(existing);

      const fitting = typesFor(req.gpuModel).filter(([, t]) => t.gpus >= req.gpus);
      if (fitting.length === 0) throw new ProviderError(ctx.name, `no configured instance type has ${req.gpus}× ${req.gpuModel} (instanceTypes: ${Object.keys(types).sort().join(', ') || 'none'})`, { address });
      const fewest = Math.min(...fitting.map(([, t]) => t.gpus));
      const candidates = fitting.filter(([, t]) => t.gpus === fewest);

      let type: string;
      let conf: Ec2InstanceTypeConfig;
      let zone = req.zone;
      let pricePerHour: number;
      const input: RunInstancesCommandInput = { ImageId: imageId, MinCount: 1, MaxCount: 1, ClientToken: token };
      if (req.capacity === 'spot') {
        const spot = await currentSpot(candidates.map(([t]) => t), req.zone);
        const options = [...spot]
          .map(([key, p]) => ({ type: key.split('|')[0] as string, zone: key.split('|')[1] as string, price: p.price }))
          .filter((o) => types[o.type] !== undefined)
          .sort((a, b) => a.price - b.price || a.type.localeCompare(b.type) || a.zone.localeCompare(b.zone));
        const pick = options[0];
        if (!pick) throw new ProviderError(ctx.name, `EC2 reports no spot price for ${candidates.map(([t]) => t).join(', ')}${req.zone ? ` in ${req.zone}` : ''}`, { address, retryable: true });
        type = pick.type;
        conf = types[type] as Ec2InstanceTypeConfig;
        zone = pick.zone;
        // EC2 charges the spot price, not the max price; the max price is where we would rather be
        // interrupted. It is the engine's bid when given, else the tightest cap (pool max, on-demand).
        const bidInput: Parameters<typeof computeBid>[0] = { spotPricePerGpuHour: pick.price / conf.gpus, onDemandPricePerGpuHour: conf.onDemandPrice / conf.gpus };
        if (req.maxPricePerGpuHour !== undefined) bidInput.maxPricePerGpuHour = req.maxPricePerGpuHour;
        const decision = computeBid(bidInput, { margin: 0 });
        if (!decision.bid) throw new ProviderError(ctx.name, `${type} in ${zone}: ${decision.reason.text}`, { address });
        const capPerGpu = req.bidPerGpuHour ?? Math.min(req.maxPricePerGpuHour ?? Infinity, conf.onDemandPrice / conf.gpus);
        input.InstanceMarketOptions = {
          MarketType: 'spot',
          SpotOptions: { MaxPrice: roundUsd(capPerGpu * conf.gpus).toFixed(4), SpotInstanceType: 'one-time', InstanceInterruptionBehavior: 'terminate' },
        };
        pricePerHour = pick.price;
      } else {
        const pick = [...candidates].sort(([a, x], [b, y]) => x.onDemandPrice - y.onDemandPrice || a.localeCompare(b))[0] as [string, Ec2InstanceTypeConfig];
        [type, conf] = pick;
        if (req.maxPricePerGpuHour !== undefined && conf.onDemandPrice / conf.gpus > req.maxPricePerGpuHour) {
          throw new ProviderError(ctx.name, `${type} on-demand costs $${roundUsd(conf.onDemandPrice / conf.gpus)}/GPU-h, above the pool cap $${req.maxPricePerGpuHour}/GPU-h`, { address });
        }
        pricePerHour = conf.onDemandPrice;
      }
      input.InstanceType = type as never;
      if (zone !== undefined) input.Placement = { AvailabilityZone: zone };
      if (config.subnetId !== undefined) input.SubnetId = config.subnetId;
      if (config.keyName !== undefined) input.KeyName = config.keyName;
      const tags: Tag[] = [
        ...Object.entries(config.tags ?? {}).map(([Key, Value]) => ({ Key, Value })),
        ...Object.entries(req.labels).map(([k, Value]) => ({ Key: `${LABEL_PREFIX}${k}`, Value })),
        { Key: 'Name', Value: `spotfleet-${ctx.fleet}-${req.pool}` },
        { Key: TAG_FLEET, Value: ctx.fleet },
        { Key: TAG_POOL, Value: req.pool },
        { Key: TAG_KEY, Value: token },
        { Key: TAG_PRICE, Value: String(roundUsd(pricePerHour)) },
        { Key: TAG_GPU_MODEL, Value: conf.gpuModel },
        { Key: TAG_GPUS, Value: String(conf.gpus) },
      ];
      input.TagSpecifications = [{ ResourceType: 'instance', Tags: tags }];
      const r = await call('RunInstances', () => client.send(new RunInstancesCommand(input)), address);
      const inst = r.Instances?.[0];
      if (!inst?.InstanceId) throw new ProviderError(ctx.name, 'EC2 RunInstances returned no instance', { address });
      ctx.log.info('aws: instance launched', { provider: ctx.name, pool: req.pool, instance: inst.InstanceId, type, zone, capacity: req.capacity });
      return toLease(inst);
    },

    async release(leaseId: string): Promise<void> {
      try {
        await client.send(new TerminateInstancesCommand({ InstanceIds: [leaseId] }));
      } catch (e) {
        // Already gone is released: release is idempotent.
        if ((e as { name?: string }).name === 'InvalidInstanceID.NotFound') return;
        await call('TerminateInstances', () => Promise.reject(e instanceof Error ? e : new Error(String(e))));
      }
    },

    async leases(): Promise<Lease[]> {
      return (await ownInstances()).map(toLease);
    },
  };

  const nodes: NodesCapability = {
    async list(): Promise<NodeInfo[]> {
      const out: NodeInfo[] = [];
      for (const i of await ownInstances()) {
        const l = toLease(i);
        const state = i.State?.Name;
        const meta: Record<string, string> = { cloud: 'aws', region, instanceType: i.InstanceType ?? '', instanceId: l.id };
        if (i.PrivateIpAddress !== undefined) meta.privateIp = i.PrivateIpAddress;
        if (i.PublicIpAddress !== undefined) meta.publicIp = i.PublicIpAddress;
        const n: NodeInfo = {
          id: l.id,
          provider: ctx.name,
          gpuModel: l.gpuModel,
          gpus: l.gpus,
          capacity: l.capacity,
          pricePerHour: l.pricePerHour,
          state: state === 'running' ? 'ready' : state === 'pending' ? 'provisioning' : state === 'shutting-down' || state === 'stopping' ? 'draining' : 'terminated',
          leaseId: l.id,
          meta,
        };
        if (l.zone !== undefined) n.zone = l.zone;
        if (l.pool !== '') n.pool = l.pool;
        out.push(n);
      }
      return out;
    },
  };

  return {
    capacity,
    nodes,
    close: async () => {
      client.destroy();
    },
  };
}
