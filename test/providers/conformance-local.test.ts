// The `local` provider runs the shared conformance suite with the quickstart trainer as workload.
import { afterAll } from 'vitest';
import { provider as local } from '../../providers/local/index.js';
import { describeProviderConformance } from '../../src/providers/conformance.js';
import { exits, makeCtx, removeTempDirs, stubborn, tempDir, trainer, writeLocalfsCheckpoint } from '../quickstart/harness.js';

afterAll(removeTempDirs);

describeProviderConformance('local', async () => {
  const root = tempDir();
  const p = await local.create(
    {
      nodes: [
        { name: 'n1', gpuModel: 'V100', gpus: 4, capacity: 'on-demand', zone: 'lab', pricePerHour: 12.24 },
        { name: 'n2', gpuModel: 'V100', gpus: 4, capacity: 'on-demand', zone: 'lab', pricePerHour: 12.24 },
        { name: 'spot-1', gpuModel: 'V100', gpus: 1, capacity: 'spot', pricePerHour: 0.9 },
      ],
    },
    makeCtx('lab', root),
  );
  const byId = async (id: string) => (await p.nodes!.list()).find((n) => n.id === id)!;
  return {
    provider: p,
    fleet: 'test',
    node: () => byId('n1'),
    otherNode: () => byId('n2'),
    evictableNode: () => byId('spot-1'),
    cleanupEvictable: async (n) => p.simulation!.restore!(n),
    trainer: trainer(),
    stubborn,
    lateHandler: { command: ['sh', '-c', "sleep 0.5; trap 'echo got-usr1' USR1; echo ready; while :; do sleep 0.05; done"], env: {} },
    exits,
    writeCheckpoint: async (node, workload) => {
      writeLocalfsCheckpoint(node, workload);
    },
  };
});
