// A fake EC2 endpoint over HTTP that speaks the EC2 Query protocol exactly as @aws-sdk/client-ec2
// sends it (form-encoded POST `Action=…&Version=2016-11-15`, SigV4-signed; XML answers in the
// http://ec2.amazonaws.com/doc/2016-11-15/ namespace; errors as
// `<Response><Errors><Error><Code>…`), for the four actions spotfleet uses:
// DescribeSpotPriceHistory, RunInstances, DescribeInstances, TerminateInstances. The real SDK
// talks to it through its `endpoint` override, so the tests exercise the SDK's own serialisers.
// Every request must carry an Authorization header; when `credentials` are given, its SigV4
// signature is checked like AWS would. RunInstances checks what EC2 checks (required parameters,
// user data at most 16 KiB of base64, ClientToken idempotency including a mismatch error), and,
// with a `boot` hook, hands each launched instance's user data to the test harness, which "boots"
// it (a lab node): the instance stays `pending` until the hook answers with its addresses.
// `control.noCapacity` makes launches of an offering fail as EC2 does when it has no capacity or
// the account hit a quota.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { listen } from './http-util.js';

const NS = 'http://ec2.amazonaws.com/doc/2016-11-15/';
const API_VERSION = '2016-11-15';
const HOUR = 3_600_000;

export interface FakeEc2Options {
  host?: string;
  port?: number;
  region?: string;
  /** Availability zones of the region (default `${region}a`, `${region}b`). */
  zones?: string[];
  /** Instance types on sale and their mean spot price in USD/h (for the whole instance). */
  instanceTypes?: Record<string, { spotPrice: number }>;
  /** When set, requests must be SigV4-signed with this key (else AuthFailure). */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  seed?: number;
  /** Hours of spot price history generated at start (one point per hour; default 24). */
  historyHours?: number;
  /** A new instance stays `pending` this long (default 0: `running` at the next describe). */
  bootMs?: number;
  now?: () => number;
  /**
   * Boots a launched instance (the test lab makes it a node): gets the instance and its decoded
   * user data, answers with its addresses. The instance is `pending` until then; a rejection
   * terminates it (Server.InternalError).
   */
  boot?: (instance: FakeEc2Instance, userData: string | undefined) => Promise<{ privateIp?: string; publicIp?: string } | undefined>;
  /** Called once when an instance is terminated (by TerminateInstances or a spot reclaim). */
  onTerminate?: (instance: FakeEc2Instance) => void | Promise<void>;
}

/** An offering EC2 has no capacity for (or the account has no quota for). */
export interface FakeEc2CapacityFault {
  instanceType?: string;
  zone?: string;
  market?: 'spot' | 'on-demand';
  /** Default InsufficientInstanceCapacity. */
  code?: 'InsufficientInstanceCapacity' | 'VcpuLimitExceeded' | 'MaxSpotInstanceCountExceeded' | 'InstanceLimitExceeded' | 'Unsupported';
}

export type Ec2InstanceStateName = 'pending' | 'running' | 'shutting-down' | 'terminated' | 'stopping' | 'stopped';

export interface FakeEc2Instance {
  instanceId: string;
  reservationId: string;
  imageId: string;
  instanceType: string;
  zone: string;
  subnetId?: string;
  keyName?: string;
  state: Ec2InstanceStateName;
  launchTime: number;
  lifecycle?: 'spot';
  spotInstanceRequestId?: string;
  maxPrice?: string;
  clientToken?: string;
  privateIp: string;
  publicIp?: string;
  tags: Record<string, string>;
  /** Decoded user data, as EC2 would hand it to the instance. */
  userData?: string;
  securityGroupIds?: string[];
  iamInstanceProfile?: string;
  /** Block device mappings as sent (`/dev/sda1` → size GiB, type). */
  blockDevices?: { deviceName: string; volumeSize?: number; volumeType?: string }[];
  stateReason?: { code: string; message: string };
  /** When it turns running / terminated (lazy state machine). */
  runningAt?: number;
  terminatedAt?: number;
}

export interface FakeEc2Request {
  action: string;
  status: number;
  params: Record<string, string>;
}

export interface FakeEc2Control {
  advance(ms: number): void;
  /** Appends a spot price point (now) for a type in one zone or all. */
  setSpotPrice(instanceType: string, price: number, zone?: string): void;
  /** Reclaims a spot instance as EC2 does: terminated with Server.SpotInstanceTermination. */
  interrupt(instanceId: string): void;
  /** The next `count` requests (of `action`, when given) fail with this code and status. */
  failNext(count: number, opts?: { code?: string; status?: number; action?: string }): void;
  /** Launches matching the fault fail (until cleared) as EC2 fails them for capacity or quota. */
  noCapacity(fault: FakeEc2CapacityFault): void;
  clearCapacityFaults(): void;
  readonly requests: readonly FakeEc2Request[];
  instances(): FakeEc2Instance[];
}

export interface FakeEc2 {
  /** The endpoint to hand the SDK (`endpoint:`). */
  url: string;
  region: string;
  close(): Promise<void>;
  control: FakeEc2Control;
}

class Ec2Error extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const STATE_CODE: Record<Ec2InstanceStateName, number> = { pending: 0, running: 16, 'shutting-down': 32, terminated: 48, stopping: 64, stopped: 80 };

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
function el(name: string, value: string | number | undefined): string {
  return value === undefined ? '' : `<${name}>${esc(String(value))}</${name}>`;
}
const isoSec = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, '.000Z');
const sha256 = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');
const hmac = (key: Buffer | string, data: string): Buffer => createHmac('sha256', key).update(data).digest();

function hashUnit(seed: number, key: string): number {
  let h = (2166136261 ^ seed) >>> 0;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 16777619) >>> 0;
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d) >>> 0;
  h ^= h >>> 12;
  return (h >>> 0) / 4294967296;
}

/** Collects `Prefix.N` list members (`InstanceId.1`, `InstanceId.2`, ...) in order. */
function listParam(p: Record<string, string>, prefix: string): string[] {
  const out: string[] = [];
  for (let i = 1; p[`${prefix}.${i}`] !== undefined; i++) out.push(p[`${prefix}.${i}`] as string);
  return out;
}

/**
 * Starts the fake EC2 endpoint on 127.0.0.1 (any free port by default).
 * @example
 * const ec2 = await startFakeEc2({ instanceTypes: { 'p3.2xlarge': { spotPrice: 0.92 } } });
 * new EC2Client({ region: ec2.region, endpoint: ec2.url, credentials: { accessKeyId: 'AKID', secretAccessKey: 'x' } });
 */
export async function startFakeEc2(opts: FakeEc2Options = {}): Promise<FakeEc2> {
  const region = opts.region ?? 'us-east-1';
  const zones = opts.zones ?? [`${region}a`, `${region}b`];
  const types = opts.instanceTypes ?? { 'p3.2xlarge': { spotPrice: 0.918 }, 'p3.8xlarge': { spotPrice: 3.67 } };
  const seed = opts.seed ?? 1;
  const bootMs = opts.bootMs ?? 0;
  const baseNow = opts.now ?? Date.now;
  let offset = 0;
  const now = (): number => baseNow() + offset;

  /** Spot price history per `type|zone`, oldest first. */
  const history = new Map<string, { at: number; price: number }[]>();
  const t0 = now();
  for (const [type, { spotPrice }] of Object.entries(types)) {
    for (const zone of zones) {
      const points: { at: number; price: number }[] = [];
      for (let h = opts.historyHours ?? 24; h >= 0; h--) {
        const at = Math.floor((t0 - h * HOUR) / 1000) * 1000;
        points.push({ at, price: Math.round(spotPrice * (0.85 + 0.3 * hashUnit(seed, `${type}|${zone}|${h}`)) * 10_000) / 10_000 });
      }
      history.set(`${type}|${zone}`, points);
    }
  }
  const instances = new Map<string, FakeEc2Instance>();
  const byClientToken = new Map<string, { fingerprint: string; reservationId: string; ids: string[] }>();
  const requests: FakeEc2Request[] = [];
  const faults: { code: string; status: number; action?: string }[] = [];
  const capacityFaults: FakeEc2CapacityFault[] = [];
  const ended = new Set<string>();
  const ending = (i: FakeEc2Instance): void => {
    if (ended.has(i.instanceId)) return;
    ended.add(i.instanceId);
    void Promise.resolve(opts.onTerminate?.(i)).catch(() => undefined);
  };
  let seq = 0;
  const nextId = (prefix: string, width = 17): string => {
    seq++;
    return `${prefix}-${createHash('sha1').update(`${seed}:${prefix}:${seq}`).digest('hex').slice(0, width)}`;
  };

  function currentSpot(type: string, zone: string): number | undefined {
    const h = history.get(`${type}|${zone}`);
    return h?.[h.length - 1]?.price;
  }

  function settle(i: FakeEc2Instance, t: number): FakeEc2Instance {
    if (i.state === 'pending' && i.runningAt !== undefined && i.runningAt <= t) i.state = 'running';
    if (i.state === 'shutting-down' && i.terminatedAt !== undefined && i.terminatedAt <= t) i.state = 'terminated';
    return i;
  }

  function instanceXml(i: FakeEc2Instance): string {
    const tags = Object.entries(i.tags)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => `<item>${el('key', k)}${el('value', v)}</item>`)
      .join('');
    return (
      '<item>' +
      el('instanceId', i.instanceId) +
      el('imageId', i.imageId) +
      `<instanceState>${el('code', STATE_CODE[i.state])}${el('name', i.state)}</instanceState>` +
      el('privateDnsName', `ip-${i.privateIp.replace(/\./g, '-')}.ec2.internal`) +
      el('keyName', i.keyName) +
      el('amiLaunchIndex', 0) +
      el('instanceType', i.instanceType) +
      el('launchTime', isoSec(i.launchTime)) +
      `<placement>${el('availabilityZone', i.zone)}${el('tenancy', 'default')}</placement>` +
      el('subnetId', i.subnetId) +
      el('privateIpAddress', i.privateIp) +
      el('ipAddress', i.publicIp) +
      el('instanceLifecycle', i.lifecycle) +
      el('spotInstanceRequestId', i.spotInstanceRequestId) +
      el('clientToken', i.clientToken) +
      (i.stateReason ? `<stateReason>${el('code', i.stateReason.code)}${el('message', i.stateReason.message)}</stateReason>` : '') +
      (tags ? `<tagSet>${tags}</tagSet>` : '') +
      '</item>'
    );
  }

  function reply(action: string, inner: string): string {
    return `<?xml version="1.0" encoding="UTF-8"?>\n<${action}Response xmlns="${NS}">${el('requestId', nextId('req', 8).slice(4))}${inner}</${action}Response>`;
  }

  function describeSpotPriceHistory(p: Record<string, string>): string {
    const t = now();
    const wantTypes = listParam(p, 'InstanceType');
    const products = listParam(p, 'ProductDescription');
    if (products.length > 0 && !products.some((d) => d === 'Linux/UNIX' || d === 'Linux/UNIX (Amazon VPC)')) return reply('DescribeSpotPriceHistory', '<spotPriceHistorySet/>');
    const start = p.StartTime !== undefined ? Date.parse(p.StartTime) : t - HOUR;
    const end = p.EndTime !== undefined ? Date.parse(p.EndTime) : t;
    if (!Number.isFinite(start) || !Number.isFinite(end)) throw new Ec2Error(400, 'InvalidParameterValue', 'StartTime and EndTime must be ISO-8601 times');
    const items: { type: string; zone: string; at: number; price: number }[] = [];
    for (const [key, points] of history) {
      const [type, zone] = key.split('|') as [string, string];
      if (wantTypes.length > 0 && !wantTypes.includes(type)) continue;
      if (p.AvailabilityZone !== undefined && p.AvailabilityZone !== zone) continue;
      // As EC2 does: the points inside the window, plus the one in effect at its start.
      const before = points.filter((x) => x.at <= start).pop();
      for (const x of points) if ((x.at > start && x.at <= end) || x === before) items.push({ type, zone, ...x });
    }
    items.sort((a, b) => b.at - a.at || a.type.localeCompare(b.type) || a.zone.localeCompare(b.zone));
    const { page, nextToken } = paginate(items, p);
    const body = page
      .map((x) => `<item>${el('instanceType', x.type)}${el('productDescription', 'Linux/UNIX')}${el('spotPrice', x.price.toFixed(6))}${el('timestamp', isoSec(x.at))}${el('availabilityZone', x.zone)}</item>`)
      .join('');
    return reply('DescribeSpotPriceHistory', `<spotPriceHistorySet>${body}</spotPriceHistorySet>${el('nextToken', nextToken)}`);
  }

  function paginate<T>(items: T[], p: Record<string, string>): { page: T[]; nextToken?: string } {
    const from = p.NextToken !== undefined ? Number(Buffer.from(p.NextToken, 'base64url').toString()) : 0;
    if (!Number.isInteger(from) || from < 0) throw new Ec2Error(400, 'InvalidParameterValue', 'Invalid NextToken');
    const max = p.MaxResults !== undefined ? Number(p.MaxResults) : 1000;
    const page = items.slice(from, from + max);
    return from + max < items.length ? { page, nextToken: Buffer.from(String(from + max)).toString('base64url') } : { page };
  }

  function runInstances(p: Record<string, string>): string {
    for (const k of ['ImageId', 'MinCount', 'MaxCount']) if (p[k] === undefined) throw new Ec2Error(400, 'MissingParameter', `The request must contain the parameter ${k}`);
    const type = p.InstanceType ?? 'm1.small';
    if (!(type in types)) throw new Ec2Error(400, 'InvalidParameterValue', `Invalid value '${type}' for InstanceType.`);
    const count = Number(p.MinCount);
    if (!Number.isInteger(count) || count < 1 || Number(p.MaxCount) < count) throw new Ec2Error(400, 'InvalidParameterValue', 'MinCount and MaxCount must be positive and MinCount <= MaxCount');
    const token = p.ClientToken;
    if (token !== undefined && (token.length > 64 || !/^[\x20-\x7e]+$/.test(token))) throw new Ec2Error(400, 'InvalidParameterValue', 'ClientToken must be up to 64 ASCII characters');
    // Idempotency: same token and same parameters → the same reservation, launched once.
    const fingerprint = JSON.stringify(Object.entries(p).filter(([k]) => k !== 'ClientToken' && k !== 'Action' && k !== 'Version').sort(([a], [b]) => a.localeCompare(b)));
    if (token !== undefined) {
      const seen = byClientToken.get(token);
      if (seen) {
        if (seen.fingerprint !== fingerprint) throw new Ec2Error(400, 'IdempotentParameterMismatch', `The client token '${token}' was already used with different parameters.`);
        return reservationReply('RunInstances', seen.reservationId, seen.ids.map((id) => instances.get(id) as FakeEc2Instance));
      }
    }
    const zone = p['Placement.AvailabilityZone'] ?? zones[0] ?? `${region}a`;
    if (!zones.includes(zone)) throw new Ec2Error(400, 'InvalidParameterValue', `Invalid availability zone: [${zone}]`);
    const spot = p['InstanceMarketOptions.MarketType'] === 'spot';
    const maxPrice = p['InstanceMarketOptions.SpotOptions.MaxPrice'];
    let userData: string | undefined;
    if (p.UserData !== undefined) {
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(p.UserData)) throw new Ec2Error(400, 'InvalidParameterValue', 'Invalid BASE64 encoding of user data.');
      if (p.UserData.length > 16384) throw new Ec2Error(400, 'InvalidParameterValue', 'User data is limited to 16384 bytes');
      userData = Buffer.from(p.UserData, 'base64').toString('utf8');
    }
    const market = spot ? 'spot' : 'on-demand';
    const cf = capacityFaults.find((f) => (f.instanceType === undefined || f.instanceType === type) && (f.zone === undefined || f.zone === zone) && (f.market === undefined || f.market === market));
    if (cf) {
      const code = cf.code ?? 'InsufficientInstanceCapacity';
      const msg: Record<string, string> = {
        InsufficientInstanceCapacity: `We currently do not have sufficient ${type} capacity in the Availability Zone you requested (${zone}). Our system will be working on provisioning additional capacity. You can currently get ${type} capacity by not specifying an Availability Zone in your request or choosing a different Availability Zone.`,
        VcpuLimitExceeded: `You have requested more vCPU capacity than your current vCPU limit of 0 allows for the instance bucket that the specified instance type belongs to. Please visit http://aws.amazon.com/contact-us/ec2-request to request an adjustment to this limit.`,
        MaxSpotInstanceCountExceeded: 'Max spot instance count exceeded',
        InstanceLimitExceeded: `You have requested more instances than your current instance limit allows for the specified instance type.`,
        Unsupported: `Your requested instance type (${type}) is not supported in your requested Availability Zone (${zone}).`,
      };
      throw new Ec2Error(code === 'Unsupported' ? 400 : code === 'InsufficientInstanceCapacity' ? 500 : 400, code, msg[code] ?? code);
    }
    if (spot) {
      const current = currentSpot(type, zone) ?? 0;
      if (maxPrice !== undefined && Number(maxPrice) < current) {
        throw new Ec2Error(400, 'SpotMaxPriceTooLow', `Your Spot request price of ${maxPrice} is lower than the minimum required Spot request fulfillment price of ${current}.`);
      }
    }
    const tags: Record<string, string> = {};
    for (let s = 1; p[`TagSpecification.${s}.ResourceType`] !== undefined; s++) {
      if (p[`TagSpecification.${s}.ResourceType`] !== 'instance') continue;
      for (let k = 1; p[`TagSpecification.${s}.Tag.${k}.Key`] !== undefined; k++) tags[p[`TagSpecification.${s}.Tag.${k}.Key`] as string] = p[`TagSpecification.${s}.Tag.${k}.Value`] ?? '';
    }
    const t = now();
    const reservationId = nextId('r');
    const ids: string[] = [];
    for (let n = 0; n < count; n++) {
      const i: FakeEc2Instance = {
        instanceId: nextId('i'),
        reservationId,
        imageId: p.ImageId as string,
        instanceType: type,
        zone,
        state: 'pending',
        launchTime: Math.floor(t / 1000) * 1000,
        privateIp: `10.0.${(seq >> 8) & 255}.${seq & 255}`,
        tags,
      };
      if (!opts.boot) i.runningAt = t + bootMs;
      if (userData !== undefined) i.userData = userData;
      const sgs = listParam(p, 'SecurityGroupId');
      if (sgs.length > 0) i.securityGroupIds = sgs;
      const profile = p['IamInstanceProfile.Name'] ?? p['IamInstanceProfile.Arn'];
      if (profile !== undefined) i.iamInstanceProfile = profile;
      const devices: NonNullable<FakeEc2Instance['blockDevices']> = [];
      for (let b = 1; p[`BlockDeviceMapping.${b}.DeviceName`] !== undefined; b++) {
        const d: NonNullable<FakeEc2Instance['blockDevices']>[number] = { deviceName: p[`BlockDeviceMapping.${b}.DeviceName`] as string };
        const size = p[`BlockDeviceMapping.${b}.Ebs.VolumeSize`];
        if (size !== undefined) d.volumeSize = Number(size);
        const vt = p[`BlockDeviceMapping.${b}.Ebs.VolumeType`];
        if (vt !== undefined) d.volumeType = vt;
        devices.push(d);
      }
      if (devices.length > 0) i.blockDevices = devices;
      if (p.SubnetId !== undefined) i.subnetId = p.SubnetId;
      if (p.KeyName !== undefined) i.keyName = p.KeyName;
      if (token !== undefined) i.clientToken = token;
      if (spot) {
        i.lifecycle = 'spot';
        i.spotInstanceRequestId = nextId('sir', 8);
        if (maxPrice !== undefined) i.maxPrice = maxPrice;
      }
      instances.set(i.instanceId, i);
      ids.push(i.instanceId);
    }
    if (token !== undefined) byClientToken.set(token, { fingerprint, reservationId, ids });
    if (opts.boot) for (const id of ids) bootInstance(instances.get(id) as FakeEc2Instance, opts.boot);
    return reservationReply('RunInstances', reservationId, ids.map((id) => instances.get(id) as FakeEc2Instance));
  }

  function bootInstance(i: FakeEc2Instance, boot: NonNullable<FakeEc2Options['boot']>): void {
    boot({ ...i }, i.userData).then(
      (addr) => {
        if (i.state !== 'pending') return;
        if (addr?.privateIp !== undefined) i.privateIp = addr.privateIp;
        if (addr?.publicIp !== undefined) i.publicIp = addr.publicIp;
        i.state = 'running';
      },
      (e: unknown) => {
        if (i.state !== 'pending') return;
        i.state = 'terminated';
        i.terminatedAt = now();
        i.stateReason = { code: 'Server.InternalError', message: `Server.InternalError: Internal error on launch (${e instanceof Error ? e.message : String(e)})` };
        ending(i);
      },
    );
  }

  function reservationReply(action: string, reservationId: string, list: FakeEc2Instance[]): string {
    return reply(action, `${el('reservationId', reservationId)}${el('ownerId', '123456789012')}<groupSet/><instancesSet>${list.map(instanceXml).join('')}</instancesSet>`);
  }

  const FILTERS: Record<string, (i: FakeEc2Instance, v: string) => boolean> = {
    'instance-state-name': (i, v) => i.state === v,
    'instance-type': (i, v) => i.instanceType === v,
    'availability-zone': (i, v) => i.zone === v,
    'instance-lifecycle': (i, v) => (i.lifecycle ?? 'normal') === v,
    'tag-key': (i, v) => v in i.tags,
    'client-token': (i, v) => i.clientToken === v,
  };

  function describeInstances(p: Record<string, string>): string {
    const t = now();
    const ids = listParam(p, 'InstanceId');
    for (const id of ids) if (!instances.has(id)) throw new Ec2Error(400, 'InvalidInstanceID.NotFound', `The instance ID '${id}' does not exist`);
    let list = [...instances.values()].map((i) => settle(i, t));
    // Terminated instances stay visible for an hour, as on EC2.
    list = list.filter((i) => !(i.state === 'terminated' && i.terminatedAt !== undefined && t - i.terminatedAt > HOUR));
    if (ids.length > 0) list = list.filter((i) => ids.includes(i.instanceId));
    for (let f = 1; p[`Filter.${f}.Name`] !== undefined; f++) {
      const name = p[`Filter.${f}.Name`] as string;
      const values = listParam(p, `Filter.${f}.Value`);
      let test: (i: FakeEc2Instance, v: string) => boolean;
      if (name.startsWith('tag:')) {
        const key = name.slice(4);
        test = (i, v) => i.tags[key] === v;
      } else {
        const known = FILTERS[name];
        if (!known) throw new Ec2Error(400, 'InvalidParameterValue', `The filter '${name}' is invalid`);
        test = known;
      }
      list = list.filter((i) => values.some((v) => test(i, v)));
    }
    list.sort((a, b) => a.launchTime - b.launchTime || a.instanceId.localeCompare(b.instanceId));
    const { page, nextToken } = paginate(list, p);
    const byRes = new Map<string, FakeEc2Instance[]>();
    for (const i of page) byRes.set(i.reservationId, [...(byRes.get(i.reservationId) ?? []), i]);
    const body = [...byRes]
      .map(([rid, is]) => `<item>${el('reservationId', rid)}${el('ownerId', '123456789012')}<groupSet/><instancesSet>${is.map(instanceXml).join('')}</instancesSet></item>`)
      .join('');
    return reply('DescribeInstances', `<reservationSet>${body}</reservationSet>${el('nextToken', nextToken)}`);
  }

  function terminateInstances(p: Record<string, string>): string {
    const ids = listParam(p, 'InstanceId');
    if (ids.length === 0) throw new Ec2Error(400, 'MissingParameter', 'The request must contain the parameter InstanceId');
    for (const id of ids) {
      if (!/^i-[0-9a-f]{8,17}$/.test(id)) throw new Ec2Error(400, 'InvalidInstanceID.Malformed', `Invalid id: "${id}"`);
      if (!instances.has(id)) throw new Ec2Error(400, 'InvalidInstanceID.NotFound', `The instance ID '${id}' does not exist`);
    }
    const t = now();
    const items = ids.map((id) => {
      const i = settle(instances.get(id) as FakeEc2Instance, t);
      const prev = i.state;
      if (i.state !== 'terminated' && i.state !== 'shutting-down') {
        i.state = 'shutting-down';
        i.terminatedAt = t;
        i.stateReason = { code: 'Client.UserInitiatedShutdown', message: 'Client.UserInitiatedShutdown: User initiated shutdown' };
        ending(i);
      }
      return `<item>${el('instanceId', id)}<currentState>${el('code', STATE_CODE[i.state])}${el('name', i.state)}</currentState><previousState>${el('code', STATE_CODE[prev])}${el('name', prev)}</previousState></item>`;
    });
    return reply('TerminateInstances', `<instancesSet>${items.join('')}</instancesSet>`);
  }

  function verifySignature(req: IncomingMessage, body: Buffer): void {
    const auth = req.headers.authorization ?? '';
    if (auth === '') throw new Ec2Error(401, 'AuthFailure', 'AWS was not able to validate the provided access credentials');
    const creds = opts.credentials;
    if (!creds) return;
    const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(auth);
    if (!m) throw new Ec2Error(401, 'AuthFailure', 'AWS was not able to validate the provided access credentials');
    const [, keyId, date, reg, service, signedHeaders, signature] = m as unknown as [string, string, string, string, string, string, string];
    if (keyId !== creds.accessKeyId) throw new Ec2Error(401, 'AuthFailure', 'AWS was not able to validate the provided access credentials');
    const amzDate = String(req.headers['x-amz-date'] ?? '');
    const payloadHash = sha256(body);
    const claimed = req.headers['x-amz-content-sha256'];
    if (claimed !== undefined && claimed !== payloadHash) throw new Ec2Error(400, 'IncompleteSignature', 'x-amz-content-sha256 does not match the body');
    const canonicalHeaders = signedHeaders
      .split(';')
      .map((h) => `${h}:${String(req.headers[h] ?? '').trim().replace(/\s+/g, ' ')}\n`)
      .join('');
    const url = new URL(req.url ?? '/', 'http://x');
    const canonical = ['POST', url.pathname, url.search.slice(1), canonicalHeaders, signedHeaders, payloadHash].join('\n');
    const scope = `${date}/${reg}/${service}/aws4_request`;
    const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonical)].join('\n');
    const key = hmac(hmac(hmac(hmac(`AWS4${creds.secretAccessKey}`, date), reg), service), 'aws4_request');
    const expected = createHmac('sha256', key).update(toSign).digest('hex');
    if (!timingSafeEqual(Buffer.from(expected), Buffer.from(signature))) {
      throw new Ec2Error(401, 'AuthFailure', 'The request signature we calculated does not match the signature you provided.');
    }
  }

  function errorXml(code: string, message: string): string {
    return `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>${el('Code', code)}${el('Message', message)}</Error></Errors>${el('RequestID', nextId('req', 8).slice(4))}</Response>`;
  }

  function send(res: ServerResponse, status: number, xml: string): void {
    res.writeHead(status, { 'content-type': 'text/xml;charset=UTF-8', 'content-length': Buffer.byteLength(xml) });
    res.end(xml);
  }

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const params: Record<string, string> = {};
      for (const [k, v] of new URLSearchParams(body.toString('utf8'))) params[k] = v;
      const record: FakeEc2Request = { action: params.Action ?? '', status: 0, params };
      requests.push(record);
      const finish = (status: number, xml: string): void => {
        record.status = status;
        send(res, status, xml);
      };
      try {
        if (req.method !== 'POST') throw new Ec2Error(400, 'InvalidAction', 'The EC2 Query API takes POST');
        verifySignature(req, body);
        if (params.Version !== API_VERSION) throw new Ec2Error(400, 'InvalidParameterValue', `Version ${params.Version ?? '(none)'} is not supported; expected ${API_VERSION}`);
        const fi = faults.findIndex((f) => f.action === undefined || f.action === params.Action);
        if (fi >= 0) {
          const f = faults.splice(fi, 1)[0] as { code: string; status: number };
          throw new Ec2Error(f.status, f.code, `injected ${f.code}`);
        }
        switch (params.Action) {
          case 'DescribeSpotPriceHistory':
            return finish(200, describeSpotPriceHistory(params));
          case 'RunInstances':
            return finish(200, runInstances(params));
          case 'DescribeInstances':
            return finish(200, describeInstances(params));
          case 'TerminateInstances':
            return finish(200, terminateInstances(params));
          default:
            throw new Ec2Error(400, 'InvalidAction', `The action ${params.Action ?? '(none)'} is not valid for this web service.`);
        }
      } catch (e) {
        if (e instanceof Ec2Error) finish(e.status, errorXml(e.code, e.message));
        else finish(500, errorXml('InternalError', e instanceof Error ? e.message : String(e)));
      }
    });
  };

  const control: FakeEc2Control = {
    advance(ms) {
      offset += ms;
    },
    setSpotPrice(type, price, zone) {
      const t = now();
      for (const z of zone !== undefined ? [zone] : zones) {
        const key = `${type}|${z}`;
        history.set(key, [...(history.get(key) ?? []), { at: Math.floor(t / 1000) * 1000, price }]);
      }
    },
    interrupt(id) {
      const i = instances.get(id);
      if (!i) throw new Error(`no instance ${id}`);
      i.state = 'terminated';
      i.terminatedAt = now();
      i.stateReason = { code: 'Server.SpotInstanceTermination', message: 'Server.SpotInstanceTermination: Spot instance termination' };
      ending(i);
    },
    noCapacity(fault) {
      capacityFaults.push({ ...fault });
    },
    clearCapacityFaults() {
      capacityFaults.length = 0;
    },
    failNext(count, o = {}) {
      for (let n = 0; n < count; n++) {
        const f: { code: string; status: number; action?: string } = { code: o.code ?? 'InternalError', status: o.status ?? 500 };
        if (o.action !== undefined) f.action = o.action;
        faults.push(f);
      }
    },
    requests,
    instances: () => [...instances.values()].map((i) => ({ ...settle(i, now()) })),
  };

  const srv = await listen(handler, { host: opts.host ?? '127.0.0.1', port: opts.port ?? 0 });
  return {
    url: srv.address,
    region,
    control,
    close: () => srv.close(),
  };
}
