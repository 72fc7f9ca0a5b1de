// The cloud e2e story (cloud-e2e.ts) on AWS: the built CLI against the fake EC2 endpoint (real SDK
// v3, SigV4 checked), whose launches boot as lab nodes with the IMDSv2 fake in each; the eviction
// is a spot interruption notice posted on the spot VM's own IMDS.
import { startFakeEc2 } from '../fakes/ec2.js';
import { startFakePricing } from '../fakes/aws-pricing.js';
import { LabVms } from '../lab/cloud-vms.js';
import { describeCloudE2e, CLOUD_FLEET } from './cloud-e2e.js';

const CREDS = { accessKeyId: 'AKIDCLOUDE2E', secretAccessKey: 'cloud-e2e-secret' };

describeCloudE2e('AWS (fake EC2)', async (lab) => {
  const vms = new LabVms(lab, { cloud: 'aws', gpusOf: () => ({ gpus: 1, gpuModel: 'V100' }) });
  const ec2 = await startFakeEc2({
    credentials: CREDS,
    instanceTypes: { 'p3.2xlarge': { spotPrice: 0.918 } },
    boot: (i, userData) => vms.boot(i.instanceId, i.instanceType, i.zone, userData),
    onTerminate: (i) => vms.terminate(i.instanceId),
  });
  const pricing = await startFakePricing({ accessKeyId: CREDS.accessKeyId, onDemand: { 'us-east-1': { 'p3.2xlarge': 3.06 } } });
  const ours = () => ec2.control.instances().filter((i) => i.tags['spotfleet:fleet'] === CLOUD_FLEET);
  return {
    cloud: 'aws',
    vms,
    noticeSource: 'aws',
    onDemandPriceSource: 'AWS Price List API',
    providerConfig: `{ region: us-east-1, endpoint: ${JSON.stringify(ec2.url)}, imageId: ami-0123456789abcdef0, pricingEndpoint: ${JSON.stringify(pricing.url)}, instanceTypes: { p3.2xlarge: { gpuModel: V100, gpus: 1 } } }`,
    env: { AWS_ACCESS_KEY_ID: CREDS.accessKeyId, AWS_SECRET_ACCESS_KEY: CREDS.secretAccessKey },
    books: async () => ours().map((i) => ({ id: i.instanceId, capacity: i.lifecycle === 'spot' ? 'spot' : 'on-demand', live: i.state === 'pending' || i.state === 'running' })),
    terminatedBySpotfleet: (id) => ec2.control.requests.some((r) => r.action === 'TerminateInstances' && r.status === 200 && Object.entries(r.params).some(([k, v]) => k.startsWith('InstanceId.') && v === id)),
    stockOut: (zone) => ec2.control.noCapacity({ zone, market: 'spot' }),
    clearStockOuts: () => ec2.control.clearCapacityFaults(),
    zoneOf: (id) => ec2.control.instances().find((i) => i.instanceId === id)?.zone,
    evict: async (id) => {
      await vms.metadata(id).control('triggerSpotInterruption');
    },
    close: async () => {
      await ec2.close();
      await pricing.close();
      await vms.close();
    },
  };
});
