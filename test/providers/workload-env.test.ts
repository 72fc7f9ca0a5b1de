// passEnv: the allow-list of variables a workload gets from spotfleet's environment, in the spec
// (workload and defaults merged), in the process runtime (real processes) and in containers.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ProcessRuntime } from '../../src/providers/kit/process-runtime.js';
import { containerEnv } from '../../src/providers/kit/ssh/index.js';
import { processBaseEnv } from '../../src/providers/kit/workload-env.js';
import { loadFleet } from '../../src/spec/load.js';
import { workloadSpecHash } from '../../src/spec/resolve.js';
import type { StartRequest } from '../../src/providers/sdk.js';
import { readJson } from '../../src/providers/kit/fs-util.js';
import { makeCtx, removeTempDirs, tempDir, waitFor } from '../quickstart/harness.js';

afterAll(removeTempDirs);

const req = (extra: Partial<StartRequest> = {}): StartRequest => ({ fleet: 'f', workload: 'w', node: 'n1', command: ['sh', '-c', 'sleep 30'], env: { OWN: 'spec' }, gpus: 0, labels: {}, specHash: 'h', idempotencyKey: `k-${Math.random()}`, ...extra });

describe('passEnv', () => {
  it('is merged from defaults and the workload, sorted, and part of the spec hash only when set', async () => {
    const dir = tempDir();
    const fleet = (passEnv: string) => `apiVersion: spotfleet.dev/v1
kind: Fleet
metadata: { name: f }
providers:
  lab: { type: local, config: { nodes: [{ name: n1, gpuModel: V100, gpus: 1, capacity: on-demand, pricePerHour: 1 }] } }
pools: [{ name: p, provider: lab, capacity: on-demand }]
defaults: { passEnv: [HF_TOKEN] }
workloads:
  - { name: a, command: [x], capacity: on-demand${passEnv} }
  - { name: b, command: [x], capacity: on-demand }
`;
    writeFileSync(join(dir, 'fleet.yaml'), fleet(', passEnv: [WANDB_API_KEY, HF_TOKEN]'));
    const { fleet: f } = await loadFleet(join(dir, 'fleet.yaml'));
    expect(f.workloads.find((w) => w.name === 'a')?.passEnv).toEqual(['HF_TOKEN', 'WANDB_API_KEY']);
    const b = f.workloads.find((w) => w.name === 'b')!;
    expect(b.passEnv).toEqual(['HF_TOKEN']);
    // A changed allow-list restarts the workload; none at all leaves the hash as it always was.
    expect(b.specHash).toBe(workloadSpecHash(b));
    expect(workloadSpecHash({ ...b, passEnv: [] })).not.toBe(b.specHash);
    expect(workloadSpecHash({ ...b, passEnv: [] })).toBe(workloadSpecHash({ image: b.image, command: b.command, env: b.env, gpus: b.gpus, gpuModel: b.gpuModel, checkpoint: b.checkpoint } as typeof b));
    writeFileSync(join(dir, 'bad.yaml'), fleet(', passEnv: ["not-a-name"]').replace('name: f', 'name: g'));
    await expect(loadFleet(join(dir, 'bad.yaml'))).rejects.toMatchObject({ problems: [expect.objectContaining({ line: 9, path: '/workloads/0/passEnv/0' })] });
  });

  it('copies only the named variables into a process workload; unset ones are left out; env wins', async () => {
    const root = tempDir();
    const ctx = makeCtx('lab', root);
    const source = { PATH: process.env.PATH, HOME: '/home/x', AWS_SECRET_ACCESS_KEY: 'secret', HF_TOKEN: 'hf', OWN: 'from-operator' };
    const rt = new ProcessRuntime({ provider: 'lab', fleet: 'f', dataDir: ctx.dataDir, nodesRoot: join(ctx.dataDir, 'nodes'), cwd: root, env: source });
    const inst = await rt.start(req({ passEnv: ['HF_TOKEN', 'UNSET_ONE', 'OWN'] }));
    const pids = await waitFor('the workload pid', () => readJson<{ child?: { pid: number } }>(join(ctx.dataDir, 'nodes/n1/workloads', inst.id, 'pids.json'))?.child);
    const env = Object.fromEntries(readFileSync(`/proc/${pids.pid}/environ`, 'utf8').split('\0').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
    expect(env.HF_TOKEN).toBe('hf');
    expect(env.OWN).toBe('spec');
    expect('UNSET_ONE' in env).toBe(false);
    expect('AWS_SECRET_ACCESS_KEY' in env).toBe(false);
    expect(env.HOME).toBe('/home/x');
    // The instance record names the variables, never their values.
    const rec = readFileSync(join(ctx.dataDir, 'nodes/n1/workloads', inst.id, 'record.json'), 'utf8');
    expect(rec).toContain('HF_TOKEN');
    expect(rec).not.toContain('"hf"');
    await rt.stop('n1', inst.id, 1000);
  });

  it('containers get the passed variables and nothing else of the operator environment', () => {
    expect(containerEnv(req({ passEnv: ['HF_TOKEN', 'NOPE'] }), { HF_TOKEN: 'hf', AWS_SECRET_ACCESS_KEY: 's', PATH: '/bin' })).toEqual({ HF_TOKEN: 'hf', OWN: 'spec' });
  });

  it('the base of a process workload is PATH, HOME, locale and friends only', () => {
    expect(processBaseEnv({ PATH: '/bin', HOME: '/h', LC_ALL: 'C', LANG: 'C.UTF-8', AWS_PROFILE: 'x', NODE_OPTIONS: '--inspect', SSH_AUTH_SOCK: '/s' })).toEqual({ HOME: '/h', LANG: 'C.UTF-8', LC_ALL: 'C', PATH: '/bin' });
  });
});
