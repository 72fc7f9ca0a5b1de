// e2e: what `npm pack` would publish, read from `npm pack --dry-run --json` over the built tree. The
// test fakes (test/fakes/, built to dist/test/fakes/ for the lab) and the rest of the built test code
// stay out of the package; the CLI and the molt reference server (shipped on purpose) are in it.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

describe('the npm package', () => {
  it('ships the CLI and the molt reference server, and no test fakes or other test code', () => {
    expect(existsSync('dist/test/fakes/metadata-main.js'), 'run `npm run build` first').toBe(true);
    const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const [pack] = JSON.parse(r.stdout) as { files: { path: string }[] }[];
    const paths = (pack?.files ?? []).map((f) => f.path);
    expect(paths).toContain('dist/src/cli/main.js');
    expect(paths).toContain('dist/providers/molt/reference-main.js');
    expect(paths).toContain('dist/providers/molt/reference-server.js');
    expect(paths.filter((p) => p.startsWith('dist/test/') || p.includes('fakes/'))).toEqual([]);
  });
});
