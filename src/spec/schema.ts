// Checks one parsed spec file against fleet.schema.json (ajv, all errors) and turns every ajv error
// into a SpecProblem at the offending node: unknown keys at the key, wrong values at the value,
// missing keys at the mapping that lacks them.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Ajv2020 } from 'ajv/dist/2020.js';
import type { ErrorObject, ValidateFunction } from 'ajv';
import type { SpecProblem } from '../core/errors.js';
import { nearestWord } from '../core/suggest.js';
import { encodeSegment, positionOf, type SpecFile } from './source.js';

let validator: ValidateFunction | undefined;
let schemaText: string | undefined;

/** File name of the validator the build precompiles next to this module (scripts/copy-assets.mjs). */
export const PRECOMPILED_VALIDATOR = 'fleet.schema.validator.cjs';

function fleetSchemaText(): string {
  schemaText ??= readFileSync(new URL('./fleet.schema.json', import.meta.url), 'utf8');
  return schemaText;
}

/** The fleet JSON Schema (draft 2020-12), as published for editors. */
export function fleetSchema(): Record<string, unknown> {
  return JSON.parse(fleetSchemaText()) as Record<string, unknown>;
}

function schemaSha256(): string {
  return createHash('sha256').update(fleetSchemaText()).digest('hex');
}

function newAjv(source: boolean): Ajv2020 {
  // ajv itself loads only here, when no precompiled validator fits (tests, a stale build): the
  // precompiled one needs just ajv's small runtime helpers, and loading ajv costs tens of ms.
  const { Ajv2020: Ajv } = createRequire(import.meta.url)('ajv/dist/2020.js') as typeof import('ajv/dist/2020.js');
  // The schema is ours and fixed: checking it against the meta-schema (test/spec/schema.test.ts
  // does) and optimising the generated code would double the compile time of every CLI run.
  return new Ajv({ allErrors: true, strict: false, verbose: true, validateSchema: false, code: { optimize: false, source } });
}

/**
 * The fleet schema's validator as a CommonJS module (ajv standalone code), tagged with the hash of
 * the schema it was made from. The build writes it next to this module: loading it costs a few
 * milliseconds, compiling the schema a few tens on every run.
 */
export async function fleetValidatorModule(): Promise<string> {
  const standalone = await import('ajv/dist/standalone/index.js');
  const ajv = newAjv(true);
  return `${standalone.default(ajv, ajv.compile(fleetSchema()))}\nmodule.exports.schemaSha256 = ${JSON.stringify(schemaSha256())};\n`;
}

/** The precompiled validator in `file` when it was made from this very schema; otherwise undefined. */
export function loadPrecompiledValidator(file: string): ValidateFunction | undefined {
  try {
    const mod = createRequire(import.meta.url)(file) as { default?: ValidateFunction; schemaSha256?: string };
    return typeof mod.default === 'function' && mod.schemaSha256 === schemaSha256() ? mod.default : undefined;
  } catch {
    return undefined;
  }
}

function getValidator(): ValidateFunction {
  validator ??= loadPrecompiledValidator(new URL(`./${PRECOMPILED_VALIDATOR}`, import.meta.url).pathname) ?? newAjv(false).compile(fleetSchema());
  return validator;
}

/** Leaf definitions whose failures read better as one message than as ajv's parts. */
const LEAF: Record<string, { message: string; expected: string }> = {
  duration: { message: 'is not a duration', expected: 'a duration such as 90s, 30m, 8h or 1h30m' },
  money: { message: 'is not an amount of money', expected: 'USD per hour: a number >= 0, or a string like "2.50", "$2.50" or "2.50/h"' },
  name: { message: 'is not a valid name', expected: "letters, digits, '-' and '_', starting with a letter or digit, at most 63 characters" },
};

function leafOf(e: ErrorObject): string | undefined {
  const m = /^#\/\$defs\/(duration|money|name)\//.exec(e.schemaPath);
  return m?.[1];
}

function typeWord(t: unknown): string {
  switch (t) {
    case 'object':
      return 'a mapping';
    case 'array':
      return 'a list';
    case 'integer':
      return 'an integer';
    case 'number':
      return 'a number';
    case 'boolean':
      return 'true or false';
    case 'string':
      return 'a string';
    default:
      return String(t);
  }
}

function kindOf(v: unknown): string {
  if (v === null || v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'number') return Number.isInteger(v) ? `the number ${v}` : `the number ${v}`;
  if (typeof v === 'boolean') return String(v);
  return `"${typeof v === 'string' ? v.slice(0, 60) : JSON.stringify(v)}"`;
}

function label(pointer: string): string {
  return pointer === '' ? 'the document' : pointer.replace(/^\//, '').replace(/\//g, '.');
}

/** Validates `src.data` against the fleet schema; returns problems (empty when valid). */
export function checkSchema(src: SpecFile): SpecProblem[] {
  const validate = getValidator();
  if (validate(src.data)) return [];
  const errors = validate.errors ?? [];
  // anyOf failures: keep the branch errors when they are deeper (an item of a list is wrong),
  // otherwise one summary; never both.
  const anyOfs = errors.filter((e) => e.keyword === 'anyOf');
  const drop = new Set<ErrorObject>();
  for (const a of anyOfs) {
    const branch = errors.filter((e) => e !== a && e.schemaPath.startsWith(`${a.schemaPath}/`));
    const deeper = branch.filter((e) => e.instancePath.length > a.instancePath.length);
    if (deeper.length > 0) {
      drop.add(a);
      for (const e of branch) if (!deeper.includes(e)) drop.add(e);
    } else {
      // A branch whose only complaints are not about the type is the one the user meant
      // (an empty list for command, a malformed string for money): report that branch.
      const byBranch = new Map<string, ErrorObject[]>();
      for (const e of branch) {
        const id = e.schemaPath.slice(a.schemaPath.length + 1).split('/')[0] ?? '';
        byBranch.set(id, [...(byBranch.get(id) ?? []), e]);
      }
      const meant = [...byBranch.values()].find((errs) => errs.every((e) => e.keyword !== 'type'));
      if (meant && !leafOf(a)) {
        drop.add(a);
        for (const e of branch) if (!meant.includes(e)) drop.add(e);
      } else {
        for (const e of branch) drop.add(e);
      }
    }
  }
  const out: SpecProblem[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    if (drop.has(e)) continue;
    const p = toProblem(src, e);
    const key = `${p.line}:${p.col}:${p.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(p);
  }
  return out;
}

function toProblem(src: SpecFile, e: ErrorObject): SpecProblem {
  let pointer = e.instancePath;
  let which: 'key' | 'value' = 'value';
  let message: string;
  let expected: string | undefined;
  const params = e.params as Record<string, unknown>;
  const leaf = leafOf(e);
  const propertyName = (e as ErrorObject & { propertyName?: string }).propertyName;
  if (e.keyword === 'propertyNames' || propertyName !== undefined) {
    const raw = params.propertyName ?? propertyName ?? '';
    const name = typeof raw === 'string' ? raw : JSON.stringify(raw);
    pointer = `${pointer}/${encodeSegment(name)}`;
    which = 'key';
    message = `${label(e.instancePath)}: "${name}" is not a valid name`;
    expected = LEAF.name?.expected;
  } else if (leaf && e.keyword !== 'type') {
    const l = LEAF[leaf] as { message: string; expected: string };
    message = `${label(pointer)} ${l.message}: ${kindOf(e.data)}`;
    expected = l.expected;
  } else if (e.keyword === 'additionalProperties') {
    const extra = String(params.additionalProperty);
    pointer = `${pointer}/${encodeSegment(extra)}`;
    which = 'key';
    const allowed = Object.keys(((e.parentSchema as { properties?: Record<string, unknown> } | undefined)?.properties) ?? {});
    const near = nearestWord(extra, allowed);
    message = `unknown key "${extra}"${e.instancePath ? ` in ${label(e.instancePath)}` : ''}${near ? `; did you mean "${near}"?` : ''}`;
    expected = allowed.length > 0 ? `one of: ${allowed.join(', ')}` : 'no other keys';
  } else if (e.keyword === 'required') {
    const missing = String(params.missingProperty);
    message = `${e.instancePath ? label(e.instancePath) : 'the document'} is missing required key "${missing}"`;
    const desc = ((e.parentSchema as { properties?: Record<string, { description?: string }> } | undefined)?.properties?.[missing])?.description;
    expected = desc ? `${missing}: ${desc}` : `a "${missing}" key`;
  } else if (e.keyword === 'type') {
    const t = params.type;
    message = `${label(pointer)} has the wrong type: ${kindOf(e.data)}`;
    expected = leaf ? (LEAF[leaf] as { expected: string }).expected : Array.isArray(t) ? t.map(typeWord).join(' or ') : typeWord(t);
  } else if (e.keyword === 'enum') {
    message = `${label(pointer)} has a value that is not allowed: ${kindOf(e.data)}`;
    expected = `one of ${((params.allowedValues as unknown[] | undefined) ?? []).map((v) => JSON.stringify(v)).join(', ')}`;
  } else if (e.keyword === 'const') {
    message = `${label(pointer)} has a value that is not allowed: ${kindOf(e.data)}`;
    expected = JSON.stringify(params.allowedValue);
  } else if (e.keyword === 'anyOf') {
    message = `${label(pointer)} has the wrong type: ${kindOf(e.data)}`;
    expected = (e.parentSchema as { description?: string } | undefined)?.description ?? 'a value of the documented form';
  } else if (e.keyword === 'minimum') {
    message = `${label(pointer)} is too small: ${kindOf(e.data)}`;
    expected = `a value >= ${String(params.limit)}`;
  } else if (e.keyword === 'minLength') {
    message = `${label(pointer)} is empty`;
    expected = 'a non-empty string';
  } else if (e.keyword === 'minItems') {
    message = `${label(pointer)} is empty`;
    expected = 'at least one item';
  } else if (e.keyword === 'pattern') {
    message = `${label(pointer)} is not valid: ${kindOf(e.data)}`;
    expected = (e.parentSchema as { description?: string } | undefined)?.description ?? `a string matching ${String(params.pattern)}`;
  } else {
    message = `${label(pointer)} ${e.message ?? 'is invalid'}`;
  }
  const pos = positionOf(src, pointer, which);
  const p: SpecProblem = { ...pos, severity: 'error', message, path: pointer, rule: 'schema' };
  if (expected !== undefined) p.expected = expected;
  return p;
}
