// Notice polling over SSH across the lab's nodes (aws, gcp, azure metadata fakes inside each
// node's namespace, reached through a direct-tcpip channel from the node): poll latency at a 1 s interval (p50/p99), notice-to-signal
// latency (fake posts a spot interruption → the container gets SIGUSR1), controller CPU time per
// poll per node, and the cost of one Docker Engine call over SSH: pooled streamlocal forward vs.
// dockerode's own ssh mode. Skips with a message when the lab cannot run (not root, no peers).
import { setTimeout as sleep } from 'node:timers/promises';
import Docker from 'dockerode';
import { labUnavailableReason, startLab, type Lab } from '../lab/lab.js';
import { labContext, labHosts, metadataFakeEntry, startCloudFake, type CloudFake } from '../lab/fixtures.js';
import { createSshProvider } from '../../providers/ssh/index.js';
import { createDockerProvider } from '../../providers/docker/index.js';
import { report } from './util.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 20);
const NOTICES = Number(process.env.BENCH_NOTICES ?? 5);

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN;
}

async function main(): Promise<void> {
  const why = labUnavailableReason() ?? (metadataFakeEntry() ? undefined : 'metadata fakes not built (npm run build)');
  if (why) {
    console.log(`ssh-notice: skipped: ${why}`);
    if (process.env.SPOTFLEET_REAL_PEERS === '1') process.exitCode = 1;
    return;
  }
  let lab: Lab | undefined;
  const fakes: CloudFake[] = [];
  try {
    lab = await startLab({ nodes: [{ name: 'a', cloud: 'aws', gpus: 1, gpuModel: 'H100' }, { name: 'b', cloud: 'gcp', gpus: 1, gpuModel: 'H100' }, { name: 'c', cloud: 'azure', gpus: 1, gpuModel: 'H100' }] });
    const aws = await startCloudFake(lab, 'a', 'aws');
    fakes.push(aws, await startCloudFake(lab, 'b', 'gcp'), await startCloudFake(lab, 'c', 'azure', ['--name', 'c']));
    const p = createSshProvider({ hosts: labHosts(lab) }, labContext(lab, 'bench', 'bench'));
    const nodes = await p.nodes!.list();
    for (const n of nodes) await p.notices!.poll(n); // connect, token

    // 1) steady-state polling every 1 s, all nodes at once
    const lat: number[] = [];
    const cpu: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const t0 = Date.now();
      const c0 = process.cpuUsage();
      await Promise.all(nodes.map(async (n) => {
        const s = performance.now();
        await p.notices!.poll(n);
        lat.push(performance.now() - s);
      }));
      const c = process.cpuUsage(c0);
      cpu.push((c.user + c.system) / 1000 / nodes.length);
      await sleep(Math.max(0, 1000 - (Date.now() - t0)));
    }
    report(`notice poll latency over SSH, p50 (${nodes.length} nodes, 1 s)`, pct(lat, 50), 'ms');
    report(`notice poll latency over SSH, p99 (${nodes.length} nodes, 1 s)`, pct(lat, 99), 'ms');
    report('controller CPU per poll per node, mean', cpu.reduce((s, x) => s + x, 0) / cpu.length, 'ms');

    // 2) notice → signal: AWS interruption posted at T, polled every 1 s, SIGUSR1 sent on sight
    const a = nodes.find((n) => n.id === 'a')!;
    const inst = await p.runtime!.start({ fleet: 'bench', workload: 'w', node: 'a', image: lab.image, env: {}, gpus: 0, labels: {}, specHash: 'x', idempotencyKey: 'bench-w', checkpointPath: '/checkpoints' });
    await sleep(500);
    const n2s: number[] = [];
    for (let i = 0; i < NOTICES; i++) {
      await aws.control('clearSpotInterruption');
      await sleep(200 + Math.random() * 800);
      const t = Date.now();
      await aws.control('triggerSpotInterruption', {});
      // the notice lands at a random point of the 1 s poll cycle
      await sleep(Math.random() * 1000);
      for (;;) {
        const got = await p.notices!.poll(a);
        if (got.some((x) => x.kind === 'preemption')) break;
        await sleep(1000);
      }
      await p.runtime!.signal('a', inst.id, 'SIGUSR1');
      n2s.push(Date.now() - t);
    }
    report('notice-to-signal latency, p50 (1 s poll)', pct(n2s, 50), 'ms');
    report('notice-to-signal latency, p99 (1 s poll)', pct(n2s, 99), 'ms');
    await p.runtime!.stop('a', inst.id, 5000);
    await p.close?.();

    // 3) one Engine API call over SSH: pooled forward vs dockerode protocol:'ssh'
    const node = lab.node('a');
    const d = createDockerProvider({ nodes: [{ name: 'a', engine: { ssh: true, socketPath: node.dockerSocket }, ssh: { host: node.address, identityFile: lab.clientKeyPath, knownHostsFile: lab.knownHostsPath } }] }, labContext(lab, 'bench-d', 'bench'));
    const pooled = d.runtime.engine('a');
    await pooled.version();
    const per = async (dd: Docker) => {
      const xs: number[] = [];
      for (let i = 0; i < 10; i++) {
        const s = performance.now();
        await dd.listContainers({ all: true });
        xs.push(performance.now() - s);
      }
      return pct(xs, 50);
    };
    report('docker API call over pooled SSH forward, p50', await per(pooled), 'ms');
    const native = new Docker({ protocol: 'ssh', host: node.address, port: 22, username: 'root', sshOptions: { privateKey: lab.clientKey } });
    report("docker API call over dockerode's ssh mode, p50", await per(native), 'ms');
    await d.close?.();
  } finally {
    for (const f of fakes) await f.stop().catch(() => undefined);
    await lab?.close();
  }
}

await main();
