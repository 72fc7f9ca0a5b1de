// Safe CEL for policies and alerts (through @marcbachmann/cel-js, never eval). Expressions are
// compiled once against a typed environment, so an unknown variable or field, a wrong type or a
// non-boolean result is a load-time error with file:line:col. They cannot run code (CEL has no
// statements or I/O) nor run long: the source is capped in length, the parser caps AST size and
// nesting depth, we reject nested comprehensions beyond two levels and regular expressions (JS
// regexes backtrack: `matches` could hang), and every list/map the activation carries is capped.
import { Environment, type ASTNode, type ParseResult } from '@marcbachmann/cel-js';
import type { SourcePos, SpecProblem } from '../core/errors.js';

/** Longest accepted expression, characters. */
export const MAX_EXPRESSION_LENGTH = 1000;
/** Largest AST accepted (nodes) and deepest nesting. */
export const CEL_LIMITS = { maxAstNodes: 256, maxDepth: 24, maxListElements: 64, maxMapEntries: 64, maxCallArguments: 8 } as const;
/** Comprehensions (all/exists/map/filter) nested deeper than this are rejected. */
export const MAX_COMPREHENSION_NESTING = 2;
/** Lists and maps put into an activation are cut to this many entries. */
export const MAX_ACTIVATION_ENTRIES = 64;

const COMPREHENSIONS = new Set(['all', 'exists', 'exists_one', 'map', 'filter']);
const FORBIDDEN_CALLS = new Map([['matches', 'regular expressions are not allowed (they can backtrack without bound); use startsWith, endsWith or contains']]);

/** A compiled expression with where it came from. */
export interface CelProgram {
  source: string;
  pos: SourcePos;
  run: ParseResult;
  /** Top-level identifiers the expression reads (for scoping alert conditions). */
  identifiers: ReadonlySet<string>;
}

/** Builds a typed environment; `declare` registers the variables. */
export function createCelEnvironment(declare: (env: Environment) => Environment): Environment {
  return declare(new Environment({ unlistedVariablesAreDyn: false, homogeneousAggregateLiterals: false, limits: { ...CEL_LIMITS } }));
}

/** Maps an offset inside an expression to the file position, given where the expression starts. */
export type OffsetMapper = (offset: number) => SourcePos;

/**
 * Compiles one boolean expression. Returns the program, or a problem positioned at the expression
 * (plus the offset the CEL library reports, when it reports one).
 */
export function compileCel(env: Environment, source: string, at: OffsetMapper, what: string): CelProgram | SpecProblem {
  const problem = (message: string, offset: number, expected?: string): SpecProblem => {
    const p: SpecProblem = { ...at(offset), severity: 'error', message: `${what}: ${message}`, rule: 'policy-expression' };
    if (expected !== undefined) p.expected = expected;
    return p;
  };
  if (typeof source !== 'string' || source.trim() === '') return problem('empty expression', 0, 'a CEL expression');
  if (source.length > MAX_EXPRESSION_LENGTH) return problem(`expression is ${source.length} characters long`, 0, `at most ${MAX_EXPRESSION_LENGTH}`);
  let run: ParseResult;
  try {
    run = env.parse(source);
  } catch (e) {
    return problem(celMessage(e), celOffset(e));
  }
  const identifiers = new Set<string>();
  const bad = inspectAst(run.ast, 0, identifiers);
  if (bad) return problem(bad.message, bad.offset);
  let check;
  try {
    check = run.check();
  } catch (e) {
    return problem(celMessage(e), celOffset(e));
  }
  if (!check.valid) return problem(celMessage(check.error), celOffset(check.error));
  if (check.type !== 'bool' && check.type !== 'dyn') return problem(`evaluates to ${check.type ?? 'unknown'}`, 0, 'a boolean expression');
  return { source, pos: at(0), run, identifiers };
}

/** Walks the AST once: comprehension nesting, forbidden calls, identifiers read. */
function inspectAst(node: ASTNode, nesting: number, ids: Set<string>): { message: string; offset: number } | undefined {
  const n = node as { op: string; args: unknown; pos: number };
  if (n.op === 'id') {
    ids.add(n.args as string);
    return undefined;
  }
  if (n.op === 'value') return undefined;
  let next = nesting;
  if (n.op === 'call' || n.op === 'rcall') {
    const name = (n.args as unknown[])[0] as string;
    const why = FORBIDDEN_CALLS.get(name);
    if (why) return { message: `${name}(): ${why}`, offset: n.pos };
    if (n.op === 'rcall' && COMPREHENSIONS.has(name)) {
      next = nesting + 1;
      if (next > MAX_COMPREHENSION_NESTING) return { message: `comprehensions (${name}) nested ${next} deep`, offset: n.pos };
    }
  }
  const walk = (v: unknown): { message: string; offset: number } | undefined => {
    if (Array.isArray(v)) {
      for (const x of v) {
        const r = walk(x);
        if (r) return r;
      }
      return undefined;
    }
    if (v && typeof v === 'object' && 'op' in v) return inspectAst(v as ASTNode, next, ids);
    return undefined;
  };
  return walk(n.args);
}

function celMessage(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  // The library appends a source excerpt with a caret; our position replaces it.
  return (msg.split('\n')[0] ?? msg).trim();
}

function celOffset(e: unknown): number {
  const x = e as { range?: { start?: number }; node?: { pos?: number } } | undefined;
  const v = x?.range?.start ?? x?.node?.pos;
  return typeof v === 'number' && v >= 0 ? v : 0;
}

/**
 * Runs a compiled boolean program. Never throws: an evaluation error (a missing map key, a type
 * surprise) is returned as `error`, and the caller decides (policies fail closed).
 */
export function runCel(p: CelProgram, activation: Record<string, unknown>): { value: boolean; error?: string } {
  try {
    const v: unknown = p.run(activation);
    if (typeof v !== 'boolean') return { value: false, error: `expected a boolean, got ${typeof v}` };
    return { value: v };
  } catch (e) {
    return { value: false, error: celMessage(e) };
  }
}

/** Caps a string map for an activation (sorted keys, at most MAX_ACTIVATION_ENTRIES). */
export function capMap(m: Record<string, string> | undefined): Record<string, string> {
  if (!m) return {};
  const keys = Object.keys(m);
  if (keys.length <= MAX_ACTIVATION_ENTRIES) return m;
  const out: Record<string, string> = {};
  for (const k of keys.sort().slice(0, MAX_ACTIVATION_ENTRIES)) out[k] = m[k] as string;
  return out;
}

/** Caps a list for an activation. */
export function capList<T>(l: readonly T[] | undefined): T[] {
  if (!l) return [];
  return l.length <= MAX_ACTIVATION_ENTRIES ? (l as T[]) : l.slice(0, MAX_ACTIVATION_ENTRIES);
}
