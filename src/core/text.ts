// Text on its way out: the one place that makes untrusted strings safe for a terminal and for a
// spreadsheet. Names, zones, GPU models, labels and messages come from specs, state files and
// provider APIs; printed raw, an escape sequence in them can retitle the terminal, recolour or
// hide output, and a CSV cell starting with `=` runs as a formula in a spreadsheet.
//
// Terminal: the CLI's Io passes everything it prints through `safeTerminalText`, which writes
// every control character (C0 but tab and newline, DEL, C1, bidirectional overrides) as a visible
// `\uXXXX`. spotfleet's own colours are not escape characters until then: `sgr()` gives a marker
// with a per-process random part that user text cannot contain, and only the marker becomes ESC.
//
// Tables: `formatTable` aligns columns by `displayWidth`, the columns a terminal gives text as the
// Io prints it (wide characters, emoji, escaped controls), not by `.length`.
import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';

/** Marks spotfleet's own SGR sequences; random per process so no input can forge one. */
const SGR_MARK = `\u{F8FF}${randomBytes(6).toString('hex')}`;
const SGR_RE = new RegExp(`${SGR_MARK}\\[([0-9;]{1,16})m`, 'g');

/**
 * A colour/style sequence (Select Graphic Rendition) of spotfleet's own, e.g. `sgr(31)` for red.
 * It becomes the real escape sequence only when printed through safeTerminalText (the CLI's Io).
 */
export function sgr(code: number | string): string {
  return `${SGR_MARK}[${code}m`;
}

/** The styles spotfleet prints in. */
export type Style = 'bold' | 'dim' | 'red' | 'green' | 'yellow' | 'magenta' | 'cyan';

/**
 * Wraps text in a style when colour is on (`o.color`: the Io's decision, which honours NO_COLOR,
 * --no-color, TERM=dumb and a non-terminal stdout); no style, or colour off, leaves it plain. The
 * codes are node's own (util.inspect.colors, the table util.styleText reads). styleText itself does
 * not fit: it writes real escape bytes, which the Io shows as `\u001b` so that user text cannot
 * send any (unmasking them afterwards would unmask forged ones too), and its own colour check
 * differs (an empty NO_COLOR turns colour off, FORCE_COLOR turns it on, and it asks stdout even
 * for text bound for stderr).
 * @example paint({ color: true }, 'red', 'Error:') // sgr(31) + 'Error:' + sgr(39)
 */
export function paint(o: { color: boolean }, style: Style | undefined, text: string): string {
  if (!o.color || style === undefined) return text;
  const [open, close] = inspect.colors[style] as [number, number];
  return `${sgr(open)}${text}${sgr(close)}`;
}

// C0 controls except \t and \n, DEL, C1 controls, and the bidirectional/isolate controls that can
// make text read differently from what it is (CVE-2021-42574), line/paragraph separators.
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g;

/** `\u001b` for ESC: visible, and still a valid escape inside a JSON string. */
function visible(ch: string): string {
  return `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

/**
 * Makes text safe to print on a terminal: control characters become visible `\uXXXX`, then
 * spotfleet's own style markers (sgr) become escape sequences.
 * @example safeTerminalText('zone \u001b]0;pwned\u0007') // 'zone \\u001b]0;pwned\\u0007'
 */
export function safeTerminalText(text: string): string {
  return text.replace(UNSAFE, visible).replace(SGR_RE, '\u001b[$1m');
}

/** Plain text without spotfleet's style markers (for files and non-terminal output). */
export function withoutStyles(text: string): string {
  return text.replace(SGR_RE, '');
}

const PLAIN_NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

/**
 * One CSV cell (RFC 4180 quoting) that a spreadsheet shows as text: a value starting with `=`,
 * `+`, `-`, `@`, tab or carriage return gets a leading `'` (OWASP's advice against CSV
 * injection), unless it is a plain number such as -3.25.
 * @example csvCell('=HYPERLINK("http://x")') // '"\'=HYPERLINK(""http://x"")"'
 */
export function csvCell(value: string | number): string {
  let t = String(value);
  if (typeof value === 'string' && /^[=+\-@\t\r]/.test(t) && !PLAIN_NUMBER.test(t)) t = `'${t}`;
  return /[",\n\r]/.test(t) || t !== t.trim() ? `"${t.replace(/"/g, '""')}"` : t;
}

// Terminal columns of one user-perceived character (grapheme): two for East Asian wide and
// fullwidth characters and for emoji shown as pictures, none for combining marks and zero-width
// format characters, one otherwise.
const WIDE_RANGES: readonly (readonly [number, number])[] = [
  [0x1100, 0x115f], [0x231a, 0x231b], [0x2329, 0x232a], [0x2e80, 0x303e], [0x3041, 0x33ff], [0x3400, 0x4dbf], [0x4e00, 0x9fff],
  [0xa000, 0xa4cf], [0xa960, 0xa97f], [0xac00, 0xd7a3], [0xf900, 0xfaff], [0xfe10, 0xfe19], [0xfe30, 0xfe6f], [0xff00, 0xff60],
  [0xffe0, 0xffe6], [0x1b000, 0x1b2ff], [0x1f200, 0x1f2ff], [0x20000, 0x3fffd],
];
const ZERO_WIDTH = /^[\p{Mn}\p{Me}\p{Cf}]+$/u;
const EMOJI = /\p{Emoji_Presentation}|\uFE0F/u;
// Made on first use: building a Segmenter loads ICU's break rules, tens of milliseconds that every
// CLI run would pay at startup although only tables with non-ASCII text need it.
let graphemes: Intl.Segmenter | undefined;

function graphemeWidth(g: string): number {
  if (ZERO_WIDTH.test(g)) return 0;
  if (EMOJI.test(g)) return 2;
  const cp = g.codePointAt(0) as number;
  return WIDE_RANGES.some(([lo, hi]) => cp >= lo && cp <= hi) ? 2 : 1;
}

/**
 * The columns `text` takes on a terminal as the Io prints it: spotfleet's style markers take none,
 * a control character takes the six of its visible `\uXXXX`, a wide (CJK, fullwidth) character or
 * an emoji takes two, a combining mark none. `.length` counts UTF-16 code units, which is none of
 * these.
 * @example displayWidth('東京-1a') // 7
 */
export function displayWidth(text: string): number {
  const shown = withoutStyles(text).replace(UNSAFE, visible);
  if (/^[\x20-\x7e]*$/.test(shown)) return shown.length;
  let w = 0;
  graphemes ??= new Intl.Segmenter('en', { granularity: 'grapheme' });
  for (const { segment } of graphemes.segment(shown)) w += graphemeWidth(segment);
  return w;
}

/** A row of `formatTable` that draws a rule (dashes the width of each column) across the table. */
export const TABLE_RULE = Symbol('table rule');

export interface TableOptions {
  /**
   * Per column; default left. A right-aligned column pads on its left, so numbers line up;
   * `numeric`: the first column (the row's label) left, every other right.
   */
  align?: readonly ('left' | 'right')[] | 'numeric';
  /** Written before every line; default none. */
  indent?: string;
}

/**
 * Text rows as aligned columns, two spaces apart, measured by display width (so a zone or a name in
 * CJK, or with an emoji, keeps the columns straight); lines have no trailing spaces.
 * @example formatTable([['NAME', 'GPUS'], ['gpu-1', '4']], { align: ['left', 'right'] }) // ['NAME   GPUS', 'gpu-1     4']
 */
export function formatTable(rows: readonly (readonly string[] | typeof TABLE_RULE)[], opts: TableOptions = {}): string[] {
  const cells = rows.filter((r): r is readonly string[] => r !== TABLE_RULE);
  const columns = Math.max(0, ...cells.map((r) => r.length));
  const widths = Array.from({ length: columns }, (_, i) => Math.max(0, ...cells.map((r) => displayWidth(r[i] ?? ''))));
  const indent = opts.indent ?? '';
  return rows.map((r) => {
    if (r === TABLE_RULE) return `${indent}${widths.map((w) => '-'.repeat(w)).join('  ')}`;
    const line = r.map((c, i) => {
      const pad = ' '.repeat(Math.max(0, (widths[i] ?? 0) - displayWidth(c)));
      const right = opts.align === 'numeric' ? i > 0 : opts.align?.[i] === 'right';
      return right ? pad + c : c + pad;
    });
    return `${indent}${line.join('  ')}`.trimEnd();
  });
}
