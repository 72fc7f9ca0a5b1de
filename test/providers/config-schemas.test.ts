// Every built-in provider's configSchema is a valid JSON Schema. validate and every command skip
// ajv's meta-schema check when they compile these schemas (it cost more than the compile), so an
// invalid edit of a provider's schema is caught here. The build precompiles them (ajv standalone
// code); each module must report and fill in exactly what the compiled schema does.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, describe, expect, it } from 'vitest';
import { BUILTIN_PROVIDERS, checkConfigSchema, configValidatorModule, loadPrecompiledConfigValidator, loadProviderFactory } from '../../src/providers/registry.js';
import type { ProviderFactory } from '../../src/providers/sdk.js';
import { readSpecFile } from '../../src/spec/source.js';

describe('built-in provider config schemas', () => {
  it.each([...BUILTIN_PROVIDERS])('%s: configSchema passes the draft 2020-12 meta-schema and compiles', async (type) => {
    const factory = await loadProviderFactory(type, undefined, process.cwd());
    expect(checkConfigSchema(factory)).toEqual([]);
  });

  it('names what is wrong with a schema that is not one', () => {
    const broken: ProviderFactory = { type: 'broken', description: '', configSchema: { type: 'object', properties: { nodes: { type: 'list', minItems: -1 } } }, create: () => ({ name: 'b', type: 'broken' }) };
    const problems = checkConfigSchema(broken);
    expect(problems.length).toBeGreaterThan(0);
    expect(problems.join('\n')).toMatch(/properties\/nodes/);
  });
});

describe('precompiled config validators (the build writes one per built-in provider next to registry.js)', () => {
  // Inside the repo, so the module's require of ajv's runtime resolves as it does from dist/.
  const ROOT = resolve(import.meta.dirname, '../..');
  mkdirSync(join(ROOT, 'node_modules/.cache'), { recursive: true });
  const dir = mkdtempSync(join(ROOT, 'node_modules/.cache/spotfleet-config-validator-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Every `config:` the repository's fleet files give a provider of this type. */
  function configsInRepo(type: string): unknown[] {
    const out: unknown[] = [];
    const walk = (d: string): void => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const p = join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.name.endsWith('.yaml')) {
          const providers = (readSpecFile(p, p).source?.data as { providers?: unknown } | undefined)?.providers;
          if (providers === null || typeof providers !== 'object') continue;
          for (const inst of Object.values(providers as Record<string, unknown>)) {
            const i = inst as { type?: unknown; config?: unknown } | null;
            if (i?.type === type && i.config !== undefined) out.push(i.config);
          }
        }
      }
    };
    for (const d of ['test/fixtures', 'examples', 'docs']) walk(join(ROOT, d));
    return out;
  }

  it.each([...BUILTIN_PROVIDERS])('%s: reports and fills in exactly what the compiled schema does', async (type) => {
    const factory = await loadProviderFactory(type, undefined, ROOT);
    const file = join(dir, `${type}.cjs`);
    writeFileSync(file, await configValidatorModule(factory));
    const pre = loadPrecompiledConfigValidator(file, factory);
    expect(pre).toBeTypeOf('function');
    const compiled = new Ajv2020({ allErrors: true, strict: false, useDefaults: true, verbose: true, validateSchema: false }).compile(factory.configSchema);
    const found = configsInRepo(type);
    // and every documented key with a value of the wrong kind, on its own and over a real config
    const keys = Object.keys((factory.configSchema as { properties?: Record<string, unknown> }).properties ?? {});
    const wrong = keys.flatMap((k) => [{ [k]: 12345 }, { [k]: 'x' }, { [k]: {} }, { ...(found[0] as object | undefined), [k]: [1, 'x'] }]);
    const samples: unknown[] = [{}, { nope: 1 }, 'not a mapping', ...found, ...wrong];
    for (const sample of samples) {
      const a = structuredClone(sample);
      const b = structuredClone(sample);
      expect(pre!(a), JSON.stringify(sample)).toBe(compiled(b));
      expect(JSON.stringify(pre!.errors ?? null), JSON.stringify(sample)).toBe(JSON.stringify(compiled.errors ?? null));
      expect(a).toEqual(b);
    }
  });

  it('is ignored when it was made from another schema', async () => {
    const factory = await loadProviderFactory('local', undefined, ROOT);
    const file = join(dir, 'stale.cjs');
    writeFileSync(file, (await configValidatorModule(factory)).replace(/schemaSha256 = "[0-9a-f]+"/, 'schemaSha256 = "0000"'));
    expect(loadPrecompiledConfigValidator(file, factory)).toBeUndefined();
    expect(loadPrecompiledConfigValidator(join(dir, 'missing.cjs'), factory)).toBeUndefined();
    const other = await loadProviderFactory('sim', undefined, ROOT);
    writeFileSync(join(dir, 'local.cjs'), await configValidatorModule(factory));
    expect(loadPrecompiledConfigValidator(join(dir, 'local.cjs'), other)).toBeUndefined();
  });
});
