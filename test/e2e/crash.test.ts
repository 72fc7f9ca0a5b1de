// Crash safety through the built CLI: `apply` is killed with SIGKILL at every boundary between a
// side effect and its record (the engine's SPOTFLEET_TEST_CRASH_AT hook), in two phases, and the
// next plain `apply` must converge: exactly one process per workload, no orphan lease, no lost
// checkpoint, nothing left to plan; `destroy` then leaves no process.
//   (a) the first apply of a fresh fleet: two workloads on spot through the sim market
//       (acquire + start, and the state writes around them);
//   (b) a move of both workloads to on-demand (checkpoint, stop, transfer, start, release).
// For each N = 1, 2, ... a fresh temp fleet runs phase (a) crashing at N, recovers, then runs
// phase (b) crashing at N, until an apply of that phase completes without being killed: so every
// boundary of both phases is hit once. Fleets are independent, so a few run at once.
import { rmSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { activeLeases, sleep, tempFleet, writeFleet, type TestWorkload } from './helpers.js';
import {
  crashingApply,
  forEachUntil,
  inFlightKinds,
  newestCheckpoint,
  readState,
  runCli,
  runningInstances,
  waitForLog,
  type CliRun,
  type Instance,
} from './crash-helpers.js';

const SPOT: TestWorkload[] = [{ name: 'train-a', capacity: 'spot' }, { name: 'train-b', gpus: 2, capacity: 'spot' }];
const ON_DEMAND: TestWorkload[] = SPOT.map((w) => ({ ...w, capacity: 'on-demand' }));
const NAMES = SPOT.map((w) => w.name);
// Two fleets at once suit CI's two cores; each apply spends much of its time waiting on processes.
const CONCURRENCY = Math.max(1, Number(process.env.SPOTFLEET_CRASH_CONCURRENCY ?? '2') || 2);

// To reproduce one failure: SPOTFLEET_CRASH_POINTS=7,12 runs only those N (coverage is not checked).
// SPOTFLEET_CRASH_MAX_FAILURES (default 3) stops scheduling new points after that many failures.
const MAX_FAILURES = Math.max(1, Number(process.env.SPOTFLEET_CRASH_MAX_FAILURES ?? '3') || 3);
const ONLY = (process.env.SPOTFLEET_CRASH_POINTS ?? '').split(',').filter(Boolean).map(Number);

type Phase = 'a' | 'b';

interface Outcome {
  phase: Phase;
  n: number;
  killed: boolean;
  /** Action kinds in flight when the process died. */
  inFlight: string[];
}

const apply = (dir: string): Promise<CliRun> => runCli(['apply', '--auto-approve', dir], { cwd: dir });
const show = (r: CliRun): string => `exit ${r.code}${r.signal ? ` (${r.signal})` : ''}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

function byWorkload(list: Instance[]): Map<string, Instance[]> {
  const m = new Map<string, Instance[]>();
  for (const i of list) m.set(i.workload, [...(m.get(i.workload) ?? []), i]);
  return m;
}

/** Waits until every workload has a periodic checkpoint on its spot node, so a move has one to lose. */
async function waitForCheckpoints(dir: string): Promise<void> {
  for (let i = 0; i < 150; i++) {
    const ck = newestCheckpoint(dir, 'market');
    if (NAMES.every((w) => (ck.get(w) ?? -1) >= 0)) return;
    await sleep(100);
  }
  throw new Error(`no periodic checkpoint on the spot nodes within 15 s: ${JSON.stringify([...newestCheckpoint(dir, 'market')])}`);
}

/** The invariants after the recovering apply. Returns the running instances. */
async function assertConverged(dir: string, phase: Phase, tag: string): Promise<Instance[]> {
  const running = await runningInstances(dir);
  const per = byWorkload(running);
  for (const w of NAMES) expect(per.get(w)?.length, `${tag}: running instances of ${w}: ${JSON.stringify(running)}`).toBe(1);
  expect(running.length, `${tag}: only the fleet's workloads run`).toBe(NAMES.length);
  const want = phase === 'a' ? 'market' : 'lab';
  for (const i of running) expect(i.provider, `${tag}: ${i.workload} runs on ${want}`).toBe(want);

  // No orphan lease: every live lease hosts a running workload, and the state records exactly them.
  const leases = await activeLeases(dir);
  const hosts = new Set(running.filter((i) => i.provider === 'market').map((i) => i.node));
  for (const l of leases) expect(hosts.has(l.node ?? ''), `${tag}: lease ${l.id} hosts no running workload`).toBe(true);
  if (phase === 'b') expect(leases, `${tag}: every spot lease released after the move`).toEqual([]);
  const st = readState(dir);
  const recorded = Object.values(st.resources).filter((r) => r.type === 'lease').map((r) => r.leaseId).sort();
  expect(recorded, `${tag}: leases in state = live leases`).toEqual(leases.map((l) => l.id).sort());
  return running;
}

describe('crash safety: apply killed with SIGKILL at every side-effect boundary', () => {
  it('converges after a crash anywhere in a first apply and in a move of two workloads', async () => {
    const outcomes: Outcome[] = [];
    const failures: string[] = [];
    const end: Record<Phase, number | undefined> = { a: undefined, b: undefined };
    const needed = (phase: Phase, i: number): boolean => {
      const last = end[phase];
      return last === undefined || i <= last;
    };

    const crashAndRecover = async (dir: string, phase: Phase, n: number, afterCrash?: () => void): Promise<{ crash: CliRun; recovered?: CliRun }> => {
      const crash = await crashingApply(dir, n);
      afterCrash?.();
      const killed = crash.signal === 'SIGKILL';
      outcomes.push({ phase, n, killed, inFlight: killed ? inFlightKinds(crash.stdout) : [] });
      if (!killed) {
        // Past the last boundary: an ordinary, complete apply.
        expect(crash.code, `${phase}${n}: apply without a crash\n${show(crash)}`).toBe(0);
        end[phase] = Math.min(end[phase] ?? n, n);
        return { crash };
      }
      return { crash, recovered: await apply(dir) };
    };

    /** Runs `body` on a fleet folder, then destroys it (checking that nothing is left) and removes it. */
    const withFleet = async (n: number, body: (dir: string) => Promise<void>): Promise<void> => {
      const dir = tempFleet(SPOT);
      let ok = true;
      try {
        await body(dir);
      } catch (e) {
        ok = false;
        failures.push(`${e instanceof Error ? e.message : String(e)}\n(fleet kept in ${dir})`);
      } finally {
        const d = await runCli(['destroy', '--auto-approve', dir], { cwd: dir });
        const left = await runningInstances(dir);
        const leases = await activeLeases(dir);
        if (d.code !== 0 || left.length > 0) failures.push(`#${n}: destroy left ${JSON.stringify(left)}\n${show(d)}`);
        else if (leases.length > 0) failures.push(`#${n}: destroy left leases ${JSON.stringify(leases)}`);
        // Keep a failed fleet's folder for a post-mortem; remove the rest.
        else if (ok) rmSync(dir, { recursive: true, force: true });
      }
    };

    // (a) the first apply: acquire + start for two workloads. Throws on a broken invariant.
    const phaseA = async (dir: string, n: number): Promise<void> => {
      const { recovered } = await crashAndRecover(dir, 'a', n);
      if (recovered) expect(recovered.code, `a${n}: recovering apply\n${show(recovered)}`).toBe(0);
      await assertConverged(dir, 'a', `a${n}`);
      const plan = await runCli(['plan', '--detailed-exitcode', dir], { cwd: dir });
      expect(plan.code, `a${n}: plan after recovery\n${show(plan)}`).toBe(0);
    };

    // (b) a move of both to on-demand: checkpoint, stop, transfer, start, release.
    const phaseB = async (dir: string, n: number): Promise<void> => {
      await waitForCheckpoints(dir);
      writeFleet(dir, ON_DEMAND);
      // The newest checkpoint the old (spot) instances had written when apply died.
      let before = new Map<string, number>();
      const { crash, recovered } = await crashAndRecover(dir, 'b', n, () => (before = newestCheckpoint(dir, 'market')));
      if (recovered) expect(recovered.code, `b${n}: recovering apply\n${show(recovered)}`).toBe(0);
      const running = await assertConverged(dir, 'b', `b${n}`);
      for (const inst of running) {
        const saved = before.get(inst.workload) ?? -1;
        expect(saved, `b${n}: ${inst.workload} had a checkpoint on spot`).toBeGreaterThanOrEqual(0);
        const m = await waitForLog(dir, inst, /resumed from step (\d+)/);
        expect(m, `b${n}: ${inst.workload} resumed from a checkpoint\n${show(recovered ?? crash)}`).not.toBeNull();
        expect(Number(m?.[1]), `b${n}: ${inst.workload} lost no checkpoint`).toBeGreaterThanOrEqual(saved);
        // The checkpoint it resumed from (or a newer one) is in its node's folder.
        const there = newestCheckpoint(dir, 'lab').get(inst.workload) ?? -1;
        expect(there, `b${n}: ${inst.workload}'s checkpoints on ${inst.node}`).toBeGreaterThanOrEqual(saved);
      }
      const plan = await runCli(['plan', '--detailed-exitcode', dir], { cwd: dir });
      expect(plan.code, `b${n}: plan after recovery\n${show(plan)}`).toBe(0);
    };

    const setup = async (dir: string, n: number): Promise<void> => {
      const r = await apply(dir);
      expect(r.code, `setup for b${n}\n${show(r)}`).toBe(0);
    };

    // Phase (a)'s recovered fleet is phase (b)'s starting point, which saves an apply per N; when
    // (a) fails there, (b) runs on a fresh fleet so that its point is still covered.
    const task = async (n: number): Promise<void> => {
      let bDone = false;
      await withFleet(n, async (dir) => {
        if (needed('a', n)) await phaseA(dir, n);
        else await setup(dir, n);
        if (needed('b', n)) {
          bDone = true;
          await phaseB(dir, n);
        }
      });
      if (!bDone && needed('b', n)) await withFleet(n, async (dir) => {
        await setup(dir, n);
        await phaseB(dir, n);
      });
    };

    // Stop early when something is broken everywhere, rather than failing 40 times slowly.
    if (ONLY.length > 0) {
      await forEachUntil(CONCURRENCY, (i) => i <= ONLY.length, (i) => task(ONLY[i - 1] as number));
      expect(failures, failures.join('\n\n')).toEqual([]);
      return;
    }
    await forEachUntil(CONCURRENCY, (i) => failures.length < MAX_FAILURES && (needed('a', i) || needed('b', i)), task);

    const points = { a: outcomes.filter((o) => o.phase === 'a' && o.killed), b: outcomes.filter((o) => o.phase === 'b' && o.killed) };
    const kinds = (os: Outcome[]): string[] => [...new Set(os.flatMap((o) => o.inFlight))].sort();
    const completed = (p: Phase): string => outcomes.filter((o) => o.phase === p && !o.killed).map((o) => o.n).join(',');
    console.info(`crash points: phase a ${points.a.length} (in flight: ${kinds(points.a).join(', ')}; completed at N=${completed('a')}), phase b ${points.b.length} (in flight: ${kinds(points.b).join(', ')}; completed at N=${completed('b')}); ${failures.length} failed`);
    expect(failures, failures.join('\n\n')).toEqual([]);
    // Every boundary below the first complete apply crashed (the count of boundaries is fixed).
    for (const p of ['a', 'b'] as const) {
      expect(end[p], `phase ${p} reached an apply without a crash`).toBeDefined();
      expect(points[p].map((o) => o.n).sort((x, y) => x - y), `phase ${p}: killed at every N below ${end[p]}`).toEqual(Array.from({ length: (end[p] ?? 1) - 1 }, (_, k) => k + 1));
    }
    expect(points.a.length + points.b.length).toBeGreaterThanOrEqual(20);
    // Every kind of side effect was interrupted at least once.
    expect(kinds(points.a)).toEqual(expect.arrayContaining(['acquire', 'start']));
    expect(kinds(points.b)).toEqual(expect.arrayContaining(['checkpoint', 'release', 'start', 'stop', 'transfer']));
  }, 900_000);

  // (c) Terminal states: a job that finished on spot (its lease to release) and one that failed
  // (backoffLimit 0): the apply that records them is killed at every boundary, and the recovering
  // apply must converge to exactly one 'succeeded' and one 'failed' (counted once), nothing running,
  // nothing paid for, and a plan with no changes; a further apply starts nothing.
  it('converges to the terminal states after a crash anywhere while recording finished and failed jobs', async () => {
    const JOBS: TestWorkload[] = [
      { name: 'done', capacity: 'spot', env: { TOTAL_STEPS: '10', CHECKPOINT_EVERY: '5' } },
      { name: 'bad', capacity: 'on-demand', command: ['sh', '-c', 'echo boom; exit 3'], extra: { backoffLimit: 0 } },
    ];
    const failures: string[] = [];
    let end: number | undefined;
    const killedAt: number[] = [];
    const task = async (n: number): Promise<void> => {
      const dir = tempFleet(JOBS);
      try {
        const setup = await apply(dir);
        expect(setup.code, show(setup)).toBe(0);
        for (let i = 0; i < 100 && (await runningInstances(dir)).length > 0; i++) await sleep(100);
        expect(await runningInstances(dir), 'both jobs ended').toEqual([]);
        const crash = await crashingApply(dir, n);
        if (crash.signal !== 'SIGKILL') {
          expect(crash.code, show(crash)).toBe(0);
          end = Math.min(end ?? n, n);
        } else {
          killedAt.push(n);
          const rec = await apply(dir);
          expect(rec.code, `c${n}: recovering apply\n${show(rec)}`).toBe(0);
        }
        const st = readState(dir) as unknown as { resources: Record<string, { type: string; phase?: string; failures?: number }> };
        expect(st.resources['workload.done']?.phase, `c${n}`).toBe('succeeded');
        expect(st.resources['workload.bad']?.phase, `c${n}`).toBe('failed');
        expect(st.resources['workload.bad']?.failures, `c${n}: the failure counted once`).toBe(1);
        expect(await runningInstances(dir), `c${n}: nothing runs`).toEqual([]);
        expect(await activeLeases(dir), `c${n}: nothing is paid for`).toEqual([]);
        const plan = await runCli(['plan', '--detailed-exitcode', dir], { cwd: dir });
        expect(plan.code, `c${n}: plan after recovery\n${show(plan)}`).toBe(0);
        const again = await apply(dir);
        expect(again.code).toBe(0);
        expect(await runningInstances(dir), `c${n}: a finished job never runs again`).toEqual([]);
        rmSync(dir, { recursive: true, force: true });
      } catch (e) {
        failures.push(`${e instanceof Error ? e.message : String(e)}\n(fleet kept in ${dir})`);
      }
    };
    await forEachUntil(CONCURRENCY, (i) => failures.length < MAX_FAILURES && (end === undefined || i <= end), task);
    console.info(`crash points (terminal states): killed at ${killedAt.sort((a, b) => a - b).join(',')}; completed at N=${end ?? '-'}; ${failures.length} failed`);
    expect(failures, failures.join('\n\n')).toEqual([]);
    expect(end, 'an apply completed without a crash').toBeDefined();
    expect(killedAt.sort((a, b) => a - b)).toEqual(Array.from({ length: (end ?? 1) - 1 }, (_, k) => k + 1));
  }, 600_000);

  // Minimal reproduction of the first failure the suite finds (phase a, N = 3..9): the crash leaves
  // train-b's lease (2 GPUs) acquired but unrecorded and train-a's recorded. The next plan adopts
  // train-b's lease, places train-a on it as an existing node with free GPUs, releases train-a's own
  // lease, and acquires for train-b with the same idempotency key (`e2e:train-b:g1`, the generation
  // did not move), which returns that same lease, now holding train-a: start fails "1 of 2 GPUs
  // free", and every later apply repeats it. Fixed in src/engine/plan.ts: a lease labelled for a
  // workload that is not running yet is reserved for it; this test keeps it fixed.
  it('regression: a crash between the first acquires converges (a lease acquired for one workload is not given to another)', async () => {
    const dir = tempFleet(SPOT);
    try {
      const crash = await crashingApply(dir, 3);
      expect(crash.signal).toBe('SIGKILL');
      const first = await apply(dir);
      const second = first.code === 0 ? first : await apply(dir);
      expect(second.code, show(second)).toBe(0);
      const per = byWorkload(await runningInstances(dir));
      for (const w of NAMES) expect(per.get(w)?.length, w).toBe(1);
    } finally {
      await runCli(['destroy', '--auto-approve', dir], { cwd: dir });
    }
  }, 180_000);
});
