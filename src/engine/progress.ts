// Live transfer progress: the event a transfer step emits while its storage copies, and the one
// phrase both apply's progress lines and watch's log use for it ("412 MB of 1.20 GB (34%), 56.0 MB/s").
import { formatBytes } from '../core/units.js';
import type { TransferProgress } from '../providers/sdk.js';

/** Bytes moved so far by a running transfer (as its storage reports them), for progress lines and logs. */
export type ProgressEvent = { type: 'progress'; action: { id: string; address: string; kind: 'transfer' } } & TransferProgress;

/**
 * `412 MB of 1.20 GB (34%), 56.0 MB/s`; the total and the rate only where the storage reported
 * them. The percentage is rounded down, so it never says 100% before the last byte.
 */
export function describeTransferProgress(p: TransferProgress): string {
  let s = formatBytes(p.bytes);
  if (p.totalBytes !== undefined && p.totalBytes > 0) s += ` of ${formatBytes(p.totalBytes)} (${Math.min(100, Math.floor((p.bytes * 100) / p.totalBytes))}%)`;
  if (p.bytesPerSec !== undefined) s += `, ${formatBytes(p.bytesPerSec)}/s`;
  return s;
}

/**
 * For a log that should not get a line per report: true for an action's first report with bytes,
 * then at most once per `everyMs`.
 */
export function progressThrottle(everyMs: number, now: () => number = Date.now): (e: ProgressEvent) => boolean {
  const last = new Map<string, number>();
  return (e) => {
    if (e.bytes <= 0) return false;
    const t = now();
    const prev = last.get(e.action.id);
    if (prev !== undefined && t - prev < everyMs) return false;
    last.set(e.action.id, t);
    return true;
  };
}
