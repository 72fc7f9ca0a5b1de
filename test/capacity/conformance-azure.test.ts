// The shared provider conformance suite for the azure provider with every capability: capacity from
// the fake Azure Resource Manager (HTTPS with a self-signed certificate this process trusts, service
// principal sign-in at its token endpoint, through @azure/arm-compute) and the Retail Prices fake,
// and nodes, runtime, storage and notices on the VMs it created, which boot as lab nodes (real sshd
// with the injected host key, real dockerd, the Scheduled Events fake).
import { rmSync } from 'node:fs';
import { afterAll } from 'vitest';
import { describeLab } from '../lab/gate.js';
import { startLab, type Lab } from '../lab/lab.js';
import { LabVms } from '../lab/cloud-vms.js';
import { selfSignedCert, trustInProcess, type TestCert } from '../lab/tls.js';
import { describeProviderConformance } from '../../src/providers/conformance.js';
import { startFakeArm, type FakeArm } from '../fakes/arm.js';
import { startFakeAzurePrices, type FakeAzurePrices } from '../fakes/azure-prices.js';
import { createAzureProvider } from '../../providers/azure/index.js';
import type { Provider } from '../../src/providers/sdk.js';
import { makeCtx } from '../markets/helpers.js';
import { LAB_VM_FLEET, LAB_VM_SETUP_MS, labVmFixture, labVmPools } from './lab-vm-conformance.js';

describeLab('azure provider (fake Resource Manager, created VMs as lab nodes)', () => {
  let lab: Lab | undefined;
  let vms: LabVms | undefined;
  let arm: FakeArm | undefined;
  let prices: FakeAzurePrices | undefined;
  let tls: TestCert | undefined;
  let untrust: (() => void) | undefined;
  afterAll(async () => {
    await arm?.close();
    await prices?.close();
    await vms?.close();
    await lab?.close();
    untrust?.();
    if (tls) rmSync(tls.dir, { recursive: true, force: true });
  }, 120_000);

  describeProviderConformance('azure', async () => {
    const l = (lab = await startLab({ nodes: [] }));
    const cert = (tls = selfSignedCert());
    untrust = trustInProcess(cert.cert);
    const v = (vms = new LabVms(l, { cloud: 'azure', gpusOf: () => ({ gpus: 4, gpuModel: 'V100' }) }));
    const a = (arm = await startFakeArm({
      tls: cert,
      clients: { 'spotfleet-conf-app': 'conf-client-secret' },
      vmSizes: { Standard_NC24s_v3: { gpus: 4, gpuModel: 'V100' } },
      boot: (vm, script) => v.boot(vm.name, vm.vmSize, vm.zones?.[0], script),
      onDelete: (vm) => v.terminate(vm.name),
    }));
    const pr = (prices = await startFakeAzurePrices({ prices: { eastus: { Standard_NC24s_v3: { payg: 12.24, spot: 2.448 } } } }));
    const provider: Provider = await createAzureProvider(
      {
        subscriptionId: a.subscriptionId,
        resourceGroup: a.resourceGroup,
        location: 'eastus',
        zones: ['1', '2'],
        endpoint: a.url,
        authorityHost: a.authorityHost,
        subnetId: `/subscriptions/${a.subscriptionId}/resourceGroups/${a.resourceGroup}/providers/Microsoft.Network/virtualNetworks/spotfleet/subnets/default`,
        publicIp: false,
        image: 'microsoft-dsvm:ubuntu-hpc:2204:latest',
        pricesEndpoint: pr.url,
        vmSizes: { Standard_NC24s_v3: { gpuModel: 'V100', gpus: 4 } },
      },
      makeCtx({ name: 'cloud', fleet: LAB_VM_FLEET, env: { AZURE_TENANT_ID: a.tenantId, AZURE_CLIENT_ID: 'spotfleet-conf-app', AZURE_CLIENT_SECRET: 'conf-client-secret' }, pools: labVmPools(l) }),
    );
    return labVmFixture(l, v, provider);
  }, { setupTimeoutMs: LAB_VM_SETUP_MS });
});
