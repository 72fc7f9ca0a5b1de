// The error hierarchy. Only src/cli/main.ts prints these and maps them to exit codes; everything
// else throws them. A SpotfleetError is a user-facing failure (no stack trace unless --debug);
// any other thrown value is an internal error.

/** Base of every error a user can cause or fix. `code` is stable and machine-readable. */
export class SpotfleetError extends Error {
  readonly code: string;
  /** Extra lines printed under the message (hints, what was expected). */
  readonly details: readonly string[];
  constructor(code: string, message: string, details: readonly string[] = []) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.details = details;
  }
}

/** A position in a source file, 1-based. */
export interface SourcePos {
  file: string;
  line: number;
  col: number;
}

/** One problem found in a spec: where, what, and what was expected. */
export interface SpecProblem extends SourcePos {
  severity: 'error' | 'warning';
  message: string;
  expected?: string;
  /** JSON pointer-ish path into the document, e.g. `/workloads/0/gpus`. */
  path?: string;
  rule?: string;
}

/** A spec that failed to load or validate; carries every problem found, not just the first. */
export class SpecError extends SpotfleetError {
  readonly problems: readonly SpecProblem[];
  constructor(problems: readonly SpecProblem[]) {
    const first = problems.find((p) => p.severity === 'error') ?? problems[0];
    super('SPEC_INVALID', first ? formatProblem(first) : 'invalid spec');
    this.problems = problems;
  }
}

export function formatProblem(p: SpecProblem): string {
  const sev = p.severity === 'warning' ? 'warning: ' : '';
  const exp = p.expected ? ` (expected ${p.expected})` : '';
  return `${p.file}:${p.line}:${p.col}: ${sev}${p.message}${exp}`;
}

/** A provider call failed. Names the provider instance and the address it was working on. */
export class ProviderError extends SpotfleetError {
  readonly provider: string;
  readonly address: string | undefined;
  readonly retryable: boolean;
  /** A machine-readable why, where callers act on it (e.g. `signal-not-ready`). */
  readonly reason: string | undefined;
  constructor(provider: string, message: string, opts: { address?: string; retryable?: boolean; cause?: unknown; reason?: string } = {}) {
    super('PROVIDER_FAILED', `provider "${provider}"${opts.address ? ` (${opts.address})` : ''}: ${message}`);
    this.provider = provider;
    this.address = opts.address;
    this.retryable = opts.retryable ?? false;
    this.reason = opts.reason;
    if (opts.cause !== undefined) (this as { cause?: unknown }).cause = opts.cause;
  }
}

export interface LockHolder {
  id: string;
  pid: number;
  host: string;
  command: string;
  /** ISO-8601 time the lock was taken. */
  time: string;
}

/** The state is locked by someone else. */
export class LockError extends SpotfleetError {
  readonly holder: LockHolder | undefined;
  constructor(message: string, holder?: LockHolder) {
    const who = holder
      ? [`Lock ID: ${holder.id}`, `Holder: pid ${holder.pid} on ${holder.host}`, `Command: ${holder.command}`, `Since: ${holder.time}`]
      : [];
    super('STATE_LOCKED', message, [...who, 'If you are sure no other spotfleet runs, release it with `spotfleet force-unlock ID`.']);
    this.holder = holder;
  }
}

/**
 * A state write lost a compare-and-swap race (another writer moved the serial), or a step's
 * precondition no longer holds in the newest state (the fleet was destroyed, the workload moved).
 * The writer re-reads and re-plans.
 */
export class StateConflictError extends SpotfleetError {
  constructor(message: string) {
    super('STATE_CONFLICT', message, ['Another spotfleet (watch, apply or destroy) changed the state first; run the command again to plan from the new state.']);
  }
}

/** A saved plan no longer matches the state it was made against. */
export class StalePlanError extends SpotfleetError {
  constructor(message: string) {
    super('PLAN_STALE', `Saved plan is stale: ${message}`, ['Run `spotfleet plan` again to make a new plan.']);
  }
}

/** A mandatory policy was violated; blocks apply. */
export class PolicyViolation extends SpotfleetError {
  readonly violations: readonly { policy: string; address: string; message: string }[];
  constructor(violations: readonly { policy: string; address: string; message: string }[]) {
    super(
      'POLICY_VIOLATION',
      `${violations.length} mandatory polic${violations.length === 1 ? 'y' : 'ies'} violated`,
      violations.map((v) => `${v.address}: ${v.policy}: ${v.message}`),
    );
    this.violations = violations;
  }
}

/** Wrong command-line usage (unknown flag value, missing argument). */
export class UsageError extends SpotfleetError {
  constructor(message: string, details: readonly string[] = []) {
    super('USAGE', message, details);
  }
}

/** The user declined at a prompt, or the operation was interrupted. */
export class CancelledError extends SpotfleetError {
  constructor(message = 'cancelled') {
    super('CANCELLED', message);
  }
}

export function isSpotfleetError(e: unknown): e is SpotfleetError {
  return e instanceof SpotfleetError;
}

/** Best-effort message of an unknown thrown value. */
export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}

/** The ProviderError reason of a checkpoint signal not sent because the workload does not catch it. */
export const SIGNAL_NOT_READY = 'signal-not-ready';

/** True for a runtime's "not sent: the workload has no handler for the signal yet" error. */
export function isSignalNotReady(e: unknown): boolean {
  return e instanceof Error && (e as { reason?: unknown }).reason === SIGNAL_NOT_READY;
}
