// Reads one spec file safely (size cap, strict UTF-8, one YAML document, alias limits) into a yaml
// Document that keeps source positions, and maps JSON pointers back to file:line:col. Every failure
// becomes a SpecProblem with a position; nothing here throws on bad input.
import { readFileSync, statSync } from 'node:fs';
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseAllDocuments, visit, type Document, type Node } from 'yaml';
import type { SourcePos, SpecProblem } from '../core/errors.js';

/** Files larger than this are refused before they are read. */
export const MAX_SPEC_BYTES = 10 * 1024 * 1024;
/** yaml's guard against "billion laughs": aliases resolved per document when converting to JS. */
export const MAX_ALIAS_COUNT = 100;

/** One parsed spec file. `file` is the path shown to the user. */
export interface SpecSource {
  file: string;
  abs: string;
  text: string;
  doc: Document.Parsed;
  lineCounter: LineCounter;
  /** The document as plain data (aliases resolved). */
  data: unknown;
}

export interface ReadResult {
  source?: SpecSource;
  problems: SpecProblem[];
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
 * Reads and parses one spec file. `file` is the path to show in problems, `abs` the one to read.
 * Returns the parsed source, or the problems that stopped it (never throws on bad input).
 */
export function readSpecSource(abs: string, file: string): ReadResult {
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
  return parseSpecText(text, abs, file);
}

/** Parses spec text that is already in memory (fmt and tests use it too). */
export function parseSpecText(text: string, abs: string, file: string): ReadResult {
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
  return { source: { file, abs, text, doc, lineCounter, data }, problems: [] };
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
  return pointer.replace(/^\//, '').split('/').map(decodeSegment);
}

/** Encodes one JSON pointer segment. */
export function encodeSegment(s: string): string {
  return s.replace(/~/g, '~0').replace(/\//g, '~1');
}

function deref(src: SpecSource, n: unknown): unknown {
  return isAlias(n) ? n.resolve(src.doc) : n;
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
 * position found, so a pointer into a missing key points at its parent. O(depth × keys per map).
 */
export function positionOf(src: SpecSource, pointer: string, which: 'key' | 'value' = 'value'): SourcePos {
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
