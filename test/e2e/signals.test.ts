// Ctrl-C during apply, through the built CLI: the first SIGINT lets the running actions finish,
// saves state, says so and exits non-zero (cancelled); a second one aborts at once (exit 130).
// Either way the next apply converges with one process per workload. The apply interrupted is a
// move of three workloads from spot to on-demand, one action at a time (--parallelism 1), so that
// there is always something running and something still to do when the signal lands.
import { afterAll, describe, expect, it } from 'vitest';
import { cli, cliAsync, tempFleet, writeFleet, type TestWorkload } from './helpers.js';
import { readState, runningInstances } from './crash-helpers.js';

const WORKLOADS: TestWorkload[] = [
  { name: 'train-a', capacity: 'spot' },
  { name: 'train-b', capacity: 'spot' },
  { name: 'train-c', capacity: 'spot' },
];
const ON_DEMAND: TestWorkload[] = WORKLOADS.map((w) => ({ ...w, capacity: 'on-demand' }));
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) cli(['destroy', '--auto-approve', d], { cwd: d });
});

/** Starts `apply` one action at a time and resolves once the first action has started. */
async function applyUntilFirstAction(dir: string): Promise<ReturnType<typeof cliAsync>> {
  const run = cliAsync(['apply', '--auto-approve', '--parallelism', '1', dir], { cwd: dir });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (d: Buffer): void => {
      out += d.toString();
      if (/^\S+: [A-Z][a-z]+: /m.test(out)) {
        run.child.stdout?.off('data', onData);
        resolve();
      }
    };
    run.child.stdout?.on('data', onData);
    run.child.on('close', () => reject(new Error(`apply ended before any action started:\n${out}`)));
  });
  return run;
}

/** Addresses+kinds that printed a start line, and those that printed a completion line. */
function progress(stdout: string): { started: string[]; finished: string[]; cancelled: string[] } {
  const started: string[] = [];
  const finished: string[] = [];
  const cancelled: string[] = [];
  for (const line of stdout.split('\n')) {
    let m = /^(\S+): ([A-Z][a-z]+): /.exec(line);
    if (m) started.push(`${m[1]} ${m[2]}`);
    m = /^(\S+): ([A-Z][a-z]+) complete after/.exec(line);
    if (m) finished.push(`${m[1]} ${m[2]}`);
    m = /^(\S+): ([A-Z][a-z]+) skipped: interrupted/.exec(line);
    if (m) cancelled.push(`${m[1]} ${m[2]}`);
  }
  return { started: started.sort(), finished: finished.sort(), cancelled: cancelled.sort() };
}

/** A fleet of three trainers on spot, then the spec changed to on-demand: the move is to apply. */
// A workload that takes two seconds to write its checkpoint after the signal, so an action is
// reliably still running when the second Ctrl-C arrives (a first Ctrl-C is seen at once).
const SLOW_CHECKPOINT = ['sh', '-c', 'trap \'sleep 2; date +%s%N > "$CHECKPOINT_DIR/ckpt"\' USR1; trap \'exit 0\' TERM; while :; do sleep 0.2 & wait $!; done'];

function movingFleet(slow = false): string {
  const withCmd = (ws: TestWorkload[]): TestWorkload[] => (slow ? ws.map((w) => ({ ...w, command: SLOW_CHECKPOINT })) : ws);
  const dir = tempFleet(withCmd(WORKLOADS));
  dirs.push(dir);
  const first = cli(['apply', '--auto-approve', dir], { cwd: dir });
  expect(first.code, `${first.stdout}\n${first.stderr}`).toBe(0);
  writeFleet(dir, withCmd(ON_DEMAND));
  return dir;
}

async function assertConverges(dir: string): Promise<void> {
  const again = cli(['apply', '--auto-approve', dir], { cwd: dir });
  expect(again.code, `${again.stdout}\n${again.stderr}`).toBe(0);
  const running = await runningInstances(dir);
  expect(running.map((i) => i.workload)).toEqual(WORKLOADS.map((w) => w.name));
  expect(running.map((i) => i.provider)).toEqual(WORKLOADS.map(() => 'lab'));
  const plan = cli(['plan', '--detailed-exitcode', dir], { cwd: dir });
  expect(plan.code, `${plan.stdout}\n${plan.stderr}`).toBe(0);
}

describe('Ctrl-C during apply', () => {
  it('the first SIGINT lets running actions finish, saves state and exits cancelled', async () => {
    const dir = movingFleet();
    const run = await applyUntilFirstAction(dir);
    run.child.kill('SIGINT');
    const r = await run.done;
    expect(r.stderr).toMatch(/Interrupt received/);
    expect(r.stderr).toMatch(/Gracefully shutting down: running actions finish, state is saved/);
    expect(r.stderr).toMatch(/Apply interrupted: \d+ actions? did not run; state was saved\./);
    expect(r.stdout).not.toContain('Apply complete!');
    expect(r.code).not.toBe(0);
    expect(r.code).toBe(130);
    // Every action that started also finished; the rest were not started.
    const p = progress(r.stdout);
    expect(p.finished).toEqual(p.started);
    expect(p.cancelled.length).toBeGreaterThan(0);
    // What finished is in the state, and nothing is left pending.
    const st = readState(dir);
    expect(st.pending).toEqual([]);
    expect(Object.keys(st.resources).length).toBeGreaterThan(0);
    await assertConverges(dir);
  }, 180_000);

  it('a second SIGINT aborts at once with exit 130, and the next apply converges', async () => {
    const dir = movingFleet(true);
    const run = await applyUntilFirstAction(dir);
    run.child.kill('SIGINT');
    await new Promise((r) => setTimeout(r, 20));
    run.child.kill('SIGINT');
    const r = await run.done;
    expect(r.stderr).toMatch(/Two interrupts received\. Exiting immediately/);
    expect(r.stdout).not.toContain('Apply complete!');
    expect(r.stderr).not.toMatch(/Apply interrupted: /);
    expect(r.code).toBe(130);
    await assertConverges(dir);
  }, 180_000);
});
