// The early-warning backtest: what each answer to a warning (ignore, prepare, move now, the priced
// `auto`, the pool's configured one) would have cost on a trace, against the hindsight optimum.
// Warnings come from the trace where it records them (a wide CSV's `<zone>_rebalance` column);
// otherwise from a seeded synthetic regime on the trace's own interruptions: a share of them is
// warned some minutes ahead, and false alarms (warnings nothing follows) come at a rate per zone
// and day, so warnings are followed by an interruption only sometimes. A warning counts as followed
// when its zone becomes unavailable within the window.
// Each warning is priced with the realised outcome, in the same model decideWarning prices the
// expected one (relative to staying put for the remaining work R, at the warned zone's price pC):
//   ignore  — followed after d: the emergency downtime E at the target's price pT, then the target;
//             not followed: nothing;
//   prepare — the idle target from the warning until the eviction (or the window's end), and on an
//             eviction only the prepared downtime P;
//   move    — the changeover C on both sides, then the target's price for the rest of R.
// `auto` is decideWarning itself, with each zone's follow rate learned online (an outcome counts
// only once it is known), so the table shows what watch would have done. Pure.
import { formatTable } from '../core/text.js';
import { HOUR_MS } from '../core/units.js';
import { tickAt, type SpotTrace } from '../core/trace.js';
import type { PlacementOption } from '../policy/types.js';
import { decideWarning, recordPoolEvent, type OnWarning, type PoolHistory, type WarningResponse } from '../policy/warning.js';
import type { MigrationOverhead, WorkloadSpec } from '../spec/types.js';
import { rng } from './synthetic.js';

export interface SyntheticWarnings {
  seed: number;
  /** Share of the trace's interruptions a warning comes before; default 0.8. */
  warnedShare?: number;
  /** Warnings nothing follows, per zone and day of availability; default 4. */
  falseAlarmsPerZoneDay?: number;
  /** How long before its interruption a warning comes, ms; default 2 to 30 minutes. */
  leadMinMs?: number;
  leadMaxMs?: number;
}

export interface WarningBacktestOptions {
  trace: SpotTrace;
  spec: WorkloadSpec;
  overhead: MigrationOverhead;
  /** Work left when a warning comes: what a move's price difference is paid over; default half the expected duration. */
  remainingMs?: number;
  /** How long a warning waits for its eviction (watch --warning-window); default 30 min. */
  windowMs?: number;
  /** The pool's onWarning. */
  configured: OnWarning;
  /** Used when the trace records no warnings. */
  synthetic: SyntheticWarnings;
  /** Periodic checkpoints: the work at risk decideWarning weighs; default 1 h. */
  checkpointIntervalMs?: number;
}

export interface WarningEvent {
  zone: string;
  at: number;
  /** When the zone became unavailable within the window; absent = not followed. */
  followedAt?: number;
}

export interface PricedWarning extends WarningEvent {
  costs: Record<WarningResponse, number>;
  auto: WarningResponse;
  configured: WarningResponse;
  optimum: WarningResponse;
}

export interface WarningPolicyRow {
  policy: string;
  costUsd: number;
  /** cost − optimum cost (the optimum may be below zero: a cheaper zone to move to). */
  overOptimumUsd: number;
  ignored: number;
  prepared: number;
  moved: number;
}

export interface WarningBacktestResult {
  source: 'trace' | 'synthetic';
  /** How the warnings were made, for the table's heading. */
  description: string;
  windowMs: number;
  warnings: number;
  followed: number;
  rows: WarningPolicyRow[];
  events: PricedWarning[];
}

const RESPONSES: readonly WarningResponse[] = ['ignore', 'prepare', 'move'];

/** Ticks where a zone goes from available to not: its interruptions. */
function interruptions(trace: SpotTrace, z: number): number[] {
  const a = trace.available[z] as Uint8Array;
  const out: number[] = [];
  for (let i = 1; i < a.length; i++) if (a[i - 1] === 1 && a[i] === 0) out.push(trace.times[i] as number);
  return out;
}

function availableAt(trace: SpotTrace, z: number, t: number): boolean {
  const ts = trace.times;
  let lo = 0;
  let hi = ts.length - 1;
  if (hi < 0 || t < (ts[0] as number)) return false;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if ((ts[mid] as number) <= t) lo = mid;
    else hi = mid - 1;
  }
  return (trace.available[z] as Uint8Array)[lo] === 1;
}

function priceAt(trace: SpotTrace, z: number, t: number): number {
  // Before the trace, its first tick's price.
  const p = (trace.spotPrice[z] as Float64Array)[Math.max(0, tickAt(trace, t))] as number;
  return (Number.isFinite(p) ? p : (trace.onDemandPrice[z] as number) * 0.3) / trace.gpusPerInstance;
}

/** The warnings of a trace: its own, or the synthetic regime's; with whether an interruption followed each. */
export function warningEvents(trace: SpotTrace, windowMs: number, synthetic: SyntheticWarnings): { source: 'trace' | 'synthetic'; description: string; events: WarningEvent[] } {
  const events: WarningEvent[] = [];
  const follow = (z: number, at: number): number | undefined => interruptions(trace, z).find((t) => t > at && t <= at + windowMs);
  if (trace.warnings) {
    trace.zones.forEach((zone, z) => {
      for (const at of trace.warnings?.[z] ?? []) {
        if (!availableAt(trace, z, at)) continue; // nothing runs in a zone that is down
        const f = follow(z, at);
        events.push({ zone, at, ...(f !== undefined ? { followedAt: f } : {}) });
      }
    });
    return { source: 'trace', description: `the trace's own rebalance recommendations (${trace.source})`, events: events.sort((a, b) => a.at - b.at || a.zone.localeCompare(b.zone)) };
  }
  const share = synthetic.warnedShare ?? 0.8;
  const perDay = synthetic.falseAlarmsPerZoneDay ?? 4;
  const leadMin = synthetic.leadMinMs ?? 2 * 60_000;
  const leadMax = Math.max(leadMin, synthetic.leadMaxMs ?? 30 * 60_000);
  const rand = rng(synthetic.seed);
  const ts = trace.times;
  trace.zones.forEach((zone, z) => {
    const a = trace.available[z] as Uint8Array;
    // Warned interruptions: some minutes ahead, never before the zone came up.
    for (const t of interruptions(trace, z)) {
      if (rand() >= share) continue;
      const at = t - (leadMin + rand() * (leadMax - leadMin));
      if (!availableAt(trace, z, at)) continue;
      events.push({ zone, at, followedAt: t });
    }
    // False alarms while the zone is up (one may still be followed by chance).
    for (let i = 0; i + 1 < ts.length; i++) {
      if (a[i] !== 1) continue;
      const dt = (ts[i + 1] as number) - (ts[i] as number);
      if (rand() < (perDay * dt) / (24 * HOUR_MS)) {
        const at = (ts[i] as number) + rand() * dt;
        const f = follow(z, at);
        events.push({ zone, at, ...(f !== undefined ? { followedAt: f } : {}) });
      }
    }
  });
  return {
    source: 'synthetic',
    description: `synthetic (seed ${synthetic.seed}): ${Math.round(share * 100)}% of the trace's interruptions warned ${Math.round(leadMin / 60_000)}–${Math.round(leadMax / 60_000)} min ahead, ${perDay} false alarm(s) per zone-day`,
    events: events.sort((a, b) => a.at - b.at || a.zone.localeCompare(b.zone)),
  };
}

/**
 * Prices every warning of the trace under each answer and the optimum.
 * @example runWarningBacktest({ trace, spec, overhead, configured: 'auto', synthetic: { seed: 1 } }).rows
 */
export function runWarningBacktest(o: WarningBacktestOptions): WarningBacktestResult {
  const windowMs = o.windowMs ?? 30 * 60_000;
  const { source, description, events } = warningEvents(o.trace, windowMs, o.synthetic);
  const G = Math.max(1, o.spec.gpus);
  const oh = o.overhead;
  const expected = o.spec.expectedDurationMs ?? 8 * HOUR_MS;
  const Rms = o.remainingMs ?? expected / 2;
  const R = Rms / HOUR_MS;
  const W = windowMs / HOUR_MS;
  const C = (oh.checkpointMs + oh.transferMs + oh.restartMs) / HOUR_MS;
  const E = (oh.restartMs + oh.transferMs + oh.restartMs) / HOUR_MS;
  const P = (oh.transferMs * 0.1 + oh.restartMs) / HOUR_MS;
  const od = Math.min(...o.trace.onDemandPrice) / o.trace.gpusPerInstance;
  const history = new Map<string, PoolHistory>();
  // Outcomes become known when they happen (the eviction) or when the window ends.
  const pending: { at: number; zone: string; followed: boolean }[] = [];
  const learn = (upTo: number): void => {
    pending.sort((a, b) => a.at - b.at);
    while (pending.length > 0 && (pending[0] as { at: number }).at <= upTo) {
      const x = pending.shift() as { at: number; zone: string; followed: boolean };
      if (x.followed) history.set(x.zone, recordPoolEvent(recordPoolEvent(history.get(x.zone), 'warning-followed', x.at), 'eviction', x.at));
    }
  };
  const priced: PricedWarning[] = [];
  for (const ev of events) {
    learn(ev.at);
    const z = o.trace.zones.indexOf(ev.zone);
    const pC = priceAt(o.trace, z, ev.at);
    const options: PlacementOption[] = [];
    o.trace.zones.forEach((zone, j) => {
      if (j === z || !availableAt(o.trace, j, ev.at)) return;
      options.push({ pool: 'spot', provider: 'trace', capacity: 'spot', zone, gpuModel: o.spec.gpuModel ?? '', pricePerGpuHour: priceAt(o.trace, j, ev.at), available: true });
    });
    options.push({ pool: 'on-demand', provider: 'trace', capacity: 'on-demand', gpuModel: o.spec.gpuModel ?? '', pricePerGpuHour: od, available: true });
    history.set(ev.zone, recordPoolEvent(history.get(ev.zone), 'warning', ev.at));
    const hist = history.get(ev.zone);
    const input = {
      workload: { ...o.spec, expectedDurationMs: expected },
      current: { provider: 'trace', pool: 'spot', zone: ev.zone, capacity: 'spot' as const, node: `${ev.zone}-node`, pricePerGpuHour: pC, since: ev.at - HOUR_MS },
      options,
      history: { preemptions: [] },
      progress: { doneMs: Math.max(0, expected - Rms), lastCheckpointAt: ev.at - (o.checkpointIntervalMs ?? HOUR_MS) / 2 },
      overhead: oh,
      notice: { kind: 'rebalance', deadline: ev.at + windowMs, receivedAt: ev.at },
      ...(hist ? { poolHistory: hist } : {}),
    };
    const auto = decideWarning({ ...input, configured: 'auto' }, ev.at);
    const configured = o.configured === 'auto' ? auto.response : decideWarning({ ...input, configured: o.configured }, ev.at).response;
    // The target as decideWarning ranks it (the same one for every answer).
    const pT = auto.target?.pricePerGpuHour ?? decideWarning({ ...input, configured: 'move' }, ev.at).target?.pricePerGpuHour ?? od;
    const d = ev.followedAt !== undefined ? (ev.followedAt - ev.at) / HOUR_MS : undefined;
    const after = d !== undefined ? (pT - pC) * G * Math.max(0, R - d) : 0;
    const costs: Record<WarningResponse, number> = {
      ignore: d !== undefined ? E * G * pT + after : 0,
      prepare: d !== undefined ? pT * G * d + P * G * pT + after : pT * G * W,
      move: C * G * (pC + pT) + (pT - pC) * G * R,
    };
    const optimum = RESPONSES.reduce((a, b) => (costs[b] < costs[a] ? b : a));
    priced.push({ ...ev, costs, auto: auto.response, configured, optimum });
    pending.push({ at: ev.followedAt ?? ev.at + windowMs, zone: ev.zone, followed: ev.followedAt !== undefined });
  }
  const optimumCost = priced.reduce((s, e) => s + e.costs[e.optimum], 0);
  const row = (policy: string, pick: (e: PricedWarning) => WarningResponse): WarningPolicyRow => {
    const picks = priced.map(pick);
    const cost = priced.reduce((s, e, i) => s + e.costs[picks[i] as WarningResponse], 0);
    return { policy, costUsd: cost, overOptimumUsd: cost - optimumCost, ignored: picks.filter((p) => p === 'ignore').length, prepared: picks.filter((p) => p === 'prepare').length, moved: picks.filter((p) => p === 'move').length };
  };
  const rows = [
    row('ignore', () => 'ignore'),
    row('prepare', () => 'prepare'),
    row('move-now', () => 'move'),
    row('auto (priced)', (e) => e.auto),
    row(`configured (onWarning: ${o.configured})`, (e) => e.configured),
    row('optimum', (e) => e.optimum),
  ];
  return { source, description, windowMs, warnings: priced.length, followed: priced.filter((e) => e.followedAt !== undefined).length, rows, events: priced };
}

/** The table: each answer's cost over every warning, against the hindsight optimum. */
export function renderWarningBacktestText(r: WarningBacktestResult): string {
  const usd = (x: number): string => `${x < 0 ? '-' : ''}$${Math.abs(Math.round(x * 100) / 100).toFixed(2)}`;
  const out: string[] = [];
  out.push(`Early warnings: ${r.warnings} warning(s), ${r.followed} followed by an interruption within ${Math.round(r.windowMs / 60_000)} min`);
  out.push(`  from ${r.description}`);
  const head = ['answer', 'cost', 'over optimum', 'ignored', 'prepared', 'moved'];
  const rows = r.rows.map((x) => [x.policy, usd(x.costUsd), usd(x.overOptimumUsd), String(x.ignored), String(x.prepared), String(x.moved)]);
  out.push(...formatTable([head, ...rows], { align: 'numeric', indent: '  ' }));
  out.push('  (costs relative to staying put: an idle prepared target, downtime at the target price, and the price difference of moving)');
  return `${out.join('\n')}\n`;
}

/** JSON (snake_case keys as the rest of `backtest --json`), events included. */
export function warningBacktestJson(r: WarningBacktestResult): Record<string, unknown> {
  const round = (x: number): number => Math.round(x * 10_000) / 10_000;
  return {
    source: r.source,
    description: r.description,
    window_s: r.windowMs / 1000,
    warnings: r.warnings,
    followed: r.followed,
    rows: r.rows.map((x) => ({ policy: x.policy, cost_usd: round(x.costUsd), over_optimum_usd: round(x.overOptimumUsd), ignored: x.ignored, prepared: x.prepared, moved: x.moved })),
    events: r.events.map((e) => ({ zone: e.zone, at: new Date(e.at).toISOString(), followed_at: e.followedAt !== undefined ? new Date(e.followedAt).toISOString() : null, auto: e.auto, configured: e.configured, optimum: e.optimum, costs_usd: { ignore: round(e.costs.ignore), prepare: round(e.costs.prepare), move: round(e.costs.move) } })),
  };
}
