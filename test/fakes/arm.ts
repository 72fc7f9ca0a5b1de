// A fake of Azure Resource Manager for the Compute calls spotfleet makes, as `@azure/arm-compute`
// sends them, over HTTPS (the Azure SDK refuses bearer tokens over plain HTTP): virtual machines
// list/get/createOrUpdate/delete with ARM's long-running-operation protocol (201/202 with an
// `Azure-AsyncOperation` status URL, polled until Succeeded or Failed), the network interfaces and
// public IPs a VM's inline network configuration creates, and a Microsoft identity platform token
// endpoint (client credentials). Checked as ARM checks: a bearer token it issued (else 401
// InvalidAuthenticationToken), an api-version, the VM's size, image, admin user (not a reserved
// name), SSH keys, customData (base64, 64 KiB), Spot priority with an eviction policy, and a
// network profile. A VM name is ARM's idempotency key: the same PUT again is the same VM. Capacity
// faults answer as Azure does: SkuNotAvailable and quota (OperationNotAllowed) at once with 409,
// ZonalAllocationFailed/AllocationFailed in the operation. A `boot` hook makes each VM a lab node.
import { createHash, randomUUID } from 'node:crypto';
import { startJsonApi } from './json-api.js';

export interface FakeArmOptions {
  /** TLS key and certificate (PEM) the server presents. */
  tls: { key: string; cert: string };
  host?: string;
  port?: number;
  subscriptionId?: string;
  resourceGroup?: string;
  location?: string;
  tenantId?: string;
  /** Service principals the token endpoint accepts: client id → secret. */
  clients?: Record<string, string>;
  /** VM sizes sold, with their GPUs. */
  vmSizes?: Record<string, { gpus: number; gpuModel: string }>;
  boot?: (vm: FakeArmVm, customData: string | undefined) => Promise<{ privateIp?: string; publicIp?: string } | undefined>;
  onDelete?: (vm: FakeArmVm) => void | Promise<void>;
  now?: () => number;
}

export interface FakeArmVm {
  name: string;
  id: string;
  vmId: string;
  location: string;
  zones?: string[];
  vmSize: string;
  priority: 'Regular' | 'Spot' | 'Low';
  evictionPolicy?: string;
  maxPrice?: number;
  tags: Record<string, string>;
  adminUsername: string;
  provisioningState: 'Creating' | 'Succeeded' | 'Failed' | 'Deleting';
  timeCreated: string;
  nicName: string;
  publicIpName?: string;
  privateIp: string;
  publicIp?: string;
  /** The PUT body as received. */
  body: Record<string, unknown>;
  deleted: boolean;
  /** Deleted and its delete finished: no longer listed. */
  gone?: boolean;
  endedBy?: 'user' | 'evicted';
}

export interface FakeArmRequest {
  method: string;
  path: string;
  status: number;
  body?: unknown;
}

export interface FakeArmCapacityFault {
  vmSize?: string;
  zone?: string;
  priority?: 'Spot' | 'Regular';
  code?: 'SkuNotAvailable' | 'ZonalAllocationFailed' | 'AllocationFailed' | 'QuotaExceeded';
}

export interface FakeArm {
  /** ARM endpoint (https://host:port). */
  url: string;
  /** Authority host for the token endpoint (same server). */
  authorityHost: string;
  subscriptionId: string;
  resourceGroup: string;
  tenantId: string;
  close(): Promise<void>;
  control: {
    readonly requests: readonly FakeArmRequest[];
    vms(): FakeArmVm[];
    noCapacity(f: FakeArmCapacityFault): void;
    clearCapacityFaults(): void;
    /** Evicts a Spot VM as Azure does with evictionPolicy Delete: it goes away. */
    evict(name: string): void;
  };
}

class ArmError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const RESERVED_USERS = new Set(['root', 'admin', 'administrator', 'user', 'user1', 'test', 'test1', 'guest', 'owner', 'sys', 'sa', 'a', 'actuser', 'adm', 'admin1', 'admin2', 'aspnet', 'backup', 'console', 'david', 'john', 'server', 'support', 'support_388945a0', 'test2', 'test3', 'user2', 'user3', 'user4', 'user5']);

interface AsyncOp {
  id: string;
  status: 'InProgress' | 'Succeeded' | 'Failed';
  startTime: string;
  endTime?: string;
  error?: { code: string; message: string };
}

/**
 * Starts the fake on 127.0.0.1 over HTTPS.
 * @example
 * const arm = await startFakeArm({ tls, clients: { app: 'secret' } });
 * new ComputeManagementClient(credential, arm.subscriptionId, { endpoint: arm.url, $host: arm.url });
 */
export async function startFakeArm(opts: FakeArmOptions): Promise<FakeArm> {
  const subscriptionId = opts.subscriptionId ?? '00000000-0000-4000-8000-000000000001';
  const resourceGroup = opts.resourceGroup ?? 'spotfleet-rg';
  const location = opts.location ?? 'eastus';
  const tenantId = opts.tenantId ?? '00000000-0000-4000-8000-0000000000aa';
  const clients = opts.clients ?? { 'spotfleet-app': 'spotfleet-secret' };
  const sizes = opts.vmSizes ?? { Standard_NC6s_v3: { gpus: 1, gpuModel: 'V100' } };
  const now = opts.now ?? Date.now;
  const tokens = new Set<string>();
  const vms = new Map<string, FakeArmVm>();
  const ops = new Map<string, AsyncOp>();
  const requests: FakeArmRequest[] = [];
  const faults: FakeArmCapacityFault[] = [];
  let seq = 0;
  let base = '';
  const rgPath = `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}`;
  const vmId = (name: string): string => `${rgPath}/providers/Microsoft.Compute/virtualMachines/${name}`;
  const opUrl = (id: string): string => `${base}/subscriptions/${subscriptionId}/providers/Microsoft.Compute/locations/${location}/operations/${id}?api-version=2025-04-01`;

  function newOp(): AsyncOp {
    const o: AsyncOp = { id: randomUUID(), status: 'InProgress', startTime: new Date(now()).toISOString() };
    ops.set(o.id, o);
    return o;
  }
  const finish = (o: AsyncOp, error?: { code: string; message: string }): void => {
    o.status = error ? 'Failed' : 'Succeeded';
    o.endTime = new Date(now()).toISOString();
    if (error) o.error = error;
  };

  function vmJson(v: FakeArmVm): Record<string, unknown> {
    const props = (v.body.properties ?? {}) as Record<string, unknown>;
    const os = { ...((props.osProfile ?? {}) as Record<string, unknown>) };
    delete os.customData; // never returned, as ARM does
    const net = { ...((props.networkProfile ?? {}) as Record<string, unknown>), networkInterfaces: [{ id: `${rgPath}/providers/Microsoft.Network/networkInterfaces/${v.nicName}`, properties: { primary: true, deleteOption: 'Delete' } }] };
    const j: Record<string, unknown> = {
      name: v.name,
      id: v.id,
      type: 'Microsoft.Compute/virtualMachines',
      location: v.location,
      tags: v.tags,
      properties: { ...props, osProfile: os, networkProfile: net, vmId: v.vmId, provisioningState: v.provisioningState, timeCreated: v.timeCreated },
    };
    if (v.zones) j.zones = v.zones;
    return j;
  }

  function putVm(name: string, body: Record<string, unknown>): { status: number; json: unknown; headers: Record<string, string> } {
    if (!/^[A-Za-z0-9][A-Za-z0-9-]{0,62}[A-Za-z0-9]$/.test(name)) throw new ArmError(400, 'InvalidParameter', `The VM name '${name}' is invalid.`);
    const props = (body.properties ?? {}) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    if (typeof body.location !== 'string' || body.location.toLowerCase() !== location) throw new ArmError(400, 'LocationRequired', `The location property is required for this definition (expected '${location}').`);
    const size = props.hardwareProfile?.vmSize as string | undefined;
    if (!size || !(size in sizes)) throw new ArmError(400, 'InvalidParameter', `The value ${String(size)} provided for the VM size is not valid. The valid sizes in the current region are: ${Object.keys(sizes).join(', ')}.`);
    if (!props.storageProfile?.imageReference) throw new ArmError(400, 'InvalidParameter', "Required parameter 'imageReference' is missing (null).");
    const os = props.osProfile ?? {};
    const admin = os.adminUsername as string | undefined;
    if (!admin) throw new ArmError(400, 'InvalidParameter', "Required parameter 'adminUsername' is missing (null).");
    if (RESERVED_USERS.has(admin.toLowerCase())) throw new ArmError(400, 'InvalidParameter', `The Admin Username specified is not allowed.`);
    const keys = (os.linuxConfiguration?.ssh?.publicKeys ?? []) as { keyData?: string }[];
    if (keys.length === 0 && !os.adminPassword) throw new ArmError(400, 'InvalidParameter', "Required parameter 'adminPassword' is missing (null).");
    let customData: string | undefined;
    if (typeof os.customData === 'string') {
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(os.customData) || os.customData.length > 87380) throw new ArmError(400, 'InvalidParameter', 'Custom data in OSProfile must be in Base64 encoding and with a maximum length of 87380 characters.');
      customData = Buffer.from(os.customData, 'base64').toString('utf8');
    }
    const priority = (props.priority ?? 'Regular') as FakeArmVm['priority'];
    if (priority === 'Spot' && props.evictionPolicy !== 'Delete' && props.evictionPolicy !== 'Deallocate') throw new ArmError(400, 'InvalidParameter', 'Eviction policy must be set for Spot VMs (Delete or Deallocate).');
    const nicCfg = props.networkProfile?.networkInterfaceConfigurations as Record<string, any>[] | undefined; // eslint-disable-line @typescript-eslint/no-explicit-any
    if (!nicCfg?.length && !props.networkProfile?.networkInterfaces?.length) throw new ArmError(400, 'InvalidParameter', "Required parameter 'networkProfile' is missing (null).");
    if (nicCfg?.length && !props.networkProfile?.networkApiVersion) throw new ArmError(400, 'InvalidParameter', "Required parameter 'networkApiVersion' is missing (null).");
    const zones = Array.isArray(body.zones) ? (body.zones as string[]) : undefined;
    const existing = vms.get(name.toLowerCase());
    if (existing && !existing.deleted) {
      // PUT is idempotent by name; what cannot change on a VM is refused.
      if (existing.vmSize !== size || existing.priority !== priority) throw new ArmError(409, 'PropertyChangeNotAllowed', `Changing property 'priority' or 'vmSize' is not allowed.`);
      return { status: 200, json: vmJson(existing), headers: {} };
    }
    const zone = zones?.[0];
    const fault = faults.find((f) => (f.vmSize === undefined || f.vmSize === size) && (f.zone === undefined || f.zone === zone) && (f.priority === undefined || f.priority === (priority === 'Spot' ? 'Spot' : 'Regular')));
    const faultCode = fault ? fault.code ?? 'SkuNotAvailable' : undefined;
    if (faultCode === 'SkuNotAvailable') {
      throw new ArmError(409, 'SkuNotAvailable', `The requested VM size for resource 'Following SKUs have failed for Capacity Restrictions: ${size}' is currently not available in location '${location}'${zone ? ` zones '${zone}'` : ''}. Please try another size or deploy to a different location or different zone.`);
    }
    if (faultCode === 'QuotaExceeded') {
      throw new ArmError(409, 'OperationNotAllowed', `Operation could not be completed as it results in exceeding approved ${priority === 'Spot' ? 'LowPriorityCores' : 'standardNCSv3Family'} Cores quota. Additional details - Deployment Model: Resource Manager, Location: ${location}, Current Limit: 0, Current Usage: 0, Additional Required: 6, (Minimum) New Limit Required: 6.`);
    }
    const n = ++seq;
    const nicCfg0 = nicCfg?.[0];
    const ipCfg = (nicCfg0?.properties?.ipConfigurations?.[0] ?? {}) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    const pubCfg = ipCfg.properties?.publicIPAddressConfiguration as { name?: string } | undefined;
    const v: FakeArmVm = {
      name,
      id: vmId(name),
      vmId: randomUUID(),
      location,
      vmSize: size,
      priority,
      tags: (body.tags ?? {}) as Record<string, string>,
      adminUsername: admin,
      provisioningState: 'Creating',
      timeCreated: new Date(now()).toISOString(),
      nicName: (nicCfg0?.name as string | undefined) ?? `${name}-nic`,
      privateIp: `10.1.${(n >> 8) & 255}.${n & 255}`,
      body,
      deleted: false,
    };
    if (zones) v.zones = zones;
    if (typeof props.evictionPolicy === 'string') v.evictionPolicy = props.evictionPolicy;
    if (typeof props.billingProfile?.maxPrice === 'number') v.maxPrice = props.billingProfile.maxPrice as number;
    if (pubCfg?.name) v.publicIpName = pubCfg.name;
    vms.set(name.toLowerCase(), v);
    const op = newOp();
    if (faultCode !== undefined) {
      // Allocation failures surface in the operation; the VM is left Failed, as Azure leaves it.
      v.provisioningState = 'Failed';
      finish(op, { code: faultCode, message: `Allocation failed. We do not have sufficient capacity for the requested VM size in this ${faultCode === 'ZonalAllocationFailed' ? 'zone' : 'region'}. Read more about improving likelihood of allocation success at http://aka.ms/allocation-guidance` });
    } else if (opts.boot) {
      opts.boot({ ...v }, customData).then(
        (addr) => {
          if (v.deleted) return;
          if (addr?.privateIp !== undefined) v.privateIp = addr.privateIp;
          if (addr?.publicIp !== undefined) v.publicIp = addr.publicIp;
          v.provisioningState = 'Succeeded';
          finish(op);
        },
        (e: unknown) => {
          v.provisioningState = 'Failed';
          finish(op, { code: 'VMStartTimedOut', message: `VM '${name}' did not start in the allotted time: ${e instanceof Error ? e.message : String(e)}` });
        },
      );
    } else {
      v.provisioningState = 'Succeeded';
      finish(op);
    }
    return { status: 201, json: vmJson(v), headers: { 'azure-asyncoperation': opUrl(op.id), 'retry-after': '1' } };
  }

  function ended(v: FakeArmVm, by: 'user' | 'evicted'): void {
    if (v.deleted) return;
    v.deleted = true;
    v.endedBy = by;
    v.provisioningState = 'Deleting';
    void Promise.resolve(opts.onDelete?.(v)).catch(() => undefined);
  }

  function route(method: string, path: string, query: URLSearchParams, body: unknown): { status: number; json?: unknown; headers?: Record<string, string> } {
    if (!query.get('api-version')) throw new ArmError(400, 'MissingApiVersionParameter', "The api-version query parameter (?api-version=) is required for all requests.");
    const op = new RegExp(`^/subscriptions/${subscriptionId}/providers/Microsoft\\.Compute/locations/${location}/operations/([^/]+)$`, 'i').exec(path);
    if (op) {
      const o = ops.get(op[1] as string);
      if (!o) throw new ArmError(404, 'NotFound', 'The operation was not found.');
      return { status: 200, json: { name: o.id, status: o.status, startTime: o.startTime, ...(o.endTime ? { endTime: o.endTime } : {}), ...(o.error ? { error: o.error } : {}) } };
    }
    const net = new RegExp(`^${rgPath}/providers/Microsoft\\.Network/(networkInterfaces|publicIPAddresses)/([^/]+)$`, 'i').exec(path);
    if (net && method === 'GET') {
      const [, kind, name] = net as unknown as [string, string, string];
      const v = [...vms.values()].find((x) => !x.deleted && (kind.toLowerCase() === 'networkinterfaces' ? x.nicName === name : x.publicIpName === name));
      if (!v) throw new ArmError(404, 'ResourceNotFound', `The Resource 'Microsoft.Network/${kind}/${name}' under resource group '${resourceGroup}' was not found.`);
      if (kind.toLowerCase() === 'networkinterfaces') {
        const ip: Record<string, unknown> = { privateIPAddress: v.privateIp, privateIPAllocationMethod: 'Dynamic', primary: true };
        if (v.publicIpName) ip.publicIPAddress = { id: `${rgPath}/providers/Microsoft.Network/publicIPAddresses/${v.publicIpName}` };
        return { status: 200, json: { name: v.nicName, id: `${rgPath}/providers/Microsoft.Network/networkInterfaces/${v.nicName}`, location, properties: { provisioningState: 'Succeeded', ipConfigurations: [{ name: 'ipconfig1', properties: ip }], virtualMachine: { id: v.id } } } };
      }
      return { status: 200, json: { name: v.publicIpName, location, sku: { name: 'Standard' }, properties: { provisioningState: 'Succeeded', publicIPAllocationMethod: 'Static', ...(v.publicIp ? { ipAddress: v.publicIp } : {}) } } };
    }
    const m = new RegExp(`^${rgPath}/providers/Microsoft\\.Compute/virtualMachines(?:/([^/]+))?$`, 'i').exec(path);
    if (!m) throw new ArmError(404, 'InvalidResourceType', `The resource type could not be found in the namespace for api version '${query.get('api-version') ?? ''}'.`);
    const name = m[1];
    if (method === 'GET' && name === undefined) {
      const list = [...vms.values()].filter((v) => !v.gone).sort((a, b) => a.name.localeCompare(b.name));
      return { status: 200, json: { value: list.map(vmJson) } };
    }
    if (method === 'GET' && name !== undefined) {
      const v = vms.get(name.toLowerCase());
      if (!v || v.deleted) throw new ArmError(404, 'ResourceNotFound', `The Resource 'Microsoft.Compute/virtualMachines/${name}' under resource group '${resourceGroup}' was not found.`);
      return { status: 200, json: vmJson(v) };
    }
    if (method === 'PUT' && name !== undefined) {
      if (typeof body !== 'object' || body === null) throw new ArmError(400, 'InvalidRequestContent', 'The request content was invalid and could not be deserialized.');
      return putVm(name, body as Record<string, unknown>);
    }
    if (method === 'DELETE' && name !== undefined) {
      const v = vms.get(name.toLowerCase());
      if (!v || v.deleted) return { status: 204 };
      ended(v, 'user');
      const o = newOp();
      setTimeout(() => {
        finish(o);
        v.gone = true;
      }, 100).unref();
      return { status: 202, headers: { 'azure-asyncoperation': opUrl(o.id), location: opUrl(o.id), 'retry-after': '1' } };
    }
    throw new ArmError(405, 'MethodNotAllowed', `${method} is not allowed on ${path}`);
  }

  function token(body: string, tenant: string): { status: number; json: unknown } {
    const p = new URLSearchParams(body);
    if (tenant !== tenantId) return { status: 400, json: { error: 'invalid_tenant', error_description: `AADSTS90002: Tenant '${tenant}' not found.`, error_codes: [90002] } };
    if (p.get('grant_type') !== 'client_credentials') return { status: 400, json: { error: 'unsupported_grant_type', error_description: 'AADSTS70003: The app requested an unsupported grant type.' } };
    const id = p.get('client_id') ?? '';
    if (!(id in clients)) return { status: 400, json: { error: 'unauthorized_client', error_description: `AADSTS700016: Application with identifier '${id}' was not found in the directory.`, error_codes: [700016] } };
    if (clients[id] !== p.get('client_secret')) return { status: 401, json: { error: 'invalid_client', error_description: `AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${id}'.`, error_codes: [7000215] } };
    if (!(p.get('scope') ?? '').endsWith('/.default')) return { status: 400, json: { error: 'invalid_scope', error_description: 'AADSTS70011: The provided value for the input parameter scope is not valid.' } };
    const t = `eyJ0eXAiOiJKV1QifQ.${Buffer.from(JSON.stringify({ appid: id, n: ++seq })).toString('base64url')}.${createHash('sha256').update(String(seq)).digest('base64url')}`;
    tokens.add(t);
    return { status: 200, json: { token_type: 'Bearer', expires_in: 3599, ext_expires_in: 3599, access_token: t } };
  }

  const api = await startJsonApi<FakeArmRequest>({
    ...(opts.host !== undefined ? { host: opts.host } : {}),
    ...(opts.port !== undefined ? { port: opts.port } : {}),
    tls: opts.tls,
    requests,
    open: (method, url, raw) => {
      const tok = /^\/([^/]+)\/oauth2\/v2\.0\/token$/.exec(url.pathname);
      return tok && method === 'POST' ? token(raw, tok[1] as string) : undefined;
    },
    authenticate: (authorization) => {
      const bearer = /^Bearer (.+)$/.exec(authorization ?? '')?.[1];
      if (bearer === undefined) throw new ArmError(401, 'AuthenticationFailed', "Authentication failed. The 'Authorization' header is missing.");
      if (!tokens.has(bearer)) throw new ArmError(401, 'InvalidAuthenticationToken', 'The access token is invalid.');
    },
    badJson: () => new ArmError(400, 'InvalidRequestContent', 'The request content was invalid and could not be deserialized.'),
    route: (method, url, body) => route(method, url.pathname, url.searchParams, body),
    fail: (e) => {
      const err = e instanceof ArmError ? e : new ArmError(500, 'InternalServerError', e instanceof Error ? e.message : String(e));
      return { status: err.status, json: { error: { code: err.code, message: err.message } }, headers: err.status === 401 ? { 'www-authenticate': `Bearer authorization_uri="${base}/${tenantId}", error="invalid_token"` } : {} };
    },
    write: (res, a) => {
      const text = a.json === undefined ? '' : JSON.stringify(a.json);
      res.writeHead(a.status, { ...(text ? { 'content-type': 'application/json; charset=utf-8' } : {}), 'content-length': String(Buffer.byteLength(text)), 'x-ms-request-id': randomUUID(), ...a.headers });
      res.end(text);
    },
  });
  base = api.url;
  return {
    url: base,
    authorityHost: base,
    subscriptionId,
    resourceGroup,
    tenantId,
    close: () => api.close(),
    control: {
      requests,
      vms: () => [...vms.values()].map((v) => ({ ...v })),
      noCapacity: (f) => void faults.push({ ...f }),
      clearCapacityFaults: () => void (faults.length = 0),
      evict(name) {
        const v = vms.get(name.toLowerCase());
        if (!v || v.deleted) throw new Error(`no live VM ${name}`);
        if (v.priority !== 'Spot') throw new Error(`${name} is not a Spot VM`);
        ended(v, 'evicted');
        setTimeout(() => {
          v.gone = true;
        }, 100).unref();
      },
    },
  };
}
