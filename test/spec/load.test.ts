// Unit tests for loadFleet: defaults, merging a folder, positions, specHash, semantic rules.
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SpecError, type SpecProblem } from '../../src/core/errors.js';
import { loadFleet } from '../../src/spec/load.js';
import { workloadSpecHash } from '../../src/spec/resolve.js';

const tmp = mkdtempSync(join(tmpdir(), 'spotfleet-load-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
function write(text: string, name = `f${n++}.yaml`): string {
  const p = join(tmp, name);
  writeFileSync(p, text);
  return p;
}
const NOW = Date.parse('2026-06-01T00:00:00Z');
const HEAD = `apiVersion: spotfleet.dev/v1
kind: Fleet
metadata: { name: t, labels: { env: test } }
providers:
  m: { type: sim, config: { trace: ./t.csv } }
pools:
  - { name: spot, provider: m, capacity: spot, gpuModel: V100, maxPricePerHour: "$2.50/h", zones: [a, b], warmStandby: 1, labels: { tier: x } }
  - { name: od, provider: m, capacity: on-demand, gpuModel: V100 }
`;

async function problems(text: string, opts = {}): Promise<SpecProblem[]> {
  const file = write(text);
  try {
    await loadFleet(file, { now: NOW, checkProviders: false, ...opts });
  } catch (e) {
    if (e instanceof SpecError) return [...e.problems];
    throw e;
  }
  return [];
}

describe('loadFleet', () => {
  it('applies defaults and resolves durations, money and positions', async () => {
    const file = write(`${HEAD}workloads:
  - name: a
    command: node train.js   --epochs 3
    gpuModel: V100
`);
    const { fleet, warnings } = await loadFleet(file, { now: NOW, checkProviders: false, cwd: tmp });
    expect(fleet.name).toBe('t');
    expect(fleet.labels).toEqual({ env: 'test' });
    expect(fleet.source).toBe(file);
    expect(fleet.dir).toBe(tmp);
    expect(fleet.files).toEqual([file]);
    expect(fleet.defaults.thresholds).toEqual({ minSavingsPerHour: 0.5, minRuntimeMs: 1_800_000, spotPriceAlertRatio: 0.8, maxPreemptions: 3, preemptionWindowMs: 21_600_000, cooldownMs: 7_200_000 });
    const [spot] = fleet.pools;
    expect(spot).toMatchObject({ name: 'spot', provider: 'm', capacity: 'spot', gpuModel: 'V100', maxPricePerHour: 2.5, zones: ['a', 'b'], warmStandby: 1, labels: { tier: 'x' } });
    expect(spot?.pos).toEqual({ file: file.slice(tmp.length + 1), line: 7, col: 5 });
    const w = fleet.workloads[0];
    expect(w).toMatchObject({ name: 'a', command: ['node', 'train.js', '--epochs', '3'], gpus: 1, class: 'training', capacity: 'auto', critical: false, env: {}, labels: {} });
    expect(w?.fallback).toEqual({ to: 'on-demand', revertToSpot: true, minDwellMs: 1_800_000 });
    expect(w?.pos.line).toBe(10);
    expect(w?.specHash).toMatch(/^[0-9a-f]{12}$/);
    expect(fleet.providers[0]).toMatchObject({ name: 'm', type: 'sim', config: { trace: './t.csv' } });
    expect(fleet.providers[0]?.configPos.line).toBe(5);
    // training + auto without a checkpoint: a warning, not an error
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ severity: 'warning', line: 10, rule: 'checkpoint-missing' });
  });

  it('merges workload checkpoint over defaults.checkpoint', async () => {
    const file = write(`${HEAD}defaults:
  checkpoint: { path: /ckpt, signal: SIGUSR2, stopGrace: 90s, maxAge: 1h }
  thresholds: { maxPreemptions: 5, cooldown: 30m }
  overhead: { checkpoint: 10s, transfer: 1m, restart: 20s }
workloads:
  - name: a
    image: img
    checkpoint: { stopGrace: 2m, shared: true, minSize: 100, marker: DONE }
    overhead: { transfer: 5m }
    deadline: 2026-12-01T00:00:00Z
    expectedDuration: 1h30m
`);
    const { fleet, warnings } = await loadFleet(file, { now: NOW, checkProviders: false });
    expect(warnings).toEqual([]);
    expect(fleet.defaults.checkpoint).toEqual({ path: '/ckpt', signal: 'SIGUSR2', stopGraceMs: 90_000, resumeEnv: 'RESUME_FROM_CHECKPOINT', maxAgeMs: 3_600_000 });
    expect(fleet.defaults.thresholds.maxPreemptions).toBe(5);
    expect(fleet.defaults.thresholds.cooldownMs).toBe(1_800_000);
    const w = fleet.workloads[0];
    expect(w?.checkpoint).toEqual({ path: '/ckpt', signal: 'SIGUSR2', stopGraceMs: 120_000, resumeEnv: 'RESUME_FROM_CHECKPOINT', maxAgeMs: 3_600_000, marker: 'DONE', minSizeBytes: 100, shared: true });
    expect(w?.overhead).toEqual({ checkpointMs: 10_000, transferMs: 300_000, restartMs: 20_000 });
    expect(w?.deadline).toBe('2026-12-01T00:00:00.000Z');
    expect(w?.expectedDurationMs).toBe(5_400_000);
  });

  it('specHash is stable across key order and changes with restart-relevant fields only', async () => {
    const base = { image: 'i', command: ['a'], env: { A: '1', B: '2' }, gpus: 1, gpuModel: 'V100' };
    expect(workloadSpecHash(base)).toBe(workloadSpecHash({ gpuModel: 'V100', gpus: 1, env: { B: '2', A: '1' }, command: ['a'], image: 'i' }));
    expect(workloadSpecHash(base)).not.toBe(workloadSpecHash({ ...base, image: 'j' }));
    const a = await loadFleet(write(`${HEAD}workloads:\n  - { name: a, image: i, gpuModel: V100, env: { A: "1", B: "2" }, labels: { x: "1" }, capacity: on-demand }\n`), { now: NOW, checkProviders: false });
    const b = await loadFleet(write(`${HEAD}workloads:\n  - { env: { B: "2", A: "1" }, capacity: on-demand, gpuModel: V100, image: i, name: a, labels: { x: "2" } }\n`), { now: NOW, checkProviders: false });
    expect(a.fleet.workloads[0]?.specHash).toBe(b.fleet.workloads[0]?.specHash);
  });

  it('merges a folder of files and names both places of a conflict', async () => {
    const dir = join(tmp, 'folder');
    mkdirSync(dir);
    writeFileSync(join(dir, 'a.yaml'), HEAD);
    writeFileSync(join(dir, 'b.yml'), 'apiVersion: spotfleet.dev/v1\nkind: Fleet\nworkloads:\n  - { name: x, image: i, capacity: on-demand }\n');
    writeFileSync(join(dir, 'notes.txt'), 'not yaml');
    const { fleet } = await loadFleet(dir, { now: NOW, checkProviders: false });
    expect(fleet.files.map((f) => f.slice(dir.length + 1))).toEqual(['a.yaml', 'b.yml']);
    expect(fleet.dir).toBe(dir);
    expect(fleet.workloads.map((w) => w.name)).toEqual(['x']);
    writeFileSync(join(dir, 'c.yaml'), 'apiVersion: spotfleet.dev/v1\nkind: Fleet\nmetadata: { name: other }\npools:\n  - { name: od, provider: m, capacity: on-demand }\n');
    const ps = await loadFleet(dir, { now: NOW, checkProviders: false, cwd: tmp }).then(() => [], (e: SpecError) => [...e.problems]);
    const msgs = ps.map((p) => `${p.file}:${p.line}:${p.col}: ${p.message} (${p.expected})`);
    expect(msgs).toContainEqual(expect.stringMatching(/^folder\/c\.yaml:3:1: metadata is set in more than one file \(.*folder\/a\.yaml:3:1\)$/));
    expect(msgs).toContainEqual(expect.stringMatching(/^folder\/c\.yaml:5:13: pool "od" is defined twice \(.*folder\/a\.yaml:8:13\)$/));
  });

  it('reports every problem at once, sorted by position', async () => {
    const ps = await problems(`${HEAD}workloads:
  - { name: a, image: i, gpus: x }
  - { name: b, image: i, pools: [nope] }
  - { name: c, image: i, bogus: 1 }
`);
    expect(ps.filter((p) => p.severity === 'error').map((p) => [p.line, p.message])).toEqual([
      [10, 'workloads.0.gpus has the wrong type: "x"'],
      [11, 'workload "b" allows unknown pool "nope"'],
      [12, 'unknown key "bogus" in workloads.2'],
    ]);
  });

  it('deadline in the past uses the injected clock', async () => {
    const text = `${HEAD}workloads:\n  - { name: a, image: i, capacity: on-demand, deadline: "2026-05-01T00:00:00Z" }\n`;
    expect((await problems(text)).map((p) => p.message)).toEqual(['deadline 2026-05-01T00:00:00Z is in the past']);
    expect(await problems(text, { now: Date.parse('2026-04-01T00:00:00Z') })).toEqual([]);
  });

  it('log is a built-in sink; declared sinks resolve', async () => {
    const { fleet } = await loadFleet(write(`${HEAD}alerts:
  - { name: p, when: preemption-notice, notify: [log, hook] }
  - { name: q, when: "spotPrice > 0.8 * onDemandPrice" }
sinks:
  - { name: hook, type: webhook, url: "http://127.0.0.1:1/x" }
  - { name: run, type: command, command: notify-send spot }
  - { name: prov, type: provider, provider: m }
`), { now: NOW, checkProviders: false });
    expect(fleet.alerts.map((a) => [a.name, a.severity, a.notify])).toEqual([['p', 'warning', ['log', 'hook']], ['q', 'warning', ['log']]]);
    expect(fleet.sinks.map((s) => s.command ?? s.url ?? s.provider)).toEqual(['http://127.0.0.1:1/x', ['notify-send', 'spot'], 'm']);
  });

  it('workloads fit pools by model, capacity and static node sizes', async () => {
    const lab = `apiVersion: spotfleet.dev/v1
kind: Fleet
metadata: { name: t }
providers:
  lab: { type: local, config: { nodes: [{ name: n1, gpuModel: A100, gpus: 4, capacity: on-demand, pricePerHour: 1 }] } }
pools:
  - { name: lab, provider: lab, capacity: on-demand }
workloads:
`;
    expect(await problems(`${lab}  - { name: a, image: i, gpus: 4, gpuModel: a100, capacity: on-demand }\n`)).toEqual([]);
    const ps = await problems(`${lab}  - { name: a, image: i, gpus: 5, capacity: on-demand }\n  - { name: b, image: i, gpus: 1, capacity: spot, checkpoint: { path: /c } }\n`);
    expect(ps.map((p) => [p.line, p.rule])).toEqual([[9, 'no-fitting-pool'], [10, 'no-fitting-pool']]);
  });

  it('money strings, budget and policies resolve', async () => {
    mkdirSync(join(tmp, 'policies'), { recursive: true });
    writeFileSync(join(tmp, 'policies', 'p.yaml'), 'apiVersion: spotfleet.dev/v1\nkind: PolicySet\nrules: []\n');
    const { fleet } = await loadFleet(write(`${HEAD}budgetPerHour: "$40"\npolicies: [./policies/p.yaml]\n`), { now: NOW, checkProviders: false });
    expect(fleet.budgetPerHour).toBe(40);
    expect(fleet.policies).toEqual([resolve(tmp, 'policies/p.yaml')]);
  });

  it('checks provider configs against the provider schema at the config line', async () => {
    const ps = await problems(`${HEAD.replace('config: { trace: ./t.csv }', 'config: { trace: ./t.csv, speed: fast }')}`, { checkProviders: true });
    expect(ps).toContainEqual(expect.objectContaining({ line: 5, rule: 'provider-config', message: expect.stringContaining('config.speed') }));
    expect(await problems(HEAD, { checkProviders: true })).toEqual([]);
  });
});

describe('loadFleet: the policy set', () => {
  it('returns the fleet\'s policy files compiled once, typed; none when the fleet names none', async () => {
    const dir = mkdtempSync(join(tmp, 'policies-'));
    writeFileSync(
      join(dir, 'guard.yaml'),
      'apiVersion: spotfleet.dev/v1\nkind: PolicySet\nmetadata: { name: guard }\nrules:\n  - name: no-spot\n    enforcement: mandatory\n    deny: target.capacity == "spot"\n    message: no spot here\n',
    );
    writeFileSync(join(dir, 'fleet.yaml'), `${HEAD}policies: [./guard.yaml]\n`);
    const r = await loadFleet(join(dir, 'fleet.yaml'), { now: NOW, checkProviders: false });
    expect(r.policies?.files).toEqual([join(dir, 'guard.yaml')]);
    expect(r.policies?.rules.map((x) => [x.name, x.enforcement])).toEqual([['no-spot', 'mandatory']]);
    const none = await loadFleet(write(HEAD), { now: NOW, checkProviders: false });
    expect(none.policies).toBeUndefined();
  });
});
