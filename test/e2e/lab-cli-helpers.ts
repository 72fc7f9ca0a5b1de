// Helpers for the lab e2e suites (lab-cli, lab-warnings, lab-transfer-progress): a fleet file for lab nodes with the `docker`
// provider (each engine reached over the node's verified SSH connection, host keys from the lab's
// known_hosts, the metadata URL left at the cloud default so notices are read by curl ON the node),
// and what a user would look at on a node: `docker ps` with spotfleet's labels, and container logs;
// a workload's checkpoint folder seeded with weights; and the teardown every lab suite runs in its
// afterAll (watch stopped by PID, the fleet destroyed, the fakes and the lab stopped).
// Nothing here imports vitest.
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Lab, LabCloud } from '../lab/lab.js';
import { labTransfer, type CloudFake } from '../lab/fixtures.js';
import { describeRun, runCli } from './crash-helpers.js';
import type { WatchProcess } from './watch-process.js';

/** One lab node in the fleet: spot nodes carry a cloud (their notices), on-demand ones do not. */
export interface LabFleetNode {
  name: string;
  capacity: 'spot' | 'on-demand';
  cloud?: LabCloud;
  /** USD per hour for the whole node. */
  pricePerHour: number;
  /**
   * GPU count written into the config. nvidia-smi over SSH decides at run time; the count is
   * written anyway because `validate` sizes pools from `config.nodes[].gpus` and, without it,
   * reports every GPU workload as fitting no pool (see the suite's header).
   */
  gpus: number;
  /** Azure: the VM name the fake lists in an event's Resources. */
  vmName?: string;
}

/** One workload: the lab trainer image, pinned to one spot pool with on-demand as the fallback. */
export interface LabFleetWorkload {
  name: string;
  /** The spot pool it starts in (see `poolOf`). */
  spotPool: string;
}

export const GPU_MODEL = 'H100';
export const FLEET_NAME = 'lab-e2e';

/** The spot pool of a spot node: one pool per node (its zone), so each workload has a known home. */
export function poolOf(node: string): string {
  return `spot-${node}`;
}

/** The zone of a lab node in the fleet (each node its own zone). */
export function zoneOf(node: string): string {
  return `lab-${node}`;
}

/**
 * The fleet YAML: one `docker` provider over all nodes, a spot pool per spot node, one on-demand
 * pool, and workloads that may run in their spot pool or on on-demand (the fallback).
 */
export function labFleetYaml(lab: Lab, nodes: LabFleetNode[], workloads: LabFleetWorkload[], o: { stopGrace?: string } = {}): string {
  const t = labTransfer(lab);
  const q = (s: string): string => JSON.stringify(s);
  const nodeYaml = nodes
    .map((n) => {
      const ln = lab.node(n.name);
      const lines = [
        `        - name: ${n.name}`,
        `          engine: { ssh: true, socketPath: ${q(ln.dockerSocket)} }`,
        `          ssh: { host: ${q(ln.address)}, port: ${ln.port}, user: root, identityFile: ${q(lab.clientKeyPath)}, knownHostsFile: ${q(lab.knownHostsPath)} }`,
        `          capacity: ${n.capacity}`,
        `          zone: ${zoneOf(n.name)}`,
        `          pricePerHour: ${n.pricePerHour}`,
        `          gpuModel: ${GPU_MODEL}`,
        `          gpus: ${n.gpus}`,
      ];
      // No metadataUrl: the default (169.254.169.254) is what curl reaches on the node itself, inside its own netns.
      if (n.cloud) lines.push(`          cloud: ${n.cloud}`);
      if (n.vmName) lines.push(`          vmName: ${q(n.vmName)}`);
      return lines.join('\n');
    })
    .join('\n');
  const pools = [
    ...nodes.filter((n) => n.capacity === 'spot').map((n) => `  - { name: ${poolOf(n.name)}, provider: lab, capacity: spot, gpuModel: ${GPU_MODEL}, zones: [${zoneOf(n.name)}], maxPricePerHour: 2.0 }`),
    `  - { name: od, provider: lab, capacity: on-demand, gpuModel: ${GPU_MODEL} }`,
  ].join('\n');
  const wl = workloads
    .map((w) => `  - name: ${w.name}
    image: ${q(lab.image)}
    gpus: 1
    gpuModel: ${GPU_MODEL}
    class: training
    capacity: spot
    expectedDuration: 8h
    pools: [${w.spotPool}, od]
    fallback: { to: on-demand, revertToSpot: false, minDwell: 30m }`)
    .join('\n');
  return `apiVersion: spotfleet.dev/v1
kind: Fleet
metadata: { name: ${FLEET_NAME} }
providers:
  lab:
    type: docker
    config:
      nodes:
${nodeYaml}
      transfer: { identityFile: ${q(t.identityFile)}, knownHostsFile: ${q(t.knownHostsFile)} }
      acknowledgeNotices: true
pools:
${pools}
defaults:
  checkpoint: { path: /checkpoints, signal: SIGUSR1, stopGrace: ${o.stopGrace ?? '10s'}, resumeEnv: RESUME_FROM_CHECKPOINT, marker: COMPLETE }
workloads:
${wl}
`;
}

/** Writes the fleet YAML into the lab's folder (`fleet/fleet.yaml`, gone with the lab) and returns that folder. */
export function writeLabFleet(lab: Lab, yaml: string): string {
  const dir = join(lab.dir, 'fleet');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'fleet.yaml'), yaml);
  return dir;
}

/**
 * A workload's checkpoint folder on a node, as a trainer with frozen weights leaves it: `bytes` of
 * random weights and a first verified checkpoint (step 0, its COMPLETE marker).
 */
export function seedWeights(lab: Lab, node: string, workload: string, bytes: number): void {
  const ck = join(lab.node(node).srvDir, 'checkpoints', workload);
  mkdirSync(ck, { recursive: true });
  writeFileSync(join(ck, 'weights.bin'), randomBytes(bytes));
  writeFileSync(join(ck, 'step'), '0\n');
  writeFileSync(join(ck, 'COMPLETE'), '');
}

/**
 * What a lab suite's afterAll does, even after a failure: stops watch by its PID (SIGTERM, then
 * SIGKILL after 20 s; its log saved to $SPOTFLEET_LAB_E2E_WATCH_LOG when set), destroys the fleet in
 * `dir`, runs `afterDestroy` (more checks) when that worked, then stops the fakes and closes the
 * lab. Returns the problems it found; the folder is the caller's to remove once there are none.
 */
export async function tearDownLabFleet(o: { lab: Lab | undefined; dir: string; watch?: WatchProcess | undefined; fakes?: Iterable<CloudFake>; afterDestroy?: (lab: Lab) => Promise<string[]> }): Promise<string[]> {
  const problems: string[] = [];
  try {
    const log = process.env.SPOTFLEET_LAB_E2E_WATCH_LOG;
    if (log && o.watch) writeFileSync(log, o.watch.stdout);
    const stuck = await o.watch?.stop();
    if (stuck) problems.push(stuck);
    if (o.dir && o.lab) {
      const r = await runCli(['destroy', '--auto-approve', o.dir], { cwd: o.dir, timeoutMs: 90_000 });
      if (r.code !== 0) problems.push(`destroy: ${describeRun(r)}`);
      else if (o.afterDestroy) problems.push(...(await o.afterDestroy(o.lab)));
    }
  } finally {
    await Promise.allSettled([...(o.fakes ?? [])].map((f) => f.stop()));
    await o.lab?.close();
  }
  return problems;
}

/** Writes the fleet into a new temp folder and returns the folder. */
export function tempLabFleet(lab: Lab, nodes: LabFleetNode[], workloads: LabFleetWorkload[], o: { stopGrace?: string } = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'sf-lab-e2e-'));
  writeFileSync(join(dir, 'fleet.yaml'), labFleetYaml(lab, nodes, workloads, o));
  return dir;
}

/** A container as `docker ps` on a node shows it, with spotfleet's labels. */
export interface NodeContainer {
  id: string;
  name: string;
  state: string;
  labels: Record<string, string>;
}

/**
 * `docker ps` (with `all`, also exited containers) on the node's engine, filtered by the fleet
 * label, as a user on the node would run it.
 */
export async function dockerPs(lab: Lab, node: string, o: { all?: boolean; workload?: string; fleet?: string } = {}): Promise<NodeContainer[]> {
  const args = ['ps', '--no-trunc', '--filter', `label=spotfleet.fleet=${o.fleet ?? FLEET_NAME}`, '--format', '{{json .}}'];
  if (o.all) args.splice(1, 0, '-a');
  if (o.workload) args.splice(args.length - 2, 0, '--filter', `label=spotfleet.workload=${o.workload}`);
  const r = await lab.docker(node, args);
  if (r.code !== 0) throw new Error(`docker ps on ${node} failed (${r.code}): ${r.stderr}`);
  return r.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => {
      const j = JSON.parse(l) as { ID: string; Names: string; State: string; Labels: string };
      const labels: Record<string, string> = {};
      // `docker ps` prints labels as k=v,k=v; spotfleet's own label values hold no commas.
      for (const kv of j.Labels.split(',')) {
        const i = kv.indexOf('=');
        if (i > 0) labels[kv.slice(0, i)] = kv.slice(i + 1);
      }
      return { id: j.ID, name: j.Names, state: j.State, labels };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** The container's log (stdout and stderr) on a node. */
export async function containerLogs(lab: Lab, node: string, id: string): Promise<string> {
  const r = await lab.docker(node, ['logs', id]);
  return r.stdout + r.stderr;
}

/** The trainer's checkpoint lines (`checkpoint step=N (USR1|TERM)`) and its resume line. */
export function trainerLog(log: string): { checkpoints: { step: number; reason: string }[]; resumedFrom?: number } {
  const checkpoints = [...log.matchAll(/checkpoint step=(\d+) \((\w+)\)/g)].map((m) => ({ step: Number(m[1]), reason: m[2] ?? '' }));
  const r = /resumed from step (\d+)/.exec(log)?.[1];
  return { checkpoints, ...(r !== undefined ? { resumedFrom: Number(r) } : {}) };
}
