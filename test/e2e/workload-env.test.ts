// A workload gets only the environment the spec passes it (issue #11): through the built CLI, with
// a fake cloud secret in the CLI's own environment, /proc/PID/environ of the real workload holds
// the spec's env, spotfleet's own variables and the minimal base (PATH, HOME, LANG...), nothing
// else; and the supervisor in front of it runs with an empty environment.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cli, tempFleet } from './helpers.js';
import { waitUntil } from '../lab/fixtures.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) cli(['destroy', '--auto-approve', d], { cwd: d });
});

function environ(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')) {
    if (!kv) continue;
    const i = kv.indexOf('=');
    out[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return out;
}

/** pids.json of every instance the fleet's local/sim providers run. */
function instancePids(dir: string): { supervisor: { pid: number }; child?: { pid: number } }[] {
  const out: { supervisor: { pid: number }; child?: { pid: number } }[] = [];
  const providers = join(dir, '.spotfleet/providers');
  for (const p of readdirSync(providers)) {
    const nodes = join(providers, p, 'nodes');
    let names: string[] = [];
    try {
      names = readdirSync(nodes);
    } catch {
      continue;
    }
    for (const n of names) {
      let ids: string[] = [];
      try {
        ids = readdirSync(join(nodes, n, 'workloads'));
      } catch {
        continue;
      }
      for (const id of ids) out.push(JSON.parse(readFileSync(join(nodes, n, 'workloads', id, 'pids.json'), 'utf8')) as { supervisor: { pid: number }; child?: { pid: number } });
    }
  }
  return out;
}

const SPOTFLEET_OWN = new Set(['CHECKPOINT_DIR', 'SPOTFLEET_WORKLOAD', 'SPOTFLEET_NODE', 'SPOTFLEET_FLEET', 'SPOTFLEET_INSTANCE', 'RESUME_FROM_CHECKPOINT']);
const BASE = new Set(['PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'LANG', 'LANGUAGE', 'TZ', 'TMPDIR']);

describe('the environment of a workload', () => {
  it('holds no variable the spec did not pass: a secret in the CLI environment stays out', async () => {
    const dir = tempFleet([{ name: 'train-env', capacity: 'on-demand' }]);
    dirs.push(dir);
    const secrets = { AWS_SECRET_ACCESS_KEY: 'fake-aws-secret-for-the-test', SLACK_WEBHOOK_TOKEN: 'fake-token', GITHUB_TOKEN: 'fake-github-token' };
    const r = cli(['apply', '--auto-approve', dir], { cwd: dir, env: secrets });
    expect(r.code, r.stderr).toBe(0);
    // Start is complete once the supervisor runs; it writes the workload's PID a moment later.
    const inst = await waitUntil('the workload process of train-env', async () => Promise.resolve(instancePids(dir).find((i) => i.child)), 10_000, () => JSON.stringify(instancePids(dir)));
    const env = environ(inst.child!.pid);
    // The spec's env (fleetYaml: STEP_MS, CHECKPOINT_EVERY) and spotfleet's own are there...
    expect(env).toMatchObject({ STEP_MS: '50', CHECKPOINT_EVERY: '20', SPOTFLEET_WORKLOAD: 'train-env', SPOTFLEET_FLEET: 'e2e' });
    expect(env.CHECKPOINT_DIR).toMatch(/checkpoints\/train-env$/);
    expect(env.PATH).toBe(process.env.PATH);
    // ...and nothing else.
    const extra = Object.keys(env).filter((k) => !SPOTFLEET_OWN.has(k) && !BASE.has(k) && !/^LC_/.test(k) && k !== 'STEP_MS' && k !== 'CHECKPOINT_EVERY');
    expect(extra).toEqual([]);
    for (const v of Object.values(secrets)) expect(Object.values(env)).not.toContain(v);
    // The supervisor (Node) runs with nothing: no NODE_OPTIONS to open an inspector with.
    expect(environ(inst.supervisor.pid)).toEqual({});
  });
});
