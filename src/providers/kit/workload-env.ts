// What a workload's environment is built from. Never the operator's whole environment (it holds
// cloud credentials, API tokens, webhook secrets): only
// - the spec's `env`,
// - spotfleet's own variables (SPOTFLEET_*, CHECKPOINT_DIR, the resume variable),
// - the variables the spec names in `passEnv`, with their values from spotfleet's environment,
// - for processes on this machine (local, sim), a minimal base so a command is found and behaves
//   as in a login shell: PATH, HOME, USER, LOGNAME, SHELL, LANG, LANGUAGE, LC_*, TZ, TMPDIR.
//   Containers get their base from the image instead.

/** Variables of spotfleet's environment every local process workload gets (see the header). */
export const PROCESS_BASE_ENV: readonly string[] = ['PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'LANG', 'LANGUAGE', 'TZ', 'TMPDIR'];

function isBase(name: string): boolean {
  return PROCESS_BASE_ENV.includes(name) || /^LC_[A-Z_]+$/.test(name);
}

/** The minimal base of a local process workload, from spotfleet's environment. */
export function processBaseEnv(source: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of Object.keys(source).sort()) {
    const v = source[k];
    if (v !== undefined && isBase(k)) out[k] = v;
  }
  return out;
}

/** The values of the `passEnv` names that are set in spotfleet's environment (unset ones are left out). */
export function passedEnv(source: Readonly<Record<string, string | undefined>>, names: readonly string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of names ?? []) {
    const v = source[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}
