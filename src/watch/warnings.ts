// Early warnings in watch: a rebalance recommendation or a maintenance event is not an eviction.
// For each workload on the warned node, decideWarning (policy/warning.ts) prices ignore, prepare
// and move with what the node's pool/zone taught us, and the pool's `onWarning` may force one:
//   ignore  — log it and record it against the pool/zone;
//   prepare — acquire the target now and pre-copy the newest verified checkpoint there at low
//             priority (nothing is stopped, no signal is sent); the eviction notice, or the
//             warning's own deadline nearing, then moves the workload there through the usual
//             emergency migration, which moves only the delta; a prepared target the warning's
//             window passes without an eviction is given back (the planner releases its lease);
//   move    — the same preparation at full speed, then the move at once.
// An eviction notice aborts a pre-copy on its node (its own transfer takes over) and counts as the
// warning's follow-up. Every notice, and every preemption that came without one, updates the
// per-pool, per-zone record (state `poolHistory`) the cost model prices preemptions with.
// The state holds the prepared target and the decision (workload `prepared`, `lastWarning`), so a
// watch restarted in between picks the timers up again and never re-decides a warning.
import { leaseAddressForKey, nodeKey, providerKey, workloadAddress } from '../core/address.js';
import { errorMessage } from '../core/errors.js';
import type { NodeInfo, Notice, Observed } from '../core/types.js';
import type { TransferProgress } from '../providers/sdk.js';
import { formatDuration } from '../core/units.js';
import { planFleet } from '../engine/plan.js';
import { StepContext, acquireStep, type StateRecorder } from '../engine/steps.js';
import type { AcquireAction } from '../engine/types.js';
import type { WorkloadDecision, WorkloadDecisionInput } from '../policy/types.js';
import type { ZoneStats } from '../policy/uptime.js';
import {
  decideWarning,
  isDueWarning,
  isEarlyWarning,
  poolHistoryKey,
  preparedActive,
  recordPoolEventOnce,
  warningIsBinding,
  warningWindowEnd,
  type PreparedMove,
  type WarningDecision,
  type WarningRecord,
} from '../policy/warning.js';
import type { Fleet } from '../spec/types.js';
import type { StateFile, WorkloadRecord } from '../state/types.js';
import type { Logger } from '../telemetry/logger.js';
import { withRunning, workloadsOnNode } from './emergency.js';
import type { SeenNotice } from './notice-monitor.js';
import { transferProgressLogger, type ReconcileOutput } from './reconciler.js';
import type { WatchSession } from './watch-session.js';

export interface WarningControllerOptions {
  log: Logger;
  session(): WatchSession | undefined;
  recorder(): StateRecorder | undefined;
  /** The last observation (nodes, instances, prices), with the notices seen since. */
  observed(): Observed;
  /**
   * Moves the workloads on the notice's node now, through the eviction path (signal, emergency
   * migration): `n` is a due warning (`detail.due`; `detail.workloads` names whom, when not all).
   */
  moveNow(n: Notice, seen: SeenNotice): void;
  /** Asks for a reconcile (the planner releases a lease nobody holds any more). */
  reconcile(): void;
  event(kind: string, message: string, address?: string): void;
  /** How long a non-binding warning (rebalance) is watched for its eviction. */
  windowMs: number;
  now?: () => number;
}

interface Precopy {
  provider: string;
  node: string;
  abort: AbortController;
  done: Promise<void>;
}

/** Time to keep between starting a move for a binding warning and its deadline. */
function leadMs(spec: Fleet['workloads'][number] | undefined, input: WorkloadDecisionInput | undefined): number {
  const oh = input?.overhead;
  const grace = spec?.checkpoint?.stopGraceMs ?? 30_000;
  return Math.max(10_000, grace + (oh ? oh.checkpointMs / 2 + oh.transferMs * 0.1 + oh.restartMs : 30_000));
}

export class WarningController {
  private readonly now: () => number;
  /** Warnings decided in this process, by provider/id. */
  private readonly decided = new Set<string>();
  /** Warnings in force per node key: their follow-up window. */
  private readonly warned = new Map<string, { notice: Notice; windowEnd: number }>();
  /** Nodes an eviction notice was recorded for (their preemption is not an unannounced one). */
  private readonly evictedNodes = new Map<string, number>();
  private readonly precopies = new Map<string, Precopy>();
  /** Due moves and expiries armed, by workload address. */
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly tasks = new Set<Promise<void>>();
  private stopped = false;

  constructor(private readonly o: WarningControllerOptions) {
    this.now = o.now ?? Date.now;
  }

  /** An early warning seen by the monitor: decide for each workload on the node, then act. */
  onWarning(seen: SeenNotice, n: Notice): void {
    const key = providerKey(n.provider, n.id);
    if (this.decided.has(key) || this.stopped) return;
    this.decided.add(key);
    this.track(this.handle(seen, n).catch((e: unknown) => this.o.log.error('answering the early warning failed', { action: 'warning', node: n.node, kind: n.kind, err: e })));
  }

  /**
   * An eviction notice (or a due warning): counts in the pool's record (and as the follow-up of a
   * warning on the node), and a pre-copy to or from the node gives way at once.
   */
  onEviction(n: Notice): void {
    const nk = nodeKey(n.provider, n.node);
    for (const [addr, p] of this.precopies) {
      if (p.provider === n.provider && p.node === n.node) {
        p.abort.abort();
        this.o.log.info('pre-copy abandoned: the eviction moves the workload now', { action: 'pre-copy', address: addr, node: n.node });
      }
    }
    for (const addr of this.addressesOn(n.provider, n.node)) this.clearTimer(addr);
    if (isDueWarning(n)) return;
    this.evictedNodes.set(nk, this.now());
    const warning = this.warned.get(nk);
    const followed = warning !== undefined && Date.parse(n.receivedAt) <= warning.windowEnd + 60_000;
    this.track(this.recordEvents(n.provider, n.node, [{ event: 'eviction', id: n.id }, ...(followed ? [{ event: 'warning-followed' as const, id: `followed:${warning.notice.id}` }] : [])], followed ? warning.notice.id : undefined));
  }

  /** Before an eviction's migration: let pre-copies on its node end (they were aborted). */
  async yieldTo(n: Notice): Promise<void> {
    const mine = [...this.precopies.values()].filter((p) => p.provider === n.provider && p.node === n.node);
    for (const p of mine) p.abort.abort();
    await Promise.allSettled(mine.map((p) => p.done));
  }

  /**
   * After each reconcile: preemptions that came with no notice count in their pool's record; a
   * prepared target past its window is given back; timers lost to a restart are armed again.
   */
  async afterReconcile(out: Pick<ReconcileOutput, 'plan' | 'state' | 'observed'>): Promise<void> {
    const recorder = this.o.recorder();
    if (!recorder || this.stopped) return;
    const unannounced: { address: string; node: string; provider: string; id: string; pool?: string; zone?: string }[] = [];
    for (const a of out.plan.actions) {
      if (a.kind !== 'record' || a.exit?.outcome !== 'preempted') continue;
      const nk = nodeKey(a.exit.provider, a.exit.node);
      if (this.evictedNodes.has(nk) || out.observed.notices.some((x) => x.provider === a.exit?.provider && x.node === a.exit.node && !isEarlyWarning(x))) continue;
      const rec = out.state.resources[a.address];
      unannounced.push({ address: a.address, node: a.exit.node, provider: a.exit.provider, id: `unannounced:${a.exit.instanceId}`, ...(rec?.type === 'workload' && rec.pool ? { pool: rec.pool } : {}), ...(rec?.type === 'workload' && rec.zone ? { zone: rec.zone } : {}) });
    }
    if (unannounced.length > 0) {
      const now = this.now();
      await recorder.update((s) => {
        s.poolHistory ??= {};
        for (const u of unannounced) {
          if (!u.pool) continue;
          const warning = this.warned.get(nodeKey(u.provider, u.node));
          // A node lost at a warning's deadline with nobody moved: the warning was followed, by a death.
          recordPoolEventOnce(s.poolHistory, poolHistoryKey(u.pool, u.zone), warning ? 'eviction' : 'unannounced', u.id, now);
          if (warning) recordPoolEventOnce(s.poolHistory, poolHistoryKey(u.pool, u.zone), 'warning-followed', `followed:${warning.notice.id}`, now);
        }
      });
      for (const u of unannounced) this.o.log.warn('preempted without a notice: recorded against its pool', { action: 'pool-history', address: u.address, node: u.node, pool: u.pool, zone: u.zone });
    }
    await this.sweep(recorder.latest);
  }

  /** Aborts pre-copies and timers, and waits for the answers in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    for (const p of this.precopies.values()) p.abort.abort();
    await Promise.allSettled([...this.tasks]);
  }

  // ---------------------------------------------------------------------------------------------

  private track(p: Promise<void>): void {
    // A task that fails (a state write refused or failed) is logged, never an unhandled rejection
    // that ends the watch.
    const q = p.catch((e: unknown) => this.o.log.warn('early-warning bookkeeping failed', { fleet: this.o.session()?.fleet.name, action: 'warning', err: e }));
    this.tasks.add(q);
    void q.finally(() => this.tasks.delete(q));
  }

  private addressesOn(provider: string, node: string): string[] {
    const st = this.o.recorder()?.latest;
    return Object.values(st?.resources ?? {})
      .filter((r): r is WorkloadRecord => r.type === 'workload' && r.provider === provider && (r.node === node || r.lastWarning?.node === node))
      .map((r) => r.address);
  }

  private async handle(seen: SeenNotice, n: Notice): Promise<void> {
    const session = this.o.session();
    const recorder = this.o.recorder();
    if (!session || !recorder) return;
    const now = this.now();
    const windowEnd = warningWindowEnd(n, this.o.windowMs);
    const binding = warningIsBinding(n);
    this.warned.set(nodeKey(n.provider, n.node), { notice: n, windowEnd });
    const state = await recorder.refresh();
    const records = Object.values(state.resources).filter((r): r is WorkloadRecord => r.type === 'workload');
    const observed = this.o.observed();
    const names = workloadsOnNode(records, observed.workloads, session.fleet.name, n.provider, n.node);
    const node = observed.nodes.find((x) => x.provider === n.provider && x.id === n.node);
    const where = this.poolOf(session.fleet, state, n.provider, n.node, node);
    // Seen before (a restarted watch, the same warning polled again): the record stands; only the timers are armed again.
    const known = records.filter((r) => r.lastWarning?.noticeId === n.id);
    await this.recordEvents(n.provider, n.node, [{ event: 'warning', id: n.id }], undefined, where);
    if (known.length > 0) {
      await this.sweep(recorder.latest);
      return;
    }
    this.o.log.warn(`early warning: ${n.kind}${n.action ? ` (${n.action})` : ''} on ${n.node}`, {
      fleet: session.fleet.name, action: 'warning', provider: n.provider, node: n.node, kind: n.kind, source: n.source, deadline: n.deadline, windowEnd: new Date(windowEnd).toISOString(), binding, workloads: names,
    });
    this.o.event('warning', `${n.kind} warning (${n.source}) for node ${n.node}: ${names.length} workload(s); ${binding ? `the node goes at ${n.deadline}` : `watched until ${new Date(windowEnd).toISOString()}`}`);
    const dueNow: string[] = [];
    for (const name of names) {
      const address = workloadAddress(name);
      const got = this.decide(session, recorder.latest, observed, name, n, windowEnd, now);
      if (!got) continue;
      const { decision, input } = got;
      const rec: WarningRecord = {
        noticeId: n.id, kind: n.kind, source: n.source, ...(n.action ? { action: n.action } : {}), node: n.node, at: now, deadline: Date.parse(n.deadline), windowEnd,
        configured: got.configured, response: decision.response,
        ...(decision.target ? { target: { pool: decision.target.pool, ...(decision.target.zone ? { zone: decision.target.zone } : {}), capacity: decision.target.capacity, ...(decision.target.node ? { node: decision.target.node } : {}), pricePerGpuHour: decision.target.pricePerGpuHour } } : {}),
        numbers: decision.numbers, reasons: decision.reasons.map((r) => r.text),
      };
      await recorder.update((s) => {
        const r = s.resources[address];
        if (r?.type === 'workload') r.lastWarning = rec;
      });
      const fields = { fleet: session.fleet.name, action: 'warning', address, node: n.node, kind: n.kind, response: decision.response, configured: got.configured, ...decision.numbers, ...(decision.target ? { target: `${decision.target.pool}${decision.target.zone ? `/${decision.target.zone}` : ''}${decision.target.node ? ` on ${decision.target.node}` : ' (new capacity)'}` } : {}) };
      this.o.log.info(`early warning answered: ${decision.response}`, fields);
      this.o.event('warning-decision', `${address}: ${decision.response} (${decision.reasons.map((r) => r.text).join('; ')})`, address);
      if (decision.response === 'ignore') {
        if (binding) this.o.log.warn(`${address} stays; the node goes at ${n.deadline} and it restarts from its newest checkpoint then`, { fleet: session.fleet.name, action: 'warning', address });
        continue;
      }
      const ok = await this.prepare(session, recorder, name, decision, n, windowEnd, binding);
      if (decision.response === 'move' && ok) dueNow.push(name);
      else if (ok || binding) this.arm(session, name, n, windowEnd, binding, leadMs(session.fleet.workloads.find((w) => w.name === name), input), seen);
    }
    if (dueNow.length > 0) this.fireDue(n, seen, dueNow, 'move now: the cheapest answer to the warning');
  }

  /** The warning's price for one workload: the planner's own options (with the pool record) for it. */
  private decide(session: WatchSession, state: StateFile, observed: Observed, name: string, n: Notice, windowEnd: number, now: number): { decision: WarningDecision; input: WorkloadDecisionInput; configured: WarningRecord['configured'] } | undefined {
    const address = workloadAddress(name);
    const rec = state.resources[address];
    if (rec?.type !== 'workload' || rec.instanceId === undefined) return undefined;
    const obs = withRunning({ ...observed, notices: [...observed.notices.filter((x) => x.id !== n.id), n] }, rec, session.fleet.name);
    const captured = new Map<string, { input: WorkloadDecisionInput; decision: WorkloadDecision }>();
    planFleet(session.fleet, obs, state, {
      now,
      targets: [address],
      marketProviders: session.marketProviders,
      runtimeProviders: session.runtimeProviders,
      bidProviders: session.bidProviders,
      ...(session.policies !== undefined ? { policies: session.policies } : {}),
      ...(obs.zoneStats ? { zoneStats: obs.zoneStats as Record<string, ZoneStats> } : {}),
      captureDecisions: captured,
    });
    const got = captured.get(name);
    const current = got?.input.current;
    if (!got || !current) return undefined;
    const configured = session.fleet.pools.find((p) => p.name === current.pool)?.onWarning ?? 'auto';
    const hist = state.poolHistory?.[poolHistoryKey(current.pool ?? '', current.zone)];
    const decision = decideWarning({ ...got.input, current, notice: { kind: n.kind, deadline: windowEnd, receivedAt: Date.parse(n.receivedAt) }, configured, ...(hist ? { poolHistory: hist } : {}) }, now);
    return { decision, input: got.input, configured };
  }

  /**
   * Acquires the target (when it is new capacity) and pre-copies the newest verified checkpoint
   * there, recording each step in the workload's `prepared`. False when there is nothing to use.
   */
  private async prepare(session: WatchSession, recorder: StateRecorder, name: string, d: WarningDecision, n: Notice, windowEnd: number, binding: boolean): Promise<boolean> {
    const t = d.target;
    const spec = session.fleet.workloads.find((w) => w.name === name);
    if (!t || !spec) return false;
    const address = workloadAddress(name);
    const log = (msg: string, f: Record<string, unknown> = {}): void => this.o.log.info(msg, { fleet: session.fleet.name, action: 'prepare', address, ...f });
    const pool = session.fleet.pools.find((p) => p.name === t.pool);
    const key = `${session.fleet.name}:${name}:warning:${n.id}`;
    const leaseAddress = t.node === undefined ? leaseAddressForKey(t.pool, key, `prepared-${name}`) : undefined;
    const prepared: PreparedMove = {
      noticeId: n.id, kind: n.kind, response: d.response === 'move' ? 'move' : 'prepare', binding, fromNode: n.node,
      provider: t.provider, pool: t.pool, ...(t.zone ? { zone: t.zone } : {}), capacity: t.capacity, pricePerGpuHour: t.pricePerGpuHour,
      ...(t.node ? { node: t.node } : {}), ...(leaseAddress ? { leaseAddress } : {}),
      state: t.node ? 'copying' : 'acquiring', at: this.now(), until: windowEnd,
    };
    const save = (p: Partial<PreparedMove>): Promise<StateFile> =>
      recorder.update((s) => {
        const r = s.resources[address];
        if (r?.type === 'workload' && r.prepared?.noticeId === n.id) Object.assign(r.prepared, p);
      });
    // Recorded before the acquire: a reconcile meanwhile keeps the lease (by its labels) instead of releasing it.
    await recorder.update((s) => {
      const r = s.resources[address];
      if (r?.type === 'workload') r.prepared = prepared;
    });
    const observed = this.o.observed();
    const steps = new StepContext({ fleet: session.fleet, providers: session.providers, recorder, observed, now: this.now, emit: (e) => {
        if (e.type === 'warning') this.o.log.warn(e.message, { action: 'prepare', address: e.address });
      }, mode: 'apply' });
    let targetNode: NodeInfo;
    try {
      if (t.node === undefined) {
        const a: AcquireAction = {
          id: `acquire:${name}:warning`, kind: 'acquire', address: leaseAddress as string, deps: [],
          summary: `acquire ${spec.gpus}×${t.gpuModel} ${t.capacity} in ${t.pool}${t.zone ? `/${t.zone}` : ''}, prepared for a ${n.kind} warning`,
          provider: t.provider,
          request: { pool: t.pool, capacity: t.capacity, gpuModel: t.gpuModel, gpus: spec.gpus, ...(t.zone !== undefined ? { zone: t.zone } : {}), ...(pool?.maxPricePerHour !== undefined ? { maxPricePerGpuHour: pool.maxPricePerHour } : {}), idempotencyKey: key },
          forWorkload: name,
        };
        const t0 = this.now();
        const got = await acquireStep(steps, a);
        const lease = steps.leases.get(a.id);
        await save({ leaseId: String(got.lease), node: String(got.node), state: 'copying' });
        log('prepared target acquired', { lease: got.lease, node: got.node, pool: t.pool, zone: t.zone, durationMs: this.now() - t0 });
        // The next reconcile observes the new node (its notices are watched too) and keeps its lease.
        this.o.reconcile();
        targetNode = await steps.findNode(lease?.provider ?? t.provider, String(got.node), true);
      } else {
        targetNode = await steps.findNode(t.provider, t.node);
      }
    } catch (e) {
      await save({ state: 'failed', error: errorMessage(e) });
      this.o.log.warn(`could not prepare a target for the ${n.kind} warning: ${errorMessage(e)}`, { fleet: session.fleet.name, action: 'prepare', address });
      this.o.reconcile();
      return false;
    }
    // The eviction came while the target was being acquired: its migration moves the workload now.
    if (this.evictedNodes.has(nodeKey(n.provider, n.node))) return true;
    // The pre-copy: the newest verified checkpoint as it is (no signal: nothing is asked of the workload).
    const abort = new AbortController();
    const run = async (): Promise<void> => {
      const t0 = this.now();
      try {
        const from = await steps.findNode(n.provider, n.node);
        const src = session.providers.get(from.provider)?.storage;
        const dst = session.providers.get(targetNode.provider)?.storage;
        const storage = src && (from.provider === targetNode.provider || src.canTransfer?.(from, targetNode)) ? src : dst?.canTransfer?.(from, targetNode) ? dst : undefined;
        if (!spec.checkpoint || spec.checkpoint.shared || !src || !storage) {
          await save({ state: 'ready' });
          log('prepared: nothing to pre-copy (no checkpoint to move, or shared storage)');
          return;
        }
        const ck = await steps.verify(src, steps.verifyRequest(name, from));
        if (!ck) {
          await save({ state: 'ready' });
          log('prepared: no verified checkpoint to pre-copy yet');
          return;
        }
        // Its progress is logged as a move's is (`transferring 412 MB of 1.20 GB ...`), marked a pre-copy.
        const logProgress = transferProgressLogger(this.o.log, session.fleet.name, { migration: 'pre-copy', node: targetNode.id });
        const onProgress = (p: TransferProgress): void => logProgress({ type: 'progress', action: { id: `pre-copy:${address}`, address, kind: 'transfer' }, ...p });
        const res = await storage.transfer({ workload: name, from, to: targetNode, checkpoint: ck, lowPriority: d.response !== 'move', signal: abort.signal, onProgress });
        await save({ state: 'ready', checkpoint: res.checkpoint, precopyBytes: res.bytes, sentBytes: res.sentBytes ?? res.bytes, precopyMs: this.now() - t0 });
        log('pre-copy ok', { node: targetNode.id, checkpoint: res.checkpoint.path, bytes: res.bytes, sentBytes: res.sentBytes ?? res.bytes, durationMs: this.now() - t0, lowPriority: d.response !== 'move' });
      } catch (e) {
        if (abort.signal.aborted) return;
        // The target stays prepared: the move then copies the whole checkpoint itself.
        await save({ state: 'ready', error: `pre-copy failed: ${errorMessage(e)}` });
        this.o.log.warn(`pre-copy failed (the move copies the whole checkpoint): ${errorMessage(e)}`, { fleet: session.fleet.name, action: 'pre-copy', address });
      }
    };
    const done = run().finally(() => this.precopies.delete(address));
    this.precopies.set(address, { provider: n.provider, node: n.node, abort, done });
    // `move` waits for its copy (full speed); `prepare` returns at once: the copy goes on in the background.
    if (d.response === 'move') await done;
    return true;
  }

  /**
   * A binding warning moves the workload (one that prepared) shortly before its deadline; another
   * one gives its target back at its window's end. (A workload whose answer was ignore stays, and
   * restarts from its newest checkpoint after the node is gone.)
   */
  private arm(session: WatchSession, name: string, n: Notice, windowEnd: number, binding: boolean, lead: number, seen: SeenNotice | undefined): void {
    const address = workloadAddress(name);
    if (this.timers.has(address) || this.stopped) return;
    const at = binding ? windowEnd - lead : windowEnd;
    const fire = (): void => {
      this.timers.delete(address);
      if (binding) this.fireDue(n, seen, [name], `the ${n.kind} deadline ${n.deadline} is ${formatDuration(Math.max(0, windowEnd - this.now()))} away`);
      else this.track(this.expire(session, name, n));
    };
    const t = setTimeout(fire, Math.max(0, at - this.now()));
    t.unref?.();
    this.timers.set(address, t);
  }

  private clearTimer(address: string): void {
    const t = this.timers.get(address);
    if (t) clearTimeout(t);
    this.timers.delete(address);
  }

  /** Hands the workloads to the eviction path now, with the warning marked due. */
  private fireDue(n: Notice, seen: SeenNotice | undefined, workloads: string[] | undefined, why: string): void {
    if (this.stopped) return;
    // One due notice per set of workloads: two of them on one node never overwrite each other.
    const due: Notice = { ...n, id: `${n.id}:due${workloads ? `:${workloads.join(',')}` : ''}`, detail: { ...(n.detail ?? {}), due: true, warning: n.id, ...(workloads ? { workloads: workloads.join(',') } : {}) } };
    this.o.log.warn(`early warning: moving now (${why})`, { action: 'warning', node: n.node, kind: n.kind, ...(workloads ? { workloads } : {}) });
    const recorder = this.o.recorder();
    if (recorder) {
      this.track(
        recorder
          .update((s) => {
            for (const r of Object.values(s.resources)) if (r.type === 'workload' && r.lastWarning?.noticeId === n.id && (!workloads || workloads.includes(r.name))) r.lastWarning.outcome = 'moved';
          })
          .then(() => undefined),
      );
    }
    const node = seen?.node ?? this.o.observed().nodes.find((x) => x.provider === n.provider && x.id === n.node) ?? { id: n.node, provider: n.provider, gpuModel: '', gpus: 0, capacity: 'spot', pricePerHour: 0, state: 'ready' };
    this.o.moveNow(due, { notice: due, provider: n.provider, node, seenAt: this.now(), via: seen?.via ?? 'poll' });
  }

  /** The window passed with no eviction: the prepared target is not needed; the planner releases its lease. */
  private async expire(session: WatchSession, name: string, n: Notice): Promise<void> {
    const recorder = this.o.recorder();
    if (!recorder) return;
    const address = workloadAddress(name);
    this.precopies.get(address)?.abort.abort();
    let released: PreparedMove | undefined;
    await recorder.update((s) => {
      const r = s.resources[address];
      if (r?.type !== 'workload') return;
      if (r.prepared?.noticeId === n.id) {
        released = r.prepared;
        delete r.prepared;
      }
      if (r.lastWarning?.noticeId === n.id && r.lastWarning.outcome === undefined) r.lastWarning.outcome = 'not-followed';
    });
    this.warned.delete(nodeKey(n.provider, n.node));
    if (released) {
      this.o.log.info(`the ${n.kind} warning was not followed within its window: the prepared target is given back`, { fleet: session.fleet.name, action: 'prepare', address, node: released.node, lease: released.leaseId });
      this.o.event('warning-expired', `${address}: ${n.kind} warning on ${n.node} not followed; prepared ${released.node ?? 'target'} given back`, address);
      this.o.reconcile();
    }
  }

  /** Expired targets go back; timers a restart lost are armed again from the state. */
  private async sweep(state: StateFile): Promise<void> {
    const session = this.o.session();
    if (!session) return;
    const now = this.now();
    for (const r of Object.values(state.resources)) {
      if (r.type !== 'workload' || !r.prepared || !r.lastWarning || r.lastWarning.noticeId !== r.prepared.noticeId) continue;
      const w = r.lastWarning;
      const n: Notice = { id: w.noticeId, provider: r.provider ?? r.prepared.provider, node: w.node, source: w.source, kind: w.kind, ...(w.action ? { action: w.action } : {}), deadline: new Date(w.deadline).toISOString(), receivedAt: new Date(w.at).toISOString() };
      if (!preparedActive(r.prepared, now)) {
        if (r.prepared.state === 'failed' || r.prepared.until <= now) await this.expire(session, r.name, n);
        continue;
      }
      this.warned.set(nodeKey(n.provider, n.node), { notice: n, windowEnd: r.prepared.until });
      if (r.node !== w.node) continue; // moved already
      this.arm(session, r.name, n, r.prepared.until, r.prepared.binding, leadMs(session.fleet.workloads.find((x) => x.name === r.name), undefined), undefined);
    }
  }

  /** The pool and zone a node belongs to: its workloads' records, its lease, or the pool its provider and capacity match. */
  private poolOf(fleet: Fleet, state: StateFile, provider: string, node: string, info: NodeInfo | undefined): { pool: string; zone?: string } | undefined {
    for (const r of Object.values(state.resources)) {
      if (r.type === 'workload' && r.provider === provider && r.node === node && r.pool) return { pool: r.pool, ...(r.zone ?? info?.zone ? { zone: (r.zone ?? info?.zone) as string } : {}) };
    }
    if (info?.pool) return { pool: info.pool, ...(info.zone ? { zone: info.zone } : {}) };
    const p = fleet.pools.find((x) => x.provider === provider && (!info || x.capacity === info.capacity) && (!x.zones || (info?.zone !== undefined && x.zones.includes(info.zone))));
    return p ? { pool: p.name, ...(info?.zone ? { zone: info.zone } : {}) } : undefined;
  }

  /** Counts events against the node's pool/zone (each id once); marks the warning's outcome when followed. */
  private async recordEvents(provider: string, node: string, events: { event: 'eviction' | 'warning' | 'warning-followed'; id: string }[], followedWarning?: string, where?: { pool: string; zone?: string }): Promise<void> {
    const recorder = this.o.recorder();
    const session = this.o.session();
    if (!recorder || !session) return;
    const info = this.o.observed().nodes.find((x) => x.provider === provider && x.id === node);
    const at = where ?? this.poolOf(session.fleet, recorder.latest, provider, node, info);
    if (!at) return;
    const now = this.now();
    await recorder.update((s) => {
      s.poolHistory ??= {};
      for (const e of events) recordPoolEventOnce(s.poolHistory, poolHistoryKey(at.pool, at.zone), e.event, e.id, now);
      if (followedWarning) for (const r of Object.values(s.resources)) if (r.type === 'workload' && r.lastWarning?.noticeId === followedWarning) r.lastWarning.outcome = 'followed';
    });
  }
}
