// The shared provider conformance suite for the gcp provider with every capability: capacity from
// the fake Compute Engine REST API (over HTTP, through @google-cloud/compute), and nodes, runtime,
// storage and notices on the VMs it created, which boot as lab nodes (real sshd with the injected
// host key, real dockerd, the GCE metadata fake).
import { afterAll } from 'vitest';
import { describeLab } from '../lab/gate.js';
import { startLab, type Lab } from '../lab/lab.js';
import { LabVms } from '../lab/cloud-vms.js';
import { describeProviderConformance } from '../../src/providers/conformance.js';
import { startFakeGce, type FakeGce } from '../fakes/gce.js';
import { startFakeBilling, type FakeBilling } from '../fakes/gcp-billing.js';
import { createGcpProvider } from '../../providers/gcp/index.js';
import type { Provider } from '../../src/providers/sdk.js';
import { makeCtx } from '../markets/helpers.js';
import { LAB_VM_FLEET, LAB_VM_SETUP_MS, labVmFixture, labVmPools } from './lab-vm-conformance.js';

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
      makeCtx({ name: 'cloud', fleet: LAB_VM_FLEET, env: { GOOGLE_OAUTH_ACCESS_TOKEN: TOKEN }, pools: labVmPools(l) }),
    );
    return labVmFixture(l, v, provider);
  }, { setupTimeoutMs: LAB_VM_SETUP_MS });
});
