// The spec watcher against real file edits in a temporary folder (inotify through chokidar).
import { setTimeout as sleep } from 'node:timers/promises';
import { mkdirSync, mkdtempSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { watchSpec, type SpecChange, type SpecWatcher } from '../../src/watch/spec-watcher.js';

async function until(cond: () => boolean, what: string, limitMs = 8000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > limitMs) throw new Error(`timed out waiting for: ${what}`);
    await sleep(10);
  }
}

let dir: string;
const watchers: SpecWatcher[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'spotfleet-specwatch-'));
});
afterEach(async () => {
  for (const w of watchers.splice(0)) await w.close();
  rmSync(dir, { recursive: true, force: true });
});

async function start(paths: string | string[], debounceMs = 100) {
  const changes: SpecChange[] = [];
  const errors: unknown[] = [];
  const w = await watchSpec(paths, { debounceMs, onChange: (c) => changes.push(c), onError: (e) => errors.push(e) });
  watchers.push(w);
  const all = () => changes.flatMap((c) => c.paths);
  return { w, changes, errors, all };
}

describe('watchSpec on a file', () => {
  it('reports edits of the file, not of its neighbours', async () => {
    const spec = join(dir, 'fleet.yaml');
    writeFileSync(spec, 'kind: Fleet\n');
    writeFileSync(join(dir, 'README.md'), 'x');
    mkdirSync(join(dir, '.spotfleet'));
    const { changes, all, errors } = await start(spec);
    writeFileSync(join(dir, 'README.md'), 'y');
    writeFileSync(join(dir, 'other.yaml'), 'a: 1\n');
    writeFileSync(join(dir, '.spotfleet', 'state.json'), '{}');
    writeFileSync(spec, 'kind: Fleet\nmetadata: {name: a}\n');
    await until(() => changes.length > 0, 'a change');
    await sleep(300);
    expect(new Set(all())).toEqual(new Set([spec]));
    expect(errors).toEqual([]);
  });

  it('debounces a burst of writes into one callback', async () => {
    const spec = join(dir, 'fleet.yaml');
    writeFileSync(spec, 'v: 0\n');
    const { changes } = await start(spec, 300);
    for (let i = 1; i <= 5; i++) {
      writeFileSync(spec, `v: ${i}\n`);
      await sleep(10);
    }
    await until(() => changes.length > 0, 'the debounced change');
    await sleep(500);
    expect(changes).toEqual([{ paths: [spec] }]);
  });

  it('survives atomic saves (write a temp file, rename it over the spec)', async () => {
    const spec = join(dir, 'fleet.yaml');
    writeFileSync(spec, 'v: 0\n');
    const { changes, all } = await start(spec);
    const tmp = join(dir, '.fleet.yaml.swp');
    writeFileSync(tmp, 'v: 1\n');
    renameSync(tmp, spec);
    await until(() => changes.length === 1, 'the atomic save');
    expect(all()).toEqual([spec]);
    // The inode changed: a later plain edit must still be seen.
    await sleep(150);
    writeFileSync(spec, 'v: 2\n');
    await until(() => changes.length === 2, 'the edit after the rename');
    // And a second atomic save, the way editors keep doing it.
    await sleep(150);
    writeFileSync(join(dir, 'fleet.yaml~'), 'v: 3\n');
    renameSync(join(dir, 'fleet.yaml~'), spec);
    await until(() => changes.length === 3, 'the second atomic save');
    expect(new Set(all())).toEqual(new Set([spec]));
  });

  it('reports a spec file that appears after the watch started, and its removal', async () => {
    const spec = join(dir, 'fleet.yaml');
    const { changes } = await start(spec);
    writeFileSync(spec, 'v: 1\n');
    await until(() => changes.length === 1, 'the new file');
    await sleep(150);
    unlinkSync(spec);
    await until(() => changes.length === 2, 'the removal');
    expect(changes[1]).toEqual({ paths: [spec] });
  });
});

describe('watchSpec on a folder', () => {
  it('reports the top-level *.yaml and *.yml files a fleet folder is made of, and nothing else', async () => {
    mkdirSync(join(dir, 'fleet', 'policies'), { recursive: true });
    mkdirSync(join(dir, 'fleet', '.spotfleet'));
    mkdirSync(join(dir, 'fleet', 'node_modules'));
    const root = join(dir, 'fleet');
    writeFileSync(join(root, 'main.yaml'), 'a: 1\n');
    writeFileSync(join(root, 'policies', 'p.yml'), 'a: 1\n');
    const { changes, all } = await start(root);

    writeFileSync(join(root, 'notes.txt'), 'x');
    writeFileSync(join(root, '.hidden.yaml'), 'x');
    writeFileSync(join(root, '.spotfleet', 'state.yaml'), 'x');
    writeFileSync(join(root, 'node_modules', 'x.yaml'), 'x');
    writeFileSync(join(root, 'policies', 'p.yml'), 'a: 2\n');
    writeFileSync(join(root, 'extra.yaml'), 'b: 1\n');
    writeFileSync(join(root, 'main.yaml'), 'a: 2\n');
    await until(() => all().length >= 2, 'both top-level yaml changes');
    await sleep(300);
    expect([...new Set(all())].sort()).toEqual([join(root, 'extra.yaml'), join(root, 'main.yaml')]);

    const n = changes.length;
    unlinkSync(join(root, 'main.yaml'));
    await until(() => changes.length > n, 'the removal');
    expect(changes[n]?.paths).toEqual([join(root, 'main.yaml')]);
  });

  it('is deaf to runtime, checkpoint and state folders written under the fleet folder', async () => {
    const root = join(dir, 'fleet');
    mkdirSync(root);
    writeFileSync(join(root, 'fleet.yaml'), 'a: 1\n');
    for (const target of [root, join(root, 'fleet.yaml')]) {
      const { changes, w } = await start(target);
      // What running workloads and providers write while watch runs: new folders, files, yaml too.
      for (let i = 0; i < 5; i++) {
        mkdirSync(join(root, 'checkpoints', `train-${i}`), { recursive: true });
        writeFileSync(join(root, 'checkpoints', `train-${i}`, 'ckpt-1.json'), '{}');
        mkdirSync(join(root, 'runtime', `c${i}`), { recursive: true });
        writeFileSync(join(root, 'runtime', `c${i}`, 'config.yaml'), 'x: 1\n');
        mkdirSync(join(root, 'state', 'deep', `d${i}`), { recursive: true });
      }
      await sleep(600);
      expect(changes).toEqual([]);
      writeFileSync(join(root, 'fleet.yaml'), 'a: 2\n');
      await until(() => changes.length > 0, 'the spec edit');
      expect(changes.flatMap((c) => c.paths)).toEqual([join(root, 'fleet.yaml')]);
      await w.close();
      rmSync(join(root, 'checkpoints'), { recursive: true });
      rmSync(join(root, 'runtime'), { recursive: true });
      rmSync(join(root, 'state'), { recursive: true });
    }
  });

  it('watches several targets at once (a spec file and a policies folder)', async () => {
    const spec = join(dir, 'fleet.yaml');
    writeFileSync(spec, 'a: 1\n');
    mkdirSync(join(dir, 'policies'));
    const { w, all } = await start([spec, join(dir, 'policies')]);
    expect(w.targets).toEqual([spec, join(dir, 'policies')].sort());
    writeFileSync(join(dir, 'policies', 'default.yaml'), 'rules: []\n');
    await until(() => all().length > 0, 'the policy change');
    expect(all()).toEqual([join(dir, 'policies', 'default.yaml')]);
  });

  it('update() follows the policy files the spec names, wherever they are', async () => {
    const spec = join(dir, 'fleet.yaml');
    writeFileSync(spec, 'a: 1\n');
    mkdirSync(join(dir, 'shared', 'policies'), { recursive: true });
    const pa = join(dir, 'shared', 'policies', 'a.yaml');
    const pb = join(dir, 'shared', 'policies', 'b.yaml');
    writeFileSync(pa, 'rules: []\n');
    writeFileSync(pb, 'rules: []\n');
    const { w, changes, all } = await start(spec);
    writeFileSync(pa, 'rules: [1]\n');
    await sleep(400);
    expect(changes).toEqual([]);

    await w.update([spec, pa]);
    expect(w.targets).toEqual([pa, spec].sort());
    writeFileSync(pa, 'rules: [2]\n');
    writeFileSync(pb, 'rules: [2]\n');
    await until(() => changes.length > 0, 'the named policy change');
    await sleep(300);
    expect(all()).toEqual([pa]);

    // No longer named: no longer heard. The spec itself still is.
    await w.update([spec]);
    const n = changes.length;
    writeFileSync(pa, 'rules: [3]\n');
    await sleep(400);
    expect(changes.length).toBe(n);
    writeFileSync(spec, 'a: 2\n');
    await until(() => changes.length > n, 'the spec edit');
    expect(changes[n]?.paths).toEqual([spec]);
  });

  it('close() stops reporting', async () => {
    const spec = join(dir, 'fleet.yaml');
    writeFileSync(spec, 'a: 1\n');
    const { w, changes } = await start(spec);
    await w.close();
    writeFileSync(spec, 'a: 2\n');
    await sleep(400);
    expect(changes).toEqual([]);
  });
});
