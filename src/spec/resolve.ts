// Merges the files of a fleet into one, applies defaults and runs the semantic rules that a JSON
// Schema cannot express (rules/index.ts lists them, one module each): duplicate names (also across
// files), references to unknown providers, pools and sinks, workloads that fit no pool, durations
// and money, deadlines in the past, and spot-eligible workloads without a checkpoint contract (a
// warning). Every rule is linear in the size of the fleet: names are indexed in maps, positions
// looked up by pointer on demand.
import type { SpecProblem } from '../core/errors.js';
import { createContext, type Located, type ResolveInput } from './rules/context.js';
import { RULES } from './rules/index.js';
import { workloadSpecHash } from './spec-hash.js';
import type { Fleet } from './types.js';

export { BUILTIN_SINKS, DEFAULT_BACKOFF_LIMIT, DEFAULT_CHECKPOINT, DEFAULT_CHECKPOINT_KEEP, DEFAULT_FALLBACK, DEFAULT_NODE_ACCESS, DEFAULT_THRESHOLDS } from './defaults.js';
export { ENV_REF } from './rules/backend.js';
export { policyRoot } from './rules/policy-files.js';
export { stableStringify, workloadSpecHash } from './spec-hash.js';
export type { Located, ResolveInput } from './rules/context.js';

export interface ResolveOutput {
  fleet: Fleet;
  errors: SpecProblem[];
  warnings: SpecProblem[];
  /** Provider instances with their origin, for config checks. */
  providerItems: Map<string, Located>;
  /** Pools by name with their origin, for the providers' pool checks. */
  poolItems: Map<string, Located>;
}

/** Merges and checks a fleet. Never throws on bad input; the caller throws SpecError. */
export function resolveFleet(input: ResolveInput): ResolveOutput {
  const ctx = createContext(input);
  for (const rule of RULES) rule(ctx);
  const o = ctx.out;
  const hashes = input.specHashes !== false;
  const workloads = ctx.resolvedWorkloads.map(({ w }) => {
    if (hashes) w.specHash = workloadSpecHash(w);
    return w;
  });
  const fleet: Fleet = {
    apiVersion: 'spotfleet.dev/v1',
    name: o.name,
    labels: o.labels,
    source: input.source,
    dir: input.dir,
    files: input.sources.map((s) => s.abs),
    providers: o.providers,
    pools: o.pools,
    workloads,
    defaults: { thresholds: ctx.defaults.thresholds },
    alerts: o.alerts,
    sinks: o.sinks,
    policies: o.policies,
  };
  if (o.budgetPerHour !== undefined) fleet.budgetPerHour = o.budgetPerHour;
  if (o.backend) fleet.backend = o.backend;
  if (o.defaultCheckpoint) fleet.defaults.checkpoint = o.defaultCheckpoint;
  return { fleet, errors: ctx.errors, warnings: ctx.warnings, providerItems: ctx.providerItems, poolItems: ctx.poolByName };
}
