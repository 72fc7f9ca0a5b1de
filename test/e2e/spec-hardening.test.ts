// What `validate` must catch, through the built CLI (issue #11): CEL that does not compile (alert
// conditions and policy files) at file:line:col, numbers that overflow or are NaN where they are
// written (provider configs too), and `policies:` files outside the fleet's repository unless the
// operator passes --allow-external-policies. plan refuses the same specs.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TRACE, cli } from './helpers.js';

const HEAD = `apiVersion: spotfleet.dev/v1
kind: Fleet
metadata: { name: hardening }
providers:
  lab:
    type: local
    config: { nodes: [{ name: n1, gpuModel: V100, gpus: 1, capacity: on-demand, pricePerHour: 1 }] }
pools: [{ name: p, provider: lab, capacity: on-demand }]
workloads: []
`;

const POLICY = (expr: string): string => `apiVersion: spotfleet.dev/v1
kind: PolicySet
metadata: { name: mine }
rules:
  - name: r1
    enforcement: advisory
    deny: ${JSON.stringify(expr)}
    message: m
`;

function temp(): string {
  return mkdtempSync(join(tmpdir(), 'sf-spec-'));
}

describe('validate compiles every CEL expression', () => {
  it('an alert condition that does not compile fails validate and plan at file:line:col', () => {
    const dir = temp();
    writeFileSync(join(dir, 'fleet.yaml'), `${HEAD}alerts:
  - name: costly
    when: "fleetCostPerHour > 10.0 &&"
  - name: typo
    when: fleetCostPerHuor > 1.0
  - name: fine
    when: preemption-notice
`);
    for (const cmd of ['validate', 'plan']) {
      const r = cli([cmd, 'fleet.yaml'], { cwd: dir });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^fleet\.yaml:12:38: alert "costly" when: /m);
      expect(r.stderr).toMatch(/^fleet\.yaml:14:11: alert "typo" when: .*fleetCostPerHuor/m);
      expect(r.stderr).not.toMatch(/Internal error|\n\s+at /);
    }
  });

  it('a policy file whose rule does not compile fails validate at its own file:line:col', () => {
    const dir = temp();
    writeFileSync(join(dir, 'mine.yaml'), POLICY('target.capacity == 1 +'));
    writeFileSync(join(dir, 'fleet.yaml'), `${HEAD}policies: [mine.yaml]\n`);
    const r = cli(['validate', 'fleet.yaml'], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^mine\.yaml:7:\d+: rule "r1" deny: /m);
    writeFileSync(join(dir, 'mine.yaml'), POLICY('target.capacity == "spot"'));
    expect(cli(['validate', 'fleet.yaml'], { cwd: dir }).code).toBe(0);
  });
});

describe('numbers that are not finite', () => {
  it('1e400 in a provider config and .nan in the fleet are refused where they are written', () => {
    const dir = temp();
    writeFileSync(join(dir, 'fleet.yaml'), `apiVersion: spotfleet.dev/v1
kind: Fleet
metadata: { name: nf }
providers:
  market:
    type: sim
    config: { trace: ${JSON.stringify(TRACE)}, gpuModel: V100, speed: 1e400 }
budgetPerHour: .nan
pools: [{ name: p, provider: market, capacity: spot }]
workloads: []
`);
    for (const cmd of ['validate', 'plan']) {
      const r = cli([cmd, 'fleet.yaml'], { cwd: dir });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^fleet\.yaml:7:\d+: providers\.market\.config\.speed is too large: it overflows to infinity \(expected a finite number\)/m);
      expect(r.stderr).toMatch(/^fleet\.yaml:8:16: budgetPerHour is not a number \(NaN\)/m);
      expect(r.stderr).not.toMatch(/Invalid time value/);
    }
  });
});

describe('a provider that cannot start on its config', () => {
  it('plan points at the provider config in the fleet file (found by the fuzz test)', () => {
    const dir = temp();
    writeFileSync(join(dir, 'fleet.yaml'), `apiVersion: spotfleet.dev/v1
kind: Fleet
metadata: { name: nt }
providers:
  market:
    type: sim
    config: { trace: ./no-such-trace, gpuModel: V100 }
pools: [{ name: p, provider: market, capacity: spot }]
workloads: []
`);
    const r = cli(['plan', 'fleet.yaml'], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^\S*fleet\.yaml:7:13: provider "market" \(sim\) cannot start: trace not found/m);
    expect(r.stderr).not.toMatch(/Internal error|\n\s+at /);
  });
});

describe('policies: only from the fleet\'s repository', () => {
  it('refuses an absolute path, a ../ path and a symlink out of the folder; the operator flag allows them', () => {
    const outside = temp();
    writeFileSync(join(outside, 'theirs.yaml'), POLICY('false'));
    const dir = temp();
    symlinkSync(join(outside, 'theirs.yaml'), join(dir, 'link.yaml'));
    writeFileSync(join(dir, 'fleet.yaml'), `${HEAD}policies:\n  - ${join(outside, 'theirs.yaml')}\n  - ../${outside.split('/').pop() as string}/theirs.yaml\n  - link.yaml\n  - /etc/hostname\n`);
    for (const cmd of ['validate', 'plan']) {
      const r = cli([cmd, 'fleet.yaml'], { cwd: dir });
      expect(r.code).toBe(1);
      for (const line of [11, 12, 13, 14]) expect(r.stderr).toMatch(new RegExp(`^fleet\\.yaml:${line}:5: policy file .* is outside the fleet's folder`, 'm'));
      expect(r.stderr).toContain('--allow-external-policies');
    }
    // The operator's flag (or its environment variable) lets them be read; /etc/hostname is then
    // simply not a policy file.
    const allowed = cli(['validate', '--allow-external-policies', 'fleet.yaml'], { cwd: dir });
    expect(allowed.stderr).not.toMatch(/outside the fleet/);
    expect(allowed.stderr).toMatch(/hostname:1:1: a policy file must be a mapping/);
    writeFileSync(join(dir, 'fleet.yaml'), `${HEAD}policies: [link.yaml]\n`);
    expect(cli(['validate', 'fleet.yaml'], { cwd: dir, env: { SPOTFLEET_ALLOW_EXTERNAL_POLICIES: '1' } }).code).toBe(0);
  });

  it('accepts a policy elsewhere in the same git repository', () => {
    const repo = temp();
    execFileSync('git', ['init', '-q', repo]);
    mkdirSync(join(repo, 'policies'));
    mkdirSync(join(repo, 'fleets', 'prod'), { recursive: true });
    writeFileSync(join(repo, 'policies', 'team.yaml'), POLICY('false'));
    writeFileSync(join(repo, 'fleets', 'prod', 'fleet.yaml'), `${HEAD}policies: [../../policies/team.yaml]\n`);
    const r = cli(['validate', 'fleets/prod/fleet.yaml'], { cwd: repo });
    expect(r.code, r.stderr).toBe(0);
  });
});
