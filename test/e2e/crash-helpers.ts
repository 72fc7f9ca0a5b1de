// Crash-safety harness for the e2e suite: runs the built CLI's `apply` with the engine's crash hook
// (SPOTFLEET_TEST_CRASH_AT=N: SIGKILL at the Nth boundary between a side effect and its record, see
// crashPoint in src/engine/apply.ts), tells which action kinds were in flight when it died, and
// collects the facts the invariants are asserted on: what really runs, which leases are live, what
// the state file records, and which checkpoints exist on the nodes' folders.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cliAsync, logsOf, openProviders, type CliResult } from './helpers.js';

export const CRASH_ENV = 'SPOTFLEET_TEST_CRASH_AT';

export interface CliRun extends CliResult {
  /** The signal that ended the process, when one did (SIGKILL from the crash hook). */
  signal: NodeJS.Signals | null;
}

/** A run's exit (and signal) and output, for a failing assertion's message. */
export function describeRun(r: CliRun): string {
  return `exit ${r.code}${r.signal ? ` (${r.signal})` : ''}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

/**
 * Runs the CLI without blocking the test's event loop (so several temp fleets can be driven at once)
 * and kills it when it runs past `timeoutMs`, so a hung apply fails the test instead of stalling it.
 */
export async function runCli(args: string[], opts: { cwd: string; env?: Record<string, string>; timeoutMs?: number }): Promise<CliRun> {
  const { child, done } = cliAsync(args, { cwd: opts.cwd, ...(opts.env ? { env: opts.env } : {}) });
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
  try {
    const r = await done;
    return { ...r, signal: child.signalCode };
  } finally {
    clearTimeout(timer);
  }
}

/** `apply --auto-approve` with the crash hook armed at boundary n. */
export function crashingApply(dir: string, n: number): Promise<CliRun> {
  return runCli(['apply', '--auto-approve', dir], { cwd: dir, env: { [CRASH_ENV]: String(n) } });
}

/**
 * The action kinds that had started but not finished when the process died, read from apply's
 * progress lines (`ADDR: Kind: ...` at start, `ADDR: Kind complete|failed ...` at the end).
 * Stdout to a pipe is written synchronously on Linux, so every line printed before SIGKILL is there.
 */
export function inFlightKinds(stdout: string): string[] {
  const open = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const started = /^(\S+): ([A-Z][a-z]+): /.exec(line);
    if (started?.[1] && started[2]) {
      open.set(`${started[1]} ${started[2]}`, started[2].toLowerCase());
      continue;
    }
    const ended = /^(\S+): ([A-Z][a-z]+) (?:complete|failed|skipped)/.exec(line);
    if (ended?.[1] && ended[2]) open.delete(`${ended[1]} ${ended[2]}`);
  }
  return [...new Set(open.values())].sort();
}

export interface Instance {
  id: string;
  node: string;
  provider: string;
  workload: string;
}

/**
 * Running instances of the fleet in `dir`, as the runtimes report them (not the state file); the
 * providers are made from `dir`'s spec, or from `spec` (a copy of the last good one).
 */
export async function runningInstances(dir: string, spec: string = dir): Promise<Instance[]> {
  const opened = await openProviders(dir, spec);
  try {
    const out: Instance[] = [];
    for (const [name, p] of opened.providers) {
      for (const i of (await p.runtime?.list()) ?? []) if (i.state === 'running') out.push({ id: i.id, node: i.node, provider: name, workload: i.workload });
    }
    return out.sort((a, b) => a.workload.localeCompare(b.workload) || a.id.localeCompare(b.id));
  } finally {
    await opened.close();
  }
}

/** The output of one instance, as its runtime keeps it. */
export function instanceLog(dir: string, inst: Instance): Promise<string> {
  return logsOf(dir, inst.provider, inst.node, inst.id);
}

/** Waits until an instance's log matches `re` (the process may still be starting); returns the match. */
export async function waitForLog(dir: string, inst: Instance, re: RegExp, timeoutMs = 15_000): Promise<RegExpMatchArray | null> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const m = (await instanceLog(dir, inst)).match(re);
    if (m || Date.now() > until) return m;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The state file as the CLI wrote it. */
export function readState(dir: string): { serial: number; resources: Record<string, { type: string; leaseId?: string; status?: string }>; pending: { id: string; address: string; action: string; pid: number }[] } {
  return JSON.parse(readFileSync(join(dir, '.spotfleet', 'state.json'), 'utf8')) as ReturnType<typeof readState>;
}

function listNames(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

/**
 * Steps of the finished checkpoints (`ckpt-step-N.json`, the quickstart trainer's names) per
 * workload and node, in the folders of one provider's nodes. The local and sim providers keep a
 * node's checkpoints in `.spotfleet/providers/<provider>/nodes/<node>/checkpoints/<workload>/`
 * (the `checkpointDir` their nodes advertise in `meta`); a released sim node's folder stays.
 */
export function checkpointSteps(dir: string, provider: string): { workload: string; node: string; steps: number[] }[] {
  const root = join(dir, '.spotfleet', 'providers', provider, 'nodes');
  const out: { workload: string; node: string; steps: number[] }[] = [];
  for (const node of listNames(root)) {
    for (const workload of listNames(join(root, node, 'checkpoints'))) {
      const steps = listNames(join(root, node, 'checkpoints', workload))
        .map((f) => /^ckpt-step-(\d+)\.json$/.exec(f)?.[1])
        .filter((s): s is string => s !== undefined)
        .map(Number);
      out.push({ workload, node, steps });
    }
  }
  return out;
}

/** The newest checkpoint step of each workload across one provider's nodes. */
export function newestCheckpoint(dir: string, provider: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const c of checkpointSteps(dir, provider)) for (const s of c.steps) out.set(c.workload, Math.max(out.get(c.workload) ?? -1, s));
  return out;
}

/** Runs `task(i)` for i = 1, 2, ... on `concurrency` workers until `more()` says no more are needed. */
export async function forEachUntil(concurrency: number, more: (i: number) => boolean, task: (i: number) => Promise<void>): Promise<void> {
  let next = 1;
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next;
      if (!more(i)) return;
      next += 1;
      await task(i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, () => worker()));
}
