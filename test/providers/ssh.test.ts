// The ssh provider against the real-peer lab: conformance, the checkpoint migration flow (USR1 →
// verified checkpoint → stop → copy A→B → resume on B), faults, notices read from the node (tunnel, curl fallback), and
// quoting/host-key security.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeLab } from '../lab/gate.js';
import { startLab, type Lab } from '../lab/lab.js';
import { evil, labContext, labHosts, labTransfer, metadataFakeEntry, startCloudFake, waitUntil, writeLabCheckpoint } from '../lab/fixtures.js';
import { describeProviderConformance } from '../../src/providers/conformance.js';
import { createSshProvider, type SshProviderConfig } from '../../providers/ssh/index.js';
import { ProviderError } from '../../src/core/errors.js';
import type { NodeInfo } from '../../src/core/types.js';
import type { Provider, StartRequest } from '../../src/providers/sdk.js';

let labP: Promise<Lab> | undefined;
const getLab = (): Promise<Lab> => (labP ??= startLab({ nodes: [{ name: 'a', cloud: 'aws', gpus: 4, gpuModel: 'H100 80GB HBM3' }, { name: 'b', cloud: 'gcp', gpus: 4, gpuModel: 'H100 80GB HBM3' }] }));

function make(lab: Lab, fleet: string, extra: Partial<SshProviderConfig> = {}): Provider {
  return createSshProvider({ hosts: labHosts(lab), transfer: labTransfer(lab), ...extra }, labContext(lab, 'gpu', fleet));
}

async function nodeOf(p: Provider, id: string): Promise<NodeInfo> {
  const n = (await p.nodes!.list()).find((x) => x.id === id);
  if (!n) throw new Error(`no node ${id}`);
  return n;
}

function startReq(lab: Lab, node: string, workload: string, extra: Partial<StartRequest> = {}): StartRequest {
  return { fleet: 'flow', workload, node, image: lab.image, env: {}, gpus: 1, checkpointPath: '/checkpoints', labels: {}, specHash: 'h1', idempotencyKey: `${workload}-${node}-${Math.random()}`, ...extra };
}

describeLab('ssh provider (lab)', () => {
  afterAll(async () => {
    await (await labP)?.close();
  });

  describeProviderConformance('ssh', async () => {
    const lab = await getLab();
    const provider = make(lab, 'conf');
    // node a is an AWS node: its notices come from a metadata service inside its namespace
    const md = await lab.startMetadata('a', [process.execPath, lab.tinyImdsPath, '169.254.169.254:80', join(lab.dir, 'never')]); // bound inside node a's namespace
    return {
      teardown: () => md.stop(),
      provider,
      fleet: 'conf',
      node: () => nodeOf(provider, 'a'),
      otherNode: () => nodeOf(provider, 'b'),
      trainer: { image: lab.image, env: {}, readyLog: 'start at step 0', checkpointPath: '/checkpoints' },
      stubborn: { image: lab.image, env: {}, command: ['sh', '-c', 'trap "" TERM; echo ready; while true; do sleep 1; done'], readyLog: 'ready' },
      lateHandler: { image: lab.image, env: {}, command: ['sh', '-c', "sleep 1; trap 'echo got-usr1' USR1; echo ready; while true; do sleep 0.1; done"] },
      exits: (code) => ({ image: lab.image, command: ['sh', '-c', `exit ${code}`], env: {} }),
      writeCheckpoint: async (node, workload) => {
        writeLabCheckpoint(lab, node.id, workload);
      },
      stopGraceMs: 10_000,
    };
  });

  let lab: Lab;
  let p: Provider;
  beforeAll(async () => {
    lab = await getLab();
    p = make(lab, 'flow');
  });
  afterAll(async () => {
    await p?.close?.();
  });

  it('lists nodes from nvidia-smi with free GPUs net of its own placements', async () => {
    lab.setGpus('a', ['0, NVIDIA H100 80GB HBM3, 3, 81559, 80000   ', '1, NVIDIA H100 80GB HBM3, [N/A], 81559, [Not Supported]']);
    const a = await nodeOf(p, 'a');
    expect(a).toMatchObject({ id: 'a', provider: 'gpu', gpuModel: 'H100 80GB HBM3', gpus: 2, gpusFree: 2, capacity: 'spot', state: 'ready' });
    expect(a.meta).toMatchObject({ gpuMemoryTotalMiB: 163118, gpuMemoryFreeMiB: 80000, cloud: 'aws' });
    const inst = await p.runtime!.start(startReq(lab, 'a', 'gpu-count'));
    expect((await nodeOf(p, 'a')).gpusFree).toBe(1);
    await p.runtime!.stop('a', inst.id, 5000);
    expect((await nodeOf(p, 'a')).gpusFree).toBe(2);
    lab.setGpus('a', Array.from({ length: 4 }, (_, i) => `${i}, NVIDIA H100 80GB HBM3, 0, 81559, 81004`));
  });

  it('migrates: USR1 → verified checkpoint → stop → copy a→b (small: through the controller) → resumes on b from the saved step', async () => {
    const rt = p.runtime!;
    const st = p.storage!;
    const [a, b] = [await nodeOf(p, 'a'), await nodeOf(p, 'b')];
    const src = await rt.start(startReq(lab, 'a', 'train-m', { labels: { team: 'nlp' } }));
    await waitUntil('trainer ready', async () => (await rt.logs!('a', src.id)).includes('start at step 0'));
    await new Promise((r) => setTimeout(r, 1200));
    const since = new Date().toISOString();
    await rt.signal('a', src.id, 'SIGUSR1');
    const ck = await waitUntil('a checkpoint newer than the signal', async () => (await st.verify({ node: a, workload: 'train-m', since, marker: 'COMPLETE' })) ?? undefined);
    expect(Date.parse(ck.mtime)).toBeGreaterThan(Date.parse(since));
    expect(await rt.stop('a', src.id, 10_000)).toEqual({ exitCode: 0 });
    const saved = readFileSync(join(lab.node('a').srvDir, 'checkpoints', 'train-m', 'step'), 'utf8').trim();
    expect(Number(saved)).toBeGreaterThan(0);
    const final = (await st.verify({ node: a, workload: 'train-m' }))!;
    const moved = await st.transfer({ workload: 'train-m', from: a, to: b, checkpoint: final });
    expect(moved.skipped).toBe(false);
    expect(moved.checkpoint.node).toBe('b');
    expect(existsSync(join(lab.node('a').srvDir, 'checkpoints', 'train-m', 'step'))).toBe(true);
    const dst = await rt.start(startReq(lab, 'b', 'train-m', { resumeFrom: { env: 'RESUME_FROM_CHECKPOINT', path: '/checkpoints' }, labels: { 'spotfleet.migrated-from': 'a', 'spotfleet.original-type': 'spot' } }));
    await waitUntil('resume line', async () => (await rt.logs!('b', dst.id)).includes(`resumed from step ${saved}`));
    const listed = (await rt.list()).find((i) => i.id === dst.id)!;
    expect(listed.labels).toMatchObject({ 'spotfleet.workload': 'train-m', 'spotfleet.migrated-from': 'a', 'spotfleet.original-type': 'spot', 'spotfleet.fleet': 'flow' });
    const ps = await lab.ssh('b', 'docker ps --filter label=spotfleet.workload=train-m --format "{{.Label \\"spotfleet.fleet\\"}}"');
    expect(ps.stdout.trim()).toBe('flow');
    await rt.stop('b', dst.id, 5000);
  });

  it('reads an AWS spot interruption from the node (metadata fake inside the node namespace, reached through a direct-tcpip channel)', async () => {
    const trigger = join(lab.dir, 'spot-a.json');
    const md = await lab.startMetadata('a', [process.execPath, lab.tinyImdsPath, '169.254.169.254:80', trigger]); // bound inside node a's namespace
    try {
      const a = await nodeOf(p, 'a');
      expect(await p.notices!.poll(a)).toEqual([]);
      writeFileSync(trigger, JSON.stringify({ action: 'terminate', time: '2030-01-01T00:02:00Z' }));
      const got = await p.notices!.poll(a);
      expect(got).toHaveLength(1);
      expect(got[0]).toMatchObject({ node: 'a', provider: 'gpu', source: 'aws', kind: 'preemption', action: 'terminate', deadline: '2030-01-01T00:02:00.000Z' });
    } finally {
      await md.stop();
    }
  });

  it('reads GCP preemption and Azure Preempt (acknowledged with StartRequests) through the in-repo fakes', async (ctx) => {
    if (!metadataFakeEntry()) {
      if (process.env.SPOTFLEET_REAL_PEERS === '1') throw new Error('metadata fakes not built: run `npm run build` first');
      return ctx.skip();
    }
    const gcp = await startCloudFake(lab, 'b', 'gcp');
    const az = await startCloudFake(lab, 'a', 'azure');
    const hosts = labHosts(lab).map((h) => (h.name === 'a' ? { ...h, cloud: 'azure' as const } : h));
    const q = createSshProvider({ hosts, acknowledgeNotices: true }, labContext(lab, 'clouds', 'flow'));
    try {
      const [a, b] = [await nodeOf(q, 'a'), await nodeOf(q, 'b')];
      expect(await q.notices!.poll(b)).toEqual([]);
      expect(await q.notices!.poll(a)).toEqual([]);
      await gcp.control('preempt');
      // A poll that times out on a loaded machine hears nothing; watch polls again, and so does this.
      const heard = (node: NodeInfo) => waitUntil(`a notice on ${node.id}`, async () => {
        const got = await q.notices!.poll(node);
        return got.length > 0 ? got : undefined;
      });
      const g = await heard(b);
      expect(g.map((n) => [n.node, n.source, n.kind])).toEqual([['b', 'gcp', 'preemption']]);
      const ev = await az.control<{ EventId: string }>('addEvent', { EventType: 'Preempt', Resources: ['a'] });
      const z = await heard(a);
      expect(z.map((n) => [n.node, n.source, n.kind, n.action])).toEqual([['a', 'azure', 'preemption', 'Preempt']]);
      await q.notices!.acknowledge!(a, z[0]!);
      const st = await az.control<{ acks: { EventId: string }[] }>('state');
      expect(st.acks.map((x) => x.EventId)).toContain(ev.EventId);
    } finally {
      await q.close?.();
      await gcp.stop();
      await az.stop();
    }
  });

  it('fault: node a sshd killed mid-operation → ProviderError naming provider and node; checkpoint kept; reconnects after', async () => {
    const a = await nodeOf(p, 'a');
    writeLabCheckpoint(lab, 'a', 'keep-me', 'step=7\n');
    const long = p.nodes!.exec!('a', ['sleep', '5']);
    await new Promise((r) => setTimeout(r, 500));
    await lab.stopSshd('a');
    // sessions of a real dead host die too: kill the session processes by PID
    const { nodePids } = await import('../lab/fixtures.js');
    for (const pid of nodePids(lab, 'a', 'sshd')) process.kill(pid, 'SIGKILL');
    const err = await long.then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect((err as ProviderError).message).toMatch(/provider "gpu".*node "a"/);
    const again = await p.storage!.verify({ node: a, workload: 'keep-me' }).then(() => undefined, (e: unknown) => e);
    expect(again).toBeInstanceOf(ProviderError);
    expect((again as ProviderError).message).toMatch(/node "a".*cannot connect/);
    expect((again as ProviderError).retryable).toBe(true);
    expect(readFileSync(join(lab.node('a').srvDir, 'checkpoints', 'keep-me', 'step'), 'utf8')).toBe('step=7\n');
    await lab.startSshd('a');
    expect(await p.storage!.verify({ node: a, workload: 'keep-me' })).toMatchObject({ node: 'a', sizeBytes: 7 });
  });

  it('fault: no free GPU on the target → ProviderError naming the node', async () => {
    lab.setGpus('b', ['0, NVIDIA H100 80GB HBM3, 0, 81559, 81004']);
    const one = await p.runtime!.start(startReq(lab, 'b', 'gpu-hog'));
    try {
      expect((await nodeOf(p, 'b')).gpusFree).toBe(0);
      const err = await p.runtime!.start(startReq(lab, 'b', 'gpu-two')).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(ProviderError);
      expect((err as Error).message).toMatch(/provider "gpu".*node "b".*no free GPU for gpu-two: it needs 1, 0 of 1 free/);
    } finally {
      await p.runtime!.stop('b', one.id, 5000);
      lab.setGpus('b', Array.from({ length: 4 }, (_, i) => `${i}, NVIDIA H100 80GB HBM3, 0, 81559, 81004`));
    }
  });

  it("fault: the target's Docker engine is down → ProviderError naming the node; nothing lost", async () => {
    writeLabCheckpoint(lab, 'b', 'engine-down', 'step=9\n');
    await lab.stopDocker('b');
    try {
      const err = await p.runtime!.start(startReq(lab, 'b', 'engine-down', { gpus: 0 })).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(ProviderError);
      expect((err as Error).message).toMatch(/provider "gpu".*node "b".*(Cannot connect to the Docker daemon|docker)/);
      expect(readFileSync(join(lab.node('b').srvDir, 'checkpoints', 'engine-down', 'step'), 'utf8')).toBe('step=9\n');
    } finally {
      await lab.startDocker('b');
    }
    const ok = await p.runtime!.start(startReq(lab, 'b', 'engine-down', { gpus: 0, resumeFrom: { env: 'RESUME_FROM_CHECKPOINT', path: '/checkpoints/step' } }));
    await waitUntil('resume after the engine is back', async () => (await p.runtime!.logs!('b', ok.id)).includes('resumed from step step=9'));
    await p.runtime!.stop('b', ok.id, 5000);
  });

  it('bounds concurrent operations per host (maxConcurrentPerHost)', async () => {
    const q = createSshProvider({ hosts: labHosts(lab), maxConcurrentPerHost: 2 }, labContext(lab, 'bound', 'x'));
    const dir = `/srv/spotfleet/conc-${process.pid}`;
    await q.nodes!.exec!('a', ['mkdir', '-p', dir]);
    // each command counts the others in flight (their marker files), then holds its own for a while
    const script = 'n=$(ls "$1" | wc -l); touch "$1/$2"; sleep 0.4; rm "$1/$2"; echo "$n"';
    const seen = await Promise.all(Array.from({ length: 6 }, (_, i) => q.nodes!.exec!('a', ['sh', '-c', script, 'sh', dir, `op${i}`]).then((r) => Number(r.stdout.trim()))));
    expect(Math.max(...seen)).toBeLessThanOrEqual(1);
    await q.close?.();
  });

  it('security: names, labels, env values and exec args with shell metacharacters never execute on the node', async () => {
    const canary = `/tmp/sf-canary-${process.pid}`;
    const bad = evil(canary);
    const r = await p.nodes!.exec!('a', ['echo', bad, bad]);
    expect(r.stdout).toBe(`${bad} ${bad}\n`);
    const inst = await p.runtime!.start(startReq(lab, 'a', bad, { gpus: 0, labels: { note: bad }, env: { EVIL: bad }, command: ['sh', '-c', 'echo "$EVIL"; sleep 30'] }));
    try {
      await waitUntil('the echo', async () => (await p.runtime!.logs!('a', inst.id)).includes('pwned'));
      const listed = (await p.runtime!.list()).find((i) => i.id === inst.id)!;
      expect(listed.workload).toBe(bad);
      expect(listed.labels.note).toBe(bad);
      expect(await p.runtime!.logs!('a', inst.id)).toBe(`${bad}\n`);
      const a = await nodeOf(p, 'a');
      expect(await p.storage!.verify({ node: a, workload: bad })).toBeNull();
      const bad2 = await p.runtime!.start(startReq(lab, 'a', 'q', { gpus: 0, checkpointPath: `/ck'; touch ${canary}-5` })).then(() => undefined, (e: unknown) => e);
      expect((bad2 as Error).message).toMatch(/checkpointPath .* must be an absolute path/);
    } finally {
      await p.runtime!.stop('a', inst.id, 1000);
    }
    for (let i = 1; i <= 5; i++) {
      expect(existsSync(`${canary}-${i}`)).toBe(false);
      expect((await lab.ssh('a', `test -e ${canary}-${i} && echo yes || echo no`)).stdout.trim()).toBe('no');
    }
  });

  it('security: an unknown host key is refused by default; a pinned fingerprint or opt-in accepts it', async () => {
    const empty = join(lab.dir, 'empty_known_hosts');
    writeFileSync(empty, '');
    const strict = createSshProvider({ hosts: labHosts(lab, { knownHostsFile: empty }) }, labContext(lab, 'strict', 'x'));
    const err = await strict.nodes!.exec!('a', ['true']).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect((err as Error).message).toMatch(/provider "strict".*node "a".*host key ssh-ed25519 SHA256:\S+ of \S+ is unknown/);
    expect((await strict.nodes!.list()).find((n) => n.id === 'a')?.state).toBe('unknown');
    await strict.close?.();

    const wrongPin = createSshProvider({ hosts: labHosts(lab, { hostKeyFingerprint: lab.node('b').hostKeyFingerprint }) }, labContext(lab, 'pin', 'x'));
    await expect(wrongPin.nodes!.exec!('a', ['true'])).rejects.toThrow(/does not match the pinned fingerprint/);
    expect((await wrongPin.nodes!.exec!('b', ['true'])).code).toBe(0);
    await wrongPin.close?.();

    const tofu = join(lab.dir, 'tofu_known_hosts');
    const opt = createSshProvider({ hosts: labHosts(lab, { knownHostsFile: tofu, acceptUnknownHostKey: true }) }, labContext(lab, 'tofu', 'x'));
    expect((await opt.nodes!.exec!('a', ['true'])).code).toBe(0);
    expect(readFileSync(tofu, 'utf8')).toContain(lab.node('a').hostKeyPublic.split(' ')[1]);
    await opt.close?.();
    // a changed key is refused even with the opt-in
    writeFileSync(tofu, `${lab.node('a').address} ${lab.node('b').hostKeyPublic.split(' ').slice(0, 2).join(' ')}\n`);
    const changed = createSshProvider({ hosts: labHosts(lab, { knownHostsFile: tofu, acceptUnknownHostKey: true }) }, labContext(lab, 'chg', 'x'));
    await expect(changed.nodes!.exec!('a', ['true'])).rejects.toThrow(/CHANGED/);
    await changed.close?.();
  });
});
