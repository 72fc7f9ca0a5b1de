// apply's progress lines for a running transfer: Terraform's bare "Still transferring..." until the
// storage reports bytes, then the bytes of the total, the rate and the elapsed time at each
// interval; nothing after the transfer is done.
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import type { CliApp } from '../../src/cli/app.js';
import { progressPrinter } from '../../src/cli/common.js';
import type { ApplyEvent } from '../../src/engine/apply.js';
import type { Action } from '../../src/engine/types.js';

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

function fakeApp(lines: string[]): CliApp {
  const io = {
    stdout: new PassThrough(),
    stderr: new PassThrough(),
    stdin: new PassThrough(),
    env: {},
    color: false,
    out: (t: string) => lines.push(t),
    err: () => undefined,
    write: () => undefined,
    writeErr: () => undefined,
  };
  return { io, debug: false, input: false, interrupted: false, onInterrupt: () => () => undefined };
}

it('prints "Still transferring" until bytes move, then "Transferring... N of T (P%), R [Ns elapsed]"; stops at done', () => {
  const lines: string[] = [];
  const print = progressPrinter(fakeApp(lines), { intervalMs: 1000, now: () => Date.now() });
  const action = { id: 't1', kind: 'transfer', address: 'workload.train', summary: 'transfer checkpoint a → od', deps: [] } as unknown as Action;
  const progress = (bytes: number): ApplyEvent => ({ type: 'progress', action: { id: 't1', address: 'workload.train', kind: 'transfer' }, bytes, totalBytes: 1_200_000_000, bytesPerSec: bytes > 0 ? 56_000_000 : 0 });
  print({ type: 'start', action, at: Date.now() });
  vi.advanceTimersByTime(1000);
  print(progress(0));
  vi.advanceTimersByTime(1000);
  print(progress(412_000_000));
  vi.advanceTimersByTime(1000);
  const t0 = Date.now();
  print({ type: 'done', action, result: { id: 't1', address: 'workload.train', kind: 'transfer', summary: '', status: 'ok', startedAt: t0 - 3000, endedAt: t0, info: { bytes: 1_200_000_000, transferMs: 3000 } } });
  vi.advanceTimersByTime(5000);
  print.stop();
  expect(lines).toEqual([
    'workload.train: Transfer: transfer checkpoint a → od...',
    'workload.train: Still transferring... [1s elapsed]',
    'workload.train: Still transferring... [2s elapsed]',
    'workload.train: Transferring... 412 MB of 1.20 GB (34%), 56.0 MB/s [3s elapsed]',
    'workload.train: Transfer complete after 3s [1.20 GB at 400 MB/s]',
  ]);
});
