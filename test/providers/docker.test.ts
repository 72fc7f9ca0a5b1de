// The docker provider against the real-peer lab: each node's engine reached over the pooled SSH
// connection (streamlocal to the node's socket) or over its unix socket; conformance, the
// checkpoint migration flow, image pulls from a local registry (progress, and failures in the
// stream), faults, and quoting.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describeLab } from '../lab/gate.js';
import { startLab, type Lab } from '../lab/lab.js';
import { evil, labContext, labTransfer, waitUntil, writeLabCheckpoint } from '../lab/fixtures.js';
import { describeProviderConformance } from '../../src/providers/conformance.js';
import { createDockerProvider, type DockerNodeEntry, type DockerProviderConfig } from '../../providers/docker/index.js';
import { pullImage, type PullEvent } from '../../providers/docker/engine.js';
import { ProviderError } from '../../src/core/errors.js';
import type { NodeInfo } from '../../src/core/types.js';
import type { Provider, StartRequest } from '../../src/providers/sdk.js';

let labP: Promise<Lab> | undefined;
const getLab = (): Promise<Lab> => (labP ??= startLab({ nodes: [{ name: 'a', cloud: 'aws', gpus: 4, gpuModel: 'A100-SXM4-40GB' }, { name: 'b', gpus: 4, gpuModel: 'A100-SXM4-40GB' }] }));

function sshNodes(lab: Lab): DockerNodeEntry[] {
  return lab.nodes.map((n) => {
    const e: DockerNodeEntry = {
      name: n.name,
      engine: { ssh: true, socketPath: n.dockerSocket },
      ssh: { host: n.address, port: n.port, user: 'root', identityFile: lab.clientKeyPath, knownHostsFile: lab.knownHostsPath },
      capacity: n.cloud ? 'spot' : 'on-demand',
      zone: `lab-${n.name}`,
      pricePerHour: 2,
    };
    if (n.cloud) e.cloud = n.cloud;
    return e;
  });
}

function make(lab: Lab, fleet: string, extra: Partial<DockerProviderConfig> = {}, nodes = sshNodes(lab)) {
  return createDockerProvider({ nodes, transfer: labTransfer(lab), ...extra }, labContext(lab, 'engines', fleet));
}

async function nodeOf(p: Provider, id: string): Promise<NodeInfo> {
  const n = (await p.nodes!.list()).find((x) => x.id === id);
  if (!n) throw new Error(`no node ${id}`);
  return n;
}

function startReq(lab: Lab, node: string, workload: string, extra: Partial<StartRequest> = {}): StartRequest {
  return { fleet: 'flow', workload, node, image: lab.image, env: {}, gpus: 1, checkpointPath: '/checkpoints', labels: {}, specHash: 'h1', idempotencyKey: `${workload}-${node}-${Math.random()}`, ...extra };
}

describeLab('docker provider (lab)', () => {
  afterAll(async () => {
    await (await labP)?.close();
  });

  describeProviderConformance('docker (engine over ssh)', async () => {
    const lab = await getLab();
    const provider = make(lab, 'conf');
    const md = await lab.startMetadata('a', [process.execPath, lab.tinyImdsPath, '169.254.169.254:80', join(lab.dir, 'never')]); // bound inside node a's namespace
    return {
      provider,
      fleet: 'conf',
      teardown: () => md.stop(),
      node: () => nodeOf(provider, 'a'),
      otherNode: () => nodeOf(provider, 'b'),
      trainer: { image: lab.image, env: {}, readyLog: 'start at step 0', checkpointPath: '/checkpoints' },
      stubborn: { image: lab.image, env: {}, command: ['sh', '-c', 'trap "" TERM; echo ready; while true; do sleep 1; done'], readyLog: 'ready' },
      lateHandler: { image: lab.image, env: {}, command: ['sh', '-c', "sleep 1; trap 'echo got-usr1' USR1; echo ready; while true; do sleep 0.1; done"] },
      exits: (code) => ({ image: lab.image, command: ['sh', '-c', `exit ${code}`], env: {} }),
      writeCheckpoint: async (node, workload) => {
        writeLabCheckpoint(lab, node.id, workload);
      },
    };
  });

  describeProviderConformance('docker (unix socket, signal by exec)', async () => {
    const lab = await getLab();
    const nodes: DockerNodeEntry[] = [{ name: 'b', engine: { socketPath: lab.node('b').dockerSocket }, gpus: 2, gpuModel: 'A100', capacity: 'on-demand', pricePerHour: 3 }];
    const provider = createDockerProvider({ nodes, signalMethod: 'exec' }, labContext(lab, 'sock', 'conf-sock'));
    return {
      provider,
      fleet: 'conf-sock',
      trainer: { image: lab.image, env: {}, readyLog: 'start at step 0', checkpointPath: '/checkpoints' },
      stubborn: { image: lab.image, env: {}, command: ['sh', '-c', 'trap "" TERM; echo ready; while true; do sleep 1; done'], readyLog: 'ready' },
      lateHandler: { image: lab.image, env: {}, command: ['sh', '-c', "sleep 1; trap 'echo got-usr1' USR1; echo ready; while true; do sleep 0.1; done"] },
      exits: (code) => ({ image: lab.image, command: ['sh', '-c', `exit ${code}`], env: {} }),
    };
  });

  let lab: Lab;
  let p: ReturnType<typeof make>;
  beforeAll(async () => {
    lab = await getLab();
    p = make(lab, 'flow');
  });
  afterAll(async () => {
    await p?.close?.();
  });

  it('migrates: USR1 → verified checkpoint → stop → rsync a→b → resumes on b from the saved step', async () => {
    const rt = p.runtime;
    const st = p.storage!;
    const [a, b] = [await nodeOf(p, 'a'), await nodeOf(p, 'b')];
    const src = await rt.start(startReq(lab, 'a', 'train-d'));
    await waitUntil('trainer ready', async () => (await rt.logs('a', src.id)).includes('start at step 0'));
    await new Promise((r) => setTimeout(r, 1200));
    const since = new Date().toISOString();
    await rt.signal('a', src.id, 'SIGUSR1');
    await waitUntil('a checkpoint newer than the signal', async () => (await st.verify({ node: a, workload: 'train-d', since, marker: 'COMPLETE' })) ?? undefined);
    expect(await rt.stop('a', src.id, 10_000)).toEqual({ exitCode: 0 });
    const saved = readFileSync(join(lab.node('a').srvDir, 'checkpoints', 'train-d', 'step'), 'utf8').trim();
    const final = (await st.verify({ node: a, workload: 'train-d' }))!;
    await st.transfer({ workload: 'train-d', from: a, to: b, checkpoint: final });
    const dst = await rt.start(startReq(lab, 'b', 'train-d', { resumeFrom: { env: 'RESUME_FROM_CHECKPOINT', path: '/checkpoints' }, labels: { 'spotfleet.migrated-from': 'a', 'spotfleet.original-type': 'spot' } }));
    await waitUntil('resume line', async () => (await rt.logs('b', dst.id)).includes(`resumed from step ${saved}`));
    const ps = await lab.docker('b', ['ps', '--filter', 'label=spotfleet.workload=train-d', '--format', '{{.Label "spotfleet.migrated-from"}} {{.Label "spotfleet.original-type"}} {{.Label "spotfleet.fleet"}}']);
    expect(ps.stdout.trim()).toBe('a spot flow');
    await rt.stop('b', dst.id, 5000);
  });

  it('pulls from a local registry with progress, and fails on errors in the pull stream', async () => {
    const reg = await lab.startRegistry('a');
    const ref = `${reg.url}/spotfleet/busybox:pull`;
    // an image with a layer of its own, so a pull has something to download
    await lab.docker('a', ['run', '--name', 'mk-layer', '--network', 'none', lab.image, 'sh', '-c', 'head -c 300000 /dev/urandom > /layer.bin']);
    expect((await lab.docker('a', ['commit', 'mk-layer', ref])).code).toBe(0);
    await lab.docker('a', ['rm', '-f', 'mk-layer']);
    const push = await lab.docker('a', ['push', ref]);
    expect(push.code, push.stderr).toBe(0);
    expect((await lab.docker('a', ['rmi', ref])).code).toBe(0);
    const events: PullEvent[] = [];
    const q = make(lab, 'pull', { imagePull: 'always' });
    // (The image's own command, from the commit above, ends in milliseconds: run one that stays.)
    const inst = await q.runtime.start(startReq(lab, 'a', 'pulled', { image: ref, gpus: 0, command: ['sleep', '30'] }));
    expect(inst.state).toBe('running');
    await q.runtime.stop('a', inst.id, 1000);
    // progress is reported
    await lab.docker('a', ['rm', '-f', inst.id]);
    await lab.docker('a', ['rmi', ref]);
    await pullImage(q.runtime.engine('a'), ref, (e) => events.push(e));
    expect(events.some((e) => /Pull complete|Download complete|Downloaded newer image/.test(e.status ?? ''))).toBe(true);
    // break the layer blob in the registry: the engine answers 200 and reports the error in-stream
    await lab.docker('a', ['rmi', ref]);
    const blobs = join(reg.storageDir, 'docker', 'registry', 'v2', 'blobs', 'sha256');
    for (const d of readdirSync(blobs)) for (const h of readdirSync(join(blobs, d))) {
      const data = join(blobs, d, h, 'data');
      if (existsSync(data) && readFileSync(data).subarray(0, 2).equals(Buffer.from([0x1f, 0x8b]))) rmSync(data);
    }
    const err = await q.runtime.start(startReq(lab, 'a', 'broken-pull', { image: ref, gpus: 0 })).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect((err as Error).message).toMatch(/provider "engines".*node "a".*pull of \S+ failed: /);
    await q.close?.();
  });

  it("fault: the target's Docker engine is down → ProviderError naming the node; the checkpoint stays", async () => {
    writeLabCheckpoint(lab, 'b', 'down', 'step=3\n');
    await lab.stopDocker('b');
    try {
      const err = await p.runtime.start(startReq(lab, 'b', 'down', { gpus: 0 })).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(ProviderError);
      expect((err as Error).message).toMatch(/provider "engines".*node "b"/);
      expect((err as ProviderError).retryable).toBe(true);
      expect(readFileSync(join(lab.node('b').srvDir, 'checkpoints', 'down', 'step'), 'utf8')).toBe('step=3\n');
    } finally {
      await lab.startDocker('b');
    }
    const ok = await p.runtime.start(startReq(lab, 'b', 'down', { gpus: 0 }));
    expect(ok.state).toBe('running');
    await p.runtime.stop('b', ok.id, 1000);
  });

  it('fault: no free GPU on any target → ProviderError naming the node', async () => {
    lab.setGpus('a', []);
    lab.setGpus('b', []);
    try {
      for (const n of ['a', 'b']) {
        const err = await p.runtime.start(startReq(lab, n, 'needs-gpu')).then(() => undefined, (e: unknown) => e);
        expect((err as Error).message).toMatch(new RegExp(`node "${n}".*no free GPU for needs-gpu: it needs 1, 0 of 0 free`));
      }
    } finally {
      for (const n of ['a', 'b']) lab.setGpus(n, Array.from({ length: 4 }, (_, i) => `${i}, NVIDIA A100-SXM4-40GB, 0, 40960, 40000`));
    }
  });

  it('security: workload names, labels and env values are data to the engine; nothing runs on the node', async () => {
    const canary = `/tmp/sf-dcanary-${process.pid}`;
    const bad = evil(canary);
    const inst = await p.runtime.start(startReq(lab, 'a', bad, { gpus: 0, labels: { [`k`]: bad }, env: { EVIL: bad }, command: ['sh', '-c', 'echo "$EVIL"; sleep 30'] }));
    try {
      await waitUntil('echo', async () => (await p.runtime.logs('a', inst.id)).includes('pwned'));
      expect(await p.runtime.logs('a', inst.id)).toBe(`${bad}\n`);
      const listed = (await p.runtime.list()).find((i) => i.id === inst.id)!;
      expect(listed.workload).toBe(bad);
      expect(listed.labels.k).toBe(bad);
    } finally {
      await p.runtime.stop('a', inst.id, 1000);
    }
    for (let i = 1; i <= 4; i++) expect(existsSync(`${canary}-${i}`)).toBe(false);
  });
});
