// Alert rules (pure): the spec's `alerts:` entries, evaluated on the facts of one reconcile, turn
// into firing/resolved transitions. A rule's `when` is a built-in event name or a CEL condition
// over fleet facts. Each rule yields instances keyed by address; an instance fires once when it
// appears (deduplicated while it stays), and resolves when it goes. The caller keeps AlertState
// (plain data) between evaluations. One-shot events (migration-failed, work-lost) are passed in
// `events` for one evaluation: they fire then, and resolve on the next evaluation without them.
import type { AlertRuleSpec, Severity } from '../spec/types.js';
import type { AlertMessage } from '../providers/sdk.js';
import type { SourcePos, SpecProblem } from '../core/errors.js';
import { formatDuration, formatUsdRate } from '../core/units.js';
import { compileCel, createCelEnvironment, runCel, type CelProgram } from './cel.js';

export const BUILTIN_ALERTS = ['preemption-notice', 'migration-failed', 'work-lost', 'workload-failed', 'checkpoint-stale', 'deadline-at-risk', 'budget-exceeded', 'spot-price-high'] as const;
export type BuiltinAlert = (typeof BUILTIN_ALERTS)[number];

/** Facts of one reconcile, gathered by the caller (watch / apply). Prices per GPU-hour. */
export interface AlertFacts {
  fleet: string;
  /** ms epoch. */
  now: number;
  notices: { node: string; workloads?: string[]; kind: string; deadline: string; provider: string }[];
  events: { kind: 'migration-failed' | 'work-lost' | 'workload-failed'; id: string; address: string; message: string; fields?: Record<string, string | number | boolean> }[];
  /**
   * `startedAt` (ms epoch): when the workload started on its current placement (the state's
   * `since`). checkpoint-stale measures age from the later of it and the last checkpoint, so a
   * workload that has only just started (or resumed from an old checkpoint) is not stale.
   */
  workloads: { name: string; lastCheckpointAt?: number; startedAt?: number; checkpointMaxAgeMs?: number; deadlineAtRisk?: boolean; capacity?: string; costPerHour?: number }[];
  /**
   * `onDemandPrice`: the on-demand price per GPU-hour of the market's GPU model
   * (src/core/on-demand.ts); absent when none was observed. Without that basis no rule that
   * compares with on-demand fires for the market (the ledger, likewise, claims no savings).
   */
  markets: { pool: string; zone?: string; gpuModel: string; spotPrice: number; onDemandPrice?: number; available?: boolean }[];
  fleetCostPerHour: number;
  budgetPerHour?: number;
  spotPriceAlertRatio: number;
}

/** What the caller keeps between evaluations: the instances firing now. */
export interface AlertState {
  firing: Record<string, { rule: string; address: string; since: string; summary: string }>;
}

export interface CompiledAlertRule {
  name: string;
  severity: Severity;
  notify: string[];
  builtin?: BuiltinAlert;
  cond?: CelProgram;
  /** What a CEL condition ranges over: one instance per market, per workload, or the fleet. */
  scope?: 'market' | 'workload' | 'fleet';
  pos: SourcePos;
}

const MARKET_VARS = ['pool', 'zone', 'gpuModel', 'spotPrice', 'onDemandPrice', 'available'] as const;
const FLEET_VARS = { fleetCostPerHour: 'double', budgetPerHour: 'double', noticeCount: 'int', workloadsOnSpot: 'int', workloadsOnDemand: 'int' } as const;
const WORKLOAD_ALERT_SCHEMA = { name: 'string', capacity: 'string', costPerHour: 'double', checkpointAgeHours: 'double', deadlineAtRisk: 'bool' } as const;

let alertEnv: ReturnType<typeof createCelEnvironment> | undefined;
function env(): ReturnType<typeof createCelEnvironment> {
  alertEnv ??= createCelEnvironment((e) => {
    let x = e
      .registerVariable('pool', 'string')
      .registerVariable('zone', 'string')
      .registerVariable('gpuModel', 'string')
      .registerVariable('spotPrice', 'double')
      .registerVariable('onDemandPrice', 'double')
      .registerVariable('available', 'bool')
      .registerVariable({ name: 'workload', schema: WORKLOAD_ALERT_SCHEMA });
    for (const [k, t] of Object.entries(FLEET_VARS)) x = x.registerVariable(k, t);
    return x;
  });
  return alertEnv;
}

/**
 * Compiles the spec's alert rules. CEL problems point at the rule (its `whenPos` when the loader
 * records one, plus the offset inside the expression on one-line conditions).
 */
export function compileAlertRules(specs: readonly AlertRuleSpec[]): { rules: CompiledAlertRule[]; problems: SpecProblem[] } {
  const rules: CompiledAlertRule[] = [];
  const problems: SpecProblem[] = [];
  for (const s of specs) {
    const base = { name: s.name, severity: s.severity, notify: [...s.notify], pos: s.pos };
    if ((BUILTIN_ALERTS as readonly string[]).includes(s.when)) {
      rules.push({ ...base, builtin: s.when as BuiltinAlert });
      continue;
    }
    const at = (s as AlertRuleSpec & { whenPos?: SourcePos }).whenPos;
    const r = compileCel(env(), s.when, (i) => (at ? { ...at, col: at.col + i } : s.pos), `alert "${s.name}" when`);
    if (!('run' in r)) {
      r.expected = `a built-in event (${BUILTIN_ALERTS.join(', ')}) or a CEL condition`;
      problems.push(r);
      continue;
    }
    const market = MARKET_VARS.some((v) => r.identifiers.has(v));
    const wl = r.identifiers.has('workload');
    if (market && wl) {
      problems.push({ ...s.pos, severity: 'error', message: `alert "${s.name}": a condition reads market facts or a workload, not both`, rule: 'alert' });
      continue;
    }
    rules.push({ ...base, cond: r, scope: market ? 'market' : wl ? 'workload' : 'fleet' });
  }
  return { rules, problems };
}

interface Instance {
  key: string;
  rule: CompiledAlertRule;
  address: string;
  summary: string;
  fields?: Record<string, string | number | boolean>;
}

function marketAddress(m: AlertFacts['markets'][number]): string {
  return `pool.${m.pool}${m.zone ? `.${m.zone}` : ''}`;
}

function instancesOf(rule: CompiledAlertRule, f: AlertFacts, fleetVars: Record<string, unknown>): Instance[] {
  const out: Instance[] = [];
  const add = (address: string, summary: string, fields?: Record<string, string | number | boolean>): void => {
    const i: Instance = { key: `${rule.name}|${address}`, rule, address, summary };
    if (fields) i.fields = fields;
    out.push(i);
  };
  switch (rule.builtin) {
    case 'preemption-notice':
      for (const n of f.notices) add(`node.${n.provider}.${n.node}`, `${n.kind} notice for node ${n.node} (${n.provider}), deadline ${n.deadline}${n.workloads?.length ? `; workloads ${n.workloads.join(', ')}` : ''}`, { kind: n.kind, deadline: n.deadline });
      return out;
    case 'migration-failed':
    case 'work-lost':
    case 'workload-failed':
      for (const e of f.events) if (e.kind === rule.builtin) add(e.address, e.message, { ...e.fields, event: e.id });
      return out;
    case 'checkpoint-stale':
      for (const w of f.workloads) {
        if (w.checkpointMaxAgeMs === undefined) continue;
        const age = checkpointAgeMs(w, f.now);
        if (!(age > w.checkpointMaxAgeMs)) continue;
        const sinceStart = w.startedAt !== undefined && (w.lastCheckpointAt === undefined || w.startedAt > w.lastCheckpointAt);
        const what = !Number.isFinite(age)
          ? `newest checkpoint of ${w.name} is missing`
          : sinceStart
            ? `${w.name} has written no checkpoint in the ${formatDuration(age)} since it started`
            : `newest checkpoint of ${w.name} is ${formatDuration(age)} old`;
        add(`workload.${w.name}`, `${what}, maxAge ${formatDuration(w.checkpointMaxAgeMs)}`, { maxAgeMs: w.checkpointMaxAgeMs, ...(Number.isFinite(age) ? { ageMs: age } : {}) });
      }
      return out;
    case 'deadline-at-risk':
      for (const w of f.workloads) if (w.deadlineAtRisk) add(`workload.${w.name}`, `${w.name} may miss its deadline`);
      return out;
    case 'budget-exceeded':
      if (f.budgetPerHour !== undefined && f.fleetCostPerHour > f.budgetPerHour) add(`fleet.${f.fleet}`, `fleet costs ${formatUsdRate(f.fleetCostPerHour)}/h, over its budget of ${formatUsdRate(f.budgetPerHour)}/h`, { costPerHour: f.fleetCostPerHour, budgetPerHour: f.budgetPerHour });
      return out;
    case 'spot-price-high':
      for (const m of f.markets) {
        if (m.onDemandPrice !== undefined && m.spotPrice > f.spotPriceAlertRatio * m.onDemandPrice) add(marketAddress(m), `spot ${m.gpuModel} in ${m.pool}${m.zone ? `/${m.zone}` : ''} at ${formatUsdRate(m.spotPrice)}/GPU-h is above ${f.spotPriceAlertRatio} × on-demand ${formatUsdRate(m.onDemandPrice)}/GPU-h`, { spotPrice: m.spotPrice, onDemandPrice: m.onDemandPrice, ratio: f.spotPriceAlertRatio });
      }
      return out;
    default:
      break;
  }
  const cond = rule.cond as CelProgram;
  const text = cond.source;
  if (rule.scope === 'market') {
    const needsOnDemand = /\bonDemandPrice\b/.test(text);
    for (const m of f.markets) {
      if (m.onDemandPrice === undefined && needsOnDemand) continue;
      const r = runCel(cond, { ...fleetVars, pool: m.pool, zone: m.zone ?? '', gpuModel: m.gpuModel, spotPrice: m.spotPrice, onDemandPrice: m.onDemandPrice ?? 0, available: m.available ?? true });
      const od = m.onDemandPrice !== undefined ? `${formatUsdRate(m.onDemandPrice)}/GPU-h` : 'unknown';
      if (r.value) add(marketAddress(m), `${text}: spot ${formatUsdRate(m.spotPrice)}/GPU-h, on-demand ${od} in ${m.pool}${m.zone ? `/${m.zone}` : ''}`, { spotPrice: m.spotPrice, ...(m.onDemandPrice !== undefined ? { onDemandPrice: m.onDemandPrice } : {}) });
    }
  } else if (rule.scope === 'workload') {
    for (const w of f.workloads) {
      const ageMs = checkpointAgeMs(w, f.now);
      const workload = { name: w.name, capacity: w.capacity ?? '', costPerHour: w.costPerHour ?? 0, checkpointAgeHours: Number.isFinite(ageMs) ? ageMs / 3_600_000 : -1, deadlineAtRisk: w.deadlineAtRisk === true };
      if (runCel(cond, { ...fleetVars, workload }).value) add(`workload.${w.name}`, `${text} (${w.name})`);
    }
  } else if (runCel(cond, fleetVars).value) {
    add(`fleet.${f.fleet}`, text);
  }
  return out;
}

/**
 * How old a workload's checkpoint is for checkpoint-stale: from the later of its last checkpoint
 * and its start on the current placement (the work at risk began then); Infinity when neither is
 * known.
 */
export function checkpointAgeMs(w: { lastCheckpointAt?: number; startedAt?: number }, now: number): number {
  const from = Math.max(w.lastCheckpointAt ?? -Infinity, w.startedAt ?? -Infinity);
  return Number.isFinite(from) ? Math.max(0, now - from) : Infinity;
}

/**
 * Evaluates the rules on the facts: returns the messages to send (new firings and resolutions,
 * sorted by rule then address) and the new state. Pure; `state` is not modified.
 */
export function evaluateAlerts(rules: readonly CompiledAlertRule[], facts: AlertFacts, state: AlertState): { messages: AlertMessage[]; state: AlertState } {
  const at = new Date(facts.now).toISOString();
  const fleetVars = {
    fleetCostPerHour: facts.fleetCostPerHour,
    budgetPerHour: facts.budgetPerHour ?? 0,
    noticeCount: BigInt(facts.notices.length),
    workloadsOnSpot: BigInt(facts.workloads.filter((w) => w.capacity === 'spot').length),
    workloadsOnDemand: BigInt(facts.workloads.filter((w) => w.capacity === 'on-demand').length),
  };
  const next: AlertState = { firing: {} };
  const messages: AlertMessage[] = [];
  const known = new Set(rules.map((r) => r.name));
  for (const rule of rules) {
    for (const i of instancesOf(rule, facts, fleetVars)) {
      if (next.firing[i.key]) continue;
      const prev = state.firing[i.key];
      next.firing[i.key] = { rule: rule.name, address: i.address, since: prev?.since ?? at, summary: i.summary };
      if (prev) continue; // dedupe while firing
      const m: AlertMessage = { rule: rule.name, severity: rule.severity, status: 'firing', summary: i.summary, address: i.address, fleet: facts.fleet, at };
      if (i.fields) m.fields = i.fields;
      messages.push(m);
    }
  }
  for (const [key, prev] of Object.entries(state.firing)) {
    if (next.firing[key]) continue;
    const rule = rules.find((r) => r.name === prev.rule);
    if (!known.has(prev.rule) || !rule) continue; // a rule removed from the spec resolves silently
    messages.push({ rule: prev.rule, severity: rule.severity, status: 'resolved', summary: `resolved: ${prev.summary}`, address: prev.address, fleet: facts.fleet, at, fields: { firingSince: prev.since } });
  }
  messages.sort((a, b) => (a.rule < b.rule ? -1 : a.rule > b.rule ? 1 : (a.address ?? '') < (b.address ?? '') ? -1 : (a.address ?? '') > (b.address ?? '') ? 1 : 0));
  return { messages, state: next };
}

/** Sinks a rule notifies (its `notify` list). */
export function sinksFor(rules: readonly CompiledAlertRule[], m: AlertMessage): string[] {
  return rules.find((r) => r.name === m.rule)?.notify ?? [];
}
