// The shared provider conformance suite for the aws provider with every capability: capacity from
// the fake EC2 endpoint, and nodes, runtime, storage and notices on the instances it bought, which
// boot as lab nodes (real sshd with the injected host key, real dockerd, the IMDS fake).
import { afterAll } from 'vitest';
import { describeLab } from '../lab/gate.js';
import { startLab, type Lab } from '../lab/lab.js';
import { LabVms } from '../lab/cloud-vms.js';
import { waitUntil, writeLabCheckpoint } from '../lab/fixtures.js';
import { describeProviderConformance } from '../../src/providers/conformance.js';
import { startFakeEc2, type FakeEc2 } from '../fakes/ec2.js';
import { createAwsProvider } from '../../providers/aws/index.js';
import type { NodeAccess, NodeInfo } from '../../src/core/types.js';
import type { Provider } from '../../src/providers/sdk.js';
import { makeCtx } from '../markets/helpers.js';

const CREDS = { accessKeyId: 'AKIDCONFORMANCE', secretAccessKey: 'conformance-secret' };

describeLab('aws provider (fake EC2, bought instances as lab nodes)', () => {
  let lab: Lab | undefined;
  let vms: LabVms | undefined;
  let ec2: FakeEc2 | undefined;
  afterAll(async () => {
    await ec2?.close();
    await vms?.close();
    await lab?.close();
  }, 120_000);

  describeProviderConformance('aws', async () => {
    const l = (lab = await startLab({ nodes: [] }));
    const v = (vms = new LabVms(l, { cloud: 'aws', gpusOf: (t) => ({ gpus: t === 'p3.8xlarge' ? 4 : 1, gpuModel: 'V100' }) }));
    const e = (ec2 = await startFakeEc2({ credentials: CREDS, boot: (i, ud) => v.boot(i.instanceId, i.instanceType, i.zone, ud), onTerminate: (i) => v.terminate(i.instanceId) }));
    const node: NodeAccess = { via: 'ssh', user: 'root', identityFile: l.clientKeyPath, port: 22, runtime: 'docker', address: 'auto', readyTimeoutMs: 60_000, checkpointRoot: '/srv/spotfleet/checkpoints' };
    const provider: Provider = createAwsProvider(
      { region: e.region, endpoint: e.url, imageId: 'ami-00000000000000001', instanceTypes: { 'p3.2xlarge': { gpuModel: 'V100', gpus: 1, onDemandPrice: 3.06 }, 'p3.8xlarge': { gpuModel: 'V100', gpus: 4, onDemandPrice: 12.24 } } },
      makeCtx({ name: 'cloud', fleet: 'conf', env: { AWS_ACCESS_KEY_ID: CREDS.accessKeyId, AWS_SECRET_ACCESS_KEY: CREDS.secretAccessKey }, pools: [{ name: 'spot-v100', capacity: 'spot', gpuModel: 'V100', node }, { name: 'od-v100', capacity: 'on-demand', gpuModel: 'V100', node }] }),
    );
    // Two bought nodes with 4 GPUs each: one to run on, one to transfer to.
    const bought = async (key: string, capacity: 'spot' | 'on-demand'): Promise<NodeInfo> => {
      const lease = await provider.capacity!.acquire({ pool: capacity === 'spot' ? 'spot-v100' : 'od-v100', capacity, gpuModel: 'V100', gpus: 4, idempotencyKey: key, labels: {} });
      await waitUntil(`lease ${lease.id} ready`, async () => (await provider.capacity!.leases()).find((x) => x.id === lease.id && x.node), 60_000);
      return (await provider.nodes!.list()).find((n) => n.id === lease.id)!;
    };
    let main: Promise<NodeInfo> | undefined;
    let other: Promise<NodeInfo> | undefined;
    return {
      provider,
      fleet: 'conf',
      node: () => (main ??= bought('conf-main', 'spot')),
      otherNode: () => (other ??= bought('conf-other', 'on-demand')),
      trainer: { image: l.image, env: {}, readyLog: 'start at step 0', checkpointPath: '/checkpoints' },
      stubborn: { image: l.image, env: {}, command: ['sh', '-c', 'trap "" TERM; echo ready; while true; do sleep 1; done'], readyLog: 'ready' },
      lateHandler: { image: l.image, env: {}, command: ['sh', '-c', "sleep 1; trap 'echo got-usr1' USR1; echo ready; while true; do sleep 0.1; done"] },
      exits: (code) => ({ image: l.image, command: ['sh', '-c', `exit ${code}`], env: {} }),
      writeCheckpoint: async (n, workload) => {
        const name = v.vm(n.id).name;
        writeLabCheckpoint(l, name, workload);
      },
      acquire: { pool: 'spot-v100', capacity: 'spot', gpuModel: 'V100', gpus: 1 },
      stopGraceMs: 10_000,
      teardown: async () => {
        for (const n of [await main, await other]) if (n) await provider.capacity!.release(n.id);
      },
    };
  });
});
