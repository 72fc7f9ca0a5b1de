// Policy files: CEL rules with enforcement levels, file:line:col errors, and expressions that
// cannot hang the planner.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SpecError } from '../../src/core/errors.js';
import { decideWorkload } from '../../src/policy/decide.js';
import { DEFAULT_POLICY_FILE, loadPolicySet } from '../../src/policy/policy-set.js';
import { ctx, input, od, onSpotNow, spot, workload } from './builders.js';

const dir = mkdtempSync(join(tmpdir(), 'sf-policy-'));
function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}
function problemsOf(paths: string[]): string[] {
  try {
    loadPolicySet(paths);
  } catch (e) {
    if (e instanceof SpecError) return e.problems.map((p) => `${p.file.slice(dir.length + 1)}:${p.line}:${p.col}: ${p.message}`);
    throw e;
  }
  throw new Error('expected a SpecError');
}

describe('policy sets', () => {
  it('the default set loads', () => {
    const set = loadPolicySet([DEFAULT_POLICY_FILE]);
    expect(set.rules.map((r) => r.name)).toEqual(['no-spot-for-serving', 'spot-needs-checkpoint', 'spot-without-price-cap', 'spot-preemption-heavy']);
  });

  it('mandatory rules remove candidates; a spec that demands a forbidden placement gets a mandatory violation', () => {
    const p = file('cap.yaml', `kind: PolicySet
rules:
  - name: spot-under-two
    enforcement: mandatory
    match: workload.labels.team == "nlp"
    require: target.capacity != "spot" || target.pricePerGpuHour <= 0.5
    message: nlp spot must cost at most $0.50/GPU-h
`);
    const set = loadPolicySet([p]);
    const auto = decideWorkload(input(), ctx({ policies: set }));
    expect(auto.target?.capacity).toBe('on-demand');
    expect(auto.violations).toEqual([]);
    expect(auto.reasons.some((r) => r.rule === 'policy' && r.text.includes('spot-under-two'))).toBe(true);
    const demanded = decideWorkload(input({ workload: workload({ capacity: 'spot' }) }), ctx({ policies: set }));
    expect(demanded.violations).toEqual([{ policy: 'spot-under-two', level: 'mandatory', message: 'nlp spot must cost at most $0.50/GPU-h' }]);
    // other teams are not matched
    const other = decideWorkload(input({ workload: workload({ labels: { team: 'vision' } }) }), ctx({ policies: set }));
    expect(other.target?.capacity).toBe('spot');
  });

  it('a running placement that violates a mandatory rule must move', () => {
    const p = file('nospot.yaml', `kind: PolicySet
rules:
  - { name: no-spot, enforcement: mandatory, deny: 'target.capacity == "spot" && numbers.remainingHours > 1.0', message: no spot for long jobs }
`);
    const d = decideWorkload(input({ current: onSpotNow(0.9) }), ctx({ policies: loadPolicySet([p]) }));
    expect(d.action).toBe('move');
    expect(d.target?.capacity).toBe('on-demand');
  });

  it('advisory rules are warnings on the outcome; the default set warns about spot without a price cap', () => {
    const set = loadPolicySet([DEFAULT_POLICY_FILE]);
    const { maxPricePerHour: _m, ...uncapped } = spot(0.9);
    const d = decideWorkload(input({ options: [od(), uncapped] }), ctx({ policies: set }));
    expect(d.target?.capacity).toBe('spot');
    expect(d.violations.map((v) => `${v.level} ${v.policy}`)).toEqual(['advisory spot-without-price-cap']);
    const capped = decideWorkload(input(), ctx({ policies: set }));
    expect(capped.violations).toEqual([]);
    const serving = decideWorkload(input({ workload: workload({ class: 'serving', capacity: 'spot' }) }), ctx({ policies: set }));
    expect(serving.violations.some((v) => v.level === 'mandatory')).toBe(true);
  });

  it('malformed files and expressions: every problem with file:line:col inside the expression', () => {
    const p = file('bad.yaml', `kind: PolicySet
rules:
  - name: typo
    enforcement: mandatory
    deny: target.capacty == "spot"
    message: m
  - name: syntax
    deny: 'workload.gpus > '
    message: m
  - name: not-bool
    require: workload.gpus + 1
    message: m
  - name: block
    enforcement: sometimes
    deny: |
      workload.gpus > 2 &&
        target.nope
    message: m
  - name: Bad_Name
    message: m
`);
    expect(problemsOf([p])).toEqual([
      'bad.yaml:5:18: rule "typo" deny: No such key: capacty',
      'bad.yaml:8:28: rule "syntax" deny: Unexpected token: EOF',
      'bad.yaml:11:14: rule "not-bool" require: evaluates to int',
      'bad.yaml:14:18: unknown enforcement "sometimes"',
      'bad.yaml:17:16: rule "block" deny: No such key: nope',
      'bad.yaml:19:11: rule name "Bad_Name" is not valid',
      'bad.yaml:19:5: a rule needs exactly one of "deny" and "require"',
    ]);
    const y = file('yaml.yaml', 'kind: PolicySet\nrules:\n  - name: [unclosed\n');
    expect(problemsOf([y])[0]).toMatch(/^yaml\.yaml:\d+:\d+: /);
    const k = file('kind.yaml', 'kind: Fleet\nrules: []\nextra: 1\n');
    expect(problemsOf([k])).toEqual(['kind.yaml:3:1: unknown key "extra"', 'kind.yaml:1:7: not a policy set']);
  });

  it('expression bombs are rejected at load time, quickly, not evaluated', () => {
    const deep = `${'('.repeat(200)}true${')'.repeat(200)}`;
    const wide = Array.from({ length: 100 }, () => '1 < 2').join(' && '); // 896 chars, ~300 AST nodes
    const nested = 'workload.pools.all(a, workload.pools.all(b, workload.pools.all(c, a == b)))';
    const regex = 'workload.name.matches("(a+)+$")';
    const p = file('bomb.yaml', `kind: PolicySet
rules:
  - { name: deep, deny: '${deep}', message: m }
  - { name: wide, deny: '${wide}', message: m }
  - { name: nested, deny: '${nested}', message: m }
  - { name: regex, deny: '${regex}', message: m }
  - { name: long, deny: '${'true || '.repeat(200)}true', message: m }
`);
    const problems = problemsOf([p]);
    expect(problems).toHaveLength(5);
    expect(problems[0]).toMatch(/deep.*Exceeded maxDepth/);
    expect(problems[1]).toMatch(/wide.*Exceeded maxAstNodes/);
    expect(problems[2]).toMatch(/nested.*comprehensions \(all\) nested 3 deep/);
    expect(problems[3]).toMatch(/regex.*regular expressions are not allowed/);
    expect(problems[4]).toMatch(/long.*expression is 1604 characters long/);
  });
});
