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

/** The one place money is rounded: to 1/10,000 of a dollar (prices are quoted to 4 places). */
export function roundUsd(usd: number): number {
  return Math.round(usd * 10_000) / 10_000;
}

/** `$1.2345` with 2 to 4 decimals, trailing zeros past the cents dropped. */
export function formatUsd(usd: number): string {
  const r = roundUsd(usd);
  const sign = r < 0 ? '-' : '';
  let s = Math.abs(r).toFixed(4);
  s = s.replace(/0{1,2}$/, '');
  return `${sign}$${s}`;
}

/** `$1.23/h`. */
export function formatUsdPerHour(usd: number): string {
  return `${formatUsd(usd)}/h`;
}
