// e2e: a policy written against Terraform's plan JSON paths (`resource_changes[].change.actions`,
// `type`, `change.after`) runs on spotfleet's plan JSON. No Rego evaluator can be installed from
// the npm or Debian registries here (Debian has no opa package; the npm OPA packages run only
// policies compiled by the opa binary), so the policy is a spotfleet CEL policy set with
// `scope: plan`, reading the same paths a conftest policy reads from `input`. The fleet folder also
// holds a docker-compose.yaml, which validate must skip and say so.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluatePlanRules, loadPolicySet } from '../../src/policy/policy-set.js';
import { TRAINER, cli, runningByWorkload } from './helpers.js';

const POLICY = `apiVersion: spotfleet.dev/v1
kind: PolicySet
metadata: { name: plan-guards }
scope: plan
rules:
  # Rego: deny[msg] { rc := input.resource_changes[_]; rc.type == "workload"; rc.change.actions[_] == "delete"; msg := ... }
  - name: no-workload-deletes
    enforcement: mandatory
    deny: input.resource_changes.exists(rc, rc.type == "workload" && "delete" in rc.change.actions)
    message: this plan stops a running workload; stop it by hand if you mean it
  # Rego: warn[msg] { input.cost.after_per_hour > 5 ... }
  - name: fleet-budget
    enforcement: advisory
    deny: input.cost.after_per_hour > 5.0
    message: the fleet would cost more than $5/h
`;

function fleet(names: string[]): string {
  return `apiVersion: spotfleet.dev/v1
kind: Fleet
metadata: { name: guarded }
providers:
  lab:
    type: local
    config:
      nodes:
        - { name: od-1, gpuModel: V100, gpus: 4, capacity: on-demand, zone: lab, pricePerHour: 12.24 }
pools:
  - { name: od, provider: lab, capacity: on-demand, gpuModel: V100 }
defaults:
  checkpoint: { path: /checkpoints, signal: SIGUSR1, stopGrace: 10s, resumeEnv: RESUME_FROM_CHECKPOINT }
workloads:
${names.map((n) => `  - { name: ${n}, command: ["node", ${JSON.stringify(TRAINER)}], gpus: 1, gpuModel: V100, class: training, capacity: on-demand, expectedDuration: 8h, env: { STEP_MS: "50", CHECKPOINT_EVERY: "5" } }`).join('\n')}
`;
}

describe('a Terraform-style plan policy on the plan JSON', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'sf-policy-'));
    writeFileSync(join(dir, 'fleet.yaml'), fleet(['a', 'b']));
    // Beside the fleet: the policy set (loaded as the fleet's policies) and unrelated YAML.
    writeFileSync(join(dir, 'guards.yaml'), POLICY);
    writeFileSync(join(dir, 'docker-compose.yaml'), 'services:\n  web:\n    image: nginx\n    ports: ["8080:80"]\n');
  });
  afterAll(() => {
    // The guard would block the destroy plan too (it deletes workloads): take it away first.
    rmSync(join(dir, 'guards.yaml'));
    const d = cli(['destroy', '--auto-approve', dir], { cwd: dir });
    expect(d.code, d.stderr).toBe(0);
    rmSync(dir, { recursive: true, force: true });
  });

  it('validate takes the folder: the policy set is loaded, docker-compose.yaml is skipped, and both are said', () => {
    const r = cli(['validate', dir], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Skipped .*docker-compose\.yaml: not a spotfleet document/);
    expect(r.stdout).toMatch(/Skipped .*guards\.yaml: kind PolicySet: loaded as a policy set of this fleet/);
    expect(r.stdout).toContain('The fleet "guarded" is valid.');
    const j = JSON.parse(cli(['validate', '--json', dir], { cwd: dir }).stdout) as { valid: boolean; skipped: { file: string }[] };
    expect(j.valid).toBe(true);
    expect(j.skipped.map((s) => s.file.split('/').at(-1)).sort()).toEqual(['docker-compose.yaml', 'guards.yaml']);
  });

  it('a plan that only creates passes the mandatory rule; the advisory budget rule speaks', () => {
    const r = cli(['plan', dir], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toContain('no-workload-deletes');
    // Two workloads at $3.06/h each: $6.12/h after, over the advisory budget; advisory never blocks.
    expect(r.stdout).toMatch(/^advisory policy fleet-budget \(plan\): the fleet would cost more than \$5\/h$/m);
    const j = JSON.parse(cli(['plan', '--json', dir], { cwd: dir }).stdout) as { applyable: boolean; cost: { after_per_hour: number }; policy_violations: { policy: string; level: string }[] };
    expect(j.cost.after_per_hour).toBe(6.12);
    expect(j.applyable).toBe(true);
    expect(j.policy_violations).toEqual([{ policy: 'fleet-budget', level: 'advisory', message: 'the fleet would cost more than $5/h' }]);
    expect(cli(['apply', '--auto-approve', dir], { cwd: dir }).code).toBe(0);
  });

  it('removing a workload from the spec makes a plan that deletes it: the mandatory rule blocks apply', async () => {
    writeFileSync(join(dir, 'fleet.yaml'), fleet(['a']));
    const planFile = join(dir, 'del.plan');
    const p = cli(['plan', `-out=${planFile}`, dir], { cwd: dir });
    expect(p.code, p.stderr).toBe(0);
    expect(p.stdout).toMatch(/^mandatory policy no-workload-deletes \(plan\): this plan stops a running workload/m);
    const shown = cli(['show', '--json', planFile], { cwd: dir });
    const doc = JSON.parse(shown.stdout) as { applyable: boolean; resource_changes: { address: string; type: string; change: { actions: string[] } }[]; policy_violations: { policy: string; level: string }[] };
    expect(doc.resource_changes.find((c) => c.address === 'workload.b')).toMatchObject({ type: 'workload', change: { actions: ['delete'] } });
    expect(doc.policy_violations).toEqual([expect.objectContaining({ policy: 'no-workload-deletes', level: 'mandatory' })]);
    expect(doc.applyable).toBe(false);
    // The same policy, run on the document `show --json` prints, reads the same paths and agrees.
    const set = loadPolicySet([join(dir, 'guards.yaml')]);
    expect(evaluatePlanRules(set, doc as unknown as Record<string, unknown>).map((v) => v.policy)).toEqual(['no-workload-deletes']);
    const apply = cli(['apply', '--auto-approve', dir], { cwd: dir });
    expect(apply.code).toBe(1);
    expect(apply.stderr).toMatch(/1 mandatory policy violated/);
    expect(apply.stderr).toContain('no-workload-deletes');
    expect((await runningByWorkload(dir)).get('b'), 'b still runs').toHaveLength(1);
  });

  it('a broken plan rule is a validate error at file:line:col', () => {
    const bad = mkdtempSync(join(tmpdir(), 'sf-policy-bad-'));
    try {
      writeFileSync(join(bad, 'fleet.yaml'), fleet(['a']));
      writeFileSync(join(bad, 'guards.yaml'), POLICY.replace('input.cost.after_per_hour > 5.0', 'input.cost.after_per_hour >'));
      const r = cli(['validate', bad], { cwd: bad });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/guards\.yaml:\d+:\d+: rule "fleet-budget" deny: /);
      expect(readFileSync(join(bad, 'guards.yaml'), 'utf8')).toContain('scope: plan');
    } finally {
      rmSync(bad, { recursive: true, force: true });
    }
  });
});
