// Azure virtual machines for the `azure` provider, through `@azure/arm-compute` (endpoint
// configurable), as a cloud driver of the capacity kit: `priority: Spot` with `evictionPolicy:
// Delete` and `billingProfile.maxPrice` (the pool's cap, else -1: up to pay-as-you-go), or Regular;
// tags for the fleet; the bootstrap script as customData (cloud-init runs it); the network
// interface and public IP created inline with the VM and deleted with it. Creation is ARM's
// long-running operation: SkuNotAvailable, ZonalAllocationFailed, AllocationFailed and quota errors
// are capacity misses (the next zone or size is tried, and a VM left Failed is deleted). Credentials:
// a service principal from AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (the variables
// the Azure SDKs read), exchanged at the Microsoft identity platform (AZURE_AUTHORITY_HOST).
import { ComputeManagementClient, type VirtualMachine } from '@azure/arm-compute';
import type { AccessToken, TokenCredential } from '@azure/core-auth';
import { createPipelineRequest } from '@azure/core-rest-pipeline';
import { ProviderError, errorMessage } from '../../src/core/errors.js';
import type { PriceQuery, ProviderContext } from '../../src/providers/sdk.js';
import { join } from 'node:path';
import { PriceBook, idempotencyDigest, launchImage, machineOffering, typesForGpu, offeringPrice, priceKey, type PriceKey, type CapacityErrorInfo, type CloudDriver, type CloudInstance, type CloudOffering, type LaunchRequest } from '../../src/providers/kit/capacity/index.js';
import { TAG, type AzureCapacityConfig } from './vm-config.js';
import { AZURE_PRICE_TABLE } from './price-table.js';

const ARM = 'https://management.azure.com';
const NETWORK_API = '2023-09-01';

/**
 * A service principal's client-credentials token (Microsoft identity platform v2.0), cached until
 * five minutes before it expires. Errors name the tenant and application, never the secret.
 */
export class ClientSecretTokenCredential implements TokenCredential {
  private cached: AccessToken | undefined;
  constructor(
    private readonly o: { provider: string; authorityHost: string; tenantId: string; clientId: string; clientSecret: string },
  ) {}

  async getToken(scopes: string | string[]): Promise<AccessToken> {
    if (this.cached && this.cached.expiresOnTimestamp - Date.now() > 5 * 60_000) return this.cached;
    const url = `${this.o.authorityHost.replace(/\/+$/, '')}/${encodeURIComponent(this.o.tenantId)}/oauth2/v2.0/token`;
    const body = new URLSearchParams({ grant_type: 'client_credentials', client_id: this.o.clientId, client_secret: this.o.clientSecret, scope: ([] as string[]).concat(scopes).join(' ') });
    let res: Response;
    try {
      res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body, signal: AbortSignal.timeout(30_000) });
    } catch (e) {
      throw new ProviderError(this.o.provider, `Azure sign-in at ${url} failed: ${errorMessage((e as { cause?: unknown }).cause ?? e)}`, { retryable: true, cause: e });
    }
    const json = (await res.json().catch(() => ({}))) as { access_token?: string; expires_in?: number; error?: string; error_description?: string };
    if (!res.ok || !json.access_token) {
      const why = json.error_description?.split('\n')[0] ?? json.error ?? `HTTP ${res.status}`;
      throw new ProviderError(this.o.provider, `Azure sign-in of application ${this.o.clientId} in tenant ${this.o.tenantId} failed (HTTP ${res.status}): ${why}`, { retryable: res.status >= 500 });
    }
    this.cached = { token: json.access_token, expiresOnTimestamp: Date.now() + (json.expires_in ?? 3600) * 1000 };
    return this.cached;
  }
}

const CAPACITY_CODES: Record<string, CapacityErrorInfo['scope']> = {
  SkuNotAvailable: 'zone',
  ZonalAllocationFailed: 'zone',
  AllocationFailed: 'region',
  OverconstrainedAllocationRequest: 'zone',
  OverconstrainedZonalAllocationRequest: 'zone',
};

/**
 * ARM's error code of a failure: the RestError's `code`, or, for a long-running operation that
 * ended Failed (core-lro puts only a message on it), the code it quotes.
 */
export function armErrorCode(e: unknown): string | undefined {
  const err = e as { code?: unknown; message?: unknown };
  if (typeof err.code === 'string' && err.code !== '') return err.code;
  return /long-running operation has failed\. (\w+)\./.exec(typeof err.message === 'string' ? err.message : '')?.[1];
}

/** Creates the Azure VM driver for one azure provider instance. */
export function createAzureVmDriver(config: AzureCapacityConfig, ctx: ProviderContext): CloudDriver {
  const sizes = config.vmSizes ?? {};
  const missing = (['subscriptionId', 'resourceGroup', 'location', 'subnetId'] as const).filter((k) => config[k] === undefined);
  if (missing.length > 0) throw new ProviderError(ctx.name, `Azure VM capacity needs ${missing.join(', ')} next to vmSizes`);
  const subscriptionId = config.subscriptionId as string;
  const resourceGroup = config.resourceGroup as string;
  const location = config.location as string;
  const subnetId = config.subnetId as string;
  const env = ctx.env;
  const tenantId = env.AZURE_TENANT_ID;
  const clientId = env.AZURE_CLIENT_ID;
  const clientSecret = env.AZURE_CLIENT_SECRET;
  const credential: TokenCredential = {
    getToken: async (scopes) => {
      if (!tenantId || !clientId || !clientSecret) throw new ProviderError(ctx.name, 'no Azure credentials: set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (a service principal with the role in examples/azure/README.md)');
      cred ??= new ClientSecretTokenCredential({ provider: ctx.name, authorityHost: config.authorityHost ?? env.AZURE_AUTHORITY_HOST ?? 'https://login.microsoftonline.com', tenantId, clientId, clientSecret });
      return cred.getToken(scopes);
    },
  };
  let cred: ClientSecretTokenCredential | undefined;
  const endpoint = (config.endpoint ?? ARM).replace(/\/+$/, '');
  const client = new ComputeManagementClient(credential, subscriptionId, { endpoint, $host: endpoint, credentialScopes: `${ARM}/.default` });
  const ips = new Map<string, { privateIp?: string; publicIp?: string }>();
  const pricesUrl = (config.pricesEndpoint ?? 'https://prices.azure.com').replace(/\/+$/, '');

  /** Linux pay-as-you-go and Spot prices of VM sizes in this region, from the Retail Prices API. */
  async function fetchRetail(keys: PriceKey[]): Promise<Partial<Record<PriceKey, number>>> {
    const out: Partial<Record<PriceKey, number>> = {};
    const wanted = [...new Set(keys.map((k) => k.slice(k.indexOf('|') + 1)))];
    await Promise.all(
      wanted.map(async (size) => {
        const filter = `serviceName eq 'Virtual Machines' and armRegionName eq '${location}' and armSkuName eq '${size}' and priceType eq 'Consumption'`;
        let next: string | null = `${pricesUrl}/api/retail/prices?${new URLSearchParams({ 'api-version': '2023-01-01-preview', $filter: filter }).toString()}`;
        while (next !== null) {
          const url: string = next;
          const res = await fetch(url, { signal: AbortSignal.timeout(20_000) }).catch((e: unknown) => {
            throw new ProviderError(ctx.name, `Azure Retail Prices API ${pricesUrl}: ${errorMessage((e as { cause?: unknown }).cause ?? e)}`, { retryable: true, cause: e });
          });
          if (!res.ok) throw new ProviderError(ctx.name, `Azure Retail Prices API answered HTTP ${res.status} for ${size}`, { retryable: res.status >= 500 });
          const page = (await res.json()) as { Items?: { armSkuName?: string; skuName?: string; productName?: string; unitOfMeasure?: string; retailPrice?: number; type?: string }[]; NextPageLink?: string | null };
          for (const it of page.Items ?? []) {
            if (it.armSkuName !== size || it.type !== 'Consumption' || it.unitOfMeasure !== '1 Hour' || /Windows$/.test(it.productName ?? '') || typeof it.retailPrice !== 'number') continue;
            const sku = it.skuName ?? '';
            if (/ Low Priority$/.test(sku)) continue;
            out[priceKey(/ Spot$/.test(sku) ? 'spot' : 'on-demand', size)] = it.retailPrice;
          }
          next = page.NextPageLink ?? null;
        }
      }),
    );
    return out;
  }
  const book = new PriceBook({
    provider: ctx.name,
    source: 'Azure Retail Prices API',
    file: join(ctx.dataDir, `prices-azure-${location}.json`),
    // Spot prices move: read them again hourly.
    ttlMs: 3_600_000,
    fetch: fetchRetail,
    ...(location === AZURE_PRICE_TABLE.region ? { table: AZURE_PRICE_TABLE } : {}),
    log: ctx.log,
    now: () => ctx.now(),
  });
  const fleetTagged = (v: VirtualMachine): boolean => v.tags?.[TAG.fleet] === ctx.fleet;

  async function call<T>(what: string, fn: () => Promise<T>, address?: string): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof ProviderError) throw e;
      const err = e as { code?: string; statusCode?: number; message?: string };
      const msg = `Azure ${what}${err.statusCode !== undefined ? ` (HTTP ${err.statusCode})` : ''}: ${err.code ? `${err.code}: ` : ''}${errorMessage(e).replace(/\s+/g, ' ').slice(0, 500)}`;
      throw new ProviderError(ctx.name, msg, { cause: e, retryable: err.statusCode === undefined || err.statusCode >= 500 || err.statusCode === 429, ...(address !== undefined ? { address } : {}) });
    }
  }

  /** A resource of the network provider (NIC, public IP), read through the same signed pipeline. */
  async function getArm<T>(id: string): Promise<T | undefined> {
    const req = createPipelineRequest({ url: `${endpoint}${id}?api-version=${NETWORK_API}`, method: 'GET' });
    const res = await client.sendRequest(req);
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw Object.assign(new Error(`GET ${id} answered HTTP ${res.status}: ${(res.bodyAsText ?? '').slice(0, 300)}`), { statusCode: res.status });
    return JSON.parse(res.bodyAsText ?? '{}') as T;
  }

  async function addresses(v: VirtualMachine): Promise<{ privateIp?: string; publicIp?: string }> {
    const name = v.name ?? '';
    const known = ips.get(name);
    if (known?.privateIp !== undefined) return known;
    const nicId = v.networkProfile?.networkInterfaces?.[0]?.id;
    if (!nicId) return {};
    const nic = await getArm<{ properties?: { ipConfigurations?: { properties?: { privateIPAddress?: string; publicIPAddress?: { id?: string } } }[] } }>(nicId);
    const ipc = nic?.properties?.ipConfigurations?.[0]?.properties;
    const out: { privateIp?: string; publicIp?: string } = {};
    if (ipc?.privateIPAddress) out.privateIp = ipc.privateIPAddress;
    if (ipc?.publicIPAddress?.id) {
      const pip = await getArm<{ properties?: { ipAddress?: string } }>(ipc.publicIPAddress.id);
      if (pip?.properties?.ipAddress) out.publicIp = pip.properties.ipAddress;
    }
    if (out.privateIp !== undefined && v.provisioningState === 'Succeeded') ips.set(name, out);
    return out;
  }

  async function toInstance(v: VirtualMachine): Promise<CloudInstance> {
    const tags = v.tags ?? {};
    const size = v.hardwareProfile?.vmSize ?? '';
    const conf = sizes[size];
    const labels: Record<string, string> = {};
    for (const [k, val] of Object.entries(tags)) if (k.startsWith(TAG.labelPrefix)) labels[k.slice(TAG.labelPrefix.length)] = val;
    const ps = v.provisioningState ?? '';
    const inst: CloudInstance = {
      id: v.name ?? '',
      pool: tags[TAG.pool] ?? '',
      capacity: v.priority === 'Spot' || v.priority === 'Low' ? 'spot' : 'on-demand',
      gpuModel: tags[TAG.gpuModel] ?? conf?.gpuModel ?? '',
      gpus: Number(tags[TAG.gpus] ?? conf?.gpus ?? 0),
      pricePerHour: Number(tags[TAG.price] ?? 0),
      launchedAt: v.timeCreated?.getTime() ?? 0,
      state: ps === 'Succeeded' ? 'running' : ps === 'Creating' || ps === 'Updating' ? 'pending' : ps === 'Failed' ? 'terminated' : 'stopping',
      labels,
      vmName: v.name ?? '',
      meta: { location, vmSize: size, resourceGroup },
    };
    const zone = v.zones?.[0];
    if (zone !== undefined) inst.zone = zone;
    const hostKey = tags[TAG.hostKey];
    if (hostKey) inst.hostKey = hostKey;
    const key = tags[TAG.key];
    if (key) inst.idempotencyKey = key;
    if (ps === 'Failed') inst.stateReason = 'provisioning failed';
    if (inst.state === 'running' || inst.state === 'pending') Object.assign(inst, await addresses(v).then((a) => ({ ...(a.privateIp ? { privateAddress: a.privateIp } : {}), ...(a.publicIp ? { publicAddress: a.publicIp } : {}) })));
    return inst;
  }

  async function list(): Promise<CloudInstance[]> {
    const vms: VirtualMachine[] = [];
    await call('virtualMachines.list', async () => {
      for await (const v of client.virtualMachines.list(resourceGroup)) if (fleetTagged(v)) vms.push(v);
    });
    const out = await call('network interfaces', () => Promise.all(vms.map((v) => toInstance(v))));
    return out.sort((a, b) => a.id.localeCompare(b.id));
  }

  async function remove(name: string, address: string): Promise<void> {
    await call(`virtualMachines.delete ${name}`, () => client.virtualMachines.beginDeleteAndWait(resourceGroup, name, { updateIntervalInMs: 1000 }), address);
    ips.delete(name);
  }

  return {
    cloud: 'azure',
    label: 'Azure',
    list,

    async offerings(query: PriceQuery): Promise<CloudOffering[]> {
      const at = new Date(ctx.now()).toISOString();
      const out: CloudOffering[] = [];
      const zones: (string | undefined)[] = config.zones ?? [undefined];
      const matching = typesForGpu(sizes, query.gpuModel);
      const caps = (['spot', 'on-demand'] as const).filter((c) => query.capacity === undefined || query.capacity === c);
      const configured = (size: string, c: 'spot' | 'on-demand'): number | undefined => (c === 'spot' ? sizes[size]?.spotPrice : sizes[size]?.onDemandPrice);
      const unpriced = matching.flatMap(([size]) => caps.filter((c) => configured(size, c) === undefined).map((c) => priceKey(c, size)));
      const list = unpriced.length > 0 ? await book.get(unpriced) : undefined;
      for (const [size, t] of matching) {
        for (const c of caps) {
          const price = offeringPrice(configured(size, c), list, priceKey(c, size), at);
          if (price === undefined) continue;
          for (const zone of zones) out.push(machineOffering(size, t, c, price, zone));
        }
      }
      return out;
    },

    async launch(l: LaunchRequest): Promise<CloudInstance> {
      const { address, option: o } = l;
      const urn = launchImage(ctx.name, l, config.image, { what: 'image', key: 'image' });
      const [publisher, offer, sku, version] = urn.split(':') as [string, string, string, string];
      const name = `sf-${ctx.fleet.replace(/[^A-Za-z0-9-]/g, '-').slice(0, 40)}-${l.token.slice(0, 12)}`.replace(/--+/g, '-');
      const admin = config.adminUsername ?? 'azureuser';
      const spot = o.capacity === 'spot';
      const tags: Record<string, string> = {
        ...(config.tags ?? {}),
        ...Object.fromEntries(Object.entries(l.req.labels).map(([k, v]) => [`${TAG.labelPrefix}${k}`, v.slice(0, 256)])),
        [TAG.fleet]: ctx.fleet,
        [TAG.pool]: l.req.pool,
        [TAG.key]: idempotencyDigest(l.req.idempotencyKey),
        [TAG.hostKey]: l.hostKeyPublic,
        [TAG.price]: String(o.pricePerHour),
        [TAG.gpuModel]: o.gpuModel,
        [TAG.gpus]: String(o.gpus),
      };
      const vm: VirtualMachine = {
        location,
        tags,
        hardwareProfile: { vmSize: o.type },
        storageProfile: {
          imageReference: { publisher, offer, sku, version },
          osDisk: { createOption: 'FromImage', deleteOption: 'Delete', managedDisk: { storageAccountType: 'Premium_LRS' }, ...(config.osDiskGiB !== undefined ? { diskSizeGB: config.osDiskGiB } : {}) },
        },
        osProfile: {
          computerName: name.slice(0, 64),
          adminUsername: admin,
          customData: Buffer.from(l.bootScript, 'utf8').toString('base64'),
          linuxConfiguration: { disablePasswordAuthentication: true, ssh: { publicKeys: [{ path: `/home/${admin}/.ssh/authorized_keys`, keyData: l.loginKey }] } },
        },
        networkProfile: {
          networkApiVersion: '2020-11-01',
          networkInterfaceConfigurations: [
            {
              name: `${name}-nic`,
              primary: true,
              deleteOption: 'Delete',
              ipConfigurations: [
                {
                  name: 'ipconfig1',
                  subnet: { id: subnetId },
                  ...(config.publicIp === false ? {} : { publicIPAddressConfiguration: { name: `${name}-ip`, deleteOption: 'Delete', sku: { name: 'Standard' } } }),
                },
              ],
            },
          ],
        },
        ...(spot ? { priority: 'Spot', evictionPolicy: 'Delete', billingProfile: { maxPrice: l.maxPricePerHour ?? -1 } } : { priority: 'Regular' }),
      };
      if (o.zone !== undefined) vm.zones = [o.zone];
      try {
        // A VM's name is ARM's idempotency key: the same PUT again is the same VM.
        await client.virtualMachines.beginCreateOrUpdateAndWait(resourceGroup, name, vm, { updateIntervalInMs: 1000 });
      } catch (e) {
        const code = armErrorCode(e);
        // An allocation that failed leaves the VM Failed: delete it, so nothing of it lingers.
        if (code !== undefined && CAPACITY_CODES[code] !== undefined) await remove(name, address).catch(() => undefined);
        throw await call(`virtualMachines.createOrUpdate ${name}`, () => Promise.reject(e instanceof Error ? e : new Error(String(e))), address).catch((x: unknown) => x);
      }
      const got = await call(`virtualMachines.get ${name}`, () => client.virtualMachines.get(resourceGroup, name), address);
      return toInstance(got);
    },

    async terminate(id: string): Promise<void> {
      await remove(id, `node.${ctx.name}.${id}`);
    },

    capacityError(e: unknown): CapacityErrorInfo | undefined {
      const err = ((e as { cause?: unknown }).cause ?? e) as { code?: string; message?: string };
      const code = armErrorCode(err) ?? '';
      if (code === 'OperationNotAllowed' && /quota/i.test(err.message ?? '')) return { code: 'QuotaExceeded', message: err.message ?? '', scope: 'all' };
      const scope = CAPACITY_CODES[code];
      return scope !== undefined ? { code, message: err.message ?? '', scope } : undefined;
    },
  };
}
