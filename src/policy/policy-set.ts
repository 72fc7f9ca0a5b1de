// Policy files: YAML `kind: PolicySet` documents whose rules are CEL expressions. Loaded and
// compiled once (`loadPolicySet`); `evaluateRules` runs them for one workload and one candidate
// placement. Every problem in every file is collected and thrown as one SpecError with
// file:line:col pointing inside the expression. The variables an expression sees are documented
// in policies/README.md and declared (typed) below, so a typo is a load error, not a silent false.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { Node as YamlNode, Scalar } from 'yaml';
import type { Environment } from '@marcbachmann/cel-js';
import { SpecError, type SourcePos, type SpecProblem } from '../core/errors.js';
import { COST_NUMBER_KEYS } from './cost.js';
import { compileCel, createCelEnvironment, runCel, type CelProgram, type OffsetMapper } from './cel.js';
import type { Violation } from './types.js';

export type Enforcement = 'advisory' | 'mandatory';

/**
 * What a rule reads: one workload's candidate placement (`workload`, the default), or the whole
 * plan as its JSON contract (`plan`: the variable `input` is what `plan --json` prints, so a rule
 * reads `input.resource_changes[].change.actions` as a Terraform policy would).
 */
export type PolicyScope = 'workload' | 'plan';

export interface CompiledRule {
  name: string;
  scope: PolicyScope;
  description: string;
  enforcement: Enforcement;
  message: string;
  /** Which workloads the rule applies to (reads `workload` only); absent = all. */
  match?: CelProgram;
  /** Violated when true. */
  deny?: CelProgram;
  /** Violated when false. */
  require?: CelProgram;
  file: string;
  pos: SourcePos;
}

/** A compiled set of rules from one or more files. Immutable; share it across decisions. */
export interface PolicySet {
  readonly kind: 'PolicySet';
  readonly files: readonly string[];
  /** Rules of scope `workload`, run by decideWorkload for each candidate. */
  readonly rules: readonly CompiledRule[];
  /** Rules of scope `plan`, run once on the plan JSON (evaluatePlanRules). */
  readonly planRules: readonly CompiledRule[];
}

/** The default policy set shipped with spotfleet. */
export const DEFAULT_POLICY_FILE = defaultPolicyFile();

function defaultPolicyFile(): string {
  // src/policy/ when run from source, dist/src/policy/ when built; the package ships policies/ at its root.
  const fromSource = fileURLToPath(new URL('../../policies/default.yaml', import.meta.url));
  return existsSync(fromSource) ? fromSource : fileURLToPath(new URL('../../../policies/default.yaml', import.meta.url));
}

const WORKLOAD_SCHEMA = {
  name: 'string', class: 'string', gpus: 'int', gpuModel: 'string', capacity: 'string',
  labels: 'map<string, string>', pools: 'list<string>', hasCheckpoint: 'bool',
  expectedDurationHours: 'double', remainingHours: 'double', hasDeadline: 'bool', deadline: 'string',
  hoursToDeadline: 'double', critical: 'bool', fallbackTo: 'string', revertToSpot: 'bool',
} as const;
const TARGET_SCHEMA = {
  pool: 'string', provider: 'string', capacity: 'string', zone: 'string', gpuModel: 'string',
  pricePerGpuHour: 'double', pricePerHour: 'double', maxPricePerHour: 'double', hasMaxPrice: 'bool',
  preemptionRatePerHour: 'double', existingNode: 'bool', warm: 'bool',
} as const;
const CURRENT_SCHEMA = {
  running: 'bool', evicted: 'bool', capacity: 'string', pool: 'string', zone: 'string', node: 'string',
  pricePerGpuHour: 'double',
} as const;
/** Keys of the `numbers` variable: every CostNumbers field plus the thresholds. */
export const POLICY_NUMBER_KEYS: readonly string[] = [...COST_NUMBER_KEYS, 'minSavingsPerHour', 'minRuntimeHours'];

export interface PolicyWorkloadFacts {
  name: string; class: string; gpus: bigint; gpuModel: string; capacity: string;
  labels: Record<string, string>; pools: string[]; hasCheckpoint: boolean;
  expectedDurationHours: number; remainingHours: number; hasDeadline: boolean; deadline: string;
  hoursToDeadline: number; critical: boolean; fallbackTo: string; revertToSpot: boolean;
}
export interface PolicyTargetFacts {
  pool: string; provider: string; capacity: string; zone: string; gpuModel: string;
  pricePerGpuHour: number; pricePerHour: number; maxPricePerHour: number; hasMaxPrice: boolean;
  preemptionRatePerHour: number; existingNode: boolean; warm: boolean;
}
export interface PolicyCurrentFacts {
  running: boolean; evicted: boolean; capacity: string; pool: string; zone: string; node: string; pricePerGpuHour: number;
}
export interface PolicyActivation {
  workload: PolicyWorkloadFacts;
  target: PolicyTargetFacts;
  current: PolicyCurrentFacts;
  action: string;
  numbers: Record<string, number>;
}

let matchEnv: Environment | undefined;
let ruleEnv: Environment | undefined;
let planEnv: Environment | undefined;

/** The environment of `scope: plan` rules: `input`, the plan JSON document (docs/json.md). */
function planEnvironment(): Environment {
  planEnv ??= createCelEnvironment((e) => e.registerVariable('input', 'dyn'));
  return planEnv;
}

function envs(): { match: Environment; rule: Environment } {
  if (!matchEnv || !ruleEnv) {
    matchEnv = createCelEnvironment((e) => e.registerVariable({ name: 'workload', schema: WORKLOAD_SCHEMA }));
    const numbers = Object.fromEntries(POLICY_NUMBER_KEYS.map((k) => [k, 'double']));
    ruleEnv = createCelEnvironment((e) =>
      e
        .registerVariable({ name: 'workload', schema: WORKLOAD_SCHEMA })
        .registerVariable({ name: 'target', schema: TARGET_SCHEMA })
        .registerVariable({ name: 'current', schema: CURRENT_SCHEMA })
        .registerVariable('action', 'string')
        .registerVariable({ name: 'numbers', schema: numbers }),
    );
  }
  return { match: matchEnv, rule: ruleEnv };
}

const RULE_KEYS = new Set(['name', 'description', 'enforcement', 'match', 'deny', 'require', 'message']);
const TOP_KEYS = new Set(['apiVersion', 'kind', 'metadata', 'scope', 'rules']);

/**
 * Loads and compiles policy files. Throws SpecError listing every problem (file:line:col).
 * @example const set = loadPolicySet(['policies/default.yaml']); decideWorkload(input, { ...ctx, policies: set })
 */
export function loadPolicySet(paths: readonly string[]): PolicySet {
  const problems: SpecProblem[] = [];
  const rules: CompiledRule[] = [];
  const planRules: CompiledRule[] = [];
  const seen = new Map<string, string>();
  for (const file of paths) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      problems.push({ file, line: 1, col: 1, severity: 'error', message: `cannot read policy file: ${(e as Error).message}`, rule: 'policy-file' });
      continue;
    }
    for (const r of parsePolicyText(text, file, problems)) {
      const prev = seen.get(r.name);
      if (prev !== undefined) {
        problems.push({ ...r.pos, severity: 'error', message: `rule "${r.name}" is defined twice (first in ${prev})`, expected: 'unique rule names', rule: 'policy-file' });
        continue;
      }
      seen.set(r.name, `${r.file}:${r.pos.line}`);
      (r.scope === 'plan' ? planRules : rules).push(r);
    }
  }
  if (problems.some((p) => p.severity === 'error')) throw new SpecError(problems);
  return { kind: 'PolicySet', files: [...paths], rules, planRules };
}

/** Parses and compiles one policy document; problems are appended. Exported for tests and `validate`. */
export function parsePolicyText(text: string, file: string, problems: SpecProblem[]): CompiledRule[] {
  // yaml loads here, with the first policy file: a fleet without policies never needs it.
  const { LineCounter, parseDocument, isMap, isScalar, isSeq } = createRequire(import.meta.url)('yaml') as typeof import('yaml');
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const posAt = (offset: number): SourcePos => {
    const p = lc.linePos(offset);
    return { file, line: Math.max(1, p.line), col: Math.max(1, p.col) };
  };
  const nodePos = (n: YamlNode | null | undefined, fallback = 0): SourcePos => posAt(n?.range?.[0] ?? fallback);
  const err = (pos: SourcePos, message: string, expected?: string): void => {
    const p: SpecProblem = { ...pos, severity: 'error', message, rule: 'policy-file' };
    if (expected !== undefined) p.expected = expected;
    problems.push(p);
  };
  for (const e of doc.errors) err(posAt(e.pos[0]), e.message.split('\n')[0] ?? e.message);
  if (doc.errors.length > 0) return [];
  const root = doc.contents;
  if (!isMap(root)) {
    err(nodePos(root), 'a policy file must be a mapping', '`kind: PolicySet` with `rules:`');
    return [];
  }
  for (const pair of root.items) {
    const k = isScalar(pair.key) ? String(pair.key.value) : '';
    if (!TOP_KEYS.has(k)) err(nodePos(pair.key), `unknown key "${k}"`, `one of ${[...TOP_KEYS].join(', ')}`);
  }
  const kind = root.get('kind', true) as YamlNode | undefined;
  if (!isScalar(kind) || kind.value !== 'PolicySet') err(nodePos(kind ?? root), 'not a policy set', 'kind: PolicySet');
  const api = root.get('apiVersion', true) as YamlNode | undefined;
  if (api !== undefined && (!isScalar(api) || api.value !== 'spotfleet.dev/v1')) err(nodePos(api), 'unsupported apiVersion', 'spotfleet.dev/v1');
  const scopeNode = root.get('scope', true) as YamlNode | undefined;
  let scope: PolicyScope = 'workload';
  if (scopeNode !== undefined) {
    if (isScalar(scopeNode) && (scopeNode.value === 'workload' || scopeNode.value === 'plan')) scope = scopeNode.value;
    else err(nodePos(scopeNode), 'unknown scope', 'workload (each placement decision) or plan (the plan JSON, as `input`)');
  }
  const list = root.get('rules', true) as YamlNode | undefined;
  if (!isSeq(list)) {
    err(nodePos(list ?? root), '`rules` must be a list', 'a list of rules');
    return [];
  }
  const { match: mEnv, rule: rEnv } = envs();
  const out: CompiledRule[] = [];
  for (const item of list.items) {
    const at = nodePos(item as YamlNode);
    if (!isMap(item)) {
      err(at, 'a rule must be a mapping', 'name, enforcement, match, deny or require, message');
      continue;
    }
    let ok = true;
    for (const pair of item.items) {
      const k = isScalar(pair.key) ? String(pair.key.value) : '';
      if (!RULE_KEYS.has(k)) {
        err(nodePos(pair.key as YamlNode), `unknown key "${k}" in a rule`, `one of ${[...RULE_KEYS].join(', ')}`);
        ok = false;
      }
    }
    const str = (key: string, required: boolean): { value: string; node: Scalar } | undefined => {
      const n = item.get(key, true) as YamlNode | undefined;
      if (n === undefined) {
        if (required) {
          err(at, `rule is missing "${key}"`);
          ok = false;
        }
        return undefined;
      }
      if (!isScalar(n) || typeof n.value !== 'string') {
        err(nodePos(n), `"${key}" must be a string`, key === 'match' || key === 'deny' || key === 'require' ? 'a CEL expression in a string' : 'a string');
        ok = false;
        return undefined;
      }
      return { value: n.value, node: n };
    };
    const name = str('name', true);
    const description = str('description', false);
    const enforcement = str('enforcement', false);
    const message = str('message', true);
    const match = str('match', false);
    const deny = str('deny', false);
    const require = str('require', false);
    if (name && !/^[a-z0-9][a-z0-9-]*$/.test(name.value)) {
      err(nodePos(name.node), `rule name "${name.value}" is not valid`, 'lowercase letters, digits and dashes');
      ok = false;
    }
    if (enforcement && enforcement.value !== 'advisory' && enforcement.value !== 'mandatory') {
      err(nodePos(enforcement.node), `unknown enforcement "${enforcement.value}"`, 'advisory or mandatory');
      ok = false;
    }
    if ((deny === undefined) === (require === undefined)) {
      err(at, 'a rule needs exactly one of "deny" and "require"');
      ok = false;
    }
    const label = name?.value ?? 'rule';
    const compileAt = (s: { value: string; node: Scalar } | undefined, env: Environment, key: string): CelProgram | undefined => {
      if (!s) return undefined;
      const r = compileCel(env, s.value, scalarOffsetMapper(s.node, text, posAt), `rule "${label}" ${key}`);
      if ('run' in r) return r;
      if (key === 'match' && /Unknown variable/.test(r.message)) r.message += ' (match reads only `workload`)';
      problems.push(r);
      ok = false;
      return undefined;
    };
    if (scope === 'plan' && match) {
      err(nodePos(match.node), '`match` is for workload rules', 'a plan rule reads `input` (the plan JSON) in deny or require');
      ok = false;
    }
    const env = scope === 'plan' ? planEnvironment() : rEnv;
    const m = scope === 'plan' ? undefined : compileAt(match, mEnv, 'match');
    const d = compileAt(deny, env, 'deny');
    const q = compileAt(require, env, 'require');
    if (!ok || !name || !message) continue;
    const rule: CompiledRule = {
      name: name.value,
      scope,
      description: description?.value ?? '',
      enforcement: (enforcement?.value as Enforcement | undefined) ?? 'advisory',
      message: message.value,
      file,
      pos: at,
    };
    if (m) rule.match = m;
    if (d) rule.deny = d;
    if (q) rule.require = q;
    out.push(rule);
  }
  return out;
}

/**
 * Where offset `i` of a scalar's string value stands in the file. Exact for plain and quoted
 * one-line scalars (escapes aside) and for `|` block literals; other multi-line forms search for
 * the text near the offset, falling back to the scalar's start.
 */
export function scalarOffsetMapper(node: Scalar, text: string, posAt: (offset: number) => SourcePos): OffsetMapper {
  const start = node.range?.[0] ?? 0;
  const end = node.range?.[1] ?? start;
  const value = String(node.value);
  const type = node.type;
  return (i: number) => {
    const idx = Math.max(0, Math.min(i, value.length));
    if ((type === 'PLAIN' || type === undefined) && !value.includes('\n')) return posAt(start + idx);
    if ((type === 'QUOTE_DOUBLE' || type === 'QUOTE_SINGLE') && !text.slice(start, end).includes('\n')) return posAt(start + 1 + idx);
    if (type === 'BLOCK_LITERAL') {
      const before = value.slice(0, idx);
      const lineNo = before.split('\n').length - 1;
      const col = idx - (before.lastIndexOf('\n') + 1);
      // Content starts on the line after the `|` header; its indentation is that of its first line.
      const body = text.indexOf('\n', start) + 1;
      let lineStart = body;
      for (let k = 0; k < lineNo; k++) lineStart = text.indexOf('\n', lineStart) + 1;
      const indent = /^[ ]*/.exec(text.slice(body))?.[0].length ?? 0;
      return posAt(lineStart + indent + col);
    }
    const probe = value.slice(idx, idx + 12);
    const hit = probe.length > 0 ? text.slice(start, end).indexOf(probe) : -1;
    return posAt(hit >= 0 ? start + hit : start);
  };
}

/** Rules whose `match` accepts this workload (match errors count as a match: fail closed). */
export function matchingRules(set: PolicySet, workload: PolicyWorkloadFacts): CompiledRule[] {
  const out: CompiledRule[] = [];
  const act = { workload };
  for (const r of set.rules) {
    if (!r.match) {
      out.push(r);
      continue;
    }
    const res = runCel(r.match, act);
    if (res.value || res.error !== undefined) out.push(r);
  }
  return out;
}

/**
 * Evaluates rules for one candidate. A rule is violated when `deny` is true or `require` false;
 * an evaluation error also counts as a violation (fail closed), with the error in the message.
 */
export function evaluateRules(rules: readonly CompiledRule[], act: PolicyActivation, only?: Enforcement): Violation[] {
  const out: Violation[] = [];
  for (const r of rules) {
    if (only && r.enforcement !== only) continue;
    const prog = (r.deny ?? r.require) as CelProgram;
    const res = runCel(prog, act as unknown as Record<string, unknown>);
    const violated = res.error !== undefined ? true : r.deny ? res.value : !res.value;
    if (violated) {
      out.push({ policy: r.name, level: r.enforcement, message: res.error !== undefined ? `${r.message} (policy could not be evaluated: ${res.error})` : r.message });
    }
  }
  return out;
}

/**
 * Runs the `scope: plan` rules on the plan's JSON document (what `plan --json` prints). A rule is
 * violated when `deny` is true or `require` false; an evaluation error counts as a violation
 * (fail closed). The whole document is given, uncapped: a policy that missed a resource change
 * because a list was cut would pass a plan it should stop.
 */
export function evaluatePlanRules(set: PolicySet, planJson: Record<string, unknown>): Violation[] {
  const out: Violation[] = [];
  for (const r of set.planRules) {
    const prog = (r.deny ?? r.require) as CelProgram;
    const res = runCel(prog, { input: planJson });
    const violated = res.error !== undefined ? true : r.deny ? res.value : !res.value;
    if (violated) out.push({ policy: r.name, level: r.enforcement, message: res.error !== undefined ? `${r.message} (policy could not be evaluated: ${res.error})` : r.message });
  }
  return out;
}
