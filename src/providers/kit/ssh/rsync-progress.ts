// Live progress of an rsync run, read from its `--info=progress2` output as it streams.
//
// rsync rewrites one status line in place with carriage returns, about once a second, and ends a
// file's last update with a newline or the `(xfr#N, to-chk=M/T)` tail (3.2 to 3.4 and 3.5 alike):
//   \r         32,768   0%    0.00kB/s    0:00:00  \r      4,325,376  28%    3.91MB/s    0:00:02
// The first figure is the bytes of the files being updated so far (literal and matched data alike),
// the percentage is of the whole file list, the rate uses binary units (kB = 1024 bytes). Digit
// grouping follows the node's locale (1,234, or 1.234 where the decimal mark is a comma, as in the
// rate's 3,91MB/s). Lines that are not such a status (the --stats block, warnings, a `-h` size such as
// `1.23M`) are ignored, so an unexpected format gives no figures rather than wrong ones.

export interface RsyncProgress {
  /** Bytes of the files rsync is updating, handled so far in this run. */
  bytes: number;
  /** rsync's own percentage (of the file list known so far). */
  percent: number;
  /** rsync's current rate, bytes per second. */
  bytesPerSec: number;
}

const UNITS: Record<string, number> = { B: 1, kB: 1024, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 };

const STATUS = /^\s*(\d{1,3}(?:[,.]?\d{3})*)\s+(\d{1,3})%\s+(\d+(?:[.,]\d+)?)\s?(B|kB|KB|MB|GB|TB)\/s(?:\s|$)/;

/** One status line of `--info=progress2` (without its \r or \n); undefined for anything else. */
export function parseRsyncProgressLine(line: string): RsyncProgress | undefined {
  const m = STATUS.exec(line);
  if (!m) return undefined;
  const bytes = Number((m[1] as string).replace(/\D/g, ''));
  const percent = Number(m[2]);
  const rate = Number((m[3] as string).replace(',', '.')) * (UNITS[m[4] as string] ?? 1);
  if (!Number.isFinite(bytes) || !Number.isFinite(rate) || percent > 100) return undefined;
  return { bytes, percent, bytesPerSec: Math.round(rate) };
}

export interface RsyncProgressReaderOptions {
  /** Reports at most this often, ms; the newest figure is kept for the next report. Default 1000. */
  intervalMs?: number;
  now?: () => number;
}

/**
 * Feeds on rsync's stdout chunk by chunk (a status may be split across chunks) and reports the
 * newest status, throttled: the first at once, then at most one per interval; `flush()` at the end
 * reports a newer status held back by the throttle.
 */
export class RsyncProgressReader {
  private tail = '';
  private held: RsyncProgress | undefined;
  private lastAt = -Infinity;
  private readonly intervalMs: number;
  private readonly now: () => number;

  constructor(
    private readonly onProgress: (p: RsyncProgress) => void,
    o: RsyncProgressReaderOptions = {},
  ) {
    this.intervalMs = o.intervalMs ?? 1000;
    this.now = o.now ?? Date.now;
  }

  push(chunk: string | Buffer): void {
    const parts = (this.tail + chunk.toString('latin1')).split(/[\r\n]/);
    // The last part may be a status still being written.
    this.tail = (parts.pop() ?? '').slice(-4096);
    let newest: RsyncProgress | undefined;
    for (const p of parts) newest = parseRsyncProgressLine(p) ?? newest;
    if (!newest) return;
    this.held = newest;
    const t = this.now();
    if (t - this.lastAt >= this.intervalMs) this.report(t);
  }

  /** Reports the status held back by the throttle (and a complete last line without its end). */
  flush(): void {
    const last = parseRsyncProgressLine(this.tail);
    this.tail = '';
    if (last) this.held = last;
    if (this.held) this.report(this.now());
  }

  private report(t: number): void {
    const p = this.held;
    if (!p) return;
    this.held = undefined;
    this.lastAt = t;
    this.onProgress(p);
  }
}
