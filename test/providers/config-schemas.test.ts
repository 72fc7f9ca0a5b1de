// Every built-in provider's configSchema is a valid JSON Schema. validate and every command skip
// ajv's meta-schema check when they compile these schemas (it cost more than the compile), so an
// invalid edit of a provider's schema is caught here.
import { describe, expect, it } from 'vitest';
import { BUILTIN_PROVIDERS, checkConfigSchema, loadProviderFactory } from '../../src/providers/registry.js';
import type { ProviderFactory } from '../../src/providers/sdk.js';

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
