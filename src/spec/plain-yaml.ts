// A scanner for the plain YAML that fleet files are written in: block mappings and sequences
// indented with spaces, one-line flow collections, plain and quoted one-line scalars, comments.
// It builds the data, the offset index (offset-index.ts) and the line starts in one pass over the
// text: on a 10,000-workload fleet, in a fresh process, 136-141 ms where js-yaml with the offset
// listener took 336-343 ms, keeping 4.6 MB where it kept 11.5 MB. It reproduces the `yaml` package's result exactly or declines: anything
// outside the subset (anchors, tags, block scalars, multi-line scalars or flows, nulls, escapes in
// double quotes, duplicate keys, tabs, CR, unusual characters...) returns undefined and the caller
// tries the next parser, so every problem's wording and position stays the full parser's.
import { OffsetIndexWriter, type OffsetIndex } from './offset-index.js';

// The yaml package's YAML 1.2 core schema, rule for rule (yaml/dist/schema/core), so a plain scalar
// resolves to the same value on every path: `yes`/`no`/`on` stay strings, `0o17` is 15, `0b1`,
// `1_000` and timestamps stay strings.
export const CORE_NULL = /^(?:~|[Nn]ull|NULL)?$/;
export const CORE_BOOL = /^(?:[Tt]rue|TRUE|[Ff]alse|FALSE)$/;
export const CORE_INT_OCT = /^0o[0-7]+$/;
export const CORE_INT = /^[-+]?[0-9]+$/;
export const CORE_INT_HEX = /^0x[0-9a-fA-F]+$/;
export const CORE_FLOAT_NAN = /^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/;
export const CORE_FLOAT_EXP = /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$/;
export const CORE_FLOAT = /^[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)$/;

/** Whether a plain scalar can be a number at all (most are names and paths: skip the regexes). */
export function numberish(s: string): boolean {
  const c = s.charCodeAt(0);
  return (c >= 0x30 && c <= 0x39) || c === 0x2b || c === 0x2d || c === 0x2e;
}

/** Thrown inside the scanner when the text leaves the subset; caught in parsePlainYaml only. */
const DECLINE = new Error('outside the plain YAML subset');

/** The value of a plain scalar under the core schema; a null declines (yaml gives it a zero-width range). */
function plainValue(s: string): string | number | boolean {
  if (s.length <= 5) {
    if (s.length <= 4 && CORE_NULL.test(s)) throw DECLINE;
    if (s.length >= 4 && CORE_BOOL.test(s)) return s[0] === 't' || s[0] === 'T';
  }
  if (!numberish(s)) return s;
  if (CORE_INT_OCT.test(s)) return parseInt(s.substring(2), 8);
  if (CORE_INT.test(s)) return parseInt(s, 10);
  if (CORE_INT_HEX.test(s)) return parseInt(s.substring(2), 16);
  if (CORE_FLOAT_NAN.test(s)) return s.slice(-3).toLowerCase() === 'nan' ? NaN : s[0] === '-' ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
  if (CORE_FLOAT_EXP.test(s) || CORE_FLOAT.test(s)) return parseFloat(s);
  return s;
}

/**
 * Characters outside this class leave the subset: controls (tab and CR included), DEL, C1 (NEL),
 * the line and paragraph separators, BOM and the non-characters U+FFFE/U+FFFF. The parsers treat
 * some of them as line breaks or refuse them; the full parse words that.
 */
const OUTSIDE_CHARS = /[^\n\x20-\x7e\xa0-\u2027\u202a-\ufefe\uff00-\ufffd]/;

/** Entries of the scalar cache (a power of two). */
const CACHE_SIZE = 4096;

/** The yaml package refuses implicit keys longer than 1024 characters; stay well inside. */
const MAX_KEY_SPAN = 1000;

const NL = 0x0a;
const SP = 0x20;
const HASH = 0x23;
const COLON = 0x3a;
const DASH = 0x2d;

/** `,[]{}`: they end a plain scalar inside a flow collection. */
function isFlowIndicator(c: number): boolean {
  return c === 0x2c || c === 0x5b || c === 0x5d || c === 0x7b || c === 0x7d;
}

/**
 * Parses `text` when it is one plain-YAML mapping of the subset, with the offset of every node;
 * undefined otherwise (never throws).
 */
export function parsePlainYaml(text: string): { data: Record<string, unknown>; index: OffsetIndex; lineStarts: number[] } | undefined {
  if (text.length === 0 || OUTSIDE_CHARS.test(text)) return undefined;
  const len = text.length;
  /** The cursor. */
  let p = 0;
  /** Set by every block parser on return: where the next content line starts (or -1 at the end), and its indent. */
  let nextLine = -1;
  let nextIndent = 0;
  /** The offset after every line break, as the yaml package's LineCounter records them: each break is passed once, here or in endOfLine. */
  const lineStarts = [0];

  /** From a line start, skips blank and comment lines; sets nextLine/nextIndent. */
  const findContentLine = (ls: number): void => {
    while (ls < len) {
      let i = ls;
      while (i < len && text.charCodeAt(i) === SP) i++;
      const c = i < len ? text.charCodeAt(i) : NL;
      if (c !== NL && c !== HASH) {
        // `---` and `...` in the first column (then a space or the end of the line) mark documents
        if (i === ls && (c === DASH || c === 0x2e) && text.charCodeAt(i + 1) === c && text.charCodeAt(i + 2) === c && separated(i + 3)) throw DECLINE;
        nextLine = ls;
        nextIndent = i - ls;
        return;
      }
      const eol = text.indexOf('\n', i);
      if (eol === -1) break;
      ls = eol + 1;
      lineStarts.push(ls);
    }
    nextLine = -1;
    nextIndent = 0;
  };

  /** After a node on one line: spaces, then the end of the line or a comment after a space. Then finds the next content line. */
  const endOfLine = (): void => {
    while (p < len && text.charCodeAt(p) === SP) p++;
    if (p < len) {
      const c = text.charCodeAt(p);
      // `#` starts a comment only after a space (`"a"#b` is an error)
      if (c === HASH) {
        if (text.charCodeAt(p - 1) !== SP) throw DECLINE;
      } else if (c !== NL) throw DECLINE;
      const eol = text.indexOf('\n', p);
      if (eol === -1) p = len;
      else {
        p = eol + 1;
        lineStarts.push(p);
      }
    }
    findContentLine(p);
  };

  /** Whether the character at `i` ends an indicator (`- `, `: `): a space, the end of a line or of the text. */
  const separated = (i: number): boolean => i >= len || text.charCodeAt(i) === SP || text.charCodeAt(i) === NL;

  /**
   * Scans a plain scalar from `p` (its first character checked by the caller); returns its end with
   * trailing spaces trimmed and leaves `p` where it stopped: the end of the line, `: `, ` #`, or in
   * a flow collection one of `,[]{}` or `:` before one.
   */
  const scanPlain = (flow: boolean): number => {
    let i = p;
    for (; i < len; i++) {
      const c = text.charCodeAt(i);
      if (c === NL) break;
      if (c === COLON) {
        const n = i + 1 < len ? text.charCodeAt(i + 1) : NL;
        if (n === SP || n === NL || (flow && isFlowIndicator(n))) break;
      } else if (c === HASH) {
        if (text.charCodeAt(i - 1) === SP) break;
      } else if (flow && isFlowIndicator(c)) break;
    }
    p = i;
    while (i > 0 && text.charCodeAt(i - 1) === SP) i--;
    return i;
  };

  /** Whether a plain scalar may start at `p` (not an indicator); declines where the text is unusual. */
  const checkPlainStart = (flow: boolean): void => {
    const c = text.charCodeAt(p);
    switch (c) {
      case DASH:
      case 0x3f: // ?
      case COLON: {
        const n = p + 1 < len ? text.charCodeAt(p + 1) : NL;
        if (n === SP || n === NL || (flow && isFlowIndicator(n))) throw DECLINE;
        return;
      }
      case 0x2c: // , [ ] { } # & * ! | > ' " % @ `
      case 0x5b:
      case 0x5d:
      case 0x7b:
      case 0x7d:
      case HASH:
      case 0x26:
      case 0x2a:
      case 0x21:
      case 0x7c:
      case 0x3e:
      case 0x27:
      case 0x22:
      case 0x25:
      case 0x40:
      case 0x60:
        throw DECLINE;
      default:
    }
  };

  // Scalars repeat (keys above all: every workload has `name`, `gpus`, `image`...): a small cache,
  // checked in place with startsWith, gives the same string and value without a slice, a property
  // key to internalise again, or the core-schema regexes. A collision just replaces the entry.
  const cacheText: (string | undefined)[] = new Array<string | undefined>(CACHE_SIZE);
  const cacheValue: unknown[] = new Array<unknown>(CACHE_SIZE);

  /** The plain scalar text[start, end) and its value (a null declines). */
  const plainAt = (start: number, end: number): string | number | boolean => {
    const n = end - start;
    const slot = (n * 131 + text.charCodeAt(start) * 31 + text.charCodeAt(end - 1) + text.charCodeAt(start + (n >> 1)) * 7) & (CACHE_SIZE - 1);
    const hit = cacheText[slot];
    if (hit !== undefined && hit.length === n && text.startsWith(hit, start)) return cacheValue[slot] as string | number | boolean;
    const s = text.slice(start, end);
    const v = plainValue(s);
    cacheText[slot] = s;
    cacheValue[slot] = v;
    return v;
  };

  /** A quoted scalar at `p` on one line, without escapes; `p` moves past the closing quote. */
  const scanQuoted = (): string => {
    const q = text.charCodeAt(p);
    const start = p + 1;
    if (q === 0x22) {
      // "...": no backslash escapes and no line break (both decline)
      let i = start;
      for (; i < len; i++) {
        const c = text.charCodeAt(i);
        if (c === 0x22) break;
        if (c === 0x5c || c === NL) throw DECLINE;
      }
      if (i >= len) throw DECLINE;
      p = i + 1;
      return text.slice(start, i);
    }
    // '...': '' is one quote
    let out = '';
    let from = start;
    for (let i = start; ; i++) {
      if (i >= len) throw DECLINE;
      const c = text.charCodeAt(i);
      if (c === NL) throw DECLINE;
      if (c === 0x27) {
        if (i + 1 < len && text.charCodeAt(i + 1) === 0x27) {
          out += text.slice(from, i + 1);
          from = i + 2;
          i++;
          continue;
        }
        p = i + 1;
        return out + text.slice(from, i);
      }
    }
  };

  /**
   * A key at `p`, with its `:` right after it (no space between) and a space or the end of the
   * line after that; `p` moves past the `:`. Undefined (p unchanged) when `p` holds no key.
   */
  const scanKey = (flow: boolean): string | undefined => {
    const start = p;
    let key: string;
    let end: number;
    const c = text.charCodeAt(p);
    if (c === 0x5b || c === 0x7b) {
      if (flow) throw DECLINE;
      return undefined; // a flow collection: a value (as a key it declines later)
    }
    if (c === 0x22 || c === 0x27) {
      key = scanQuoted();
      end = p;
      if (p >= len || text.charCodeAt(p) !== COLON || !separated(p + 1)) {
        if (flow) throw DECLINE;
        p = start;
        return undefined;
      }
    } else {
      checkPlainStart(flow);
      end = scanPlain(flow);
      if (p >= len || text.charCodeAt(p) !== COLON || end !== p || !separated(p + 1)) {
        if (flow) throw DECLINE;
        p = start;
        return undefined;
      }
      // a key that the core schema reads as a number or a boolean: yaml's toJS writes its string form
      const v = plainAt(start, end);
      if (typeof v !== 'string') throw DECLINE;
      key = v;
    }
    if (end - start > MAX_KEY_SPAN || key === '__proto__' || key === '<<') throw DECLINE;
    p++; // the ':'
    return key;
  };

  // Every node parser leaves the index record of the node it read here (-1 for a scalar).
  let nodeRecord = -1;
  const index = new OffsetIndexWriter(len);

  /** A scalar or a flow collection at `p` that ends on this line. */
  const scanInline = (flow: boolean): unknown => {
    const c = text.charCodeAt(p);
    if (c === 0x5b || c === 0x7b) return scanFlow();
    nodeRecord = -1;
    if (c === 0x22 || c === 0x27) return scanQuoted();
    checkPlainStart(flow);
    const start = p;
    const end = scanPlain(flow);
    if (end === start) throw DECLINE;
    return plainAt(start, end);
  };

  const skipSpaces = (): void => {
    while (p < len && text.charCodeAt(p) === SP) p++;
  };

  /** A one-line flow collection at `p`; `p` moves past its closing bracket. */
  const scanFlow = (): unknown => {
    const isMap = text.charCodeAt(p) === 0x7b;
    const close = isMap ? 0x7d : 0x5d;
    p++;
    skipSpaces();
    if (isMap) {
      const obj: Record<string, unknown> = {};
      let count = 0;
      let last = -1;
      if (p < len && text.charCodeAt(p) === close) {
        p++;
        nodeRecord = index.closeMap(0, -1);
        return obj;
      }
      for (;;) {
        const keyStart = p;
        const key = scanKey(true) as string;
        if (Object.hasOwn(obj, key)) throw DECLINE;
        skipSpaces();
        const valueStart = p;
        const c = p < len ? text.charCodeAt(p) : NL;
        if (c === 0x2c || c === close || c === NL || c === HASH) throw DECLINE; // no value: null
        obj[key] = scanInline(true);
        last = index.mapEntry(undefined, keyStart, valueStart, nodeRecord, last);
        count++;
        skipSpaces();
        const d = p < len ? text.charCodeAt(p) : NL;
        p++;
        if (d === close) break;
        if (d !== 0x2c) throw DECLINE;
        skipSpaces();
        if (p >= len || text.charCodeAt(p) === close) throw DECLINE; // a trailing comma
      }
      nodeRecord = index.closeMap(count, last);
      return obj;
    }
    const arr: unknown[] = [];
    const base = index.top;
    if (p < len && text.charCodeAt(p) === close) {
      p++;
      nodeRecord = index.closeSeq(base);
      return arr;
    }
    for (;;) {
      const itemStart = p;
      const c = p < len ? text.charCodeAt(p) : NL;
      if (c === 0x2c || c === close || c === NL || c === HASH) throw DECLINE;
      arr.push(scanInline(true));
      index.seqItem(itemStart, nodeRecord);
      skipSpaces();
      const d = p < len ? text.charCodeAt(p) : NL;
      p++;
      if (d === close) break;
      if (d !== 0x2c) throw DECLINE; // `[a: b]` (a pair) among them
      skipSpaces();
      if (p >= len || text.charCodeAt(p) === close) throw DECLINE;
    }
    nodeRecord = index.closeSeq(base);
    return arr;
  };

  /**
   * The block node that starts on the next content line as the value of a key or an item at
   * `indent` (a mapping or a sequence further in; a sequence at the same indent after a key).
   * Returns the node's start offset; the node itself is in blockValue.
   */
  let blockValue: unknown;
  const blockBelow = (indent: number, sameIndentSeq: boolean): number => {
    if (nextLine === -1) throw DECLINE; // nothing: null
    const first = nextLine + nextIndent;
    const isSeq = text.charCodeAt(first) === DASH && separated(first + 1);
    if (nextIndent > indent || (sameIndentSeq && nextIndent === indent && isSeq)) {
      if (isSeq) blockValue = blockSequence(nextIndent);
      else {
        p = first;
        blockValue = blockMapping(nextIndent);
      }
      return first;
    }
    throw DECLINE; // nothing: null
  };

  /** A block mapping whose first key is at `p`, in column `indent`. */
  const blockMapping = (indent: number): Record<string, unknown> => {
    const obj: Record<string, unknown> = {};
    let count = 0;
    let last = -1;
    for (;;) {
      const keyStart = p;
      const key = scanKey(false);
      if (key === undefined || Object.hasOwn(obj, key)) throw DECLINE;
      skipSpaces();
      const c = p < len ? text.charCodeAt(p) : NL;
      let valueStart: number;
      if (c === NL || c === HASH) {
        // the value is the block below (`p` is past at least one space before a `#`)
        endOfLine();
        valueStart = blockBelow(indent, true);
        obj[key] = blockValue;
      } else {
        valueStart = p;
        obj[key] = scanInline(false);
        endOfLine();
        if (nextLine !== -1 && nextIndent > indent) throw DECLINE; // a continuation line
      }
      last = index.mapEntry(undefined, keyStart, valueStart, nodeRecord, last);
      count++;
      if (nextLine === -1 || nextIndent < indent) break;
      if (nextIndent > indent) throw DECLINE;
      p = nextLine + indent;
    }
    nodeRecord = index.closeMap(count, last);
    return obj;
  };

  /** A block sequence whose first `-` is on the line nextLine, in column `indent`. */
  const blockSequence = (indent: number): unknown[] => {
    const arr: unknown[] = [];
    const base = index.top;
    for (;;) {
      const lineStart = nextLine;
      p = lineStart + indent + 1; // past the '-'
      skipSpaces();
      const c = p < len ? text.charCodeAt(p) : NL;
      let itemStart: number;
      if (c === NL || c === HASH) {
        endOfLine();
        itemStart = blockBelow(indent, false);
        arr.push(blockValue);
      } else if (c === DASH && separated(p + 1)) {
        throw DECLINE; // `- - a`: a sequence in a sequence on one line
      } else {
        itemStart = p;
        if (scanKey(false) !== undefined) {
          // `- key: value`: a mapping whose keys line up with this first one
          p = itemStart;
          arr.push(blockMapping(itemStart - lineStart));
        } else {
          arr.push(scanInline(false));
          endOfLine();
          if (nextLine !== -1 && nextIndent > indent) throw DECLINE;
        }
      }
      index.seqItem(itemStart, nodeRecord);
      if (nextLine === -1 || nextIndent < indent) break;
      if (nextIndent > indent) throw DECLINE;
      const first = nextLine + indent;
      if (text.charCodeAt(first) !== DASH || !separated(first + 1)) break; // the parent's next key
    }
    nodeRecord = index.closeSeq(base);
    return arr;
  };

  try {
    // comments or blank lines first are fine; an empty file or an indented top level is not in the subset
    findContentLine(0);
    if (nextLine === -1 || nextIndent !== 0) return undefined;
    const root = nextLine;
    p = root;
    const data = blockMapping(0);
    if (nextLine !== -1) return undefined;
    return { data, index: index.finish(root, nodeRecord), lineStarts };
  } catch (e) {
    if (e === DECLINE) return undefined;
    throw e;
  }
}
