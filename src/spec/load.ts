// Loads a fleet: a file, or a folder of *.yaml/*.yml files merged into one. YAML with source
// positions → JSON Schema (every error) → semantic rules → each provider's own config schema.
// Offline: loading a provider's factory module is not a provider call, and an external provider's
// module is loaded only when the lock file pins it (providers/lock.ts). Throws SpecError with every
// problem found; warnings come back with the fleet.
import { readdirSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { SpecError, SpotfleetError, type SourcePos, type SpecProblem } from '../core/errors.js';
import { loadProviderFactory, poolsOf, validateProviderConfig } from '../providers/registry.js';
import type { ProviderFactory } from '../providers/sdk.js';
import type { ResolveOutput } from './resolve.js';
import { compileAlertRules } from '../policy/alerts.js';
import { loadPolicySet, type PolicySet } from '../policy/policy-set.js';
import { resolveFleet } from './resolve.js';
import { checkSchema } from './schema.js';
import { positionOf, pointerSegments, readSpecFile, type SpecFile } from './source.js';
import type { LoadResult, SkippedFile } from './types.js';

export interface LoadFleetOptions {
  /** Current time in ms, for "deadline in the past". Default: Date.now(). */
  now?: number;
  /** Load each provider's factory and check its `config` against the provider's schema. Default true. */
  checkProviders?: boolean;
  /** How a file is named in problems. Default: relative to `cwd` when under it, else absolute. */
  displayPath?: (abs: string) => string;
  /** Folder paths are shown relative to. Default: process.cwd(). */
  cwd?: string;
  /**
   * YAML parser. `auto` (default): the fast path for plain files, the full `yaml` Document for
   * anything else; both give the same fleet and problems. `full`: always the full Document.
   */
  parser?: 'auto' | 'full';
  /**
   * Accept `policies:` files outside the fleet's repository (its git work tree, or the spec folder
   * outside git). Default: SPOTFLEET_ALLOW_EXTERNAL_POLICIES=1, which --allow-external-policies sets.
   */
  allowExternalPolicies?: boolean;
  /**
   * Compute each workload's specHash, which plan and apply compare with state to find workloads
   * that need a restart. Default true. `validate` sets it false: it never reads them, and on a
   * 10,000-workload fleet they were a fifth of its time. With false every specHash is ''.
   */
  specHashes?: boolean;
}

/** Shows `abs` relative to `cwd` when it lies under it. */
export function displayPathFrom(cwd: string): (abs: string) => string {
  return (abs) => {
    const rel = relative(cwd, abs);
    return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : abs;
  };
}

/** The spec files of PATH: the file itself, or the folder's top-level *.yaml/*.yml files, sorted. */
export function listSpecFiles(abs: string): { files: string[]; dir: string; problem?: string } {
  let st;
  try {
    st = statSync(abs);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { files: [], dir: dirname(abs), problem: code === 'ENOENT' ? 'no such file or folder' : `cannot read: ${code ?? String(e)}` };
  }
  if (!st.isDirectory()) return { files: [abs], dir: dirname(abs) };
  let names: string[];
  try {
    names = readdirSync(abs);
  } catch (e) {
    return { files: [], dir: abs, problem: `cannot read folder: ${(e as NodeJS.ErrnoException).code ?? String(e)}` };
  }
  const files = names
    .filter((n) => (n.endsWith('.yaml') || n.endsWith('.yml')) && !n.startsWith('.'))
    .sort()
    .map((n) => join(abs, n))
    .filter((p) => {
      try {
        return statSync(p).isFile();
      } catch {
        return false;
      }
    });
  return { files, dir: abs, ...(files.length === 0 ? { problem: 'folder holds no *.yaml or *.yml files' } : {}) };
}

function sortProblems(ps: SpecProblem[], fileOrder: Map<string, number>): SpecProblem[] {
  return ps.sort((a, b) => {
    const fa = fileOrder.get(a.file) ?? 0;
    const fb = fileOrder.get(b.file) ?? 0;
    if (fa !== fb) return fa - fb;
    if (a.file !== b.file) return a.file < b.file ? -1 : 1;
    return a.line - b.line || a.col - b.col || (a.message < b.message ? -1 : a.message > b.message ? 1 : 0);
  });
}

/**
 * Loads and validates a fleet from a file or a folder of YAML files.
 * @example
 * const { fleet, warnings, policies } = await loadFleet('examples/quickstart');
 * @throws SpecError with every problem (file:line:col, message, expected) when the spec is invalid.
 */
export async function loadFleet(path: string, opts: LoadFleetOptions = {}): Promise<LoadResult> {
  const cwd = opts.cwd ?? process.cwd();
  const display = opts.displayPath ?? displayPathFrom(cwd);
  const abs = resolve(cwd, path);
  const listed = listSpecFiles(abs);
  if (listed.problem !== undefined) {
    throw new SpecError([{ file: display(abs), line: 1, col: 1, severity: 'error', message: listed.problem, expected: 'a fleet file (*.yaml) or a folder of them', rule: 'io' }]);
  }
  const problems: SpecProblem[] = [];
  const sources: SpecFile[] = [];
  const schemaBad = new Map<SpecFile, Set<string>>();
  const fileOrder = new Map<string, number>();
  // In a folder only `kind: Fleet` documents make the fleet: policy sets beside them are loaded as
  // its policies, and other YAML (docker-compose.yaml, CI config) is skipped, and said so.
  const isFolder = listed.dir === abs;
  const skipped: SkippedFile[] = [];
  const policiesBeside: string[] = [];
  for (const file of listed.files) {
    const shown = display(file);
    fileOrder.set(shown, fileOrder.size);
    const r = readSpecFile(file, shown, { parser: opts.parser ?? 'auto' });
    problems.push(...r.problems);
    if (!r.source) continue;
    if (isFolder) {
      const data = r.source.data;
      const doc = data !== null && typeof data === 'object' && !Array.isArray(data) ? (data as Record<string, unknown>) : {};
      if (doc.kind === 'PolicySet') {
        policiesBeside.push(file);
        skipped.push({ file: shown, reason: 'kind PolicySet: loaded as a policy set of this fleet' });
        continue;
      }
      if (doc.kind !== 'Fleet' && !(typeof doc.apiVersion === 'string' && doc.apiVersion.startsWith('spotfleet.dev/'))) {
        skipped.push({ file: shown, reason: 'not a spotfleet document (no apiVersion spotfleet.dev/v1 with kind Fleet or PolicySet)' });
        continue;
      }
    }
    sources.push(r.source);
    // Non-finite numbers (1e400, .inf, .nan) are refused where they are written, provider configs
    // included; a schema's `type: number` lets Infinity through, and plan then fails far away.
    const schemaProblems = [...nonFiniteNumbers(r.source), ...checkSchema(r.source)];
    problems.push(...schemaProblems);
    const bad = new Set<string>();
    for (const p of schemaProblems) {
      const segs = pointerSegments(p.path ?? '').map((s) => s.replace(/~/g, '~0').replace(/\//g, '~1'));
      if (segs.length >= 1) bad.add(`/${segs[0]}`);
      if (segs.length >= 2) bad.add(`/${segs[0]}/${segs[1]}`);
    }
    schemaBad.set(r.source, bad);
  }
  const warnings: SpecProblem[] = [];
  if (sources.length === 0 && problems.length === 0) {
    problems.push({ file: display(abs), line: 1, col: 1, severity: 'error', message: `folder holds no kind: Fleet document (${skipped.map((x) => `${x.file}: ${x.reason}`).join('; ')})`, expected: 'a *.yaml file with apiVersion: spotfleet.dev/v1 and kind: Fleet', rule: 'io' });
  }
  if (sources.length === 0) throw new SpecError(sortProblems(problems, fileOrder));

  const allowExternalPolicies = opts.allowExternalPolicies ?? process.env.SPOTFLEET_ALLOW_EXTERNAL_POLICIES === '1';
  const out = resolveFleet({ sources, schemaBad, source: abs, dir: listed.dir, now: opts.now ?? Date.now(), allowExternalPolicies, specHashes: opts.specHashes ?? true });
  problems.push(...out.errors);
  warnings.push(...out.warnings);
  for (const p of policiesBeside) if (!out.fleet.policies.includes(p)) out.fleet.policies.push(p);
  // Every CEL expression compiles here, so `validate` catches what would otherwise fail in watch.
  problems.push(...compileAlertRules(out.fleet.alerts).problems);
  // The policy files are read and compiled here, once: every plan of this load uses this set.
  let policies: PolicySet | undefined;
  if (out.fleet.policies.length > 0 && !out.errors.some((p) => p.rule === 'policy-file')) {
    try {
      policies = loadPolicySet(out.fleet.policies);
    } catch (e) {
      if (!(e instanceof SpecError)) throw e;
      problems.push(...e.problems.map((p) => ({ ...p, file: isAbsolute(p.file) ? display(p.file) : p.file })));
    }
  }

  if (opts.checkProviders !== false) {
    for (const p of [...out.fleet.providers].sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const loc = out.providerItems.get(p.name);
      if (!loc || loc.bad || p.type === '') continue;
      const typePos = positionOf(loc.src, p.package !== undefined ? `${loc.ptr}/package` : `${loc.ptr}/type`);
      let factory;
      try {
        factory = await loadProviderFactory(p.type, p.package, listed.dir);
      } catch (e) {
        problems.push(providerLoadProblem(e, p.name, p.type, p.package, typePos));
        continue;
      }
      try {
        const config = p.config;
        const configProblems = validateProviderConfig(factory, p.name, config, (ptr, which) => positionOf(loc.src, `${loc.ptr}/config${ptr}`, which ?? 'value'));
        problems.push(...configProblems);
        if (configProblems.length === 0) {
          for (const pp of poolProblems(factory, p.name, p.type, config, out)) (pp.severity === 'warning' ? warnings : problems).push(pp);
        }
      } catch (e) {
        problems.push({ ...typePos, severity: 'error', message: `provider "${p.name}" (${p.type}): its config schema could not be used: ${e instanceof Error ? e.message : String(e)}`, expected: 'a provider whose configSchema is a valid JSON Schema', rule: 'provider-config' });
      }
    }
  }

  const errors = problems.filter((p) => p.severity === 'error');
  if (errors.length > 0) throw new SpecError(sortProblems([...problems, ...warnings], fileOrder));
  return { fleet: out.fleet, warnings: sortProblems(warnings, fileOrder), skipped, ...(policies ? { policies } : {}) };
}

/** A problem at every number in the file that is not finite. */
function nonFiniteNumbers(src: SpecFile): SpecProblem[] {
  const out: SpecProblem[] = [];
  // The path is kept as segments and turned into a JSON pointer only at a problem: this walk visits
  // every node of a 10,000-workload fleet, and a pointer string per node was most of its cost.
  const path: string[] = [];
  const walk = (v: unknown): void => {
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) {
        const ptr = path.map((k) => `/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`).join('');
        out.push({ ...positionOf(src, ptr), severity: 'error', message: `${ptr.slice(1).split('/').join('.') || 'the document'} is ${Number.isNaN(v) ? 'not a number (NaN)' : 'too large: it overflows to infinity'}`, expected: 'a finite number', path: ptr, rule: 'number' });
      }
    } else if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        path.push(String(i));
        walk(v[i]);
        path.pop();
      }
    } else if (typeof v === 'object' && v !== null) {
      for (const k in v) {
        if (!Object.prototype.hasOwnProperty.call(v, k)) continue;
        path.push(k);
        walk((v as Record<string, unknown>)[k]);
        path.pop();
      }
    }
  };
  walk(src.data);
  return out;
}

/**
 * The provider's own checks of the pools that use it (ProviderFactory.checkPool), placed at the
 * pool key they are about. A provider's config defaults were filled in by the schema check.
 */
function poolProblems(factory: ProviderFactory, name: string, type: string, config: Record<string, unknown>, out: ResolveOutput): SpecProblem[] {
  if (!factory.checkPool) return [];
  const found: SpecProblem[] = [];
  for (const pool of poolsOf(out.fleet.pools, name)) {
    const loc = out.poolItems.get(pool.name);
    if (!loc || loc.bad) continue;
    for (const pr of factory.checkPool(structuredClone(config), pool)) {
      const pos = positionOf(loc.src, `${loc.ptr}${pr.path}`, pr.path === '' ? 'key' : 'value');
      const sp: SpecProblem = { ...pos, severity: pr.severity ?? 'error', message: `pool "${pool.name}" (provider "${name}", ${type}): ${pr.message}`, path: `${loc.ptr}${pr.path}`, rule: 'provider-pool' };
      if (pr.expected !== undefined) sp.expected = pr.expected;
      found.push(sp);
    }
  }
  return found;
}

function providerLoadProblem(e: unknown, name: string, type: string, pkg: string | undefined, pos: SourcePos): SpecProblem {
  if (e instanceof SpotfleetError) {
    const p: SpecProblem = { ...pos, severity: 'error', message: `provider "${name}": ${e.message}`, rule: 'provider-type' };
    const hint = e.details[0];
    p.expected = e.code === 'PROVIDER_NOT_FOUND' && !pkg ? `a built-in provider type or an npm package (${hint ?? ''})` : hint ?? 'a loadable provider';
    return p;
  }
  const why = e instanceof Error ? e.message.split('\n')[0] : String(e);
  return {
    ...pos,
    severity: 'error',
    message: `provider "${name}": ${pkg ? `package "${pkg}"` : `built-in provider "${type}"`} could not be loaded: ${why}`,
    expected: 'a provider module that loads (is this spotfleet build complete?)',
    rule: 'provider-type',
  };
}

