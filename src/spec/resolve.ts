// Merges the files of a fleet into one, applies defaults and runs the semantic rules that a JSON
// Schema cannot express: duplicate names (also across files), references to unknown providers,
// pools and sinks, workloads that fit no pool, durations and money, deadlines in the past, and
// spot-eligible workloads without a checkpoint contract (a warning). Every check is linear in the
// size of the fleet: names are indexed in maps, positions looked up by pointer on demand.
import { hash } from 'node:crypto';
import { existsSync, realpathSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { dirname, isAbsolute, join, relative, resolve as resolvePath } from 'node:path';
import type { SourcePos, SpecProblem } from '../core/errors.js';
import type { CapacityPreference, CapacityType, NodeAccess, WorkloadClass } from '../core/types.js';
import { parseDuration as parseDurationText, parseMoney } from '../core/units.js';
import { encodeSegment, positionOf, type SpecFile } from './source.js';
import type {
  AlertRuleSpec,
  AlertSinkSpec,
  CheckpointContract,
  FallbackRule,
  Fleet,
  MigrationOverhead,
  PoolSpec,
  ProviderInstanceSpec,
  RestartPolicy,
  Severity,
  Thresholds,
  WorkloadSpec,
} from './types.js';

/** Built-in defaults (see DESIGN.md); documented in fleet.schema.json too. */
export const DEFAULT_THRESHOLDS = {
  minSavingsPerHour: 0.5,
  minRuntime: '30m',
  spotPriceAlertRatio: 0.8,
  maxPreemptions: 3,
  preemptionWindow: '6h',
  cooldown: '2h',
} as const;
/** Failed exits a job may have before it is failed (Kubernetes Jobs' default). */
export const DEFAULT_BACKOFF_LIMIT = 6;

export const DEFAULT_FALLBACK = { to: 'on-demand', revertToSpot: true, minDwell: '30m' } as const;
export const DEFAULT_CHECKPOINT = { signal: 'SIGUSR1', stopGrace: '60s', resumeEnv: 'RESUME_FROM_CHECKPOINT' } as const;
/** Defaults of `pools[].node` (see fleet.schema.json). */
export const DEFAULT_NODE_ACCESS = { user: 'root', port: 22, readyTimeout: '10m' } as const;
/** Checkpoints kept per workload when `checkpoint.keep` is not set (the newest, plus two to fall back to). */
export const DEFAULT_CHECKPOINT_KEEP = 3;
/** The sink every fleet has without declaring it. */
export const BUILTIN_SINKS = ['log'] as const;
const SPOT_CLASSES: ReadonlySet<string> = new Set(['training', 'batch', 'dev']);
const DEADLINE_RE = /^\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:[Zz]|[+-]\d{2}:?\d{2}))?$/;

type Obj = Record<string, unknown>;

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
}

export interface ResolveOutput {
  fleet: Fleet;
  errors: SpecProblem[];
  warnings: SpecProblem[];
  /** Provider instances with their origin, for config checks. */
  providerItems: Map<string, Located>;
  /** Pools by name with their origin, for the providers' pool checks. */
  poolItems: Map<string, Located>;
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}
function strMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (isObj(v)) {
    for (const k of Object.keys(v)) {
      const x = v[k];
      if (typeof x === 'string') out[k] = x;
    }
  }
  return out;
}
function argv(v: unknown): string[] | undefined {
  if (typeof v === 'string') {
    const parts = v.trim().split(/\s+/).filter((s) => s.length > 0);
    return parts.length > 0 ? parts : undefined;
  }
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v.length > 0 ? [...(v)] : undefined;
  return undefined;
}

/** Characters JSON.stringify escapes in a string (lone surrogates included, so all surrogates). */
const JSON_ESCAPED = /["\\\u0000-\u001f\ud800-\udfff]/;

/** JSON.stringify of a string, without the native call for the common string that needs no escape. */
function quote(s: string): string {
  return JSON_ESCAPED.test(s) ? JSON.stringify(s) : `"${s}"`;
}

/**
 * JSON with sorted keys (UTF-16 order, as Array#sort), so equal data hashes equally whatever the key
 * order. Keys whose value is undefined are left out; undefined (or a function) elsewhere reads
 * `null`. Hand-written loops, an insertion sort and quoting without JSON.stringify because it runs
 * once per workload (10,000 in the validate benchmark); test/spec/resolve.test.ts pins the output
 * to the plain map/sort/join definition.
 */
export function stableStringify(v: unknown): string {
  if (typeof v === 'string') return quote(v);
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : 'null';
  if (typeof v !== 'object' || v === null) return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) {
    let out = '[';
    for (let i = 0; i < v.length; i++) out += (i === 0 ? '' : ',') + stableStringify(v[i]);
    return `${out}]`;
  }
  const o = v as Obj;
  const keys = Object.keys(o);
  for (let i = 1; i < keys.length; i++) {
    const k = keys[i] as string;
    let j = i - 1;
    while (j >= 0 && (keys[j] as string) > k) {
      keys[j + 1] = keys[j] as string;
      j--;
    }
    keys[j + 1] = k;
  }
  let out = '{';
  let first = true;
  for (const k of keys) {
    const x = o[k];
    if (x === undefined) continue;
    out += `${first ? '' : ','}${quote(k)}:${stableStringify(x)}`;
    first = false;
  }
  return `${out}}`;
}

/** Short sha256 of the fields whose change requires a restart of the workload. */
export function workloadSpecHash(w: Pick<WorkloadSpec, 'image' | 'command' | 'env' | 'gpus' | 'gpuModel' | 'checkpoint' | 'passEnv'>): string {
  // sizeGB only prices moves: changing it must not look like a new workload.
  const checkpoint = w.checkpoint?.sizeGB !== undefined ? { ...w.checkpoint, sizeGB: undefined } : w.checkpoint;
  // passEnv names (never values) change the environment, so a restart; absent when empty so the
  // hashes of fleets that do not use it stay what they were.
  const passEnv = w.passEnv && w.passEnv.length > 0 ? w.passEnv : undefined;
  const material = stableStringify({ image: w.image, command: w.command, env: w.env, gpus: w.gpus, gpuModel: w.gpuModel, checkpoint, passEnv });
  // one-shot hash: same digest as createHash().update().digest(), without a Hash object per workload
  return hash('sha256', material, 'hex').slice(0, 12);
}

function fmtPos(p: SourcePos): string {
  return `${p.file}:${p.line}:${p.col}`;
}

/** Merges and checks a fleet. Never throws on bad input; the caller throws SpecError. */
export function resolveFleet(input: ResolveInput): ResolveOutput {
  // Thousands of workloads repeat a handful of durations (`8h`, `30m`): parse each text once.
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
  const err = (pos: SourcePos, message: string, expected: string | undefined, rule: string, path?: string): void => {
    const p: SpecProblem = { ...pos, severity: 'error', message, rule };
    if (expected !== undefined) p.expected = expected;
    if (path !== undefined) p.path = path;
    errors.push(p);
  };
  const warn = (pos: SourcePos, message: string, expected: string | undefined, rule: string, path?: string): void => {
    const p: SpecProblem = { ...pos, severity: 'warning', message, rule };
    if (expected !== undefined) p.expected = expected;
    if (path !== undefined) p.path = path;
    warnings.push(p);
  };

  // ---- merge: lists concatenate, maps merge by key, singletons may be set by one file only.
  const lists: Record<'pools' | 'workloads' | 'alerts' | 'sinks', Located[]> = { pools: [], workloads: [], alerts: [], sinks: [] };
  const providerItems = new Map<string, Located>();
  const singles = new Map<string, Located & { value: unknown }>();
  const policyItems: { src: SpecFile; ptr: string; value: string }[] = [];
  for (const src of input.sources) {
    const data = src.data;
    if (!isObj(data)) continue;
    const bad = input.schemaBad.get(src) ?? new Set<string>();
    for (const key of ['pools', 'workloads', 'alerts', 'sinks'] as const) {
      const arr = data[key];
      if (!Array.isArray(arr)) continue;
      arr.forEach((item, i) => {
        const ptr = `/${key}/${i}`;
        if (isObj(item)) lists[key].push({ src, ptr, v: item, bad: bad.has(ptr) });
      });
    }
    if (isObj(data.providers)) {
      for (const [name, item] of Object.entries(data.providers)) {
        const ptr = `/providers/${encodeSegment(name)}`;
        const prev = providerItems.get(name);
        if (prev) {
          err(at({ src, ptr }, '', 'key'), `provider "${name}" is defined twice`, `a unique provider name; "${name}" is first defined at ${fmtPos(at(prev, '', 'key'))}`, 'duplicate-name', ptr);
          continue;
        }
        if (isObj(item)) providerItems.set(name, { src, ptr, v: item, bad: bad.has(ptr) });
      }
    }
    for (const key of ['metadata', 'defaults', 'budgetPerHour'] as const) {
      if (!(key in data)) continue;
      const prev = singles.get(key);
      const ptr = `/${key}`;
      if (prev) {
        err(at({ src, ptr }, '', 'key'), `${key} is set in more than one file`, `${key} in one file only; it is first set at ${fmtPos(at(prev, '', 'key'))}`, 'duplicate-name', ptr);
        continue;
      }
      singles.set(key, { src, ptr, v: isObj(data[key]) ? (data[key]) : {}, value: data[key], bad: bad.has(ptr) });
    }
    if (Array.isArray(data.policies)) {
      data.policies.forEach((p, i) => {
        if (typeof p === 'string' && p.length > 0) policyItems.push({ src, ptr: `/policies/${i}`, value: p });
      });
    }
  }

  // ---- metadata
  const meta = singles.get('metadata');
  let fleetName = '';
  if (!meta) {
    const first = input.sources[0];
    if (first) err({ file: first.file, line: 1, col: 1 }, 'the fleet has no metadata.name', 'metadata: { name: my-fleet } in one file of the fleet', 'required');
  } else {
    fleetName = str(meta.v.name) ?? '';
  }

  // ---- durations and money helpers (the schema checked the form; these catch what still fails)
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

  /** `pools[].node` with its defaults (DEFAULT_NODE_ACCESS). */
  const nodeAccess = (l: Located, n: Obj): NodeAccess => {
    const a: NodeAccess = {
      via: 'ssh',
      user: str(n.user) ?? DEFAULT_NODE_ACCESS.user,
      identityFile: str(n.identityFile) ?? '',
      port: typeof n.port === 'number' ? n.port : DEFAULT_NODE_ACCESS.port,
      runtime: 'docker',
      address: n.address === 'public' || n.address === 'private' ? n.address : 'auto',
      readyTimeoutMs: duration(l, '/node/readyTimeout', DEFAULT_NODE_ACCESS.readyTimeout) ?? (parseDuration(DEFAULT_NODE_ACCESS.readyTimeout) as number),
    };
    if (a.readyTimeoutMs < 5000) err(at(l, '/node/readyTimeout'), `node.readyTimeout of ${String(n.readyTimeout)} is too short for a VM to boot`, 'a duration of at least 5s (VMs usually need 1-3 minutes)', 'duration', `${l.ptr}/node/readyTimeout`);
    for (const k of ['image', 'checkpointRoot', 'metadataUrl'] as const) {
      const x = str(n[k]);
      if (x !== undefined) a[k] = x;
    }
    if (typeof n.nvidiaRuntime === 'boolean') a.nvidiaRuntime = n.nvidiaRuntime;
    return a;
  };

  // ---- defaults
  const defaultsLoc: Located = singles.get('defaults') ?? { src: input.sources[0] as SpecFile, ptr: '/defaults', v: {}, bad: false };
  const dv = defaultsLoc.v;
  const defaultsOk = !defaultsLoc.bad;
  const thresholds: Thresholds = {
    minSavingsPerHour: DEFAULT_THRESHOLDS.minSavingsPerHour,
    minRuntimeMs: parseDuration(DEFAULT_THRESHOLDS.minRuntime) as number,
    spotPriceAlertRatio: DEFAULT_THRESHOLDS.spotPriceAlertRatio,
    maxPreemptions: DEFAULT_THRESHOLDS.maxPreemptions,
    preemptionWindowMs: parseDuration(DEFAULT_THRESHOLDS.preemptionWindow) as number,
    cooldownMs: parseDuration(DEFAULT_THRESHOLDS.cooldown) as number,
  };
  let defaultCheckpoint: Obj | undefined;
  let defaultFallback: Obj = {};
  let defaultOverhead: Obj | undefined;
  let defaultPassEnv: string[] = [];
  if (defaultsOk && isObj(dv)) {
    if (Array.isArray(dv.passEnv)) defaultPassEnv = dv.passEnv.filter((x): x is string => typeof x === 'string');
    const t = dv.thresholds;
    if (isObj(t)) {
      thresholds.minSavingsPerHour = money(defaultsLoc, '/thresholds/minSavingsPerHour') ?? thresholds.minSavingsPerHour;
      thresholds.minRuntimeMs = duration(defaultsLoc, '/thresholds/minRuntime') ?? thresholds.minRuntimeMs;
      if (typeof t.spotPriceAlertRatio === 'number') thresholds.spotPriceAlertRatio = t.spotPriceAlertRatio;
      if (typeof t.maxPreemptions === 'number') thresholds.maxPreemptions = t.maxPreemptions;
      thresholds.preemptionWindowMs = duration(defaultsLoc, '/thresholds/preemptionWindow') ?? thresholds.preemptionWindowMs;
      thresholds.cooldownMs = duration(defaultsLoc, '/thresholds/cooldown') ?? thresholds.cooldownMs;
    }
    if (isObj(dv.checkpoint)) defaultCheckpoint = dv.checkpoint;
    if (isObj(dv.fallback)) defaultFallback = dv.fallback;
    if (isObj(dv.overhead)) defaultOverhead = dv.overhead;
  }

  // ---- providers
  const providers: ProviderInstanceSpec[] = [];
  for (const [name, l] of providerItems) {
    const p: ProviderInstanceSpec = {
      name,
      type: str(l.v.type) ?? '',
      config: isObj(l.v.config) ? l.v.config : {},
      pos: at(l, '', 'key'),
      configPos: isObj(l.v.config) ? at(l, '/config') : at(l, '', 'key'),
    };
    const pkg = str(l.v.package);
    if (pkg !== undefined) p.package = pkg;
    providers.push(p);
  }
  const providerNames = (): string => (providerItems.size > 0 ? `one of the providers: ${[...providerItems.keys()].sort().join(', ')}` : 'a provider declared under providers:');

  // ---- names: duplicates across the whole fleet, in one pass per kind
  const indexNames = (kind: string, items: Located[]): Map<string, Located> => {
    const byName = new Map<string, Located>();
    for (const l of items) {
      const name = str(l.v.name);
      if (name === undefined) continue;
      const prev = byName.get(name);
      if (prev) {
        err(at(l, '/name'), `${kind} "${name}" is defined twice`, `a unique ${kind} name; "${name}" is first defined at ${fmtPos(at(prev, '/name'))}`, 'duplicate-name', `${l.ptr}/name`);
      } else {
        byName.set(name, l);
      }
    }
    return byName;
  };
  const poolByName = indexNames('pool', lists.pools);
  indexNames('workload', lists.workloads);
  indexNames('alert', lists.alerts);
  const sinkByName = indexNames('sink', lists.sinks);
  const poolList = (): string => (poolByName.size > 0 ? `one of the pools: ${[...poolByName.keys()].sort().join(', ')}` : 'a pool declared under pools:');

  // ---- pools
  const pools: PoolSpec[] = [];
  for (const l of lists.pools) {
    const v = l.v;
    const name = str(v.name);
    const provider = str(v.provider);
    if (provider !== undefined && !providerItems.has(provider)) {
      err(at(l, '/provider'), `pool "${name ?? '?'}" uses unknown provider "${provider}"`, providerNames(), 'unknown-reference', `${l.ptr}/provider`);
    }
    if (l.bad || name === undefined || provider === undefined) continue;
    const p: PoolSpec = { name, provider, capacity: v.capacity as CapacityType, labels: strMap(v.labels), onWarning: 'auto', pos: at(l) };
    if (typeof v.gpuModel === 'string') p.gpuModel = v.gpuModel;
    const max = money(l, '/maxPricePerHour');
    if (max !== undefined) p.maxPricePerHour = max;
    if (Array.isArray(v.zones)) p.zones = v.zones.filter((z): z is string => typeof z === 'string');
    if (typeof v.warmStandby === 'number') p.warmStandby = v.warmStandby;
    const idle = duration(l, '/idleRelease');
    if (idle !== undefined && idle > 0) p.idleReleaseMs = idle;
    if (isObj(v.node)) p.node = nodeAccess(l, v.node);
    p.onWarning = (str(v.onWarning) as PoolSpec['onWarning'] | undefined) ?? 'auto';
    pools.push(p);
  }

  // What each pool can hold: for providers with a static inventory (`config.nodes`), the largest
  // node per GPU model; markets are assumed to offer any count of their model.
  const poolShapes = new Map<string, { any: number; byModel: Map<string, number> } | undefined>();
  for (const p of pools) {
    const prov = providerItems.get(p.provider);
    const nodes = prov && isObj(prov.v.config) && Array.isArray(prov.v.config.nodes) ? prov.v.config.nodes : undefined;
    if (!nodes) {
      poolShapes.set(p.name, undefined);
      continue;
    }
    const byModel = new Map<string, number>();
    let any = -1;
    // A matching node whose GPU count is not in the config (ssh/docker hosts read it from
    // nvidia-smi at run time) makes the pool's shape unknown: it may fit anything.
    let unknown = false;
    for (const n of nodes) {
      if (!isObj(n)) continue;
      if (typeof n.capacity === 'string' && n.capacity !== p.capacity) continue;
      const model = typeof n.gpuModel === 'string' ? n.gpuModel.toLowerCase() : '';
      if (p.gpuModel && model && model !== p.gpuModel.toLowerCase()) continue;
      if (typeof n.gpus !== 'number') {
        unknown = true;
        continue;
      }
      byModel.set(model, Math.max(byModel.get(model) ?? -1, n.gpus));
      any = Math.max(any, n.gpus);
    }
    poolShapes.set(p.name, unknown ? undefined : { any, byModel });
  }
  const fits = (p: PoolSpec, w: { gpus: number; gpuModel?: string; capacity: CapacityPreference }): boolean => {
    if (w.capacity !== 'auto' && w.capacity !== p.capacity) return false;
    const wm = w.gpuModel?.toLowerCase();
    if (wm && p.gpuModel && p.gpuModel.toLowerCase() !== wm) return false;
    const shape = poolShapes.get(p.name);
    if (!shape) return true;
    if (w.gpus === 0) return shape.any >= 0 || shape.byModel.size === 0;
    if (!wm) return shape.any >= w.gpus;
    return (shape.byModel.get(wm) ?? -1) >= w.gpus || (shape.byModel.get('') ?? -1) >= w.gpus;
  };
  // Pools indexed by model so a fleet of many workloads does not scan every pool per workload.
  const poolsByModel = new Map<string, PoolSpec[]>();
  const poolsAnyModel: PoolSpec[] = [];
  for (const p of pools) {
    if (!p.gpuModel) poolsAnyModel.push(p);
    else {
      const k = p.gpuModel.toLowerCase();
      const arr = poolsByModel.get(k) ?? [];
      arr.push(p);
      poolsByModel.set(k, arr);
    }
  }
  const fitCache = new Map<string, boolean>();
  const resolvedPool = new Map(pools.map((p) => [p.name, p] as const));

  // ---- workloads
  const workloads: WorkloadSpec[] = [];
  for (const l of lists.workloads) {
    const v = l.v;
    const name = str(v.name);
    // References are checked even in items with schema errors, so one typo does not hide another.
    const allowed = Array.isArray(v.pools) ? v.pools : undefined;
    let unknownPool = false;
    allowed?.forEach((pn, i) => {
      if (typeof pn === 'string' && !poolByName.has(pn)) unknownPool = true;
      if (typeof pn === 'string' && !poolByName.has(pn)) err(at(l, `/pools/${i}`), `workload "${name ?? '?'}" allows unknown pool "${pn}"`, poolList(), 'unknown-reference', `${l.ptr}/pools/${i}`);
    });
    const fb = isObj(v.fallback) ? v.fallback : undefined;
    const fbTo = str(fb?.to);
    if (fbTo !== undefined && fbTo !== 'on-demand' && !poolByName.has(fbTo)) {
      err(at(l, '/fallback/to'), `workload "${name ?? '?'}" falls back to unknown pool "${fbTo}"`, `"on-demand" or ${poolList()}`, 'unknown-reference', `${l.ptr}/fallback/to`);
    }
    if (l.bad || name === undefined) continue;

    const image = str(v.image);
    const command = argv(v.command);
    if (image === undefined && command === undefined) {
      err(at(l, '/name'), `workload "${name}" has neither image nor command`, 'image: (a container image) or command: (argv for the local runtime)', 'required', l.ptr);
    }
    const gpus = typeof v.gpus === 'number' ? v.gpus : 1;
    const cls = (str(v.class) ?? 'training') as WorkloadClass;
    const capacity = (str(v.capacity) ?? 'auto') as CapacityPreference;
    const fallbackSrc = { ...DEFAULT_FALLBACK, ...defaultFallback, ...(fb ?? {}) } as Obj;
    const minDwellMs = fb && typeof fb.minDwell === 'string' ? duration(l, '/fallback/minDwell') : parseDuration(String(fallbackSrc.minDwell));
    const fallback: FallbackRule = {
      to: String(fallbackSrc.to),
      revertToSpot: fallbackSrc.revertToSpot !== false,
      minDwellMs: minDwellMs ?? (parseDuration(DEFAULT_FALLBACK.minDwell) as number),
    };
    const w: WorkloadSpec = {
      name,
      env: strMap(v.env),
      gpus,
      class: cls,
      capacity,
      fallback,
      labels: strMap(v.labels),
      critical: v.critical === true,
      restartPolicy: (str(v.restartPolicy) as RestartPolicy | undefined) ?? (cls === 'serving' || cls === 'realtime' ? 'Always' : 'OnFailure'),
      backoffLimit: typeof v.backoffLimit === 'number' ? v.backoffLimit : DEFAULT_BACKOFF_LIMIT,
      specHash: '',
      pos: at(l),
    };
    if (image !== undefined) w.image = image;
    if (command !== undefined) w.command = command;
    if (defaultPassEnv.length > 0 || Array.isArray(v.passEnv)) {
      const own = Array.isArray(v.passEnv) ? v.passEnv.filter((x): x is string => typeof x === 'string') : [];
      w.passEnv = [...new Set([...defaultPassEnv, ...own])].sort();
    }
    if (typeof v.gpuModel === 'string') w.gpuModel = v.gpuModel;
    const exp = duration(l, '/expectedDuration');
    if (exp !== undefined) w.expectedDurationMs = exp;
    if (typeof v.deadline === 'string') {
      const d = v.deadline;
      const t = DEADLINE_RE.test(d.trim()) ? Date.parse(d.trim()) : NaN;
      if (Number.isNaN(t)) {
        err(at(l, '/deadline'), `deadline is not a time: "${d}"`, 'an ISO-8601 time such as 2026-12-01T00:00:00Z', 'deadline', `${l.ptr}/deadline`);
      } else if (t < input.now) {
        err(at(l, '/deadline'), `deadline ${d} is in the past`, 'a time in the future', 'deadline', `${l.ptr}/deadline`);
      } else {
        w.deadline = new Date(t).toISOString();
      }
    }
    if (allowed) w.pools = allowed.filter((x): x is string => typeof x === 'string');

    // checkpoint: the workload's fields over the defaults' fields.
    const ownCp = isObj(v.checkpoint) ? v.checkpoint : undefined;
    if (ownCp || defaultCheckpoint) {
      const merged: Obj = { ...(defaultCheckpoint ?? {}), ...(ownCp ?? {}) };
      const fieldLoc = (f: string): Located =>
        ownCp && f in ownCp ? { ...l, ptr: `${l.ptr}/checkpoint`, v: ownCp } : { ...defaultsLoc, ptr: `${defaultsLoc.ptr}/checkpoint`, v: defaultCheckpoint ?? {} };
      const path = str(merged.path);
      if (path === undefined) {
        err(ownCp ? at(l, '/checkpoint') : at(defaultsLoc, '/checkpoint'), `workload "${name}" has a checkpoint contract without a path`, 'checkpoint.path: where the workload writes checkpoints', 'checkpoint', `${l.ptr}/checkpoint`);
      }
      const signal = str(merged.signal) ?? DEFAULT_CHECKPOINT.signal;
      if (!(signal in osConstants.signals)) {
        const fl = fieldLoc('signal');
        err(at(fl, '/signal'), `unknown signal "${signal}"`, 'a POSIX signal name such as SIGUSR1 or SIGTERM', 'checkpoint', `${fl.ptr}/signal`);
      }
      const cp: CheckpointContract = {
        path: path ?? '',
        signal,
        // fieldLoc only when the text does not parse: it is there to place the error
        stopGraceMs: (typeof merged.stopGrace === 'string' ? parseDuration(merged.stopGrace) ?? duration(fieldLoc('stopGrace'), '/stopGrace') : undefined) ?? (parseDuration(DEFAULT_CHECKPOINT.stopGrace) as number),
        resumeEnv: str(merged.resumeEnv) ?? DEFAULT_CHECKPOINT.resumeEnv,
      };
      if (typeof merged.maxAge === 'string') {
        const ms = parseDuration(merged.maxAge) ?? duration(fieldLoc('maxAge'), '/maxAge');
        if (ms !== undefined) cp.maxAgeMs = ms;
      }
      if (typeof merged.marker === 'string') cp.marker = merged.marker;
      if (typeof merged.minSize === 'number') cp.minSizeBytes = merged.minSize;
      if (typeof merged.shared === 'boolean') cp.shared = merged.shared;
      if (typeof merged.sizeGB === 'number') cp.sizeGB = merged.sizeGB;
      const verify = argv(merged.verify);
      if (verify) cp.verify = verify;
      if (typeof merged.keep === 'number') cp.keep = merged.keep;
      w.checkpoint = cp;
    } else if (SPOT_CLASSES.has(cls) && capacity !== 'on-demand') {
      warn(at(l, '/name'), `workload "${name}" may run on spot (class ${cls}, capacity ${capacity}) but has no checkpoint contract; an eviction loses its work`, 'checkpoint: { path, signal, stopGrace } on the workload or in defaults.checkpoint, or capacity: on-demand', 'checkpoint-missing', l.ptr);
    }

    const ownOh = isObj(v.overhead) ? v.overhead : undefined;
    if (ownOh || defaultOverhead) {
      const oh: MigrationOverhead = { checkpointMs: 0, transferMs: 0, restartMs: 0 };
      for (const [field, key] of [['checkpoint', 'checkpointMs'], ['transfer', 'transferMs'], ['restart', 'restartMs']] as const) {
        if (ownOh && typeof ownOh[field] === 'string') oh[key] = duration(l, `/overhead/${field}`) ?? 0;
        else if (defaultOverhead && typeof defaultOverhead[field] === 'string') oh[key] = parseDuration(defaultOverhead[field]) ?? 0;
      }
      w.overhead = oh;
    }

    // fits a pool? (cached per shape: 10,000 workloads usually share a handful of shapes)
    const shapeKey = `${w.gpus}|${w.gpuModel?.toLowerCase() ?? ''}|${w.capacity}|${w.pools?.join(',') ?? '*'}`;
    let ok = fitCache.get(shapeKey);
    if (ok === undefined) {
      let candidates: Iterable<PoolSpec>;
      if (w.pools) candidates = w.pools.map((pn) => resolvedPool.get(pn)).filter((p): p is PoolSpec => p !== undefined);
      else if (w.gpuModel) candidates = [...(poolsByModel.get(w.gpuModel.toLowerCase()) ?? []), ...poolsAnyModel];
      else candidates = pools;
      ok = false;
      for (const p of candidates) {
        if (fits(p, w)) {
          ok = true;
          break;
        }
      }
      fitCache.set(shapeKey, ok);
    }
    if (unknownPool) {
      // already reported as an unknown pool; "fits no pool" would only repeat it
    } else if (!ok && pools.length > 0 && !(w.pools && w.pools.length === 0)) {
      const what = `${w.gpus} GPU${w.gpus === 1 ? '' : 's'}${w.gpuModel ? ` of ${w.gpuModel}` : ''}, capacity ${w.capacity}${w.pools ? `, pools ${w.pools.join(', ')}` : ''}`;
      const sub = typeof v.gpuModel === 'string' ? '/gpuModel' : typeof v.gpus === 'number' ? '/gpus' : '/name';
      err(at(l, sub), `workload "${name}" (${what}) fits no pool`, `a pool with that GPU model and capacity${pools.length <= 8 ? ` (pools: ${pools.map((p) => `${p.name} ${p.capacity}${p.gpuModel ? ` ${p.gpuModel}` : ''}`).join('; ')})` : ''}`, 'no-fitting-pool', `${l.ptr}${sub}`);
    } else if (!ok && pools.length === 0) {
      err(at(l, '/name'), `workload "${name}" fits no pool: the fleet has no pools`, 'pools: [{ name, provider, capacity, gpuModel }]', 'no-fitting-pool', l.ptr);
    }
    w.specHash = workloadSpecHash(w);
    workloads.push(w);
  }

  // ---- defaults.fallback.to must name a pool too
  if (defaultsOk && typeof defaultFallback.to === 'string' && defaultFallback.to !== 'on-demand' && !poolByName.has(defaultFallback.to)) {
    err(at(defaultsLoc, '/fallback/to'), `defaults.fallback.to names unknown pool "${defaultFallback.to}"`, `"on-demand" or ${poolList()}`, 'unknown-reference', '/defaults/fallback/to');
  }

  // ---- sinks
  const sinks: AlertSinkSpec[] = [];
  for (const l of lists.sinks) {
    const v = l.v;
    const name = str(v.name);
    const type = str(v.type);
    if (l.bad || name === undefined || type === undefined) continue;
    const s: AlertSinkSpec = { name, type: type as AlertSinkSpec['type'], pos: at(l) };
    if (typeof v.url === 'string') s.url = v.url;
    const cmd = argv(v.command);
    if (cmd) s.command = cmd;
    if (typeof v.provider === 'string') s.provider = v.provider;
    if (type === 'webhook' && s.url === undefined) err(at(l, '/type'), `sink "${name}" of type webhook has no url`, 'url: https://... (may reference ${VAR})', 'required', l.ptr);
    if (type === 'command' && s.command === undefined) err(at(l, '/type'), `sink "${name}" of type command has no command`, 'command: [argv...]', 'required', l.ptr);
    if (type === 'provider') {
      if (s.provider === undefined) err(at(l, '/type'), `sink "${name}" of type provider names no provider`, `provider: ${providerNames()}`, 'required', l.ptr);
      else if (!providerItems.has(s.provider)) err(at(l, '/provider'), `sink "${name}" uses unknown provider "${s.provider}"`, providerNames(), 'unknown-reference', `${l.ptr}/provider`);
    }
    sinks.push(s);
  }

  // ---- alerts
  const alerts: AlertRuleSpec[] = [];
  const sinkChoices = (): string => `one of the sinks: ${[...new Set([...BUILTIN_SINKS, ...sinkByName.keys()])].sort().join(', ')}`;
  for (const l of lists.alerts) {
    const v = l.v;
    const name = str(v.name);
    const notify = Array.isArray(v.notify) ? v.notify : undefined;
    notify?.forEach((n, i) => {
      if (typeof n === 'string' && !sinkByName.has(n) && !(BUILTIN_SINKS as readonly string[]).includes(n)) {
        err(at(l, `/notify/${i}`), `alert "${name ?? '?'}" notifies unknown sink "${n}"`, sinkChoices(), 'unknown-reference', `${l.ptr}/notify/${i}`);
      }
    });
    if (l.bad || name === undefined) continue;
    const rule: AlertRuleSpec = {
      name,
      when: str(v.when) ?? '',
      severity: (str(v.severity) ?? 'warning') as Severity,
      notify: notify ? notify.filter((x): x is string => typeof x === 'string') : ['log'],
      pos: at(l),
    };
    if (typeof v.when === 'string') rule.whenPos = scalarStart(l.src, at(l, '/when'));
    alerts.push(rule);
  }

  // ---- policies: paths relative to the spec folder; they must exist (a local check, still offline)
  // and lie inside the fleet's repository, unless the operator allows others: a spec from a pull
  // request must not make plan read /etc/shadow or another tenant's files.
  const policies: string[] = [];
  const root = policyRoot(input.dir);
  for (const p of policyItems) {
    const abs = isAbsolute(p.value) ? p.value : resolvePath(input.dir, p.value);
    if (!existsSync(abs)) err(positionOf(p.src, p.ptr), `policy file not found: ${p.value}`, 'an existing policy file (relative paths start at the spec folder)', 'policy-file', p.ptr);
    else if (!input.allowExternalPolicies && !isInside(root.dir, realPath(abs))) {
      err(positionOf(p.src, p.ptr), `policy file ${p.value} is outside the fleet's ${root.git ? 'repository' : 'folder'} (${root.dir})`, `a policy file inside ${root.dir}; an operator can allow others with --allow-external-policies`, 'policy-file', p.ptr);
    }
    policies.push(abs);
  }

  // ---- budget
  let budgetPerHour: number | undefined;
  const budget = singles.get('budgetPerHour');
  if (budget && !budget.bad) {
    budgetPerHour = parseMoney(budget.value);
    if (budgetPerHour === undefined) err(at(budget), `budgetPerHour is not an amount of money: ${JSON.stringify(budget.value)}`, 'USD per hour', 'money', '/budgetPerHour');
  }

  const fleet: Fleet = {
    apiVersion: 'spotfleet.dev/v1',
    name: fleetName,
    labels: meta ? strMap(meta.v.labels) : {},
    source: input.source,
    dir: input.dir,
    files: input.sources.map((s) => s.abs),
    providers,
    pools,
    workloads,
    defaults: { thresholds },
    alerts,
    sinks,
    policies,
  };
  if (budgetPerHour !== undefined) fleet.budgetPerHour = budgetPerHour;
  if (defaultCheckpoint && defaultsOk) {
    const dc = defaultCheckpoint;
    const cp: CheckpointContract = {
      path: str(dc.path) ?? '',
      signal: str(dc.signal) ?? DEFAULT_CHECKPOINT.signal,
      stopGraceMs: parseDuration(str(dc.stopGrace) ?? DEFAULT_CHECKPOINT.stopGrace) ?? (parseDuration(DEFAULT_CHECKPOINT.stopGrace) as number),
      resumeEnv: str(dc.resumeEnv) ?? DEFAULT_CHECKPOINT.resumeEnv,
    };
    const ma = typeof dc.maxAge === 'string' ? parseDuration(dc.maxAge) : undefined;
    if (ma !== undefined) cp.maxAgeMs = ma;
    if (typeof dc.marker === 'string') cp.marker = dc.marker;
    if (typeof dc.minSize === 'number') cp.minSizeBytes = dc.minSize;
    if (typeof dc.shared === 'boolean') cp.shared = dc.shared;
    if (typeof dc.sizeGB === 'number') cp.sizeGB = dc.sizeGB;
    const verify = argv(dc.verify);
    if (verify) cp.verify = verify;
    if (typeof dc.keep === 'number') cp.keep = dc.keep;
    fleet.defaults.checkpoint = cp;
    if (typeof dc.stopGrace === 'string') duration({ ...defaultsLoc, ptr: `${defaultsLoc.ptr}/checkpoint`, v: dc }, '/stopGrace');
  }
  return { fleet, errors, warnings, providerItems, poolItems: poolByName };
}

/** Where a one-line scalar's text starts: after its opening quote when it is quoted. */
function scalarStart(src: SpecFile, pos: SourcePos): SourcePos {
  let start = 0;
  for (let line = 1; line < pos.line; line++) {
    const nl = src.text.indexOf('\n', start);
    if (nl === -1) return pos;
    start = nl + 1;
  }
  const ch = src.text.charAt(start + pos.col - 1);
  return ch === '"' || ch === "'" ? { ...pos, col: pos.col + 1 } : pos;
}

/** The fleet's repository: the git work tree the spec folder is in, else the spec folder itself. */
export function policyRoot(specDir: string): { dir: string; git: boolean } {
  const start = realPath(specDir);
  for (let d = start; ; d = dirname(d)) {
    if (existsSync(join(d, '.git'))) return { dir: d, git: true };
    if (dirname(d) === d) return { dir: start, git: false };
  }
}

function realPath(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return resolvePath(p);
  }
}

/** True when `p` is `dir` or below it (both absolute, symlinks resolved). */
function isInside(dir: string, p: string): boolean {
  const rel = relative(dir, p);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
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
