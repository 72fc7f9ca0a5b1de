// plan/apply/destroy through the built CLI, as a user runs them, with real trainer processes.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { cli, cliAsync, logsOf, openProviders, runningByWorkload, sleep, tempFleet, writeFleet, activeLeases } from './helpers.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) cli(['destroy', '--auto-approve', d], { cwd: d });
});

describe('plan / apply / destroy on the quickstart providers', () => {
  it('applies, converges, moves with a resumed checkpoint, removes, destroys', async () => {
    const dir = tempFleet([{ name: 'train-a' }, { name: 'train-b', gpus: 2 }]);
    dirs.push(dir);
    const first = cli(['apply', '--auto-approve', dir], { cwd: dir });
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toContain('Apply complete! Resources: 4 added, 0 changed, 0 destroyed.');
    let running = await runningByWorkload(dir);
    expect(running.get('train-a')).toHaveLength(1);
    expect(running.get('train-b')).toHaveLength(1);
    expect((await activeLeases(dir)).length).toBe(2);

    // Nothing to do right after.
    const again = cli(['plan', '--detailed-exitcode', dir], { cwd: dir });
    expect(again.stdout).toContain('No changes.');
    expect(again.code).toBe(0);

    // capacity: on-demand → a move with its reason; applying it resumes from the checkpoint.
    await sleep(600);
    writeFleet(dir, [{ name: 'train-a', capacity: 'on-demand' }, { name: 'train-b', gpus: 2 }]);
    const plan = cli(['plan', '--detailed-exitcode', dir], { cwd: dir });
    expect(plan.code).toBe(2);
    expect(plan.stdout).toMatch(/-\/\+ workload\.train-a/);
    expect(plan.stdout).toMatch(/# eligibility: capacity: on-demand in the spec/);
    expect(plan.stdout).toContain('Plan: 0 to add, 1 to change, 1 to destroy.');
    const before = running.get('train-a')?.[0];
    const moved = cli(['apply', '--auto-approve', dir], { cwd: dir });
    expect(moved.code).toBe(0);
    running = await runningByWorkload(dir);
    const after = running.get('train-a')?.[0];
    expect(after?.provider).toBe('lab');
    const oldLog = await logsOf(dir, before?.provider ?? '', before?.node ?? '', before?.id ?? '');
    const saved = [...oldLog.matchAll(/checkpoint step=(\d+) reason=SIGTERM/g)].at(-1)?.[1];
    expect(saved).toBeDefined();
    // The trainer logs its resume step as it starts; on a loaded machine that can take a moment.
    let newLog = '';
    for (let i = 0; i < 100 && !newLog.includes('resumed from step'); i++) {
      await sleep(100);
      newLog = await logsOf(dir, 'lab', after?.node ?? '', after?.id ?? '');
    }
    expect(newLog).toContain(`resumed from step ${saved}`);
    expect((await activeLeases(dir)).length).toBe(1);

    // gpus change → restart in place (replace) with a resume.
    writeFleet(dir, [{ name: 'train-a', capacity: 'on-demand', gpus: 2 }, { name: 'train-b', gpus: 2 }]);
    const gp = cli(['plan', dir], { cwd: dir });
    expect(gp.stdout).toMatch(/spec changed/);
    expect(cli(['apply', '--auto-approve', dir], { cwd: dir }).code).toBe(0);

    // Removing a workload checkpoints and stops it.
    writeFleet(dir, [{ name: 'train-a', capacity: 'on-demand', gpus: 2 }]);
    const rm = cli(['apply', '--auto-approve', dir], { cwd: dir });
    expect(rm.stdout).toMatch(/workload\.train-b: Checkpoint complete/);
    expect(rm.stdout).toMatch(/workload\.train-b: Stop complete/);
    running = await runningByWorkload(dir);
    expect(running.get('train-b') ?? []).toHaveLength(0);
    expect(await activeLeases(dir)).toHaveLength(0);

    // destroy leaves no process behind.
    const d = cli(['destroy', '--auto-approve', dir], { cwd: dir });
    expect(d.code).toBe(0);
    expect(d.stdout).toContain('Destroy complete!');
    running = await runningByWorkload(dir);
    expect([...running.values()].flat()).toHaveLength(0);
  });

  it('the state file is private and carries version, serial and lineage', () => {
    const dir = tempFleet([{ name: 'a', capacity: 'on-demand' }]);
    dirs.push(dir);
    expect(cli(['apply', '--auto-approve', dir], { cwd: dir }).code).toBe(0);
    const path = `${dir}/.spotfleet/state.json`;
    expect(existsSync(path)).toBe(true);
    const st = JSON.parse(readFileSync(path, 'utf8'));
    expect(st).toMatchObject({ version: 2, fleet: 'e2e' });
    expect(st.serial).toBeGreaterThan(0);
    expect(typeof st.lineage).toBe('string');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const list = cli(['state', 'list', dir], { cwd: dir });
    expect(list.stdout.trim()).toBe('workload.a');
    const show = cli(['state', 'show', 'workload.a', '--json', dir], { cwd: dir });
    expect(JSON.parse(show.stdout)).toMatchObject({ address: 'workload.a', values: { name: 'a', phase: 'running' } });
    const status = cli(['status', dir], { cwd: dir });
    expect(status.stdout).toMatch(/a\s+running\s+od-1\s+on-demand/);
  });

  it('a saved plan applies at once, and is refused once the state moved', () => {
    const dir = tempFleet([{ name: 'a', capacity: 'on-demand' }]);
    dirs.push(dir);
    const planFile = `${dir}/tf.plan`;
    expect(cli(['plan', '-out', planFile, dir], { cwd: dir }).code).toBe(0);
    const ok = cli(['apply', planFile], { cwd: dir });
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('Apply complete!');
    writeFleet(dir, [{ name: 'a', capacity: 'on-demand' }, { name: 'b', capacity: 'on-demand' }]);
    expect(cli(['plan', `-out=${planFile}`, dir], { cwd: dir }).code).toBe(0);
    expect(cli(['apply', '--auto-approve', '--target', 'workload.b', dir], { cwd: dir }).code).toBe(0);
    const stale = cli(['apply', planFile], { cwd: dir });
    expect(stale.code).toBe(1);
    expect(stale.stderr).toContain('Saved plan is stale');
    expect(stale.stderr).not.toMatch(/\n\s+at /);
  });

  it('refuses to ask when stdin is not a terminal', () => {
    const dir = tempFleet([{ name: 'a', capacity: 'on-demand' }]);
    dirs.push(dir);
    const r = cli(['apply', dir], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/standard input is not a terminal/);
    expect(r.stderr).toMatch(/--auto-approve/);
  });

  it('a second apply while one runs fails fast and names the holder', async () => {
    // A workload that ignores the checkpoint signal keeps the first apply waiting for a checkpoint.
    const stubborn = ['sh', '-c', "trap '' USR1; while true; do sleep 0.2; done"];
    const dir = tempFleet([{ name: 'slow', capacity: 'on-demand', command: stubborn }], { stopGrace: '1s' });
    dirs.push(dir);
    expect(cli(['apply', '--auto-approve', dir], { cwd: dir }).code).toBe(0);
    writeFleet(dir, [], { stopGrace: '1s' });
    const first = cliAsync(['apply', '--auto-approve', dir], { cwd: dir });
    // Wait until the first holds the lock.
    for (let i = 0; i < 100 && !existsSync(`${dir}/.spotfleet/state.lock`); i++) await sleep(50);
    const t0 = Date.now();
    const second = cli(['apply', '--auto-approve', dir], { cwd: dir });
    const ms = Date.now() - t0;
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(/locked by another spotfleet \(pid \d+ on .*running "apply"\)/);
    expect(second.stderr).toMatch(/Lock ID: [0-9a-f-]{36}/);
    // It did not wait for the lock: the first apply (held by its checkpoint window) still runs.
    const firstEnded = await Promise.race([first.done.then(() => true), sleep(500).then(() => false)]);
    expect(firstEnded, `the second apply returned after ${ms} ms, once the first had ended`).toBe(false);
    first.child.kill('SIGKILL');
    await first.done;
    // This workload never checkpoints: stop it directly rather than letting destroy wait for it.
    dirs.splice(dirs.indexOf(dir), 1);
    const opened = await openProviders(dir);
    const lab = opened.providers.get('lab')?.runtime;
    for (const i of (await lab?.list()) ?? []) if (i.state === 'running') await lab?.stop(i.node, i.id, 100);
    await opened.close();
  });

  it('renders JSON and markdown, and warns about --target', () => {
    const dir = tempFleet([{ name: 'a' }, { name: 'b' }]);
    dirs.push(dir);
    const j = cli(['plan', '--json', dir], { cwd: dir });
    const parsed = JSON.parse(j.stdout);
    expect(parsed.format_version).toBe('1.0');
    expect(parsed.summary).toEqual({ add: 4, change: 0, destroy: 0, pending: 0 });
    const md = cli(['plan', '--format', 'markdown', dir], { cwd: dir });
    expect(md.stdout).toMatch(/^### spotfleet plan: `e2e`/);
    const t = cli(['plan', '--target', 'workload.a', dir], { cwd: dir });
    expect(t.stderr).toMatch(/targeting is in effect/);
    expect(t.stdout).toContain('Plan: 2 to add');
  });
});
