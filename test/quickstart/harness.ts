// Test harness around the quickstart: the sample trainer as a real workload, throwaway folders,
// provider contexts, and polling helpers. Used by the local/sim provider tests and the e2e tests.
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NodeInfo } from '../../src/core/types.js';
import { silentLogger } from '../../src/providers/registry.js';
import type { Provider, ProviderContext } from '../../src/providers/sdk.js';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const QUICKSTART = join(REPO, 'examples/quickstart');
export const TRAINER = join(QUICKSTART, 'trainer.mjs');
export const CLI = join(REPO, 'dist/src/cli/main.js');

/** A trainer that steps every 20 ms, so tests see checkpoints quickly. */
export const trainer = (env: Record<string, string> = {}): { command: string[]; env: Record<string, string>; readyLog: string } => ({
  command: [process.execPath, TRAINER],
  env: { STEP_MS: '20', CHECKPOINT_EVERY: '1000', ...env },
  readyLog: 'from step',
});
/** Ignores SIGTERM: only SIGKILL ends it. */
export const stubborn = {
  command: [process.execPath, '-e', "process.on('SIGTERM', () => console.log('ignoring SIGTERM')); setInterval(() => {}, 1000); console.log('ready')"],
  env: {},
  readyLog: 'ready',
};
export const exits = (code: number): { command: string[]; env: Record<string, string> } => ({ command: [process.execPath, '-e', `process.exit(${code})`], env: {} });

const dirs: string[] = [];
const providers: Provider[] = [];

/** Remembers a provider so `stopAll` ends its workloads even when a test failed half-way. */
export function track<T extends Provider>(p: T): T {
  providers.push(p);
  return p;
}

/** Stops (SIGKILL at once) every running instance of every tracked provider. */
export async function stopAll(): Promise<void> {
  for (const p of providers.splice(0)) {
    const running = ((await p.runtime?.list().catch(() => [])) ?? []).filter((i) => i.state === 'running');
    for (const i of running) await p.runtime?.stop(i.node, i.id, 0).catch(() => undefined);
  }
}
export function tempDir(prefix = 'spotfleet-test-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}
export function removeTempDirs(): void {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

export function makeCtx(name: string, root: string, opts: { fleet?: string; specDir?: string; now?: () => number } = {}): ProviderContext {
  const dataDir = join(root, '.spotfleet', 'providers', name);
  mkdirSync(dataDir, { recursive: true });
  return { name, fleet: opts.fleet ?? 'test', specDir: opts.specDir ?? root, dataDir, log: silentLogger, now: opts.now ?? Date.now, env: process.env };
}

/** Writes a checkpoint file the way the trainer does (temp + rename) into a localfs node. */
export function writeLocalfsCheckpoint(node: NodeInfo, workload: string, step = 1): string {
  const dir = join(String(node.meta?.checkpointDir), workload);
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `ckpt-step-${String(step).padStart(9, '0')}.json`);
  writeFileSync(path, `${JSON.stringify({ step })}\n`);
  return path;
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 20_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Alive and not a zombie (a container's PID 1 may be slow to reap orphans). */
export function pidAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}
