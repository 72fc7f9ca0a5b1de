// The cloud e2e story (cloud-e2e.ts) on Azure: the built CLI against the fake Azure Resource
// Manager (HTTPS, a self-signed certificate the CLI trusts through NODE_EXTRA_CA_CERTS; service
// principal sign-in at its token endpoint), through @azure/arm-compute, whose VMs boot as lab nodes
// with the Scheduled Events fake in each; the eviction is a Preempt event naming the Spot VM.
import { rmSync } from 'node:fs';
import { startFakeArm } from '../fakes/arm.js';
import { startFakeAzurePrices } from '../fakes/azure-prices.js';
import { LabVms } from '../lab/cloud-vms.js';
import { selfSignedCert } from '../lab/tls.js';
import { describeCloudE2e, CLOUD_FLEET } from './cloud-e2e.js';

describeCloudE2e('Azure (fake Resource Manager)', async (lab) => {
  const tls = selfSignedCert();
  const vms = new LabVms(lab, { cloud: 'azure', gpusOf: () => ({ gpus: 1, gpuModel: 'V100' }) });
  const arm = await startFakeArm({
    tls,
    clients: { 'spotfleet-e2e-app': 'e2e-client-secret' },
    vmSizes: { Standard_NC6s_v3: { gpus: 1, gpuModel: 'V100' } },
    boot: (v, script) => vms.boot(v.name, v.vmSize, v.zones?.[0], script),
    onDelete: (v) => vms.terminate(v.name),
  });
  const prices = await startFakeAzurePrices({ prices: { eastus: { Standard_NC6s_v3: { payg: 3.06, spot: 0.612 } } } });
  const ours = () => arm.control.vms().filter((v) => v.tags['spotfleet-fleet'] === CLOUD_FLEET);
  const subnet = `/subscriptions/${arm.subscriptionId}/resourceGroups/${arm.resourceGroup}/providers/Microsoft.Network/virtualNetworks/spotfleet/subnets/default`;
  return {
    cloud: 'azure',
    vms,
    noticeSource: 'azure',
    onDemandPriceSource: 'Azure Retail Prices API',
    providerConfig: `{ subscriptionId: ${arm.subscriptionId}, resourceGroup: ${arm.resourceGroup}, location: eastus, zones: ["1", "2"], endpoint: ${JSON.stringify(arm.url)}, authorityHost: ${JSON.stringify(arm.authorityHost)}, subnetId: ${subnet}, publicIp: false, image: "microsoft-dsvm:ubuntu-hpc:2204:latest", pricesEndpoint: ${JSON.stringify(prices.url)}, vmSizes: { Standard_NC6s_v3: { gpuModel: V100, gpus: 1 } } }`,
    env: { AZURE_TENANT_ID: arm.tenantId, AZURE_CLIENT_ID: 'spotfleet-e2e-app', AZURE_CLIENT_SECRET: 'e2e-client-secret', NODE_EXTRA_CA_CERTS: tls.certFile },
    books: async () => ours().map((v) => ({ id: v.name, capacity: v.priority === 'Spot' ? 'spot' : 'on-demand', live: !v.deleted && v.provisioningState !== 'Failed' })),
    terminatedBySpotfleet: (id) => arm.control.vms().find((v) => v.name === id)?.endedBy === 'user',
    stockOut: (zone) => arm.control.noCapacity({ zone, priority: 'Spot', code: 'ZonalAllocationFailed' }),
    clearStockOuts: () => arm.control.clearCapacityFaults(),
    zoneOf: (id) => arm.control.vms().find((v) => v.name === id)?.zones?.[0],
    evict: async (id) => {
      await vms.metadata(id).control('addEvent', { EventType: 'Preempt', Resources: [id] });
    },
    close: async () => {
      await arm.close();
      await prices.close();
      await vms.close();
      rmSync(tls.dir, { recursive: true, force: true });
    },
  };
});
