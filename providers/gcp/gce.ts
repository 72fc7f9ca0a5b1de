// Compute Engine for the `gcp` provider, through `@google-cloud/compute` over its REST transport
// (`fallback: true`; `endpoint` overrides the service URL), as a cloud driver of the capacity kit:
// instances with `provisioningModel: SPOT` and an `instanceTerminationAction`, or STANDARD, in the
// configured zones, labelled with the fleet, the bootstrap script as the `startup-script` metadata
// item, the injected host key recorded in the `spotfleet-host-key` item. Creation waits for the
// zone operation: a stock-out (ZONE_RESOURCE_POOL_EXHAUSTED) or a quota (QUOTA_EXCEEDED) there is a
// capacity miss, and the next zone is tried. Credentials: GOOGLE_OAUTH_ACCESS_TOKEN (as Terraform's
// google provider reads it), else Application Default Credentials.
import { InstancesClient, ZoneOperationsClient, type protos } from '@google-cloud/compute';
import { GoogleAuth, OAuth2Client } from 'google-auth-library';
import { ProviderError, errorMessage } from '../../src/core/errors.js';
import type { PriceQuery, ProviderContext } from '../../src/providers/sdk.js';
import { join } from 'node:path';
import { PriceBook, idempotencyDigest, launchImage, machineOffering, offeringPrice, typesForGpu, type CapacityErrorInfo, type CloudDriver, type CloudInstance, type CloudOffering, type LaunchRequest, type PriceKey } from '../../src/providers/kit/capacity/index.js';
import { CAPACITY_CODES, LABEL_FLEET, LABEL_KEY, LABEL_POOL, META, catalogFamily, catalogGpuName, gcePriceKey, labelValue, regionOf, uuidFrom, type GceCapacityConfig } from './gce-config.js';
import { GCP_PRICE_TABLE } from './price-table.js';

type Instance = protos.google.cloud.compute.v1.IInstance;
type Operation = protos.google.cloud.compute.v1.IOperation;

/** A zone operation that finished with an error. */
class GceOperationError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(`${code}: ${message}`);
    this.name = code;
  }
}

/**
 * The Google credentials of one gcp provider instance: GOOGLE_OAUTH_ACCESS_TOKEN when set, else
 * Application Default Credentials. `bearer` gives a token for the APIs the client library does
 * not cover (Cloud Billing, the preemption operations).
 */
export function googleAuth(ctx: ProviderContext): { authClient: OAuth2Client | GoogleAuth; bearer: () => Promise<string> } {
  const token = ctx.env.GOOGLE_OAUTH_ACCESS_TOKEN;
  let authClient: OAuth2Client | GoogleAuth;
  if (token !== undefined && token !== '') {
    const c = new OAuth2Client();
    c.setCredentials({ access_token: token, expiry_date: Date.now() + 365 * 24 * 3_600_000 });
    authClient = c;
  } else {
    authClient = new GoogleAuth({ scopes: ['https://www.googleapis.com/auth/cloud-platform'] });
  }
  const bearer = async (): Promise<string> => {
    const t = authClient instanceof OAuth2Client ? (await authClient.getAccessToken()).token : await authClient.getAccessToken();
    if (!t) throw new ProviderError(ctx.name, 'no Google access token (set GOOGLE_OAUTH_ACCESS_TOKEN, or Application Default Credentials)');
    return t;
  };
  return { authClient, bearer };
}

/** Creates the GCE driver for one gcp provider instance. */
export function createGceDriver(config: GceCapacityConfig, ctx: ProviderContext): CloudDriver {
  const types = config.machineTypes ?? {};
  if (config.project === undefined || config.zones === undefined || config.zones.length === 0) throw new ProviderError(ctx.name, 'GCE capacity needs `project` and `zones` next to `machineTypes`');
  const project: string = config.project;
  const zones: string[] = config.zones;
  const { authClient, bearer } = googleAuth(ctx);
  const clientOpts: ConstructorParameters<typeof InstancesClient>[0] & Record<string, unknown> = { fallback: true, ...(authClient instanceof OAuth2Client ? { authClient } : { auth: authClient }) };
  if (config.endpoint !== undefined) {
    const u = new URL(config.endpoint);
    clientOpts.apiEndpoint = u.hostname;
    clientOpts.port = Number(u.port || (u.protocol === 'http:' ? 80 : 443));
    clientOpts.protocol = u.protocol.replace(':', '');
  }
  const instances = new InstancesClient(clientOpts);
  const operations = new ZoneOperationsClient(clientOpts);
  const fleetLabel = labelValue(ctx.fleet);
  const billingUrl = (config.billingEndpoint ?? 'https://cloudbilling.googleapis.com').replace(/\/+$/, '');

  interface Sku {
    description?: string;
    category?: { usageType?: string };
    serviceRegions?: string[];
    pricingInfo?: { pricingExpression?: { tieredRates?: { startUsageAmount?: number; unitPrice?: { units?: string; nanos?: number } }[] } }[];
  }

  /** Machine prices (GPUs + vCPUs + RAM) from Compute Engine's SKUs in the Cloud Billing Catalog. */
  async function fetchCatalog(keys: PriceKey[]): Promise<Partial<Record<PriceKey, number>>> {
    const token = await bearer();
    const skus: Sku[] = [];
    let page = '';
    do {
      const url = `${billingUrl}/v1/services/6F81-5844-456A/skus?${new URLSearchParams({ currencyCode: 'USD', pageSize: '5000', ...(page ? { pageToken: page } : {}) }).toString()}`;
      const res = await fetch(url, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(30_000) }).catch((e: unknown) => {
        throw new ProviderError(ctx.name, `Cloud Billing Catalog ${billingUrl}: ${errorMessage((e as { cause?: unknown }).cause ?? e)}`, { retryable: true, cause: e });
      });
      if (!res.ok) throw new ProviderError(ctx.name, `Cloud Billing Catalog answered HTTP ${res.status}`, { retryable: res.status >= 500 || res.status === 429 });
      const body = (await res.json()) as { skus?: Sku[]; nextPageToken?: string };
      skus.push(...(body.skus ?? []));
      page = body.nextPageToken ?? '';
    } while (page !== '');
    const unit = (name: string, region: string, spot: boolean): number | undefined => {
      const head = `${spot ? 'Spot Preemptible ' : ''}${name} running in `;
      const sku = skus.find((x) => x.category?.usageType === (spot ? 'Preemptible' : 'OnDemand') && (x.serviceRegions ?? []).includes(region) && (x.description ?? '').startsWith(head));
      const rate = sku?.pricingInfo?.at(-1)?.pricingExpression?.tieredRates?.find((r) => (r.startUsageAmount ?? 0) === 0);
      return rate ? Number(rate.unitPrice?.units ?? 0) + (rate.unitPrice?.nanos ?? 0) / 1e9 : undefined;
    };
    const out: Partial<Record<PriceKey, number>> = {};
    for (const [type, t] of Object.entries(types)) {
      for (const zone of zones) {
        const region = regionOf(zone);
        for (const cap of ['spot', 'on-demand'] as const) {
          const key = gcePriceKey(cap, type, t, region);
          if (!keys.includes(key) || t.vcpus === undefined || t.memoryGiB === undefined) continue;
          const gpu = catalogGpuName(t);
          const family = catalogFamily(type, t);
          if (gpu === undefined || family === undefined) continue;
          const [g, c, r] = [unit(gpu, region, cap === 'spot'), unit(`${family} Core`, region, cap === 'spot'), unit(`${family} Ram`, region, cap === 'spot')];
          if (g === undefined || c === undefined || r === undefined) continue;
          out[key] = Math.round((g * t.gpus + c * t.vcpus + r * t.memoryGiB) * 1e6) / 1e6;
        }
      }
    }
    return out;
  }
  const book = new PriceBook({
    provider: ctx.name,
    source: 'Cloud Billing Catalog',
    file: join(ctx.dataDir, 'prices-gce.json'),
    ttlMs: 3_600_000,
    fetch: fetchCatalog,
    ...(zones.some((z) => regionOf(z) === GCP_PRICE_TABLE.region) ? { table: GCP_PRICE_TABLE } : {}),
    log: ctx.log,
    now: () => ctx.now(),
  });
  /** Zone of each VM this driver has seen, for delete. */
  const zoneOf = new Map<string, string>();

  async function call<T>(what: string, fn: () => Promise<T>, address?: string): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof GceOperationError || e instanceof ProviderError) throw e;
      const err = e as { code?: number; message?: string; reason?: string };
      throw new ProviderError(ctx.name, `GCE ${what}: ${errorMessage(e).replace(/\s+/g, ' ').slice(0, 500)}`, { cause: e, retryable: err.code === undefined || err.code === 14 || err.code === 13 || err.code === 4, ...(address !== undefined ? { address } : {}) });
    }
  }

  function meta(i: Instance): Record<string, string> {
    const out: Record<string, string> = {};
    for (const it of i.metadata?.items ?? []) if (it.key) out[it.key] = it.value ?? '';
    return out;
  }

  function toInstance(i: Instance, zone: string): CloudInstance {
    const m = meta(i);
    const type = (i.machineType ?? '').split('/').pop() ?? '';
    const conf = types[type];
    const status = i.status ?? '';
    let labels: Record<string, string> = {};
    try {
      labels = JSON.parse(m[META.labels] ?? '{}') as Record<string, string>;
    } catch {
      labels = {};
    }
    const inst: CloudInstance = {
      id: i.name ?? '',
      pool: m[META.pool] ?? '',
      capacity: i.scheduling?.provisioningModel === 'SPOT' ? 'spot' : 'on-demand',
      gpuModel: m[META.gpuModel] ?? conf?.gpuModel ?? '',
      gpus: Number(m[META.gpus] ?? conf?.gpus ?? 0),
      pricePerHour: Number(m[META.price] ?? 0),
      launchedAt: Date.parse(i.creationTimestamp ?? '') || 0,
      state: status === 'RUNNING' ? 'running' : status === 'PROVISIONING' || status === 'STAGING' ? 'pending' : status === 'TERMINATED' || status === 'SUSPENDED' ? 'terminated' : 'stopping',
      labels,
      zone,
      vmName: i.name ?? '',
      meta: { project, machineType: type, zone },
    };
    const nic = i.networkInterfaces?.[0];
    if (nic?.networkIP) inst.privateAddress = nic.networkIP;
    const nat = nic?.accessConfigs?.[0]?.natIP;
    if (nat) inst.publicAddress = nat;
    const hostKey = m[META.hostKey];
    if (hostKey) inst.hostKey = hostKey;
    const key = i.labels?.[LABEL_KEY];
    if (key) inst.idempotencyKey = key;
    if (i.statusMessage && inst.state !== 'running' && inst.state !== 'pending') inst.stateReason = i.statusMessage;
    return inst;
  }

  async function listZone(zone: string): Promise<CloudInstance[]> {
    const out: CloudInstance[] = [];
    const it = instances.listAsync({ project, zone, filter: `labels.${LABEL_FLEET} = "${fleetLabel}"` });
    await call(`instances.list in ${zone}`, async () => {
      for await (const i of it) {
        if (meta(i)[META.fleet] !== ctx.fleet) continue;
        out.push(toInstance(i, zone));
      }
    });
    return out;
  }

  /** Waits for a zone operation to finish; an error in it is thrown with GCE's code. */
  async function settle(op: Operation, zone: string, address: string): Promise<Operation> {
    let cur = op;
    const until = Date.now() + 10 * 60_000;
    while (cur.status !== 'DONE') {
      if (Date.now() > until) throw new ProviderError(ctx.name, `GCE operation ${cur.name ?? '?'} in ${zone} did not finish in 10 minutes`, { address, retryable: true });
      const name = cur.name ?? '';
      [cur] = await call(`zoneOperations.wait ${name}`, () => operations.wait({ project, zone, operation: name }), address);
    }
    const first = cur.error?.errors?.[0];
    if (first) throw new GceOperationError(first.code ?? 'UNKNOWN', first.message ?? '');
    return cur;
  }

  const list = async (): Promise<CloudInstance[]> => {
    const all = (await Promise.all(zones.map((z) => listZone(z)))).flat();
    for (const i of all) if (i.zone !== undefined) zoneOf.set(i.id, i.zone);
    return all.sort((a, b) => a.id.localeCompare(b.id));
  };

  return {
    cloud: 'gcp',
    label: 'GCE',
    list,

    async offerings(query: PriceQuery): Promise<CloudOffering[]> {
      const at = new Date(ctx.now()).toISOString();
      const out: CloudOffering[] = [];
      const matching = typesForGpu(types, query.gpuModel);
      const caps = (['spot', 'on-demand'] as const).filter((c) => query.capacity === undefined || query.capacity === c);
      const own = (t: (typeof types)[string], c: 'spot' | 'on-demand'): number | undefined => (c === 'spot' ? t.spotPrice : t.onDemandPrice);
      const unpriced = matching.flatMap(([type, t]) => caps.filter((c) => own(t, c) === undefined).flatMap((c) => [...new Set(zones.map(regionOf))].map((r) => gcePriceKey(c, type, t, r))));
      const list = unpriced.length > 0 ? await book.get(unpriced) : undefined;
      for (const [type, t] of matching) {
        for (const zone of zones) {
          for (const c of caps) {
            const price = offeringPrice(own(t, c), list, gcePriceKey(c, type, t, regionOf(zone)), at);
            if (price !== undefined) out.push(machineOffering(type, t, c, price, zone));
          }
        }
      }
      return out;
    },

    async launch(l: LaunchRequest): Promise<CloudInstance> {
      const { address, option: o } = l;
      const zone = o.zone ?? zones[0] ?? '';
      const t = types[o.type];
      const image = launchImage(ctx.name, l, config.image, { what: 'boot image', key: 'image' });
      const name = `sf-${labelValue(ctx.fleet).replace(/[^a-z0-9-]/g, '-').replace(/^-+|-+$/g, '').slice(0, 30) || 'fleet'}-${l.token.slice(0, 12)}`.replace(/--+/g, '-');
      const spot = o.capacity === 'spot';
      const resource: Instance = {
        name,
        machineType: `zones/${zone}/machineTypes/${o.type}`,
        labels: { ...(config.labels ?? {}), [LABEL_FLEET]: fleetLabel, [LABEL_POOL]: labelValue(l.req.pool), [LABEL_KEY]: idempotencyDigest(l.req.idempotencyKey) },
        metadata: {
          items: [
            { key: META.script, value: l.bootScript },
            { key: META.hostKey, value: l.hostKeyPublic },
            { key: META.fleet, value: ctx.fleet },
            { key: META.pool, value: l.req.pool },
            { key: META.price, value: String(o.pricePerHour) },
            { key: META.gpuModel, value: o.gpuModel },
            { key: META.gpus, value: String(o.gpus) },
            { key: META.labels, value: JSON.stringify(l.req.labels) },
          ],
        },
        scheduling: spot
          ? { provisioningModel: 'SPOT', instanceTerminationAction: config.instanceTerminationAction ?? 'DELETE', onHostMaintenance: 'TERMINATE', automaticRestart: false }
          : { provisioningModel: 'STANDARD', onHostMaintenance: 'TERMINATE', automaticRestart: true },
        disks: [{ boot: true, autoDelete: true, initializeParams: { sourceImage: image, ...(config.bootDiskGiB !== undefined ? { diskSizeGb: config.bootDiskGiB } : {}), ...(config.bootDiskType !== undefined ? { diskType: `zones/${zone}/diskTypes/${config.bootDiskType}` } : {}) } }],
        networkInterfaces: [
          {
            network: config.network ?? 'global/networks/default',
            ...(config.subnetwork !== undefined ? { subnetwork: config.subnetwork } : {}),
            ...(config.externalIp === false ? {} : { accessConfigs: [{ name: 'External NAT', type: 'ONE_TO_ONE_NAT' }] }),
          },
        ],
      };
      if (t?.acceleratorType !== undefined) resource.guestAccelerators = [{ acceleratorType: `zones/${zone}/acceleratorTypes/${t.acceleratorType}`, acceleratorCount: t.gpus }];
      if (config.serviceAccount !== undefined) resource.serviceAccounts = [{ email: config.serviceAccount, scopes: ['https://www.googleapis.com/auth/cloud-platform'] }];
      try {
        const [op] = await call(`instances.insert in ${zone}`, () => instances.insert({ project, zone, requestId: uuidFrom(`insert|${l.token}`), instanceResource: resource }), address);
        await settle(op.latestResponse as Operation, zone, address);
      } catch (e) {
        // Created already (the requestId window passed, or a crash after the insert): that VM is the answer.
        if (!(e instanceof ProviderError && /already exists/.test(e.message))) throw e;
      }
      const [got] = await call(`instances.get ${name}`, () => instances.get({ project, zone, instance: name }), address);
      zoneOf.set(name, zone);
      return toInstance(got, zone);
    },

    async terminate(id: string): Promise<void> {
      let zone = zoneOf.get(id);
      if (zone === undefined) {
        await list();
        zone = zoneOf.get(id);
      }
      if (zone === undefined) return; // not ours, or gone: released
      const z = zone;
      try {
        const [op] = await instances.delete({ project, zone: z, instance: id, requestId: uuidFrom(`delete|${id}`) });
        await settle(op.latestResponse as Operation, z, `node.${ctx.name}.${id}`);
      } catch (e) {
        if ((e as { code?: number }).code === 5 || /was not found|NOT_FOUND/.test(errorMessage(e))) return;
        if (e instanceof ProviderError) throw e;
        throw new ProviderError(ctx.name, `GCE instances.delete ${id} in ${z}: ${errorMessage(e)}`, { address: `node.${ctx.name}.${id}`, retryable: true, cause: e });
      }
    },

    capacityError(e: unknown): CapacityErrorInfo | undefined {
      if (e instanceof GceOperationError) {
        const scope = CAPACITY_CODES[e.code];
        return scope !== undefined ? { code: e.code, message: e.message.slice(e.code.length + 2), scope } : undefined;
      }
      const m = errorMessage(e);
      if (/Quota '[^']+' exceeded/.test(m)) return { code: 'QUOTA_EXCEEDED', message: m, scope: 'region' };
      return undefined;
    },

    close: async () => {
      await Promise.allSettled([instances.close(), operations.close()]);
    },
  };
}
