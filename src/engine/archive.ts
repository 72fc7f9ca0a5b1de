// The controller's checkpoint archive: a folder in the state folder that holds a workload's newest
// checkpoint when the node it was on is given back (destroy, or a workload parked to wait for
// capacity), so releasing the lease loses no work and the next apply resumes from it. It is a
// localfs node of its own: any provider whose storage can move checkpoints between it and a node
// (local, sim, molt's local hosts) archives there and restores from there.
import { join } from 'node:path';
import type { NodeInfo } from '../core/types.js';
import { localfsMeta } from '../providers/kit/localfs-storage.js';

/** The archive's pseudo provider and node id, as they appear in plans and checkpoint records. */
export const ARCHIVE_PROVIDER = 'spotfleet-archive';
export const ARCHIVE_NODE = 'spotfleet-archive';

export function archiveNode(stateDir: string): NodeInfo {
  return { id: ARCHIVE_NODE, provider: ARCHIVE_PROVIDER, gpuModel: '', gpus: 0, capacity: 'on-demand', pricePerHour: 0, state: 'ready', meta: localfsMeta(join(stateDir, 'archive')) };
}
