// The state under faults, through the built CLI (issue #11):
// - a state of the wrong structure: status, plan and savings say so and name the backup, no stack
//   trace (they printed "Internal error" and a trace);
// - a full disk (a small tmpfs this test mounts): the lock is either taken or not there at all (a
//   0-byte state.lock used to lock everyone out), a state write that fails says it was NOT saved
//   and where the run's changes are kept (not "State was saved"), leaves no .tmp file, and once
//   there is room again the next apply recovers without hand edits;
// - state.json deleted while workloads run: the next apply re-adopts them and the savings
//   history is still there.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cli, fleetYaml, runningByWorkload, tempFleet, type TestWorkload } from './helpers.js';

const dirs: { dir: string; state?: string }[] = [];
const mounts: string[] = [];
afterAll(() => {
  for (const d of dirs) cli(['destroy', '--auto-approve', ...(d.state ? ['--state', d.state] : []), d.dir], { cwd: d.dir });
  for (const m of mounts) execFileSync('umount', [m]);
});

// Quiet workloads: their node folders live under the state folder, on the tmpfs, and must not
// need disk space themselves while the disk is full. They checkpoint only when asked.
const QUIET = ['sh', '-c', 'trap \'date > "$CHECKPOINT_DIR/ckpt"\' USR1; trap \'date > "$CHECKPOINT_DIR/ckpt"; exit 0\' TERM; while :; do sleep 0.1; done'];
const quiet = (name: string): TestWorkload => ({ name, capacity: 'on-demand', command: QUIET });

function noStackTrace(text: string): void {
  expect(text).not.toMatch(/Internal error|\n\s+at .+:\d+:\d+/);
}

describe('a state file of the wrong structure', () => {
  it('status, plan and savings refuse it clearly and name the backup', () => {
    const dir = tempFleet([quiet('a')]);
    dirs.push({ dir });
    expect(cli(['apply', '--auto-approve', dir], { cwd: dir }).code).toBe(0);
    const path = join(dir, '.spotfleet', 'state.json');
    const state = JSON.parse(readFileSync(path, 'utf8')) as { resources: Record<string, Record<string, unknown>> };
    (state.resources['workload.a'] as Record<string, unknown>).moves = { broken: true };
    (state.resources['workload.a'] as Record<string, unknown>).gpus = 'one';
    writeFileSync(path, JSON.stringify(state));
    for (const cmd of ['status', 'plan', 'savings']) {
      const r = cli([cmd, dir], { cwd: dir });
      expect(r.code, cmd).toBe(1);
      expect(r.stderr).toMatch(/does not have the structure of a spotfleet state: .*resources\.workload\.a\.gpus must be integer/);
      expect(r.stderr).toContain(`${path}.backup`);
      noStackTrace(r.stderr);
    }
    // The way out it names works: the backup is a good state.
    writeFileSync(path, readFileSync(`${path}.backup`));
    expect(cli(['status', dir], { cwd: dir }).code).toBe(0);
  });
});

const canMount = process.getuid?.() === 0;
const describeRoot = canMount || process.env.SPOTFLEET_REAL_PEERS === '1' ? describe : describe.skip;

describeRoot('a full disk (ENOSPC on a tmpfs)', () => {
  it('never leaves a half-written lock or a .tmp, never claims the state was saved, and recovers', () => {
    const dir = tempFleet([quiet('a')]);
    const mnt = mkdtempSync(join(tmpdir(), 'sf-tmpfs-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt]);
    mounts.push(mnt);
    const state = join(mnt, 'state');
    dirs.push({ dir, state });
    const run = (...args: string[]) => cli([...args, '--state', state, dir], { cwd: dir });
    expect(run('apply', '--auto-approve').code).toBe(0);

    // Fill the disk in page-sized files.
    const filler = join(mnt, 'filler');
    mkdirSync(filler);
    let n = 0;
    for (;;) {
      try {
        writeFileSync(join(filler, String(n)), Buffer.alloc(4096, 1));
        n++;
      } catch (e) {
        expect((e as NodeJS.ErrnoException).code).toBe('ENOSPC');
        rmSync(join(filler, String(n)), { force: true });
        break;
      }
    }
    const leftovers = (): string[] => readdirSync(state).filter((f) => f.endsWith('.tmp') || f === 'state.lock' || f.includes('.tmp-'));

    // No room at all: the lock cannot be written, and nothing is left behind.
    writeFileSync(join(dir, 'fleet.yaml'), fleetYaml([quiet('a'), quiet('b')]));
    let r = run('apply', '--auto-approve');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot take the state lock .*state\.lock: no space left on the device/);
    noStackTrace(r.stderr);
    expect(leftovers()).toEqual([]);
    // Later commands are not locked out ("locked by unknown holder" before).
    r = run('plan');
    expect(r.stderr).not.toMatch(/locked by/);

    // Room for the lock only: the state write fails, and apply says so truthfully.
    rmSync(join(filler, String(n - 1)));
    r = run('apply', '--auto-approve');
    expect(r.code).toBe(1);
    expect(`${r.stdout}${r.stderr}`).not.toMatch(/State was saved|Apply complete/);
    expect(r.stderr).toMatch(/the state could not be written/);
    const kept = /kept in (\S+?) \(mode 0600\)/.exec(r.stderr)?.[1];
    expect(kept, r.stderr).toBeDefined();
    expect(existsSync(kept as string)).toBe(true);
    noStackTrace(r.stderr);
    expect(leftovers()).toEqual([]);

    // Room again: the next apply converges without hand edits.
    rmSync(filler, { recursive: true, force: true });
    r = run('apply', '--auto-approve');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Apply complete!/);
    expect(leftovers()).toEqual([]);
    expect(run('plan', '--detailed-exitcode').code).toBe(0);
    rmSync(basename(dirname(kept as string)).startsWith('spotfleet-unsaved-') ? dirname(kept as string) : (kept as string), { recursive: true, force: true });
  }, 120_000);
});

describe('state.json deleted while workloads run', () => {
  it('the next apply re-adopts them and the savings history is still there', async () => {
    const dir = tempFleet([quiet('a')]);
    dirs.push({ dir });
    expect(cli(['apply', '--auto-approve', dir], { cwd: dir }).code).toBe(0);
    // Move it to another node (a history entry and a ledger segment), then lose the state.
    const drill = cli(['drill', 'a', dir, '--deadline', '30s', '--auto-approve'], { cwd: dir });
    expect(drill.code, drill.stdout + drill.stderr).toBe(0);
    const before = cli(['savings', '--json', dir], { cwd: dir });
    const summary = (s: string) => (JSON.parse(s) as { rows: { key: string; migrations: number; on_demand_hours?: number }[] }).rows.find((x) => x.key === 'a');
    expect(summary(before.stdout)?.migrations).toBe(1);
    rmSync(join(dir, '.spotfleet', 'state.json'));
    rmSync(join(dir, '.spotfleet', 'state.json.backup'));
    const r = cli(['apply', '--auto-approve', dir], { cwd: dir });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect((await runningByWorkload(dir)).get('a')).toHaveLength(1);
    const after = cli(['savings', '--json', dir], { cwd: dir });
    expect(after.code).toBe(0);
    expect(summary(after.stdout)?.migrations).toBe(1);
    const ledger = (JSON.parse(readFileSync(join(dir, '.spotfleet', 'state.json'), 'utf8')) as { ledger: unknown[] }).ledger;
    expect(ledger.length).toBeGreaterThan(0);
  }, 120_000);
});
