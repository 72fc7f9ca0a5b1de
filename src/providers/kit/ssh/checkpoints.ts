// Checkpoint verification on a node over exec: GNU find lists the workload's checkpoint folder
// (NUL-separated, so any file name is safe) and the newest file, total size and marker decide.
import type { CheckpointInfo } from '../../../core/types.js';
import type { ExecResult, VerifyRequest } from '../../sdk.js';
import type { SshExecOptions } from './pool.js';

export type NodeExec = (argv: readonly string[], opts?: SshExecOptions) => Promise<ExecResult>;

/**
 * A verify request (the SDK's VerifyRequest: since, marker, minSizeBytes, exclude, command and its
 * time limit) for one node's folder. On a node the checkpoint is the whole folder: an excluded
 * folder is no answer, and `command` runs with the folder as its last argument.
 */
export interface VerifyOnNodeOptions extends Pick<VerifyRequest, 'since' | 'marker' | 'minSizeBytes' | 'exclude' | 'command' | 'commandTimeoutMs'> {
  node: string;
  workload: string;
  /** The workload's checkpoint folder on the node. */
  dir: string;
  /** Verdicts of earlier runs of `command`, by folder, newest time and size (verify is polled). */
  verdicts?: Map<string, boolean>;
  /** The folder's files when the caller has just listed them (a copy that printed them): no second listing. */
  files?: CheckpointFile[];
}

export interface CheckpointFile {
  path: string;
  size: number;
  mtimeMs: number;
}

/** Lists the files under `dir` on the node; undefined when the folder does not exist. */
export async function listCheckpointFiles(exec: NodeExec, dir: string): Promise<CheckpointFile[] | undefined> {
  const r = await exec(['sh', '-c', 'test -d "$1" || exit 3; exec find "$1" -type f -printf "%T@ %s %P\\0"', 'sh', dir]);
  if (r.code === 3) return undefined;
  if (r.code !== 0) throw new Error(`find ${dir} failed (exit ${r.code}): ${r.stderr.trim()}`);
  return parseCheckpointListing(r.stdout);
}

/** What `find DIR -type f -printf "%T@ %s %P\\0"` prints, as files sorted by path. */
export function parseCheckpointListing(text: string): CheckpointFile[] {
  const out: CheckpointFile[] = [];
  for (const rec of text.split('\0')) {
    if (rec === '') continue;
    const m = /^(\d+(?:\.\d+)?) (\d+) ([\s\S]*)$/.exec(rec);
    if (!m) continue;
    out.push({ mtimeMs: Math.round(Number(m[1]) * 1000), size: Number(m[2]), path: m[3] as string });
  }
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/**
 * The checkpoint in `dir` on the node, or null when there is none that counts: the folder is
 * missing or empty, its newest file is not newer than `since`, the marker is missing (or older
 * than `since`), the folder holds fewer than `minSizeBytes`, it is excluded, or the workload's
 * verify command fails on it. (The folder is the checkpoint: `keep` has nothing to prune here.)
 */
export async function verifyCheckpointOnNode(exec: NodeExec, o: VerifyOnNodeOptions): Promise<CheckpointInfo | null> {
  const files = o.files ?? (await listCheckpointFiles(exec, o.dir));
  if (!files || files.length === 0) return null;
  const newest = Math.max(...files.map((f) => f.mtimeMs));
  const total = files.reduce((s, f) => s + f.size, 0);
  const since = o.since !== undefined ? Date.parse(o.since) : undefined;
  if (since !== undefined && Number.isFinite(since) && newest <= since) return null;
  if (o.marker !== undefined) {
    const m = files.find((f) => f.path === o.marker);
    if (!m) return null;
    if (since !== undefined && Number.isFinite(since) && m.mtimeMs <= since) return null;
  }
  if (o.minSizeBytes !== undefined && total < o.minSizeBytes) return null;
  if (o.exclude?.some((p) => p.replace(/\/+$/, '') === o.dir.replace(/\/+$/, ''))) return null;
  if (o.command && o.command.length > 0) {
    const key = `${o.command.join('\u0000')}\u0001${o.dir}\u0001${newest}\u0001${total}`;
    let ok = o.verdicts?.get(key);
    if (ok === undefined) {
      // `env` sets the variables without a shell; exec quotes every argument for the remote shell.
      const r = await exec(['env', `CHECKPOINT_PATH=${o.dir}`, `SPOTFLEET_WORKLOAD=${o.workload}`, ...o.command, o.dir], { timeoutMs: o.commandTimeoutMs ?? 60_000 }).catch(() => ({ code: -1, stdout: '', stderr: '' }));
      ok = r.code === 0;
      if (o.verdicts && o.verdicts.size > 1000) o.verdicts.clear();
      o.verdicts?.set(key, ok);
    }
    if (!ok) return null;
  }
  return { node: o.node, workload: o.workload, path: o.dir, mtime: new Date(newest).toISOString(), sizeBytes: total };
}

/** `sha256  ./relative/path` lines for every file under dir, sorted; undefined when dir is missing. */
export async function manifestOnNode(exec: NodeExec, dir: string, timeoutMs = 300_000): Promise<Map<string, string> | undefined> {
  const r = await exec(['sh', '-c', 'test -d "$1" || exit 3; cd "$1" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum --', 'sh', dir], { timeoutMs });
  if (r.code === 3) return undefined;
  if (r.code !== 0) throw new Error(`sha256sum in ${dir} failed (exit ${r.code}): ${r.stderr.trim()}`);
  return parseSha256Manifest(r.stdout);
}

/** `sha256sum` output (`HASH  ./path` lines) as path → hash. */
export function parseSha256Manifest(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split('\n')) {
    const x = /^\\?([0-9a-f]{64}) [ *](.*)$/.exec(line);
    if (x) m.set(x[2] as string, x[1] as string);
  }
  return m;
}
