// The spec watcher against real file edits in a temporary folder (inotify through chokidar).
import { mkdirSync, mkdtempSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { watchSpec, type SpecChange, type SpecWatcher } from '../../src/watch/spec-watcher.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
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
  it('reports *.yaml and *.yml anywhere below, and nothing else', async () => {
    mkdirSync(join(dir, 'fleet', 'policies'), { recursive: true });
    mkdirSync(join(dir, 'fleet', '.spotfleet'));
    mkdirSync(join(dir, 'fleet', 'node_modules'));
    const root = join(dir, 'fleet');
    writeFileSync(join(root, 'main.yaml'), 'a: 1\n');
    writeFileSync(join(root, 'policies', 'p.yml'), 'a: 1\n');
    const { changes, all } = await start(root);

    writeFileSync(join(root, 'notes.txt'), 'x');
    writeFileSync(join(root, '.spotfleet', 'state.yaml'), 'x');
    writeFileSync(join(root, 'node_modules', 'x.yaml'), 'x');
    writeFileSync(join(root, 'policies', 'p.yml'), 'a: 2\n');
    writeFileSync(join(root, 'extra.yaml'), 'b: 1\n');
    await until(() => all().length >= 2, 'both yaml changes');
    await sleep(300);
    expect([...new Set(all())].sort()).toEqual([join(root, 'extra.yaml'), join(root, 'policies', 'p.yml')]);

    const n = changes.length;
    unlinkSync(join(root, 'main.yaml'));
    await until(() => changes.length > n, 'the removal');
    expect(changes[n]?.paths).toEqual([join(root, 'main.yaml')]);
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
