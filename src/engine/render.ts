// Plan rendering: human text in Terraform's idiom, JSON with a documented format_version, and
// markdown for a pull-request comment. All three read the same Plan object; no timestamps in text.
import { formatUsd, formatUsdPerHour, roundUsd } from '../core/units.js';
import { planHasChanges, type Action, type ChangeKind, type Plan, type ResourceChange } from './types.js';

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
const COLOR: Record<ChangeKind, number> = { create: 32, update: 33, replace: 35, delete: 31, read: 36, 'no-op': 0, pending: 33 };

function c(o: RenderOptions, code: number, s: string): string {
  return o.color && code ? `\u001b[${code}m${s}\u001b[0m` : s;
}

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
  return `Cost: fleet ${formatUsdPerHour(plan.cost.beforePerHour)} now → ${formatUsdPerHour(plan.cost.afterPerHour)} after (${sign}${formatUsd(Math.abs(d)).slice(1) === '0' ? '$0' : formatUsd(Math.abs(d))}/h).`;
}

export function summaryLine(plan: Plan): string {
  return `Plan: ${plan.summary.add} to add, ${plan.summary.change} to change, ${plan.summary.destroy} to destroy${plan.summary.pending > 0 ? `, ${plan.summary.pending} pending` : ''}.`;
}

/** Terraform-style text. */
export function renderPlanText(plan: Plan, o: RenderOptions): string {
  const out: string[] = [];
  if (plan.drift.length > 0) {
    out.push(c(o, 1, 'Objects have changed outside of spotfleet'), '');
    out.push('spotfleet detected the following changes made outside of spotfleet since the last apply:', '');
    for (const d of plan.drift) out.push(`  ${c(o, 33, '~')} ${c(o, 1, d.address)}: ${d.message}`);
    out.push('');
  }
  const visible = plan.changes.filter((ch) => ch.change !== 'no-op');
  if (!planHasChanges(plan)) {
    out.push(c(o, 32, 'No changes.') + ' Your fleet matches the configuration.', '');
    const records = plan.actions.filter((a) => a.kind === 'record' || a.kind === 'adopt' || a.kind === 'forget').length;
    if (records > 0) out.push(`Apply records ${records} change${records === 1 ? '' : 's'} in the state only (listed above); nothing else changes.`, '');
    out.push(costLine(plan));
    for (const w of plan.warnings) out.push(`${c(o, 33, 'Warning:')} ${w}`);
    return `${out.join('\n')}\n`;
  }
  out.push('spotfleet will perform the following actions:', '');
  // Indexed once: a change's steps and the actions no change claims, in linear time.
  const order = new Map(plan.actions.map((a, i) => [a.id, i]));
  const claimed = new Set<string>();
  for (const ch of plan.changes) for (const id of ch.actions) claimed.add(id);
  for (const ch of visible) {
    const sym = SYMBOL[ch.change];
    out.push(`  ${c(o, 1, `# ${ch.address}`)} ${VERB[ch.change]}`);
    for (const r of ch.reasons) out.push(`  ${c(o, 2, `# ${r.rule}: ${r.text}`)}`);
    out.push(`${c(o, COLOR[ch.change], sym.padStart(3))} ${ch.address}`);
    if (ch.before && ch.change !== 'create') out.push(`      from: ${where(ch.before)}`);
    if (ch.after && ch.change !== 'delete') out.push(`      to:   ${where(ch.after)}`);
    if (ch.money && (ch.money.migrationOverheadUsd > 0 || ch.money.nowPerHour !== ch.money.afterPerHour)) {
      out.push(`      cost: ${formatUsdPerHour(ch.money.nowPerHour)} → ${formatUsdPerHour(ch.money.afterPerHour)}${ch.money.migrationOverheadUsd > 0 ? `, migration overhead ${formatUsd(ch.money.migrationOverheadUsd)}` : ''}${ch.money.expectedSavingsUsd !== undefined ? `, expected savings ${formatUsd(ch.money.expectedSavingsUsd)}` : ''}`);
    }
    for (const v of ch.violations) out.push(`      ${c(o, v.level === 'mandatory' ? 31 : 33, `${v.level} policy ${v.policy}`)}: ${v.message}`);
    const steps = [...new Set(ch.actions)].filter((id) => order.has(id)).sort((a, b) => (order.get(a) as number) - (order.get(b) as number)).map((id) => plan.actions[order.get(id) as number] as Action);
    if (steps.length > 1) out.push(`      steps: ${steps.map((a) => a.kind).join(', ')}`);
    out.push('');
  }
  const orphanActions = plan.actions.filter((a) => !claimed.has(a.id));
  for (const a of orphanActions) out.push(`  ${c(o, 2, `# ${a.address}: ${a.summary}`)}`);
  if (orphanActions.length > 0) out.push('');
  out.push(c(o, 1, summaryLine(plan)));
  out.push(costLine(plan));
  for (const w of plan.warnings) out.push(`${c(o, 33, 'Warning:')} ${w}`);
  return `${out.join('\n')}\n`;
}

/**
 * JSON rendering. format_version "1.0": { format_version, fleet, state: {lineage, serial},
 * spec_hash, summary: {add, change, destroy}, cost: {before_per_hour, after_per_hour},
 * resource_changes: [{address, change, before, after, reasons: [{rule, text, numbers}], money,
 * violations, actions}], actions: [{id, kind, address, deps, summary, ...}], drift: [...], warnings }.
 * Fields are only ever added within a major version.
 */
export function renderPlanJson(plan: Plan): string {
  return `${JSON.stringify(
    {
      format_version: plan.formatVersion,
      fleet: plan.fleet,
      state: plan.state,
      spec_hash: plan.specHash,
      summary: plan.summary,
      cost: { before_per_hour: plan.cost.beforePerHour, after_per_hour: plan.cost.afterPerHour },
      resource_changes: plan.changes.map((ch) => ({ ...ch })),
      actions: plan.actions,
      drift: plan.drift,
      warnings: plan.warnings,
      ...(plan.targets ? { targets: plan.targets } : {}),
    },
    null,
    2,
  )}\n`;
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
      const money = ch.money ? `${formatUsd(ch.money.nowPerHour)} → ${formatUsd(ch.money.afterPerHour)}` : '';
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
