// The GCP side of the cloud e2e story (cloud-e2e.ts): the fake Compute Engine REST API (through
// @google-cloud/compute's REST transport), whose VMs boot as lab nodes with the GCE metadata fake
// in each. The eviction is a Spot preemption either on the VM's own metadata server
// (`instance/preempted` TRUE, read over SSH) or, with `preemptionOperations`, only in the project's
// operations list (`compute.instances.preempted`), the fleet-level source: one listing for all VMs.
import { startFakeGce } from '../fakes/gce.js';
import { startFakeBilling } from '../fakes/gcp-billing.js';
import { startFakeGceOperations } from '../fakes/gce-operations.js';
import { LabVms } from '../lab/cloud-vms.js';
import type { Lab } from '../lab/lab.js';
import { CLOUD_FLEET, type CloudHarness } from './cloud-e2e.js';

const TOKEN = 'gce-e2e-token';
const PROJECT = 'spotfleet-e2e';
const ZONES = ['us-central1-a', 'us-central1-b'];

export async function gcpHarness(lab: Lab, o: { preemptionOperations?: boolean } = {}): Promise<CloudHarness> {
  const vms = new LabVms(lab, { cloud: 'gcp', gpusOf: () => ({ gpus: 1, gpuModel: 'V100' }) });
  const gce = await startFakeGce({
    project: PROJECT,
    tokens: [TOKEN],
    machineTypes: { 'n1-standard-8': { gpus: 1, gpuModel: 'V100' } },
    boot: (i, script) => vms.boot(i.name, i.machineType, i.zone, script).then((a) => ({ networkIP: a.privateIp })),
    onDelete: (i) => vms.terminate(i.name),
  });
  const billing = await startFakeBilling({ tokens: [TOKEN] });
  const ops = o.preemptionOperations ? await startFakeGceOperations({ token: TOKEN, zones: ZONES }) : undefined;
  const ours = () => gce.control.instances().filter((i) => i.labels['spotfleet-fleet'] === CLOUD_FLEET);
  const fleetSource = ops ? `, preemptionOperations: { project: ${PROJECT}, endpoint: ${JSON.stringify(ops.url)}, intervalMs: 500 }` : '';
  return {
    cloud: 'gcp',
    vms,
    noticeSource: 'gcp',
    onDemandPriceSource: 'Cloud Billing Catalog',
    providerConfig: `{ project: ${PROJECT}, zones: [${ZONES.join(', ')}], endpoint: ${JSON.stringify(gce.url)}, image: projects/deeplearning-platform-release/global/images/family/common-cu124, externalIp: false, billingEndpoint: ${JSON.stringify(billing.url)}, machineTypes: { n1-standard-8: { gpuModel: V100, gpus: 1, vcpus: 8, memoryGiB: 30, acceleratorType: nvidia-tesla-v100 } }${fleetSource} }`,
    env: { GOOGLE_OAUTH_ACCESS_TOKEN: TOKEN },
    books: async () => ours().map((i) => ({ id: i.name, capacity: i.provisioningModel === 'SPOT' ? 'spot' : 'on-demand', live: !i.deleted && i.status !== 'TERMINATED' })),
    terminatedBySpotfleet: (id) => gce.control.requests.some((r) => r.method === 'DELETE' && r.path.endsWith(`/instances/${id}`) && r.status === 200) && gce.control.instances().find((i) => i.name === id)?.endedBy === 'user',
    stockOut: (zone) => gce.control.noCapacity({ zone, provisioningModel: 'SPOT' }),
    clearStockOuts: () => gce.control.clearCapacityFaults(),
    zoneOf: (id) => gce.control.instances().find((i) => i.name === id)?.zone,
    evict: async (id) => {
      if (!ops) return vms.metadata(id).control('preempt');
      // Only the operations list says so: the VM's own metadata server does not.
      const zone = gce.control.instances().find((i) => i.name === id)?.zone;
      if (!zone) throw new Error(`no GCE instance ${id}`);
      ops.control.preempt(PROJECT, zone, id);
    },
    close: async () => {
      await gce.close();
      await billing.close();
      await ops?.close();
      await vms.close();
    },
  };
}
