// Fuzz test (issue #11): mutated fleet specs through `validate` and `plan` as the CLI runs them
// (loadFleet; then openFleet, the state, makePlan and all three renderers on the embedded local
// provider). Over 300 cases per run from a fixed seed, so a failure reproduces. For every case:
// - no stack trace: whatever is thrown is a SpotfleetError (the CLI prints those without one);
// - no hang: each case finishes within 20 s;
// - every spec error is located: file:line:col inside the file that was loaded.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { SpecError, SpotfleetError } from '../../src/core/errors.js';
import { loadFleet } from '../../src/spec/load.js';
import { openFleet } from '../../src/engine/session.js';
import { makePlan } from '../../src/engine/make-plan.js';
import { renderPlanJson, renderPlanMarkdown, renderPlanText } from '../../src/engine/render.js';

const SEED = 20_261_105;
const TRACE = resolve(import.meta.dirname, '../../examples/quickstart/traces');
const CASE_LIMIT_MS = 20_000;

const BASE = `apiVersion: spotfleet.dev/v1
kind: Fleet
metadata: { name: fuzz, labels: { team: ml } }
providers:
  lab:
    type: local
    config:
      nodes:
        - { name: od-1, gpuModel: V100, gpus: 4, capacity: on-demand, zone: lab-a, pricePerHour: 12.24 }
        - { name: od-2, gpuModel: A100, gpus: 8, capacity: on-demand, zone: lab-b, pricePerHour: 30 }
        - { name: spot-1, gpuModel: V100, gpus: 2, capacity: spot, zone: lab-a, pricePerHour: 2.5 }
  market:
    type: sim
    config: { trace: ${JSON.stringify(TRACE)}, gpuModel: V100, speed: 60, noticeWindow: 120s }
pools:
  - { name: od-v100, provider: lab, capacity: on-demand, gpuModel: V100 }
  - { name: od-a100, provider: lab, capacity: on-demand, gpuModel: A100, maxPricePerHour: 5 }
  - { name: spot-v100, provider: lab, capacity: spot, gpuModel: V100, maxPricePerHour: 2.0, zones: [lab-a] }
  - { name: market-spot, provider: market, capacity: spot, gpuModel: V100, maxPricePerHour: 1.5 }
defaults:
  checkpoint: { path: /checkpoints, signal: SIGUSR1, stopGrace: 30s, resumeEnv: RESUME_FROM_CHECKPOINT, keep: 3 }
  thresholds: { minSavingsPerHour: 0.5, minRuntime: 30m, spotPriceAlertRatio: 0.8, maxPreemptions: 3, preemptionWindow: 6h, cooldown: 2h }
  fallback: { to: on-demand, revertToSpot: true, minDwell: 30m }
  passEnv: [HF_TOKEN]
workloads:
  - name: train-a
    command: [node, train.js, --epochs, "3"]
    gpus: 2
    gpuModel: V100
    class: training
    capacity: auto
    expectedDuration: 8h
    deadline: 2036-12-01T00:00:00Z
    env: { STEP_MS: "50" }
    labels: { team: nlp }
    checkpoint: { maxAge: 15m, verify: [sh, -c, 'test -s "$1"', sh] }
  - name: eval-b
    command: node eval.js --fast
    gpus: 1
    class: batch
    capacity: spot
    pools: [spot-v100]
    fallback: { to: od-v100 }
    overhead: { checkpoint: 20s, transfer: 1m, restart: 45s }
  - name: serve-c
    command: [python3, serve.py]
    gpus: 4
    gpuModel: A100
    class: serving
    capacity: on-demand
    critical: true
alerts:
  - { name: spike, when: "spotPrice > 0.8 * onDemandPrice", severity: info, notify: [ops] }
  - { name: costly, when: "fleetCostPerHour > 100.0" }
  - { name: stale, when: checkpoint-stale, severity: warning }
sinks:
  - { name: ops, type: command, command: [logger, -t, spotfleet] }
budgetPerHour: 60
`;

const root = mkdtempSync(join(tmpdir(), 'spotfleet-fuzz-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let caseNo = 0;

/** Values that have broken parsers, schemas and planners before. */
const nasty = fc.oneof(
  fc.constantFrom<unknown>(1e400, -1e400, Number.NaN, 0, -1, 1e-300, 2 ** 53 + 1, '', ' ', '0', '1e400', '.nan', 'NaN', '-0', 'null', null, true, [], {}, '\u001b[31m', '\u0000', '../../etc/passwd', './x.cjs', 'SIGKILL', '1h1h', '9999999999h', '2000-01-01T00:00:00Z', 'x'.repeat(300)),
  fc.string({ maxLength: 12 }),
  fc.integer({ min: -10, max: 1_000_000 }),
  fc.double(),
  fc.jsonValue({ maxDepth: 2 }),
);

/** Values a spec could well hold: they keep many mutants valid, so plan runs on them too. */
const plausible = fc.constantFrom<unknown>(0, 1, 2, 3, 4, 8, 16, 0.5, 2.5, 100, 'spot', 'on-demand', 'auto', 'training', 'serving', 'batch', 'dev', '30m', '1s', '0s', '8h', 'V100', 'A100', 'od-v100', 'spot-v100', 'od-a100', 'lab', 'od-1', 'market', 'market-spot', '2030-01-01T00:00:00Z', true, false, [], ['spot-v100'], 'SIGUSR2', 'preemption-notice');
const value = fc.oneof({ arbitrary: plausible, weight: 5 }, { arbitrary: nasty, weight: 2 });

/** Paths to every node of a plain value. */
function paths(v: unknown, prefix: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(prefix);
  if (Array.isArray(v)) v.forEach((x, i) => paths(x, [...prefix, i], out));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) paths(x, [...prefix, k], out);
  return out;
}

type Edit = { kind: 'set' | 'delete' | 'dup' | 'add-key'; pick: number; value: unknown; key: string };

function mutate(base: unknown, edits: Edit[]): unknown {
  const doc = structuredClone(base);
  for (const e of edits) {
    const all = paths(doc).filter((p) => p.length > 0);
    if (all.length === 0) break;
    const path = all[e.pick % all.length] as (string | number)[];
    const parent = path.slice(0, -1).reduce<unknown>((o, k) => (o as Record<string | number, unknown>)[k], doc) as Record<string | number, unknown> | unknown[];
    const last = path[path.length - 1] as string | number;
    if (e.kind === 'set') (parent as Record<string | number, unknown>)[last] = e.value;
    else if (e.kind === 'delete') {
      if (Array.isArray(parent)) parent.splice(Number(last), 1);
      else delete parent[last as string];
    } else if (e.kind === 'dup' && Array.isArray(parent)) parent.push(structuredClone(parent[Number(last)]));
    else if (e.kind === 'add-key') {
      const target = (parent as Record<string | number, unknown>)[last];
      if (target && typeof target === 'object' && !Array.isArray(target)) (target as Record<string, unknown>)[e.key] = e.value;
    }
  }
  return doc;
}

const structural = fc.array(
  fc.record({ kind: fc.constantFrom<Edit['kind']>('set', 'set', 'set', 'set', 'delete', 'dup', 'add-key'), pick: fc.nat(), value, key: fc.constantFrom('name', 'extra', 'when', 'package', 'policies', 'passEnv', 'verify', 'speed') }),
  { minLength: 1, maxLength: 2 },
);

const noise = fc.constantFrom(':', '-', ' ', '\n', '  ', '{', '}', '[', ']', '&a', '*a', '!tag', '"', "'", '#', '<<', '? ', '|', '1e999', '.inf', '\u001b', '\u00e9');
const textual = fc.array(fc.record({ at: fc.nat(), len: fc.nat({ max: 12 }), insert: fc.oneof(noise, fc.string({ maxLength: 6 })) }), { minLength: 1, maxLength: 3 });

function applyEdits(base: string, edits: { at: number; len: number; insert: string }[]): string {
  let s = base;
  for (const e of edits) {
    const at = e.at % (s.length + 1);
    s = s.slice(0, at) + e.insert + s.slice(at + e.len);
  }
  return s;
}

/** Rejects when `p` takes longer than the case limit. */
async function inTime<T>(what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`hang: ${what} took over ${CASE_LIMIT_MS} ms`)), CASE_LIMIT_MS)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** One case: validate, then (when valid) plan, as the CLI does; asserts the three properties. */
async function runCase(text: string): Promise<'invalid' | 'planned'> {
  const dir = join(root, `c${caseNo++}`);
  mkdirSync(dir);
  const file = join(dir, 'fleet.yaml');
  writeFileSync(file, text);
  const lines = text.split('\n').length;
  const explain = (e: unknown): string => `${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n--- spec ---\n${text}`;
  const located = (e: SpotfleetError, step: string): void => {
    if (!(e instanceof SpecError)) throw new Error(`${step}: an error without a position: ${explain(e)}`);
    for (const p of e.problems) {
      // Relative to the fleet's folder (validate) or absolute (plan opens by absolute path).
      const inFile = p.file === 'fleet.yaml' || p.file === file;
      if (!inFile || !(p.line >= 1 && p.line <= lines + 1) || !(p.col >= 1)) throw new Error(`${step}: problem not located in the file: ${JSON.stringify(p)}\n${explain(e)}`);
    }
  };
  try {
    await inTime('validate', loadFleet(file, { cwd: dir }));
  } catch (e) {
    if (!(e instanceof SpotfleetError)) throw new Error(`validate: not a SpotfleetError (the CLI would print a stack trace): ${explain(e)}`);
    located(e, 'validate');
    return 'invalid';
  }
  const session = await inTime('plan: open', openFleet(file, { stateDir: join(dir, '.spotfleet') })).catch((e: unknown) => {
    if (e instanceof SpotfleetError) return e;
    throw new Error(`plan: opening the fleet threw a non-SpotfleetError: ${explain(e)}`);
  });
  if (session instanceof SpotfleetError) {
    // A provider that cannot start on its config (a trace file that is not there): located too.
    located(session, 'plan');
    return 'invalid';
  }
  try {
    const state = await session.store.read();
    const { plan } = await inTime('plan', makePlan(session, state, { now: Date.parse('2026-06-01T00:00:00Z') }));
    renderPlanText(plan, { color: true });
    renderPlanJson(plan);
    renderPlanMarkdown(plan);
    return 'planned';
  } catch (e) {
    if (!(e instanceof SpotfleetError)) throw new Error(`plan: not a SpotfleetError (the CLI would print a stack trace): ${explain(e)}`);
    throw new Error(`plan: failed on a spec validate accepted (validate should have located the problem): ${explain(e)}`);
  } finally {
    await session.close();
  }
}

describe('fuzz: validate and plan on mutated specs (fixed seed)', () => {
  const tally = { invalid: 0, planned: 0 };

  it('the base spec is valid and plans', async () => {
    expect(await runCase(BASE)).toBe('planned');
  });

  it('structural mutations (200 cases)', async () => {
    const base = parse(BASE) as unknown;
    await fc.assert(
      fc.asyncProperty(structural, async (edits) => {
        tally[await runCase(stringify(mutate(base, edits)))]++;
      }),
      { seed: SEED, numRuns: 200, endOnFailure: true },
    );
  }, 600_000);

  it('text mutations (150 cases)', async () => {
    await fc.assert(
      fc.asyncProperty(textual, async (edits) => {
        tally[await runCase(applyEdits(BASE, edits))]++;
      }),
      { seed: SEED + 1, numRuns: 150, endOnFailure: true },
    );
    // Both halves of the pipeline were exercised.
    expect(tally.invalid).toBeGreaterThan(100);
    expect(tally.planned).toBeGreaterThan(40);
  }, 600_000);
});
