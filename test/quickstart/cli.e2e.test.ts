// e2e: the built CLI on a copy of examples/quickstart, as a user runs it: validate, providers,
// nodes (nodes, prices and availability), sim evict / restore, sim clock. Needs `npm run build`.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, QUICKSTART, removeTempDirs, tempDir, waitFor } from './harness.js';

let dir: string;

function cli(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: dir, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, timeout: 60_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(() => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` before the e2e tests`);
  dir = tempDir('spotfleet-quickstart-');
  cpSync(QUICKSTART, dir, { recursive: true });
});
afterAll(removeTempDirs);

describe('quickstart via the CLI', () => {
  it('validates', () => {
    const r = cli('validate', '.');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('"quickstart" is valid');
  });

  it('lists the providers with capabilities and a passing health check', () => {
    const r = cli('providers', '--json');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { providers: { name: string; type: string; capabilities: string[]; health: { ok: boolean } }[] };
    expect(out.providers.map((p) => [p.name, p.type, p.capabilities.join(','), p.health.ok])).toEqual([
      ['lab', 'local', 'nodes,runtime,notices,storage', true],
      ['market', 'sim', 'capacity,nodes,runtime,notices,storage', true],
    ]);
    const text = cli('providers');
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^lab\s+local\s+nodes,runtime,notices,storage\s+ok: 2 nodes/m);
  });

  it('shows the nodes, and spot vs on-demand prices per pool and zone', () => {
    const r = cli('nodes', '--json');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as {
      nodes: { provider: string; id: string; gpus: number; gpus_free: number; capacity: string; price_per_hour: number; state: string }[];
      markets: { pool: string; zone: string; capacity: string; price_per_gpu_hour: number; on_demand_price_per_gpu_hour: number | null; available: boolean }[];
    };
    expect(out.nodes.map((n) => [n.provider, n.id, n.gpus_free, n.gpus, n.capacity, n.price_per_hour, n.state])).toEqual([
      ['lab', 'od-1', 4, 4, 'on-demand', 12.24, 'ready'],
      ['lab', 'od-2', 4, 4, 'on-demand', 12.24, 'ready'],
    ]);
    expect(out.markets.find((m) => m.pool === 'od-v100')).toMatchObject({ capacity: 'on-demand', price_per_gpu_hour: 3.06, available: true });
    const spot = out.markets.filter((m) => m.pool === 'spot-v100');
    expect(spot.map((m) => m.zone)).toEqual(['us-east-1f', 'us-east-2a', 'us-west-2a']);
    for (const m of spot) {
      expect(m.capacity).toBe('spot');
      expect(m.on_demand_price_per_gpu_hour).toBe(3.06);
      expect(m.price_per_gpu_hour).toBeGreaterThan(0.9);
      expect(m.price_per_gpu_hour).toBeLessThan(1.5);
    }
    const text = cli('nodes');
    expect(text.stdout).toMatch(/^lab\s+od-1\s+V100\s+4\/4\s+on-demand\s+lab\s+\$12\.24\s+ready$/m);
    expect(text.stdout).toMatch(/^spot-v100\s+market\s+us-east-2a\s+spot\s+\$\d\.\d+\s+\$3\.06\s+(yes|no)/m);
  });

  it('sim evict kills the node at the deadline; sim restore brings it back', async () => {
    const r = cli('sim', 'evict', 'od-1', '--in', '1s');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Posted a preemption notice on lab\/od-1: deadline \S+Z/);
    const state = (): string | undefined => (JSON.parse(cli('nodes', '--json').stdout) as { nodes: { id: string; state: string }[] }).nodes.find((n) => n.id === 'od-1')?.state;
    await waitFor('od-1 terminated', () => (state() === 'terminated' ? true : undefined));
    const again = cli('sim', 'evict', 'od-1');
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('provider "lab": node od-1 is already terminated');
    expect(cli('sim', 'restore', 'od-1').code).toBe(0);
    expect(state()).toBe('ready');
  });

  it('names the nodes it knows when NODE is unknown, and refuses a bad --in', () => {
    const r = cli('sim', 'evict', 'nope');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('no node "nope" in fleet "quickstart"');
    expect(r.stderr).toContain('lab/od-1, lab/od-2');
    const bad = cli('sim', 'evict', 'od-1', '--in', 'soon');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('--in: "soon" is not a duration');
    expect(bad.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('prints the simulated time inside the trace, the same for every run', () => {
    const a = cli('sim', 'clock');
    expect(a.code).toBe(0);
    const m = /^market: (\S+)$/m.exec(a.stdout);
    expect(m).not.toBeNull();
    const t = Date.parse(m![1]!);
    expect(t).toBeGreaterThanOrEqual(Date.parse('2023-03-13T00:00:00Z'));
    expect(t).toBeLessThan(Date.parse('2023-03-16T00:00:00Z'));
    const clock = join(dir, '.spotfleet/providers/market/clock.json');
    expect(existsSync(clock)).toBe(true);
  });
});
