// The molt market end to end. First, the examples/molt flow through the built CLI (`node
// dist/src/cli/main.js`, as a user runs it) against the molt reference server, started in this
// process on a random port: a fleet with a molt pool (`runLocally: true`: leases are simulated hosts
// on this machine) and an on-demand `lab` fallback. `plan` shows the acquire on the molt pool with
// prices, the cost-benefit numbers and the fleet's $/h; `apply` bids (the server logs the bid, a
// lease exists) and the lease shows in `status`; a server-side preemption moves the workload to the
// fallback (with `apply`, or `watch --once`), where it resumes from its checkpoint; a lease past its
// preemption deadline dies with its processes; `destroy` releases the lease at molt and leaves no
// process behind. Then the provider with `runLocally` runs the shared conformance suite, runtime and
// storage included.
//
// The CLI runs as a child process without blocking this process (cliAsync), since the molt server
// it talks to lives here.
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMoltServer, type MoltServer } from '../../providers/molt/reference-server.js';
import { describeProviderConformance } from '../../src/providers/conformance.js';
import { createMoltProvider } from '../../providers/molt/index.js';
import { provider as localProvider } from '../../providers/local/index.js';
import { CLI, cliAsync, logsOf, ROOT, runningByWorkload, sleep, type CliResult } from '../e2e/helpers.js';
import { exits, makeCtx, removeTempDirs, stubborn, tempDir, trainer, writeLocalfsCheckpoint } from '../quickstart/harness.js';

const TOKEN = 'molt-e2e-secret-7c1d';
const TRAINER = join(ROOT, 'examples/quickstart/trainer.mjs');

let molt: MoltServer;
const dirs: string[] = [];
const savedToken = process.env.MOLT_TOKEN;

/** One CLI run, without blocking the molt server in this process; killed after `timeoutMs`. */
async function sf(args: string[], dir: string, timeoutMs = 90_000): Promise<CliResult> {
  const { child, done } = cliAsync(args, { cwd: dir, env: { MOLT_TOKEN: TOKEN } });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const t0 = Date.now();
  try {
    return await done;
  } finally {
    clearTimeout(timer);
    if (process.env.DEBUG_SF) process.stderr.write(`sf ${args[0]} ${Date.now() - t0}ms\n`);
  }
}

function fleetYaml(name: string, url: string): string {
  return `apiVersion: spotfleet.dev/v1
kind: Fleet
metadata: { name: ${name} }
providers:
  market:
    type: molt
    config: { url: ${JSON.stringify(url)}, tokenEnv: MOLT_TOKEN, retryBaseMs: 20, runLocally: true }
  lab:
    type: local
    config:
      nodes:
        - { name: od-1, gpuModel: A100, gpus: 8, capacity: on-demand, zone: lab, pricePerHour: 24.0 }
pools:
  - { name: spot-a100, provider: market, capacity: spot, gpuModel: A100, maxPricePerHour: 2.0 }
  - { name: od, provider: lab, capacity: on-demand, gpuModel: A100 }
defaults:
  checkpoint: { path: /checkpoints, signal: SIGUSR1, stopGrace: 10s, resumeEnv: RESUME_FROM_CHECKPOINT }
  thresholds: { minSavingsPerHour: 0.5, minRuntime: 30m, spotPriceAlertRatio: 0.8 }
workloads:
  - name: train-a
    command: ${JSON.stringify(['node', TRAINER])}
    gpus: 4
    gpuModel: A100
    class: training
    capacity: auto
    expectedDuration: 8h
    env: { STEP_MS: "50", CHECKPOINT_EVERY: "20" }
    fallback: { to: on-demand, revertToSpot: true, minDwell: 30m }
`;
}

function tempFleet(name: string): string {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'sf-molt-e2e-')));
  writeFileSync(join(dir, 'fleet.yaml'), fleetYaml(name, molt.url));
  dirs.push(dir);
  return dir;
}

/** Pids of live processes whose working folder, command line or environment points into `dir` (trainers, supervisors). */
function processesIn(dir: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (/\) Z /.test(stat)) continue; // a zombie is already dead
      const cwd = readlinkSync(`/proc/${name}/cwd`);
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8');
      // A trainer's CHECKPOINT_DIR names its node's folder, so the environment says whose it is.
      const env = readFileSync(`/proc/${name}/environ`, 'utf8');
      if (cwd === dir || cwd.startsWith(`${dir}/`) || cmd.includes(dir) || env.includes(`=${dir}`)) out.push(Number(name));
    } catch {
      // gone, or not ours to read
    }
  }
  return out.sort((a, b) => a - b);
}

async function waitFor(what: string, fn: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}

const serverLease = (id: string) => molt.control.leases().find((l) => l.id === id);
const ownLeases = (fleet: string) => molt.control.leases().filter((l) => l.labels['spotfleet.dev/fleet'] === fleet);

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`);
  molt = await startMoltServer({ token: TOKEN, seed: 11 });
  // A fixed market: spot $1.00/GPU-h in both zones, so the bid is $1.05 (spot + 5%); an offer in
  // each zone asking below the bid, so a bid always lands whatever the generator offers.
  molt.control.setSpotPrice('A100', 1.0);
  for (const zone of ['molt-east-1', 'molt-west-1']) {
    for (let i = 0; i < 4; i++) molt.control.addOffer({ id: `of-e2e-${zone}-${i}`, gpuModel: 'A100', minGpus: 1, maxGpus: 8, pricePerGpuHour: 0.98, zone });
  }
  // The test process reads the providers too (openProviders); they take the token from here.
  process.env.MOLT_TOKEN = TOKEN;
});

afterAll(async () => {
  for (const d of dirs) await sf(['destroy', '--auto-approve', d], d);
  if (savedToken === undefined) delete process.env.MOLT_TOKEN;
  else process.env.MOLT_TOKEN = savedToken;
  await molt.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

// Each CLI run starts a Node process and talks to the server: a few seconds each on a busy machine.
describe('molt market through the CLI (reference server, runLocally)', { timeout: 240_000 }, () => {
  it('plan shows the molt acquire with prices, cost-benefit and $/h; apply bids; status lists the lease; destroy releases it', async () => {
    const dir = tempFleet('molt-e2e-a');

    const plan = await sf(['plan', '--detailed-exitcode', dir], dir);
    expect(plan.stderr).toBe('');
    expect(plan.code).toBe(2);
    // The acquire on the molt pool, at the market's price ($1.00/GPU-h × 4 GPUs).
    expect(plan.stdout).toMatch(/\+ lease\.spot-a100\.train-a-s\d+-g1\n\s+to:\s+spot-a100\/molt-(east|west)-1, spot, \$4\.20?\/h/);
    expect(plan.stdout).toMatch(/\+ workload\.train-a\n\s+to:\s+spot-a100\/molt-(east|west)-1, spot, \$4\.20?\/h/);
    // Why: the cost-benefit numbers against the on-demand fallback ($3.00/GPU-h × 4 = $12/h).
    const why = /# cost-benefit: place on spot-a100\/molt-(?:east|west)-1 \(spot\): saves \$(\d+(?:\.\d+)?)\/h over od\/lab \(on-demand\) after expected preemptions \(≥ \$0\.50\/h\)/.exec(plan.stdout);
    expect(why, plan.stdout).not.toBeNull();
    const saves = Number(why?.[1]);
    expect(saves).toBeGreaterThan(0.5);
    expect(saves).toBeLessThan(8); // at most $12/h − $4/h, less the expected preemption cost
    expect(plan.stdout).toMatch(/cost: \$0(\.00)?\/h → \$4\.20?\/h, expected savings \$\d+(\.\d+)?/);
    expect(plan.stdout).toContain('Plan: 2 to add, 0 to change, 0 to destroy.');
    expect(plan.stdout).toMatch(/Cost: fleet \$0(\.00)?\/h now → \$4\.20?\/h after \(\+\$4\.20?\/h\)\./);
    // The same plan as data: the acquire action names the pool, the GPUs, the price and the cap.
    const planJson = await sf(['plan', '--json', dir], dir);
    expect(planJson.code).toBe(0);
    const acquire = (JSON.parse(planJson.stdout) as { actions: Record<string, unknown>[] }).actions.find((a) => a.kind === 'acquire');
    expect(acquire).toMatchObject({ provider: 'market', pool: 'spot-a100', capacity: 'spot', gpu_model: 'A100', gpus: 4, max_price_per_gpu_hour: 2, bid_per_gpu_hour: 1.05 });
    // The plan shows the bid (spot $1 + 5%, under the $2 pool cap and the on-demand price), not just the quote.
    expect(String(acquire?.summary)).toMatch(/acquire 4×A100 spot in spot-a100\/molt-(east|west)-1 at \$1\.05\/GPU-h \(bid; spot \$1\)/);
    expect(ownLeases('molt-e2e-a')).toHaveLength(0); // planning buys nothing

    const bidsBefore = molt.control.requests.filter((r) => r.method === 'POST' && r.path === '/v1/bids').length;
    const apply = await sf(['apply', '--auto-approve', dir], dir);
    expect(apply.stderr).toBe('');
    expect(apply.code).toBe(0);
    expect(apply.stdout).toContain('Apply complete! Resources: 2 added, 0 changed, 0 destroyed.');
    // The bid reached the server and became this fleet's lease, at spot + 5%.
    const bids = molt.control.requests.filter((r) => r.method === 'POST' && r.path === '/v1/bids').slice(bidsBefore);
    expect(bids.map((b) => b.status)).toEqual([201]);
    const leases = ownLeases('molt-e2e-a');
    expect(leases).toHaveLength(1);
    const lease = leases[0]!;
    expect(lease).toMatchObject({ status: 'active', gpuModel: 'A100', gpus: 4, pricePerGpuHour: 1.05, pricePerHour: 4.2, labels: { 'spotfleet.dev/pool': 'spot-a100' } });
    // The workload runs on the lease's simulated host.
    const running = (await runningByWorkload(dir)).get('train-a');
    expect(running).toEqual([expect.objectContaining({ provider: 'market', node: lease.id })]);

    const status = await sf(['status', dir], dir);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(new RegExp(`train-a\\s+running\\s+${lease.id}\\s+spot\\s+spot-a100/molt-(east|west)-1`));
    // The lease keeps the address the plan showed (from its key), with its id beside it.
    expect(status.stdout).toMatch(new RegExp(`lease\\.spot-a100\\.train-a-s\\d+-g1\\s+${lease.id}\\s+spot\\s+${lease.zone}\\s+\\$4\\.2(0)?/h`));
    const statusJson = await sf(['status', '--json', dir], dir);
    expect(statusJson.code).toBe(0);
    const sj = JSON.parse(statusJson.stdout) as { leases: { lease_id: string; provider: string; pool: string; node?: string }[]; workloads: { name: string; node?: string; live: string }[] };
    expect(sj.leases).toEqual([expect.objectContaining({ lease_id: lease.id, provider: 'market', pool: 'spot-a100', node: lease.id })]);
    expect(sj.workloads).toEqual([expect.objectContaining({ name: 'train-a', node: lease.id, live: 'running' })]);

    // Nothing left to do.
    const again = await sf(['plan', '--detailed-exitcode', dir], dir);
    expect(again.stdout).toContain('No changes.');
    expect(again.code).toBe(0);

    expect(processesIn(dir).length).toBeGreaterThan(0);
    const destroy = await sf(['destroy', '--auto-approve', dir], dir);
    expect(destroy.stderr).toBe('');
    expect(destroy.code).toBe(0);
    expect(destroy.stdout).toContain('Destroy complete! Resources: 0 added, 0 changed, 2 destroyed.');
    expect(serverLease(lease.id)).toMatchObject({ status: 'released', endReason: 'released' });
    expect(molt.control.requests.some((r) => r.method === 'DELETE' && r.path === `/v1/leases/${lease.id}` && r.status === 200)).toBe(true);
    await waitFor('no process of the fleet', () => processesIn(dir).length === 0, 5_000);
    const after = await sf(['status', '--json', dir], dir);
    expect((JSON.parse(after.stdout) as { leases: unknown[] }).leases).toEqual([]);
  });

  it('a server-side preemption is a notice; apply moves the workload to the on-demand fallback, where it resumes, and releases the lease', async () => {
    const dir = tempFleet('molt-e2e-b');
    const apply = await sf(['apply', '--auto-approve', dir], dir);
    expect(apply.code).toBe(0);
    const lease = ownLeases('molt-e2e-b')[0]!;
    expect(lease.status).toBe('active');
    const before = (await runningByWorkload(dir)).get('train-a')?.[0];
    expect(before).toMatchObject({ provider: 'market', node: lease.id });
    // Let it train a little (50 ms steps).
    await waitFor('training progress', async () => /step=\d+/.test(await logsOf(dir, 'market', lease.id, before!.id)) || (await logsOf(dir, 'market', lease.id, before!.id)).includes('starting'));
    await sleep(500);

    // The seller reclaims the GPUs: preempting for 60 s.
    const preempted = molt.control.preempt(lease.id, 60_000);
    const status = await sf(['status', dir], dir);
    expect(status.stdout).toContain(`evicting (preemption, deadline ${preempted.preemptAt})`);
    const plan = await sf(['plan', dir], dir);
    expect(plan.stdout).toMatch(/-\/\+ workload\.train-a/);
    expect(plan.stdout).toContain(`node ${lease.id} is being evicted: move to od/lab (on-demand) (fallback.to: on-demand)`);
    expect(plan.stdout).toMatch(/- lease\.spot-a100\./);

    const move = await sf(['apply', '--auto-approve', dir], dir);
    expect(move.stderr).toBe('');
    expect(move.code).toBe(0);
    expect(move.stdout).toMatch(/Transfer: transfer checkpoint/);
    const after = (await runningByWorkload(dir)).get('train-a');
    expect(after).toEqual([expect.objectContaining({ provider: 'lab', node: 'od-1' })]);
    // It saved on the molt host and resumed from that step on the lab node.
    const oldLog = await logsOf(dir, 'market', lease.id, before!.id);
    const saved = [...oldLog.matchAll(/checkpoint step=(\d+) reason=(SIGUSR1|SIGTERM)/g)].at(-1)?.[1];
    expect(saved, oldLog).toBeDefined();
    await waitFor('the resume line', async () => (await logsOf(dir, 'lab', 'od-1', after![0]!.id)).includes(`resumed from step ${saved}`));
    // The preempted lease is no longer used: released at molt.
    expect(serverLease(lease.id)).toMatchObject({ status: 'released' });
    expect(ownLeases('molt-e2e-b').filter((l) => l.status === 'active' || l.status === 'preempting')).toHaveLength(0);

    const destroy = await sf(['destroy', '--auto-approve', dir], dir);
    expect(destroy.code).toBe(0);
    await waitFor('no process of the fleet', () => processesIn(dir).length === 0, 5_000);
  });

  it('a lease past its preemption deadline dies with its processes; after the next notice, watch --once moves the workload to the fallback', async () => {
    const dir = tempFleet('molt-e2e-c');
    const apply = await sf(['apply', '--auto-approve', dir], dir);
    expect(apply.code).toBe(0);
    const first = ownLeases('molt-e2e-c')[0]!;
    expect((await runningByWorkload(dir)).get('train-a')?.[0]).toMatchObject({ provider: 'market', node: first.id });
    // The molt host runs the supervisor and the trainer (whose CHECKPOINT_DIR is in the host's folder).
    const hostDir = join(dir, '.spotfleet', 'providers', 'market');
    await waitFor('the supervisor and the trainer on the molt host', () => processesIn(hostDir).length >= 2);

    // A 1 s notice that nobody acts on: at the deadline the host is gone.
    const preempted = molt.control.preempt(first.id, 1_000);
    await waitFor('the preemption deadline', () => Date.now() > Date.parse(preempted.preemptAt ?? '') + 100);
    // The next look at the fleet finds the host dead: its processes are killed, the workload died.
    const status = await sf(['status', dir], dir);
    expect(status.stdout).toMatch(/train-a\s+died/);
    expect(processesIn(hostDir)).toEqual([]);
    expect((await runningByWorkload(dir)).get('train-a')).toBeUndefined();
    expect(serverLease(first.id)).toMatchObject({ status: 'expired', endReason: 'preempted' });
    // The dead host is still listed (terminated) for a while; its lease is gone from molt.
    const nodes = await sf(['nodes', dir], dir);
    expect(nodes.stdout).toMatch(new RegExp(`market\\s+${first.id}\\s+A100\\s+0/4\\s+spot.*terminated`));

    // The next apply places it again: spot is still the better deal, on a new lease.
    const again = await sf(['apply', '--auto-approve', dir], dir);
    expect(again.code, again.stdout + again.stderr).toBe(0);
    const second = ownLeases('molt-e2e-c').find((l) => l.status === 'active');
    expect(second).toBeDefined();
    const onSpot = (await runningByWorkload(dir)).get('train-a')?.[0];
    expect(onSpot).toMatchObject({ provider: 'market', node: second!.id });
    await waitFor('training progress', async () => /starting from step 0|resumed from step/.test(await logsOf(dir, 'market', second!.id, onSpot!.id)));
    await sleep(500);

    // This time the notice is seen in time: watch --once checkpoints, moves to on-demand, resumes.
    molt.control.preempt(second!.id, 60_000);
    const watch = await sf(['watch', '--once', dir], dir);
    expect(watch.code, watch.stderr).toBe(0);
    expect(watch.stdout + watch.stderr).toContain(`node ${second!.id} has a preemption notice (molt preempt)`);
    const moved = (await runningByWorkload(dir)).get('train-a');
    expect(moved).toEqual([expect.objectContaining({ provider: 'lab', node: 'od-1' })]);
    const oldLog = await logsOf(dir, 'market', second!.id, onSpot!.id);
    const saved = [...oldLog.matchAll(/checkpoint step=(\d+) reason=(SIGUSR1|SIGTERM)/g)].at(-1)?.[1];
    expect(saved, oldLog).toBeDefined();
    await waitFor('the resume line', async () => (await logsOf(dir, 'lab', 'od-1', moved![0]!.id)).includes(`resumed from step ${saved}`));
    expect(serverLease(second!.id)).toMatchObject({ status: 'released' });

    const destroy = await sf(['destroy', '--auto-approve', dir], dir);
    expect(destroy.code).toBe(0);
    await waitFor('no process of the fleet', () => processesIn(dir).length === 0, 5_000);
  });
});

afterAll(removeTempDirs);

describe('molt runLocally hosts', () => {
  it('a restarted reference server that hands out a known lease id again gets a fresh host, not the dead one', async () => {
    const token = 'molt-restart-token';
    const root = tempDir('sf-molt-restart-');
    const ctx = { ...makeCtx('market', root), env: { ...process.env, MOLT_TOKEN: token } };
    const offers = [{ id: 'of-r-a100', gpuModel: 'A100', minGpus: 1, maxGpus: 8, pricePerGpuHour: 0.5, zone: 'molt-east-1' }];
    const req = { pool: 'spot-a100', capacity: 'spot' as const, gpuModel: 'A100', gpus: 2, maxPricePerGpuHour: 3, durationHours: 1, labels: {} };
    const start = { fleet: 'test', workload: 'w', env: {}, gpus: 2, labels: {}, specHash: 'h', command: trainer().command };

    const first = await startMoltServer({ token, seed: 1, generate: false, offers });
    const p1 = createMoltProvider({ url: first.url, retryBaseMs: 5, runLocally: true }, ctx);
    const l1 = await p1.capacity!.acquire({ ...req, idempotencyKey: 'k1' });
    await p1.runtime!.start({ ...start, node: l1.node!, idempotencyKey: 's1' });
    first.control.preempt(l1.id, 0);
    // Past the deadline: the host is dead and its process killed.
    expect((await p1.nodes!.list()).find((n) => n.id === l1.id)?.state).toBe('terminated');
    expect((await p1.runtime!.list()).filter((i) => i.state === 'running')).toEqual([]);
    await first.close();

    const second = await startMoltServer({ token, seed: 1, generate: false, offers });
    try {
      const p2 = createMoltProvider({ url: second.url, retryBaseMs: 5, runLocally: true }, ctx);
      const l2 = await p2.capacity!.acquire({ ...req, idempotencyKey: 'k2' });
      expect(l2.id).toBe(l1.id); // ids start over on a new server
      expect((await p2.nodes!.list()).find((n) => n.id === l2.id)).toMatchObject({ state: 'ready', gpusFree: 2 });
      const inst = await p2.runtime!.start({ ...start, node: l2.node!, idempotencyKey: 's2' });
      expect(inst.state).toBe('running');
      expect(await p2.notices!.poll((await p2.nodes!.list()).find((n) => n.id === l2.id)!)).toEqual([]);
      await p2.capacity!.release(l2.id);
      expect((await p2.runtime!.list()).filter((i) => i.state === 'running')).toEqual([]);
      expect(second.control.leases().find((l) => l.id === l2.id)?.status).toBe('released');
    } finally {
      await second.close();
    }
  });
});

describeProviderConformance('molt (runLocally)', async () => {
  const token = 'molt-conformance-token';
  const server = await startMoltServer({ token, seed: 11, offers: [{ id: 'of-conf-a100', gpuModel: 'A100', minGpus: 1, maxGpus: 8, pricePerGpuHour: 0.5, zone: 'molt-east-1' }, { id: 'of-conf-h100', gpuModel: 'H100', minGpus: 1, maxGpus: 8, pricePerGpuHour: 1.0, zone: 'molt-east-1' }] });
  const root = tempDir('sf-molt-conf-');
  const ctx = { ...makeCtx('market', root), env: { ...process.env, MOLT_TOKEN: token } };
  const p = createMoltProvider({ url: server.url, retryBaseMs: 5, runLocally: true }, ctx);
  const lab = await localProvider.create({ nodes: [{ name: 'od-1', gpuModel: 'A100', gpus: 8, capacity: 'on-demand', pricePerHour: 24 }] }, makeCtx('lab', root));
  return {
    provider: p,
    fleet: 'test',
    // A leased simulated host: the suite starts trainers on it and keeps checkpoints there.
    node: async () => {
      const l = await p.capacity!.acquire({ pool: 'spot-h100', capacity: 'spot', gpuModel: 'H100', gpus: 4, durationHours: 1, idempotencyKey: 'conformance-node', labels: {} });
      return (await p.nodes!.list()).find((n) => n.id === l.node)!;
    },
    // Checkpoints move between a molt host and a lab node (both folders on this machine).
    otherNode: async () => (await lab.nodes!.list())[0]!,
    trainer: trainer(),
    stubborn,
    lateHandler: { command: ['sh', '-c', "sleep 0.5; trap 'echo got-usr1' USR1; echo ready; while :; do sleep 0.05; done"], env: {} },
    exits,
    writeCheckpoint: async (node, workload) => {
      writeLocalfsCheckpoint(node, workload);
    },
    acquire: { pool: 'spot-a100', capacity: 'spot', gpuModel: 'A100', gpus: 1, maxPricePerGpuHour: 3, durationHours: 1 },
    teardown: async () => {
      await lab.close?.();
      await server.close();
    },
  };
});
