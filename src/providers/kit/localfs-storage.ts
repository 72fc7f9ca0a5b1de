// Checkpoints on folders of this machine: the storage capability shared by `local` and `sim`.
// A node is a folder; a workload's checkpoints are entries (files or folders) in
// `<node folder>/checkpoints/<workload>/`. Nodes advertise their folder in `meta`, so a checkpoint
// moves between any two localfs nodes on this machine, whichever provider owns them.
// A transfer sends only what the target lacks: each file of the checkpoint that the target's newest
// earlier checkpoint holds unchanged (same name, size and sha256: a pre-copy for an early warning)
// is copied there locally instead of across the "link". The link between two folders of one
// machine is as fast as the disk unless the provider models one (`linkBytesPerSec`, the `sim`
// provider's linkMBps); a low-priority copy gets a share of it, and can be abandoned.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, createReadStream, linkSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, utimesSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { ProviderError } from '../../core/errors.js';
import type { CheckpointInfo, NodeInfo } from '../../core/types.js';
import type { StorageCapability, TransferRequest, TransferResult, VerifyRequest } from '../sdk.js';
import { assertSafeName } from './fs-util.js';
import { processBaseEnv } from './workload-env.js';

/** The `meta` a localfs node carries: how any localfs storage finds its folder. */
export function localfsMeta(nodeDir: string): Record<string, string> {
  return { storage: 'localfs', host: hostname(), dir: nodeDir, checkpointDir: join(nodeDir, 'checkpoints') };
}

/** True when the node's checkpoints live in a folder on this machine. */
export function isLocalfsNode(node: NodeInfo): boolean {
  return node.meta?.storage === 'localfs' && node.meta.host === hostname() && typeof node.meta.checkpointDir === 'string';
}

/**
 * File times come from the kernel's coarse clock, which lags Date.now() by up to a jiffy or two
 * (measured: up to ~8 ms here), so a checkpoint written right after a signal can carry an mtime
 * slightly before it. A checkpoint this close before `since` still counts as newer; the work that
 * could be lost to it is at most this long.
 */
export const FS_CLOCK_SLACK_MS = 20;

interface Entry {
  path: string;
  mtimeMs: number;
  sizeBytes: number;
}

/** A file or folder checkpoint: size is the sum of its files, time the newest file's. */
function measure(path: string): Entry {
  const st = statSync(path);
  if (!st.isDirectory()) return { path, mtimeMs: st.mtimeMs, sizeBytes: st.size };
  let size = 0;
  let mtime = st.mtimeMs;
  for (const name of readdirSync(path)) {
    const e = measure(join(path, name));
    size += e.sizeBytes;
    mtime = Math.max(mtime, e.mtimeMs);
  }
  return { path, mtimeMs: mtime, sizeBytes: size };
}

/** Files in progress (temp names, dot files, incoming copies) never count as checkpoints. */
function isInProgress(name: string): boolean {
  return name.startsWith('.') || name.endsWith('.tmp') || name.includes('.tmp-') || name.endsWith('.partial');
}

/** Sizes of every file under a path, by relative name: the transfer's verification. */
function manifest(path: string, prefix = ''): Map<string, number> {
  const out = new Map<string, number>();
  const st = statSync(path);
  if (!st.isDirectory()) {
    out.set(prefix || '.', st.size);
    return out;
  }
  for (const name of readdirSync(path).sort()) {
    for (const [k, v] of manifest(join(path, name), prefix ? `${prefix}/${name}` : name)) out.set(k, v);
  }
  return out;
}

function sameManifest(a: Map<string, number>, b: Map<string, number>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}

/** Default time limit of one run of a workload's `checkpoint.verify` command. */
export const VERIFY_COMMAND_TIMEOUT_MS = 60_000;

export interface LocalfsStorageOptions {
  /** Working directory of `checkpoint.verify` commands (the spec's folder). Default: the checkpoint folder. */
  cwd?: string;
  /** spotfleet's environment; a verify command gets only its minimal base (PATH, HOME, LANG...). */
  env?: Readonly<Record<string, string | undefined>>;
  /** A modelled link between nodes, bytes per second: what crosses it takes that long. Default: none (disk speed). */
  linkBytesPerSec?: number;
  /** The share of the link a low-priority copy (a pre-copy) may use. Default 0.25. */
  lowPriorityShare?: number;
}

const CHUNK = 1 << 20;

async function sha256(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Every file under a path by relative name (`.` for a file checkpoint), sorted. */
function filesOf(path: string): string[] {
  return [...manifest(path).keys()];
}

function rel(root: string, f: string): string {
  return f === '.' ? root : join(root, f);
}

/**
 * Hard-links a checkpoint (file or folder) to `at`, folders carrying the source's times; undefined
 * when that is not possible (then the copy reads the source itself).
 */
function snapshot(src: string, at: string): string | undefined {
  const walk = (from: string, to: string): void => {
    const st = statSync(from);
    if (!st.isDirectory()) {
      linkSync(from, to);
      return;
    }
    mkdirSync(to);
    for (const name of readdirSync(from)) walk(join(from, name), join(to, name));
    utimesSync(to, st.atimeMs / 1000, st.mtimeMs / 1000);
  };
  try {
    walk(src, at);
    return at;
  } catch {
    rmSync(at, { recursive: true, force: true });
    return undefined;
  }
}

function abortError(provider: string, to: string): ProviderError {
  return new ProviderError(provider, `copy to node ${to} abandoned: an eviction's own transfer takes over`);
}

/**
 * Storage over node folders. verify() returns the newest finished checkpoint newer than `since`
 * that is not excluded and passes the workload's verify command, and keeps the newest `keep`;
 * transfer() copies through a temporary name and renames only after the copy verifies, and never
 * touches the source.
 */
export class LocalfsStorage implements StorageCapability {
  /** Verdicts of verify commands by checkpoint (path, time, size): verify is polled while waiting. */
  private readonly verdicts = new Map<string, boolean>();

  constructor(
    private readonly provider: string,
    private readonly opts: LocalfsStorageOptions = {},
  ) {}

  private dirOf(node: NodeInfo, workload: string): string {
    assertSafeName(this.provider, 'workload', workload);
    const dir = node.meta?.checkpointDir;
    if (typeof dir !== 'string' || !isLocalfsNode(node)) {
      throw new ProviderError(this.provider, `node ${node.provider}/${node.id} has no checkpoint folder on this machine`);
    }
    return join(dir, workload);
  }

  async verify(req: VerifyRequest): Promise<CheckpointInfo | null> {
    const dir = this.dirOf(req.node, req.workload);
    const candidates = this.candidates(dir, req);
    const exclude = new Set((req.exclude ?? []).map((p) => resolve(p)));
    let found: Entry | undefined;
    for (const e of candidates) {
      if (exclude.has(resolve(e.path))) continue;
      if (req.command && req.command.length > 0 && !(await this.passes(req, e))) continue;
      found = e;
      break;
    }
    if (!found) return null;
    if (req.keep !== undefined && req.keep > 0) this.prune(dir, req, found);
    return { node: req.node.id, workload: req.workload, path: found.path, mtime: new Date(found.mtimeMs).toISOString(), sizeBytes: found.sizeBytes };
  }

  /** Finished checkpoints in the folder that pass the file checks, newest first. */
  private candidates(dir: string, req: Pick<VerifyRequest, 'since' | 'marker' | 'minSizeBytes'>, ignoreSince = false): Entry[] {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return [];
    }
    const since = req.since === undefined || ignoreSince ? undefined : Date.parse(req.since);
    const out: Entry[] = [];
    for (const name of names.sort()) {
      if (isInProgress(name)) continue;
      const path = join(dir, name);
      let e: Entry;
      try {
        const st = statSync(path);
        if (req.marker !== undefined) {
          if (st.isDirectory()) {
            const m = statSync(join(path, req.marker), { throwIfNoEntry: false });
            if (!m) continue;
            e = { ...measure(path), mtimeMs: m.mtimeMs };
          } else if (name === req.marker) {
            e = measure(path);
          } else continue;
        } else e = measure(path);
      } catch {
        continue; // removed while we looked
      }
      if (since !== undefined && !(e.mtimeMs > since - FS_CLOCK_SLACK_MS)) continue;
      if (req.minSizeBytes !== undefined && e.sizeBytes < req.minSizeBytes) continue;
      out.push(e);
    }
    // Newest first; equal times by name, newest name first (ckpt-step-000000042 after ...041).
    return out.sort((a, b) => b.mtimeMs - a.mtimeMs || (a.path < b.path ? 1 : a.path > b.path ? -1 : 0));
  }

  /** Runs the workload's verify command on one checkpoint (cached by path, time and size). */
  private async passes(req: VerifyRequest, e: Entry): Promise<boolean> {
    const argv = req.command as string[];
    const key = `${argv.join('\u0000')}\u0001${e.path}\u0001${e.mtimeMs}\u0001${e.sizeBytes}`;
    const known = this.verdicts.get(key);
    if (known !== undefined) return known;
    const [cmd, ...args] = argv as [string, ...string[]];
    const ok = await new Promise<boolean>((res) => {
      // Like a workload: no shell, and nothing of spotfleet's environment but the minimal base.
      execFile(
        cmd,
        [...args, e.path],
        { cwd: this.opts.cwd ?? dirname(e.path), env: { ...processBaseEnv(this.opts.env ?? process.env), CHECKPOINT_PATH: e.path, SPOTFLEET_WORKLOAD: req.workload }, timeout: req.commandTimeoutMs ?? VERIFY_COMMAND_TIMEOUT_MS, killSignal: 'SIGKILL', maxBuffer: 1024 * 1024 },
        (err) => res(err === null),
      );
    });
    if (this.verdicts.size > 1000) this.verdicts.clear();
    this.verdicts.set(key, ok);
    return ok;
  }

  /** Deletes finished checkpoints beyond the newest `keep` (never `kept`, never one in progress). */
  private prune(dir: string, req: VerifyRequest, kept: Entry): void {
    const all = this.candidates(dir, { ...(req.marker !== undefined ? { marker: req.marker } : {}) }, true);
    const keep = new Set(all.slice(0, req.keep).map((e) => e.path));
    keep.add(kept.path);
    for (const e of all) {
      if (keep.has(e.path)) continue;
      try {
        rmSync(e.path, { recursive: true, force: true });
      } catch {
        // Another run pruned it, or it cannot be removed now; the next verify tries again.
      }
    }
  }

  canTransfer(from: NodeInfo, to: NodeInfo): boolean {
    return isLocalfsNode(from) && isLocalfsNode(to);
  }

  async transfer(req: TransferRequest): Promise<TransferResult> {
    await Promise.resolve();
    const t0 = Date.now();
    const srcDir = this.dirOf(req.from, req.workload);
    const dstDir = this.dirOf(req.to, req.workload);
    const src = resolve(req.checkpoint.path);
    if (dirname(src) !== resolve(srcDir)) {
      throw new ProviderError(this.provider, `checkpoint ${src} is not in node ${req.from.id}'s checkpoint folder for ${req.workload}`);
    }
    const srcManifest = (() => {
      try {
        return manifest(src);
      } catch {
        throw new ProviderError(this.provider, `checkpoint ${src} on node ${req.from.id} is gone`);
      }
    })();
    const bytes = [...srcManifest.values()].reduce((a, b) => a + b, 0);
    const target = join(dstDir, basename(src));
    const info = (): CheckpointInfo => {
      const e = measure(target);
      return { node: req.to.id, workload: req.workload, path: target, mtime: new Date(e.mtimeMs).toISOString(), sizeBytes: e.sizeBytes };
    };
    if (resolve(dstDir) === resolve(srcDir)) return { checkpoint: info(), bytes: 0, durationMs: Date.now() - t0, skipped: true };
    mkdirSync(dstDir, { recursive: true });
    // An earlier transfer of the same checkpoint that completed is not repeated.
    try {
      if (sameManifest(srcManifest, manifest(target))) return { checkpoint: info(), bytes: 0, durationMs: Date.now() - t0, skipped: true };
    } catch {
      // no target yet
    }
    const tmp = join(dstDir, `.incoming-${basename(src)}-${process.pid}-${Date.now()}`);
    // A slow copy (a pre-copy at low priority) reads a hard-linked snapshot, so a workload that
    // prunes its old checkpoints meanwhile cannot pull the files from under it.
    const snap = snapshot(src, join(srcDir, `.transfer-${basename(src)}-${process.pid}-${Date.now()}`));
    let sent = 0;
    try {
      sent = await this.copyDelta(snap ?? src, tmp, this.basisIn(dstDir, basename(src), statSync(snap ?? src).isDirectory()), req, bytes);
      if (!sameManifest(srcManifest, manifest(tmp))) {
        throw new ProviderError(this.provider, `copy of ${src} to node ${req.to.id} does not match the source`, { retryable: true });
      }
      rmSync(target, { recursive: true, force: true });
      renameSync(tmp, target);
    } catch (e) {
      rmSync(tmp, { recursive: true, force: true });
      if (e instanceof ProviderError) throw e;
      throw new ProviderError(this.provider, `copying checkpoint to node ${req.to.id} failed: ${(e as Error).message}`, { retryable: true, cause: e });
    } finally {
      if (snap) rmSync(snap, { recursive: true, force: true });
    }
    return { checkpoint: info(), bytes, sentBytes: sent, durationMs: Date.now() - t0, skipped: false };
  }

  /** The target's newest finished checkpoint of the same shape (file or folder), other than `name`. */
  private basisIn(dstDir: string, name: string, dir: boolean): string | undefined {
    const all = this.candidates(dstDir, {}, true);
    return all.find((e) => basename(e.path) !== name && statSync(e.path, { throwIfNoEntry: false })?.isDirectory() === dir)?.path;
  }

  /**
   * Copies `src` to `dst`: each file the basis holds unchanged locally, the rest across the link
   * (paced to the modelled link, a share of it at low priority). Returns the bytes that crossed it.
   * Reports progress (bytes handled of `total`, the rate across the link) at most once a second
   * and once at the end.
   */
  private async copyDelta(src: string, dst: string, basis: string | undefined, req: TransferRequest, total: number): Promise<number> {
    const share = req.lowPriority ? (this.opts.lowPriorityShare ?? 0.25) : 1;
    const rate = this.opts.linkBytesPerSec !== undefined ? this.opts.linkBytesPerSec * share : undefined;
    const started = Date.now();
    let sent = 0;
    let kept = 0;
    let reportedAt = started;
    const progress = (last: boolean): void => {
      const t = Date.now();
      if (!req.onProgress || (!last && t - reportedAt < 1000)) return;
      reportedAt = t;
      req.onProgress({ bytes: sent + kept, totalBytes: total, ...(t > started ? { bytesPerSec: Math.round((sent * 1000) / (t - started)) } : {}) });
    };
    const files = filesOf(src);
    if (statSync(src).isDirectory()) mkdirSync(dst, { recursive: true });
    for (const f of files) {
      if (req.signal?.aborted) throw abortError(this.provider, req.to.id);
      const from = rel(src, f);
      const to = rel(dst, f);
      mkdirSync(dirname(to), { recursive: true });
      const b = basis !== undefined ? rel(basis, f) : undefined;
      const size = statSync(from).size;
      if (b !== undefined && statSync(b, { throwIfNoEntry: false })?.size === size && (await sha256(b)) === (await sha256(from))) {
        copyFileSync(b, to);
        kept += size;
        continue;
      }
      // Across the link, chunk by chunk: paced, yielding, abandonable.
      const rd = await open(from, 'r');
      const wr = await open(to, 'w');
      try {
        const buf = Buffer.alloc(Math.min(CHUNK, Math.max(1, size)));
        for (;;) {
          if (req.signal?.aborted) throw abortError(this.provider, req.to.id);
          const { bytesRead } = await rd.read(buf, 0, buf.length, null);
          if (bytesRead === 0) break;
          await wr.write(buf, 0, bytesRead);
          sent += bytesRead;
          progress(false);
          const due = rate !== undefined ? started + (sent / rate) * 1000 - Date.now() : req.lowPriority ? 1 : 0;
          if (due > 0) await new Promise((r) => setTimeout(r, due));
        }
      } finally {
        await rd.close();
        await wr.close();
      }
    }
    // The copy keeps the source's times (a checkpoint's age is its newest file's): files, then
    // folders deepest first (writing into a folder moves its time).
    const dirs = new Set<string>();
    for (const f of files) {
      const st = statSync(rel(src, f));
      utimesSync(rel(dst, f), st.atimeMs / 1000, st.mtimeMs / 1000);
      for (let d = dirname(f); f !== '.' && d !== '.'; d = dirname(d)) dirs.add(d);
    }
    if (files[0] !== '.') dirs.add('');
    for (const d of [...dirs].sort((a, b) => b.split('/').length - a.split('/').length || b.length - a.length)) {
      const st = statSync(d ? join(src, d) : src);
      utimesSync(d ? join(dst, d) : dst, st.atimeMs / 1000, st.mtimeMs / 1000);
    }
    progress(true);
    return sent;
  }
}
