// `spotfleet backtest` through the built CLI on the traces shipped in examples/traces (so CI needs
// nothing outside the repo): each format, the assumptions it prints, --synthetic, --fleet, egress,
// the default PATH, and file:line errors for bad input.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

const ROOT = process.cwd();
const CLI = join(ROOT, 'dist/src/cli/main.js');
const EX = join(ROOT, 'examples/traces');

function sf(args: string[], cwd = ROOT): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('spotfleet backtest on the example traces (built CLI)', () => {
  beforeAll(() => {
    if (!existsSync(CLI)) throw new Error('dist/src/cli/main.js missing: run `npm run build` first');
  });

  it('the README example runs from a clone', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const cmd = /```sh\nspotfleet backtest (--trace examples\/traces\/[^\n]+)\\\n\s+([^\n]+)\n```/.exec(readme);
    expect(cmd).not.toBeNull();
    const args = `${cmd?.[1] ?? ''} ${cmd?.[2] ?? ''}`.split(/\s+/).filter(Boolean);
    const r = sf(['backtest', ...args]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^ {2}spotfleet\s+\$[\d.]+/m);
    expect(r.stdout).toMatch(/^ {2}optimum .* 5\/5 +1\.000$/m);
    expect(r.stdout).not.toMatch(/assumed:/); // the wide example with zones.csv says it all
  });

  it('describe-spot-price-history: runs end to end and says what it assumed about availability', () => {
    const r = sf(['backtest', '--trace', join(EX, 'aws-describe-spot-price-history.json'), '--job', '8h', '--deadline', '12h', '--windows', '2']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/assumed: availability: assumed available whenever a price is in force/);
    expect(r.stdout).toMatch(/assumed: on-demand price: the trace has none/);
    const j = sf(['backtest', '--trace', join(EX, 'aws-describe-spot-price-history.json'), '--job', '8h', '--deadline', '12h', '--windows', '2', '--on-demand-price', '3.06', '--json']);
    const doc = JSON.parse(j.stdout) as { format_version: number; trace_format: string; assumptions: string[]; workloads: { summary: { policy: string; mean_egress_usd: number }[] }[] };
    expect(doc.format_version).toBe('1.0');
    expect(doc.trace_format).toBe('aws-json');
    expect(doc.assumptions.some((a) => a.startsWith('availability: assumed'))).toBe(true);
    expect(doc.assumptions.some((a) => a.includes('(--on-demand-price)'))).toBe(true);
  });

  it('--probe-log gives a price history real availability; --checkpoint-size adds egress to every policy and the optimum', () => {
    const r = sf(['backtest', '--trace', join(EX, 'aws-describe-spot-price-history.json'), '--probe-log', join(EX, 'probes.csv'), '--job', '8h', '--deadline', '12h', '--changeover', '0.2h', '--windows', '4', '--checkpoint-size', '100']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/assumed: availability: from the probe log/);
    expect(r.stdout).toMatch(/policy\s+cost\s+egress\s+spot h/);
    expect(r.stdout).toMatch(/^ {2}optimum .* 4\/4 +1\.000$/m);
  });

  it('long CSV and probe log alone', () => {
    const l = sf(['backtest', '--trace', join(EX, 'long.csv'), '--job', '6h', '--deadline', '9h', '--windows', '2']);
    expect(l.status).toBe(0);
    expect(l.stdout).toMatch(/zones us-east-1f, us-east-2a, us-west-2a/);
    const p = sf(['backtest', '--trace', join(EX, 'probes.csv'), '--job', '6h', '--deadline', '9h', '--windows', '2', '--min-launched', '1']);
    expect(p.status).toBe(0);
    expect(p.stdout).toMatch(/assumed: spot price: the trace has none; assumed 0\.3 × on-demand/);
  });

  it('--fleet N on the 16-node SkyPilot example: workloads compete for the instance counts', () => {
    const args = ['backtest', '--trace', join(EX, 'skypilot-16node'), '--trace-start', '2023-08-27T00:00:00Z', '--job', '10h', '--deadline', '15h', '--changeover', '0.2h', '--fleet', '20', '--windows', '1'];
    const r = sf(args);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/20 workloads competing for the trace’s instance counts per zone/);
    expect(r.stdout).toMatch(/policy\s+fleet cost\s+spot h\s+on-demand h\s+migrations\s+preemptions\s+deadline met\s+cost\/lower bound/);
    expect(r.stdout).toMatch(/^ {2}spotfleet .* 20\/20 +[\d.]+$/m);
    const j = JSON.parse(sf([...args, '--json']).stdout) as { mode: string; workloads: number; summary: { policy: string; cost_over_lower_bound: number }[] };
    expect(j.mode).toBe('fleet');
    expect(j.workloads).toBe(20);
    for (const s of j.summary) expect(s.cost_over_lower_bound).toBeGreaterThanOrEqual(1);
  });

  it('--synthetic REGIME --seed N replays a generated market; a bad regime is a usage error', () => {
    const r = sf(['backtest', '--synthetic', 'price-spikes', '--seed', '3', '--job', '20h', '--deadline', '30h', '--windows', '1', '--from', '2024-01-02T00:00:00Z']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/Backtest on synthetic:price-spikes:seed=3/);
    expect(r.stdout).toMatch(/assumed: synthetic market "price-spikes", seed 3: generated, not observed/);
    const b = sf(['backtest', '--synthetic', 'calm', '--job', '1h']);
    expect(b.status).toBe(1);
    expect(b.stderr).toMatch(/unknown synthetic regime "calm"/);
    const none = sf(['backtest', '--job', '1h']);
    expect(none.status).toBe(1);
    expect(none.stderr).toMatch(/give --trace FILE\|DIR .* or --synthetic REGIME/);
  });

  it('a bad trace row is an error with file:line, exit 1, no stack trace', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sf-bt-'));
    writeFileSync(join(dir, 'l.csv'), 'timestamp,zone,available,spot_price\n2023-01-01T00:00:00Z,a,1,0.9\n2023-01-01T00:05:00Z,a,"sometimes",0.9\n');
    const r = sf(['backtest', '--trace', join(dir, 'l.csv'), '--job', '1h']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/l\.csv:3: available: expected 1\/0 or true\/false, got "sometimes"/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    writeFileSync(join(dir, 'l.csv'), 'timestamp,zone,available,spot_price\n2023-01-01T00:00:00Z,a,1,0.9\n2023-01-01T00:05:00Z,a,0,0.9\n');
    writeFileSync(join(dir, 'zones.csv'), 'zone,on_demand_usd_per_hr\na,three\n');
    const z = sf(['backtest', '--trace', join(dir, 'l.csv'), '--job', '1h']);
    expect(z.status).toBe(1);
    expect(z.stderr).toMatch(/zones\.csv:2: on_demand_usd_per_hr: expected an on-demand price/);
  });

  it('PATH defaults to the current folder; checkpoint.sizeGB is a spec field with file:line:col errors', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sf-bt-fleet-'));
    cpSync(join(ROOT, 'examples/quickstart'), dir, { recursive: true });
    const r = sf(['backtest', '--trace', 'traces', '--windows', '1', '--changeover', '0.2h'], dir);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/workload\.train-a: 8\.00 h of work/);
    expect(r.stdout).toMatch(/workload\.train-b: 12\.00 h of work/);
    const spec = readFileSync(join(dir, 'fleet.yaml'), 'utf8');
    writeFileSync(join(dir, 'fleet.yaml'), spec.replace('    resumeEnv: RESUME_FROM_CHECKPOINT\n', '    resumeEnv: RESUME_FROM_CHECKPOINT\n    sizeGB: -5\n'));
    const bad = sf(['validate'], dir);
    expect(bad.status).toBe(1);
    expect(bad.stdout + bad.stderr).toMatch(/fleet\.yaml:\d+:\d+: .*sizeGB|fleet\.yaml:\d+:\d+: .*>= 0/);
    writeFileSync(join(dir, 'fleet.yaml'), spec.replace('    resumeEnv: RESUME_FROM_CHECKPOINT\n', '    resumeEnv: RESUME_FROM_CHECKPOINT\n    sizeGB: 50\n'));
    expect(sf(['validate'], dir).status).toBe(0);
    expect(sf(['backtest', '--trace', 'traces', '--windows', '1'], dir).status).toBe(0);
  });
});
