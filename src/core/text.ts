// Untrusted text on its way out: the one place that makes strings safe for a terminal and for a
// spreadsheet. Names, zones, GPU models, labels and messages come from specs, state files and
// provider APIs; printed raw, an escape sequence in them can retitle the terminal, recolour or
// hide output, and a CSV cell starting with `=` runs as a formula in a spreadsheet.
//
// Terminal: the CLI's Io passes everything it prints through `safeTerminalText`, which writes
// every control character (C0 but tab and newline, DEL, C1, bidirectional overrides) as a visible
// `\uXXXX`. spotfleet's own colours are not escape characters until then: `sgr()` gives a marker
// with a per-process random part that user text cannot contain, and only the marker becomes ESC.
import { randomBytes } from 'node:crypto';

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
