// The one JSON contract of every `--json` output (docs/json.md): a `format_version` string that
// is the same in every document, and snake_case keys everywhere, as Terraform's JSON output has.
// Documents are built from the internal (camelCase) objects by `toSnakeJson`, which leaves the
// values of user-named maps (labels, env, numbers keyed by names the user wrote) alone.

/**
 * The version of every machine-readable document spotfleet prints. Within a major version fields
 * are only added; a removal or a change of meaning bumps the major version.
 */
export const JSON_FORMAT_VERSION = '1.0';

/** `pricePerGpuHour` → `price_per_gpu_hour`, `gpusFree` → `gpus_free`; snake_case stays as it is. */
export function snakeCase(key: string): string {
  return key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2').toLowerCase();
}

/** Keys whose values are maps the user named (their keys are data, not field names). */
export const USER_MAP_KEYS: ReadonlySet<string> = new Set(['labels', 'env', 'checkpoints']);

/**
 * Deep copy with every object key in snake_case, except inside the values of `preserve` keys
 * (labels, env...). `undefined` fields are dropped, as JSON.stringify would.
 */
export function toSnakeJson(value: unknown, preserve: ReadonlySet<string> = USER_MAP_KEYS): unknown {
  if (Array.isArray(value)) return value.map((v) => toSnakeJson(v, preserve));
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (v === undefined) continue;
    out[snakeCase(k)] = preserve.has(k) ? v : toSnakeJson(v, preserve);
  }
  return out;
}

/** A whole document: `format_version` first, then the body, pretty-printed, ending in a newline. */
export function jsonDocument(body: Record<string, unknown>): string {
  return `${JSON.stringify({ format_version: JSON_FORMAT_VERSION, ...body }, null, 2)}\n`;
}
