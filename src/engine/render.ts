// Plan rendering: human text in Terraform's idiom, JSON with a documented format_version, and
// markdown for a pull-request comment. All three read the same Plan object; no timestamps in text.
import { parseAddress } from '../core/address.js';
import { JSON_FORMAT_VERSION, toSnakeJson } from '../core/json.js';
import { paint, type Style } from '../core/text.js';
import { formatUsd, formatUsdPerHour, roundUsd } from '../core/units.js';
import { spotfleetVersion } from '../core/version.js';
import { planHasActions, planHasChanges, type Action, type ChangeKind, type DriftItem, type Plan, type ResourceChange } from './types.js';

export interface RenderOptions {
  color: boolean;
}

const SYMBOL: Record<ChangeKind, string> = { create: '+', update: '~', replace: '-/+', delete: '-', read: '<=', 'no-op': ' ', pending: '…' };
const VERB: Record<ChangeKind, string> = {
  create: 'will be created',
  update: 'will be updated in-place',
  replace: 'will be moved (checkpoint, stop, start elsewhere)',
  delete: 'will be destroyed',
  read: 'will be read',
  'no-op': 'is unchanged',
  pending: 'cannot run yet',
};
const COLOR: Record<ChangeKind, Style | undefined> = { create: 'green', update: 'yellow', replace: 'magenta', delete: 'red', read: 'cyan', 'no-op': undefined, pending: 'yellow' };

function where(p: ResourceChange['before']): string {
  if (!p) return '—';
  const parts = [`${p.pool ?? '?'}${p.zone ? `/${p.zone}` : ''}`, p.capacity ?? '?'];
  if (p.node) parts.push(`node ${p.node}`);
  if (p.pricePerHour !== undefined) parts.push(formatUsdPerHour(p.pricePerHour));
  return parts.join(', ');
}

function costLine(plan: Plan): string {
  const d = roundUsd(plan.cost.afterPerHour - plan.cost.beforePerHour);
  const sign = d > 0 ? '+' : d < 0 ? '−' : '±';
  return `Cost: fleet ${formatUsdPerHour(plan.cost.beforePerHour)} now → ${formatUsdPerHour(plan.cost.afterPerHour)} after (${sign}${formatUsdPerHour(Math.abs(d))}).`;
}

export function summaryLine(plan: Plan): string {
  return `Plan: ${plan.summary.add} to add, ${plan.summary.change} to change, ${plan.summary.destroy} to destroy${plan.summary.pending > 0 ? `, ${plan.summary.pending} pending` : ''}.`;
}

/** Terraform-style text. */
export function renderPlanText(plan: Plan, o: RenderOptions): string {
  const out: string[] = [];
  if (plan.drift.length > 0) {
    out.push(paint(o, 'bold', 'Objects have changed outside of spotfleet'), '');
    out.push('spotfleet detected the following changes made outside of spotfleet since the last apply:', '');
    for (const d of plan.drift) out.push(`  ${paint(o, 'yellow', '~')} ${paint(o, 'bold', d.address)}: ${d.message}`);
    out.push('');
  }
  const visible = plan.changes.filter((ch) => ch.change !== 'no-op');
  if (!planHasChanges(plan)) {
    out.push(paint(o, 'green', 'No changes.') + ' Your fleet matches the configuration.', '');
    const records = plan.actions.filter((a) => a.kind === 'record' || a.kind === 'adopt' || a.kind === 'forget').length;
    if (records > 0) out.push(`Apply records ${records} change${records === 1 ? '' : 's'} in the state only (listed above); nothing else changes.`, '');
    out.push(costLine(plan));
    for (const w of plan.warnings) out.push(`${paint(o, 'yellow', 'Warning:')} ${w}`);
    out.push(...planPolicyLines(plan, o));
    return `${out.join('\n')}\n`;
  }
  out.push('spotfleet will perform the following actions:', '');
  // Indexed once: a change's steps and the actions no change claims, in linear time.
  const order = new Map(plan.actions.map((a, i) => [a.id, i]));
  const claimed = new Set<string>();
  for (const ch of plan.changes) for (const id of ch.actions) claimed.add(id);
  for (const ch of visible) {
    const sym = SYMBOL[ch.change];
    out.push(`  ${paint(o, 'bold', `# ${ch.address}`)} ${VERB[ch.change]}`);
    for (const r of ch.reasons) out.push(`  ${paint(o, 'dim', `# ${r.rule}: ${r.text}`)}`);
    out.push(`${paint(o, COLOR[ch.change], sym.padStart(3))} ${ch.address}`);
    if (ch.before && ch.change !== 'create') out.push(`      from: ${where(ch.before)}`);
    if (ch.after && ch.change !== 'delete') out.push(`      to:   ${where(ch.after)}`);
    if (ch.money && (ch.money.migrationOverheadUsd > 0 || ch.money.nowPerHour !== ch.money.afterPerHour)) {
      out.push(`      cost: ${formatUsdPerHour(ch.money.nowPerHour)} → ${formatUsdPerHour(ch.money.afterPerHour)}${ch.money.migrationOverheadUsd > 0 ? `, migration overhead ${formatUsd(ch.money.migrationOverheadUsd)}` : ''}${ch.money.expectedSavingsUsd !== undefined ? `, expected savings ${formatUsd(ch.money.expectedSavingsUsd)}` : ''}`);
    }
    for (const v of ch.violations) out.push(`      ${paint(o, v.level === 'mandatory' ? 'red' : 'yellow', `${v.level} policy ${v.policy}`)}: ${v.message}`);
    const steps = [...new Set(ch.actions)].filter((id) => order.has(id)).sort((a, b) => (order.get(a) as number) - (order.get(b) as number)).map((id) => plan.actions[order.get(id) as number] as Action);
    if (steps.length > 1) out.push(`      steps: ${steps.map((a) => a.kind).join(', ')}`);
    out.push('');
  }
  const orphanActions = plan.actions.filter((a) => !claimed.has(a.id));
  for (const a of orphanActions) out.push(`  ${paint(o, 'dim', `# ${a.address}: ${a.summary}`)}`);
  if (orphanActions.length > 0) out.push('');
  out.push(paint(o, 'bold', summaryLine(plan)));
  out.push(costLine(plan));
  for (const w of plan.warnings) out.push(`${paint(o, 'yellow', 'Warning:')} ${w}`);
  out.push(...planPolicyLines(plan, o));
  return `${out.join('\n')}\n`;
}

/** The results of `scope: plan` policy rules, one line each. */
function planPolicyLines(plan: Plan, o: RenderOptions): string[] {
  return (plan.policyViolations ?? []).map((v) => `${paint(o, v.level === 'mandatory' ? 'red' : 'yellow', `${v.level} policy ${v.policy}`)} (plan): ${v.message}`);
}

/**
 * Terraform's `change.actions` for each spotfleet change kind (`terraform show -json`): a move is
 * a checkpoint and stop before the start elsewhere, Terraform's destroy-before-create replace.
 * A new change kind must be given its Terraform actions here (the Record makes that a type error
 * until it is); kinds Terraform has no word for map to the nearest one, and the exact spotfleet
 * kind stays beside it in `change.spotfleet_action`.
 */
export const TERRAFORM_ACTIONS: Readonly<Record<ChangeKind, readonly TerraformAction[]>> = {
  create: ['create'],
  update: ['update'],
  replace: ['delete', 'create'],
  delete: ['delete'],
  read: ['read'],
  'no-op': ['no-op'],
  // Should run but cannot yet (no capacity, waiting for spot, back-off): nothing changes now.
  pending: ['no-op'],
};

export type TerraformAction = 'no-op' | 'create' | 'read' | 'update' | 'delete';

/** What drift means in Terraform's words (`resource_drift[].change.actions`). */
const DRIFT_ACTIONS: Readonly<Record<DriftItem['kind'], readonly TerraformAction[]>> = {
  died: ['delete'],
  vanished: ['delete'],
  unmanaged: ['create'],
  duplicate: ['create'],
  moved: ['update'],
  evicted: ['update'],
  exited: ['delete'],
};

/** `workload.train-a` → type workload, name train-a; `lease.spot-v100.x` → type lease, pool spot-v100, name x. */
export function addressParts(address: string): { type: string; name: string; pool?: string } {
  const p = parseAddress(address);
  if (!p) {
    const i = address.indexOf('.');
    return i > 0 ? { type: address.slice(0, i), name: address.slice(i + 1) } : { type: address, name: '' };
  }
  if (p.kind === 'lease') return { type: 'lease', pool: p.parts[0] as string, name: p.parts[1] as string };
  if (p.kind === 'node') return { type: 'node', name: p.parts[1] as string };
  return { type: p.kind, name: p.parts[0] as string };
}

function resourceChangeJson(ch: ResourceChange): Record<string, unknown> {
  const { type, name, pool } = addressParts(ch.address);
  return {
    address: ch.address,
    mode: 'managed',
    type,
    name,
    ...(pool !== undefined ? { pool } : {}),
    change: {
      actions: TERRAFORM_ACTIONS[ch.change],
      before: ch.before && ch.change !== 'create' ? toSnakeJson(ch.before) : null,
      after: ch.after && ch.change !== 'delete' ? toSnakeJson(ch.after) : null,
      spotfleet_action: ch.change,
    },
    reasons: ch.reasons.map((r) => ({ rule: r.rule, text: r.text, ...(r.numbers ? { numbers: toSnakeJson(r.numbers) } : {}) })),
    money: ch.money ? toSnakeJson(ch.money) : null,
    violations: ch.violations,
    action_ids: ch.actions,
  };
}

function driftJson(d: DriftItem): Record<string, unknown> {
  const { type, name, pool } = addressParts(d.address);
  return { address: d.address, mode: 'managed', type, name, ...(pool !== undefined ? { pool } : {}), change: { actions: DRIFT_ACTIONS[d.kind], before: null, after: null }, kind: d.kind, message: d.message };
}

/**
 * The plan as the JSON contract (docs/json.md), shaped like `terraform show -json`: every address
 * in `resource_changes` with `type`, `name` and `change: { actions, before, after }`, spotfleet's
 * reasons and money beside them; `resource_drift` for changes made outside spotfleet; `actions`
 * the DAG apply walks. Money keeps full precision (rounded to $0.0001 as in the plan).
 */
export function planJsonObject(plan: Plan): Record<string, unknown> {
  const mandatory = plan.changes.some((c) => c.violations.some((v) => v.level === 'mandatory')) || (plan.policyViolations ?? []).some((v) => v.level === 'mandatory');
  return {
    format_version: JSON_FORMAT_VERSION,
    spotfleet_version: spotfleetVersion(),
    fleet: plan.fleet,
    created_at: plan.createdAt,
    state: { lineage: plan.state.lineage, serial: plan.state.serial },
    spec_hash: plan.specHash,
    applyable: planHasActions(plan) && !mandatory,
    summary: plan.summary,
    cost: { before_per_hour: plan.cost.beforePerHour, after_per_hour: plan.cost.afterPerHour },
    resource_changes: plan.changes.map(resourceChangeJson),
    resource_drift: plan.drift.map(driftJson),
    actions: toSnakeJson(plan.actions.map(actionJson)),
    warnings: plan.warnings,
    policy_violations: plan.policyViolations ?? [],
    ...(plan.targets ? { targets: plan.targets } : {}),
  };
}

/**
 * An action as `plan --json` documents it (docs/json.md): an acquire's request fields stand flat
 * beside its provider, in the order they always had.
 */
function actionJson(a: Action): unknown {
  if (a.kind !== 'acquire') return a;
  const { request: r, provider, forWorkload, ...base } = a;
  return {
    ...base,
    ...(r.bidPerGpuHour !== undefined ? { bidPerGpuHour: r.bidPerGpuHour } : {}),
    provider,
    pool: r.pool,
    capacity: r.capacity,
    gpuModel: r.gpuModel,
    gpus: r.gpus,
    ...(r.zone !== undefined ? { zone: r.zone } : {}),
    ...(r.maxPricePerGpuHour !== undefined ? { maxPricePerGpuHour: r.maxPricePerGpuHour } : {}),
    ...(r.offerId !== undefined ? { offerId: r.offerId } : {}),
    ...(r.durationHours !== undefined ? { durationHours: r.durationHours } : {}),
    idempotencyKey: r.idempotencyKey,
    forWorkload,
  };
}

/** planJsonObject, printed. */
export function renderPlanJson(plan: Plan): string {
  return `${JSON.stringify(planJsonObject(plan), null, 2)}\n`;
}

/** Markdown for a pull-request comment. */
export function renderPlanMarkdown(plan: Plan): string {
  const out: string[] = [];
  out.push(`### spotfleet plan: \`${plan.fleet}\``, '');
  out.push(`**${summaryLine(plan)}** ${costLine(plan)}`, '');
  const visible = plan.changes.filter((ch) => ch.change !== 'no-op');
  if (visible.length > 0) {
    out.push('| | address | from | to | $/h | why |', '|---|---|---|---|---|---|');
    for (const ch of visible) {
      const money = ch.money ? `${formatUsdPerHour(ch.money.nowPerHour)} → ${formatUsdPerHour(ch.money.afterPerHour)}` : '';
      const why = ch.reasons.map((r) => r.text).join('; ').replace(/\|/g, '\\|');
      out.push(`| \`${SYMBOL[ch.change]}\` | \`${ch.address}\` | ${ch.change === 'create' ? '' : where(ch.before)} | ${ch.change === 'delete' ? '' : where(ch.after)} | ${money} | ${why} |`);
    }
    out.push('');
  }
  if (plan.drift.length > 0) {
    out.push('<details><summary>Changed outside of spotfleet</summary>', '');
    for (const d of plan.drift) out.push(`- \`${d.address}\`: ${d.message}`);
    out.push('', '</details>', '');
  }
  for (const w of plan.warnings) out.push(`> **Warning:** ${w}`);
  return `${out.join('\n')}\n`;
}
