// The cloud e2e story (cloud-e2e.ts) on GCP: the built CLI against the fake Compute Engine REST API
// (through @google-cloud/compute's REST transport), whose VMs boot as lab nodes with the GCE
// metadata fake in each; the eviction is a Spot preemption (`instance/preempted` TRUE) on the VM's
// own metadata server.
import { startFakeGce } from '../fakes/gce.js';
import { startFakeBilling } from '../fakes/gcp-billing.js';
import { LabVms } from '../lab/cloud-vms.js';
import { describeCloudE2e, CLOUD_FLEET } from './cloud-e2e.js';

const TOKEN = 'gce-e2e-token';

describeCloudE2e('GCP (fake Compute Engine)', async (lab) => {
  const vms = new LabVms(lab, { cloud: 'gcp', gpusOf: () => ({ gpus: 1, gpuModel: 'V100' }) });
  const gce = await startFakeGce({
    project: 'spotfleet-e2e',
    tokens: [TOKEN],
    machineTypes: { 'n1-standard-8': { gpus: 1, gpuModel: 'V100' } },
    boot: (i, script) => vms.boot(i.name, i.machineType, i.zone, script).then((a) => ({ networkIP: a.privateIp })),
    onDelete: (i) => vms.terminate(i.name),
  });
  const billing = await startFakeBilling({ tokens: [TOKEN] });
  const ours = () => gce.control.instances().filter((i) => i.labels['spotfleet-fleet'] === CLOUD_FLEET);
  return {
    cloud: 'gcp',
    vms,
    noticeSource: 'gcp',
    onDemandPriceSource: 'Cloud Billing Catalog',
    providerConfig: `{ project: spotfleet-e2e, zones: [us-central1-a, us-central1-b], endpoint: ${JSON.stringify(gce.url)}, image: projects/deeplearning-platform-release/global/images/family/common-cu124, externalIp: false, billingEndpoint: ${JSON.stringify(billing.url)}, machineTypes: { n1-standard-8: { gpuModel: V100, gpus: 1, vcpus: 8, memoryGiB: 30, acceleratorType: nvidia-tesla-v100 } } }`,
    env: { GOOGLE_OAUTH_ACCESS_TOKEN: TOKEN },
    books: async () => ours().map((i) => ({ id: i.name, capacity: i.provisioningModel === 'SPOT' ? 'spot' : 'on-demand', live: !i.deleted && i.status !== 'TERMINATED' })),
    terminatedBySpotfleet: (id) => gce.control.requests.some((r) => r.method === 'DELETE' && r.path.endsWith(`/instances/${id}`) && r.status === 200) && gce.control.instances().find((i) => i.name === id)?.endedBy === 'user',
    stockOut: (zone) => gce.control.noCapacity({ zone, provisioningModel: 'SPOT' }),
    clearStockOuts: () => gce.control.clearCapacityFaults(),
    zoneOf: (id) => gce.control.instances().find((i) => i.name === id)?.zone,
    evict: async (id) => {
      await vms.metadata(id).control('preempt');
    },
    close: async () => {
      await gce.close();
      await billing.close();
      await vms.close();
    },
  };
});
