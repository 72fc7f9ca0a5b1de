// e2e helpers: run the built CLI as a user would (a child process, in a temp folder), write test
// fleets that use the quickstart's trainer and trace, and look at what really runs through the
// providers themselves (opened as the CLI opens them, with openFleet).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openFleet, type FleetProviders } from '../../src/engine/session.js';
import { repoRoot } from '../lab/fixtures.js';

/** The repository root, also when this runs from dist/ (the benchmarks use these helpers). */
export const ROOT = repoRoot();
export const CLI = join(ROOT, 'dist/src/cli/main.js');
export const TRAINER = join(ROOT, 'examples/quickstart/trainer.mjs');
export const TRACE = join(ROOT, 'examples/quickstart/traces');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function cli(args: string[], opts: { cwd: string; env?: Record<string, string> }): CliResult {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: opts.cwd, env: { ...process.env, NO_COLOR: '1', ...opts.env }, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status ?? (r.signal ? 128 : 1), stdout: r.stdout, stderr: r.stderr };
}

/** Starts the CLI without waiting (for concurrency and signal tests). */
export function cliAsync(args: string[], opts: { cwd: string; env?: Record<string, string> }): { child: ReturnType<typeof spawn>; done: Promise<CliResult> } {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: opts.cwd, env: { ...process.env, NO_COLOR: '1', ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<CliResult>((res) => child.on('close', (code, sig) => res({ code: code ?? (sig ? 128 : 1), stdout, stderr })));
  return { child, done };
}

export interface TestWorkload {
  name: string;
  gpus?: number;
  capacity?: 'spot' | 'on-demand' | 'auto';
  command?: string[];
  /** Laid over the trainer's defaults (STEP_MS 50, CHECKPOINT_EVERY 20). */
  env?: Record<string, string>;
  /** More keys of the workload, as YAML flow pairs (`backoffLimit: 1`). */
  extra?: Record<string, string | number>;
}

/** A fleet like the quickstart's, with fast trainers (50 ms steps). */
export function fleetYaml(workloads: TestWorkload[], o: { speed?: number; stopGrace?: string; noticeWindow?: string } = {}): string {
  const wl = workloads
    .map((w) => `  - name: ${w.name}
    command: ${JSON.stringify(w.command ?? ['node', TRAINER])}
    gpus: ${w.gpus ?? 1}
    gpuModel: V100
    class: training
    capacity: ${w.capacity ?? 'auto'}
    expectedDuration: 8h
    env: ${JSON.stringify({ STEP_MS: '50', CHECKPOINT_EVERY: '20', ...w.env })}
    fallback: { to: on-demand, revertToSpot: true, minDwell: 2m }${Object.entries(w.extra ?? {}).map(([k, v]) => `\n    ${k}: ${JSON.stringify(v)}`).join('')}`)
    .join('\n');
  return `apiVersion: spotfleet.dev/v1
kind: Fleet
metadata: { name: e2e }
providers:
  lab:
    type: local
    config:
      nodes:
        - { name: od-1, gpuModel: V100, gpus: 4, capacity: on-demand, zone: lab, pricePerHour: 12.24 }
        - { name: od-2, gpuModel: V100, gpus: 4, capacity: on-demand, zone: lab, pricePerHour: 12.24 }
  market:
    type: sim
    config: { trace: ${JSON.stringify(TRACE)}, gpuModel: V100, speed: ${o.speed ?? 1}, noticeWindow: ${o.noticeWindow ?? '120s'} }
pools:
  - { name: spot-v100, provider: market, capacity: spot, gpuModel: V100, maxPricePerHour: 2.0 }
  - { name: od-v100, provider: lab, capacity: on-demand, gpuModel: V100 }
defaults:
  checkpoint: { path: /checkpoints, signal: SIGUSR1, stopGrace: ${o.stopGrace ?? '10s'}, resumeEnv: RESUME_FROM_CHECKPOINT }
workloads:${workloads.length === 0 ? ' []' : `\n${wl}`}
`;
}

export function tempFleet(workloads: TestWorkload[], o: { speed?: number; stopGrace?: string } = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'sf-e2e-'));
  writeFileSync(join(dir, 'fleet.yaml'), fleetYaml(workloads, o));
  return dir;
}

export function writeFleet(dir: string, workloads: TestWorkload[], o: { speed?: number; stopGrace?: string } = {}): void {
  writeFileSync(join(dir, 'fleet.yaml'), fleetYaml(workloads, o));
}

/**
 * The providers of the fleet whose state is in `dir`, opened in this process the way the CLI opens
 * them (openFleet, without the state store), to see what really runs (processes, leases). The spec
 * is `dir`'s unless `spec` names another (a copy of the last good one). Close it when done.
 */
export function openProviders(dir: string, spec: string = dir): Promise<FleetProviders> {
  return openFleet(spec, { stateDir: join(dir, '.spotfleet'), withoutStore: true });
}

/** An instance's output, as its provider's runtime keeps it ('' when it keeps none). */
export async function logsOf(dir: string, provider: string, node: string, id: string): Promise<string> {
  const opened = await openProviders(dir);
  try {
    return (await opened.providers.get(provider)?.runtime?.logs?.(node, id)) ?? '';
  } finally {
    await opened.close();
  }
}

/** Running instances per workload, across every provider. */
export async function runningByWorkload(dir: string): Promise<Map<string, { id: string; node: string; provider: string }[]>> {
  const opened = await openProviders(dir);
  const out = new Map<string, { id: string; node: string; provider: string }[]>();
  try {
    for (const [name, p] of opened.providers) {
      for (const i of (await p.runtime?.list()) ?? []) {
        if (i.state !== 'running') continue;
        out.set(i.workload, [...(out.get(i.workload) ?? []), { id: i.id, node: i.node, provider: name }]);
      }
    }
  } finally {
    await opened.close();
  }
  return out;
}

export async function activeLeases(dir: string): Promise<{ id: string; node?: string }[]> {
  const opened = await openProviders(dir);
  try {
    const leases = (await opened.providers.get('market')?.capacity?.leases()) ?? [];
    return leases.filter((l) => l.state === 'active' || l.state === 'pending' || l.state === 'preempting').map((l) => ({ id: l.id, ...(l.node ? { node: l.node } : {}) }));
  } finally {
    await opened.close();
  }
}

export { setTimeout as sleep } from 'node:timers/promises';
