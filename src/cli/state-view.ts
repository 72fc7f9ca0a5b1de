// How state records read for people and in JSON: epoch-ms times as ISO-8601, Terraform-style
// `key = value` blocks for `state show`, and address filters for `state list`.
import { existsSync } from 'node:fs';
import { parseAddress } from '../core/address.js';
import { UsageError } from '../core/errors.js';
import { toSnakeJson } from '../core/json.js';
import type { ResourceRecord } from '../state/types.js';

/** Fields of state records that hold ms-epoch times (alone or as a list). */
const TIME_KEYS = new Set(['since', 'acquiredAt', 'lastMoveAt', 'pinnedOnDemandUntil', 'at', 'startedAt', 'preemptions', 'from', 'to']);

const iso = (v: unknown): unknown => (typeof v === 'number' && Number.isFinite(v) && v > 1e11 ? new Date(v).toISOString() : v);

/** A deep copy with every time field as an ISO-8601 string. */
export function withIsoTimes(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withIsoTimes);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (TIME_KEYS.has(k)) out[k] = Array.isArray(v) ? v.map(iso) : iso(v);
    else out[k] = withIsoTimes(v);
  }
  return out;
}

function scalar(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v) : String(v);
}

function block(value: Record<string, unknown>, indent: string): string[] {
  const keys = Object.keys(value).filter((k) => value[k] !== undefined);
  const width = Math.max(0, ...keys.map((k) => k.length));
  const out: string[] = [];
  for (const k of keys) {
    const v = value[k];
    const head = `${indent}${k.padEnd(width)} = `;
    if (Array.isArray(v)) {
      if (v.every((x) => x === null || typeof x !== 'object')) out.push(`${head}[${v.map(scalar).join(', ')}]`);
      else {
        out.push(`${head}[`);
        for (const item of v) out.push(`${indent}    {`, ...block(item as Record<string, unknown>, `${indent}        `), `${indent}    },`);
        out.push(`${indent}]`);
      }
    } else if (v !== null && typeof v === 'object') {
      out.push(`${head}{`, ...block(v as Record<string, unknown>, `${indent}    `), `${indent}}`);
    } else out.push(`${head}${scalar(v)}`);
  }
  return out;
}

/**
 * One record as `terraform state show` prints one: a comment with the address, then
 * `TYPE "NAME" { key = value ... }`, keys in snake_case, times in ISO-8601.
 */
export function renderRecord(r: ResourceRecord): string {
  const { type, address, ...rest } = toSnakeJson(withIsoTimes(r)) as Record<string, unknown> & { type: string; address: string };
  const p = parseAddress(address);
  const name = p ? (p.parts.at(-1) as string) : address;
  const label = p?.kind === 'lease' ? `"${p.parts[0] as string}" "${name}"` : `"${name}"`;
  return [`# ${address}:`, `${type} ${label} {`, ...block(rest, '    '), '}', ''].join('\n');
}

const KINDS = ['workload', 'lease', 'node', 'alert'];

/** True when `arg` reads as an address or an address filter (`lease`, `lease.spot-v100`, `workload.train-*`). */
export function looksLikeAddress(arg: string): boolean {
  const head = arg.split('.')[0] ?? '';
  return KINDS.includes(head) || (head.includes('*') && KINDS.some((k) => globToRegExp(head).test(k)));
}

function globToRegExp(glob: string): RegExp {
  return new RegExp(`^${glob.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
}

/**
 * `terraform state list ADDR`: an address matches a filter when it is the filter, lies under it
 * (`lease` and `lease.spot-v100` match `lease.spot-v100.x`), or matches it as a glob (`*`).
 */
export function addressMatches(address: string, filter: string): boolean {
  if (filter.includes('*')) return globToRegExp(filter).test(address) || globToRegExp(`${filter}.*`).test(address);
  return address === filter || address.startsWith(`${filter}.`);
}

/**
 * Splits the positional arguments of a state command into addresses and at most one fleet path.
 * An argument is an address when it reads as one; otherwise it must be an existing file or folder
 * (the fleet), or it is an error: a path is never taken for an address, nor the other way round.
 */
export function addressesAndPath(args: readonly string[], pathOption: string | undefined): { addresses: string[]; path: string | undefined } {
  const addresses: string[] = [];
  let path = pathOption;
  for (const a of args) {
    if (looksLikeAddress(a)) addresses.push(a);
    else if (existsSync(a)) {
      if (path !== undefined && path !== a) throw new UsageError(`two fleet paths given: "${path}" and "${a}"`, ['Give the fleet once, as the last argument or with --path.']);
      path = a;
    } else {
      throw new UsageError(`"${a}" is neither an address nor an existing fleet file or folder`, ['Addresses look like workload.NAME or lease.POOL.ID; `spotfleet state list` lists them.']);
    }
  }
  return { addresses, path };
}

/** Parses a strict address (no globs) or throws a usage error naming what was expected. */
export function strictAddress(arg: string, what: string): string {
  if (!parseAddress(arg) || arg.includes('*')) throw new UsageError(`${what}: "${arg}" is not an address`, ['Expected workload.NAME or lease.POOL.ID.']);
  return arg;
}
