// The built-in defaults a resolved fleet falls back to where the spec is silent (see DESIGN.md;
// documented in fleet.schema.json too).
/** Built-in defaults (see DESIGN.md); documented in fleet.schema.json too. */
export const DEFAULT_THRESHOLDS = {
  minSavingsPerHour: 0.5,
  minRuntime: '30m',
  spotPriceAlertRatio: 0.8,
  maxPreemptions: 3,
  preemptionWindow: '6h',
  cooldown: '2h',
} as const;
/** Failed exits a job may have before it is failed (Kubernetes Jobs' default). */
export const DEFAULT_BACKOFF_LIMIT = 6;

export const DEFAULT_FALLBACK = { to: 'on-demand', revertToSpot: true, minDwell: '30m' } as const;
export const DEFAULT_CHECKPOINT = { signal: 'SIGUSR1', stopGrace: '60s', resumeEnv: 'RESUME_FROM_CHECKPOINT' } as const;
/** Defaults of `pools[].node` (see fleet.schema.json). */
export const DEFAULT_NODE_ACCESS = { user: 'root', port: 22, readyTimeout: '10m' } as const;
/** Checkpoints kept per workload when `checkpoint.keep` is not set (the newest, plus two to fall back to). */
export const DEFAULT_CHECKPOINT_KEEP = 3;
/** The sink every fleet has without declaring it. */
export const BUILTIN_SINKS = ['log'] as const;
