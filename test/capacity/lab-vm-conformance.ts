// What the conformance suites of the clouds whose bought machines boot as lab VMs share
// (conformance-aws, -gcp, -azure): the two pools that buy them (spot and on-demand V100, nodes
// reached over SSH as root with the lab's key, docker runtime), and the fixture the shared suite
// runs on: two bought 4-GPU nodes (a spot one to run on, an on-demand one to transfer to), the lab
// image as trainer, and checkpoints written into the node folder of the VM behind a node. Each
// cloud's file starts its own fakes and provider around it. Nothing here imports vitest.
import type { Lab } from '../lab/lab.js';
import type { LabVms } from '../lab/cloud-vms.js';
import { waitUntil, writeLabCheckpoint } from '../lab/fixtures.js';
import type { ConformanceFixture } from '../../src/providers/conformance.js';
import type { NodeAccess, NodeInfo } from '../../src/core/types.js';
import type { Provider, ProviderPool } from '../../src/providers/sdk.js';

/** The fleet name every cloud conformance provider is made for. */
export const LAB_VM_FLEET = 'conf';

const QUICK_READY_MS = 10_000;
/**
 * How long a bought lab VM may take to become a node: its boot (up to ~100 s when the lab starts
 * a dockerd or sshd that never answered once more) and then the probes. A lab VM is usually ready
 * in a few seconds.
 */
const READY_MS = 150_000;
/** For `describeProviderConformance`: the setup buys both nodes at once and waits for them. */
export const LAB_VM_SETUP_MS = READY_MS + 60_000;

/** The pools the provider buys for: `spot-v100` and `od-v100`, whose nodes are the lab's VMs. */
export function labVmPools(lab: Lab): ProviderPool[] {
  const node: NodeAccess = { via: 'ssh', user: 'root', identityFile: lab.clientKeyPath, port: 22, runtime: 'docker', address: 'auto', readyTimeoutMs: READY_MS, checkpointRoot: '/srv/spotfleet/checkpoints' };
  return [
    { name: 'spot-v100', capacity: 'spot', gpuModel: 'V100', node },
    { name: 'od-v100', capacity: 'on-demand', gpuModel: 'V100', node },
    // For the never-ready check: a machine there is given up on after 10 s.
    { name: 'spot-v100-quick', capacity: 'spot', gpuModel: 'V100', node: { ...node, readyTimeoutMs: QUICK_READY_MS } },
  ];
}

/**
 * The conformance fixture of a provider (made with `labVmPools`) whose machines `vms` boots. Both
 * nodes are bought here, at once, so the checks' own time limits never include a boot.
 */
export async function labVmFixture(lab: Lab, vms: LabVms, provider: Provider): Promise<ConformanceFixture> {
  // Two bought machines with 4 GPUs each: one to run on, one to transfer to.
  const bought = async (key: string, capacity: 'spot' | 'on-demand'): Promise<NodeInfo> => {
    const lease = await provider.capacity!.acquire({ pool: capacity === 'spot' ? 'spot-v100' : 'od-v100', capacity, gpuModel: 'V100', gpus: 4, idempotencyKey: key, labels: {} });
    let seen = 'not listed';
    await waitUntil(
      `lease ${lease.id} ready`,
      async () => {
        const l = (await provider.capacity!.leases()).find((x) => x.id === lease.id);
        const n = l ? (await provider.nodes!.list()).find((x) => x.id === lease.id) : undefined;
        seen = l ? `lease ${l.state}${l.error ? ` (${l.error})` : ''}, node ${n ? `${n.state}${n.meta?.notReady ? `: ${n.meta.notReady}` : ''}` : 'not listed'}` : 'not listed';
        return l?.node;
      },
      READY_MS,
      () => `${seen}; ${vms.describe(lease.id)}`,
    );
    return (await provider.nodes!.list()).find((n) => n.id === lease.id)!;
  };
  const [main, other] = await Promise.all([bought('conf-main', 'spot'), bought('conf-other', 'on-demand')]);
  return {
    provider,
    fleet: LAB_VM_FLEET,
    node: () => Promise.resolve(main),
    otherNode: () => Promise.resolve(other),
    trainer: { image: lab.image, env: {}, readyLog: 'start at step 0', checkpointPath: '/checkpoints' },
    stubborn: { image: lab.image, env: {}, command: ['sh', '-c', 'trap "" TERM; echo ready; while true; do sleep 1; done'], readyLog: 'ready' },
    lateHandler: { image: lab.image, env: {}, command: ['sh', '-c', "sleep 1; trap 'echo got-usr1' USR1; echo ready; while true; do sleep 0.1; done"] },
    exits: (code) => ({ image: lab.image, command: ['sh', '-c', `exit ${code}`], env: {} }),
    writeCheckpoint: async (n, workload) => {
      writeLabCheckpoint(lab, vms.vm(n.id).name, workload);
    },
    acquire: { pool: 'spot-v100', capacity: 'spot', gpuModel: 'V100', gpus: 1 },
    // The next VM boots without its sshd; the cloud's delete ends the lab machine behind it.
    neverReady: {
      arrange: () => vms.failNext('never-boots'),
      acquire: { pool: 'spot-v100-quick', capacity: 'spot', gpuModel: 'V100', gpus: 1 },
      readyTimeoutMs: QUICK_READY_MS,
      stillPaid: async (id) => {
        const until = Date.now() + 30_000;
        while (vms.running().some((v) => v.id === id) && Date.now() < until) await new Promise((r) => setTimeout(r, 200));
        return vms.running().some((v) => v.id === id);
      },
    },
    stopGraceMs: 10_000,
    teardown: async () => {
      for (const n of [main, other]) await provider.capacity!.release(n.id);
    },
  };
}
