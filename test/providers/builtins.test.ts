// The explicit map of built-in providers (providers/builtins.ts): every provider folder is in it,
// each entry loads a factory of its own type, and the registry refuses a type the map lacks (a
// prototype key included, since the map is a plain object).
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { builtinProviders } from '../../providers/builtins.js';
import { BUILTIN_PROVIDERS, loadProviderFactory } from '../../src/providers/registry.js';

describe('providers/builtins.ts', () => {
  it('lists every providers/<type>/index.ts, and nothing else', () => {
    const folders = readdirSync('providers', { withFileTypes: true })
      .filter((d) => d.isDirectory() && existsSync(join('providers', d.name, 'index.ts')))
      .map((d) => d.name);
    expect([...BUILTIN_PROVIDERS].sort()).toEqual(folders.sort());
    expect(BUILTIN_PROVIDERS).toEqual(Object.keys(builtinProviders));
  });

  it.each([...BUILTIN_PROVIDERS])('%s: loads the factory of that type', async (type) => {
    const factory = await loadProviderFactory(type, undefined, process.cwd());
    expect(factory.type).toBe(type);
  });

  it.each(['nope', 'constructor', 'toString'])('refuses the unknown type %s, naming the built-ins', async (type) => {
    await expect(loadProviderFactory(type, undefined, process.cwd())).rejects.toThrow(`unknown provider type "${type}"`);
    await expect(loadProviderFactory(type, undefined, process.cwd())).rejects.toMatchObject({ code: 'PROVIDER_NOT_FOUND' });
  });
});
