// Small helpers every command shares: reading a boolean flag, ordering names. (Tables are
// core/text.ts's formatTable; a provider call under a time limit is engine/refresh.ts's withTimeout.)
import { UsageError } from '../core/errors.js';

/** A `--flag <bool>` value: true/1 or false/0; `dflt` when the flag is absent. */
export function parseBool(name: string, v: string | boolean | undefined, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (typeof v === 'boolean') return v;
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new UsageError(`--${name}: expected true or false, got "${v}"`);
}

/** Code-unit order (not locale order), so listings read the same on every machine. */
export function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
