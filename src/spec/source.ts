// Reads one spec file safely (size cap, strict UTF-8, one YAML document, alias limits) and maps JSON
// pointers back to file:line:col. Two parsers, one result: `validate` takes the fast path (js-yaml
// with a compact offset index, see fast-path section) for plain, valid-looking files and falls back
// to the `yaml` package's full Document (exact error messages, comments, fmt) for anything else.
// Every failure becomes a SpecProblem with a position; nothing here throws on bad input.
import { readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Schema as JsYamlSchema, State as JsYamlState } from 'js-yaml';
import type { Document, LineCounter, Node } from 'yaml';
import type { SourcePos, SpecProblem } from '../core/errors.js';
import { OffsetIndexWriter, offsetOf as indexOffsetOf, type OffsetIndex } from './offset-index.js';
import { CORE_BOOL, CORE_FLOAT, CORE_FLOAT_EXP, CORE_FLOAT_NAN, CORE_INT, CORE_INT_HEX, CORE_INT_OCT, CORE_NULL, numberish, parsePlainYaml } from './plain-yaml.js';

// The two parser packages load on first use: a plain fleet file needs neither (plain-yaml.ts reads
// it), and loading them costs every `validate` and `plan` tens of milliseconds.
// Kept once loaded: positionOf asks for yaml's node predicates on every call.
const requireHere = createRequire(import.meta.url);
let yamlModule: typeof import('yaml') | undefined;
let jsYamlModule: typeof import('js-yaml') | undefined;
const yaml = (): typeof import('yaml') => (yamlModule ??= requireHere('yaml') as typeof import('yaml'));
const jsYaml = (): typeof import('js-yaml') => (jsYamlModule ??= requireHere('js-yaml') as typeof import('js-yaml'));

/** Files larger than this are refused before they are read. */
export const MAX_SPEC_BYTES = 10 * 1024 * 1024;
/** yaml's guard against "billion laughs": aliases resolved per document when converting to JS. */
export const MAX_ALIAS_COUNT = 100;

/** One spec file parsed by the `yaml` package: the full Document (fmt needs it). */
export interface SpecSource {
  /** Which parser produced it (absent on sources built by hand: the full Document). */
  parser?: 'full';
  /** The path shown to the user. */
  file: string;
  abs: string;
  text: string;
  doc: Document.Parsed;
  lineCounter: LineCounter;
  /** The document as plain data (aliases resolved). */
  data: unknown;
}

/** One spec file parsed on the fast path: plain data plus the offsets of its nodes. */
export interface FastSpecSource {
  parser: 'fast';
  /** Which fast scanner read it (absent on sources built by hand). */
  via?: FastParse['via'];
  file: string;
  abs: string;
  text: string;
  /** The document as plain data: a mapping, no aliases, no nulls, string keys only. */
  data: unknown;
  index: PositionIndex;
}

/** A parsed spec file as the loader uses it: either representation answers positionOf. */
export type SpecFile = SpecSource | FastSpecSource;

/**
 * Source offsets of a fast-path document (offset-index.ts: one typed-array tape of collection
 * records, written as each collection closes), and its line starts.
 */
export interface PositionIndex extends OffsetIndex {
  /** Line starts as the `yaml` package's LineCounter records them, for identical line:col. */
  lines: LineIndex;
}

/** What positions need of the `yaml` package's LineCounter (which has this shape too). */
export interface LineIndex {
  /** Offset of the first character of each line. */
  lineStarts: number[];
  /** 1-based line and column of an offset. */
  linePos(offset: number): { line: number; col: number };
}

export interface ReadResult {
  source?: SpecSource;
  problems: SpecProblem[];
}

export interface ReadSpecResult {
  source?: SpecFile;
  problems: SpecProblem[];
}

/** How to parse. `auto` (default) takes the fast path when it can reproduce the full result. */
export interface ReadSpecOptions {
  parser?: 'auto' | 'full';
}

function problem(file: string, line: number, col: number, message: string, expected?: string, rule = 'syntax'): SpecProblem {
  const p: SpecProblem = { file, line, col, severity: 'error', message, rule };
  if (expected !== undefined) p.expected = expected;
  return p;
}

/** Byte offset of the first invalid UTF-8 sequence, or -1. */
export function firstInvalidUtf8(buf: Uint8Array): number {
  let i = 0;
  const n = buf.length;
  while (i < n) {
    const b = buf[i] as number;
    if (b < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let min: number;
    if (b >= 0xc2 && b <= 0xdf) {
      need = 1;
      min = 0x80;
    } else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      min = 0x800;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      min = 0x10000;
    } else {
      return i;
    }
    let cp = b & (need === 1 ? 0x1f : need === 2 ? 0x0f : 0x07);
    for (let k = 1; k <= need; k++) {
      const c = buf[i + k];
      if (c === undefined || (c & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (c & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += need + 1;
  }
  return -1;
}

/** 1-based line and column (in characters) of a byte offset in a buffer that is valid UTF-8 before it. */
function bytePos(buf: Uint8Array, offset: number): { line: number; col: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset; i++) {
    if (buf[i] === 0x0a) {
      line++;
      lineStart = i + 1;
    }
  }
  const before = new TextDecoder('utf-8').decode(buf.subarray(lineStart, offset));
  return { line, col: before.length + 1 };
}

/**
 * Reads and parses one spec file into the full `yaml` Document (what fmt edits). `file` is the path
 * to show in problems, `abs` the one to read. Returns the parsed source, or the problems that
 * stopped it (never throws on bad input).
 */
export function readSpecSource(abs: string, file: string): ReadResult {
  const r = readSpecText(abs, file);
  return r.text === undefined ? { problems: r.problems } : parseSpecText(r.text, abs, file);
}

/**
 * Reads and parses one spec file for validation: the fast path when the file is plain YAML that it
 * reproduces exactly, else the full parse (same data, same problems, same positions either way).
 * @example
 * const { source, problems } = readSpecFile('/abs/fleet.yaml', 'fleet.yaml');
 */
export function readSpecFile(abs: string, file: string, options: ReadSpecOptions = {}): ReadSpecResult {
  const r = readSpecText(abs, file);
  return r.text === undefined ? { problems: r.problems } : parseSpecFile(r.text, abs, file, options);
}

/** Parses spec text in memory like readSpecFile does (fast path when possible). */
export function parseSpecFile(text: string, abs: string, file: string, options: ReadSpecOptions = {}): ReadSpecResult {
  if (options.parser !== 'full') {
    const fast = parseFast(text);
    if (fast) return { source: { parser: 'fast', via: fast.via, file, abs, text, data: fast.data, index: fast.index }, problems: [] };
  }
  return parseSpecText(text, abs, file);
}

/** The checks before parsing: a regular file, the size cap, strict UTF-8. */
function readSpecText(abs: string, file: string): { text?: string; problems: SpecProblem[] } {
  let size: number;
  try {
    const st = statSync(abs);
    if (!st.isFile()) return { problems: [problem(file, 1, 1, 'is not a regular file', 'a YAML fleet file', 'io')] };
    size = st.size;
  } catch (e) {
    return { problems: [problem(file, 1, 1, `cannot read file: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, 'a readable YAML fleet file', 'io')] };
  }
  if (size > MAX_SPEC_BYTES) {
    return { problems: [problem(file, 1, 1, `file is too large (${(size / 1024 / 1024).toFixed(1)} MB)`, `a fleet file of at most ${MAX_SPEC_BYTES / 1024 / 1024} MB; split the fleet into a folder of files`, 'size')] };
  }
  let buf: Buffer;
  try {
    buf = readFileSync(abs);
  } catch (e) {
    return { problems: [problem(file, 1, 1, `cannot read file: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, 'a readable YAML fleet file', 'io')] };
  }
  if (buf.length > MAX_SPEC_BYTES) {
    return { problems: [problem(file, 1, 1, 'file is too large', `a fleet file of at most ${MAX_SPEC_BYTES / 1024 / 1024} MB`, 'size')] };
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(buf);
  } catch {
    const bad = firstInvalidUtf8(buf);
    const at = bad >= 0 ? bytePos(buf, bad) : { line: 1, col: 1 };
    const byte = bad >= 0 ? ` (byte 0x${(buf[bad] as number).toString(16).padStart(2, '0')})` : '';
    return { problems: [problem(file, at.line, at.col, `invalid UTF-8${byte}`, 'a UTF-8 encoded text file', 'encoding')] };
  }
  return { text, problems: [] };
}

/** Parses spec text that is already in memory into the full `yaml` Document (fmt and tests use it). */
export function parseSpecText(text: string, abs: string, file: string): ReadResult {
  const { LineCounter, isMap, parseAllDocuments, visit } = yaml();
  const lineCounter = new LineCounter();
  const pos = (offset: number): { line: number; col: number } => lineCounter.linePos(Math.max(0, offset));
  let docs: Document.Parsed[];
  try {
    docs = parseAllDocuments(text, { lineCounter, prettyErrors: false, uniqueKeys: true }) as Document.Parsed[];
  } catch (e) {
    return { problems: [problem(file, 1, 1, `cannot parse YAML: ${e instanceof Error ? e.message : String(e)}`, 'valid YAML')] };
  }
  if (!Array.isArray(docs)) return { problems: [problem(file, 1, 1, 'cannot parse YAML', 'valid YAML')] };
  const first = docs[0];
  if (!first || first.contents === null || first.contents === undefined) {
    if (docs.length <= 1 && (!first || first.errors.length === 0)) {
      return { problems: [problem(file, 1, 1, 'file is empty', 'a Fleet document (apiVersion: spotfleet.dev/v1, kind: Fleet, ...)', 'document')] };
    }
  }
  const problems: SpecProblem[] = [];
  for (const d of docs) {
    for (const e of d.errors) {
      const p = pos(e.pos[0]);
      problems.push(problem(file, p.line, p.col, `YAML syntax error: ${e.message}`, yamlExpectation(e.code, e.message)));
    }
    for (const w of d.warnings) {
      const p = pos(w.pos[0]);
      problems.push(problem(file, p.line, p.col, `YAML: ${w.message}`, 'plain YAML without custom tags'));
    }
  }
  if (docs.length > 1) {
    const second = docs[1] as Document.Parsed;
    const p = pos(second.range[0]);
    problems.push(problem(file, p.line, p.col, `file holds ${docs.length} YAML documents`, 'one Fleet document per file (put more in a folder of files)', 'document'));
  }
  if (problems.length > 0 || !first) return { problems };
  const doc = first;
  if (!isMap(doc.contents)) {
    const node = doc.contents as Node | null;
    const p = pos(node?.range?.[0] ?? 0);
    return { problems: [problem(file, p.line, p.col, `top level is ${describeNode(node)}`, 'a Fleet document: a mapping with apiVersion, kind, metadata, ...', 'document')] };
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (e) {
    let at = { line: 1, col: 1 };
    visit(doc, {
      Alias(_k, node) {
        at = pos(node.range?.[0] ?? 0);
        return visit.BREAK;
      },
    });
    const msg = e instanceof Error ? e.message : String(e);
    const bomb = /alias/i.test(msg);
    return {
      problems: [
        problem(file, at.line, at.col, bomb ? 'too many YAML aliases (alias expansion bomb)' : `cannot read YAML: ${msg}`, bomb ? `at most ${MAX_ALIAS_COUNT} alias expansions` : 'valid YAML', bomb ? 'aliases' : 'syntax'),
      ],
    };
  }
  return { source: { parser: 'full', file, abs, text, doc, lineCounter, data }, problems: [] };
}

function yamlExpectation(code: string, message: string): string {
  if (code === 'MISSING_CHAR') {
    if (/quote/i.test(message)) return 'a closing quote';
    if (/end with a/i.test(message)) return 'a closing bracket, or consistent indentation';
    return 'consistent indentation (spaces, 2 per level) and "- " before each list item';
  }
  switch (code) {
    case 'DUPLICATE_KEY':
      return 'each key once per mapping';
    case 'BAD_INDENT':
    case 'BLOCK_AS_IMPLICIT_KEY':
      return 'consistent indentation (spaces, 2 per level)';
    case 'TAB_AS_INDENT':
      return 'spaces for indentation, not tabs';
    default:
      return 'valid YAML';
  }
}

function describeNode(node: Node | null): string {
  const { isScalar, isSeq } = yaml();
  if (node === null) return 'empty';
  if (isSeq(node)) return 'a list';
  if (isScalar(node)) return `a scalar (${JSON.stringify(node.value)})`;
  return 'not a mapping';
}

function decodeSegment(s: string): string {
  return s.replace(/~1/g, '/').replace(/~0/g, '~');
}

/** Splits a JSON pointer (`/workloads/0/gpus`) into segments. */
export function pointerSegments(pointer: string): string[] {
  if (pointer === '' || pointer === '/') return [];
  const segs = (pointer.charCodeAt(0) === 0x2f ? pointer.slice(1) : pointer).split('/');
  return pointer.includes('~') ? segs.map(decodeSegment) : segs;
}

/** Encodes one JSON pointer segment. */
export function encodeSegment(s: string): string {
  return s.replace(/~/g, '~0').replace(/\//g, '~1');
}

function deref(src: SpecSource, n: unknown): unknown {
  return yaml().isAlias(n) ? (n as { resolve(doc: Document): unknown }).resolve(src.doc) : n;
}

function offsetOf(n: unknown): number | undefined {
  if (n && typeof n === 'object' && 'range' in n) {
    const r = (n as { range?: [number, number, number] | null }).range;
    if (r) return r[0];
  }
  return undefined;
}

/**
 * The position of the node a JSON pointer names. `key` gives the key of the last map entry (for
 * unknown keys), `value` its value. Walks as far as the document allows and returns the deepest
 * position found, so a pointer into a missing key points at its parent. Both representations give
 * the same answer; cost O(depth × keys per map), so a list item is O(1) whatever the list's length.
 */
export function positionOf(src: SpecFile, pointer: string, which: 'key' | 'value' = 'value'): SourcePos {
  if (src.parser === 'fast') return fastPositionOf(src, pointer, which);
  const { isMap, isPair, isScalar, isSeq } = yaml();
  const segs = pointerSegments(pointer);
  let node: unknown = src.doc.contents;
  let best = offsetOf(node) ?? 0;
  for (let i = 0; i < segs.length; i++) {
    const seg = segs[i] as string;
    node = deref(src, node);
    const last = i === segs.length - 1;
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === seg);
      if (!pair) break;
      const keyOff = offsetOf(pair.key);
      if (keyOff !== undefined) best = keyOff;
      if (last && which === 'key') break;
      node = pair.value;
      if (node === null || node === undefined) break;
      const vOff = offsetOf(node);
      // An empty value (`gpus:`) has a zero-width range at the end of the line; the key reads better.
      if (vOff !== undefined && !(isScalar(node) && node.value === null)) best = vOff;
    } else if (isSeq(node)) {
      const idx = Number(seg);
      if (!Number.isInteger(idx)) break;
      const item = node.items[idx];
      if (item === undefined || item === null) break;
      node = item;
      const off = offsetOf(item);
      if (off !== undefined) best = off;
    } else {
      break;
    }
  }
  const p = src.lineCounter.linePos(best);
  return { file: src.file, line: p.line, col: p.col };
}


// ---- fast path ----------------------------------------------------------------------------------
// js-yaml builds plain data ~6x faster and in ~4x less memory than the yaml package's Document, and
// its listener reports where each node opens and closes. The fast path accepts only what it can
// reproduce exactly (data, positions, and the absence of problems): one document whose top level is
// a mapping, no tags, anchors or aliases, no nulls, string keys on one line, no directives, no BOM.
// Anything else, including every js-yaml error, returns undefined and the caller takes the full
// parse, so messages and positions of problems stay those of the yaml package.

/** Thrown from the js-yaml listener to stop parsing as soon as the input leaves the fast subset. */
const LEAVE_FAST_PATH = new Error('leave the fast path');

// The yaml package's YAML 1.2 core schema as js-yaml types (the rules live in plain-yaml.ts).
let yamlCoreSchema: JsYamlSchema | undefined;
function jsYamlCoreSchema(): JsYamlSchema {
  if (yamlCoreSchema) return yamlCoreSchema;
  const { FAILSAFE_SCHEMA, Type: JsYamlType } = jsYaml();
  yamlCoreSchema = FAILSAFE_SCHEMA.extend({
    implicit: [
      new JsYamlType('tag:yaml.org,2002:null', { kind: 'scalar', resolve: (s: string) => s.length <= 4 && CORE_NULL.test(s), construct: () => null }),
      new JsYamlType('tag:yaml.org,2002:bool', { kind: 'scalar', resolve: (s: string) => (s.length === 4 || s.length === 5) && CORE_BOOL.test(s), construct: (s: string) => s[0] === 't' || s[0] === 'T' }),
      new JsYamlType('tag:yaml.org,2002:int', {
        kind: 'scalar',
        resolve: (s: string) => numberish(s) && (CORE_INT_OCT.test(s) || CORE_INT.test(s) || CORE_INT_HEX.test(s)),
        construct: (s: string) => (CORE_INT_OCT.test(s) ? parseInt(s.substring(2), 8) : CORE_INT.test(s) ? parseInt(s, 10) : parseInt(s.substring(2), 16)),
      }),
      new JsYamlType('tag:yaml.org,2002:float', {
        kind: 'scalar',
        resolve: (s: string) => numberish(s) && (CORE_FLOAT_NAN.test(s) || CORE_FLOAT_EXP.test(s) || CORE_FLOAT.test(s)),
        construct: (s: string) => (CORE_FLOAT_NAN.test(s) ? (s.slice(-3).toLowerCase() === 'nan' ? NaN : s[0] === '-' ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY) : parseFloat(s)),
      }),
    ],
  });
  return yamlCoreSchema;
}

/** The yaml package refuses implicit keys longer than 1024 characters; stay well inside. */
const MAX_FAST_KEY_SPAN = 1000;

/** Offset of the first character of a node that js-yaml opened at `pos` (before its separation space). */
function skipSeparation(text: string, pos: number): number {
  for (;;) {
    const c = text.charCodeAt(pos);
    if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) pos++;
    else if (c === 0x23) {
      // a comment runs to the end of the line
      while (pos < text.length && text.charCodeAt(pos) !== 0x0a && text.charCodeAt(pos) !== 0x0d) pos++;
    } else return pos;
  }
}

/** Offsets after every "\n", as the yaml parser reports its newlines to a LineCounter. */
function countLines(text: string): LineIndex {
  const starts = [0];
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) starts.push(i + 1);
  return new LineStarts(starts);
}

/** The yaml package's LineCounter.linePos over given line starts, step for step, for identical line:col. */
class LineStarts implements LineIndex {
  constructor(readonly lineStarts: number[]) {}

  linePos(offset: number): { line: number; col: number } {
    const starts = this.lineStarts;
    let low = 0;
    let high = starts.length;
    while (low < high) {
      const mid = (low + high) >> 1;
      if ((starts[mid] as number) < offset) low = mid + 1;
      else high = mid;
    }
    if (starts[low] === offset) return { line: low + 1, col: 1 };
    if (low === 0) return { line: 0, col: offset };
    return { line: low, col: offset - (starts[low - 1] as number) + 1 };
  }
}

/** What the fast path gives: the data, its offset index, and which scanner read it. */
export interface FastParse {
  data: Record<string, unknown>;
  index: PositionIndex;
  /** `plain`: the plain-YAML scanner (plain-yaml.ts); `js-yaml`: js-yaml with an offset listener. */
  via: 'plain' | 'js-yaml';
}

/**
 * The fast path: the plain-YAML scanner for the plain files most fleets are, js-yaml with an offset
 * listener for the rest of the fast subset. Undefined when the text is outside both (the caller
 * then runs the full parse). Never throws.
 */
export function parseFast(text: string): FastParse | undefined {
  return parsePlain(text) ?? parseJsYaml(text);
}

/** The plain-YAML scanner alone (see plain-yaml.ts), or undefined when it declines. */
export function parsePlain(text: string): FastParse | undefined {
  const plain = parsePlainYaml(text);
  return plain && { data: plain.data, index: { ...plain.index, lines: new LineStarts(plain.lineStarts) }, via: 'plain' };
}

/**
 * Parses `text` with js-yaml and indexes node offsets, or returns undefined when the text is outside
 * the fast subset. Never throws.
 */
export function parseJsYaml(text: string): FastParse | undefined {
  // Cheap refusals first: a BOM shifts js-yaml's offsets, directives may switch to YAML 1.1, a lone
  // CR is a line break to js-yaml only, and `#` glued to a flow indicator or a closing quote is a
  // comment to js-yaml but an error to yaml.
  if (text.length === 0 || text.charCodeAt(0) === 0xfeff) return undefined;
  if (/^%/m.test(text) || /\r(?!\n)/.test(text) || /[,[\]{}"']#/.test(text)) return undefined;

  // Per open node (a stack of `depth` entries): where it opened and where its children begin in
  // the flat child lists. Closed children of the open nodes (`top` entries): start offset, end
  // offset, value. Plain arrays with explicit tops: no per-node allocation on the hot path.
  const opens: number[] = [];
  const bases: number[] = [];
  let depth = 0;
  const starts: number[] = [];
  const ends: number[] = [];
  const values: unknown[] = [];
  /** Per closed child: its record on the index tape, -1 for a scalar. */
  const records: number[] = [];
  let top = 0;
  const index = new OffsetIndexWriter(text.length);

  const listener = (event: 'open' | 'close', state: JsYamlState): void => {
    if (event === 'open') {
      opens[depth] = state.position;
      bases[depth] = top;
      depth++;
      return;
    }
    depth--;
    const base = bases[depth] as number;
    const result: unknown = state.result;
    const n = top - base;
    // js-yaml reads a block mapping's first key with a nested composeNode and, when no `:` follows,
    // keeps that node as the whole value (`- { a: 1 }`, `- text`): the child is the node.
    if (n === 1 && Object.is(values[base], result)) return;
    const start = skipSeparation(text, opens[depth] as number);
    const c = text.charCodeAt(start);
    // `!tag`, `&anchor`, `*alias`: positions and values follow rules of their own.
    if (c === 0x21 || c === 0x26 || c === 0x2a) throw LEAVE_FAST_PATH;
    const kind = state.kind;
    if (kind === 'mapping') {
      if (typeof result !== 'object' || result === null || Array.isArray(result) || n % 2 !== 0) throw LEAVE_FAST_PATH;
      const obj = result as Record<string, unknown>;
      let last = -1;
      for (let i = 0; i < n; i += 2) {
        const key = values[base + i];
        const kStart = starts[base + i] as number;
        if (typeof key !== 'string' || key === '__proto__') throw LEAVE_FAST_PATH;
        // one line, not too long (yaml's limits on implicit keys)
        const kEnd = ends[base + i] as number;
        if (kEnd - kStart > MAX_FAST_KEY_SPAN) throw LEAVE_FAST_PATH;
        for (let x = kStart; x < kEnd; x++) if (text.charCodeAt(x) === 0x0a) throw LEAVE_FAST_PATH;
        if (!Object.is(obj[key], values[base + i + 1])) throw LEAVE_FAST_PATH;
        last = index.mapEntry(key, kStart, starts[base + i + 1] as number, records[base + i + 1] as number, last);
      }
      // No key of `obj` escapes these checks: js-yaml composes every key as a node, and a key without
      // a value node (`? a`, `{a, b}`) holds null, which no (non-null) child equals, so its pair fails.
      records[base] = index.closeMap(n >> 1, last);
    } else if (kind === 'sequence') {
      if (!Array.isArray(result) || result.length !== n) throw LEAVE_FAST_PATH;
      const entries = index.top;
      for (let i = 0; i < n; i++) {
        if (!Object.is(result[i], values[base + i])) throw LEAVE_FAST_PATH;
        index.seqItem(starts[base + i] as number, records[base + i] as number);
      }
      records[base] = index.closeSeq(entries);
    } else if (kind !== 'scalar' || (typeof result !== 'string' && typeof result !== 'number' && typeof result !== 'boolean')) {
      // empty nodes and nulls: yaml places them on zero-width ranges the fast path does not model
      throw LEAVE_FAST_PATH;
    } else {
      records[base] = -1;
    }
    // this node replaces its children in its parent's list
    starts[base] = start;
    ends[base] = state.position;
    values[base] = result;
    top = base + 1;
  };

  let data: unknown;
  try {
    data = jsYaml().load(text, {
      schema: jsYamlCoreSchema(),
      listener,
      onWarning: () => {
        throw LEAVE_FAST_PATH;
      },
    });
  } catch {
    // js-yaml's own errors included: the full parse words them the way users already see them.
    return undefined;
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data) || depth !== 0 || top !== 1 || values[0] !== data) return undefined;
  return { data: data as Record<string, unknown>, index: { ...index.finish(starts[0] as number, records[0] as number), lines: countLines(text) }, via: 'js-yaml' };
}

function fastPositionOf(src: FastSpecSource, pointer: string, which: 'key' | 'value'): SourcePos {
  const p = src.index.lines.linePos(indexOffsetOf(src.index, src.text, pointer, which));
  return { file: src.file, line: p.line, col: p.col };
}
