// Renders one decision for `spotfleet explain ADDR`: the inputs that mattered, every reason in
// order with every number that decided it, the money, and the policy results. Pure text, stable
// (no wall-clock times besides the ones in the input), so tests and users can diff it.
import { formatBytes, formatDuration, formatRate, formatUsd, formatUsdRate, HOUR_MS, roundUsd } from '../core/units.js';
import type { WorkloadDecision, WorkloadDecisionInput } from './types.js';
import { estimateUptime, zoneStatsKey } from './uptime.js';

const USD_KEYS = /Usd$|PerHour$|PerGpuHour$/;

function num(key: string, v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (/Ms$/.test(key) && v > 1e11) return new Date(v).toISOString();
  if (USD_KEYS.test(key) && !/RatePerHour$/.test(key)) return key.endsWith('Usd') ? formatUsd(v) : `${formatUsdRate(v)}/h`;
  if (/Hours$/.test(key)) return `${formatRate(v)}h`;
  return formatRate(v);
}

/**
 * Explains a decision with every number that decided it (`now`: when it was decided, for zone ages).
 * @example console.log(renderExplanation(input, decideWorkload(input, ctx)))
 */
export function renderExplanation(input: WorkloadDecisionInput, d: WorkloadDecision, now?: number): string {
  // `now` of the decision, for zone ages; without it, the newest time the input holds (ages then read 0).
  const nowOf = (i: WorkloadDecisionInput): number => now ?? Math.max(i.current?.since ?? 0, ...Object.values(i.zoneStats ?? {}).map((z) => z.upSinceMs ?? 0));
  const w = input.workload;
  const out: string[] = [];
  out.push(`workload.${w.name}: ${d.action}${d.target ? ` → ${d.target.pool}${d.target.zone ? `/${d.target.zone}` : ''} (${d.target.capacity}${d.target.node ? `, node ${d.target.node}` : ''})` : ''}`);
  out.push('');
  out.push('inputs:');
  out.push(`  class ${w.class}, ${w.gpus} GPU(s)${w.gpuModel ? ` ${w.gpuModel}` : ''}, capacity ${w.capacity}, checkpoint ${w.checkpoint ? 'yes' : 'no'}`);
  const remaining = w.expectedDurationMs !== undefined ? Math.max(0, w.expectedDurationMs - input.progress.doneMs) : undefined;
  out.push(`  expected duration ${w.expectedDurationMs !== undefined ? formatDuration(w.expectedDurationMs) : 'open-ended'}, done ${formatDuration(input.progress.doneMs)}${remaining !== undefined ? `, remaining ${formatDuration(remaining)} (${formatRate(remaining / HOUR_MS)}h)` : ''}${w.deadline ? `, deadline ${w.deadline}` : ''}`);
  if (input.current) {
    const c = input.current;
    out.push(`  now on ${c.pool ?? '?'}${c.zone ? `/${c.zone}` : ''} (${c.capacity}) node ${c.node} at ${formatUsdRate(c.pricePerGpuHour)}/GPU-h since ${new Date(c.since).toISOString()}${c.evicted ? ' — EVICTED' : ''}`);
  } else {
    out.push('  not running');
  }
  out.push(`  fallback to ${w.fallback.to}, revertToSpot ${w.fallback.revertToSpot}, minDwell ${formatDuration(w.fallback.minDwellMs)}`);
  out.push(`  migration overhead: checkpoint ${formatDuration(input.overhead.checkpointMs)} + transfer ${formatDuration(input.overhead.transferMs)} + restart ${formatDuration(input.overhead.restartMs)}`);
  const sizeGB = input.checkpointSizeGB ?? w.checkpoint?.sizeGB;
  if (sizeGB !== undefined) out.push(`  checkpoint size ${formatBytes(sizeGB * 1e9)} (${input.checkpointSizeGB !== undefined ? 'measured: the newest verified checkpoint' : 'checkpoint.sizeGB'}), for egress across regions`);
  if (input.history.preemptions.length > 0) out.push(`  preemptions: ${input.history.preemptions.length} (last ${new Date(Math.max(...input.history.preemptions)).toISOString()})`);
  // With zone statistics: each spot option's expected up-time from now, as the move decision sees it.
  const upTime = (o: (typeof input.options)[number]): string => {
    const st = input.zoneStats?.[zoneStatsKey(o)];
    if (o.capacity !== 'spot' || !input.zoneStats || !o.available) return '';
    const e = estimateUptime(st, nowOf(input), 0, remaining !== undefined ? remaining / HOUR_MS : 24);
    return `expected up ${roundUsd(e.expectedUpHours)}h more (up ${roundUsd(e.ageHours)}h, ${st?.upPeriodsMs.length ?? 0} past up-periods, ${e.samples} longer than that)`;
  };
  const opts = [...input.options].sort((a, b) => a.pool.localeCompare(b.pool) || (a.zone ?? '').localeCompare(b.zone ?? '') || (a.node ?? '').localeCompare(b.node ?? ''));
  if (opts.length > 0) {
    out.push('  options:');
    for (const o of opts) {
      const extra = [
        o.available ? 'available' : 'unavailable',
        o.preemptionRatePerHour !== undefined ? `${formatRate(o.preemptionRatePerHour)} preemptions/h` : '',
        o.maxPricePerHour !== undefined ? `cap ${formatUsdRate(o.maxPricePerHour)}/GPU-h` : '',
        o.node ? `node ${o.node}` : '',
        upTime(o),
      ].filter(Boolean).join(', ');
      out.push(`    ${o.pool}${o.zone ? `/${o.zone}` : ''} ${o.capacity} ${formatUsdRate(o.pricePerGpuHour)}/GPU-h (${extra})`);
    }
  }
  out.push('');
  out.push('reasons:');
  for (const r of d.reasons) {
    out.push(`  [${r.rule}] ${r.text}`);
    if (r.numbers) {
      const keys = Object.keys(r.numbers);
      const width = Math.max(...keys.map((k) => k.length));
      for (const k of keys) out.push(`      ${k.padEnd(width)}  ${num(k, r.numbers[k] as number)}`);
    }
  }
  out.push('');
  out.push('money:');
  out.push(`  now ${formatUsdRate(d.money.nowPerHour)}/h, after ${formatUsdRate(d.money.afterPerHour)}/h, migration overhead ${formatUsd(d.money.migrationOverheadUsd)}${d.money.expectedSavingsUsd !== undefined ? `, expected net savings ${formatUsd(d.money.expectedSavingsUsd)}` : ''}`);
  if (d.pinOnDemandUntil !== undefined) out.push(`  pinned to on-demand until ${new Date(d.pinOnDemandUntil).toISOString()}`);
  if (d.violations.length > 0) {
    out.push('');
    out.push('policies:');
    for (const v of [...d.violations].sort((a, b) => a.policy.localeCompare(b.policy))) out.push(`  ${v.level === 'mandatory' ? 'VIOLATION' : 'warning'} ${v.policy}: ${v.message}`);
  }
  return out.join('\n') + '\n';
}
