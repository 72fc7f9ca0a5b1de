// The `local` provider's behaviour with real processes and real folders: checkpoint → transfer →
// resume at the right step, a second process finding and controlling an instance the first one
// started, eviction notices that kill the node at the deadline, GPU admission, PID-reuse guard.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { provider as local, type LocalConfig } from '../../providers/local/index.js';
import type { Provider, StartRequest } from '../../src/providers/sdk.js';
import { isAlive, procStat, readJson } from '../../src/providers/kit/fs-util.js';
import { REPO, makeCtx, pidAlive, removeTempDirs, stopAll, tempDir, track, trainer, waitFor } from '../quickstart/harness.js';

afterAll(async () => {
  await stopAll();
  removeTempDirs();
});

const config: LocalConfig = {
  nodes: [
    { name: 'od-1', gpuModel: 'V100', gpus: 4, capacity: 'on-demand', zone: 'lab', pricePerHour: 12.24 },
    { name: 'od-2', gpuModel: 'V100', gpus: 4, capacity: 'on-demand', zone: 'lab', pricePerHour: 12.24 },
  ],
};

async function lab(root: string): Promise<Provider> {
  return track(await local.create(structuredClone(config), makeCtx('lab', root)));
}

function req(node: string, workload: string, key: string, extra: Partial<StartRequest> = {}): StartRequest {
  const t = trainer();
  return { fleet: 'test', workload, node, command: t.command, env: t.env, gpus: 1, labels: { app: workload }, specHash: 'h1', idempotencyKey: key, ...extra };
}

const node = async (p: Provider, id: string) => (await p.nodes!.list()).find((n) => n.id === id)!;
const logs = (p: Provider, n: string, id: string) => p.runtime!.logs!(n, id);

describe('local provider', () => {
  it('checkpoints on SIGUSR1, stops, moves the checkpoint and resumes at the saved step', async () => {
    const p = await lab(tempDir());
    const a = await p.runtime!.start(req('od-1', 'train-a', 'k1'));
    await waitFor('trainer start', async () => (await logs(p, 'od-1', a.id)).includes('starting from step 0'));
    await new Promise((r) => setTimeout(r, 300));
    const since = new Date().toISOString();
    await p.runtime!.signal('od-1', a.id, 'SIGUSR1');
    const n1 = await node(p, 'od-1');
    const ck = await waitFor('checkpoint', () => p.storage!.verify({ node: n1, workload: 'train-a', since }).then((c) => c ?? undefined));
    expect(await logs(p, 'od-1', a.id)).toMatch(/checkpoint step=\d+ reason=SIGUSR1/);
    expect((await p.runtime!.stop('od-1', a.id, 10_000)).exitCode).toBe(0);
    // The SIGTERM checkpoint is the newest: resume from that one.
    const final = (await p.storage!.verify({ node: n1, workload: 'train-a', since: ck.mtime }))!;
    expect(Date.parse(final.mtime)).toBeGreaterThanOrEqual(Date.parse(ck.mtime));
    expect(final).not.toBeNull();
    const savedStep = (JSON.parse(readFileSync(final.path, 'utf8')) as { step: number }).step;
    expect(await logs(p, 'od-1', a.id)).toContain(`checkpoint step=${savedStep} reason=SIGTERM`);

    const n2 = await node(p, 'od-2');
    const moved = await p.storage!.transfer({ workload: 'train-a', from: n1, to: n2, checkpoint: final });
    expect(moved.skipped).toBe(false);
    expect(existsSync(final.path)).toBe(true);
    const b = await p.runtime!.start(req('od-2', 'train-a', 'k2', { resumeFrom: { env: 'RESUME_FROM_CHECKPOINT', path: moved.checkpoint.path } }));
    await waitFor('resume line', async () => (await logs(p, 'od-2', b.id)).includes(`resumed from step ${savedStep}`));
    expect(await logs(p, 'od-2', b.id)).not.toContain('starting from step 0');
    await p.runtime!.stop('od-2', b.id, 10_000);
  });

  it('a second process finds, signals and stops an instance the first process started', async () => {
    const root = tempDir();
    const dist = join(REPO, 'dist/providers/local/index.js');
    expect(existsSync(dist), 'run `npm run build` first: this test starts the workload from the built provider in another process').toBe(true);
    // Process 1: starts a trainer and exits. The workload must outlive it.
    const script = `
      const { provider } = await import(${JSON.stringify(dist)});
      const p = await provider.create(${JSON.stringify(config)}, { name: 'lab', fleet: 'test', specDir: ${JSON.stringify(root)}, dataDir: ${JSON.stringify(join(root, '.spotfleet/providers/lab'))}, log: { debug() {}, info() {}, warn() {}, error() {} }, now: Date.now, env: process.env });
      const i = await p.runtime.start(${JSON.stringify(req('od-1', 'train-x', 'cross'))});
      console.log(JSON.stringify(i));`;
    const first = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })) as { id: string; state: string };
    expect(first.state).toBe('running');
    // Process 2 (this one): sees it, with its labels; starting with the same key gives the same one.
    const p = await lab(root);
    const seen = await waitFor('instance listed', async () => (await p.runtime!.list()).find((i) => i.id === first.id));
    expect(seen).toMatchObject({ state: 'running', workload: 'train-x', labels: { app: 'train-x' }, specHash: 'h1' });
    expect((await p.runtime!.start(req('od-1', 'train-x', 'cross'))).id).toBe(first.id);
    await waitFor('trainer ready', async () => (await logs(p, 'od-1', first.id)).includes('from step'));
    const pids = readJson<{ supervisor: { pid: number }; child: { pid: number } }>(join(root, '.spotfleet/providers/lab/nodes/od-1/workloads', first.id, 'pids.json'))!;
    expect(pidAlive(pids.child.pid)).toBe(true);
    expect((await node(p, 'od-1')).gpusFree).toBe(3);
    expect((await p.runtime!.stop('od-1', first.id, 10_000)).exitCode).toBe(0);
    expect(pidAlive(pids.child.pid)).toBe(false);
    expect(pidAlive(pids.supervisor.pid)).toBe(false);
    expect((await p.runtime!.list()).find((i) => i.id === first.id)).toMatchObject({ state: 'exited', exitCode: 0 });
  });

  it('an eviction notice is polled until its deadline; then the node is dead until restored', async () => {
    const p = await lab(tempDir());
    const a = await p.runtime!.start(req('od-1', 'train-e', 'e1'));
    await waitFor('trainer start', async () => (await logs(p, 'od-1', a.id)).includes('from step'));
    const n1 = await node(p, 'od-1');
    expect(await p.notices!.poll(n1)).toEqual([]);
    const notice = await p.simulation!.evict(n1, { inMs: 1500 });
    expect(notice).toMatchObject({ node: 'od-1', provider: 'lab', source: 'local', kind: 'preemption' });
    expect((await p.notices!.poll(n1)).map((x) => x.id)).toEqual([notice.id]);
    expect((await node(p, 'od-1')).state).toBe('draining');
    await waitFor('node terminated', async () => ((await node(p, 'od-1')).state === 'terminated' ? true : undefined));
    expect(await p.notices!.poll(n1)).toEqual([]);
    const dead = (await p.runtime!.list()).find((i) => i.id === a.id)!;
    expect(dead.state).toBe('exited');
    expect(dead.exitCode).toBe(137);
    await expect(p.runtime!.start(req('od-1', 'train-f', 'e2'))).rejects.toThrow(/terminated/);
    await p.simulation!.restore!(n1);
    expect((await node(p, 'od-1')).state).toBe('ready');
    const b = await p.runtime!.start(req('od-1', 'train-f', 'e3'));
    await p.runtime!.stop('od-1', b.id, 5000);
  });

  it('refuses a workload that does not fit the free GPUs, and an unknown node', async () => {
    const p = await lab(tempDir());
    await expect(p.runtime!.start(req('od-1', 'big', 'g1', { gpus: 5 }))).rejects.toThrow(/GPUs free/);
    await expect(p.runtime!.start(req('nope', 'w', 'g2'))).rejects.toThrow(/no node "nope"/);
    // A refused start leaves no claim behind: the same key works once it fits.
    const ok = await p.runtime!.start(req('od-1', 'big', 'g1', { gpus: 4 }));
    expect(ok.gpus).toBe(4);
    await expect(p.runtime!.start(req('od-1', 'more', 'g3'))).rejects.toThrow(/0 of 4 GPUs free/);
    await p.runtime!.stop('od-1', ok.id, 5000);
  });

  it('a start claim cut short by a killed spotfleet (empty) is taken over once stale; concurrent starts with one key make one instance', async () => {
    const root = tempDir();
    const p = await lab(root);
    const instances = join(root, '.spotfleet', 'providers', 'lab', 'instances');
    // The instance a key names, started once and removed (claim and all), to learn its id.
    const gone = await p.runtime!.start(req('od-1', 'claimed', 'c1'));
    await p.runtime!.stop('od-1', gone.id, 5000);
    await p.runtime!.remove!('od-1', gone.id);
    // What a process killed between creating its claim and writing it left behind, a while ago.
    const empty = join(instances, `${gone.id}.json`);
    expect(existsSync(empty)).toBe(false);
    writeFileSync(empty, '');
    const old = new Date(Date.now() - 10_000);
    utimesSync(empty, old, old);
    const taken = await p.runtime!.start(req('od-1', 'claimed', 'c1'));
    expect(taken.id).toBe(gone.id);
    expect(taken.state).toBe('running');
    expect(JSON.parse(readFileSync(empty, 'utf8')) as { owner: { pid: number } }).toMatchObject({ owner: { pid: process.pid } });
    // Five starts at once with one key: one instance, and no claim is ever seen half written.
    const same = await Promise.all(Array.from({ length: 5 }, () => p.runtime!.start(req('od-2', 'racer', 'r1'))));
    expect(new Set(same.map((x) => x.id)).size).toBe(1);
    expect(readdirSync(instances).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    for (const x of [taken, same[0]!]) await p.runtime!.stop(x.node, x.id, 5000);
  });

  it('a start whose starter was killed before the environment reached the supervisor is started again, not returned as a run that failed', async () => {
    const root = tempDir();
    const p = await lab(root);
    const a = await p.runtime!.start(req('od-1', 'noenv', 'ne1'));
    await p.runtime!.stop('od-1', a.id, 5000);
    // What a spotfleet SIGKILLed between spawning the supervisor and writing the workload's
    // environment to its pipe leaves: the supervisor read the end of the pipe and gave up (exit
    // 127, "no environment"); the claim names the dead starter.
    const dir = join(root, '.spotfleet', 'providers', 'lab', 'nodes', 'od-1', 'workloads', a.id);
    for (const f of ['pids.json', 'exit.json', 'output.log']) rmSync(join(dir, f), { force: true });
    writeFileSync(join(dir, 'exit.json'), `${JSON.stringify({ code: 127, error: 'no environment', endedAt: new Date().toISOString() })}\n`);
    writeFileSync(join(dir, 'output.log'), 'spotfleet supervisor: no environment for the workload on fd 3: Unexpected end of JSON input\n');
    const claim = join(root, '.spotfleet', 'providers', 'lab', 'instances', `${a.id}.json`);
    const dead = { pid: 2 ** 22 + 4321 };
    writeFileSync(claim, `${JSON.stringify({ id: a.id, node: 'od-1', workload: 'noenv', owner: dead })}\n`);
    expect((await p.runtime!.list()).find((i) => i.id === a.id)).toMatchObject({ state: 'exited', exitCode: 127 });
    // The next start with the same key (a new leader finishing the move) runs the workload.
    const again = await p.runtime!.start(req('od-1', 'noenv', 'ne1'));
    expect(again.id).toBe(a.id);
    expect(again.state).toBe('running');
    await waitFor('the workload to start', async () => (await logs(p, 'od-1', a.id)).includes('starting from step 0'));
    expect(await logs(p, 'od-1', a.id)).not.toContain('no environment');
    await p.runtime!.stop('od-1', a.id, 5000);
    // A real failure of the workload with a dead starter is still returned as it is.
    const b = await p.runtime!.start(req('od-1', 'fails', 'f1', { command: ['sh', '-c', 'exit 3'] }));
    await waitFor('it to fail', async () => (await p.runtime!.list()).find((i) => i.id === b.id)?.state === 'exited');
    writeFileSync(join(root, '.spotfleet', 'providers', 'lab', 'instances', `${b.id}.json`), `${JSON.stringify({ id: b.id, node: 'od-1', workload: 'fails', owner: dead })}\n`);
    expect(await p.runtime!.start(req('od-1', 'fails', 'f1', { command: ['sh', '-c', 'exit 3'] }))).toMatchObject({ id: b.id, state: 'exited', exitCode: 3 });
  });

  it('an instance whose starter was killed between its record and the spawn is not running (no phantom to adopt)', async () => {
    const root = tempDir();
    const p = await lab(root);
    const a = await p.runtime!.start(req('od-1', 'phantom', 'ph1'));
    await p.runtime!.stop('od-1', a.id, 5000);
    // What a spotfleet SIGKILLed right after writing the record, before spawning the supervisor,
    // leaves: a fresh record without a supervisor, and nothing else.
    const dir = join(root, '.spotfleet', 'providers', 'lab', 'nodes', 'od-1', 'workloads', a.id);
    const rec = JSON.parse(readFileSync(join(dir, 'record.json'), 'utf8')) as Record<string, unknown>;
    delete rec.supervisor;
    rec.startedAt = new Date().toISOString();
    // Its starter is gone (a PID no process has); while the starter lives, the record counts as starting.
    rec.starter = { pid: 2 ** 22 + 12345 };
    writeFileSync(join(dir, 'record.json'), JSON.stringify(rec));
    for (const f of ['pids.json', 'exit.json']) rmSync(join(dir, f), { force: true });
    expect((await p.runtime!.list()).find((i) => i.id === a.id)?.state).toBe('exited');
    // The same record while its starter (here: this process) lives is a start under way.
    writeFileSync(join(dir, 'record.json'), JSON.stringify({ ...rec, starter: { pid: process.pid } }));
    expect((await p.runtime!.list()).find((i) => i.id === a.id)?.state).toBe('running');
  });

  it('a command that cannot start is reported exited with 127', async () => {
    const p = await lab(tempDir());
    const a = await p.runtime!.start(req('od-1', 'missing', 'm1', { command: ['/nonexistent/binary'] }));
    const done = await waitFor('exit', async () => (await p.runtime!.list()).find((i) => i.id === a.id && i.state === 'exited'));
    expect(done.exitCode).toBe(127);
    expect(await logs(p, 'od-1', a.id)).toContain('cannot start /nonexistent/binary');
  });

  it('with many nodes, a listing never misses a start or stop made while an earlier one was under way', async () => {
    const many: LocalConfig = { nodes: Array.from({ length: 200 }, (_, i) => ({ name: `n-${String(i).padStart(3, '0')}`, gpuModel: 'V100', gpus: 4, capacity: 'on-demand' as const, pricePerHour: 12 })) };
    const p = track(await local.create(many, makeCtx('lab', tempDir())));
    const before = p.runtime!.list();
    await new Promise((r) => setImmediate(r)); // the first listing is under way, past n-005
    const a = await p.runtime!.start(req('n-005', 'late-node', 'l1', { gpus: 3 }));
    // A listing that began before the start may not show it; one asked for after the start must.
    expect((await p.runtime!.list()).map((i) => i.id)).toEqual([a.id]);
    await before;
    const overlapping = [p.runtime!.list(), p.nodes!.list()] as const;
    const [instances, nodes] = await Promise.all(overlapping);
    expect(instances.map((i) => [i.id, i.state])).toEqual([[a.id, 'running']]);
    expect(nodes.find((n) => n.id === 'n-005')?.gpusFree).toBe(1);
    expect(nodes.filter((n) => n.gpusFree !== 4).map((n) => n.id)).toEqual(['n-005']);
    const during = p.runtime!.list();
    await p.runtime!.stop('n-005', a.id, 5000);
    expect((await p.runtime!.list()).map((i) => i.state)).toEqual(['exited']);
    await during;
    expect((await p.nodes!.list()).find((n) => n.id === 'n-005')?.gpusFree).toBe(4);
  });

  it('does not mistake a reused PID for the workload', () => {
    const st = procStat(process.pid)!;
    expect(isAlive({ pid: process.pid, start: st.start })).toBe(true);
    expect(isAlive({ pid: process.pid, start: `${st.start}1` })).toBe(false);
    expect(isAlive({ pid: 2 ** 22 + 12345 })).toBe(false);
  });

  it('rejects names that would escape the node folder', async () => {
    const p = await lab(tempDir());
    await expect(p.runtime!.start(req('od-1', '../evil', 'x'))).rejects.toThrow(/invalid workload name/);
    await expect(p.runtime!.stop('..', 'x', 0)).rejects.toThrow(/invalid node name/);
  });
});
