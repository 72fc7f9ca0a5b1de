// How transfer progress reads for people (apply's progress lines and watch's log share it), and
// the throttle watch's log uses.
import { describe, expect, it } from 'vitest';
import { formatBytes } from '../../src/core/units.js';
import { describeTransferProgress, progressThrottle, type ProgressEvent } from '../../src/engine/progress.js';

describe('describeTransferProgress', () => {
  it('bytes of the total with a percentage rounded down, and the rate, in decimal units', () => {
    expect(describeTransferProgress({ bytes: 412_000_000, totalBytes: 1_200_000_000, bytesPerSec: 56_000_000 })).toBe('412 MB of 1.20 GB (34%), 56.0 MB/s');
    expect(describeTransferProgress({ bytes: 20_971_521, totalBytes: 20_971_522 })).toBe('21.0 MB of 21.0 MB (99%)');
    expect(describeTransferProgress({ bytes: 6_291_458 })).toBe('6.29 MB');
  });

  it('scales from MB to GB and TB', () => {
    expect(formatBytes(0)).toBe('0.00 MB');
    expect(formatBytes(999_000_000)).toBe('999 MB');
    expect(formatBytes(12_345_000_000)).toBe('12.3 GB');
    expect(formatBytes(2_500_000_000_000)).toBe('2.50 TB');
  });
});

describe('progressThrottle', () => {
  const ev = (id: string, bytes: number): ProgressEvent => ({ type: 'progress', action: { id, address: `workload.${id}`, kind: 'transfer' }, bytes });

  it('the first report with bytes at once, then one per interval per action', () => {
    let t = 0;
    const due = progressThrottle(10_000, () => t);
    expect(due(ev('a', 0))).toBe(false);
    expect(due(ev('a', 5))).toBe(true);
    t = 4_000;
    expect(due(ev('a', 9))).toBe(false);
    expect(due(ev('b', 1))).toBe(true);
    t = 10_000;
    expect(due(ev('a', 12))).toBe(true);
    expect(due(ev('b', 2))).toBe(false);
  });
});
