// The fast YAML path (js-yaml + offset index) against the full one (the yaml package's Document):
// wherever the fast path accepts a file, both must give the same data, the same line starts and the
// same position for every JSON pointer; loadFleet must give the same fleet or the same problems
// whichever parser runs; and everything outside the fast subset must fall back.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import fc from 'fast-check';
import { dump } from 'js-yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { SpecError } from '../../src/core/errors.js';
import { loadFleet } from '../../src/spec/load.js';
import { encodeSegment, parseFast, parseJsYaml, parsePlain, parseSpecFile, parseSpecText, positionOf, type FastParse, type FastSpecSource } from '../../src/spec/source.js';

const root = resolve(import.meta.dirname, '../..');
const goodDir = join(root, 'test/fixtures/good');
const badDir = join(root, 'test/fixtures/bad');
const yamlFiles = (dir: string): string[] =>
  readdirSync(dir)
    .filter((n) => n.endsWith('.yaml') && statSync(join(dir, n)).isFile())
    .sort()
    .map((n) => join(dir, n));
const goods = [...yamlFiles(goodDir), ...yamlFiles(join(root, 'examples/quickstart'))];
const goodTexts = goods.map((f) => readFileSync(f, 'utf8'));
const NOW = Date.parse('2026-06-01T00:00:00Z');
const tmp = mkdtempSync(join(tmpdir(), 'spotfleet-fast-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Every pointer into `v`, plus pointers just past it (a missing key, an index past the end, a child of a scalar). */
function pointers(v: unknown, prefix = '', out: string[] = []): string[] {
  out.push(prefix);
  if (Array.isArray(v)) {
    v.forEach((x, i) => pointers(x, `${prefix}/${i}`, out));
    out.push(`${prefix}/${v.length}`, `${prefix}/x`, `${prefix}/`);
  } else if (v !== null && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) pointers(x, `${prefix}/${encodeSegment(k)}`, out);
    out.push(`${prefix}/no-such-key`);
  } else {
    out.push(`${prefix}/deeper`);
  }
  return out;
}

/**
 * Each fast scanner (the plain-YAML one, js-yaml) against the full parse: 'fallback' when both
 * decline, 'same' when every one that accepts agrees with the full parse; else the first difference.
 */
function compareParsers(text: string): string {
  let out = 'fallback';
  for (const scan of [parsePlain, parseJsYaml]) {
    const r = compareScanner(text, scan);
    if (r === 'same') out = r;
    else if (r !== 'fallback') return `${scan.name}: ${r}`;
  }
  return out;
}

function compareScanner(text: string, scan: (text: string) => FastParse | undefined): string {
  const fast = scan(text);
  if (!fast) return 'fallback';
  const full = parseSpecText(text, 'f.yaml', 'f.yaml');
  if (!full.source) return `the fast path accepts what the full parse rejects: ${full.problems.map((p) => `${p.line}:${p.col} ${p.message}`).join('; ')}`;
  try {
    expect(fast.data).toEqual(full.source.data);
  } catch (e) {
    return `data differs: ${String(e)}`;
  }
  if (JSON.stringify(fast.index.lines.lineStarts) !== JSON.stringify(full.source.lineCounter.lineStarts)) return 'line starts differ';
  const src: FastSpecSource = { parser: 'fast', file: 'f.yaml', abs: 'f.yaml', text, data: fast.data, index: fast.index };
  for (const p of pointers(full.source.data)) {
    for (const which of ['key', 'value'] as const) {
      const a = positionOf(full.source, p, which);
      const b = positionOf(src, p, which);
      if (a.line !== b.line || a.col !== b.col) return `position of ${p} (${which}): full ${a.line}:${a.col}, fast ${b.line}:${b.col}`;
    }
  }
  return 'same';
}

async function outcome(text: string, parser: 'auto' | 'full'): Promise<unknown> {
  const file = join(tmp, 'fleet.yaml');
  writeFileSync(file, text);
  return outcomeOf(file, parser);
}

async function outcomeOf(path: string, parser: 'auto' | 'full'): Promise<unknown> {
  try {
    const r = await loadFleet(path, { now: NOW, cwd: tmp, parser });
    return { ...r, fleet: { ...r.fleet, source: '', files: [] } };
  } catch (e) {
    if (e instanceof SpecError) return { problems: e.problems };
    throw e;
  }
}

describe('fast YAML path', () => {
  it('takes the fast path for the good fixtures, the examples and a generated fleet', () => {
    const big = ['apiVersion: spotfleet.dev/v1', 'kind: Fleet', 'metadata: { name: big }', 'workloads:'];
    for (let i = 0; i < 200; i++) big.push(`  - name: w-${i}`, `    image: r/t:${i}`, '    gpus: 2', `    env: { SEED: "${i}", MODE: train }`, '    fallback: { to: on-demand, minDwell: 30m }');
    for (const text of [...goodTexts, `${big.join('\n')}\n`]) {
      expect(parseSpecFile(text, 'f.yaml', 'f.yaml').source?.parser).toBe('fast');
      expect(compareParsers(text)).toBe('same');
    }
  });

  it('reads the good fixtures, the examples and a generated fleet with the plain-YAML scanner', () => {
    const big = ['apiVersion: spotfleet.dev/v1', 'kind: Fleet', 'metadata: { name: big }', 'workloads:'];
    for (let i = 0; i < 50; i++) big.push(`  - name: w-${i}`, `    image: r/t:${i}`, '    gpus: 2', `    env: { SEED: "${i}", MODE: train }`);
    for (const text of [...goodTexts, `${big.join('\n')}\n`]) expect(parseFast(text)?.via).toBe('plain');
  });

  it('the plain-YAML scanner reads the usual shapes of a fleet file exactly', () => {
    const shapes = [
      'a: 1\n',
      'a: 1',
      'a: x   \nb: 2   ',
      '# head\n\n  # indented comment\na: x # trailing\n    # deeper comment\nb: y\n\n',
      'a:\n- x\n- y\nb: 1\n',
      'a:\n  - x\n  -   y # c\n',
      'a:\n  - name: n\n    image: i\n  - name: m\nb: 1\n',
      'a:\n  -\n    b: 1\n  - # c\n    c: 2\n',
      'a:\n  - a:\n    - x\n    b: 1\n',
      'x:\n-   a: 1\n    b: 2\n-  "c": 3\n   d: [4]\n',
      'a: # c\n  b: 1\n',
      '"quoted key": \'it\'\'s\'\nb: "x: #y"\n\'c d\': \'\'\n',
      'a: { b: [1, 2.5, "x", \'y\'], c: {}, d: [], "e": { f: g h } }\n',
      'a: [ ]\nb: { }\n',
      'a: x[1]{2}\nb: http://h:80/p#frag\nc: a:b\nd: -x\ne: ?x\nf: :x\n',
      'a: yes\nb: 0o17\nc: 1_000\nd: -1.5e3\ne: .inf\nf: True\n',
      'a:\n  - [1, 2]\n  - { x: 1 }\n  - "q"\n',
      'a√é: ü\n',
      'a: 1\n...b: 2\n--x: 3\n',
      "'it''s': 1\na:b: 2\na: 3\n'a''': 4\n\"a:\": { 'x''': 5, x: 6 }\n",
    ];
    for (const text of shapes) {
      expect([text, parsePlain(text) !== undefined]).toEqual([text, true]);
      expect([text, compareParsers(text)]).toEqual([text, 'same']);
    }
  });

  it('the plain-YAML scanner declines what only js-yaml or the full parse reads', () => {
    const declined = [
      'a: "x\\ty"\n',
      'a: |\n  x\n',
      'a: >-\n  x\n',
      'a: x\n  y\n',
      'a: "x\n  y"\n',
      'a:\n  - - x\n',
      'a: [x,\n  y]\n',
      'a : 1\n',
      'a: {x: 1,}\n',
      'a: [1, 2,]\n',
      'a: {"x":1}\n',
      '1: x\n',
      'a: 1\nb:\n',
      'a: [x, ~]\n',
      'a:\n  b: 1\n c: 2\n',
      'a: 1 # c\n  b: 2\n',
      '  a: 1\n',
      'a: 1\n- b\n',
      '<<: {a: 1}\n',
      'a: "x"#c\n',
      'a: 1\n... b: 2\n',
      'a: 1\n---\nb: 2\n',
      'a: x\u0085y\n',
      'a: \u2028\n',
    ];
    for (const text of declined) {
      expect([text, parsePlain(text)]).toEqual([text, undefined]);
      expect([text, compareParsers(text)]).toEqual([text, expect.stringMatching(/^(same|fallback)$/)]);
    }
  });

  it('agrees with the full parse on every broken fixture it accepts', () => {
    let accepted = 0;
    for (const f of yamlFiles(badDir)) {
      const r = compareParsers(readFileSync(f, 'utf8'));
      expect([f, r]).toEqual([f, expect.stringMatching(/^(same|fallback)$/)]);
      if (r === 'same') accepted++;
    }
    // most broken fleets are broken in their content, not their YAML: they run the fast path
    expect(accepted).toBeGreaterThan(30);
  });

  it('resolves plain scalars by the YAML 1.2 core schema, as the yaml package does', () => {
    const cases: Record<string, unknown> = {
      yes: 'yes', no: 'no', on: 'on', off: 'off', y: 'y', True: true, FALSE: false, tRUE: 'tRUE',
      '0o17': 15, '0x1F': 31, '0b11': '0b11', '017': 17, '+12': 12, '-0': -0, '1_000': '1_000',
      '1.5': 1.5, '.5': 0.5, '1.': 1, '1e3': 1000, '-1.5E-2': -0.015, '.inf': Infinity, '-.Inf': -Infinity, '+.INF': Infinity,
      '2026-12-01': '2026-12-01', '2026-12-01T00:00:00Z': '2026-12-01T00:00:00Z', '12:30': '12:30', '1:20:30': '1:20:30',
      '0.1.2': '0.1.2', '$2.50': '$2.50', '0x': '0x', '12e': '12e', '=': '=', '<<': '<<',
    };
    const text = `${Object.entries(cases).map(([k, _], i) => `k${i}: ${k}`).join('\n')}\nnan: .NaN\nq: "0o17"\nb: |\n  yes\n`;
    const fast = parseFast(text);
    expect(fast).toBeDefined();
    const want: Record<string, unknown> = Object.fromEntries(Object.values(cases).map((v, i) => [`k${i}`, v]));
    expect(fast?.data).toEqual({ ...want, nan: NaN, q: '0o17', b: 'yes\n' });
    expect(compareParsers(text)).toBe('same');
  });

  it('falls back for everything outside its subset', () => {
    const outside = [
      '',
      '# only a comment\n',
      '- a\n- b\n',
      'just text\n',
      'a: 1\n---\nb: 2\n',
      '%YAML 1.1\n---\na: yes\n',
      '\ufeffa: 1\n',
      'a: 1\rb: 2\n',
      'a: [x,#y\n  ]\n',
      'a: &x 1\nb: *x\n',
      'a: !!str 1\n',
      'a: !custom x\n',
      'a:\nb: 1\n',
      'a: ~\n',
      'a: null\n',
      'a: [1, , 2]\n',
      'a: {b}\n',
      '? a\n',
      '1: one\n',
      'true: yes\n',
      '[a]: b\n',
      '__proto__: x\n',
      'a: 1\na: 2\n',
      'a:\n  - b\n - c\n',
      `${'k'.repeat(1100)}: v\n`,
      'a: "unterminated\n',
      'a:\tb\n\tc: d\n',
    ];
    for (const text of outside) expect([text, parseFast(text)]).toEqual([text, undefined]);
  });

  it('agrees with the full parse on random valid documents in many styles (1,000 runs)', () => {
    const scalar = fc.oneof(
      fc.string({ maxLength: 12 }),
      fc.string({ unit: 'grapheme', maxLength: 6 }),
      fc.integer(),
      fc.double({ noNaN: true }),
      fc.boolean(),
      fc.constantFrom('yes', 'no', '0o17', '0x1F', '0b11', '1_000', '2026-01-01T00:00:00Z', '.inf', '+12', '012', '1e3', '1.', 'True', '~', '', ' a', 'a ', 'a: b', '- x', '#c', 'x #c', 'a\nb', 'a\n\nb', '\t', '@x', '%x', '!x', '&x', '*x', '? x', '|', '<<', 'a,b', '[x]', '{x}'),
    );
    const value: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
      v: fc.oneof({ depthSize: 'small' }, scalar, fc.array(tie('v'), { maxLength: 4 }), fc.dictionary(fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom('a b', 'x:y', '#k', '-k', '1', 'true', 'null', '')), tie('v'), { maxKeys: 4 })),
    })).v;
    const style = fc.record({ indent: fc.constantFrom(2, 4), flow: fc.boolean(), quote: fc.boolean(), width: fc.constantFrom(0, 20, 80), jsYaml: fc.boolean(), flowLevel: fc.constantFrom(-1, 0, 1, 2) });
    fc.assert(
      fc.property(fc.dictionary(fc.string({ maxLength: 8 }), value, { minKeys: 1, maxKeys: 6 }), style, (data, s) => {
        const text = s.jsYaml
          ? dump(data, { indent: s.indent, flowLevel: s.flowLevel, lineWidth: s.width || -1, forceQuotes: s.quote })
          : stringify(data, { indent: s.indent, lineWidth: s.width, collectionStyle: s.flow ? 'flow' : 'any', defaultStringType: s.quote ? 'QUOTE_DOUBLE' : 'PLAIN' });
        expect([text, compareParsers(text)]).toEqual([text, expect.stringMatching(/^(same|fallback)$/)]);
      }),
      { numRuns: 1000 },
    );
  });

  it('agrees with the full parse on random edits of the good fixtures (2,000 runs)', () => {
    const noise = fc.constantFrom(':', '-', ' ', '\n', '\t', '{', '}', '[', ']', ',', '&a', '*a', '!tag', '"', "'", '#', ' #', '---', '...', '<<', '? ', '|', '>-', '%YAML 1.2', '\u00e9', '\uffff', '\u0085', '\u2028', '\r', '\r\n', 'null', '~', '1e999', '0x1f', '0o17', 'yes', '\\', '  ', '- ', ': ');
    const edit = fc.record({ at: fc.nat(), len: fc.nat({ max: 20 }), insert: fc.oneof(noise, fc.string({ maxLength: 8 })) });
    fc.assert(
      fc.property(fc.constantFrom(...goodTexts), fc.array(edit, { minLength: 1, maxLength: 4 }), (base, edits) => {
        let text = base;
        for (const e of edits) {
          const at = e.at % (text.length + 1);
          text = text.slice(0, at) + e.insert + text.slice(at + e.len);
        }
        expect([text, compareParsers(text)]).toEqual([text, expect.stringMatching(/^(same|fallback)$/)]);
      }),
      { numRuns: 2000 },
    );
  });

  it('loadFleet gives the same fleet or the same problems with either parser (broken fixtures and 200 random edits)', async () => {
    for (const f of yamlFiles(badDir)) {
      const text = readFileSync(f, 'utf8');
      expect(await outcome(text, 'auto')).toEqual(await outcome(text, 'full'));
    }
    for (const d of readdirSync(badDir).filter((n) => statSync(join(badDir, n)).isDirectory())) {
      expect(await outcomeOf(join(badDir, d), 'auto')).toEqual(await outcomeOf(join(badDir, d), 'full'));
    }
    const edit = fc.record({ at: fc.nat(), len: fc.nat({ max: 12 }), insert: fc.constantFrom('', 'x', '0', '-1', 'spot', '30m', 'V100', ' ', '\n', '  - ', '{ }', 'nope: 1', '"') });
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...goodTexts), fc.array(edit, { minLength: 1, maxLength: 3 }), async (base, edits) => {
        let text = base;
        for (const e of edits) {
          const at = e.at % (text.length + 1);
          text = text.slice(0, at) + e.insert + text.slice(at + e.len);
        }
        expect(await outcome(text, 'auto')).toEqual(await outcome(text, 'full'));
      }),
      { numRuns: 200 },
    );
  });
});
