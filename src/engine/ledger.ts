// The savings ledger, computed: from a state file (closed ledger segments plus the open segment of
// every running workload, up to `now`) to per-group money and time — what was paid, what on-demand
// would have cost, what was saved — clipped to a window, plus a cumulative cost series for the
// report's chart and the list of migrations. Pure: no I/O, no clock (now comes in options).
//
// Rounding rule, so that every rendering agrees and a table's totals equal the sum of its rows:
// each row's money is rounded once with `roundUsd`, its saved $ is the difference of the rounded
// values, and every total is the sum of the rounded row values.
import { JSON_FORMAT_VERSION } from '../core/json.js';
import type { CapacityType } from '../core/types.js';
import { HOUR_MS, roundUsd } from '../core/units.js';
import type { Fleet } from '../spec/types.js';
import type { LedgerEntry, MoveRecord, StateFile, WorkloadRecord } from '../state/types.js';

/** Version of the `savings --json` document; bump the major on incompatible changes. */
export const SAVINGS_FORMAT_VERSION = JSON_FORMAT_VERSION;

/** Group rows by workload name, or by the value of one workload label from the fleet spec. */
export type LedgerGroupBy = { kind: 'workload' } | { kind: 'label'; key: string };

/** The group key of workloads that do not carry the label being grouped by. */
export const NO_LABEL = '(none)';

/** One stretch of time a workload ran on one placement, clipped to the window. */
export interface LedgerSegment extends LedgerEntry {
  /** The workload still runs there: `to` is the window's end, not a stop. */
  open: boolean;
  /**
   * The on-demand counterfactual price was not recorded for this segment and had to be inferred
   * (see `openSegmentOnDemandPrice`); with no basis at all it equals the price paid (no savings).
   */
  onDemandEstimated?: boolean;
}

export interface LedgerOptions {
  /** ms epoch: the end of the window and of every open segment. */
  now: number;
  /** ms epoch: the start of the window; everything before it is clipped away. Default: all time. */
  since?: number;
  /** Default: by workload. */
  by?: LedgerGroupBy;
  /** The fleet spec, for workload labels (grouping by label) and GPU models (price inference). */
  fleet?: Pick<Fleet, 'workloads'>;
}

/** Time and money on one capacity type. */
export interface CapacityUsage {
  /** Wall-clock ms the workload(s) ran on this capacity. */
  ms: number;
  /** ms × GPUs, in GPU-hours. */
  gpuHours: number;
  actualUsd: number;
  onDemandUsd: number;
}

export interface SavingsRow {
  /** Workload name, or label value (`(none)` when the label is missing). */
  key: string;
  /** Workloads in this group, sorted. */
  workloads: string[];
  spotHours: number;
  onDemandHours: number;
  actualUsd: number;
  onDemandUsd: number;
  savedUsd: number;
  /** saved / on-demand × 100, two decimals; 0 when nothing was spent. */
  savedPct: number;
  migrations: number;
  failedMigrations: number;
  downtimeMs: number;
  byCapacity: Record<CapacityType, CapacityUsage>;
  /** Some segment's on-demand price was inferred rather than recorded. */
  onDemandEstimated: boolean;
  /** The group's workloads by lifecycle phase (as the state records them now). */
  phases: Record<string, number>;
}

export type SavingsTotals = Omit<SavingsRow, 'key' | 'workloads' | 'byCapacity' | 'onDemandEstimated'>;

/** Counts of workloads per phase, from the state's records. */
function phasesOf(state: StateFile, names: Iterable<string>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const n of names) {
    const r = state.resources[`workload.${n}`];
    const phase = r?.type === 'workload' ? r.phase : 'removed';
    out[phase] = (out[phase] ?? 0) + 1;
  }
  return out;
}

export interface SavingsSummary {
  /** ms epoch: the window actually covered (from = since, or the first segment's start). */
  from: number;
  to: number;
  since?: number;
  by: LedgerGroupBy;
  rows: SavingsRow[];
  totals: SavingsTotals;
  /** Human notes about the figures (inferred prices). Sorted, deduplicated. */
  notes: string[];
}

/** A migration within the window, for the report's table. */
export interface MigrationRow {
  at: number;
  workload: string;
  from?: string;
  to: string;
  reason: string;
  downtimeMs?: number;
  lostWorkMs?: number;
  costUsd?: number;
  outcome: MoveRecord['outcome'];
}

/** One point of the cumulative cost series. */
export interface CostPoint {
  t: number;
  actualUsd: number;
  onDemandUsd: number;
}

// Hours to 4 decimals (0.36 s): the text table prints them exactly, so its totals add up.
const HOURS_DIGITS = 10_000;
const roundHours = (h: number): number => Math.round(h * HOURS_DIGITS) / HOURS_DIGITS;
const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function workloadRecords(state: StateFile): WorkloadRecord[] {
  return Object.values(state.resources).filter((r): r is WorkloadRecord => r.type === 'workload');
}

/**
 * The on-demand price per GPU-hour to charge a running workload's open segment against. The state
 * records it only when a segment closes, so for an open one it is, in order: the price paid when
 * the workload is on on-demand; the counterfactual of the workload's own latest closed segment;
 * the latest counterfactual (or on-demand price paid) of any workload with the same GPU model;
 * and, with no basis at all, the price paid (claims no savings) — flagged as estimated.
 */
export function openSegmentOnDemandPrice(state: StateFile, r: WorkloadRecord, fleet?: Pick<Fleet, 'workloads'>): { price: number; estimated: boolean } {
  const paid = r.pricePerGpuHour ?? 0;
  if ((r.capacity ?? 'on-demand') === 'on-demand') return { price: paid, estimated: false };
  if (r.onDemandPricePerGpuHour !== undefined && r.onDemandPricePerGpuHour > 0) return { price: r.onDemandPricePerGpuHour, estimated: false };
  const latest = (entries: LedgerEntry[]): LedgerEntry | undefined =>
    entries.reduce<LedgerEntry | undefined>((best, e) => (!best || e.to > best.to || (e.to === best.to && cmp(e.workload, best.workload) < 0) ? e : best), undefined);
  const own = latest(state.ledger.filter((e) => e.workload === r.name && e.onDemandPricePerGpuHour > 0));
  if (own) return { price: own.onDemandPricePerGpuHour, estimated: true };
  const models = new Map((fleet?.workloads ?? []).map((w) => [w.name, w.gpuModel]));
  const model = models.get(r.name);
  if (fleet && model !== undefined) {
    const same = latest(state.ledger.filter((e) => models.get(e.workload) === model && e.onDemandPricePerGpuHour > 0));
    if (same) return { price: same.onDemandPricePerGpuHour, estimated: true };
    const od = workloadRecords(state)
      .filter((w) => w.since !== undefined && w.capacity === 'on-demand' && models.get(w.name) === model && (w.pricePerGpuHour ?? 0) > 0)
      .sort((a, b) => cmp(a.name, b.name))[0];
    if (od) return { price: od.pricePerGpuHour as number, estimated: true };
  }
  return { price: paid, estimated: true };
}

/**
 * Every segment of the ledger within [since, now]: the closed ones from `state.ledger` and the open
 * one of each running workload, clipped to the window; empty stretches dropped. Sorted by start,
 * then workload.
 */
export function ledgerSegments(state: StateFile, opts: Pick<LedgerOptions, 'now' | 'since' | 'fleet'>): LedgerSegment[] {
  const lo = opts.since ?? Number.NEGATIVE_INFINITY;
  const hi = opts.now;
  const out: LedgerSegment[] = [];
  const push = (e: LedgerEntry, open: boolean, estimated: boolean): void => {
    const from = Math.max(e.from, lo);
    const to = Math.min(e.to, hi);
    if (!(to > from)) return;
    const s: LedgerSegment = { ...e, from, to, open };
    if (estimated) s.onDemandEstimated = true;
    out.push(s);
  };
  for (const e of state.ledger) push(e, false, false);
  for (const r of workloadRecords(state)) {
    if (r.since === undefined) continue;
    const od = openSegmentOnDemandPrice(state, r, opts.fleet);
    const e: LedgerEntry = { workload: r.name, capacity: r.capacity ?? 'on-demand', from: r.since, to: hi, gpus: r.gpus, pricePerGpuHour: r.pricePerGpuHour ?? 0, onDemandPricePerGpuHour: od.price };
    if (r.pool !== undefined) e.pool = r.pool;
    if (r.node !== undefined) e.node = r.node;
    push(e, true, od.estimated);
  }
  return out.sort((a, b) => a.from - b.from || cmp(a.workload, b.workload) || a.to - b.to);
}

/** Dollars paid and the on-demand counterfactual of one segment, unrounded. */
export function segmentCost(s: Pick<LedgerEntry, 'from' | 'to' | 'gpus' | 'pricePerGpuHour' | 'onDemandPricePerGpuHour'>): { actualUsd: number; onDemandUsd: number } {
  const gpuHours = ((s.to - s.from) / HOUR_MS) * s.gpus;
  return { actualUsd: gpuHours * s.pricePerGpuHour, onDemandUsd: gpuHours * s.onDemandPricePerGpuHour };
}

/** Migrations recorded on workloads still in the state, within [since, now], sorted by time. */
export function migrationsIn(state: StateFile, opts: Pick<LedgerOptions, 'now' | 'since'>): MigrationRow[] {
  const lo = opts.since ?? Number.NEGATIVE_INFINITY;
  const rows: MigrationRow[] = [];
  for (const r of workloadRecords(state)) {
    for (const m of r.moves) {
      if (m.at < lo || m.at > opts.now) continue;
      const row: MigrationRow = { at: m.at, workload: r.name, to: m.to, reason: m.reason, outcome: m.outcome };
      if (m.from !== undefined) row.from = m.from;
      if (m.downtimeMs !== undefined) row.downtimeMs = m.downtimeMs;
      if (m.lostWorkMs !== undefined) row.lostWorkMs = m.lostWorkMs;
      if (m.costUsd !== undefined) row.costUsd = m.costUsd;
      rows.push(row);
    }
  }
  return rows.sort((a, b) => a.at - b.at || cmp(a.workload, b.workload) || cmp(a.to, b.to));
}

function groupKeyOf(workload: string, by: LedgerGroupBy, labels: Map<string, Record<string, string>>): string {
  if (by.kind === 'workload') return workload;
  return labels.get(workload)?.[by.key] ?? NO_LABEL;
}

function emptyUsage(): CapacityUsage {
  return { ms: 0, gpuHours: 0, actualUsd: 0, onDemandUsd: 0 };
}

/**
 * The savings summary: one row per group, sorted by key (`(none)` last), and totals that are the
 * sums of the rows' rounded values.
 * @example summariseSavings(state, { now: Date.now(), since: Date.now() - 86_400_000, by: { kind: 'label', key: 'team' }, fleet })
 */
export function summariseSavings(state: StateFile, opts: LedgerOptions): SavingsSummary {
  const by = opts.by ?? { kind: 'workload' };
  const labels = new Map((opts.fleet?.workloads ?? []).map((w) => [w.name, w.labels]));
  const segs = ledgerSegments(state, opts);
  const moves = migrationsIn(state, opts);
  interface Acc { workloads: Set<string>; byCapacity: Record<CapacityType, CapacityUsage>; migrations: number; failed: number; downtimeMs: number; estimated: boolean }
  const groups = new Map<string, Acc>();
  const acc = (key: string): Acc => {
    let a = groups.get(key);
    if (!a) {
      a = { workloads: new Set(), byCapacity: { spot: emptyUsage(), 'on-demand': emptyUsage() }, migrations: 0, failed: 0, downtimeMs: 0, estimated: false };
      groups.set(key, a);
    }
    return a;
  };
  const notes = new Set<string>();
  for (const s of segs) {
    const a = acc(groupKeyOf(s.workload, by, labels));
    a.workloads.add(s.workload);
    const u = a.byCapacity[s.capacity];
    const c = segmentCost(s);
    u.ms += s.to - s.from;
    u.gpuHours += ((s.to - s.from) / HOUR_MS) * s.gpus;
    u.actualUsd += c.actualUsd;
    u.onDemandUsd += c.onDemandUsd;
    if (s.onDemandEstimated) {
      a.estimated = true;
      notes.add(`workload.${s.workload}: the on-demand price of its running segment was not recorded; it was inferred from the ledger (or taken as the price paid)`);
    }
  }
  for (const m of moves) {
    const a = acc(groupKeyOf(m.workload, by, labels));
    a.workloads.add(m.workload);
    a.migrations += 1;
    if (m.outcome !== 'ok') a.failed += 1;
    a.downtimeMs += m.downtimeMs ?? 0;
  }
  const keys = [...groups.keys()].sort((x, y) => (x === NO_LABEL ? 1 : y === NO_LABEL ? -1 : cmp(x, y)));
  const rows: SavingsRow[] = keys.map((key) => {
    const a = groups.get(key) as Acc;
    const round = (u: CapacityUsage): CapacityUsage => ({ ms: u.ms, gpuHours: roundHours(u.gpuHours), actualUsd: roundUsd(u.actualUsd), onDemandUsd: roundUsd(u.onDemandUsd) });
    const spot = round(a.byCapacity.spot);
    const od = round(a.byCapacity['on-demand']);
    const actualUsd = roundUsd(spot.actualUsd + od.actualUsd);
    const onDemandUsd = roundUsd(spot.onDemandUsd + od.onDemandUsd);
    const savedUsd = roundUsd(onDemandUsd - actualUsd);
    return {
      key,
      workloads: [...a.workloads].sort(cmp),
      spotHours: roundHours(spot.ms / HOUR_MS),
      onDemandHours: roundHours(od.ms / HOUR_MS),
      actualUsd,
      onDemandUsd,
      savedUsd,
      savedPct: pct(savedUsd, onDemandUsd),
      migrations: a.migrations,
      failedMigrations: a.failed,
      downtimeMs: a.downtimeMs,
      byCapacity: { spot, 'on-demand': od },
      onDemandEstimated: a.estimated,
      phases: phasesOf(state, a.workloads),
    };
  });
  const sum = (f: (r: SavingsRow) => number): number => rows.reduce((t, r) => t + f(r), 0);
  const totals: SavingsTotals = {
    spotHours: roundHours(sum((r) => r.spotHours)),
    onDemandHours: roundHours(sum((r) => r.onDemandHours)),
    actualUsd: roundUsd(sum((r) => r.actualUsd)),
    onDemandUsd: roundUsd(sum((r) => r.onDemandUsd)),
    savedUsd: roundUsd(sum((r) => r.savedUsd)),
    savedPct: 0,
    migrations: sum((r) => r.migrations),
    failedMigrations: sum((r) => r.failedMigrations),
    downtimeMs: sum((r) => r.downtimeMs),
    phases: phasesOf(state, rows.flatMap((r) => r.workloads)),
  };
  totals.savedPct = pct(totals.savedUsd, totals.onDemandUsd);
  // A reduce, not Math.min(...spread): a long ledger would overflow the call stack.
  const from = opts.since ?? [...segs.map((s) => s.from), ...moves.map((m) => m.at)].reduce((a, b) => Math.min(a, b), opts.now);
  const summary: SavingsSummary = { from, to: opts.now, by, rows, totals, notes: [...notes].sort(cmp) };
  if (opts.since !== undefined) summary.since = opts.since;
  return summary;
}

function pct(saved: number, onDemand: number): number {
  return onDemand > 0 ? Math.round((saved / onDemand) * 10_000) / 100 : 0;
}

/**
 * Cumulative cost over [from, to]: actual and on-demand counterfactual, both piecewise linear in
 * time. The series holds every segment boundary (so the polyline is exact) plus `samples` evenly
 * spaced points (so a chart has points to hover and the line is drawn even with one segment).
 * Dollars are unrounded: this feeds a chart, not a table.
 */
export function cumulativeCost(segments: readonly LedgerSegment[], from: number, to: number, samples = 60): CostPoint[] {
  if (!(to > from)) return [{ t: from, actualUsd: 0, onDemandUsd: 0 }];
  const ts = new Set<number>([from, to]);
  for (let i = 1; i < samples; i++) ts.add(Math.round(from + ((to - from) * i) / samples));
  for (const s of segments) {
    if (s.from > from && s.from < to) ts.add(s.from);
    if (s.to > from && s.to < to) ts.add(s.to);
  }
  const times = [...ts].sort((a, b) => a - b);
  // A sweep over rate changes (each segment adds its $/ms at its start and removes it at its end),
  // so a long ledger costs O((points + segments) log) rather than points × segments.
  const events: { t: number; actual: number; od: number }[] = [];
  for (const s of segments) {
    const a = (s.gpus * s.pricePerGpuHour) / HOUR_MS;
    const o = (s.gpus * s.onDemandPricePerGpuHour) / HOUR_MS;
    events.push({ t: s.from, actual: a, od: o }, { t: s.to, actual: -a, od: -o });
  }
  events.sort((x, y) => x.t - y.t);
  const out: CostPoint[] = [];
  let rateA = 0;
  let rateO = 0;
  let accA = 0;
  let accO = 0;
  let last = Number.NEGATIVE_INFINITY;
  let i = 0;
  const advance = (t: number): void => {
    if (last !== Number.NEGATIVE_INFINITY) {
      accA += rateA * (t - last);
      accO += rateO * (t - last);
    }
    last = t;
  };
  for (const t of times) {
    while (i < events.length && (events[i] as (typeof events)[number]).t <= t) {
      const e = events[i] as (typeof events)[number];
      advance(e.t);
      rateA += e.actual;
      rateO += e.od;
      i++;
    }
    advance(t);
    out.push({ t, actualUsd: Math.max(0, accA), onDemandUsd: Math.max(0, accO) });
  }
  return out;
}

/** Parses `--by`: `workload` or `label:KEY`. Returns undefined when it is neither. */
export function parseGroupBy(text: string): LedgerGroupBy | undefined {
  if (text === 'workload') return { kind: 'workload' };
  const m = /^label:([A-Za-z0-9._\/-]+)$/.exec(text);
  return m ? { kind: 'label', key: m[1] as string } : undefined;
}

/** `workload` or `label:KEY`, the inverse of parseGroupBy. */
export function formatGroupBy(by: LedgerGroupBy): string {
  return by.kind === 'workload' ? 'workload' : `label:${by.key}`;
}
