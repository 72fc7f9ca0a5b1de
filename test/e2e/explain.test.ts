// `spotfleet explain` through the built CLI: a workload not yet applied (the start decision and its
// options), JSON output, --refresh=false, and the errors for unknown or non-workload addresses.
import { afterAll, describe, expect, it } from 'vitest';
import { cli, tempFleet } from './helpers.js';

const dir = tempFleet([{ name: 'a' }, { name: 'b', capacity: 'on-demand', gpus: 2 }]);
afterAll(() => {
  cli(['destroy', '--auto-approve', dir], { cwd: dir });
});

describe('spotfleet explain', () => {
  it('explains a workload that is not running yet: its options, reasons and money', () => {
    const r = cli(['explain', 'workload.a', dir], { cwd: dir });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^workload\.a: \S+ → /);
    expect(r.stdout).toContain('  not running');
    expect(r.stdout).toContain('class training, 1 GPU(s) V100, capacity auto, checkpoint yes');
    expect(r.stdout).toMatch(/^ {4}od-v100\/lab on-demand \$3\.06\/GPU-h \(available, node od-1\)$/m);
    expect(r.stdout).toMatch(/^ {4}spot-v100\/\S+ spot \$\d/m);
    expect(r.stdout).toMatch(/^reasons:\n {2}\[/m);
    expect(r.stdout).toMatch(/^money:\n {2}now \$0\/h|^money:\n {2}now \$0\.00\/h/m);
  });

  it('--json: the decision input and the decision', () => {
    const r = cli(['explain', 'workload.b', '--json', dir], { cwd: dir });
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({ format_version: '1.0', address: 'workload.b', refreshed: true });
    expect(doc.input.workload.name).toBe('b');
    expect(doc.decision.target.capacity).toBe('on-demand');
    expect(doc.decision.reasons.map((x: { rule: string }) => x.rule)).toContain('eligibility');
  });

  it('--refresh=false works from the state alone and says so', () => {
    const r = cli(['explain', 'workload.b', '--refresh=false', dir], { cwd: dir });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^workload\.b: /);
    expect(r.stderr).toContain('refresh skipped');
  });

  it('an unknown workload is a clear error that lists the known ones', () => {
    const r = cli(['explain', 'workload.nope', dir], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('Error: workload.nope is neither in the fleet spec nor in the state');
    expect(r.stderr).toContain('Workloads in the spec: workload.a, workload.b');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('only workload addresses can be explained', () => {
    const lease = cli(['explain', 'lease.spot-v100.x', dir], { cwd: dir });
    expect(lease.code).toBe(1);
    expect(lease.stderr).toContain('explain works on workloads, not lease addresses');
    const junk = cli(['explain', 'train-a', dir], { cwd: dir });
    expect(junk.code).toBe(1);
    expect(junk.stderr).toContain('"train-a" is not an address');
  });
});
