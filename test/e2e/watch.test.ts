// `spotfleet watch` through the built CLI, as a user runs it, on quickstart-like temp fleets (the
// `lab` local provider with on-demand od-1/od-2, the `market` sim provider on the quickstart trace,
// real trainer processes with 50 ms steps):
//   (a) `sim evict` on the trainers' spot nodes: they checkpoint, move to on-demand and resume
//       within the notice window from the step they had reached; evicting the fallback node moves
//       them on again;
//   (f) then /metrics parses and counts the notices and migrations, /healthz is 200, and
//       `spotfleet status` shows the live controller;
//   (b) with a short minDwell, an evicted workload returns to spot once minDwell has passed;
//   (c) watch killed with SIGKILL in the middle of a migration (by the test on the first verified
//       checkpoint, and by the engine's crash hook at two side-effect boundaries), restarted: the
//       migration completes, one process per workload, no orphan lease (stale pending records of
//       the killed watch: watch-known-bugs.test.ts);
//   (d) an invalid spec edit is reported with file:line:col and ignored; a valid edit is applied;
//   (e) SIGTERM during a migration exits 0 with the state saved; the next apply converges.
// Every watch is killed by PID and every fleet destroyed in afterAll, even when a test fails.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { activeLeases, sleep, type TestWorkload } from './helpers.js';
import { instanceLog, readState, runCli, runningInstances, waitForLog, type CliRun, type Instance } from './crash-helpers.js';
import {
  destroyAll,
  fetchMetrics,
  histogram,
  httpGet,
  killAllWatches,
  metricSum,
  simEvict,
  startWatch,
  tempWatchFleet,
  trainerSteps,
  watchFleetYaml,
  type LogLine,
  type WatchProcess,
} from './watch-helpers.js';

const TWO: TestWorkload[] = [{ name: 'train-a' }, { name: 'train-b', gpus: 2 }];
const NAMES = TWO.map((w) => w.name);

const dirs: string[] = [];
afterAll(async () => {
  await killAllWatches();
  const failures = await destroyAll(dirs);
  expect(failures, failures.join('\n')).toEqual([]);
}, 120_000);

function newDir(workloads: TestWorkload[], o: Parameters<typeof tempWatchFleet>[1] = {}): string {
  const d = tempWatchFleet(workloads, o);
  dirs.push(d);
  return d;
}

const show = (r: CliRun): string => `exit ${r.code}${r.signal ? ` (${r.signal})` : ''}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
const isStart = (addr: string) => (l: LogLine): boolean => l.action === 'start' && l.msg === 'start ok' && l.address === addr;
const isMigrated = (l: LogLine): boolean => l.msg === 'migration complete';

function byWorkload(list: Instance[]): Map<string, Instance[]> {
  const m = new Map<string, Instance[]>();
  for (const i of list) m.set(i.workload, [...(m.get(i.workload) ?? []), i]);
  return m;
}

/** Waits until each named workload has exactly one running instance that `where` accepts (a provider name, or a test); returns them. */
async function waitRunning(dir: string, names: string[], where: string | ((i: Instance) => boolean), timeoutMs = 30_000): Promise<Map<string, Instance>> {
  const until = Date.now() + timeoutMs;
  const ok = typeof where === 'string' ? (i: Instance | undefined): boolean => i?.provider === where : (i: Instance | undefined): boolean => i !== undefined && where(i);
  const provider = typeof where === 'string' ? where : 'the expected nodes';
  let last: Instance[] = [];
  for (;;) {
    last = await runningInstances(dir);
    const per = byWorkload(last);
    if (names.every((n) => per.get(n)?.length === 1 && ok(per.get(n)?.[0]))) {
      return new Map(names.map((n) => [n, per.get(n)?.[0] as Instance]));
    }
    if (Date.now() > until) throw new Error(`not every one of ${names.join(', ')} runs once on ${provider}: ${JSON.stringify(last)}`);
    await sleep(200);
  }
}

/** Exactly one running process per workload and no orphan lease (state's leases = live leases, each hosting a workload). */
async function assertConverged(dir: string, names: string[], tag: string): Promise<Instance[]> {
  const running = await runningInstances(dir);
  const per = byWorkload(running);
  for (const n of names) expect(per.get(n)?.length, `${tag}: running instances of ${n}: ${JSON.stringify(running)}`).toBe(1);
  expect(running.length, `${tag}: only the fleet's workloads run: ${JSON.stringify(running)}`).toBe(names.length);
  const leases = await activeLeases(dir);
  const hosts = new Set(running.filter((i) => i.provider === 'market').map((i) => i.node));
  for (const l of leases) expect(hosts.has(l.node ?? ''), `${tag}: lease ${l.id} hosts no running workload`).toBe(true);
  const st = readState(dir);
  const recorded = Object.values(st.resources).filter((r) => r.type === 'lease').map((r) => r.leaseId).sort();
  expect(recorded, `${tag}: leases in state = live leases`).toEqual(leases.map((l) => l.id).sort());
  return running;
}

/**
 * The old instance's log must show the checkpoint signal, and the new one must resume from the
 * newest checkpoint the old one wrote (SIGUSR1, or the SIGTERM one at stop), which is the step it
 * had reached when it exited: no work lost beyond the checkpoint. Returns that step.
 */
async function assertResumed(dir: string, before: Instance, after: Instance, tag: string): Promise<number> {
  const oldLog = await instanceLog(dir, before);
  const old = trainerSteps(oldLog);
  expect(old.checkpoints.some((c) => c.reason === 'SIGUSR1'), `${tag}: ${before.workload} got the checkpoint signal\n${oldLog}`).toBe(true);
  const signalled = old.checkpoints.filter((c) => c.reason === 'SIGUSR1' || c.reason === 'SIGTERM');
  const saved = signalled.at(-1)?.step ?? -1;
  expect(saved, `${tag}: ${before.workload} checkpointed on the signal`).toBeGreaterThanOrEqual(0);
  if (old.exitedAt !== undefined) expect(old.exitedAt, `${tag}: ${before.workload} saved the step it exited at`).toBe(saved);
  const m = await waitForLog(dir, after, /resumed from step (\d+)/);
  expect(m, `${tag}: ${after.workload} resumed\n${await instanceLog(dir, after)}`).not.toBeNull();
  expect(Number(m?.[1]), `${tag}: ${after.workload} resumed from the step it had reached at the signal`).toBe(saved);
  return saved;
}

describe('spotfleet watch (e2e)', () => {
  // (a) and (f) share one fleet and one watch.
  let aDir = '';
  let aWatch: WatchProcess | undefined;

  it('(a) moves evicted trainers to on-demand within the notice window, resuming from the signal step; evicting the fallback moves them on', async () => {
    aDir = newDir(TWO);
    const w = startWatch(aDir);
    aWatch = w;
    await w.waitFor(isStart('workload.train-a'), { what: 'train-a started' });
    await w.waitFor(isStart('workload.train-b'), { what: 'train-b started' });
    const onSpot = await waitRunning(aDir, NAMES, 'market');
    await sleep(500); // some steps done

    // Both spot nodes evicted at once.
    let from = w.lines.length;
    const notices = await Promise.all(NAMES.map((n) => simEvict(aDir, onSpot.get(n)?.node as string, '30s')));
    const moved = await w.waitFor(isMigrated, { from, count: 2, timeoutMs: 40_000, what: 'two migrations' });
    for (const n of NAMES) {
      const line = moved.find((l) => l.address === `workload.${n}`);
      const notice = notices.find((x) => x.node === onSpot.get(n)?.node);
      expect(line, `${n} migrated\n${w.tail()}`).toBeDefined();
      expect(line?.from).toBe(onSpot.get(n)?.node);
      // Within the notice window: resumed before the node's deadline.
      expect(Date.parse(line?.time ?? ''), `${n} moved before the deadline ${notice?.deadline}`).toBeLessThan(Date.parse(notice?.deadline ?? ''));
      console.info(`(a) ${n}: notice ${notice?.receivedAt} → migrated ${line?.time} (downtime ${String(line?.downtimeMs)} ms, timings ${JSON.stringify(line?.timings)})`);
    }
    // The fast path signalled the checkpoint on the notice.
    expect(w.find((l) => l.action === 'notice' && l.msg === 'eviction notice', from).length, w.tail()).toBeGreaterThanOrEqual(1);
    const onLab = await waitRunning(aDir, NAMES, 'lab');
    for (const n of NAMES) await assertResumed(aDir, onSpot.get(n) as Instance, onLab.get(n) as Instance, `(a) spot→on-demand ${n}`);
    await assertConverged(aDir, NAMES, '(a) after the first eviction');
    expect(await activeLeases(aDir), 'spot leases released').toEqual([]);

    // Evict the fallback node: they move on again (to the other on-demand node).
    const fallback = onLab.get('train-a')?.node as string;
    const together = NAMES.filter((n) => onLab.get(n)?.node === fallback);
    await sleep(300);
    from = w.lines.length;
    const n2 = await simEvict(aDir, `lab/${fallback}`, '30s');
    const moved2 = await w.waitFor(isMigrated, { from, count: together.length, timeoutMs: 40_000, what: 'migrations off the fallback node' });
    for (const l of moved2) {
      expect(l.from).toBe(fallback);
      expect(l.to).not.toBe(fallback);
      expect(Date.parse(l.time)).toBeLessThan(Date.parse(n2.deadline));
    }
    const again = await waitRunning(aDir, NAMES, 'lab');
    for (const n of together) {
      expect(again.get(n)?.node).not.toBe(fallback);
      await assertResumed(aDir, onLab.get(n) as Instance, again.get(n) as Instance, `(a) fallback→on-demand ${n}`);
    }
    await assertConverged(aDir, NAMES, '(a) after evicting the fallback');

    // `spotfleet status` records the moves with their reasons and timings.
    const st = await runCli(['status', '--json', aDir], { cwd: aDir });
    expect(st.code, show(st)).toBe(0);
    const status = JSON.parse(st.stdout) as { workloads: { name: string; node: string; capacity: string; moves: { from?: string; to: string; reason: string; timings?: Record<string, number>; downtime_ms?: number }[] }[] };
    for (const n of together) {
      const rec = status.workloads.find((x) => x.name === n);
      expect(rec?.capacity).toBe('on-demand');
      expect(rec?.moves.length, JSON.stringify(rec)).toBeGreaterThanOrEqual(2);
      const m = rec?.moves.at(-1);
      expect(m?.from).toBe(fallback);
      expect(m?.reason).toMatch(/\S/);
      expect(Object.keys(m?.timings ?? {})).toEqual(expect.arrayContaining(['checkpoint', 'stop', 'start']));
    }
  }, 120_000);

  it('(f) /metrics parses and counts notices and migrations; /healthz is 200; status shows the live controller', async () => {
    const w = aWatch;
    expect(w?.alive, 'the watch of (a) runs').toBe(true);
    if (!w) return;
    const info = await w.info();
    const health = await httpGet(info.listen, '/healthz');
    expect(health.status, health.body).toBe(200);
    const { text, families: fams } = await fetchMetrics(info.listen);
    const names = fams.map((f) => f.name);
    expect(names).toEqual(expect.arrayContaining(['spotfleet_notices_received_total', 'spotfleet_migrations_total', 'spotfleet_notice_to_signal_seconds', 'spotfleet_reconcile_duration_seconds', 'spotfleet_queue_depth']));
    // Two spot nodes (sim) and one on-demand node (local) were evicted.
    expect(metricSum(fams, 'spotfleet_notices_received_total', { cloud: 'sim', kind: 'preemption' }), 'sim notices counted').toBeGreaterThanOrEqual(1);
    expect(metricSum(fams, 'spotfleet_notices_received_total'), 'notices counted').toBeGreaterThanOrEqual(2);
    expect(metricSum(fams, 'spotfleet_migrations_total', { outcome: 'succeeded' }), 'migrations counted').toBeGreaterThanOrEqual(3);
    expect(fams.find((f) => f.name === 'spotfleet_notice_to_signal_seconds')?.type).toBe('HISTOGRAM');
    // Every series carries the fleet's name; every provider watch polls has its error series at 0 or more.
    const fleetName = /metadata:\s*\{\s*name:\s*([\w-]+)/.exec(readFileSync(join(aDir, 'fleet.yaml'), 'utf8'))?.[1];
    expect(fleetName).toBeTruthy();
    expect(text).toMatch(new RegExp(`^spotfleet_build_info\\{[^}]*fleet="${fleetName}"`, 'm'));
    expect(text).toMatch(/^spotfleet_provider_poll_errors_total\{[^}]*provider="market"/m);
    const n2s = histogram(text, 'spotfleet_notice_to_signal_seconds');
    expect(n2s.count, 'notice-to-signal observed').toBeGreaterThanOrEqual(1);
    expect(n2s.buckets.at(-1)?.count, '+Inf bucket = count').toBe(n2s.count);
    expect(histogram(text, 'spotfleet_migration_downtime_seconds', { outcome: 'succeeded' }).count, 'downtime observed').toBeGreaterThanOrEqual(3);
    console.info(`(f) notice-to-signal: ${n2s.count} signals, mean ${(n2s.sum / n2s.count).toFixed(3)} s`);

    const st = await runCli(['status', aDir], { cwd: aDir });
    expect(st.code, show(st)).toBe(0);
    expect(st.stdout).toContain(`Controller: spotfleet watch running (pid ${w.pid}`);
    expect(st.stdout).toMatch(/migration/);
    const js = await runCli(['status', '--json', aDir], { cwd: aDir });
    const view = (JSON.parse(js.stdout) as { controller: { info: { pid: number }; status?: { pid: number; health: string; recent_events: { kind: string; address?: string }[] } } | null }).controller;
    expect(view?.info.pid).toBe(w.pid);
    expect(view?.status?.pid).toBe(w.pid);
    expect(view?.status?.health).toBe('ok');
    const events = view?.status?.recent_events ?? [];
    for (const n of NAMES) expect(events.filter((e) => e.kind === 'migration' && e.address === `workload.${n}`).length, `live view shows ${n}'s migrations`).toBeGreaterThanOrEqual(2);
    expect(events.some((e) => e.kind === 'notice')).toBe(true);
  }, 60_000);

  it('(b) returns to spot after minDwell once spot is available again', async () => {
    const dir = newDir([{ name: 'train-a' }], { minDwell: '5s' });
    const w = startWatch(dir, { interval: '2s' });
    await w.waitFor(isStart('workload.train-a'), { what: 'train-a started' });
    const onSpot = await waitRunning(dir, ['train-a'], 'market');
    const from = w.lines.length;
    await simEvict(dir, onSpot.get('train-a')?.node as string, '30s');
    const [toOd] = await w.waitFor(isMigrated, { from, timeoutMs: 40_000, what: 'the move to on-demand' });
    const onLab = await waitRunning(dir, ['train-a'], 'lab');
    const [back] = await w.waitFor((l) => isMigrated(l) && typeof l.to === 'string' && l.to.startsWith('sim-'), { from, timeoutMs: 40_000, what: 'the move back to spot' });
    const dwell = Date.parse(back?.time ?? '') - Date.parse(toOd?.time ?? '');
    console.info(`(b) on on-demand for ${dwell} ms (minDwell 5s) before returning to spot: ${String(back?.reason)}`);
    expect(dwell, 'stayed at least minDwell on on-demand').toBeGreaterThanOrEqual(5000);
    expect(String(back?.reason)).toMatch(/spot/);
    const spotAgain = await waitRunning(dir, ['train-a'], 'market');
    expect(spotAgain.get('train-a')?.node).not.toBe(onSpot.get('train-a')?.node);
    const oldLog = trainerSteps(await instanceLog(dir, onLab.get('train-a') as Instance));
    const m = await waitForLog(dir, spotAgain.get('train-a') as Instance, /resumed from step (\d+)/);
    expect(Number(m?.[1])).toBe(oldLog.checkpoints.at(-1)?.step);
    await assertConverged(dir, ['train-a'], '(b)');
    const st = JSON.parse((await runCli(['status', '--json', dir], { cwd: dir })).stdout) as { workloads: { capacity: string; moves: { to: string; reason: string }[] }[] };
    expect(st.workloads[0]?.capacity).toBe('spot');
    expect(st.workloads[0]?.moves.map((x) => x.to.startsWith('sim-') ? 'spot' : 'on-demand')).toEqual(['on-demand', 'spot']);
  }, 120_000);

  /**
   * (c) Both trainers' spot nodes get a notice while no watch runs; the watch that starts then
   * migrates them and is killed with SIGKILL part-way: by the test on the first verified checkpoint
   * (`'checkpoint'`), or by the engine's crash hook at side-effect boundary N (SPOTFLEET_TEST_CRASH_AT,
   * see src/engine/apply.ts). A restarted watch must complete the migration: one process per
   * workload off the evicted nodes, no orphan lease, no pending record, resumed from the newest
   * checkpoint, inside the notice window.
   */
  const killMidMigration = async (kill: 'checkpoint' | number): Promise<void> => {
    const dir = newDir(TWO);
    const setup = await runCli(['apply', '--auto-approve', dir], { cwd: dir });
    expect(setup.code, show(setup)).toBe(0);
    const onSpot = await waitRunning(dir, NAMES, 'market');
    await sleep(500);
    const notices = await Promise.all(NAMES.map((n) => simEvict(dir, onSpot.get(n)?.node as string, '60s')));

    const w1 = startWatch(dir, typeof kill === 'number' ? { env: { SPOTFLEET_TEST_CRASH_AT: String(kill) } } : {});
    if (kill === 'checkpoint') {
      await w1.waitFor((l) => l.action === 'checkpoint' && l.msg === 'checkpoint ok', { timeoutMs: 40_000, what: 'a verified checkpoint' });
      w1.signal('SIGKILL');
    }
    const r1 = await Promise.race([w1.exited, sleep(60_000).then(() => undefined)]);
    expect(r1?.signal, r1 ? show(r1) : `watch still running\n${w1.tail()}`).toBe('SIGKILL');
    const completed = w1.find(isMigrated).length;
    expect(completed, `killed mid-migration (migrations completed before the kill: ${completed})\n${w1.tail()}`).toBeLessThan(NAMES.length);
    expect(w1.find((l) => l.action === 'checkpoint').length + readState(dir).pending.length, `the migration had begun\n${w1.tail()}`).toBeGreaterThan(0);
    const pending = readState(dir).pending;
    console.info(`(c ${kill}) killed with ${completed} of ${NAMES.length} migrations complete; steps done: ${w1.find((l) => / ok$/.test(l.msg)).map((l) => `${l.address} ${l.action}`).join(', ') || 'none'}; pending records: ${pending.map((p) => `${p.address} ${p.action}`).join(', ') || 'none'}`);

    const w2 = startWatch(dir);
    await w2.waitFor((l) => l.action === 'reconcile' && l.msg === 'reconciled', { timeoutMs: 60_000, what: 'a reconcile after the restart' });
    // Off the evicted nodes. Usually on on-demand (the fallback); a workload that the crash left
    // stopped is placed afresh by cost, which may be a new spot lease (see the console line).
    const evicted = new Set(notices.map((x) => x.node));
    const onLab = await waitRunning(dir, NAMES, (i) => !evicted.has(i.node));
    console.info(`(c ${kill}) after the restart: ${NAMES.map((n) => `${n} on ${onLab.get(n)?.provider}/${onLab.get(n)?.node}`).join(', ')}`);
    // Level-triggered: another reconcile finds nothing left to do.
    const from = w2.lines.length;
    w2.signal('SIGHUP');
    await w2.waitFor((l) => l.action === 'reconcile' && l.msg === 'reconciled' && l.changes === 0, { from, timeoutMs: 30_000, what: 'a reconcile with no changes' });
    await assertConverged(dir, NAMES, `(c ${kill})`);
    // The restarted watch leaves no pending record of its own. Records of the killed one whose
    // action did not run again stay behind: see watch-known-bugs.test.ts.
    expect(readState(dir).pending.filter((p) => p.pid !== w1.pid), 'no pending record from the restarted watch').toEqual([]);
    for (const n of NAMES) {
      const s = trainerSteps(await instanceLog(dir, onSpot.get(n) as Instance));
      const m = await waitForLog(dir, onLab.get(n) as Instance, /resumed from step (\d+)/);
      expect(m, `${n} resumed`).not.toBeNull();
      expect(Number(m?.[1]), `${n} resumed from its newest checkpoint`).toBe(s.checkpoints.at(-1)?.step);
    }
    for (const nt of notices) expect(Date.now(), 'done inside the notice window').toBeLessThan(Date.parse(nt.deadline));
    w2.signal('SIGTERM');
    expect((await w2.exited).code).toBe(0);
  };

  it('(c) watch killed with SIGKILL right after a verified checkpoint completes the migration on restart, without a duplicate', () => killMidMigration('checkpoint'), 150_000);
  // Boundaries 10 and 21 of this two-workload migration: both stops in flight; start and release in flight.
  it('(c) watch killed with SIGKILL at side-effect boundary 10 completes the migration on restart', () => killMidMigration(10), 150_000);
  it('(c) watch killed with SIGKILL at side-effect boundary 21 completes the migration on restart', () => killMidMigration(21), 150_000);

  it('(d) an invalid spec edit is reported with file:line:col and ignored; a valid edit is applied', async () => {
    const dir = newDir([{ name: 'train-a' }]);
    const file = join(dir, 'fleet.yaml');
    const w = startWatch(dir);
    await w.waitFor(isStart('workload.train-a'), { what: 'train-a started' });
    const before = await waitRunning(dir, ['train-a'], 'market');

    // gpus: "lots" is not a number. The last good spec is kept aside to look at what runs meanwhile.
    const good = readFileSync(file, 'utf8');
    const goodDir = mkdtempSync(join(tmpdir(), 'sf-watch-good-'));
    const goodCopy = join(goodDir, 'fleet.yaml');
    writeFileSync(goodCopy, good);
    const bad = good.replace(/gpus: 1\n/, 'gpus: lots\n');
    expect(bad).not.toBe(good);
    const badLine = bad.split('\n').findIndex((l) => l.includes('gpus: lots')) + 1;
    let from = w.lines.length;
    try {
      writeFileSync(file, bad);
      const [err] = await w.waitFor((l) => l.action === 'validate' && l.level === 'error', { from, timeoutMs: 15_000, what: 'the spec error' });
      console.info(`(d) invalid edit reported: ${err?.msg}`);
      expect(err?.msg).toMatch(new RegExp(`fleet\\.yaml:${badLine}:\\d+: `));
      expect(err?.line).toBe(badLine);
      await w.waitFor((l) => /last good spec keeps running/.test(l.msg), { from, timeoutMs: 5000, what: 'the keep-running warning' });
      await sleep(1500);
      expect(w.alive, w.tail()).toBe(true);
      expect(w.find((l) => ['stop', 'checkpoint', 'release'].includes(l.action ?? ''), from), 'nothing stopped').toEqual([]);
      const still = await runningInstances(dir, goodCopy);
      expect(still.map((i) => i.id), 'the same instance runs on').toEqual([before.get('train-a')?.id]);
    } catch (e) {
      writeFileSync(file, good); // so that afterAll can destroy the fleet
      throw e;
    } finally {
      rmSync(goodDir, { recursive: true, force: true });
    }

    // A valid edit: a new workload, applied promptly.
    from = w.lines.length;
    const t0 = Date.now();
    writeFileSync(file, watchFleetYaml([{ name: 'train-a' }, { name: 'train-c' }]));
    const [started] = await w.waitFor(isStart('workload.train-c'), { from, timeoutMs: 15_000, what: 'train-c started' });
    const ms = Date.parse(started?.time ?? '') - t0;
    console.info(`(d) valid edit → new workload started in ${ms} ms`);
    expect(ms).toBeLessThan(15_000);
    const after = await waitRunning(dir, ['train-a', 'train-c'], 'market');
    expect(after.get('train-a')?.id, 'train-a untouched by the edit').toBe(before.get('train-a')?.id);
    await assertConverged(dir, ['train-a', 'train-c'], '(d)');
  }, 90_000);

  it('(e) SIGTERM during a migration exits 0 with the state saved; the next apply converges', async () => {
    const dir = newDir(TWO);
    const w = startWatch(dir);
    for (const n of NAMES) await w.waitFor(isStart(`workload.${n}`), { what: `${n} started` });
    const onSpot = await waitRunning(dir, NAMES, 'market');
    await sleep(300);
    const from = w.lines.length;
    const notices = await Promise.all(NAMES.map((n) => simEvict(dir, onSpot.get(n)?.node as string, '60s')));
    // The migration has begun: the checkpoint signal went out (fast path) or the checkpoint step started.
    await w.waitFor((l) => (l.action === 'signal' && l.msg === 'checkpoint signal sent') || (l.action === 'replace' && typeof l.address === 'string' && l.address.startsWith('workload.')), { from, timeoutMs: 30_000, what: 'the migration starting' });
    w.signal('SIGTERM');
    const r = await w.exited;
    expect(r.code, show(r)).toBe(0);
    expect(w.find((l) => l.action === 'stop' && l.msg === 'stopped').length, w.tail()).toBe(1);
    console.info(`(e) stopped with ${w.find(isMigrated, from).length} of ${NAMES.length} migrations complete`);

    const st = readState(dir); // parses
    expect(st.pending, 'steps in flight finished: no pending record').toEqual([]);
    expect(() => JSON.parse(readFileSync(join(dir, '.spotfleet', 'watch.json'), 'utf8'))).toThrow();

    const apply = await runCli(['apply', '--auto-approve', dir], { cwd: dir });
    expect(apply.code, show(apply)).toBe(0);
    // Off the evicted nodes: on on-demand when the migration finished; a workload that the shutdown
    // left stopped is placed afresh by cost (a new spot lease while spot is cheap).
    const evicted = new Set(notices.map((x) => x.node));
    const placed = await waitRunning(dir, NAMES, (i) => !evicted.has(i.node));
    console.info(`(e) after apply: ${NAMES.map((n) => `${n} on ${placed.get(n)?.provider}/${placed.get(n)?.node}`).join(', ')}`);
    await assertConverged(dir, NAMES, '(e)');
    const plan = await runCli(['plan', '--detailed-exitcode', dir], { cwd: dir });
    expect(plan.code, show(plan)).toBe(0);
  }, 120_000);
});
