// Rule: the pools: each names a declared provider (checked even in an item with schema errors, so
// one typo does not hide another); its price cap, idle release and `node:` access (with
// DEFAULT_NODE_ACCESS, and a ready timeout long enough for a VM to boot) must parse.
import type { CapacityType, NodeAccess } from '../../core/types.js';
import { DEFAULT_NODE_ACCESS } from '../defaults.js';
import type { PoolSpec } from '../types.js';
import { isObj, providerChoices, str, strMap, type Located, type Obj, type ResolveContext } from './context.js';

export function resolvePools(ctx: ResolveContext): void {
  for (const l of ctx.lists.pools) {
    const v = l.v;
    const name = str(v.name);
    const provider = str(v.provider);
    if (provider !== undefined && !ctx.providerItems.has(provider)) {
      ctx.err(ctx.at(l, '/provider'), `pool "${name ?? '?'}" uses unknown provider "${provider}"`, providerChoices(ctx), 'unknown-reference', `${l.ptr}/provider`);
    }
    if (l.bad || name === undefined || provider === undefined) continue;
    const p: PoolSpec = { name, provider, capacity: v.capacity as CapacityType, labels: strMap(v.labels), onWarning: 'auto', pos: ctx.at(l) };
    if (typeof v.gpuModel === 'string') p.gpuModel = v.gpuModel;
    const max = ctx.money(l, '/maxPricePerHour');
    if (max !== undefined) p.maxPricePerHour = max;
    if (Array.isArray(v.zones)) p.zones = v.zones.filter((z): z is string => typeof z === 'string');
    if (typeof v.warmStandby === 'number') p.warmStandby = v.warmStandby;
    const idle = ctx.duration(l, '/idleRelease');
    if (idle !== undefined && idle > 0) p.idleReleaseMs = idle;
    if (isObj(v.node)) p.node = nodeAccess(ctx, l, v.node);
    p.onWarning = (str(v.onWarning) as PoolSpec['onWarning'] | undefined) ?? 'auto';
    ctx.out.pools.push(p);
  }
}

/** `pools[].node` with its defaults (DEFAULT_NODE_ACCESS). */
function nodeAccess(ctx: ResolveContext, l: Located, n: Obj): NodeAccess {
  const a: NodeAccess = {
    via: 'ssh',
    user: str(n.user) ?? DEFAULT_NODE_ACCESS.user,
    identityFile: str(n.identityFile) ?? '',
    port: typeof n.port === 'number' ? n.port : DEFAULT_NODE_ACCESS.port,
    runtime: 'docker',
    address: n.address === 'public' || n.address === 'private' ? n.address : 'auto',
    readyTimeoutMs: ctx.duration(l, '/node/readyTimeout', DEFAULT_NODE_ACCESS.readyTimeout) ?? (ctx.parseDuration(DEFAULT_NODE_ACCESS.readyTimeout) as number),
  };
  if (a.readyTimeoutMs < 5000) ctx.err(ctx.at(l, '/node/readyTimeout'), `node.readyTimeout of ${String(n.readyTimeout)} is too short for a VM to boot`, 'a duration of at least 5s (VMs usually need 1-3 minutes)', 'duration', `${l.ptr}/node/readyTimeout`);
  for (const k of ['image', 'checkpointRoot', 'metadataUrl'] as const) {
    const x = str(n[k]);
    if (x !== undefined) a[k] = x;
  }
  if (typeof n.nvidiaRuntime === 'boolean') a.nvidiaRuntime = n.nvidiaRuntime;
  return a;
}
