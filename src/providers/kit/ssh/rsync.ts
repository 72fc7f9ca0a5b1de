// Node-to-node checkpoint transfer with rsync over SSH, driven from the controller.
//
// The TARGET pulls from the source (exec on the target: `rsync ... user@source:dir/ dir/`):
// - the target is the node that must end up with a verified copy and it stays alive; the source
//   is being evicted, so nothing long-running is left on it;
// - the source is only read (rsync's sender), so the source copy can never be deleted or damaged;
// - a cut-off run leaves the partial file on the target (--partial), and the next run uses it as
//   its basis and sends only what is missing; --checksum makes the comparison by content.
// Host keys are verified on that hop too: the controller writes the source's host key (the one it
// verified itself) into a known_hosts file on the target and the target's ssh runs with
// StrictHostKeyChecking=yes and HostKeyAlias, never StrictHostKeyChecking=no.
// Success is reported only after a sha256 manifest of the target matches the source's.
// A pre-copy for an early warning (lowPriority) runs under `nice -n 19` on both ends with a
// bandwidth limit, and can be abandoned (signal): the rsync on the target is killed by its pid.
// With onProgress, rsync runs with --info=progress2 and its stdout is read as it streams
// (rsync-progress.ts): bytes so far of the source folder's total, and rsync's rate.
import { randomUUID } from 'node:crypto';
import type { SshPool } from './pool.js';
import { knownHostsLine } from './host-keys.js';
import { parseSha256Manifest } from './checkpoints.js';
import { RsyncProgressReader } from './rsync-progress.js';

export interface RsyncPullOptions {
  pool: SshPool;
  source: string;
  target: string;
  /** How the target reaches the source (its address on the nodes' network). */
  sourceAddress: string;
  sourcePort?: number;
  sourceUser?: string;
  srcDir: string;
  dstDir: string;
  /** Private key file ON THE TARGET that the source accepts. */
  identityFile: string;
  /** Where to write the source's host key on the target. */
  knownHostsFile: string;
  /** Runs of rsync before giving up (a run cut off by the network is resumed). Default 3. */
  attempts?: number;
  /** Limit for one rsync run. Default 30 min. */
  timeoutMs?: number;
  /** KiB/s, for tests and for sharing links. */
  bwlimitKBps?: number;
  /** Run both ends under `nice -n 19` (a pre-copy for an early warning). */
  lowPriority?: boolean;
  /** Abandons the pull: the rsync on the target is killed (by the pid it recorded) and the call rejects. */
  signal?: AbortSignal;
  /** Called before each retry. */
  onRetry?: (attempt: number, why: string) => void;
  /**
   * Live progress of each rsync run (a resumed run starts again from the bytes it sends), at most
   * once per `progressIntervalMs` (default 1 s). `totalBytes` is the source folder's size.
   */
  onProgress?: (p: { bytes: number; totalBytes: number; bytesPerSec: number }) => void;
  progressIntervalMs?: number;
}

export interface RsyncPullResult {
  bytes: number;
  files: number;
  attempts: number;
  /** From rsync --stats of the last run: data sent literally vs. reused from what the target had. */
  literalBytes: number;
  matchedBytes: number;
  durationMs: number;
}

/** rsync exit codes worth another run: network, timeouts, partial transfers, killed. */
/** A shell function: a process's start time (field 22 of /proc/PID/stat; its name may hold spaces). */
const START_OF = `st() { sed 's/.*) //' "/proc/$1/stat" | cut -d' ' -f20; }`;
const RETRYABLE = new Set([10, 11, 12, 20, 23, 24, 30, 35, 128 + 1, 128 + 15, 255]);

const PLAIN_PATH = /^[A-Za-z0-9_@%+=:,./~-]+$/;

/** A folder's total file bytes on the first line, then its sha256 manifest (exit 3: no folder). */
const SIZE_AND_MANIFEST = 'test -d "$1" || exit 3; cd "$1" || exit 4; n=0; for s in $(find . -type f -printf "%s "); do n=$((n+s)); done; echo "$n"; find . -type f -print0 | sort -z | xargs -0 -r sha256sum --';

function sizeAndManifest(stdout: string): { bytes: number; manifest: Map<string, string> } {
  const nl = stdout.indexOf('\n');
  return { bytes: Number(stdout.slice(0, nl)) || 0, manifest: parseSha256Manifest(stdout.slice(nl + 1)) };
}

function statNumber(text: string, label: string): number {
  const m = new RegExp(`${label}: ([\\d,]+) bytes`).exec(text);
  return m ? Number((m[1] as string).replace(/,/g, '')) : 0;
}

/**
 * Pulls srcDir from the source node into dstDir on the target, retrying cut-off runs, then checks
 * the target's sha256 manifest against the source's. Throws a ProviderError naming the node.
 */
export async function rsyncPull(o: RsyncPullOptions): Promise<RsyncPullResult> {
  const t0 = Date.now();
  const { pool } = o;
  // These go into rsync's -e string, which rsync splits on spaces itself: keep them plain.
  for (const [what, p] of [['identityFile', o.identityFile], ['knownHostsFile', o.knownHostsFile], ['sourceAddress', o.sourceAddress], ['sourceUser', o.sourceUser ?? 'root']] as const) {
    if (!PLAIN_PATH.test(p)) throw pool.fail(o.target, `transfer ${what} ${JSON.stringify(p)} must be a plain path/name (letters, digits, _@%+=:,./-)`);
  }
  const execT = (argv: string[], stdin?: string, timeoutMs?: number) => pool.exec(o.target, argv, { ...(stdin !== undefined ? { stdin } : {}), ...(timeoutMs !== undefined ? { timeoutMs } : {}) });
  const execS = (argv: readonly string[], opts?: { timeoutMs?: number }) => pool.exec(o.source, argv, opts);

  await pool.connect(o.source);
  const key = pool.hostKey(o.source);
  if (!key) throw pool.fail(o.source, 'no verified host key to hand to the target');
  const alias = `spotfleet-node-${o.source.replace(/[^A-Za-z0-9_.-]/g, '_')}`;
  // One file per source, so concurrent transfers into one target never overwrite each other's key.
  const khFile = `${o.knownHostsFile}-${alias}`;
  // The source's manifest and the target's preparation are independent: both at once.
  const [src, kh] = await Promise.all([
    execS(['sh', '-c', SIZE_AND_MANIFEST, 'sh', o.srcDir], { timeoutMs: 300_000 })
      .catch((e: unknown) => {
        throw pool.fail(o.source, `cannot read the checkpoint ${o.srcDir}: ${(e as Error).message}`, { retryable: true });
      })
      .then((r) => {
        if (r.code === 3) return undefined;
        if (r.code !== 0) throw pool.fail(o.source, `cannot read the checkpoint ${o.srcDir}: sha256sum failed (exit ${r.code}): ${r.stderr.trim()}`, { retryable: true });
        return sizeAndManifest(r.stdout);
      }),
    execT(['sh', '-c', 'f=$1; case $f in "~/"*) f="$HOME/${f#"~/"}";; esac; umask 077 && mkdir -p "$(dirname "$f")" "$2" && cat > "$f"', 'sh', khFile, o.dstDir], `${knownHostsLine([alias], key)}\n`),
  ]);
  const srcManifest = src?.manifest;
  if (!src || !srcManifest || srcManifest.size === 0) throw pool.fail(o.source, `no checkpoint files in ${o.srcDir}`);
  if (kh.code !== 0) throw pool.fail(o.target, `cannot prepare ${o.dstDir}: ${kh.stderr.trim()}`);

  const port = o.sourcePort ?? 22;
  const sshCmd = ['ssh', '-i', o.identityFile, '-p', String(port), '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${khFile}`, '-o', `HostKeyAlias=${alias}`, '-o', 'ConnectTimeout=10', '-o', 'ServerAliveInterval=5', '-o', 'ServerAliveCountMax=3'].join(' ');
  const host = o.sourceAddress.includes(':') ? `[${o.sourceAddress}]` : o.sourceAddress;
  const rsync = ['rsync', '-a', '--partial', '--checksum', '--protect-args', '--stats', '--timeout=60', '-e', sshCmd];
  if (o.bwlimitKBps !== undefined) rsync.push(`--bwlimit=${o.bwlimitKBps}`);
  if (o.lowPriority) rsync.push('--rsync-path=nice -n 19 rsync');
  if (o.onProgress) rsync.push('--info=progress2');
  rsync.push(`${o.sourceUser ?? 'root'}@${host}:${o.srcDir.replace(/\/+$/, '')}/`, `${o.dstDir.replace(/\/+$/, '')}/`);
  // An abandonable run records its pid and start time on the target, so it can be killed there
  // (closing the channel alone may leave rsync running); the start time keeps a kill that comes
  // after rsync ended from reaching whatever process has its pid by then.
  const pidFile = o.signal ? `/tmp/spotfleet-rsync-${randomUUID()}.pid` : undefined;
  const argv = [
    ...(pidFile ? ['sh', '-c', `${START_OF}; echo "$$ $(st $$)" > "$1"; shift; exec "$@"`, 'sh', pidFile] : []),
    ...(o.lowPriority ? ['nice', '-n', '19'] : []),
    ...rsync,
  ];
  const aborted = (): Error => pool.fail(o.target, `copy from ${o.source} abandoned: an eviction's own transfer takes over (the partial copy is kept as the next run's basis)`);
  const kill = (): void => {
    if (!pidFile) return;
    pool.exec(o.target, ['sh', '-c', `${START_OF}; read -r p s < "$1" && [ -n "$s" ] && [ "$(st "$p" 2>/dev/null)" = "$s" ] && kill "$p"; rm -f "$1"; true`, 'sh', pidFile], { timeoutMs: 10_000 }).catch(() => undefined);
  };
  o.signal?.addEventListener('abort', kill, { once: true });
  if (o.signal?.aborted) throw aborted();

  const attempts = Math.max(1, o.attempts ?? 3);
  let last = '';
  let stats = { literal: 0, matched: 0 };
  let ran = 0;
  for (let i = 1; i <= attempts; i++) {
    ran = i;
    const progress = o.onProgress ? progressReader(o.onProgress, src.bytes, o.progressIntervalMs) : undefined;
    const r = await pool
      .exec(o.target, argv, { timeoutMs: o.timeoutMs ?? 30 * 60_000, ...(progress ? { onStdout: (d: Buffer) => progress.push(d) } : {}) })
      .catch((e: unknown) => ({ code: -1, stdout: '', stderr: (e as Error).message }));
    progress?.flush();
    if (o.signal?.aborted) throw aborted();
    if (r.code === 0) {
      stats = { literal: statNumber(r.stdout, 'Literal data'), matched: statNumber(r.stdout, 'Matched data') };
      last = '';
      break;
    }
    last = `rsync from ${o.source} exited ${r.code}: ${(r.stderr.trim().split('\n').slice(-3).join(' | ') || r.stdout.trim().slice(-300))}`;
    if (!(RETRYABLE.has(r.code) || r.code === -1) || i === attempts) break;
    o.onRetry?.(i, last);
    await new Promise((res) => setTimeout(res, 500 * i));
  }
  o.signal?.removeEventListener('abort', kill);
  if (pidFile) await pool.exec(o.target, ['rm', '-f', pidFile]).catch(() => undefined);
  if (last) throw pool.fail(o.target, `${last} (after ${ran} run${ran === 1 ? '' : 's'}; the source copy on ${o.source} is untouched and the partial copy is kept for the next run)`, { retryable: true });

  // The target's byte count and manifest in one command.
  const d = await pool.exec(o.target, ['sh', '-c', SIZE_AND_MANIFEST, 'sh', o.dstDir], { timeoutMs: 300_000 });
  if (d.code !== 0 && d.code !== 3) throw pool.fail(o.target, `sha256sum in ${o.dstDir} failed (exit ${d.code}): ${d.stderr.trim()}`, { retryable: true });
  const { bytes, manifest: dst } = d.code === 0 ? sizeAndManifest(d.stdout) : { bytes: 0, manifest: undefined };
  const bad = [...srcManifest].filter(([f, h]) => dst?.get(f) !== h).map(([f]) => f);
  if (bad.length > 0) throw pool.fail(o.target, `checkpoint copy does not verify: ${bad.length} file(s) differ from ${o.source} (${bad.slice(0, 3).join(', ')})`, { retryable: true });
  return { bytes, files: srcManifest.size, attempts: ran, literalBytes: stats.literal, matchedBytes: stats.matched, durationMs: Date.now() - t0 };
}

/** rsync's progress2 figures as the caller's reports; a throw from the callback never fails the copy. */
function progressReader(onProgress: NonNullable<RsyncPullOptions['onProgress']>, totalBytes: number, intervalMs: number | undefined): RsyncProgressReader {
  return new RsyncProgressReader(
    (p) => {
      try {
        onProgress({ bytes: p.bytes, totalBytes, bytesPerSec: p.bytesPerSec });
      } catch {
        // progress is only for people watching; it never fails the copy
      }
    },
    intervalMs !== undefined ? { intervalMs } : {},
  );
}
