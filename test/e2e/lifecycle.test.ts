// The workload lifecycle through the built CLI, as a user runs it: jobs finish (and never run
// again by accident), crash-looping jobs fail after backoffLimit, a workload that fits no capacity
// is a pending change (exit 2), `--refresh=false` never invents changes, apply works again after
// destroy, destroy holds while watch runs, waiting for a checkpoint ends when the process exits,
// `logs` shows a workload's output across its restarts, and exited instances are removed from the
// nodes a day after they ended, but each workload's newest.
import { afterAll, describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, readState, runningInstances, waitForLog, type Instance } from './crash-helpers.js';
import { activeLeases, fleetYaml, openProviders, sleep, tempFleet, type TestWorkload } from './helpers.js';
import { destroyAll, killAllWatches, simEvict, startWatch, tempWatchFleet, type LogLine } from './watch-helpers.js';

const dirs: string[] = [];
afterAll(async () => {
  await killAllWatches();
  const failures = await destroyAll(dirs);
  expect(failures, failures.join('\n')).toEqual([]);
}, 120_000);

const show = (r: { code: number; stdout: string; stderr: string }): string => `exit ${r.code}\n${r.stdout}\n${r.stderr}`;

interface Rec {
  type: string;
  phase?: string;
  failures?: number;
  recoveries?: number;
  instanceId?: string;
  lastExit?: { code?: number; outcome: string };
  node?: string;
  capacity?: string;
  instances?: { id: string }[];
}
const record = (dir: string, name: string): Rec | undefined => readState(dir).resources[`workload.${name}`];

async function waitFor<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 60_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

/** A short job: 20 steps of 50 ms, then exit 0. */
const JOB = (name: string, extra: Partial<TestWorkload> = {}): TestWorkload => ({ name, ...extra, env: { TOTAL_STEPS: '20', CHECKPOINT_EVERY: '5', ...extra.env } });

describe('workload lifecycle (e2e)', () => {
  it('a job that exits 0 on spot is succeeded: recorded, its lease released, and never started again', async () => {
    const dir = tempFleet([JOB('j1', { capacity: 'spot' })]);
    dirs.push(dir);
    const a = await runCli(['apply', '--auto-approve', dir], { cwd: dir });
    expect(a.code, show(a)).toBe(0);
    expect(record(dir, 'j1')?.capacity).toBe('spot');
    await waitFor('j1 to exit', async () => (await runningInstances(dir)).length === 0 || undefined, 20_000);
    const plan = await runCli(['plan', '-detailed-exitcode', dir], { cwd: dir });
    expect(plan.stdout, show(plan)).toMatch(/workload\.j1: completed: .* exited with code 0/);
    // It is recorded as succeeded and its capacity is given back; nothing starts it again.
    expect(plan.stdout).toMatch(/lease\.spot-v100\.\S+ will be destroyed/);
    expect(plan.stdout).not.toMatch(/will be created/);
    expect(plan.code, show(plan)).toBe(2);
    // Before anything records it, status says what the provider says: ended, and free.
    const early = await runCli(['status', dir], { cwd: dir });
    expect(early.stdout, show(early)).toMatch(/: 1 ended; \$0\.00\/h/);
    expect(early.stdout).toMatch(/j1\s+completed \(exit 0\); not recorded yet\s+\S+\s+spot\s+\S+\s+-\s/);
    const ap = await runCli(['apply', '--auto-approve', dir], { cwd: dir });
    expect(ap.code, show(ap)).toBe(0);
    expect(record(dir, 'j1')).toMatchObject({ phase: 'succeeded', lastExit: { code: 0, outcome: 'succeeded' } });
    expect(await activeLeases(dir), 'the spot lease is released once the job finished').toEqual([]);
    // Never again by accident: plan, apply and status agree.
    const again = await runCli(['plan', '-detailed-exitcode', dir], { cwd: dir });
    expect(again.code, show(again)).toBe(0);
    expect(again.stdout).toMatch(/No changes\./);
    await runCli(['apply', '--auto-approve', dir], { cwd: dir });
    expect(await runningInstances(dir)).toEqual([]);
    const st = await runCli(['status', dir], { cwd: dir });
    expect(st.stdout, show(st)).toMatch(/1 succeeded; \$0\.00\/h/);
    expect(st.stdout).toMatch(/j1\s+succeeded/);
    const sv = await runCli(['savings', '--json', dir], { cwd: dir });
    expect(JSON.parse(sv.stdout).totals.phases, show(sv)).toEqual({ succeeded: 1 });
    // The explicit way to run it again: from scratch.
    const rr = await runCli(['rerun', 'workload.j1', dir], { cwd: dir });
    expect(rr.code, show(rr)).toBe(0);
    expect(rr.stdout).toMatch(/from scratch/);
    const ap2 = await runCli(['apply', '--auto-approve', dir], { cwd: dir });
    expect(ap2.code, show(ap2)).toBe(0);
    const [inst] = await runningInstances(dir);
    expect(await waitForLog(dir, inst as Instance, /starting from step 0/)).not.toBeNull();
  }, 120_000);

  it('exited instances stay a day (logs across runs), then are removed, but the newest: plan says so, apply does it', async () => {
    const dir = tempFleet([JOB('j3', { capacity: 'on-demand' })]);
    dirs.push(dir);
    /** Every instance of j3 the runtime keeps, exited ones too, oldest first. */
    const kept = async (): Promise<{ id: string; node: string; state: string }[]> => {
      const opened = await openProviders(dir);
      try {
        const all = (await opened.providers.get('lab')?.runtime?.list()) ?? [];
        return all.filter((i) => i.workload === 'j3').sort((a, b) => a.startedAt.localeCompare(b.startedAt) || a.id.localeCompare(b.id)).map((i) => ({ id: i.id, node: i.node, state: i.state }));
      } finally {
        await opened.close();
      }
    };
    // Two runs: the job, and `rerun` of it; each exits 0 and is recorded.
    for (const step of [[], ['rerun', 'workload.j3', dir]]) {
      if (step.length > 0) expect((await runCli(step, { cwd: dir })).code).toBe(0);
      const ap = await runCli(['apply', '--auto-approve', dir], { cwd: dir });
      expect(ap.code, show(ap)).toBe(0);
      await waitFor('j3 to exit', async () => (await runningInstances(dir)).length === 0 || undefined, 20_000);
      expect((await runCli(['apply', '--auto-approve', dir], { cwd: dir })).code).toBe(0);
      expect(record(dir, 'j3')?.phase).toBe('succeeded');
    }
    const [first, second] = await kept();
    expect([first?.state, second?.state]).toEqual(['exited', 'exited']);
    // Within the day both stay: no changes, and logs show both runs.
    const fresh = await runCli(['plan', '-detailed-exitcode', dir], { cwd: dir });
    expect(fresh.code, show(fresh)).toBe(0);
    expect(fresh.stdout).toMatch(/No changes\./);
    const both = await runCli(['logs', 'workload.j3', '--all-instances', dir], { cwd: dir });
    expect(both.stdout.match(/^==> /gm)?.length, show(both)).toBe(2);
    // A day and more passes for both (as the runtime records when each ended).
    // Where the local runtime keeps the node's instances: the folder that holds the first one's.
    const folders = readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isDirectory() && e.name === first?.id);
    expect(folders.length).toBe(1);
    const nodeDir = (folders[0] as { parentPath?: string; path: string }).parentPath ?? (folders[0] as { path: string }).path;
    expect(readdirSync(nodeDir).sort()).toEqual([first?.id, second?.id].sort());
    for (const id of [first?.id, second?.id]) {
      const f = join(nodeDir, id ?? '?', 'exit.json');
      writeFileSync(f, JSON.stringify({ ...JSON.parse(readFileSync(f, 'utf8')), endedAt: new Date(Date.now() - 49 * 3_600_000).toISOString() }));
    }
    const plan = await runCli(['plan', '-detailed-exitcode', dir], { cwd: dir });
    expect(plan.code, show(plan)).toBe(2);
    expect(plan.stdout).toMatch(/# workload\.j3 will be updated in-place/);
    expect(plan.stdout).toContain(`# cleanup: remove 1 instance that exited more than 1d ago (kept: the newest, ${second?.id} on ${second?.node})`);
    expect(plan.stdout).toMatch(/Plan: 0 to add, 1 to change, 0 to destroy\./);
    const ap = await runCli(['apply', '--auto-approve', dir], { cwd: dir });
    expect(ap.code, show(ap)).toBe(0);
    expect(await kept()).toEqual([second]);
    expect(readdirSync(nodeDir)).toEqual([second?.id]);
    // logs still lists both runs, and says where the first one's output went.
    const one = await runCli(['logs', 'workload.j3', '--all-instances', dir], { cwd: dir });
    expect(one.code, show(one)).toBe(0);
    expect(one.stdout.match(/^==> /gm)?.length, show(one)).toBe(2);
    expect(one.stdout).toMatch(new RegExp(`^\\(removed from lab/${first?.node} at \\S+, a day after it exited: its output went with it\\)$`, 'm'));
    expect(one.stdout.match(/^\(removed from /gm)?.length).toBe(1);
    // The job stays done: nothing runs, and the plan has nothing more to do.
    const after = await runCli(['plan', '-detailed-exitcode', dir], { cwd: dir });
    expect(after.code, show(after)).toBe(0);
    expect(await runningInstances(dir)).toEqual([]);
    expect(record(dir, 'j3')?.phase).toBe('succeeded');
  }, 120_000);

  it('a job moved from spot to on-demand by an eviction finishes there: succeeded, nothing left paid for', async () => {
    const dir = tempWatchFleet([JOB('j2', { env: { TOTAL_STEPS: '200', CHECKPOINT_EVERY: '10' } })]);
    dirs.push(dir);
    const w = startWatch(dir, { interval: '2s' });
    await w.waitFor((l) => l.msg === 'start ok' && l.address === 'workload.j2', { what: 'j2 started' });
    const onSpot = await waitFor('j2 on spot', async () => (await runningInstances(dir)).find((i) => i.provider === 'market'));
    await sleep(1000);
    await simEvict(dir, onSpot.node, '30s');
    await w.waitFor((l) => l.msg === 'migration complete' && l.address === 'workload.j2', { timeoutMs: 40_000, what: 'the migration' });
    const onDemand = await waitFor('j2 on on-demand', async () => (await runningInstances(dir)).find((i) => i.provider === 'lab'));
    expect(await waitForLog(dir, onDemand, /resumed from step (\d+)/)).not.toBeNull();
    await waitFor('j2 succeeded', () => (record(dir, 'j2')?.phase === 'succeeded' ? true : undefined), 40_000);
    expect(await runningInstances(dir)).toEqual([]);
    await sleep(4500); // two more reconciles: still nothing runs, nothing is paid for
    expect(await runningInstances(dir)).toEqual([]);
    expect(await activeLeases(dir)).toEqual([]);
    expect(record(dir, 'j2')?.instances?.length, 'one run on spot, one on on-demand').toBe(2);
    w.signal('SIGTERM');
    expect((await w.exited).code).toBe(0);
  }, 150_000);

  it('a crash-looping job restarts with back-off and is failed after backoffLimit, with an alert; preemptions do not count', async () => {
    const dir = tempWatchFleet([{ name: 'crash', command: ['sh', '-c', 'echo boom; exit 3'], capacity: 'on-demand', extra: { backoffLimit: 1 } }]);
    dirs.push(dir);
    writeFileSync(join(dir, 'fleet.yaml'), `${readFileSync(join(dir, 'fleet.yaml'), 'utf8')}alerts:\n  - { name: failed, when: workload-failed, severity: critical, notify: [ops] }\nsinks:\n  - { name: ops, type: log }\n`);
    const w = startWatch(dir, { interval: '2s' });
    const failedLine = await w.waitFor((l) => l.action === 'alert' && /workload\.crash/.test(l.msg), { timeoutMs: 60_000, what: 'the workload-failed alert' });
    expect(failedLine[0]?.msg).toMatch(/failed/);
    const rec = record(dir, 'crash');
    expect(rec).toMatchObject({ phase: 'failed', failures: 2, recoveries: 0, lastExit: { code: 3, outcome: 'failed' } });
    expect(w.find((l: LogLine) => l.msg === 'start ok' && l.address === 'workload.crash').length, 'started once, restarted once').toBe(2);
    await sleep(4500);
    expect(w.find((l: LogLine) => l.msg === 'start ok' && l.address === 'workload.crash').length, 'never started again once failed').toBe(2);
    const logs = await runCli(['logs', 'workload.crash', '--all-instances', dir], { cwd: dir });
    expect(logs.stdout.match(/^boom$/gm)?.length, show(logs)).toBe(2);
    expect(logs.stdout.match(/^==> /gm)?.length).toBe(2);
    w.signal('SIGTERM');
    expect((await w.exited).code).toBe(0);
    const st = await runCli(['status', dir], { cwd: dir });
    expect(st.stdout).toMatch(/crash\s+failed/);
    expect(st.stdout).toMatch(/2 failure\(s\), 0 recovery/);
  }, 120_000);

  it('a workload that fits no capacity is a pending change with its reason, and -detailed-exitcode exits 2', async () => {
    const dir = tempFleet([{ name: 'huge', gpus: 4, capacity: 'on-demand' }, { name: 'small', capacity: 'on-demand', gpus: 4 }, { name: 'third', capacity: 'on-demand', gpus: 4 }]);
    dirs.push(dir);
    const ap = await runCli(['apply', '--auto-approve', dir], { cwd: dir });
    expect(ap.code, show(ap)).toBe(0);
    expect(ap.stdout).toMatch(/1 workload cannot run yet \(pending\)/);
    const plan = await runCli(['plan', '-detailed-exitcode', dir], { cwd: dir });
    expect(plan.code, show(plan)).toBe(2);
    expect(plan.stdout).not.toMatch(/No changes/);
    expect(plan.stdout).toMatch(/# workload\.third cannot run yet/);
    expect(plan.stdout).toMatch(/pool od-v100: needs 4 free GPU\(s\), the most free is 0/);
    expect(plan.stdout).toMatch(/Plan: 0 to add, 0 to change, 0 to destroy, 1 pending\./);
    const st = await runCli(['status', dir], { cwd: dir });
    expect(st.stdout).toMatch(/third\s+pending/);
    expect(st.stdout).toMatch(/third: pending: no capacity fits it/);
  }, 90_000);

  it('plan -refresh=false on a converged fleet says No changes and exits 0', async () => {
    const dir = tempFleet([{ name: 'a', capacity: 'on-demand' }, { name: 'b' }]);
    dirs.push(dir);
    const ap = await runCli(['apply', '--auto-approve', dir], { cwd: dir });
    expect(ap.code, show(ap)).toBe(0);
    const fresh = await runCli(['plan', '-detailed-exitcode', dir], { cwd: dir });
    expect(fresh.code, show(fresh)).toBe(0);
    const stale = await runCli(['plan', '-refresh=false', '-detailed-exitcode', dir], { cwd: dir });
    expect(stale.code, show(stale)).toBe(0);
    expect(stale.stdout).toMatch(/No changes\. Your fleet matches the configuration\./);
    expect(stale.stdout).not.toMatch(/is gone|will be destroyed|\$0\.00\/h after/);
    const ap2 = await runCli(['apply', '-refresh=false', '--auto-approve', dir], { cwd: dir });
    expect(ap2.code, show(ap2)).toBe(0);
    expect((await runningInstances(dir)).map((i) => i.workload)).toEqual(['a', 'b']);
  }, 90_000);

  it('apply after destroy runs the fleet again, resuming from its checkpoints, with keys of its own', async () => {
    const dir = tempFleet([{ name: 'a' }, { name: 'b', capacity: 'on-demand' }]);
    dirs.push(dir);
    expect((await runCli(['apply', '--auto-approve', dir], { cwd: dir })).code).toBe(0);
    await sleep(1500);
    const d = await runCli(['destroy', '--auto-approve', dir], { cwd: dir });
    expect(d.code, show(d)).toBe(0);
    expect(d.stdout).toMatch(/Destroy complete!/);
    expect(record(dir, 'a')?.phase).toBe('cancelled');
    expect(await runningInstances(dir)).toEqual([]);
    for (let i = 0; i < 2; i++) {
      const ap = await runCli(['apply', '--auto-approve', dir], { cwd: dir });
      expect(ap.code, show(ap)).toBe(0);
      const run = await waitFor('both running', async () => {
        const r = await runningInstances(dir);
        return r.length === 2 ? r : undefined;
      }, 20_000);
      for (const inst of run) expect(await waitForLog(dir, inst, /resumed from step \d+/), `${inst.workload} resumed`).not.toBeNull();
      const st = await runCli(['status', dir], { cwd: dir });
      expect(st.stdout, show(st)).toMatch(/2 running/);
      expect(st.stdout).not.toMatch(/died/);
      await sleep(1000);
      expect((await runCli(['destroy', '--auto-approve', dir], { cwd: dir })).code).toBe(0);
    }
  }, 150_000);

  it('destroy with watch running: nothing runs for 60 s after, and the next apply resumes each workload from its checkpoint', async () => {
    const dir = tempWatchFleet([{ name: 'train-a' }, { name: 'train-b', capacity: 'on-demand' }]);
    dirs.push(dir);
    const w = startWatch(dir, { interval: '2s' });
    await w.waitFor((l) => l.msg === 'start ok' && l.address === 'workload.train-b', { what: 'started' });
    await waitFor('both running', async () => ((await runningInstances(dir)).length === 2 ? true : undefined));
    await sleep(1500);
    const d = await runCli(['destroy', '--auto-approve', dir], { cwd: dir, timeoutMs: 150_000 });
    expect(d.code, show(d)).toBe(0);
    expect(d.stdout).toMatch(/Destroy complete!/);
    const until = Date.now() + 60_000;
    while (Date.now() < until) {
      expect(await runningInstances(dir), 'nothing runs while the fleet is destroyed').toEqual([]);
      expect(await activeLeases(dir), 'nothing is paid for').toEqual([]);
      await sleep(3000);
    }
    expect(w.alive).toBe(true);
    expect(w.find((l) => l.action === 'mode' && /idle until the next apply/.test(l.msg)).length, w.tail()).toBeGreaterThan(0);
    const st = await runCli(['status', dir], { cwd: dir });
    expect(st.stdout, show(st)).toMatch(/destroyed/);
    expect(st.stdout).toMatch(/idle: the fleet is destroyed/);
    const ap = await runCli(['apply', '--auto-approve', dir], { cwd: dir, timeoutMs: 150_000 });
    expect(ap.code, show(ap)).toBe(0);
    const run = await waitFor('both running again', async () => {
      const r = await runningInstances(dir);
      return r.length === 2 ? r : undefined;
    });
    for (const inst of run) expect(await waitForLog(dir, inst, /resumed from step \d+/), `${inst.workload} resumed from its checkpoint`).not.toBeNull();
    w.signal('SIGTERM');
    expect((await w.exited).code).toBe(0);
  }, 200_000);

  it('a workload with no handler for the checkpoint signal is neither signalled nor waited for', async () => {
    const dir = tempFleet([{ name: 'sleeper', command: ['sleep', '1000'], capacity: 'on-demand' }]);
    dirs.push(dir);
    expect((await runCli(['apply', '--auto-approve', dir], { cwd: dir })).code).toBe(0);
    const t0 = Date.now();
    const d = await runCli(['destroy', '--auto-approve', dir], { cwd: dir });
    expect(d.code, show(d)).toBe(0);
    expect(Date.now() - t0, 'no 120 s wait for a checkpoint that cannot come').toBeLessThan(20_000);
    expect(d.stdout).not.toMatch(/restarts from the beginning/);
    expect(d.stdout).toMatch(/no handler for SIGUSR1, so no checkpoint was asked for/);
    expect(d.stdout).toMatch(/Destroy complete!/);
    expect(await runningInstances(dir)).toEqual([]);
  }, 60_000);

  it('two overlapping evictions are handled at once: every workload resumes within 30 s of its own notice', async () => {
    // 10 s to write a checkpoint on the signal; notices 1 s apart with 30 s deadlines.
    const slow = { CHECKPOINT_MS: '10000', CHECKPOINT_EVERY: '100000' };
    const dir = tempWatchFleet([{ name: 'e1', env: slow }, { name: 'e2', env: slow }], { noticeWindow: '30s', stopGrace: '5s' });
    dirs.push(dir);
    const w = startWatch(dir, { interval: '30s' });
    await w.waitFor((l) => l.msg === 'start ok' && l.address === 'workload.e2', { what: 'started' });
    const spot = await waitFor('both on spot', async () => {
      const r = (await runningInstances(dir)).filter((i) => i.provider === 'market');
      return r.length === 2 && r[0]?.node !== r[1]?.node ? r : undefined;
    });
    await sleep(1000);
    const n1 = await simEvict(dir, spot[0]?.node as string, '30s');
    await sleep(1000);
    const n2 = await simEvict(dir, spot[1]?.node as string, '30s');
    const moved = await w.waitFor((l) => l.msg === 'migration complete', { count: 2, timeoutMs: 45_000, what: 'both migrations' });
    for (const [inst, notice] of [[spot[0], n1], [spot[1], n2]] as const) {
      const line = moved.find((l) => l.address === `workload.${inst?.workload}`);
      expect(line, `${inst?.workload} migrated\n${w.tail()}`).toBeDefined();
      const took = Date.parse(line?.time ?? '') - Date.parse(notice.receivedAt);
      console.info(`overlap: ${inst?.workload} resumed ${took} ms after its notice (timings ${JSON.stringify(line?.timings)})`);
      expect(took, `${inst?.workload} resumed within 30 s of its notice`).toBeLessThan(30_000);
    }
    const after = await runningInstances(dir);
    expect(after.map((i) => i.workload).sort()).toEqual(['e1', 'e2']);
    for (const inst of after) expect(await waitForLog(dir, inst, /resumed from step \d+/)).not.toBeNull();
    w.signal('SIGTERM');
    expect((await w.exited).code).toBe(0);
  }, 120_000);
});

describe('a migration survives SIGKILL of watch at each step (e2e)', () => {
  /**
   * One trainer on spot gets a notice; a watch killed by the engine's crash hook at side-effect
   * boundary N (SPOTFLEET_TEST_CRASH_AT) leaves the migration somewhere between its steps. A restarted
   * watch must finish it: exactly one copy running, on the fallback (on-demand, as `fallback.to`
   * says, never a new spot lease), resumed from the newest checkpoint, and the move record cleared.
   * Across the boundaries chosen, the crash must have hit every step of the move.
   */
  const stepsHit = new Set<string>();
  const killAt = async (n: number): Promise<void> => {
    const dir = tempWatchFleet([{ name: 'train-a', env: { CHECKPOINT_EVERY: '1000' } }]);
    dirs.push(dir);
    const setup = await runCli(['apply', '--auto-approve', dir], { cwd: dir });
    expect(setup.code, show(setup)).toBe(0);
    const [spot] = await waitFor('on spot', async () => {
      const r = await runningInstances(dir);
      return r.length === 1 && r[0]?.provider === 'market' ? r : undefined;
    });
    await sleep(700);
    const notice = await simEvict(dir, spot?.node as string, '60s');
    const w1 = startWatch(dir, { env: { SPOTFLEET_TEST_CRASH_AT: String(n) } });
    const r1 = await Promise.race([w1.exited, sleep(45_000).then(() => undefined)]);
    expect(r1?.signal, `killed at boundary ${n}\n${w1.tail()}`).toBe('SIGKILL');
    const st = readState(dir) as unknown as { resources: Record<string, Rec & { move?: { step: string } }>; pending: { action: string }[] };
    const rec = st.resources['workload.train-a'];
    const step = rec?.phase === 'running' && !rec.move ? (st.pending.length ? `pending ${st.pending.map((p) => p.action).join('+')}` : 'running') : `move ${rec?.move?.step ?? '-'}${st.pending.length ? ` + pending ${st.pending.map((p) => p.action).join('+')}` : ''}`;
    stepsHit.add(step);
    console.info(`kill at ${n}: ${step}`);

    const w2 = startWatch(dir, { interval: '3s' });
    const [after] = await waitFor('one copy off the evicted node', async () => {
      const r = await runningInstances(dir);
      return r.length === 1 && r[0]?.node !== spot?.node ? r : undefined;
    }, 60_000);
    await w2.waitFor((l) => l.action === 'reconcile' && l.msg === 'reconciled' && l.changes === 0, { timeoutMs: 30_000, what: 'a quiet reconcile' });
    const running = await runningInstances(dir);
    expect(running.length, 'exactly one copy runs').toBe(1);
    expect(after?.provider, 'on the fallback (on-demand), as fallback.to says').toBe('lab');
    const m = await waitForLog(dir, after as Instance, /resumed from step (\d+)/);
    expect(m, 'resumed from a checkpoint').not.toBeNull();
    const final = readState(dir).resources['workload.train-a'] as Rec & { move?: unknown };
    expect(final.phase).toBe('running');
    expect(final.move, 'the move record is cleared').toBeUndefined();
    expect(Date.now(), 'inside the notice window').toBeLessThan(Date.parse(notice.deadline));
    expect(await activeLeases(dir), 'the spot lease is given back').toEqual([]);
    w2.signal('SIGTERM');
    expect((await w2.exited).code).toBe(0);
  };
  // Boundaries of this emergency migration to an existing on-demand node (the signal went out on
  // the fast path): 2 the move recorded with its checkpoint, 4 stopped (before its record), 8
  // transferred (before its record), 10 the transfer recorded, 12 started (before its record),
  // 16 the source lease being released.
  for (const n of [2, 4, 8, 10, 12, 16]) it(`killed at boundary ${n}`, () => killAt(n), 150_000);
  it('hit every step of the move across those boundaries', () => {
    const all = [...stepsHit].join(' | ');
    for (const want of [/move checkpointed/, /pending stop/, /pending transfer/, /move transferred/, /pending start/, /pending release/]) expect(all, all).toMatch(want);
  });
});

// Keep the import used when the fleet helpers change shape.
void fleetYaml;
