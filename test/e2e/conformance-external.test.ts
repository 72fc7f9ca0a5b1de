// e2e: an external provider package runs the conformance suite with one import. The package as
// `npm pack` makes it is unpacked into a temp project's node_modules (vitest linked from ours), and
// a provider there imports `spotfleet/conformance` and runs it with vitest, as a plugin author would:
// it passes; with a fixture part missing it fails under CI=true, and skips naming it otherwise.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const PROVIDER = (withReceiver: boolean) => `
import { describeProviderConformance } from 'spotfleet/conformance';

const sent = [];
const provider = { name: 'pager', type: 'pager', alerts: { send: async (a) => { sent.push(JSON.stringify(a)); } } };

describeProviderConformance('pager', async () => ({
  provider,
  fleet: 'conf',
  trainer: { command: ['true'] },
  ${withReceiver ? 'alertsReceived: async () => [...sent],' : ''}
}));
`;

describe('spotfleet/conformance from an external package', () => {
  let dir = '';
  beforeAll(() => {
    expect(existsSync('dist/src/providers/conformance.js'), 'run `npm run build` first').toBe(true);
    dir = mkdtempSync(join(tmpdir(), 'sf-plugin-'));
    const packed = spawnSync('npm', ['pack', '--ignore-scripts', '--pack-destination', dir], { encoding: 'utf8' });
    expect(packed.status, packed.stderr).toBe(0);
    const tgz = readdirSync(dir).find((f) => f.endsWith('.tgz'))!;
    mkdirSync(join(dir, 'node_modules', 'spotfleet'), { recursive: true });
    const untar = spawnSync('tar', ['-xzf', join(dir, tgz), '-C', join(dir, 'node_modules', 'spotfleet'), '--strip-components=1']);
    expect(untar.status).toBe(0);
    symlinkSync(resolve('node_modules', 'vitest'), join(dir, 'node_modules', 'vitest'));
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'spotfleet-provider-pager', type: 'module', private: true }));
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const run = (file: string, env: Record<string, string>) =>
    spawnSync(process.execPath, [resolve('node_modules/vitest/vitest.mjs'), 'run', file, '--reporter=verbose'], {
      cwd: dir,
      encoding: 'utf8',
      env: { ...process.env, CI: '', SPOTFLEET_REAL_PEERS: '', ...env },
    });

  it('passes with a complete fixture, not-applicable checks skipped with the reason', () => {
    writeFileSync(join(dir, 'complete.test.js'), PROVIDER(true));
    const r = run('complete.test.js', { CI: 'true' });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/alerts: send delivers the alert/);
    expect(r.stdout).toContain('not applicable: provider "pager" (pager) has no runtime capability');
  });

  it('fails under CI=true when a fixture part is missing, and names it when it only skips', () => {
    writeFileSync(join(dir, 'missing.test.js'), PROVIDER(false));
    const ci = run('missing.test.js', { CI: 'true' });
    expect(ci.status).not.toBe(0);
    expect(ci.stdout + ci.stderr).toContain('the fixture lacks alertsReceived for the alerts check');
    const dev = run('missing.test.js', {});
    expect(dev.status, dev.stdout + dev.stderr).toBe(0);
    expect(dev.stdout).toContain('the fixture lacks alertsReceived for the alerts check (this fails under CI=true or SPOTFLEET_REAL_PEERS=1)');
  });
});
