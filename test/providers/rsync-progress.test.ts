// The rsync --info=progress2 reader on real captured output (test/fixtures/rsync/README.md): every
// status figure is read whatever way the stream is chunked, the --stats block and `-h` sizes give
// nothing, and reports are throttled with the newest one kept for flush().
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RsyncProgressReader, parseRsyncProgressLine, type RsyncProgress } from '../../src/providers/kit/ssh/rsync-progress.js';

const fixture = (name: string): Buffer => readFileSync(join(import.meta.dirname, '..', 'fixtures', 'rsync', name));
const MiB = 1024 * 1024;

function readAll(out: Buffer, chunk: number): RsyncProgress[] {
  const got: RsyncProgress[] = [];
  const r = new RsyncProgressReader((p) => got.push(p), { intervalMs: 0 });
  for (let i = 0; i < out.length; i += chunk) r.push(out.subarray(i, i + chunk));
  r.flush();
  return got;
}

describe('parseRsyncProgressLine', () => {
  it('reads bytes, percent and the rate in binary units from a status, with or without its (xfr#, to-chk) tail', () => {
    expect(parseRsyncProgressLine('      6,291,458  30%    6.00MB/s    0:00:02  ')).toEqual({ bytes: 6_291_458, percent: 30, bytesPerSec: 6 * MiB });
    expect(parseRsyncProgressLine('     20,971,522 100%    5.79MB/s    0:00:03 (xfr#2, to-chk=0/3)')).toEqual({ bytes: 20_971_522, percent: 100, bytesPerSec: Math.round(5.79 * MiB) });
    expect(parseRsyncProgressLine('              2   0%    0.28kB/s    0:00:00 (xfr#1, to-chk=1/3)')).toEqual({ bytes: 2, percent: 0, bytesPerSec: Math.round(0.28 * 1024) });
  });

  it('gives nothing for the --stats block, the summary, or -h sizes', () => {
    for (const line of fixture('ssh-fresh.out').toString('latin1').split('\n').slice(1)) expect(parseRsyncProgressLine(line), line).toBeUndefined();
    for (const line of fixture('local-human-readable.out').toString('latin1').split(/[\r\n]/)) expect(parseRsyncProgressLine(line), line).toBeUndefined();
  });
});

describe('RsyncProgressReader on captured output', () => {
  it('a fresh copy over SSH, fed byte by byte: every update, in order, up to the full size', () => {
    const got = readAll(fixture('ssh-fresh.out'), 1);
    expect(got.map((p) => p.bytes)).toEqual([0, 2, 6_291_458, 11_730_946, 18_350_082, 20_971_522, 20_971_522]);
    expect(got.map((p) => p.percent)).toEqual([0, 0, 30, 55, 87, 100, 100]);
    expect(got[2]?.bytesPerSec).toBe(6 * MiB);
  });

  it('whatever way the stream is cut into chunks: figures from the same statuses, in order, ending with the last (a chunk with several reports only its newest)', () => {
    for (const name of ['ssh-fresh.out', 'ssh-delta.out', 'local-fresh.out', 'local-some-in-place.out', 'local-nothing-to-do.out']) {
      const every = readAll(fixture(name), 1);
      expect(every.length, name).toBeGreaterThan(1);
      for (const size of [2, 3, 7, 64, 1 << 20]) {
        const got = readAll(fixture(name), size);
        expect(got.length, `${name} in ${size}-byte chunks`).toBeGreaterThan(0);
        expect(got.at(-1), `${name} in ${size}-byte chunks`).toEqual(every.at(-1));
        // a subsequence of every status
        let i = 0;
        for (const p of got) {
          while (i < every.length && JSON.stringify(every[i]) !== JSON.stringify(p)) i++;
          expect(i, `${name} in ${size}-byte chunks: ${JSON.stringify(p)} out of order`).toBeLessThan(every.length);
          i++;
        }
      }
    }
  });

  it('a node whose locale writes a comma as decimal mark (de_DE): dot-grouped bytes and comma rates, read the same', () => {
    const out = fixture('local-fresh-de-DE.out');
    expect(out.toString('latin1')).toMatch(/\d\.\d{3}\.\d{3} +\d+% +\d+,\d+MB\/s/);
    const got = readAll(out, 7);
    expect(got.length).toBeGreaterThan(2);
    for (let i = 1; i < got.length; i++) expect(got[i]!.bytes).toBeGreaterThanOrEqual(got[i - 1]!.bytes);
    expect(got.at(-1)).toMatchObject({ bytes: 12 * MiB + 3, percent: 100 });
    // --bwlimit=4000 (KiB/s): the rates read as MiB/s with a decimal comma, not as thousands.
    for (const p of got.slice(1)) expect(p.bytesPerSec).toBeLessThan(8 * MiB);
    expect(got.slice(1).some((p) => p.bytesPerSec > 2 * MiB)).toBe(true);
  });

  it('a delta copy counts matched data: the last figure is the whole folder', () => {
    expect(readAll(fixture('ssh-delta.out'), 1 << 16).at(-1)).toMatchObject({ bytes: 20_971_522, percent: 100 });
  });

  it('files already in place are not counted: the last figure stops short of the total', () => {
    expect(readAll(fixture('local-some-in-place.out'), 1 << 16).at(-1)).toMatchObject({ bytes: 16_000_000, percent: 84 });
    expect(readAll(fixture('local-nothing-to-do.out'), 1).map((p) => p.bytes)).toEqual([0, 0]);
  });

  it('-h sizes give no figures at all rather than wrong ones', () => {
    expect(readAll(fixture('local-human-readable.out'), 1 << 16)).toEqual([]);
  });

  it('throttles: the first status at once, then at most one per interval; flush() reports the newest held back', () => {
    let t = 0;
    const got: number[] = [];
    const r = new RsyncProgressReader((p) => got.push(p.bytes), { intervalMs: 1000, now: () => t });
    const statuses = fixture('local-fresh.out').toString('latin1').split('\r').filter((s) => parseRsyncProgressLine(s));
    expect(statuses.length).toBeGreaterThanOrEqual(6);
    // One status every 300 ms of the fake clock, each ended by the \r that starts the next.
    for (const s of statuses) {
      r.push(`\r${s}`);
      t += 300;
    }
    r.push('\n');
    expect(got.length).toBeLessThan(statuses.length);
    expect(got[0]).toBe(32_768); // the first status, complete once the next \r arrives
    r.flush();
    expect(got.at(-1)).toBe(15_000_003);
  });
});
