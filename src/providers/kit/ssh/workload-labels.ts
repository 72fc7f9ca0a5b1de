// What spotfleet writes on the containers it starts (shared by the ssh provider's docker-CLI
// runtime and the docker provider's Engine API runtime): labels, names, the node-side checkpoint
// folder, and reading a WorkloadInstance back from labels.
import { createHash } from 'node:crypto';
import type { WorkloadInstance } from '../../../core/types.js';
import type { StartRequest } from '../../sdk.js';
import { passedEnv } from '../workload-env.js';

export const LABEL = {
  fleet: 'spotfleet.fleet',
  workload: 'spotfleet.workload',
  specHash: 'spotfleet.spec-hash',
  migratedFrom: 'spotfleet.migrated-from',
  originalType: 'spotfleet.original-type',
  idempotencyKey: 'spotfleet.idempotency-key',
  gpus: 'spotfleet.gpus',
  node: 'spotfleet.node',
  gpuDevices: 'spotfleet.gpu-devices',
} as const;

const OURS = new Set<string>(Object.values(LABEL));
const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

function shortHash(s: string): string {
  return createHash('sha256').update(s).digest('hex').slice(0, 10);
}

/** A file-system-safe name for a workload: itself when plain, else a sanitised prefix + hash. */
export function safeName(name: string): string {
  if (SAFE_NAME.test(name) && !name.includes('..')) return name;
  const clean = name.replace(/[^A-Za-z0-9_.-]+/g, '-').replace(/\.{2,}/g, '.').replace(/^[^A-Za-z0-9]+/, '').slice(0, 40);
  return `${clean || 'w'}-${shortHash(name)}`;
}

/** The workload's checkpoint folder on a node. */
export function checkpointDir(root: string, workload: string): string {
  return `${root.replace(/\/+$/, '')}/${safeName(workload)}`;
}

/** Container name: stable per idempotency key, valid for Docker. */
export function containerName(fleet: string, workload: string, idempotencyKey: string): string {
  return `sf-${safeName(fleet).slice(0, 20)}-${safeName(workload).slice(0, 40)}-${shortHash(idempotencyKey)}`.replace(/[^A-Za-z0-9_.-]/g, '-');
}

/** Throws when a label/env key cannot be passed as `key=value` data. */
export function checkKey(kind: 'label' | 'env', key: string): void {
  if (key === '' || /[=\0\n\r]/.test(key)) throw new TypeError(`${kind} name ${JSON.stringify(key)} must be non-empty and contain no '=', NUL or line break`);
}

/** The labels a container gets: the request's own, then spotfleet's (which win). */
export function containerLabels(req: StartRequest, node: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.labels)) {
    checkKey('label', k);
    if (!OURS.has(k) || k === LABEL.migratedFrom || k === LABEL.originalType) out[k] = v;
  }
  out[LABEL.fleet] = req.fleet;
  out[LABEL.workload] = req.workload;
  out[LABEL.specHash] = req.specHash;
  out[LABEL.idempotencyKey] = req.idempotencyKey;
  out[LABEL.gpus] = String(req.gpus);
  out[LABEL.node] = node;
  const mf = req.labels[LABEL.migratedFrom] ?? req.labels.migrated_from;
  const ot = req.labels[LABEL.originalType] ?? req.labels.original_type;
  if (mf !== undefined) out[LABEL.migratedFrom] = mf;
  if (ot !== undefined) out[LABEL.originalType] = ot;
  return out;
}

/**
 * The environment a container gets: the `passEnv` variables from spotfleet's environment
 * (`source`), the request's env over them, and the resume variable when resuming. Nothing else of
 * spotfleet's environment; the image gives the base (PATH...).
 */
export function containerEnv(req: StartRequest, source: Readonly<Record<string, string | undefined>> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...passedEnv(source, req.passEnv), ...req.env })) {
    checkKey('env', k);
    env[k] = v;
  }
  if (req.resumeFrom) {
    checkKey('env', req.resumeFrom.env);
    // The checkpoint the engine found is a folder on the node; inside the container that folder is
    // bind-mounted at checkpointPath, which is what the workload must be told to resume from.
    env[req.resumeFrom.env] = req.checkpointPath ?? req.resumeFrom.path;
  }
  return env;
}

/** A WorkloadInstance from a container's labels and state. */
export function instanceFromContainer(c: { id: string; labels: Record<string, string>; running: boolean; exitCode?: number; startedAt: string; provider: string; node: string }): WorkloadInstance {
  const inst: WorkloadInstance = {
    id: c.id,
    provider: c.provider,
    node: c.node,
    fleet: c.labels[LABEL.fleet] ?? '',
    workload: c.labels[LABEL.workload] ?? '',
    state: c.running ? 'running' : 'exited',
    startedAt: c.startedAt,
    gpus: Number(c.labels[LABEL.gpus] ?? '0') || 0,
    labels: Object.fromEntries(Object.entries(c.labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
  };
  if (!c.running && c.exitCode !== undefined) inst.exitCode = c.exitCode;
  const h = c.labels[LABEL.specHash];
  if (h !== undefined) inst.specHash = h;
  return inst;
}

// A bind-mount target must not break the `host:container` syntax or carry quotes/line breaks.
const CHECKPOINT_PATH_RE = /^\/[^,\n\r"'\0:]*$/;

/**
 * What both container runtimes (docker API, docker CLI over SSH) derive from a start request:
 * labels, env and the checkpoint mount path, validated. Throws an Error whose message names what
 * is wrong; the caller wraps it in its ProviderError.
 */
export function containerStartSpec(
  req: StartRequest,
  node: string,
  defaultCheckpointPath: string | undefined,
  sourceEnv: Readonly<Record<string, string | undefined>> = {},
): { labels: Record<string, string>; env: Record<string, string>; checkpointPath: string } {
  const labels = containerLabels(req, node);
  const env = containerEnv(req, sourceEnv);
  const checkpointPath = req.checkpointPath ?? defaultCheckpointPath ?? '/checkpoints';
  if (!CHECKPOINT_PATH_RE.test(checkpointPath)) throw new Error(`checkpointPath ${JSON.stringify(checkpointPath)} must be an absolute path without , : quotes or line breaks`);
  return { labels, env, checkpointPath };
}
