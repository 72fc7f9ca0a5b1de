// Durations and money: parsed once, at the edge, into numbers (milliseconds; USD per hour).
// Money is rounded in exactly one place (`roundUsd`) so that every rendering agrees.

const DURATION_RE = /^(?:(\d+(?:\.\d+)?)(ms|s|m|h|d))+$/;
const PART_RE = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/g;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Parses `90s`, `30m`, `8h`, `1h30m`, `2d`, `500ms` into milliseconds. Returns undefined when the
 * text is not a duration. A bare number is not accepted: units are required.
 * @example parseDuration('1h30m') // 5_400_000
 */
export function parseDuration(text: string): number | undefined {
  const t = text.trim();
  if (!DURATION_RE.test(t)) return undefined;
  let ms = 0;
  for (const m of t.matchAll(PART_RE)) ms += Number(m[1]) * (UNIT_MS[m[2] as string] as number);
  return Number.isFinite(ms) ? Math.round(ms) : undefined;
}

/** The inverse of parseDuration, in the largest units that fit: `1h30m`, `45s`, `250ms`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  const neg = ms < 0;
  let rest = Math.round(Math.abs(ms));
  if (rest === 0) return '0s';
  const parts: string[] = [];
  for (const [u, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${u}`);
      rest %= size;
    }
  }
  if (rest > 0) parts.push(`${rest}ms`);
  return (neg ? '-' : '') + parts.join('');
}

export const HOUR_MS = 3_600_000;

/** Parses a price: a number, or a string like `2.5`, `$2.50`, `2.50/h`. USD per hour. */
export function parseMoney(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const m = /^\s*\$?\s*(\d+(?:\.\d+)?)\s*(?:\/\s*h(?:r|our)?)?\s*$/i.exec(value);
  return m ? Number(m[1]) : undefined;
}

/**
 * The one place money is rounded in data (plans, state, JSON): to 1/10,000 of a dollar, as prices
 * are quoted. Human output rounds further, in `formatUsd` (totals: cents) and `formatUsdRate`
 * (rates: 3–4 significant digits); JSON keeps these values.
 */
export function roundUsd(usd: number): number {
  return Math.round(usd * 10_000) / 10_000;
}

/**
 * A number for people, to 4 significant digits (3 when the 4th is a trailing zero), never in
 * exponent form: `0.5245`, `12.24`, `0.918`, `1235`. For rates (preemptions per hour, prices per
 * hour); totals of money use `formatUsd`.
 */
export function formatRate(n: number): string {
  // A plan formats the same few prices and savings for each of thousands of workloads: remember them.
  const known = rateTexts.get(n);
  if (known !== undefined) return known;
  let s: string;
  if (!Number.isFinite(n)) s = String(n);
  else if (n === 0) s = '0';
  else {
    const abs = Math.abs(n);
    // Past 4 integer digits, keep the integer (no exponent form, no false precision below 1).
    s = (n < 0 ? '-' : '') + (abs >= 10_000 ? String(Math.round(abs)) : trimZeros(Number(abs.toPrecision(4)).toFixed(Math.max(0, 3 - Math.floor(Math.log10(abs))))));
  }
  if (rateTexts.size >= RATE_TEXTS_MAX) rateTexts.clear();
  rateTexts.set(n, s);
  return s;
}

/** formatRate's memory (a pure function of its number; bounded, so a long run cannot grow it). */
const rateTexts = new Map<number, string>();
const RATE_TEXTS_MAX = 4096;

function trimZeros(s: string): string {
  return s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s;
}

/** A money total for people, in cents: `$17.01`, `-$1.20`; `<$0.01` for a non-zero amount under half a cent. */
export function formatUsd(usd: number): string {
  if (!Number.isFinite(usd)) return `$${usd}`;
  const cents = Math.round(Math.abs(usd) * 100);
  if (cents === 0 && usd !== 0) return usd < 0 ? '-<$0.01' : '<$0.01';
  const sign = usd < 0 && cents > 0 ? '-' : '';
  return `${sign}$${(cents / 100).toFixed(2)}`;
}

/** Cents, always (`$0.00` for a tiny amount): for tables whose TOTAL adds up the rows as printed. */
export function formatCents(usd: number): string {
  const cents = Math.round(usd * 100);
  return `${cents < 0 ? '-' : ''}$${(Math.abs(cents) / 100).toFixed(2)}`;
}

/**
 * A price rate for people (USD per hour, per GPU-hour): 3–4 significant digits, and at least the
 * cents: `$0.918`, `$12.24`, `$2.00`, `$0.0123`.
 */
export function formatUsdRate(usd: number): string {
  if (!Number.isFinite(usd)) return `$${usd}`;
  let s = formatRate(Math.abs(usd));
  const dot = s.indexOf('.');
  const decimals = dot < 0 ? 0 : s.length - dot - 1;
  if (Math.abs(usd) < 1000 && decimals < 2) s = Number(s).toFixed(2);
  return `${usd < 0 && s !== '0.00' ? '-' : ''}$${s}`;
}

/** `$1.23/h`: a rate, see formatUsdRate. */
export function formatUsdPerHour(usd: number): string {
  return `${formatUsdRate(usd)}/h`;
}

/** `412 MB`, `12.3 MB`, `1.20 GB` (decimal units, as transfer tools print them). */
export function formatBytes(bytes: number): string {
  const [v, unit] = bytes >= 1e12 ? [bytes / 1e12, 'TB'] : bytes >= 1e9 ? [bytes / 1e9, 'GB'] : [bytes / 1e6, 'MB'];
  return `${v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)} ${unit}`;
}
