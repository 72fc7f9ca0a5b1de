// The fleet of the cloud e2e tests and the capacity benchmark: a spot pool and an on-demand pool of
// one cloud provider (the type is filled in for CLOUD_TYPE), reached over SSH as the lab's root
// with the lab's client key, and one lab trainer. Nothing here imports vitest.
import type { Lab } from '../lab/lab.js';

export const CLOUD_FLEET = 'cloud-e2e';
export const CLOUD_GPU = 'V100';

/** The fleet: one spot pool and one on-demand pool of the cloud provider, one trainer workload. */
export function cloudFleetYaml(lab: Lab, h: { providerConfig: string }, o: { readyTimeout?: string } = {}): string {
  const node = `{ via: ssh, user: root, identityFile: ${JSON.stringify(lab.clientKeyPath)}, runtime: docker, readyTimeout: ${o.readyTimeout ?? '90s'}, checkpointRoot: /srv/spotfleet/checkpoints }`;
  return `apiVersion: spotfleet.dev/v1
kind: Fleet
metadata: { name: ${CLOUD_FLEET} }
providers:
  cloud:
    type: CLOUD_TYPE
    config: ${h.providerConfig}
pools:
  - name: spot
    provider: cloud
    capacity: spot
    gpuModel: ${CLOUD_GPU}
    maxPricePerHour: 2.5
    node: ${node}
  - name: od
    provider: cloud
    capacity: on-demand
    gpuModel: ${CLOUD_GPU}
    node: ${node}
defaults:
  checkpoint: { path: /checkpoints, signal: SIGUSR1, stopGrace: 10s, resumeEnv: RESUME_FROM_CHECKPOINT, marker: COMPLETE }
workloads:
  - name: train
    image: ${JSON.stringify(lab.image)}
    gpus: 1
    gpuModel: ${CLOUD_GPU}
    class: training
    capacity: spot
    expectedDuration: 8h
    pools: [spot, od]
    fallback: { to: on-demand, revertToSpot: false, minDwell: 30m }
`;
}

