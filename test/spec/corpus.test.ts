// The broken-fleet corpus, run through the BUILT CLI as a user runs it: every file in
// test/fixtures/bad/ must exit 1 with `file:line:col: message` and never print a stack trace.
// Also the generated 50 MB file (never committed). Needs `npm run build` first (npm test does it).
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
const cli = join(root, 'dist/src/cli/main.js');
const badDir = join(root, 'test/fixtures/bad');
const goodDir = join(root, 'test/fixtures/good');

interface Expectation {
  file: string;
  line: number;
  col: number;
  message: string;
}
const table = JSON.parse(readFileSync(join(badDir, 'expected.json'), 'utf8')) as Record<string, Expectation>;

function runCli(args: string[], cwd: string): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/** Async variant so the corpus runs a few CLIs at once. */
function runCliAsync(args: string[], cwd: string): Promise<{ status: number | null; out: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [cli, ...args], { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
      done({ status: code, out: `${stdout}${stderr}` });
    });
  });
}

function assertNoStack(out: string): void {
  expect(out).not.toMatch(/^\s{4}at /m);
  expect(out).not.toContain('Internal error');
}

describe('broken fleet corpus (built CLI)', () => {
  it('the CLI is built', () => {
    expect(existsSync(cli), 'run `npm run build` first').toBe(true);
  });

  it('has at least 45 broken fleets, each with an expectation', () => {
    const entries = readdirSync(badDir).filter((n) => n !== 'expected.json').sort();
    expect(entries.length).toBeGreaterThanOrEqual(45);
    expect(Object.keys(table).sort()).toEqual(entries);
  });

  for (const [name, exp] of Object.entries(table)) {
    it.concurrent(`${name}: exit 1 at ${exp.file}:${exp.line}:${exp.col}`, async () => {
      const r = await runCliAsync(['validate', name], badDir);
      expect(r.status, r.out).toBe(1);
      const lines = r.out.split('\n');
      const hit = lines.find((l) => l.startsWith(`${exp.file}:${exp.line}:${exp.col}: `) && l.includes(exp.message));
      expect(hit, r.out).toBeDefined();
      // every problem line names a position and says what was expected
      for (const l of lines.filter((x) => /^[^\s].*:\d+:\d+: /.test(x))) expect(l).toMatch(/\(expected .+\)$/);
      assertNoStack(r.out);
    });
  }

  it('--json reports the same problem with file, line, col, message, expected', () => {
    const exp = table['unknown-pool-ref.yaml'] as Expectation;
    const r = runCli(['validate', 'unknown-pool-ref.yaml', '--json'], badDir);
    expect(r.status).toBe(1);
    const j = JSON.parse(r.out) as { format_version: string; valid: boolean; errors: Expectation[]; warnings: unknown[] };
    expect(j.format_version).toBe('1.0');
    expect(j.valid).toBe(false);
    expect(j.errors).toContainEqual(expect.objectContaining({ file: exp.file, line: exp.line, col: exp.col, message: expect.stringContaining(exp.message), expected: expect.any(String), path: '/workloads/0/pools/1' }));
  });

  const tmp = mkdtempSync(join(tmpdir(), 'spotfleet-corpus-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('a 50 MB file is refused at 1:1 without being parsed', () => {
    const big = join(tmp, 'huge.yaml');
    const fd = openSync(big, 'w');
    writeSync(fd, 'apiVersion: spotfleet.dev/v1\nkind: Fleet\nmetadata: { name: huge }\nworkloads:\n');
    const chunk = Buffer.from('  - { name: w, image: x, gpus: 1 }\n'.repeat(30_000));
    let size = 0;
    while (size < 50 * 1024 * 1024) size += writeSync(fd, chunk);
    closeSync(fd);
    const r = runCli(['validate', big], tmp);
    expect(r.status).toBe(1);
    expect(r.out).toMatch(/huge\.yaml:1:1: file is too large \(5\d\.\d MB\)/);
    assertNoStack(r.out);
  });

  it('a missing path is an error with a position, not a crash', () => {
    const r = runCli(['validate', 'nope.yaml'], tmp);
    expect(r.status).toBe(1);
    expect(r.out).toContain('nope.yaml:1:1: no such file or folder');
    assertNoStack(r.out);
  });

  it('valid fleets exit 0, paths printed relative to the cwd', () => {
    for (const f of readdirSync(goodDir).filter((n) => n.endsWith('.yaml'))) {
      const r = runCli(['validate', join(goodDir, f)], root);
      expect(r.status, r.out).toBe(0);
      expect(r.out).toContain('is valid');
    }
    const j = runCli(['validate', 'test/fixtures/good/design.yaml', '--json'], root);
    expect(j.status).toBe(0);
    expect(JSON.parse(j.out)).toMatchObject({ format_version: '1.0', valid: true, errors: [] });
  });

  it('warnings are printed with a warning: prefix and keep exit 0', () => {
    const f = join(tmp, 'warn.yaml');
    writeFileSync(f, 'apiVersion: spotfleet.dev/v1\nkind: Fleet\nmetadata: { name: w }\nproviders:\n  m: { type: sim, config: { trace: ./t.csv } }\npools:\n  - { name: s, provider: m, capacity: spot }\nworkloads:\n  - { name: a, image: x }\n');
    const r = runCli(['validate', 'warn.yaml'], tmp);
    expect(r.status, r.out).toBe(0);
    expect(r.out).toContain('warn.yaml:9:13: warning: workload "a" may run on spot');
  });
});
