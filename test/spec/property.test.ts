// Property test: thousands of random mutations of the valid fleets in test/fixtures/good/ fed to
// loadFleet in-process. Whatever the input, loadFleet either returns a fleet or throws a
// SpotfleetError (normally SpecError with positioned problems); never anything else.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { SpecError, SpotfleetError } from '../../src/core/errors.js';
import { loadFleet } from '../../src/spec/load.js';

const goodDir = resolve(import.meta.dirname, '../fixtures/good');
const goods = readdirSync(goodDir).filter((n) => n.endsWith('.yaml')).sort().map((n) => readFileSync(join(goodDir, n), 'utf8'));
const tmp = mkdtempSync(join(tmpdir(), 'spotfleet-prop-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const file = join(tmp, 'fleet.yaml');
const NOW = Date.parse('2026-06-01T00:00:00Z');

async function check(text: string | Uint8Array): Promise<void> {
  writeFileSync(file, text);
  try {
    await loadFleet(file, { now: NOW });
  } catch (e) {
    if (!(e instanceof SpotfleetError)) throw new Error(`loadFleet threw a non-SpotfleetError: ${String(e)}\n--- input ---\n${String(text)}`, { cause: e });
    if (e instanceof SpecError) {
      expect(e.problems.length).toBeGreaterThan(0);
      for (const p of e.problems) {
        expect(p.line).toBeGreaterThanOrEqual(1);
        expect(p.col).toBeGreaterThanOrEqual(1);
        expect(p.message.length).toBeGreaterThan(0);
      }
    }
  }
}

const noise = fc.constantFrom(':', '-', ' ', '\n', '\t', '{', '}', '[', ']', '&a', '*a', '!tag', '"', "'", '#', '---', '<<', '? ', '|', '>', '%YAML 1.2', '\u00e9', '\uffff', '\u0000', 'null', '~', '1e999', '-1', '0x1f');

const textMutation = fc.record({
  base: fc.constantFrom(...goods),
  edits: fc.array(
    fc.record({ at: fc.nat(), len: fc.nat({ max: 20 }), insert: fc.oneof(noise, fc.string({ maxLength: 8 })) }),
    { minLength: 1, maxLength: 4 },
  ),
});

function applyEdits(base: string, edits: { at: number; len: number; insert: string }[]): string {
  let s = base;
  for (const e of edits) {
    const at = e.at % (s.length + 1);
    s = s.slice(0, at) + e.insert + s.slice(at + e.len);
  }
  return s;
}

/** Paths to every node of a plain value. */
function paths(v: unknown, prefix: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(prefix);
  if (Array.isArray(v)) v.forEach((x, i) => paths(x, [...prefix, i], out));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) paths(x, [...prefix, k], out);
  return out;
}

const anyValue = fc.oneof(
  fc.string({ maxLength: 10 }),
  fc.integer({ min: -5, max: 100 }),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constantFrom('30m', '8h', '90s', 'spot', 'on-demand', 'auto', 'V100', 'A100', 'lab', 'market', 'spot-v100', 'log', '2001-01-01T00:00:00Z', '$2.50', 'SIGUSR1'),
  fc.array(fc.string({ maxLength: 5 }), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.oneof(fc.string({ maxLength: 5 }), fc.integer()), { maxKeys: 3 }),
);

const structMutation = fc.record({
  base: fc.constantFrom(...goods.map((g) => parse(g) as unknown)),
  ops: fc.array(fc.record({ pick: fc.nat(), kind: fc.constantFrom('set', 'delete', 'add-key', 'duplicate'), value: anyValue, key: fc.string({ maxLength: 6 }) }), { minLength: 1, maxLength: 3 }),
});

function mutate(base: unknown, ops: { pick: number; kind: string; value: unknown; key: string }[]): unknown {
  const root = structuredClone(base) as Record<string, unknown>;
  for (const op of ops) {
    const all = paths(root).filter((p) => p.length > 0);
    const path = all[op.pick % all.length];
    if (!path) continue;
    let parent: unknown = root;
    for (const seg of path.slice(0, -1)) parent = (parent as Record<string | number, unknown>)[seg];
    const last = path[path.length - 1] as string | number;
    const obj = parent as Record<string | number, unknown>;
    if (op.kind === 'set') obj[last] = op.value;
    else if (op.kind === 'delete') {
      if (Array.isArray(obj)) obj.splice(Number(last), 1);
      else delete obj[last];
    } else if (op.kind === 'add-key') {
      const target = obj[last];
      if (target && typeof target === 'object' && !Array.isArray(target)) (target as Record<string, unknown>)[op.key] = op.value;
    } else if (Array.isArray(obj)) obj.push(structuredClone(obj[Number(last)]));
  }
  return root;
}

describe('loadFleet never throws anything but SpotfleetError', () => {
  it('the good fixtures load', async () => {
    for (const n of readdirSync(goodDir).filter((x) => x.endsWith('.yaml'))) await loadFleet(join(goodDir, n), { now: NOW });
  });

  it('random text edits (1,500 runs)', async () => {
    await fc.assert(fc.asyncProperty(textMutation, async ({ base, edits }) => check(applyEdits(base, edits))), { numRuns: 1500 });
  });

  it('random structural mutations (1,500 runs)', async () => {
    await fc.assert(fc.asyncProperty(structMutation, async ({ base, ops }) => check(stringify(mutate(base, ops)))), { numRuns: 1500 });
  });

  it('random bytes (300 runs)', async () => {
    await fc.assert(fc.asyncProperty(fc.uint8Array({ maxLength: 200 }), async (bytes) => check(bytes)), { numRuns: 300 });
  });
});
