// The storage half of checkpoint verification (issue #11), on local node folders with real
// commands: a workload's `checkpoint.verify` command decides which checkpoint counts (newest
// first, its path as the last argument and in CHECKPOINT_PATH, nothing of spotfleet's
// environment), `exclude` skips one a resume failed on so the previous verified one is returned,
// and `keep` deletes all but the newest N.
import { mkdirSync, readFileSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalfsStorage, localfsMeta } from '../../src/providers/kit/localfs-storage.js';
import type { NodeInfo } from '../../src/core/types.js';
import { removeTempDirs, tempDir } from '../quickstart/harness.js';

afterAll(removeTempDirs);

function node(root: string): NodeInfo {
  return { id: 'n1', provider: 'lab', gpuModel: 'V100', gpus: 1, capacity: 'on-demand', pricePerHour: 1, state: 'ready', meta: localfsMeta(root) };
}

/** Writes ckpt-step-N.json files, one second apart, oldest first; `bad` steps are corrupt. */
function writeCheckpoints(root: string, steps: number[], bad: number[] = []): string[] {
  const dir = join(root, 'checkpoints', 'train');
  mkdirSync(dir, { recursive: true });
  const t0 = Date.now() / 1000 - 100;
  return steps.map((step, i) => {
    const p = join(dir, `ckpt-step-${String(step).padStart(9, '0')}.json`);
    writeFileSync(p, bad.includes(step) ? '{"step": tru' : `${JSON.stringify({ step })}\n`);
    utimesSync(p, t0 + i, t0 + i);
    return p;
  });
}

// A verify command like a workload would ship: the checkpoint parses and has a step.
const VERIFY = [process.execPath, '-e', "const d = JSON.parse(require('fs').readFileSync(process.argv[1], 'utf8')); if (!Number.isInteger(d.step)) process.exit(1)"];

describe('StorageCapability.verify on localfs nodes', () => {
  it('returns the newest checkpoint that passes the verify command', async () => {
    const root = tempDir();
    const paths = writeCheckpoints(root, [1, 2, 3], [3]);
    const st = new LocalfsStorage('lab');
    // Without a command the newest (corrupt) one counts: the file checks cannot tell.
    expect((await st.verify({ node: node(root), workload: 'train' }))?.path).toBe(paths[2]);
    expect((await st.verify({ node: node(root), workload: 'train', command: VERIFY }))?.path).toBe(paths[1]);
  });

  it('skips excluded checkpoints: a failed resume falls back to the previous verified one', async () => {
    const root = tempDir();
    const paths = writeCheckpoints(root, [1, 2, 3], [3]);
    const st = new LocalfsStorage('lab');
    const got = await st.verify({ node: node(root), workload: 'train', command: VERIFY, exclude: [paths[1] as string] });
    expect(got?.path).toBe(paths[0]);
    expect(await st.verify({ node: node(root), workload: 'train', exclude: paths })).toBeNull();
  });

  it('runs the command with the path as last argument and CHECKPOINT_PATH, and none of the operator environment', async () => {
    const root = tempDir();
    const [p] = writeCheckpoints(root, [7]);
    const out = join(root, 'seen.json');
    const spy = [process.execPath, '-e', `require('fs').writeFileSync(${JSON.stringify(out)}, JSON.stringify({ argv: process.argv.slice(1), env: process.env }))`];
    const st = new LocalfsStorage('lab', { cwd: root, env: { PATH: process.env.PATH, AWS_SECRET_ACCESS_KEY: 'fake-secret' } });
    expect((await st.verify({ node: node(root), workload: 'train', command: spy }))?.path).toBe(p);
    const seen = JSON.parse(readFileSync(out, 'utf8')) as { argv: string[]; env: Record<string, string> };
    expect(seen.argv).toEqual([p]);
    expect(seen.env.CHECKPOINT_PATH).toBe(p);
    expect(seen.env.SPOTFLEET_WORKLOAD).toBe('train');
    expect(seen.env.AWS_SECRET_ACCESS_KEY).toBeUndefined();
  });

  it('a command that does not finish in time fails the check', async () => {
    const root = tempDir();
    writeCheckpoints(root, [1]);
    const st = new LocalfsStorage('lab');
    const t0 = Date.now();
    expect(await st.verify({ node: node(root), workload: 'train', command: ['sleep', '10'], commandTimeoutMs: 300 })).toBeNull();
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('keeps only the newest N, and always the one it returns', async () => {
    const root = tempDir();
    const paths = writeCheckpoints(root, [1, 2, 3, 4, 5], [4, 5]);
    const dir = join(root, 'checkpoints', 'train');
    writeFileSync(join(dir, '.ckpt-step-6.json.tmp'), 'in progress');
    const st = new LocalfsStorage('lab');
    const got = await st.verify({ node: node(root), workload: 'train', command: VERIFY, keep: 2 });
    expect(got?.path).toBe(paths[2]);
    // The newest two (corrupt, but the newest) and the verified step 3 stay; 1 and 2 are gone;
    // the file being written is never touched.
    expect(readdirSync(dir).sort()).toEqual(['.ckpt-step-6.json.tmp', 'ckpt-step-000000003.json', 'ckpt-step-000000004.json', 'ckpt-step-000000005.json']);
    await st.verify({ node: node(root), workload: 'train', keep: 1 });
    expect(readdirSync(dir).sort()).toEqual(['.ckpt-step-6.json.tmp', 'ckpt-step-000000005.json']);
  });
});
