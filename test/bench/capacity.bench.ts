// Benchmark: bought capacity in the lab, through the built CLI as a user runs it, against the fake
// EC2 (and Price List) endpoints whose launches boot as lab nodes (sshd with the injected host key,
// dockerd, fake nvidia-smi, the IMDS fake). Each round on a fresh fleet:
//   - acquire → ready: the `apply`'s acquire action, from RunInstances to the lease being a node
//     (SSH answers with the injected host key, docker and nvidia-smi respond);
//   - apply → running: from starting `apply` to the trainer's first line in its container;
//   - eviction → resumed: under `spotfleet watch`, from posting the spot interruption on the VM's
//     IMDS to the trainer's `resumed from step N` line on the on-demand VM spotfleet bought for it,
//     with the move's step timings (checkpoint, acquire, stop, transfer, start) and downtime;
//   then `destroy`, and a check that the fake's books hold no live instance.
// Targets: acquire → ready ≤ 15 s and eviction → resumed ≤ 30 s (the shortest notice any cloud
// gives, GCP's and Azure's) in the lab, whose VMs boot in seconds; a real cloud adds its boot time.
// Usage: node dist/test/bench/capacity.bench.js [--rounds 2]. Needs the lab (root, sshd, dockerd).
import { setTimeout as sleep } from 'node:timers/promises';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFakeEc2 } from '../fakes/ec2.js';
import { startFakePricing } from '../fakes/aws-pricing.js';
import { labUnavailableReason, startLab } from '../lab/lab.js';
import { LabVms } from '../lab/cloud-vms.js';
import { cloudFleetYaml, CLOUD_FLEET } from '../e2e/cloud-fleet.js';
import { runCli } from '../e2e/crash-helpers.js';
import { startWatch, type MoveLogLine } from '../e2e/watch-process.js';
import { benchArg, report } from './util.js';

const ROUNDS = Math.round(benchArg('rounds', 2));
const CREDS = { accessKeyId: 'AKIDBENCH', secretAccessKey: 'bench-secret' };
const ENV = { AWS_ACCESS_KEY_ID: CREDS.accessKeyId, AWS_SECRET_ACCESS_KEY: CREDS.secretAccessKey };
const mean = (xs: number[]): number => xs.reduce((s, x) => s + x, 0) / Math.max(1, xs.length);

const cli = (args: string[], cwd: string) => runCli(args, { cwd, env: ENV, timeoutMs: 600_000 });

interface Round {
  acquireToReadyS: number;
  applyToRunningS: number;
  evictionToResumedS: number;
  downtimeS: number;
  timings: Record<string, number>;
}

/** The time (ms epoch) of the first container log line matching `re` on a VM, waiting for it. */
async function lineAt(lab: Awaited<ReturnType<typeof startLab>>, node: string, re: RegExp, timeoutMs = 90_000): Promise<number> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const ps = await lab.docker(node, ['ps', '-q', '--filter', `label=spotfleet.fleet=${CLOUD_FLEET}`]);
    for (const id of ps.stdout.split('\n').filter(Boolean)) {
      const logs = await lab.docker(node, ['logs', '--timestamps', id]);
      for (const line of (logs.stdout + logs.stderr).split('\n')) {
        const m = /^(\S+) (.*)$/.exec(line);
        if (m && re.test(m[2] as string)) return Date.parse(m[1] as string);
      }
    }
    if (Date.now() > until) throw new Error(`no container line ${String(re)} on ${node} within ${timeoutMs} ms`);
    await sleep(100);
  }
}

async function main(): Promise<void> {
  const why = labUnavailableReason();
  if (why) {
    console.log(`skipped: the lab cannot run here (${why})`);
    if (process.env.SPOTFLEET_REAL_PEERS === '1') process.exitCode = 1;
    return;
  }
  const lab = await startLab({ nodes: [] });
  const vms = new LabVms(lab, { cloud: 'aws', gpusOf: () => ({ gpus: 1, gpuModel: 'V100' }) });
  const ec2 = await startFakeEc2({ credentials: CREDS, instanceTypes: { 'p3.2xlarge': { spotPrice: 0.918 } }, boot: (i, ud) => vms.boot(i.instanceId, i.instanceType, i.zone, ud), onTerminate: (i) => vms.terminate(i.instanceId) });
  const pricing = await startFakePricing({ accessKeyId: CREDS.accessKeyId, onDemand: { 'us-east-1': { 'p3.2xlarge': 3.06 } } });
  const rounds: Round[] = [];
  try {
    console.log(`fake EC2 + Price List endpoints; VMs boot as lab nodes; ${ROUNDS} rounds of apply → evict under watch → destroy\n`);
    for (let r = 1; r <= ROUNDS; r++) {
      const dir = mkdtempSync(join(tmpdir(), 'sf-bench-capacity-'));
      const providerConfig = `{ region: us-east-1, endpoint: ${JSON.stringify(ec2.url)}, pricingEndpoint: ${JSON.stringify(pricing.url)}, imageId: ami-0123456789abcdef0, instanceTypes: { p3.2xlarge: { gpuModel: V100, gpus: 1 } } }`;
      writeFileSync(join(dir, 'fleet.yaml'), cloudFleetYaml(lab, { providerConfig }).replace('CLOUD_TYPE', 'aws'));
      const ours = () => ec2.control.instances().filter((i) => i.tags['spotfleet:fleet'] === CLOUD_FLEET && (i.state === 'pending' || i.state === 'running'));
      try {
        const t0 = Date.now();
        const apply = await cli(['apply', '--auto-approve', dir], dir);
        if (apply.code !== 0) throw new Error(`apply failed:\n${apply.stdout}\n${apply.stderr}`);
        // `Acquire complete after 5s300ms`
        const took = /Acquire complete after ((?:\d+(?:ms|[dhms]))+)/.exec(apply.stdout)?.[1] ?? '';
        const unit: Record<string, number> = { d: 86_400, h: 3600, m: 60, s: 1, ms: 0.001 };
        const acquireS = took ? [...took.matchAll(/(\d+)(ms|[dhms])/g)].reduce((sum, x) => sum + Number(x[1]) * (unit[x[2] as string] ?? 0), 0) : NaN;
        const spot = ours()[0];
        if (!spot) throw new Error('apply bought no instance');
        const running = await lineAt(lab, vms.vm(spot.instanceId).name, /start at step 0/);

        const watch = startWatch<MoveLogLine>(dir, { env: ENV, cliIntervals: true, extraArgs: ['--notice-interval', '1s', '--interval', '30s'] });
        try {
          await watch.waitFor((x) => x.msg === 'reconciled', { timeoutMs: 90_000, what: 'the first reconcile' });
          await sleep(1000);
          const from = watch.lines.length;
          const posted = Date.now();
          await vms.metadata(spot.instanceId).control('triggerSpotInterruption');
          const [m] = (await watch.waitFor((x) => x.msg === 'migration complete' && x.address === 'workload.train', { from, timeoutMs: 150_000, what: 'the move' })) as [MoveLogLine];
          const resumed = await lineAt(lab, vms.vm(String(m.to)).name, /resumed from step \d+/);
          rounds.push({ acquireToReadyS: acquireS, applyToRunningS: (running - t0) / 1000, evictionToResumedS: (resumed - posted) / 1000, downtimeS: Number(m.downtimeMs) / 1000, timings: (m.timings ?? {}) });
        } finally {
          await watch.stop(60_000);
        }
        const destroy = await cli(['destroy', '--auto-approve', dir], dir);
        if (destroy.code !== 0) throw new Error(`destroy failed:\n${destroy.stdout}\n${destroy.stderr}`);
        for (let i = 0; i < 50 && ours().length > 0; i++) await sleep(100);
        if (ours().length > 0) throw new Error(`instances left after destroy: ${ours().map((i) => i.instanceId).join(', ')}`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      const x = rounds.at(-1);
      if (x) console.log(`round ${r}: acquire→ready ${x.acquireToReadyS.toFixed(1)} s, apply→running ${x.applyToRunningS.toFixed(1)} s, eviction→resumed ${x.evictionToResumedS.toFixed(1)} s, downtime ${x.downtimeS.toFixed(1)} s, steps ${JSON.stringify(x.timings)}`);
    }
    console.log('');
    report('acquire -> ready (lease is a verified node), mean', mean(rounds.map((x) => x.acquireToReadyS)), 's', '<= 15 s in the lab');
    report('apply -> workload running on the bought VM, mean', mean(rounds.map((x) => x.applyToRunningS)), 's');
    report('eviction -> resumed on a bought on-demand VM, mean', mean(rounds.map((x) => x.evictionToResumedS)), 's', '<= 30 s (the shortest cloud notice)');
    report('eviction -> resumed, max', Math.max(...rounds.map((x) => x.evictionToResumedS)), 's');
    report('downtime of the move, mean', mean(rounds.map((x) => x.downtimeS)), 's');
    for (const step of ['checkpoint', 'acquire', 'stop', 'transfer', 'start']) {
      const v = rounds.map((x) => x.timings[step]).filter((n): n is number => typeof n === 'number');
      if (v.length) report(`  ${step} step of the move, mean`, mean(v) / 1000, 's');
    }
  } finally {
    await ec2.close();
    await pricing.close();
    await vms.close();
    await lab.close();
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.stack ?? e.message : String(e));
  process.exitCode = 1;
});
