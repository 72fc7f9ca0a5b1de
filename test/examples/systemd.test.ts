// The systemd units in examples/systemd: systemd itself accepts them (systemd-analyze verify, with
// ExecStart pointed at the built CLI), their install comments create every folder the units use,
// and no limit or sandboxing meant for the controller applies to trainers that share its cgroup.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const CLI = join(ROOT, 'dist/src/cli/main.js');
const UNITS = ['spotfleet-watch.service', 'spotfleet-watch-local.service'];
const text = (u: string): string => readFileSync(join(ROOT, 'examples/systemd', u), 'utf8');
const settings = (u: string): Map<string, string> => new Map(text(u).split('\n').filter((l) => /^[A-Z]\w*=/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));

describe('examples/systemd', () => {
  it.each(UNITS)('%s passes systemd-analyze verify', (u) => {
    const which = spawnSync('which', ['systemd-analyze'], { encoding: 'utf8' }).stdout.trim();
    if (!which) {
      if (process.env.SPOTFLEET_REAL_PEERS === '1' || process.env.CI === 'true') throw new Error('systemd-analyze is not installed');
      return;
    }
    const dir = mkdtempSync(join(tmpdir(), 'sf-unit-'));
    try {
      const file = join(dir, u);
      writeFileSync(file, text(u).replace('ExecStart=/usr/bin/spotfleet ', `ExecStart=${process.execPath} ${CLI} `));
      const r = spawnSync(which, ['verify', file], { encoding: 'utf8' });
      expect(`${r.stdout}${r.stderr}`.trim()).toBe('');
      expect(r.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.each(UNITS)('%s: the install comments create every folder the unit reads or writes', (u) => {
    const t = text(u);
    const s = settings(u);
    const created = [...t.matchAll(/^#\s+sudo install -d [^\n]*$/gm)].flatMap((m) => m[0].split(/\s+/).filter((w) => w.startsWith('/')));
    const used = [s.get('WorkingDirectory'), s.get('ReadWritePaths'), s.get('EnvironmentFile')?.replace(/^-/, '').replace(/\/env$/, ''), /watch (\S+)/.exec(s.get('ExecStart') ?? '')?.[1]].filter((x): x is string => x !== undefined);
    expect(used.length).toBeGreaterThanOrEqual(4);
    for (const p of used) expect(created, `${p} is created`).toContain(p);
    expect(t).toMatch(/^#\s+sudo install -m 0640 -o root -g spotfleet \/dev\/null \/etc\/spotfleet\/env/m);
  });

  it('the hardened unit holds the controller alone; the local unit sets nothing trainers would share by mistake', () => {
    const remote = settings('spotfleet-watch.service');
    expect(remote.get('KillMode')).toBe('control-group');
    expect(remote.get('MemoryMax')).toBeDefined();
    const local = settings('spotfleet-watch-local.service');
    expect(local.get('KillMode')).toBe('process');
    for (const k of ['MemoryMax', 'MemoryHigh', 'TasksMax', 'CPUQuota', 'SystemCallFilter', 'PrivateDevices', 'MemoryDenyWriteExecute', 'RestrictAddressFamilies', 'CapabilityBoundingSet']) expect(local.has(k), `${k} would apply to the trainers too`).toBe(false);
  });
});
