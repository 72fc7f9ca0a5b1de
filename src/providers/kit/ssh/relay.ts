// Small checkpoints copied THROUGH THE CONTROLLER instead of by rsync from node to node.
//
// rsync over ssh opens a second SSH connection, from the target to the source, and the source's
// sshd runs `rsync --server` through the user's login shell: a handshake plus the .bashrc (~1 s on
// a host with conda/pyenv init, more under load), whatever the size. For a checkpoint of a few KiB
// (a step counter, an optimizer's small state) that is nearly all of the transfer. Up to
// RELAY_MAX_BYTES, the source's kept shell prints the folder's manifest and a base64 tar of it in
// one command, and the target's kept shell unpacks it and prints its own manifest in another: two
// commands on connections that are already open, verified by sha256 like an rsync copy. Anything
// bigger, or a node without tar/base64, goes by rsync (rsync.ts).
import type { SshPool } from './pool.js';
import { parseCheckpointListing, parseSha256Manifest, type CheckpointFile } from './checkpoints.js';
import type { RsyncPullResult } from './rsync.js';

/** Checkpoints up to this many bytes (and files) go through the controller. */
export const RELAY_MAX_BYTES = 32 * 1024;
const RELAY_MAX_FILES = 256;
const TAR_MARK = '__SPOTFLEET_TAR__';

/**
 * Source: total bytes, the sha256 manifest, and (small enough) the marker and a base64 tar; a POSIX
 * (pax) archive where tar makes one, so the copy keeps sub-second file times as rsync -a does.
 */
const SOURCE_SCRIPT = [
  'test -d "$1" || exit 3',
  'cd "$1" || exit 4',
  'n=0; c=0',
  'for s in $(find . -type f -printf "%s "); do n=$((n+s)); c=$((c+1)); done',
  'echo "$n"',
  'find . -type f -print0 | sort -z | xargs -0 -r sha256sum --',
  `if [ "$n" -le "$2" ] && [ "$c" -le "$3" ] && command -v base64 >/dev/null && command -v tar >/dev/null; then echo ${TAR_MARK}; { tar --format=posix -cf - . 2>/dev/null || tar -cf - .; } | base64; fi`,
].join('; ');

/** Target: unpack into the folder (made if missing), then its sha256 manifest and its listing (as verify reads it). */
const LIST_MARK = '__SPOTFLEET_LIST__';
const TARGET_SCRIPT = `mkdir -p "$1" && printf %s "$2" | base64 -d | tar -C "$1" -xf - || exit 6; cd "$1" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum -- && echo ${LIST_MARK} && find . -type f -printf "%T@ %s %P\\0"`;

export interface RelayOptions {
  pool: SshPool;
  source: string;
  target: string;
  srcDir: string;
  dstDir: string;
  /** Default RELAY_MAX_BYTES. */
  maxBytes?: number;
}

/**
 * Copies a small checkpoint folder through the controller; `listing` is the target folder's files
 * as verify reads them. Undefined when it is not small (or a node cannot pack or unpack it): the
 * caller uses rsync. Throws a ProviderError naming the source
 * when the source has no checkpoint files.
 */
export async function relaySmallCheckpoint(o: RelayOptions): Promise<(RsyncPullResult & { listing: CheckpointFile[] }) | undefined> {
  const t0 = Date.now();
  const { pool } = o;
  const src = await pool.exec(o.source, ['sh', '-c', SOURCE_SCRIPT, 'sh', o.srcDir, String(o.maxBytes ?? RELAY_MAX_BYTES), String(RELAY_MAX_FILES)]);
  if (src.code === 3) throw pool.fail(o.source, `no checkpoint files in ${o.srcDir}`);
  if (src.code !== 0) return undefined;
  const nl = src.stdout.indexOf('\n');
  const bytes = Number(src.stdout.slice(0, nl));
  const mark = src.stdout.indexOf(`\n${TAR_MARK}\n`);
  const manifest = parseSha256Manifest(src.stdout.slice(nl + 1, mark < 0 ? undefined : mark));
  if (manifest.size === 0) throw pool.fail(o.source, `no checkpoint files in ${o.srcDir}`);
  if (mark < 0 || !Number.isFinite(bytes)) return undefined;
  const payload = src.stdout.slice(mark + TAR_MARK.length + 2).replace(/\s+/g, '');
  if (payload.length === 0 || payload.length > 120_000) return undefined;
  const dst = await pool.exec(o.target, ['sh', '-c', TARGET_SCRIPT, 'sh', o.dstDir, payload]);
  if (dst.code !== 0) return undefined;
  const at = dst.stdout.indexOf(`\n${LIST_MARK}\n`);
  if (at < 0) return undefined;
  const got = parseSha256Manifest(dst.stdout.slice(0, at));
  // A copy that does not match is left for rsync to repair (it compares by checksum).
  if ([...manifest].some(([f, h]) => got.get(f) !== h)) return undefined;
  const listing = parseCheckpointListing(dst.stdout.slice(at + LIST_MARK.length + 2));
  return { bytes, files: manifest.size, attempts: 1, literalBytes: bytes, matchedBytes: 0, durationMs: Date.now() - t0, listing };
}
