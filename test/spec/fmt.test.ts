// fmt: canonical order, comments kept, idempotent (property), data unchanged, and the CLI's
// --check (exit 3), --diff and in-place rewrite, run through the built CLI.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { SpecError } from '../../src/core/errors.js';
import { unifiedDiff } from '../../src/spec/diff.js';
import { formatFleetText, KEY_ORDER } from '../../src/spec/fmt.js';

const root = resolve(import.meta.dirname, '../..');
const cli = join(root, 'dist/src/cli/main.js');
const goodDir = join(root, 'test/fixtures/good');
const goods = readdirSync(goodDir).filter((n) => n.endsWith('.yaml')).sort().map((n) => readFileSync(join(goodDir, n), 'utf8'));
const tmp = mkdtempSync(join(tmpdir(), 'spotfleet-fmt-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const MESSY = `# fleet for the nlp team
kind: Fleet   # always Fleet
apiVersion: spotfleet.dev/v1
workloads:
    # the big one
    - gpus: 4
      name: train-a   # keep this name
      fallback: { minDwell: 30m, to: on-demand }
      image: registry.local/train:1.2
    - {gpus: 1, name: b, image: y, extra: 1}
metadata:
    name: research
pools:
  - capacity: spot
    name: spot-v100
    provider: market
providers:
  market: {config: {trace: ./t.csv}, type: sim}
`;

describe('formatFleetText', () => {
  it('orders keys canonically, keeps comments, uses 2-space indentation', () => {
    const out = formatFleetText(MESSY, 'f.yaml');
    expect(out).toBe(`# fleet for the nlp team
apiVersion: spotfleet.dev/v1
kind: Fleet   # always Fleet
metadata:
  name: research
providers:
  market: { type: sim, config: { trace: ./t.csv } }
pools:
  - name: spot-v100
    provider: market
    capacity: spot
workloads:
  # the big one
  - name: train-a   # keep this name
    image: registry.local/train:1.2
    gpus: 4
    fallback: { to: on-demand, minDwell: 30m }
  - { name: b, image: y, gpus: 1, extra: 1 }
`);
    expect(parse(out)).toEqual(parse(MESSY));
  });

  it("leaves the project's own examples alone: aligned comments and [\"node\", ...] lists stay", () => {
    for (const ex of ['quickstart', 'molt', 'ssh-docker']) {
      const text = readFileSync(join(root, 'examples', ex, 'fleet.yaml'), 'utf8');
      expect(formatFleetText(text, `${ex}.yaml`), ex).toBe(text);
    }
    const aligned = 'apiVersion: spotfleet.dev/v1\nkind: Fleet\nmetadata: {name: x}\nworkloads:\n    - command: [ "node", "t.mjs" ]   # the trainer\n      name: a                        # its name\n';
    const once = formatFleetText(aligned, 'a.yaml');
    expect(once).toBe('apiVersion: spotfleet.dev/v1\nkind: Fleet\nmetadata: { name: x }\nworkloads:\n  - name: a                        # its name\n    command: ["node", "t.mjs"]   # the trainer\n');
    expect(formatFleetText(once, 'a.yaml')).toBe(once);
  });

  it('refuses a file that does not parse', () => {
    expect(() => formatFleetText('a: [1, 2\n', 'bad.yaml')).toThrow(SpecError);
  });

  it('leaves formatted fixtures alone', () => {
    for (const g of goods) expect(formatFleetText(formatFleetText(g, 'g.yaml'), 'g.yaml')).toBe(formatFleetText(g, 'g.yaml'));
  });

  it('is idempotent and keeps the data, for shuffled and restyled fleets (property)', () => {
    const shuffleKeys = (v: unknown, seed: number): unknown => {
      if (Array.isArray(v)) return v.map((x, i) => shuffleKeys(x, seed + i));
      if (v && typeof v === 'object') {
        const entries = Object.entries(v);
        const rot = entries.length ? seed % entries.length : 0;
        return Object.fromEntries([...entries.slice(rot), ...entries.slice(0, rot)].reverse().map(([k, x], i) => [k, shuffleKeys(x, seed * 7 + i)]));
      }
      return v;
    };
    fc.assert(
      fc.property(fc.constantFrom(...goods), fc.nat(), fc.integer({ min: 1, max: 6 }), fc.boolean(), fc.constantFrom(...KEY_ORDER.workload), (g, seed, indent, flow, extraKey) => {
        const data = shuffleKeys(parse(g), seed) as Record<string, unknown>;
        (data)[`x-${extraKey}`] = seed;
        const text = `# comment ${seed}\n${stringify(data, { indent, collectionStyle: flow ? 'flow' : 'any' })}`;
        const once = formatFleetText(text, 'p.yaml');
        expect(formatFleetText(once, 'p.yaml')).toBe(once);
        expect(parse(once)).toEqual(parse(text));
        expect(once.startsWith(`# comment ${seed}\n`)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});

describe('unifiedDiff', () => {
  it('matches diff -u hunks', () => {
    const a = 'a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n';
    const b = 'a\nb\nC\nd\ne\nf\ng\nh\ni\nj\nk\n';
    expect(unifiedDiff(a, b, 'x', 'y')).toBe('--- x\n+++ y\n@@ -1,6 +1,6 @@\n a\n b\n-c\n+C\n d\n e\n f\n@@ -8,3 +8,4 @@\n h\n i\n j\n+k\n');
    expect(unifiedDiff(a, a, 'x', 'y')).toBe('');
  });
});

describe('spotfleet fmt (built CLI)', () => {
  const run = (args: string[], cwd: string): { status: number | null; out: string; stdout: string } => {
    const r = spawnSync(process.execPath, [cli, ...args], { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
    return { status: r.status, out: `${r.stdout}${r.stderr}`, stdout: r.stdout };
  };

  it('--check exits 3 and writes nothing; --diff prints a diff; plain fmt rewrites; then --check exits 0', () => {
    const dir = join(tmp, 'fleet');
    mkdirSync(dir);
    writeFileSync(join(dir, 'a.yaml'), MESSY);
    const clean = formatFleetText(MESSY, 'a.yaml');
    writeFileSync(join(dir, 'b.yaml'), clean);
    const check = run(['fmt', 'fleet', '--check'], tmp);
    expect(check.status, check.out).toBe(3);
    expect(check.stdout.trim()).toBe('fleet/a.yaml');
    expect(readFileSync(join(dir, 'a.yaml'), 'utf8')).toBe(MESSY);
    const diff = run(['fmt', 'fleet', '--diff'], tmp);
    expect(diff.status).toBe(0);
    expect(diff.stdout).toContain('--- fleet/a.yaml (original)');
    expect(diff.stdout).toContain('-kind: Fleet   # always Fleet\n');
    expect(diff.stdout).toContain('+kind: Fleet   # always Fleet\n');
    expect(diff.stdout).toContain('+  - name: train-a   # keep this name');
    expect(readFileSync(join(dir, 'a.yaml'), 'utf8')).toBe(MESSY);
    const fmt = run(['fmt', 'fleet'], tmp);
    expect(fmt.status, fmt.out).toBe(0);
    expect(fmt.stdout.trim()).toBe('fleet/a.yaml');
    expect(readFileSync(join(dir, 'a.yaml'), 'utf8')).toBe(clean);
    expect(readdirSync(dir).sort()).toEqual(['a.yaml', 'b.yaml']);
    expect(run(['fmt', 'fleet', '--check'], tmp).status).toBe(0);
  });

  it('refuses to rewrite anything when a file does not parse', () => {
    const dir = join(tmp, 'broken');
    mkdirSync(dir);
    writeFileSync(join(dir, 'a.yaml'), MESSY);
    writeFileSync(join(dir, 'b.yaml'), 'workloads: [ { name: a\n');
    const r = run(['fmt', 'broken'], tmp);
    expect(r.status).toBe(1);
    expect(r.out).toMatch(/broken\/b\.yaml:\d+:\d+: YAML syntax error/);
    expect(r.out).not.toMatch(/^\s{4}at /m);
    expect(readFileSync(join(dir, 'a.yaml'), 'utf8')).toBe(MESSY);
  });
});
