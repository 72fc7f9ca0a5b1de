// Addresses: stable names for everything in plans and state (`workload.train-a`,
// `lease.spot-v100.i-0abc`, `node.lab.gpu-1`). Sorting by address keeps output deterministic.

export type AddressKind = 'workload' | 'lease' | 'node' | 'alert';

export function workloadAddress(name: string): string {
  return `workload.${name}`;
}
export function leaseAddress(pool: string, leaseId: string): string {
  return `lease.${pool}.${leaseId}`;
}
export function nodeAddress(provider: string, nodeId: string): string {
  return `node.${provider}.${nodeId}`;
}

/**
 * The key of anything a provider names by its own id (a node, a lease, a workload instance, a
 * notice), as maps and sets hold it: `provider/id`. Ids are unique only within one provider, so
 * the provider is part of the key. The one place that spells the key; parse it with
 * `splitProviderKey`.
 * @example providerKey('lab', 'gpu-1') // 'lab/gpu-1'
 */
export function providerKey(provider: string, id: string): string {
  return `${provider}/${id}`;
}

/**
 * The key of one zone of a pool, as `poolHistory` and `zoneStats` hold their records: `pool/zone`
 * (`pool/` for a pool without zones). The one place that spells it.
 * @example poolZoneKey('spot', 'us-east-1a') // 'spot/us-east-1a'
 */
export function poolZoneKey(pool: string | undefined, zone: string | undefined): string {
  return `${pool ?? ''}/${zone ?? ''}`;
}

/** A pool's zone as text says it: `pool/zone`, or `pool` without a zone. */
export function poolZoneLabel(pool: string, zone: string | undefined): string {
  return zone ? `${pool}/${zone}` : pool;
}

/** The key of a node across providers (`provider/node`): `providerKey` named for its commonest use. */
export const nodeKey: (provider: string, nodeId: string) => string = providerKey;

/**
 * Splits `provider/id` (or a bare `id`, as a user may type a node) at its first `/`; a key
 * without a provider part gives `provider: undefined`.
 * @example splitProviderKey('lab/gpu-1') // { provider: 'lab', id: 'gpu-1' }
 */
export function splitProviderKey(key: string): { provider: string | undefined; id: string } {
  const slash = key.indexOf('/');
  return slash > 0 ? { provider: key.slice(0, slash), id: key.slice(slash + 1) } : { provider: undefined, id: key };
}

export interface ParsedAddress {
  kind: AddressKind;
  parts: string[];
}

/** Parses an address; returns undefined when it is not one. */
export function parseAddress(addr: string): ParsedAddress | undefined {
  const i = addr.indexOf('.');
  if (i <= 0) return undefined;
  const kind = addr.slice(0, i);
  if (kind !== 'workload' && kind !== 'lease' && kind !== 'node' && kind !== 'alert') return undefined;
  const rest = addr.slice(i + 1);
  if (!rest) return undefined;
  if (kind === 'workload' || kind === 'alert') return { kind, parts: [rest] };
  const j = rest.indexOf('.');
  if (j <= 0 || j === rest.length - 1) return undefined;
  return { kind, parts: [rest.slice(0, j), rest.slice(j + 1)] };
}

/** Total order used everywhere output is sorted. */
export function compareAddress(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The stable address of a lease, known before the lease exists, so a plan's address is the one the
 * state will hold: `lease.POOL.WORKLOAD-gN` for the lease acquired for a workload's Nth placement
 * (idempotency key `FLEET:WORKLOAD:gN`), `lease.POOL.standby-sS-I` for a warm standby (key
 * `FLEET:standby:POOL:sS:I`, I counted from 1). A key of another shape (or none: a lease found by
 * its labels alone) falls back to the provider's lease id, as before.
 * @example leaseAddressForKey('spot-v100', 'research:train-a:g3', 'sim-b5996') // 'lease.spot-v100.train-a-g3'
 */
export function leaseAddressForKey(pool: string, idempotencyKey: string | undefined, leaseId: string): string {
  const parts = idempotencyKey?.split(':') ?? [];
  if (parts.length === 3 && /^g\d+$/.test(parts[2] as string) && parts[1]) return leaseAddress(pool, `${parts[1]}-${parts[2] as string}`);
  // FLEET:WORKLOAD:INCARNATION:gN (each lifecycle of a workload has keys of its own).
  if (parts.length === 4 && /^g\d+$/.test(parts[3] as string) && parts[1] && parts[2]) return leaseAddress(pool, `${parts[1]}-${parts[2]}-${parts[3] as string}`);
  if (parts.length === 5 && parts[1] === 'standby' && /^s\d+$/.test(parts[3] as string) && /^\d+$/.test(parts[4] as string)) return leaseAddress(pool, `standby-${parts[3] as string}-${Number(parts[4]) + 1}`);
  return leaseAddress(pool, leaseId);
}
