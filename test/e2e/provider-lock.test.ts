// External providers come only from installed packages pinned in .spotfleet.lock.json (issue #11):
// through the built CLI, `validate` of a spec naming `package: ./x.cjs` runs nothing (x.cjs would
// write a marker file), an installed package runs only once `spotfleet providers lock` pinned it,
// and a package whose files changed after that is refused again, before any of it runs.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli } from './helpers.js';

function fleet(pkg: string): string {
  return `apiVersion: spotfleet.dev/v1
kind: Fleet
metadata: { name: lockme }
providers:
  lab:
    type: local
    config: { nodes: [{ name: n1, gpuModel: V100, gpus: 1, capacity: on-demand, pricePerHour: 1 }] }
  extra:
    type: fake
    package: ${pkg}
    config: {}
pools: [{ name: p, provider: lab, capacity: on-demand }]
workloads: []
`;
}

/** Code that leaves a marker file when it runs, as a provider module would run on import. */
function markerCode(marker: string, esm: boolean): string {
  const body = `writeFileSync(${JSON.stringify(marker)}, 'ran\\n');`;
  const provider = `{ type: 'fake', description: 'fake', configSchema: { type: 'object' }, create: (c, ctx) => ({ name: ctx.name, type: 'fake' }) }`;
  return esm ? `import { writeFileSync } from 'node:fs';\n${body}\nexport const provider = ${provider};\n` : `const { writeFileSync } = require('node:fs');\n${body}\nexports.provider = ${provider};\n`;
}

describe('external providers and the lock file', () => {
  it('validate runs no code named by a path in the spec', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sf-lock-'));
    const marker = join(dir, 'marker');
    writeFileSync(join(dir, 'x.cjs'), markerCode(marker, false));
    writeFileSync(join(dir, 'fleet.yaml'), fleet('./x.cjs'));
    const r = cli(['validate', 'fleet.yaml'], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^fleet\.yaml:10:14: .*package/m);
    expect(existsSync(marker)).toBe(false);
    // Nor does plan, or `providers lock`.
    expect(cli(['plan', 'fleet.yaml'], { cwd: dir }).code).toBe(1);
    expect(cli(['providers', 'lock', 'fleet.yaml'], { cwd: dir }).code).toBe(1);
    expect(existsSync(marker)).toBe(false);
    rmSync(dir, { recursive: true, force: true });
  });

  it('an installed package runs only once pinned, and not after its files changed', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sf-lock-'));
    const marker = join(dir, 'marker');
    const pkgDir = join(dir, 'node_modules', 'spotfleet-provider-fake');
    mkdirSync(pkgDir, { recursive: true });
    writeFileSync(join(pkgDir, 'package.json'), JSON.stringify({ name: 'spotfleet-provider-fake', version: '1.0.0', type: 'module', main: 'index.js' }));
    writeFileSync(join(pkgDir, 'index.js'), markerCode(marker, true));
    writeFileSync(join(dir, 'fleet.yaml'), fleet('spotfleet-provider-fake'));

    let r = cli(['validate', 'fleet.yaml'], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^fleet\.yaml:10:14: provider "extra": provider package "spotfleet-provider-fake" is not pinned in \.spotfleet\.lock\.json/m);
    expect(r.stderr).toContain('spotfleet providers lock');
    expect(existsSync(marker)).toBe(false);

    r = cli(['providers', 'lock', 'fleet.yaml'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/spotfleet-provider-fake 1\.0\.0 sha256:[0-9a-f]{12}… pinned/);
    expect(existsSync(marker)).toBe(false);
    const lock = JSON.parse(readFileSync(join(dir, '.spotfleet.lock.json'), 'utf8')) as { format_version: string; providers: Record<string, { version: string; hash: string }> };
    expect(lock.format_version).toBe('1');
    expect(lock.providers['spotfleet-provider-fake']).toMatchObject({ version: '1.0.0', hash: expect.stringMatching(/^sha256:[0-9a-f]{64}$/) as unknown });

    r = cli(['validate', 'fleet.yaml'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(marker)).toBe(true);
    rmSync(marker);

    // Someone changes the installed code: refused before it runs.
    writeFileSync(join(pkgDir, 'index.js'), `${markerCode(marker, true)}// changed\n`);
    r = cli(['validate', 'fleet.yaml'], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/do not match the hash pinned in \.spotfleet\.lock\.json/);
    expect(existsSync(marker)).toBe(false);
    // A new version installed but not pinned: refused too.
    writeFileSync(join(pkgDir, 'package.json'), JSON.stringify({ name: 'spotfleet-provider-fake', version: '1.0.1', type: 'module', main: 'index.js' }));
    r = cli(['validate', 'fleet.yaml'], { cwd: dir });
    expect(r.stderr).toMatch(/installed at version 1\.0\.1, but \.spotfleet\.lock\.json pins 1\.0\.0/);
    expect(existsSync(marker)).toBe(false);
    rmSync(dir, { recursive: true, force: true });
  });
});
