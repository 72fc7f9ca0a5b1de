// The shared provider conformance suite for the aws provider with every capability: capacity from
// the fake EC2 endpoint, and nodes, runtime, storage and notices on the instances it bought, which
// boot as lab nodes (real sshd with the injected host key, real dockerd, the IMDS fake).
import { afterAll } from 'vitest';
import { describeLab } from '../lab/gate.js';
import { startLab, type Lab } from '../lab/lab.js';
import { LabVms } from '../lab/cloud-vms.js';
import { describeProviderConformance } from '../../src/providers/conformance.js';
import { startFakeEc2, type FakeEc2 } from '../fakes/ec2.js';
import { createAwsProvider } from '../../providers/aws/index.js';
import type { Provider } from '../../src/providers/sdk.js';
import { makeCtx } from '../markets/helpers.js';
import { LAB_VM_FLEET, LAB_VM_SETUP_MS, labVmFixture, labVmPools } from './lab-vm-conformance.js';

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
    const provider: Provider = createAwsProvider(
      { region: e.region, endpoint: e.url, imageId: 'ami-00000000000000001', instanceTypes: { 'p3.2xlarge': { gpuModel: 'V100', gpus: 1, onDemandPrice: 3.06 }, 'p3.8xlarge': { gpuModel: 'V100', gpus: 4, onDemandPrice: 12.24 } } },
      makeCtx({ name: 'cloud', fleet: LAB_VM_FLEET, env: { AWS_ACCESS_KEY_ID: CREDS.accessKeyId, AWS_SECRET_ACCESS_KEY: CREDS.secretAccessKey }, pools: labVmPools(l) }),
    );
    return labVmFixture(l, v, provider);
  }, { setupTimeoutMs: LAB_VM_SETUP_MS });
});
