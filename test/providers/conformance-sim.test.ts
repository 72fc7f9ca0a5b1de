// The `sim` provider runs the shared conformance suite on the quickstart's trace slice; its nodes
// are on-demand leases (never preempted by the trace), and a checkpoint also moves to a `local` node.
import { afterAll } from 'vitest';
import { join } from 'node:path';
import { provider as local } from '../../providers/local/index.js';
import { provider as sim } from '../../providers/sim/index.js';
import { describeProviderConformance } from '../../src/providers/conformance.js';
import type { NodeInfo } from '../../src/core/types.js';
import { QUICKSTART, exits, makeCtx, removeTempDirs, stubborn, tempDir, trainer, writeLocalfsCheckpoint } from '../quickstart/harness.js';

afterAll(removeTempDirs);

describeProviderConformance('sim', async () => {
  const root = tempDir();
  const p = await sim.create({ trace: join(QUICKSTART, 'traces'), speed: 60, noticeWindow: '120s' }, makeCtx('market', root));
  const lab = await local.create({ nodes: [{ name: 'od-1', gpuModel: 'V100', gpus: 4, capacity: 'on-demand', pricePerHour: 12.24 }] }, makeCtx('lab', root));
  const lease = async (key: string): Promise<NodeInfo> => {
    const l = await p.capacity!.acquire({ pool: 'od-v100', capacity: 'on-demand', gpuModel: 'V100', gpus: 4, idempotencyKey: key, labels: {} });
    return (await p.nodes!.list()).find((n) => n.id === l.node)!;
  };
  return {
    provider: p,
    fleet: 'test',
    node: () => lease('main'),
    otherNode: async () => (await lab.nodes!.list())[0]!,
    evictableNode: () => lease('victim'),
    cleanupEvictable: (n) => p.capacity!.release(n.id),
    trainer: trainer(),
    stubborn,
    lateHandler: { command: ['sh', '-c', "sleep 0.5; trap 'echo got-usr1' USR1; echo ready; while :; do sleep 0.05; done"], env: {} },
    exits,
    writeCheckpoint: async (node, workload) => {
      writeLocalfsCheckpoint(node, workload);
    },
    acquire: { pool: 'spot-v100', capacity: 'on-demand', gpuModel: 'V100', gpus: 1 },
  };
});
