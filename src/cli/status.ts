// `spotfleet status`: what runs where, on which capacity, at what $/h, since when, the last move of
// each workload and why — and, when `spotfleet watch` runs for this fleet, the controller's view.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { jsonDocument, toSnakeJson } from '../core/json.js';
import { formatTable } from '../core/text.js';
import { formatDuration, formatUsdPerHour, roundUsd } from '../core/units.js';
import { nodeKey } from '../core/address.js';
import type { Notice, Observed } from '../core/types.js';
import { liveEnds, type LiveEnd } from '../engine/lifecycle.js';
import { refreshFleet } from '../engine/refresh.js';
import type { WorkloadRecord, LeaseRecord } from '../state/types.js';
import { supportsLeadership } from '../state/leadership.js';
import type { StateStore } from '../state/store.js';
import type { CliApp } from './app.js';
import { addStateOptions, openSession, type StateOptions } from './common.js';
import { withIsoTimes } from './state-view.js';
import { parseBool } from './util.js';

export interface ControllerInfo {
  pid: number;
  listen?: string;
  startedAt: string;
  /** Replicas on a shared backend: the leader, as the backend records it. */
  leader?: { holder: string; host?: string; epoch: number; since: string; changes: number };
}

/**
 * Reads the live controller's view: on a backend with leader leases, the leading replica's (from
 * the lease); otherwise the watch of this state folder (watch.json), when it runs.
 */
export async function readControllerStatus(stateDir: string, store?: StateStore): Promise<{ info: ControllerInfo; status?: unknown } | undefined> {
  let info: ControllerInfo;
  if (store && supportsLeadership(store)) {
    const l = await store.currentLeader();
    if (!l?.live) return undefined;
    const i = l.info as { pid?: number; host?: string; listen?: string; startedAt?: string };
    info = { pid: i.pid ?? 0, startedAt: i.startedAt ?? l.since, ...(i.listen ? { listen: i.listen } : {}), leader: { holder: l.holder, ...(i.host ? { host: i.host } : {}), epoch: l.epoch, since: l.since, changes: l.changes } };
  } else {
    try {
      info = JSON.parse(readFileSync(join(stateDir, 'watch.json'), 'utf8')) as ControllerInfo;
      process.kill(info.pid, 0);
    } catch {
      return undefined;
    }
  }
  if (!info.listen) return { info };
  try {
    const res = await fetch(`http://${info.listen}/status`, { signal: AbortSignal.timeout(1500) });
    return { info, status: await res.json() };
  } catch {
    return { info };
  }
}

/** Phases in the header's order; `ended` is a running instance the providers say has ended, not recorded yet. */
const PHASE_ORDER = ['running', 'starting', 'checkpointing', 'migrating', 'recovering', 'pending', 'ended', 'succeeded', 'failed', 'cancelled'];

export function register(program: Command, app: CliApp): void {
  const cmd = program
    .command('status')
    .description('what runs where, on which capacity, at what $/h, since when')
    .argument('[path]', 'fleet file or folder', '.')
    .option('--refresh <bool>', 'ask the providers what runs (false: the state only)', 'true')
    .option('--json', 'print as JSON');
  addStateOptions(cmd).action(async (path: string, opts: StateOptions & { refresh: string; json?: boolean }) => {
    const refresh = parseBool('refresh', opts.refresh, true);
    const session = await openSession(app, path, { ...opts, withoutProviders: !refresh });
    try {
      const state = await session.store.read();
      const observed: Observed | undefined = refresh ? await refreshFleet(session.providers, { allowPartial: true }) : undefined;
      const now = Date.now();
      const workloads = Object.values(state.resources).filter((r): r is WorkloadRecord => r.type === 'workload').sort((a, b) => a.name.localeCompare(b.name));
      const leases = Object.values(state.resources).filter((r): r is LeaseRecord => r.type === 'lease').sort((a, b) => a.address.localeCompare(b.address));
      const controller = await readControllerStatus(session.stateDir, session.store);
      // An instance the state calls running that the providers say has ended: what the next apply
      // or reconcile will record (the planner's own judgement). It no longer costs. One whose
      // provider could not be read is unknown, and stays charged as the state has it.
      const ends = observed ? liveEnds(workloads, observed, state.pending) : new Map<string, LiveEnd>();
      const hasEnded = (w: WorkloadRecord): boolean => ends.has(w.name) && ends.get(w.name) !== 'unknown';
      const noticeAt = new Map<string, Notice>();
      for (const n of observed?.notices ?? []) if (!noticeAt.has(nodeKey(n.provider, n.node))) noticeAt.set(nodeKey(n.provider, n.node), n);
      const live = (w: WorkloadRecord): string => {
        const e = ends.get(w.name);
        if (e === 'unknown') return `${w.phase} (unknown: ${w.provider ?? 'its provider'} could not be read)`;
        if (e) return `${{ succeeded: 'completed (exit 0)', failed: `exited (code ${e.instance?.exitCode ?? '?'})`, preempted: 'died', stopped: 'stopped' }[e.verdict]}; not recorded yet`;
        const notice = w.provider !== undefined && w.node !== undefined ? noticeAt.get(nodeKey(w.provider, w.node)) : undefined;
        return notice && w.instanceId !== undefined ? `evicting (${notice.kind}, deadline ${notice.deadline})` : w.phase;
      };
      // Charged while an instance runs (the ledger's open segment); a finished job costs nothing,
      // nor does one the providers say has ended.
      const charging = (w: WorkloadRecord): boolean => w.since !== undefined && w.instanceId !== undefined && !hasEnded(w);
      const specNames = new Set(session.fleet.workloads.map((w) => w.name));
      const pending = session.fleet.workloads.filter((w) => !workloads.some((r) => r.name === w.name)).map((w) => w.name);
      let total = 0;
      const byCap: Record<string, number> = {};
      const byPhase: Record<string, number> = {};
      for (const w of workloads) {
        const phase = hasEnded(w) ? 'ended' : w.phase;
        byPhase[phase] = (byPhase[phase] ?? 0) + 1;
        if (!charging(w)) continue;
        const c = (w.pricePerGpuHour ?? 0) * w.gpus;
        total += c;
        byCap[w.capacity ?? 'unknown'] = (byCap[w.capacity ?? 'unknown'] ?? 0) + c;
      }
      const destroyed = state.fleetMode?.mode === 'destroyed';
      if (opts.json) {
        app.io.stdout.write(
          jsonDocument({
            fleet: session.fleet.name,
            mode: toSnakeJson(withIsoTimes(state.fleetMode ?? { mode: 'active' })),
            cost_per_hour: roundUsd(total),
            cost_per_hour_by_capacity: Object.fromEntries(Object.entries(byCap).map(([k, v]) => [k, roundUsd(v)])),
            phases: byPhase,
            workloads: workloads.map((w) => ({ ...(toSnakeJson(withIsoTimes(w)) as Record<string, unknown>), live: live(w), in_spec: specNames.has(w.name) })),
            leases: toSnakeJson(withIsoTimes(leases)),
            not_applied: pending,
            controller: controller ? toSnakeJson(controller) : null,
            unknown: toSnakeJson(observed?.unknown ?? []),
          }),
        );
        return;
      }
      const capText = Object.entries(byCap).sort().map(([k, v]) => `${k} ${formatUsdPerHour(v)}`).join(', ');
      const phaseText = PHASE_ORDER.filter((p) => byPhase[p]).map((p) => `${byPhase[p]} ${p}`).join(', ') || 'no workloads';
      if (destroyed) app.io.out(`Fleet ${session.fleet.name}: destroyed (${state.fleetMode?.by ?? 'destroy'} at ${new Date(state.fleetMode?.at ?? 0).toISOString()}); nothing runs until the next \`spotfleet apply\`.`);
      app.io.out(`Fleet ${session.fleet.name}: ${phaseText}; ${formatUsdPerHour(total)}${capText ? ` (${capText})` : ''}\n`);
      const rows = [['WORKLOAD', 'PHASE', 'NODE', 'CAPACITY', 'POOL/ZONE', '$/h', 'SINCE']];
      for (const w of workloads) {
        const placed = w.since !== undefined && w.instanceId !== undefined;
        rows.push([
          w.name,
          live(w),
          placed ? w.node ?? '-' : '-',
          placed ? w.capacity ?? '-' : '-',
          placed ? `${w.pool ?? '-'}${w.zone ? `/${w.zone}` : ''}` : '-',
          charging(w) ? formatUsdPerHour((w.pricePerGpuHour ?? 0) * w.gpus) : '-',
          w.since ? `${new Date(w.since).toISOString()} (${formatDuration(Math.round((now - w.since) / 1000) * 1000)} ago)` : w.finishedAt ? `ended ${new Date(w.finishedAt).toISOString()}` : '-',
        ]);
      }
      for (const line of formatTable(rows)) app.io.out(line);
      for (const w of workloads) {
        if (w.pendingReason && (w.phase === 'pending' || w.phase === 'recovering')) app.io.out(`  ${w.name}: ${w.phase}: ${w.pendingReason.message}${w.pendingReason.until && w.pendingReason.until > now ? ` (restarts at ${new Date(w.pendingReason.until).toISOString()})` : ''}`);
        if (w.lastExit && (w.phase === 'succeeded' || w.phase === 'failed' || w.phase === 'recovering')) app.io.out(`  ${w.name}: last exit ${w.lastExit.code !== undefined ? `code ${w.lastExit.code}` : '(no code)'} on ${w.lastExit.node} at ${new Date(w.lastExit.at).toISOString()} (${w.lastExit.outcome})`);
        if (w.failures > 0 || w.recoveries > 0) app.io.out(`  ${w.name}: ${w.failures} failure(s), ${w.recoveries} recovery(ies) after preemption`);
        if (w.move) app.io.out(`  ${w.name}: moving ${w.move.from.node ?? '?'} → ${w.move.to.node ?? w.move.to.pool ?? '?'} (${w.move.reason}; step ${w.move.step})`);
        const m = w.moves.at(-1);
        if (m) app.io.out(`  ${w.name}: last move ${new Date(m.at).toISOString()} ${m.from ?? '?'} → ${m.to}: ${m.reason}${m.downtimeMs !== undefined ? ` (downtime ${formatDuration(m.downtimeMs)})` : ''}${m.outcome === 'lost-work' ? `; lost about ${formatDuration(m.lostWorkMs ?? 0)} of work` : ''}`);
        if (w.pinnedOnDemandUntil && w.pinnedOnDemandUntil > now) app.io.out(`  ${w.name}: kept on on-demand until ${new Date(w.pinnedOnDemandUntil).toISOString()}: ${w.pinnedReason ?? ''}`);
      }
      if (pending.length > 0) app.io.out(`\nNot applied yet: ${pending.join(', ')} (run \`spotfleet apply\`)`);
      if (leases.length > 0) {
        app.io.out('');
        for (const line of formatTable([['LEASE', 'NODE', 'CAPACITY', 'ZONE', '$/h'], ...leases.map((l) => [l.address, l.node ?? '-', l.capacity, l.zone ?? '-', formatUsdPerHour(l.pricePerHour)])])) app.io.out(line);
      }
      for (const u of observed?.unknown ?? []) app.io.out(`\nWarning: ${u.error}`);
      if (controller) {
        const ld = controller.info.leader;
        app.io.out(`\nController: spotfleet watch running (pid ${controller.info.pid}${ld?.host ? ` on ${ld.host}` : ''}, since ${controller.info.startedAt}${controller.info.listen ? `, http://${controller.info.listen}` : ''})`);
        if (ld) app.io.out(`  leader: ${ld.holder} since ${ld.since}, epoch ${ld.epoch} (${ld.changes} leadership change${ld.changes === 1 ? '' : 's'} so far)`);
        const v = controller.status as { lastReconcile?: { at: string; ok: boolean; durationMs: number; error?: string }; health?: string; queueDepth?: number; monitor?: { nodes: number; polls: number; errors: number }; recentEvents?: { at: string; kind: string; message: string }[] } | undefined;
        if (v) {
          if (v.lastReconcile) app.io.out(`  last reconcile: ${v.lastReconcile.at} ${v.lastReconcile.ok ? 'ok' : `failed: ${v.lastReconcile.error ?? ''}`} (${v.lastReconcile.durationMs} ms); health ${v.health ?? '?'}; queue ${v.queueDepth ?? 0}`);
          if (v.monitor) app.io.out(`  notice monitor: ${v.monitor.nodes} nodes, ${v.monitor.polls} polls, ${v.monitor.errors} errors`);
          for (const e of (v.recentEvents ?? []).slice(-5)) app.io.out(`  ${e.at} ${e.kind}: ${e.message}`);
        }
        if (destroyed) app.io.out('  idle: the fleet is destroyed; watch acts again after the next `spotfleet apply`');
      } else app.io.out('\nController: no `spotfleet watch` is running for this fleet.');
    } finally {
      await session.close();
    }
  });
}
