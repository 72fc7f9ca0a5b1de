// Watch's log for a person at a terminal: one short line per event instead of the JSON that
// journald, Loki and `jq` read. `--log-format auto` (the default) picks this on a TTY and JSON
// otherwise, as kubectl and Terraform do. The JSON line stays the single source: this only
// re-renders it, so no field can reach one format and not the other.
import { formatDuration } from '../core/units.js';
import { paint, type Style } from '../core/text.js';

export type LogFormat = 'json' | 'text';

const LEVEL_STYLE: Record<string, Style | undefined> = { error: 'red', fatal: 'red', warn: 'yellow', info: 'cyan', debug: 'dim', trace: 'dim' };
/** Fields shown in the line's fixed places, or not at all (the fleet is the same on every line). */
const PLACED = new Set(['time', 'level', 'msg', 'address', 'fleet']);

function value(k: string, v: unknown): string {
  if (typeof v === 'number' && /Ms$/.test(k)) return formatDuration(v);
  if (typeof v === 'string') return /\s/.test(v) ? JSON.stringify(v) : v;
  if (v && typeof v === 'object' && 'message' in v && typeof v.message === 'string') return JSON.stringify(v.message);
  return JSON.stringify(v);
}

/**
 * Renders one JSON log line as `12:31:05 INFO  workload.a  start ok  node=od-1 duration=1.2s`.
 * A line that is not JSON comes back as it is.
 * @example formatLogLine('{"time":"2026-12-05T12:31:05.000Z","level":"info","msg":"start ok","address":"workload.a"}', { color: false })
 * // '12:31:05 INFO  workload.a  start ok\n'
 */
export function formatLogLine(line: string, o: { color: boolean }): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  if (!rec || typeof rec !== 'object') return line;
  const t = typeof rec.time === 'string' ? new Date(rec.time) : new Date();
  const hhmmss = Number.isNaN(t.getTime()) ? '--:--:--' : t.toISOString().slice(11, 19);
  const level = typeof rec.level === 'string' ? rec.level : 'info';
  const style = LEVEL_STYLE[level];
  const lv = level.toUpperCase().padEnd(5);
  const parts = [paint(o, 'dim', hhmmss), style ? paint(o, style, lv) : lv];
  if (typeof rec.address === 'string') parts.push(paint(o, 'bold', rec.address));
  parts.push(typeof rec.msg === 'string' ? rec.msg : '');
  const rest = Object.entries(rec)
    .filter(([k, v]) => !PLACED.has(k) && v !== undefined && v !== null)
    .map(([k, v]) => `${k.replace(/Ms$/, '')}=${value(k, v)}`);
  if (rest.length > 0) parts.push(paint(o, 'dim', rest.join(' ')));
  return `${parts.join('  ')}\n`;
}
