// The fleet schema is compiled without ajv's meta-schema check (it doubles the compile time of every
// CLI run), so this test is where an invalid edit of fleet.schema.json gets caught. The build
// precompiles it (ajv standalone code); that module must report exactly what the compiled one does.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, describe, expect, it } from 'vitest';
import { PRECOMPILED_VALIDATOR, fleetSchema, fleetValidatorModule, loadPrecompiledValidator } from '../../src/spec/schema.js';
import { readSpecFile } from '../../src/spec/source.js';

const ROOT = resolve(import.meta.dirname, '../..');
const FIXTURES = join(ROOT, 'test/fixtures');

describe('fleet.schema.json', () => {
  it('is a valid JSON Schema (draft 2020-12)', () => {
    const ajv = new Ajv2020({ strict: false });
    const ok = ajv.validateSchema(fleetSchema());
    expect(ajv.errors ?? []).toEqual([]);
    expect(ok).toBe(true);
  });

  it('compiles with the options checkSchema uses', () => {
    const ajv = new Ajv2020({ allErrors: true, strict: false, verbose: true });
    expect(() => ajv.compile(fleetSchema())).not.toThrow();
  });
});

describe('the precompiled fleet validator (the build writes it next to schema.js)', () => {
  // Inside the repo, so the module's require of ajv's runtime resolves as it does from dist/.
  mkdirSync(join(ROOT, 'node_modules/.cache'), { recursive: true });
  const dir = mkdtempSync(join(ROOT, 'node_modules/.cache/spotfleet-validator-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reports exactly what the compiled schema reports, on every bad and good fixture', async () => {
    const file = join(dir, PRECOMPILED_VALIDATOR);
    writeFileSync(file, await fleetValidatorModule());
    const pre = loadPrecompiledValidator(file);
    expect(pre).toBeTypeOf('function');
    const compiled = new Ajv2020({ allErrors: true, strict: false, verbose: true }).compile(fleetSchema());
    const fixtures = ['bad', 'good'].flatMap((d) => readdirSync(join(FIXTURES, d)).filter((f) => f.endsWith('.yaml')).map((f) => join(FIXTURES, d, f)));
    let checked = 0;
    for (const f of fixtures) {
      const src = readSpecFile(f, f).source;
      if (!src) continue;
      const a = pre!(src.data);
      const b = compiled(src.data);
      expect(a, f).toBe(b);
      expect(JSON.stringify(pre!.errors ?? null), f).toBe(JSON.stringify(compiled.errors ?? null));
      checked++;
    }
    expect(checked).toBeGreaterThan(40);
  });

  it('is ignored when it was made from another schema', async () => {
    const file = join(dir, 'stale.cjs');
    writeFileSync(file, (await fleetValidatorModule()).replace(/schemaSha256 = "[0-9a-f]+"/, 'schemaSha256 = "0000"'));
    expect(loadPrecompiledValidator(file)).toBeUndefined();
    expect(loadPrecompiledValidator(join(dir, 'missing.cjs'))).toBeUndefined();
  });
});
