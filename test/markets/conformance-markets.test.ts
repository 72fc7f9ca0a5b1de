// The shared provider conformance suite for the market providers: molt against its reference
// server, and aws (EC2 capacity only) against the fake EC2 endpoint. Neither has a runtime, so
// the suite checks their capacity and nodes capabilities.
import { describeProviderConformance } from '../../src/providers/conformance.js';
import { startMoltServer } from '../../src/fakes/molt-server.js';
import { startFakeEc2 } from '../../src/fakes/ec2.js';
import { createMoltProvider } from '../../providers/molt/index.js';
import { createAwsProvider } from '../../providers/aws/index.js';
import { makeCtx } from './helpers.js';

// Neither provider runs workloads; the suite wants a trainer all the same, and never starts it.
const noRuntime = { command: ['true'], env: {} };

describeProviderConformance('molt', async () => {
  // Fixed offers make the acquires independent of what the seeded generator offers at this hour.
  const server = await startMoltServer({
    token: 'conformance-token',
    seed: 11,
    offers: [
      { id: 'of-conf-a100', gpuModel: 'A100', minGpus: 1, maxGpus: 8, pricePerGpuHour: 0.5, zone: 'molt-east-1' },
      { id: 'of-conf-h100', gpuModel: 'H100', minGpus: 1, maxGpus: 8, pricePerGpuHour: 1.0, zone: 'molt-east-1' },
    ],
  });
  const provider = createMoltProvider({ url: server.url, retryBaseMs: 5 }, makeCtx({ name: 'market', fleet: 'conf', env: { MOLT_TOKEN: 'conformance-token' } }));
  // A leased node for the node-level checks (notices.poll).
  const node = async () => {
    const l = await provider.capacity!.acquire({ pool: 'spot-h100', capacity: 'spot', gpuModel: 'H100', gpus: 1, durationHours: 1, idempotencyKey: 'conformance-node', labels: {} });
    return (await provider.nodes!.list()).find((n) => n.id === l.node)!;
  };
  return {
    provider,
    fleet: 'conf',
    node,
    trainer: noRuntime,
    acquire: { pool: 'spot-a100', capacity: 'spot', gpuModel: 'A100', gpus: 1, maxPricePerGpuHour: 3, durationHours: 1 },
    teardown: () => server.close(),
  };
});

describeProviderConformance('aws (EC2 capacity)', async () => {
  const creds = { accessKeyId: 'AKIDCONFORMANCE', secretAccessKey: 'conformance-secret' };
  const ec2 = await startFakeEc2({ credentials: creds });
  const provider = createAwsProvider(
    { region: ec2.region, endpoint: ec2.url, imageId: 'ami-00000000000000001', instanceTypes: { 'p3.2xlarge': { gpuModel: 'V100', gpus: 1, onDemandPrice: 3.06 }, 'p3.8xlarge': { gpuModel: 'V100', gpus: 4, onDemandPrice: 12.24 } } },
    makeCtx({ name: 'cloud', fleet: 'conf', env: { AWS_ACCESS_KEY_ID: creds.accessKeyId, AWS_SECRET_ACCESS_KEY: creds.secretAccessKey } }),
  );
  return {
    provider,
    fleet: 'conf',
    trainer: noRuntime,
    acquire: { pool: 'spot-v100', capacity: 'spot', gpuModel: 'V100', gpus: 1 },
    teardown: () => ec2.close(),
  };
});
