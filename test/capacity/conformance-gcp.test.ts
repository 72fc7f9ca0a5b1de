// The shared provider conformance suite for the gcp provider with every capability: capacity from
// the fake Compute Engine REST API (over HTTP, through @google-cloud/compute), and nodes, runtime,
// storage and notices on the VMs it created, which boot as lab nodes (real sshd with the injected
// host key, real dockerd, the GCE metadata fake).
import { afterAll } from 'vitest';
import { describeLab } from '../lab/gate.js';
import { startLab, type Lab } from '../lab/lab.js';
import { LabVms } from '../lab/cloud-vms.js';
import { waitUntil, writeLabCheckpoint } from '../lab/fixtures.js';
import { describeProviderConformance } from '../../src/providers/conformance.js';
import { startFakeGce, type FakeGce } from '../fakes/gce.js';
import { startFakeBilling, type FakeBilling } from '../fakes/gcp-billing.js';
import { createGcpProvider } from '../../providers/gcp/index.js';
import type { NodeAccess, NodeInfo } from '../../src/core/types.js';
import type { Provider } from '../../src/providers/sdk.js';
import { makeCtx } from '../markets/helpers.js';

const TOKEN = 'gce-conformance-token';

describeLab('gcp provider (fake Compute Engine, created VMs as lab nodes)', () => {
  let lab: Lab | undefined;
  let vms: LabVms | undefined;
  let gce: FakeGce | undefined;
  let billing: FakeBilling | undefined;
  afterAll(async () => {
    await gce?.close();
    await billing?.close();
    await vms?.close();
    await lab?.close();
  }, 120_000);

  describeProviderConformance('gcp', async () => {
    const l = (lab = await startLab({ nodes: [] }));
    const v = (vms = new LabVms(l, { cloud: 'gcp', gpusOf: () => ({ gpus: 4, gpuModel: 'V100' }) }));
    const g = (gce = await startFakeGce({
      project: 'spotfleet-conf',
      tokens: [TOKEN],
      machineTypes: { 'n1-standard-32': { gpus: 4, gpuModel: 'V100' } },
      boot: (i, script) => v.boot(i.name, i.machineType, i.zone, script).then((a) => ({ networkIP: a.privateIp })),
      onDelete: (i) => v.terminate(i.name),
    }));
    const b = (billing = await startFakeBilling({ tokens: [TOKEN] }));
    const node: NodeAccess = { via: 'ssh', user: 'root', identityFile: l.clientKeyPath, port: 22, runtime: 'docker', address: 'auto', readyTimeoutMs: 60_000, checkpointRoot: '/srv/spotfleet/checkpoints' };
    const provider: Provider = await createGcpProvider(
      {
        project: 'spotfleet-conf',
        zones: ['us-central1-a', 'us-central1-b'],
        endpoint: g.url,
        image: 'projects/deeplearning-platform-release/global/images/family/common-cu124',
        externalIp: false,
        billingEndpoint: b.url,
        machineTypes: { 'n1-standard-32': { gpuModel: 'V100', gpus: 4, vcpus: 32, memoryGiB: 120, acceleratorType: 'nvidia-tesla-v100' } },
      },
      makeCtx({ name: 'cloud', fleet: 'conf', env: { GOOGLE_OAUTH_ACCESS_TOKEN: TOKEN }, pools: [{ name: 'spot-v100', capacity: 'spot', gpuModel: 'V100', node }, { name: 'od-v100', capacity: 'on-demand', gpuModel: 'V100', node }] }),
    );
    // Two created VMs with 4 GPUs each: one to run on, one to transfer to.
    const created = async (key: string, capacity: 'spot' | 'on-demand'): Promise<NodeInfo> => {
      const lease = await provider.capacity!.acquire({ pool: capacity === 'spot' ? 'spot-v100' : 'od-v100', capacity, gpuModel: 'V100', gpus: 4, idempotencyKey: key, labels: {} });
      await waitUntil(`lease ${lease.id} ready`, async () => (await provider.capacity!.leases()).find((x) => x.id === lease.id && x.node), 60_000);
      return (await provider.nodes!.list()).find((n) => n.id === lease.id)!;
    };
    let main: Promise<NodeInfo> | undefined;
    let other: Promise<NodeInfo> | undefined;
    return {
      provider,
      fleet: 'conf',
      node: () => (main ??= created('conf-main', 'spot')),
      otherNode: () => (other ??= created('conf-other', 'on-demand')),
      trainer: { image: l.image, env: {}, readyLog: 'start at step 0', checkpointPath: '/checkpoints' },
      stubborn: { image: l.image, env: {}, command: ['sh', '-c', 'trap "" TERM; echo ready; while true; do sleep 1; done'], readyLog: 'ready' },
      lateHandler: { image: l.image, env: {}, command: ['sh', '-c', "sleep 1; trap 'echo got-usr1' USR1; echo ready; while true; do sleep 0.1; done"] },
      exits: (code) => ({ image: l.image, command: ['sh', '-c', `exit ${code}`], env: {} }),
      writeCheckpoint: async (n, workload) => {
        writeLabCheckpoint(l, v.vm(n.id).name, workload);
      },
      acquire: { pool: 'spot-v100', capacity: 'spot', gpuModel: 'V100', gpus: 1 },
      stopGraceMs: 10_000,
      teardown: async () => {
        for (const n of [await main, await other]) if (n) await provider.capacity!.release(n.id);
      },
    };
  });
});
