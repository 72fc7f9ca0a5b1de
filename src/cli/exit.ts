// Exit codes, chosen in main.ts only; commands set `process.exitCode` to one of these for success
// variants (changes present, files to format).
export const ExitCode = {
  Ok: 0,
  Error: 1,
  /** `plan --detailed-exitcode`: the plan has changes. */
  Changes: 2,
  /** `fmt --check`: some file would change. */
  FmtNeeded: 3,
  Interrupted: 130,
} as const;
