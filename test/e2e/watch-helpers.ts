// e2e helpers for `spotfleet watch`: temp fleets for it, the watch process itself (watch-process.ts,
// re-exported here), destroying what the tests left, posting evictions, and fetching and parsing
// /metrics. Nothing here imports vitest.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import parsePrometheusTextFormat, { type PromFamily } from 'parse-prometheus-text-format';
import { fleetYaml, type TestWorkload } from './helpers.js';
import { runCli, runningInstances } from './crash-helpers.js';

export * from './watch-process.js';

export interface WatchFleetOptions {
  speed?: number;
  stopGrace?: string;
  noticeWindow?: string;
  /** fallback.minDwell of every workload. Default 2m (as the quickstart). */
  minDwell?: string;
}

/** A fleet like tempFleet's (quickstart providers and trace, 50 ms trainer steps), with a chosen minDwell. */
export function watchFleetYaml(workloads: TestWorkload[], o: WatchFleetOptions = {}): string {
  const base = fleetYaml(workloads, { ...(o.speed !== undefined ? { speed: o.speed } : {}), ...(o.stopGrace !== undefined ? { stopGrace: o.stopGrace } : {}), ...(o.noticeWindow !== undefined ? { noticeWindow: o.noticeWindow } : {}) });
  return o.minDwell ? base.replaceAll('minDwell: 2m', `minDwell: ${o.minDwell}`) : base;
}

export function tempWatchFleet(workloads: TestWorkload[], o: WatchFleetOptions = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'sf-watch-'));
  writeFileSync(join(dir, 'fleet.yaml'), watchFleetYaml(workloads, o));
  return dir;
}

/**
 * `destroy --auto-approve` for each folder (after the watches are gone), then removes the folders
 * that nothing runs from any more; returns the failures (those folders stay, to look at).
 */
export async function destroyAll(dirs: readonly string[]): Promise<string[]> {
  const failures: string[] = [];
  for (const d of dirs) {
    const r = await runCli(['destroy', '--auto-approve', d], { cwd: d });
    if (r.code !== 0) {
      failures.push(`${d}: destroy exit ${r.code}\n${r.stdout}\n${r.stderr}`);
      continue;
    }
    const left = await runningInstances(d);
    if (left.length > 0) failures.push(`${d}: processes left after destroy: ${JSON.stringify(left)}`);
    else rmSync(d, { recursive: true, force: true });
  }
  return failures;
}

/** Posts an eviction notice through the CLI; returns the notice (id, deadline, receivedAt). */
export async function simEvict(dir: string, node: string, inDuration = '30s'): Promise<{ id: string; node: string; deadline: string; receivedAt: string }> {
  const r = await runCli(['sim', 'evict', node, dir, '--in', inDuration, '--json'], { cwd: dir });
  if (r.code !== 0) throw new Error(`sim evict ${node}: exit ${r.code}\n${r.stdout}\n${r.stderr}`);
  // `sim evict --json` follows the JSON contract (snake_case); the tests read it as a Notice.
  const n = (JSON.parse(r.stdout) as { notice: { id: string; node: string; deadline: string; received_at: string } }).notice;
  return { id: n.id, node: n.node, deadline: n.deadline, receivedAt: n.received_at };
}

/** GETs a path on the controller's listen address. */
export async function httpGet(listen: string, path: string): Promise<{ status: number; body: string; contentType: string }> {
  const res = await fetch(`http://${listen}${path}`, { signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: await res.text(), contentType: res.headers.get('content-type') ?? '' };
}

/** /metrics: the text, and its families as a Prometheus text-format parser reads them. */
export async function fetchMetrics(listen: string): Promise<{ text: string; families: PromFamily[] }> {
  const r = await httpGet(listen, '/metrics');
  if (r.status !== 200) throw new Error(`/metrics answered ${r.status}`);
  return { text: r.body, families: parsePrometheusTextFormat(r.body) };
}

/** Sum of a counter's or gauge's samples whose labels include `labels` (from the parsed families). */
export function metricSum(families: readonly PromFamily[], name: string, labels: Record<string, string> = {}): number {
  const f = families.find((x) => x.name === name);
  if (!f) return 0;
  let sum = 0;
  for (const m of f.metrics) if (Object.entries(labels).every(([k, v]) => m.labels?.[k] === v)) sum += Number(m.value);
  return sum;
}

function labelsOf(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of s.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) out[m[1] as string] = m[2] as string;
  return out;
}

/**
 * A histogram's count and cumulative buckets (upper bound → count), summed over the series whose
 * labels include `labels`, read from the exposition text. parse-prometheus-text-format 1.1.1
 * flattens a histogram into one series and drops `_count`/`_sum` when they carry labels, so
 * labelled histograms are read here (the whole text is still parsed by it, to check the format).
 */
export function histogram(text: string, name: string, labels: Record<string, string> = {}): { count: number; sum: number; buckets: { le: number; count: number }[] } {
  const acc = new Map<number, number>();
  let count = 0;
  let sum = 0;
  const want = (l: Record<string, string>): boolean => Object.entries(labels).every(([k, v]) => l[k] === v);
  for (const line of text.split('\n')) {
    const m = /^(\w+?)(_bucket|_count|_sum)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const l = labelsOf(m[3] ?? '');
    if (!want(l)) continue;
    const v = Number(m[4]);
    if (m[2] === '_count') count += v;
    else if (m[2] === '_sum') sum += v;
    else {
      const le = l.le === '+Inf' ? Infinity : Number(l.le);
      acc.set(le, (acc.get(le) ?? 0) + v);
    }
  }
  return { count, sum, buckets: [...acc].map(([le, c]) => ({ le, count: c })).sort((a, b) => a.le - b.le) };
}

/** The q-quantile (0..1) of a histogram as the upper bound of the bucket that holds it (Prometheus-style, no interpolation). */
export function histogramQuantile(h: { count: number; buckets: { le: number; count: number }[] }, q: number): number {
  const rank = q * h.count;
  for (const b of h.buckets) if (b.count >= rank) return b.le;
  return NaN;
}

/** Checkpoint and exit steps in a trainer's log (the quickstart trainer's lines). */
export function trainerSteps(log: string): { checkpoints: { step: number; reason: string }[]; resumedFrom?: number; exitedAt?: number } {
  const checkpoints = [...log.matchAll(/checkpoint step=(\d+) reason=(\w+)/g)].map((m) => ({ step: Number(m[1]), reason: m[2] ?? '' }));
  const resumed = /resumed from step (\d+)/.exec(log)?.[1];
  const exited = [...log.matchAll(/exiting on \w+ at step (\d+)/g)].at(-1)?.[1];
  return { checkpoints, ...(resumed !== undefined ? { resumedFrom: Number(resumed) } : {}), ...(exited !== undefined ? { exitedAt: Number(exited) } : {}) };
}
