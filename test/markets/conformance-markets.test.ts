// The shared provider conformance suite for the market providers without a lab: molt against its
// reference server (capacity and nodes; it has no runtime without runLocally). The aws provider,
// whose bought instances run work, runs the whole suite against lab nodes in
// test/capacity/conformance-aws.test.ts.
import { describeProviderConformance } from '../../src/providers/conformance.js';
import { startMoltServer } from '../../providers/molt/reference-server.js';
import { createMoltProvider } from '../../providers/molt/index.js';
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
