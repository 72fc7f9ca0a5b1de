// Early warnings through the built CLI (`spotfleet watch`, `sim evict --kind`, `nodes`, `explain`),
// on a quickstart-like fleet whose sim market models a 6 MB/s link between nodes and whose trainer
// writes 12 MB folder checkpoints (weights that do not change, a small state file):
//   (a) onWarning prepare: a rebalance recommendation acquires a spot lease in another zone and
//       pre-copies the newest checkpoint there (low priority), with nothing stopped or signalled;
//       the eviction notice then moves the workload there, sending only the delta; `nodes` shows
//       the pool/zone record (a warning, followed by an eviction) and `explain` the priced answer;
//       a second warning that no eviction follows within the window gives its lease back;
//   (b) onWarning ignore: nothing moves on the warning; the eviction then moves the workload the
//       usual way (to on-demand), copying the whole checkpoint: a longer downtime than (a)'s;
//   (c) a maintenance event on a pool with onWarning move: moved at once to another spot zone,
//       well before the event's deadline;
//   (d) a maintenance event on a pool with onWarning prepare: prepared at once, moved to the
//       prepared target only as the event's deadline nears (its lead: the stop grace and the
//       workload's measured overhead), before the deadline.
// Every watch is killed by PID and every fleet destroyed in afterAll, even when a test fails.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TRACE, activeLeases, sleep } from './helpers.js';
import { instanceLog, runCli, runningInstances, waitForLog, type CliRun, type Instance } from './crash-helpers.js';
import { destroyAll, killAllWatches, startWatch, type LogLine, type WatchProcess } from './watch-helpers.js';

const TRAINER = join(import.meta.dirname, 'weights-trainer.mjs');
const WEIGHTS = 12_000_000;

const dirs: string[] = [];
afterAll(async () => {
  await killAllWatches();
  const failures = await destroyAll(dirs);
  expect(failures, failures.join('\n')).toEqual([]);
}, 120_000);

function fleetDir(onWarning: 'prepare' | 'ignore' | 'move', extra = ''): string {
  const dir = mkdtempSync(join(tmpdir(), 'sf-warn-'));
  dirs.push(dir);
  writeFileSync(
    join(dir, 'fleet.yaml'),
    `apiVersion: spotfleet.dev/v1
kind: Fleet
metadata: { name: e2e-warnings }
providers:
  lab:
    type: local
    config:
      nodes:
        - { name: od-1, gpuModel: V100, gpus: 4, capacity: on-demand, zone: lab, pricePerHour: 12.24 }
  market:
    type: sim
    config: { trace: ${JSON.stringify(TRACE)}, gpuModel: V100, speed: 1, noticeWindow: 120s, linkMBps: 6 }
pools:
  - { name: spot-v100, provider: market, capacity: spot, gpuModel: V100, maxPricePerHour: 2.0, onWarning: ${onWarning} }
  - { name: od-v100, provider: lab, capacity: on-demand, gpuModel: V100 }
defaults:
  checkpoint: { path: /checkpoints, signal: SIGUSR1, stopGrace: 10s, resumeEnv: RESUME_FROM_CHECKPOINT }
workloads:
  - name: train
    command: ${JSON.stringify(['node', TRAINER])}
    gpus: 1
    gpuModel: V100
    class: training
    capacity: auto
    expectedDuration: 8h
    env: { STEP_MS: "50", CHECKPOINT_EVERY: "40", WEIGHTS_BYTES: "${WEIGHTS}" }
    fallback: { to: on-demand, revertToSpot: true, minDwell: 2m }${extra}
`,
  );
  return dir;
}

const show = (r: CliRun): string => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
const msg = (m: string | RegExp) => (l: LogLine): boolean => (typeof m === 'string' ? l.msg === m : m.test(l.msg));

async function simNotice(dir: string, node: string, kind: string, inDuration: string): Promise<{ id: string; deadline: string }> {
  const r = await runCli(['sim', 'evict', node, dir, '--kind', kind, '--in', inDuration, '--json'], { cwd: dir });
  if (r.code !== 0) throw new Error(`sim evict --kind ${kind}: ${show(r)}`);
  return (JSON.parse(r.stdout) as { notice: { id: string; deadline: string } }).notice;
}

async function onlyInstance(dir: string): Promise<Instance> {
  const all = await runningInstances(dir);
  expect(all.length, JSON.stringify(all)).toBe(1);
  return all[0] as Instance;
}

/** Starts watch, waits for the trainer on spot and its first periodic checkpoint. */
async function startOnSpot(dir: string, extraArgs: string[] = []): Promise<{ w: WatchProcess; inst: Instance }> {
  const w = startWatch(dir, { extraArgs });
  await w.waitFor((l) => l.msg === 'start ok' && l.address === 'workload.train', { what: 'train started', timeoutMs: 40_000 });
  const inst = await onlyInstance(dir);
  expect(inst.provider).toBe('market');
  expect(await waitForLog(dir, inst, /checkpoint step=\d+ reason=periodic/, 20_000)).not.toBeNull();
  return { w, inst };
}

interface StateView {
  resources: Record<string, { type: string; moves?: { downtimeMs?: number; prepared?: boolean; timings?: Record<string, number>; to: string }[]; lastWarning?: { response: string; outcome?: string; numbers: Record<string, number> }; prepared?: unknown }>;
  poolHistory?: Record<string, { warnings: number; warningsFollowed: number; evictions: number }>;
}
/** The state as `spotfleet state pull` prints it (no lock: watch holds it while it reconciles). */
async function state(dir: string): Promise<StateView> {
  const r = await runCli(['state', 'pull', dir, '--no-lock'], { cwd: dir });
  if (r.code !== 0) throw new Error(`state pull: ${show(r)}`);
  return JSON.parse(r.stdout) as StateView;
}

async function poolRecord(dir: string): Promise<{ pool: string; zone: string | null; warnings: number; warnings_followed: number; evictions: number }[]> {
  const r = await runCli(['nodes', dir, '--json'], { cwd: dir });
  expect(r.code, show(r)).toBe(0);
  return (JSON.parse(r.stdout) as { pool_history: { pool: string; zone: string | null; warnings: number; warnings_followed: number; evictions: number }[] }).pool_history;
}

let downtimePrepared = 0;
let downtimeFull = 0;

describe('early warnings in spotfleet watch (e2e)', () => {
  it('(a) prepare: a lease acquired and the checkpoint pre-copied, nothing stopped; the eviction then moves only the delta; an unfollowed warning gives its lease back', async () => {
    const dir = fleetDir('prepare');
    const { w, inst } = await startOnSpot(dir, ['--warning-window', '25s']);
    const leasesBefore = await activeLeases(dir);
    expect(leasesBefore.length).toBe(1);

    let from = w.lines.length;
    await simNotice(dir, inst.node, 'rebalance', '10m');
    const [answer] = await w.waitFor(msg('early warning answered: prepare'), { from, what: 'the prepare answer' });
    expect(answer?.configured).toBe('prepare');
    await w.waitFor(msg('prepared target acquired'), { from, what: 'the target acquired' });
    const [copied] = await w.waitFor(msg('pre-copy ok'), { from, timeoutMs: 30_000, what: 'the pre-copy' });
    expect(copied?.lowPriority).toBe(true);
    expect(Number(copied?.sentBytes)).toBeGreaterThan(WEIGHTS);
    // The pre-copy's progress is logged as a move's is, marked a pre-copy.
    const progress = w.find((l) => l.action === 'transfer' && l.migration === 'pre-copy', from);
    expect(progress.length, JSON.stringify(w.lines.slice(from).map((l) => l.msg))).toBeGreaterThan(0);
    expect(String(progress[0]?.msg)).toMatch(/^transferring [\d.]+ MB of [\d.]+ MB \(\d+%\)/);
    expect(Number(progress[0]?.totalBytes)).toBeGreaterThan(WEIGHTS);
    // A lease acquired in another zone; the workload untouched: same instance, no checkpoint signal.
    const leases = await activeLeases(dir);
    expect(leases.length, JSON.stringify(leases)).toBe(2);
    const target = leases.find((l) => l.node !== inst.node)?.node as string;
    expect((await onlyInstance(dir)).id).toBe(inst.id);
    expect(await instanceLog(dir, inst)).not.toMatch(/reason=SIGUSR1/);
    expect(w.find(msg('eviction notice'), from)).toEqual([]);

    // `explain` shows the decision with its numbers; `nodes` the pool/zone record.
    const ex = await runCli(['explain', 'workload.train', dir], { cwd: dir });
    expect(ex.code, show(ex)).toBe(0);
    expect(ex.stdout).toMatch(/early warning: rebalance/);
    expect(ex.stdout).toMatch(/ignore <?\$[\d.]+, prepare <?\$[\d.]+, move now -?<?\$[\d.]+/);
    expect(ex.stdout).toMatch(/answer: prepare \(onWarning: prepare\)/);
    const hist0 = (await poolRecord(dir)).find((h) => h.pool === 'spot-v100' && h.warnings > 0);
    expect(hist0).toMatchObject({ warnings: 1, warnings_followed: 0, evictions: 0 });

    // The eviction: moved to the prepared node, only the delta sent.
    from = w.lines.length;
    const ev = await simNotice(dir, inst.node, 'preemption', '60s');
    const [moved] = await w.waitFor(msg('migration complete'), { from, timeoutMs: 60_000, what: 'the migration' });
    expect(moved?.to).toBe(target);
    expect(Date.parse(moved?.time ?? '')).toBeLessThan(Date.parse(ev.deadline));
    const [tr] = w.find((l) => l.msg === 'transfer ok' && l.address === 'workload.train', from);
    expect(Number(tr?.sentBytes), JSON.stringify(tr)).toBeLessThan(WEIGHTS / 10);
    downtimePrepared = Number(moved?.downtimeMs);
    const after = await onlyInstance(dir);
    expect(after.node).toBe(target);
    expect(await waitForLog(dir, after, /resumed from step \d+/)).not.toBeNull();
    const rec = (await state(dir)).resources['workload.train'];
    expect(rec?.moves?.at(-1)?.prepared).toBe(true);
    expect(rec?.lastWarning?.outcome).toBe('followed');
    expect(rec?.prepared).toBeUndefined();
    const hist1 = (await poolRecord(dir)).find((h) => h.pool === 'spot-v100' && h.warnings > 0);
    expect(hist1).toMatchObject({ warnings: 1, warnings_followed: 1, evictions: 1 });
    console.info(`(a) prepared move: downtime ${downtimePrepared} ms, transfer ${JSON.stringify(tr)}`);

    // A second warning, on the new node, that nothing follows: its lease goes back after the window.
    await waitForLog(dir, after, /checkpoint step=\d+ reason=periodic/, 20_000);
    from = w.lines.length;
    await simNotice(dir, after.node, 'rebalance', '5s');
    await w.waitFor(msg('prepared target acquired'), { from, what: 'the second target acquired' });
    expect((await activeLeases(dir)).length).toBeGreaterThanOrEqual(2);
    await w.waitFor(msg(/was not followed within its window: the prepared target is given back/), { from, timeoutMs: 45_000, what: 'the target given back' });
    const until = Date.now() + 30_000;
    let left = await activeLeases(dir);
    while (left.length > 1 && Date.now() < until) {
      await sleep(300);
      left = await activeLeases(dir);
    }
    expect(left.map((l) => l.node), 'only the lease the workload runs on').toEqual([after.node]);
    expect((await onlyInstance(dir)).id).toBe(after.id);
    expect((await state(dir)).resources['workload.train']?.lastWarning?.outcome).toBe('not-followed');
  }, 180_000);

  it('(b) ignore: nothing moves on the warning; the eviction copies the whole checkpoint and takes longer than a prepared move', async () => {
    const dir = fleetDir('ignore');
    const { w, inst } = await startOnSpot(dir);
    let from = w.lines.length;
    await simNotice(dir, inst.node, 'rebalance', '10m');
    const [answer] = await w.waitFor(msg('early warning answered: ignore'), { from, what: 'the ignore answer' });
    expect(answer?.configured).toBe('ignore');
    expect(Number(answer?.ignoreUsd)).toBeGreaterThanOrEqual(0);
    await sleep(3000);
    expect((await activeLeases(dir)).length).toBe(1);
    expect((await onlyInstance(dir)).id).toBe(inst.id);
    expect(w.find(msg(/prepared|pre-copy|migration/), from)).toEqual([]);
    expect(Object.values((await state(dir)).poolHistory ?? {}).map((h) => h.warnings)).toEqual([1]);

    from = w.lines.length;
    await simNotice(dir, inst.node, 'preemption', '60s');
    const [moved] = await w.waitFor(msg('migration complete'), { from, timeoutMs: 60_000, what: 'the migration' });
    const [tr] = w.find((l) => l.msg === 'transfer ok' && l.address === 'workload.train', from);
    expect(Number(tr?.sentBytes)).toBeGreaterThan(WEIGHTS);
    downtimeFull = Number(moved?.downtimeMs);
    expect((await onlyInstance(dir)).provider).toBe('lab');
    console.info(`(b) unprepared move: downtime ${downtimeFull} ms (prepared: ${downtimePrepared} ms)`);
    expect((await state(dir)).resources['workload.train']?.moves?.at(-1)?.prepared).toBeUndefined();
  }, 150_000);

  it('(a) and (b): the prepared move had the shorter downtime', () => {
    expect(downtimePrepared, 'run with (a)').toBeGreaterThan(0);
    expect(downtimeFull, 'run with (b)').toBeGreaterThan(0);
    expect(downtimePrepared).toBeLessThan(downtimeFull);
  });

  it('(c) a maintenance event on a pool with onWarning move: moved at once to another spot zone, before its deadline', async () => {
    const dir = fleetDir('move');
    const { w, inst } = await startOnSpot(dir);
    const from = w.lines.length;
    const n = await simNotice(dir, inst.node, 'maintenance', '90s');
    await w.waitFor(msg('early warning answered: move'), { from, what: 'the move answer' });
    const [moved] = await w.waitFor(msg('migration complete'), { from, timeoutMs: 60_000, what: 'the migration' });
    expect(Date.parse(moved?.time ?? '')).toBeLessThan(Date.parse(n.deadline) - 30_000);
    const after = await onlyInstance(dir);
    expect(after.provider).toBe('market');
    expect(after.node).not.toBe(inst.node);
    const rec = (await state(dir)).resources['workload.train'];
    expect(rec?.moves?.at(-1)?.prepared).toBe(true);
    expect(rec?.lastWarning?.response).toBe('move');
    expect(rec?.lastWarning?.outcome).toBe('moved');
    expect(await waitForLog(dir, after, /resumed from step \d+/)).not.toBeNull();
  }, 150_000);

  it('(d) a maintenance event on a pool with onWarning prepare: prepared now, moved there as its deadline nears', async () => {
    const dir = fleetDir('prepare', '\n    overhead: { checkpoint: 2s, transfer: 2s, restart: 2s }');
    const { w, inst } = await startOnSpot(dir);
    const from = w.lines.length;
    const n = await simNotice(dir, inst.node, 'maintenance', '45s');
    await w.waitFor(msg('early warning answered: prepare'), { from, what: 'the prepare answer' });
    await w.waitFor(msg('pre-copy ok'), { from, timeoutMs: 40_000, what: 'the pre-copy' });
    const target = (await activeLeases(dir)).find((l) => l.node !== inst.node)?.node;
    expect(target).toBeDefined();
    // Lead = stop grace 10 s + half the checkpoint + a tenth of the transfer + the restart ≈ 13 s before the deadline.
    const [due] = await w.waitFor(msg(/early warning: moving now \(the maintenance deadline/), { from, timeoutMs: 60_000, what: 'the move as the deadline nears' });
    const lead = Date.parse(n.deadline) - Date.parse(due?.time ?? '');
    expect(lead).toBeGreaterThan(8_000);
    expect(lead).toBeLessThan(20_000);
    const [moved] = await w.waitFor(msg('migration complete'), { from, timeoutMs: 30_000, what: 'the migration' });
    expect(moved?.to).toBe(target);
    expect(Date.parse(moved?.time ?? '')).toBeLessThan(Date.parse(n.deadline));
    const rec = (await state(dir)).resources['workload.train'];
    expect(rec?.moves?.at(-1)?.prepared).toBe(true);
    expect(rec?.lastWarning?.outcome).toBe('moved');
  }, 150_000);
});
