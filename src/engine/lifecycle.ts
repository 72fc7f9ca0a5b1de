// The workload lifecycle's rules, pure: what an instance's end means (succeeded, failed, preempted,
// or stopped by spotfleet itself), what a failure leads to under the workload's restartPolicy and
// backoffLimit (Kubernetes Jobs' semantics, with SkyPilot's split of preemptions from failures),
// and the exponential back-off between restarts. The planner turns these into actions; apply and
// watch record them; every command reads the phase they leave in the state.
import { nodeKey, providerKey } from '../core/address.js';
import type { NodeInfo, Observed, WorkloadInstance } from '../core/types.js';
import type { WorkloadSpec } from '../spec/types.js';
import { TERMINAL_PHASES, type ExitRecord, type PendingOperation, type WorkloadPhase, type WorkloadRecord } from '../state/types.js';

/** First back-off after a failed exit; doubles per failure up to BACKOFF_CAP_MS (as Kubernetes Jobs). */
export const BACKOFF_BASE_MS = 10_000;
export const BACKOFF_CAP_MS = 5 * 60_000;

export function isTerminal(phase: WorkloadPhase | undefined): boolean {
  return phase !== undefined && TERMINAL_PHASES.has(phase);
}

/** Phases in which the workload has (or is about to have) an instance running. */
export function isActive(phase: WorkloadPhase | undefined): boolean {
  return phase === 'running' || phase === 'starting' || phase === 'checkpointing';
}

/** Back-off before restart number `failures` (1 = after the first failure). */
export function backoffMs(failures: number): number {
  return Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.max(0, failures - 1));
}

export type EndVerdict = 'succeeded' | 'failed' | 'preempted' | 'stopped';

export interface EndFacts {
  /** The exited instance as the runtime reports it; undefined when the runtime no longer knows it. */
  instance: WorkloadInstance | undefined;
  /** The node it ran on, as refresh saw it (undefined: gone). */
  node: NodeInfo | undefined;
  /** The node has an eviction notice. */
  noticed: boolean;
  /** A spotfleet run recorded that it was stopping this instance (a pending stop, a move past its stop). */
  stoppedByUs: boolean;
}

/**
 * What the end of the workload's recorded instance means. A preemption (the node died, has a
 * notice, or the instance vanished with its node) is never the workload's fault; an instance
 * spotfleet itself stopped (a crash between stop and its record) is neither success nor failure.
 */
export function judgeEnd(f: EndFacts): EndVerdict {
  if (f.stoppedByUs) return 'stopped';
  if (!f.node || f.node.state === 'terminated' || f.noticed) return 'preempted';
  if (!f.instance) return 'preempted';
  if (f.instance.exitCode === 0) return 'succeeded';
  if (f.instance.exitCode === undefined) return 'preempted';
  return 'failed';
}

/**
 * Providers whose workloads or nodes could not be read: what runs there is unknown, so no
 * instance of theirs may be judged ended (the planner leaves their workloads as they are).
 */
export function unreadableProviders(observed: Observed): Set<string> {
  return new Set(observed.unknown.filter((u) => u.capability === 'runtime.list' || u.capability === 'nodes.list').map((u) => u.provider));
}

/** How a recorded instance ended, as the providers report it now; `unknown` when they could not be read. */
export type LiveEnd = { verdict: EndVerdict; instance: WorkloadInstance | undefined } | 'unknown';

/**
 * Per workload whose recorded instance the providers no longer report running: the verdict the
 * next apply or reconcile will record, or `unknown` when its provider could not be read. Workloads
 * whose instance runs (or that have none) are absent.
 */
export function liveEnds(workloads: readonly WorkloadRecord[], observed: Observed, pending: readonly PendingOperation[]): Map<string, LiveEnd> {
  const unreadable = unreadableProviders(observed);
  // Indexed once: a lookup per workload in the observed lists made status quadratic in the fleet.
  const instances = firstBy(observed.workloads, (i) => providerKey(i.provider, i.id));
  const nodes = firstBy(observed.nodes, (n) => nodeKey(n.provider, n.id));
  const noticed = new Set(observed.notices.map((n) => nodeKey(n.provider, n.node)));
  const out = new Map<string, LiveEnd>();
  for (const w of workloads) {
    if (w.instanceId === undefined) continue;
    const instance = w.provider === undefined ? undefined : instances.get(providerKey(w.provider, w.instanceId));
    if (instance?.state === 'running') continue;
    if (w.provider !== undefined && unreadable.has(w.provider)) {
      out.set(w.name, 'unknown');
      continue;
    }
    const at = w.provider !== undefined && w.node !== undefined ? nodeKey(w.provider, w.node) : undefined;
    const node = at === undefined ? undefined : nodes.get(at);
    out.set(w.name, { verdict: judgeEnd({ instance, node, noticed: at !== undefined && noticed.has(at), stoppedByUs: stoppedBySpotfleet(w, w.instanceId, pending) }), instance });
  }
  return out;
}

/** The first item per key, as a linear search would find it. */
function firstBy<T>(items: readonly T[], key: (t: T) => string): Map<string, T> {
  const out = new Map<string, T>();
  for (const t of items) {
    const k = key(t);
    if (!out.has(k)) out.set(k, t);
  }
  return out;
}

/** True when a spotfleet run (maybe a dead one) recorded that it was stopping this instance. */
export function stoppedBySpotfleet(rec: WorkloadRecord | undefined, instanceId: string, pending: readonly PendingOperation[]): boolean {
  if (rec?.move?.from.instanceId === instanceId && rec.move.step !== 'decided') return true;
  return pending.some((p) => p.action === 'stop' && p.data.instance === instanceId);
}

export type AfterEnd =
  | { phase: 'succeeded' }
  | { phase: 'failed'; why: string }
  | { phase: 'recovering'; restartAt: number; why: string; countsAsFailure: boolean };

/**
 * What follows an instance's end under the workload's restart policy. Exit 0 ends a job; a service
 * (restartPolicy Always) restarts whatever the exit. A failure restarts with exponential back-off
 * until backoffLimit failures; a preemption restarts at once and never counts.
 */
export function afterEnd(spec: WorkloadSpec, verdict: EndVerdict, failuresSoFar: number, exit: Pick<ExitRecord, 'at' | 'code'>): AfterEnd {
  if (verdict === 'preempted' || verdict === 'stopped') return { phase: 'recovering', restartAt: exit.at, why: verdict === 'preempted' ? 'preempted' : 'stopped by an interrupted spotfleet run', countsAsFailure: false };
  if (verdict === 'succeeded' && spec.restartPolicy !== 'Always') return { phase: 'succeeded' };
  const failures = failuresSoFar + 1;
  const code = exit.code === undefined ? 'an unknown code' : `code ${exit.code}`;
  if (spec.restartPolicy === 'Always') {
    // A service restarts for ever; back-off keeps a crash loop from spinning.
    return { phase: 'recovering', restartAt: exit.at + backoffMs(failures), why: `exited with ${code}; restartPolicy Always`, countsAsFailure: true };
  }
  if (spec.restartPolicy === 'Never') return { phase: 'failed', why: `exited with ${code}; restartPolicy Never` };
  if (failures > spec.backoffLimit) return { phase: 'failed', why: `exited with ${code}: ${failures} failures, over backoffLimit ${spec.backoffLimit}` };
  return { phase: 'recovering', restartAt: exit.at + backoffMs(failures), why: `exited with ${code} (failure ${failures} of ${spec.backoffLimit + 1} allowed)`, countsAsFailure: true };
}
