// Checkpoint transfers between localfs nodes move only the delta: a file the target's newest earlier
// checkpoint holds unchanged (a pre-copy for an early warning) is copied there locally, the rest
// crosses the (modelled) link; a low-priority copy gets a share of the link and can be abandoned.
// And the folder-backed nodes' notices: a rebalance recommendation is a warning that takes nothing.
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { NodeInfo } from '../../src/core/types.js';
import { LocalfsStorage, localfsMeta } from '../../src/providers/kit/localfs-storage.js';
import { NodeNotices } from '../../src/providers/kit/node-notices.js';
import { removeTempDirs, tempDir } from '../quickstart/harness.js';

afterAll(removeTempDirs);

function node(id: string, root: string): NodeInfo {
  return { id, provider: 'lab', gpuModel: 'V100', gpus: 1, capacity: 'spot', pricePerHour: 1, state: 'ready', meta: localfsMeta(root) };
}

/** A folder checkpoint: a large file that does not change between steps, and a small one that does. */
function writeFolderCheckpoint(root: string, step: number, weightsBytes: number): string {
  const dir = join(root, 'checkpoints', 'train', `ckpt-${String(step).padStart(6, '0')}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'weights.bin'), Buffer.alloc(weightsBytes, 7));
  writeFileSync(join(dir, 'state.json'), `${JSON.stringify({ step })}\n`);
  return dir;
}

describe('localfs transfer: only the delta crosses the link', () => {
  it('a pre-copied earlier checkpoint on the target leaves only the changed files to send', async () => {
    const a = tempDir();
    const b = tempDir();
    const st = new LocalfsStorage('lab');
    const first = writeFolderCheckpoint(a, 1, 2_000_000);
    const ck1 = await st.verify({ node: node('a', a), workload: 'train' });
    expect(ck1?.path).toBe(first);
    const pre = await st.transfer({ workload: 'train', from: node('a', a), to: node('b', b), checkpoint: ck1!, lowPriority: true });
    expect(pre.sentBytes).toBe(pre.bytes);
    expect(pre.bytes).toBeGreaterThan(2_000_000);

    writeFolderCheckpoint(a, 2, 2_000_000);
    const ck2 = await st.verify({ node: node('a', a), workload: 'train', since: new Date(Date.parse(ck1!.mtime) + 1).toISOString() });
    expect(ck2?.path).toMatch(/ckpt-000002$/);
    const delta = await st.transfer({ workload: 'train', from: node('a', a), to: node('b', b), checkpoint: ck2! });
    expect(delta.bytes).toBe(pre.bytes);
    expect(delta.sentBytes).toBe(readFileSync(join(ck2!.path, 'state.json')).length);
    // The copy is whole and keeps the source's time.
    expect(readFileSync(join(delta.checkpoint.path, 'weights.bin')).equals(Buffer.alloc(2_000_000, 7))).toBe(true);
    expect(JSON.parse(readFileSync(join(delta.checkpoint.path, 'state.json'), 'utf8'))).toEqual({ step: 2 });
    expect(delta.checkpoint.mtime).toBe(ck2!.mtime);
  });

  it('reports progress while it copies across a modelled link: bytes of the total, the rate, and the whole at the end', async () => {
    const a = tempDir();
    const b = tempDir();
    // 4 MB/s: 6 MB take about 1.5 s, so reports come part-way.
    const st = new LocalfsStorage('lab', { linkBytesPerSec: 4_000_000 });
    writeFolderCheckpoint(a, 1, 6_000_000);
    const ck = await st.verify({ node: node('a', a), workload: 'train' });
    const reports: { bytes: number; totalBytes?: number; bytesPerSec?: number }[] = [];
    const res = await st.transfer({ workload: 'train', from: node('a', a), to: node('b', b), checkpoint: ck!, onProgress: (p) => reports.push(p) });
    expect(reports.some((p) => p.bytes > 0 && p.bytes < res.bytes), JSON.stringify(reports)).toBe(true);
    for (const p of reports) expect(p.totalBytes).toBe(res.bytes);
    expect(reports.at(-1)).toMatchObject({ bytes: res.bytes, totalBytes: res.bytes });
    expect(reports.at(-1)?.bytesPerSec).toBeGreaterThan(0);
  });

  it('a changed file is sent whole; nothing on the target means everything is sent', async () => {
    const a = tempDir();
    const b = tempDir();
    const st = new LocalfsStorage('lab');
    writeFolderCheckpoint(a, 1, 100_000);
    const ck1 = await st.verify({ node: node('a', a), workload: 'train' });
    await st.transfer({ workload: 'train', from: node('a', a), to: node('b', b), checkpoint: ck1! });
    const dir = writeFolderCheckpoint(a, 2, 100_000);
    writeFileSync(join(dir, 'weights.bin'), Buffer.alloc(100_000, 9));
    const ck2 = await st.verify({ node: node('a', a), workload: 'train', since: new Date(Date.parse(ck1!.mtime) + 1).toISOString() });
    const r = await st.transfer({ workload: 'train', from: node('a', a), to: node('b', b), checkpoint: ck2! });
    expect(r.sentBytes).toBe(r.bytes);
  });

  it('the modelled link paces the bytes that cross it; a low-priority copy gets a quarter and can be abandoned', async () => {
    const a = tempDir();
    const st = new LocalfsStorage('lab', { linkBytesPerSec: 4_000_000 });
    writeFolderCheckpoint(a, 1, 1_000_000);
    const ck = await st.verify({ node: node('a', a), workload: 'train' });
    let t0 = Date.now();
    await st.transfer({ workload: 'train', from: node('a', a), to: node('b', tempDir()), checkpoint: ck! });
    const full = Date.now() - t0;
    expect(full).toBeGreaterThanOrEqual(240);
    t0 = Date.now();
    await st.transfer({ workload: 'train', from: node('a', a), to: node('c', tempDir()), checkpoint: ck!, lowPriority: true });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(960);
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 100);
    const d = tempDir();
    await expect(st.transfer({ workload: 'train', from: node('a', a), to: node('d', d), checkpoint: ck!, lowPriority: true, signal: abort.signal })).rejects.toThrow(/abandoned/);
    expect(await st.verify({ node: node('d', d), workload: 'train' })).toBeNull();
  });

  it('a slow copy survives the workload pruning the checkpoint it is copying', async () => {
    const a = tempDir();
    const st = new LocalfsStorage('lab', { linkBytesPerSec: 4_000_000 });
    const dir = writeFolderCheckpoint(a, 1, 1_000_000);
    const ck = await st.verify({ node: node('a', a), workload: 'train' });
    const b = tempDir();
    const copying = st.transfer({ workload: 'train', from: node('a', a), to: node('b', b), checkpoint: ck!, lowPriority: true });
    await new Promise((r) => setTimeout(r, 200));
    rmSync(dir, { recursive: true, force: true });
    const r = await copying;
    expect(readFileSync(join(r.checkpoint.path, 'weights.bin')).length).toBe(1_000_000);
    expect(r.checkpoint.mtime).toBe(ck!.mtime);
    expect(readdirSync(join(a, 'checkpoints', 'train'))).toEqual([]);
  });
});

describe('folder-backed node notices', () => {
  it('a rebalance recommendation is reported until its deadline and takes nothing; an eviction can follow it', async () => {
    const root = tempDir();
    let now = Date.now();
    const deaths: string[] = [];
    const nn = new NodeNotices({ provider: 'lab', source: 'local', nodeDir: (n) => join(root, n), now: () => now, onDeath: async (n) => void deaths.push(n) });
    mkdirSync(join(root, 'n1'), { recursive: true });
    const w = nn.post('n1', { inMs: 1000, kind: 'rebalance' });
    expect(w.kind).toBe('rebalance');
    expect(nn.notice('n1')).toBeUndefined();
    expect((await nn.poll('n1')).map((x) => x.kind)).toEqual(['rebalance']);
    const e = nn.post('n1', { inMs: 5000, kind: 'preemption' });
    expect((await nn.poll('n1')).map((x) => x.id).sort()).toEqual([e.id, w.id].sort());
    now += 2000; // past the warning's deadline: it is gone, nothing died
    expect((await nn.poll('n1')).map((x) => x.kind)).toEqual(['preemption']);
    expect(deaths).toEqual([]);
    now += 4000; // past the eviction's: the node is dead
    expect(await nn.poll('n1')).toEqual([]);
    expect(deaths).toEqual(['n1']);
  });
});
