// rsync node-to-node in the lab: a transfer cut off halfway fails with a clear, retryable error
// naming the node, keeps the partial copy and the source, and the next run resumes from the
// partial file and verifies the target by sha256.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { describeLab } from './../lab/gate.js';
import { startLab, type Lab } from '../lab/lab.js';
import { nodePids, waitUntil } from '../lab/fixtures.js';
import { SshPool, rsyncPull } from '../../src/providers/kit/ssh/index.js';
import { ProviderError } from '../../src/core/errors.js';

const SIZE = 40 << 20;

describeLab('rsync between lab nodes', () => {
  let lab: Lab;
  let pool: SshPool;
  let digest: string;
  beforeAll(async () => {
    lab = await startLab({ nodes: [{ name: 'a', gpus: 1, gpuModel: 'T4' }, { name: 'b', gpus: 1, gpuModel: 'T4' }] });
    pool = new SshPool({ provider: 'gpu' });
    for (const n of lab.nodes) pool.add({ name: n.name, host: n.address, identityFile: lab.clientKeyPath, knownHostsFile: lab.knownHostsPath });
    const dir = join(lab.node('a').srvDir, 'checkpoints', 'big');
    mkdirSync(dir, { recursive: true });
    const data = randomBytes(SIZE);
    digest = createHash('sha256').update(data).digest('hex');
    writeFileSync(join(dir, 'model.pt'), data);
    writeFileSync(join(dir, 'step'), '1234\n');
  });
  afterAll(async () => {
    await pool?.close();
    await lab?.close();
  });

  const opts = () => ({
    pool,
    source: 'a',
    target: 'b',
    sourceAddress: lab.node('a').address,
    srcDir: '/srv/spotfleet/checkpoints/big',
    dstDir: '/srv/spotfleet/checkpoints/big',
    identityFile: lab.clientKeyPath,
    knownHostsFile: '/srv/spotfleet/.spotfleet/known_hosts',
  });

  it('is cut off halfway → ProviderError naming the node, partial kept, source untouched; the next run resumes and verifies', async () => {
    const partial = join(lab.node('b').srvDir, 'checkpoints', 'big', 'model.pt');
    const run = rsyncPull({ ...opts(), attempts: 1, bwlimitKBps: 8192 }).then(() => undefined, (e: unknown) => e);
    // wait until some data has landed on b (rsync writes into a temp file next to the target)
    await waitUntil('data arriving on b', async () => {
      const { readdirSync } = await import('node:fs');
      const d = join(lab.node('b').srvDir, 'checkpoints', 'big');
      if (!existsSync(d)) return false;
      return readdirSync(d).some((f) => f.startsWith('.model.pt.') && statSync(join(d, f)).size > 4 << 20);
    }, 30_000);
    for (const pid of nodePids(lab, 'b', 'rsync')) process.kill(pid, 'SIGTERM');
    const err = await run;
    expect(err).toBeInstanceOf(ProviderError);
    expect((err as ProviderError).message).toMatch(/provider "gpu".*node "b".*rsync from a exited .*source copy on a is untouched/);
    expect((err as ProviderError).retryable).toBe(true);
    const partSize = statSync(partial).size;
    expect(partSize).toBeGreaterThan(0);
    expect(partSize).toBeLessThan(SIZE);
    expect(createHash('sha256').update(readFileSync(join(lab.node('a').srvDir, 'checkpoints', 'big', 'model.pt'))).digest('hex')).toBe(digest);

    const res = await rsyncPull(opts());
    expect(res.files).toBe(2);
    expect(res.matchedBytes).toBeGreaterThan(0);
    expect(res.literalBytes).toBeLessThan(SIZE);
    expect(createHash('sha256').update(readFileSync(partial)).digest('hex')).toBe(digest);
    expect(readFileSync(join(lab.node('b').srvDir, 'checkpoints', 'big', 'step'), 'utf8')).toBe('1234\n');
    // the source is still there
    expect(statSync(join(lab.node('a').srvDir, 'checkpoints', 'big', 'model.pt')).size).toBe(SIZE);
  });

  it('a pre-copy runs niced under its bandwidth limit and is abandoned on the signal: its rsync is killed on the target; the next pull reuses what it copied', async () => {
    const src = join(lab.node('a').srvDir, 'checkpoints', 'pre');
    mkdirSync(src, { recursive: true });
    const data = randomBytes(SIZE);
    writeFileSync(join(src, 'model.pt'), data);
    const dirs = { srcDir: '/srv/spotfleet/checkpoints/pre', dstDir: '/srv/spotfleet/checkpoints/pre' };
    const abort = new AbortController();
    const run = rsyncPull({ ...opts(), ...dirs, bwlimitKBps: 4096, lowPriority: true, signal: abort.signal, attempts: 3 }).then(() => undefined, (e: unknown) => e);
    await waitUntil('the pre-copy running on b', () => Promise.resolve(nodePids(lab, 'b', 'rsync').length > 0), 30_000);
    await waitUntil('data arriving on b', async () => {
      const { readdirSync } = await import('node:fs');
      const d = join(lab.node('b').srvDir, 'checkpoints', 'pre');
      return existsSync(d) && readdirSync(d).some((f) => f.startsWith('.model.pt.') && statSync(join(d, f)).size > 1 << 20);
    }, 30_000);
    // niced on the target (field 19 of /proc/PID/stat)
    const nices = nodePids(lab, 'b', 'rsync').map((pid) => Number(readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ')[16]));
    expect(nices.length).toBeGreaterThan(0);
    for (const n of nices) expect(n).toBe(19);
    abort.abort();
    const err = await run;
    expect(err).toBeInstanceOf(ProviderError);
    expect((err as ProviderError).message).toMatch(/node "b".*abandoned/);
    await waitUntil('the pre-copy gone from b', () => Promise.resolve(nodePids(lab, 'b', 'rsync').length === 0), 15_000);
    const res = await rsyncPull({ ...opts(), ...dirs });
    expect(res.matchedBytes).toBeGreaterThan(0);
    expect(createHash('sha256').update(readFileSync(join(lab.node('b').srvDir, 'checkpoints', 'pre', 'model.pt'))).digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
  });

  it('reports live progress while rsync runs: bytes of the source folder\'s total and rsync\'s rate, before the copy ends', async () => {
    const src = join(lab.node('a').srvDir, 'checkpoints', 'live');
    mkdirSync(src, { recursive: true });
    writeFileSync(join(src, 'model.pt'), randomBytes(SIZE));
    writeFileSync(join(src, 'step'), '99\n');
    const dirs = { srcDir: '/srv/spotfleet/checkpoints/live', dstDir: '/srv/spotfleet/checkpoints/live' };
    const reports: { bytes: number; totalBytes: number; bytesPerSec: number }[] = [];
    let ended = false;
    const seenBeforeEnd: number[] = [];
    const res = await rsyncPull({
      ...opts(),
      ...dirs,
      bwlimitKBps: 8192,
      onProgress: (p) => {
        reports.push(p);
        if (!ended) seenBeforeEnd.push(p.bytes);
      },
    });
    ended = true;
    expect(res.bytes).toBe(SIZE + 3);
    // At least one figure part-way: more than nothing, less than everything.
    expect(reports.some((p) => p.bytes > 0 && p.bytes < SIZE), JSON.stringify(reports)).toBe(true);
    for (const p of reports) expect(p.totalBytes).toBe(SIZE + 3);
    expect(reports.some((p) => p.bytesPerSec > 0)).toBe(true);
    // In order, and the last one is the whole folder.
    expect(reports.map((p) => p.bytes)).toEqual([...reports.map((p) => p.bytes)].sort((x, y) => x - y));
    expect(reports.at(-1)?.bytes).toBe(SIZE + 3);
    expect(seenBeforeEnd.length).toBe(reports.length);
  });

  it('refuses a transfer key path that rsync would split, before running anything', async () => {
    await expect(rsyncPull({ ...opts(), identityFile: '/tmp/a key; touch /tmp/x' })).rejects.toThrow(/must be a plain path/);
  });
});
