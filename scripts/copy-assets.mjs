// Copies the JSON assets (schemas) and SQL migrations next to the compiled modules, so `dist/` runs
// on its own, and precompiles the validators of the fleet schema, the state file and the built-in
// providers' configs there.
import { cpSync, readdirSync, statSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';

function walk(dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith('.json') || name.endsWith('.sql')) {
      const to = join('dist', p);
      mkdirSync(dirname(to), { recursive: true });
      cpSync(p, to);
    }
  }
}
for (const root of ['src', 'providers']) walk(root);

// The fleet schema's validator, precompiled (ajv standalone code) so no CLI run compiles it; the
// module carries the hash of the schema it came from, and a stale one is ignored.
const { fleetValidatorModule, PRECOMPILED_VALIDATOR } = await import('../dist/src/spec/schema.js');
writeFileSync(join('dist/src/spec', PRECOMPILED_VALIDATOR), await fleetValidatorModule());

// The state file's shape check, precompiled the same way.
const { stateValidatorModule, PRECOMPILED_STATE_VALIDATOR } = await import('../dist/src/state/schema.js');
writeFileSync(join('dist/src/state', PRECOMPILED_STATE_VALIDATOR), await stateValidatorModule());

// The built-in providers' config validators, precompiled the same way (one module per provider, so
// a run loads only those its fleet names), each tagged with the hash of the schema it came from.
const { BUILTIN_PROVIDERS, PRECOMPILED_CONFIG_VALIDATORS, configValidatorModule, loadProviderFactory } = await import('../dist/src/providers/registry.js');
const validatorDir = join('dist/src/providers', PRECOMPILED_CONFIG_VALIDATORS);
mkdirSync(validatorDir, { recursive: true });
for (const type of BUILTIN_PROVIDERS) {
  writeFileSync(join(validatorDir, `${type}.cjs`), await configValidatorModule(await loadProviderFactory(type, undefined, process.cwd())));
}
