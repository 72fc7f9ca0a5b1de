// stableStringify feeds every workload's specHash, which state files keep: its hand-optimised loops
// must give exactly the output of the plain definition (map, sort, join, JSON.stringify).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { stableStringify, workloadSpecHash } from '../../src/spec/resolve.js';

function reference(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(reference).join(',')}]`;
  if (typeof v === 'object' && v !== null) {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o).filter((k) => o[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${reference(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

describe('stableStringify', () => {
  it('matches the plain definition on random values (2,000 runs)', () => {
    const key = fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom('10', '9', '1', 'a', 'B', '__proto__x', '\u00e9', '\ud800', '"', '\\'));
    const leaf = fc.oneof(fc.string({ maxLength: 8 }), fc.string({ unit: 'binary', maxLength: 4 }), fc.double(), fc.integer(), fc.boolean(), fc.constant(null), fc.constant(undefined), fc.constantFrom(-0, NaN, Infinity, '\u2028', '\u007f', '\t'));
    const value = fc.letrec((tie) => ({ v: fc.oneof({ depthSize: 'small' }, leaf, fc.array(tie('v'), { maxLength: 4 }), fc.dictionary(key, tie('v'), { maxKeys: 5 })) })).v;
    fc.assert(
      fc.property(value, (v) => {
        expect(stableStringify(v)).toBe(reference(v));
      }),
      { numRuns: 2000 },
    );
  });

  it('keeps specHash values stable', () => {
    expect(workloadSpecHash({ image: 'i', command: ['a'], env: { B: '2', A: '1' }, gpus: 1, gpuModel: 'V100' })).toBe(
      workloadSpecHash({ gpuModel: 'V100', gpus: 1, env: { A: '1', B: '2' }, command: ['a'], image: 'i' }),
    );
    expect(stableStringify({ b: [1, undefined, 'x'], a: { d: undefined, c: -0 }, '10': true, '9': null })).toBe('{"10":true,"9":null,"a":{"c":0},"b":[1,null,"x"]}');
  });
});
