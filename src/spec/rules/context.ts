// What the semantic rules share: the merged items of a fleet with where each came from, the fleet
// as it is being resolved, and the one way a rule reports a problem (`err`, `warn`, placed at a
// JSON pointer inside an item). A rule is `(ctx) => void`; rules/index.ts lists them in order.
import type { SourcePos, SpecProblem } from '../../core/errors.js';
import { parseDuration as parseDurationText, parseMoney } from '../../core/units.js';
import { DEFAULT_THRESHOLDS } from '../defaults.js';
import { positionOf, type SpecFile } from '../source.js';
import type { AlertRuleSpec, AlertSinkSpec, BackendSpec, CheckpointContract, PoolSpec, ProviderInstanceSpec, Thresholds, WorkloadSpec } from '../types.js';

export type Obj = Record<string, unknown>;

/** One item of the merged fleet with where it came from. */
export interface Located {
  src: SpecFile;
  /** JSON pointer of the item inside its file. */
  ptr: string;
  v: Obj;
  /** The schema already reported a problem inside this item: skip field checks, keep its name. */
  bad: boolean;
}

export interface ResolveInput {
  /** Parsed files, in load order. */
  sources: SpecFile[];
  /** Per source: pointer prefixes (one and two segments deep) that had schema errors. */
  schemaBad: Map<SpecFile, Set<string>>;
  /** Absolute path of what was loaded (file or folder). */
  source: string;
  /** Folder relative paths resolve against. */
  dir: string;
  now: number;
  /** Accept `policies:` files outside the fleet's repository (an operator's choice, never the spec's). */
  allowExternalPolicies?: boolean;
  /** Compute each workload's specHash (what plan compares with state). Default true; see LoadFleetOptions.specHashes. */
  specHashes?: boolean;
}

/** The `defaults:` block as the workloads rules read it. */
export interface ResolvedDefaults {
  /** Where `defaults:` is (a placeholder at `/defaults` of the first file when it is not set). */
  loc: Located;
  /** False when the schema reported a problem inside `defaults:`: its fields are then not used. */
  ok: boolean;
  thresholds: Thresholds;
  checkpoint?: Obj;
  fallback: Obj;
  overhead?: Obj;
  passEnv: string[];
}

/** A workload item that resolved, with what the later workload rules need. */
export interface ResolvedWorkload {
  l: Located;
  w: WorkloadSpec;
  /** One of its `pools` names no pool: already reported, so "fits no pool" would only repeat it. */
  unknownPool: boolean;
}

export type Rule = (ctx: ResolveContext) => void;

export interface ResolveContext {
  readonly input: ResolveInput;
  readonly errors: SpecProblem[];
  readonly warnings: SpecProblem[];

  // The merged fleet (the merge rule).
  lists: Record<'pools' | 'workloads' | 'alerts' | 'sinks', Located[]>;
  providerItems: Map<string, Located>;
  singles: Map<string, Located & { value: unknown }>;
  policyItems: { src: SpecFile; ptr: string; value: string }[];
  // Indexes by name (the names rule).
  poolByName: Map<string, Located>;
  sinkByName: Map<string, Located>;
  defaults: ResolvedDefaults;
  /** Workloads in spec order, as the workloads rule resolved them. */
  resolvedWorkloads: ResolvedWorkload[];
  /** Workload items whose `pools` name an unknown pool (the workload-references rule). */
  unknownPoolRefs: Set<Located>;

  // The resolved fleet, as the rules fill it in (resolveFleet assembles the Fleet from it).
  out: {
    name: string;
    labels: Record<string, string>;
    providers: ProviderInstanceSpec[];
    pools: PoolSpec[];
    alerts: AlertRuleSpec[];
    sinks: AlertSinkSpec[];
    policies: string[];
    budgetPerHour?: number;
    backend?: BackendSpec;
    defaultCheckpoint?: CheckpointContract;
  };

  /** Position of a pointer inside an item (`sub` is relative to the item). */
  at: (l: { src: SpecFile; ptr: string }, sub?: string, which?: 'key' | 'value') => SourcePos;
  err: (pos: SourcePos, message: string, expected: string | undefined, rule: string, path?: string) => void;
  warn: (pos: SourcePos, message: string, expected: string | undefined, rule: string, path?: string) => void;
  /** parseDuration, each text parsed once (thousands of workloads repeat a handful of durations). */
  parseDuration: (text: string) => number | undefined;
  /** The duration at `sub` (or `fallback`), reporting one that does not parse. */
  duration: (l: Located, sub: string, fallback?: string) => number | undefined;
  /** The amount of money at `sub`, reporting one that does not parse. */
  money: (l: Located, sub: string) => number | undefined;
}

export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
export function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}
export function strMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (isObj(v)) {
    for (const k of Object.keys(v)) {
      const x = v[k];
      if (typeof x === 'string') out[k] = x;
    }
  }
  return out;
}
export function argv(v: unknown): string[] | undefined {
  if (typeof v === 'string') {
    const parts = v.trim().split(/\s+/).filter((s) => s.length > 0);
    return parts.length > 0 ? parts : undefined;
  }
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v.length > 0 ? [...(v)] : undefined;
  return undefined;
}

/** The optional fields of a checkpoint contract, as written (the fleet default or a workload's own, merged). */
export function checkpointExtras(src: Obj, cp: CheckpointContract): void {
  if (typeof src.marker === 'string') cp.marker = src.marker;
  if (typeof src.minSize === 'number') cp.minSizeBytes = src.minSize;
  if (typeof src.shared === 'boolean') cp.shared = src.shared;
  if (typeof src.sizeGB === 'number') cp.sizeGB = src.sizeGB;
  const verify = argv(src.verify);
  if (verify) cp.verify = verify;
  if (typeof src.keep === 'number') cp.keep = src.keep;
}

export function fmtPos(p: SourcePos): string {
  return `${p.file}:${p.line}:${p.col}`;
}

/** What an unknown provider reference should have been. */
export function providerChoices(ctx: ResolveContext): string {
  return ctx.providerItems.size > 0 ? `one of the providers: ${[...ctx.providerItems.keys()].sort().join(', ')}` : 'a provider declared under providers:';
}

/** What an unknown pool reference should have been. */
export function poolChoices(ctx: ResolveContext): string {
  return ctx.poolByName.size > 0 ? `one of the pools: ${[...ctx.poolByName.keys()].sort().join(', ')}` : 'a pool declared under pools:';
}

/** The value at a pointer-like path (`/a/b`, no escapes) inside an item; undefined when absent. */
function getPath(v: Obj, sub: string): unknown {
  let cur: unknown = v;
  let from = sub.charCodeAt(0) === 0x2f ? 1 : 0;
  for (;;) {
    if (!isObj(cur)) return undefined;
    const slash = sub.indexOf('/', from);
    if (slash === -1) return cur[sub.slice(from)];
    cur = cur[sub.slice(from, slash)];
    from = slash + 1;
  }
}

/** A fresh context for one resolve: nothing merged, built-in defaults, no problems. */
export function createContext(input: ResolveInput): ResolveContext {
  const durations = new Map<string, number | undefined>();
  const parseDuration = (text: string): number | undefined => {
    if (durations.has(text)) return durations.get(text);
    const ms = parseDurationText(text);
    durations.set(text, ms);
    return ms;
  };
  const errors: SpecProblem[] = [];
  const warnings: SpecProblem[] = [];
  const at = (l: { src: SpecFile; ptr: string }, sub = '', which: 'key' | 'value' = 'value'): SourcePos => positionOf(l.src, l.ptr + sub, which);
  const problem = (into: SpecProblem[], severity: 'error' | 'warning') => (pos: SourcePos, message: string, expected: string | undefined, rule: string, path?: string): void => {
    const p: SpecProblem = { ...pos, severity, message, rule };
    if (expected !== undefined) p.expected = expected;
    if (path !== undefined) p.path = path;
    into.push(p);
  };
  const err = problem(errors, 'error');
  // The schema checked the form of durations and money; these catch what still fails.
  const duration = (l: Located, sub: string, fallback?: string): number | undefined => {
    const raw = str(getPath(l.v, sub)) ?? fallback;
    if (raw === undefined) return undefined;
    const ms = parseDuration(raw);
    if (ms === undefined) err(at(l, sub), `${sub.replace(/^\//, '').replace(/\//g, '.')} is not a duration: "${raw}"`, 'a duration such as 90s, 30m, 8h or 1h30m', 'duration', l.ptr + sub);
    return ms;
  };
  const money = (l: Located, sub: string): number | undefined => {
    const raw = getPath(l.v, sub);
    if (raw === undefined) return undefined;
    const usd = parseMoney(raw);
    if (usd === undefined) err(at(l, sub), `${sub.replace(/^\//, '').replace(/\//g, '.')} is not an amount of money: ${JSON.stringify(raw)}`, 'USD per hour: a number >= 0, or a string like "2.50", "$2.50" or "2.50/h"', 'money', l.ptr + sub);
    return usd;
  };
  return {
    input,
    errors,
    warnings,
    lists: { pools: [], workloads: [], alerts: [], sinks: [] },
    providerItems: new Map(),
    singles: new Map(),
    policyItems: [],
    poolByName: new Map(),
    sinkByName: new Map(),
    defaults: {
      loc: { src: input.sources[0] as SpecFile, ptr: '/defaults', v: {}, bad: false },
      ok: true,
      thresholds: {
        minSavingsPerHour: DEFAULT_THRESHOLDS.minSavingsPerHour,
        minRuntimeMs: parseDuration(DEFAULT_THRESHOLDS.minRuntime) as number,
        spotPriceAlertRatio: DEFAULT_THRESHOLDS.spotPriceAlertRatio,
        maxPreemptions: DEFAULT_THRESHOLDS.maxPreemptions,
        preemptionWindowMs: parseDuration(DEFAULT_THRESHOLDS.preemptionWindow) as number,
        cooldownMs: parseDuration(DEFAULT_THRESHOLDS.cooldown) as number,
      },
      fallback: {},
      passEnv: [],
    },
    resolvedWorkloads: [],
    unknownPoolRefs: new Set(),
    out: { name: '', labels: {}, providers: [], pools: [], alerts: [], sinks: [], policies: [] },
    at,
    err,
    warn: problem(warnings, 'warning'),
    parseDuration,
    duration,
    money,
  };
}
