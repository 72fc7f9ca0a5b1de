// Finds provider factories (built-ins by type, external plugins by npm package name), checks each
// instance's `config` against the provider's own JSON Schema, and creates the instances.
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { mkdirSync, realpathSync } from 'node:fs';
import { join, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Ajv2020, Options as AjvOptions } from 'ajv/dist/2020.js';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { ProviderError, SpotfleetError, type SourcePos, type SpecProblem } from '../core/errors.js';
import { nearestWord } from '../core/suggest.js';
import { builtinProviders, type BuiltinProviderType } from '../../providers/builtins.js';
import { pinnedPackage } from './lock.js';
import type { Provider, ProviderContext, ProviderFactory, ProviderLogger, ProviderPool } from './sdk.js';

/** Built-in provider types, from the explicit map in providers/builtins.ts. */
export const BUILTIN_PROVIDERS: readonly BuiltinProviderType[] = Object.keys(builtinProviders) as BuiltinProviderType[];

const cache = new Map<string, ProviderFactory>();

function isFactory(v: unknown): v is ProviderFactory {
  return typeof v === 'object' && v !== null && typeof (v as ProviderFactory).create === 'function' && typeof (v as ProviderFactory).type === 'string';
}

/**
 * Loads the factory for a provider instance: a built-in by `type`, or an external plugin from the
 * npm package `pkg`, resolved from the spec's folder (so a fleet's own node_modules works), and
 * only when the lock file pins it (see lock.ts): a path is never loaded.
 */
export async function loadProviderFactory(type: string, pkg: string | undefined, specDir: string): Promise<ProviderFactory> {
  const key = pkg ? `pkg:${specDir}\u0000${pkg}` : `builtin:${type}`;
  const hit = cache.get(key);
  if (hit) return hit;
  let mod: Record<string, unknown>;
  if (pkg) {
    // Nothing of the package runs unless it is installed and pinned in the lock file (lock.ts).
    const pinned = pinnedPackage(pkg, specDir);
    let resolved: string;
    try {
      resolved = createRequire(join(specDir, 'package.json')).resolve(pkg);
    } catch {
      throw new SpotfleetError('PROVIDER_NOT_FOUND', `provider package "${pkg}" is installed at ${pinned.dir} but its entry point cannot be resolved`, ['Its package.json needs a "main" or "exports" entry.']);
    }
    let real: string;
    try {
      real = realpathSync(resolved);
    } catch {
      real = resolved;
    }
    if (!real.startsWith(`${pinned.dir}${sep}`)) {
      throw new SpotfleetError('PROVIDER_LOCK_MISMATCH', `provider package "${pkg}" resolves to ${real}, outside the pinned package folder ${pinned.dir}`);
    }
    mod = (await import(pathToFileURL(real).href)) as Record<string, unknown>;
  } else {
    const load = Object.hasOwn(builtinProviders, type) ? builtinProviders[type as BuiltinProviderType] : undefined;
    if (!load) {
      throw new SpotfleetError('PROVIDER_NOT_FOUND', `unknown provider type "${type}"`, [`Built-in types: ${BUILTIN_PROVIDERS.join(', ')}; or set \`package:\` to an npm package.`]);
    }
    mod = await load();
  }
  const factory = [mod.provider, mod.default, (mod.default as Record<string, unknown> | undefined)?.provider].find(isFactory);
  if (!factory) {
    throw new SpotfleetError('PROVIDER_INVALID', `${pkg ? `package "${pkg}"` : `provider "${type}"`} does not export a provider (expected an export named \`provider\` with type, configSchema and create)`);
  }
  if (pkg && factory.type !== type) {
    throw new SpotfleetError('PROVIDER_INVALID', `package "${pkg}" provides type "${factory.type}", but the spec says type "${type}"`);
  }
  cache.set(key, factory);
  return factory;
}

// Provider schemas are checked against the JSON Schema meta-schema in tests, not on every run:
// that check, and optimising the generated code, cost more than compiling the schemas themselves
// (about 60 ms of every validate). Built-ins: test/providers/config-schemas.test.ts; a plugin's
// author runs checkConfigSchema in the plugin's own tests.
const CONFIG_AJV_OPTIONS: AjvOptions = { allErrors: true, strict: false, useDefaults: true, verbose: true, validateSchema: false, code: { optimize: false } };
const requireHere = createRequire(import.meta.url);
/** ajv's module, loaded on first use: `validate` and `plan` on built-in providers never need it. */
function ajvModule(): typeof import('ajv/dist/2020.js') {
  return requireHere('ajv/dist/2020.js') as typeof import('ajv/dist/2020.js');
}
let ajv: Ajv2020 | undefined;
const compiled = new WeakMap<ProviderFactory, ValidateFunction>();

/**
 * The built-in providers' config validators, precompiled by the build (scripts/copy-assets.mjs)
 * into this folder next to the compiled registry, one `<type>.cjs` each: loading one costs a
 * millisecond, loading ajv and compiling the schema tens of them on every CLI run.
 */
export const PRECOMPILED_CONFIG_VALIDATORS = 'config-validators';

function configSchemaSha256(factory: ProviderFactory): string {
  return createHash('sha256').update(JSON.stringify(factory.configSchema)).digest('hex');
}

/**
 * A provider's config validator as a CommonJS module (ajv standalone code, the options
 * validateProviderConfig compiles with), tagged with the hash of the schema it was made from.
 */
export async function configValidatorModule(factory: ProviderFactory): Promise<string> {
  const standalone = await import('ajv/dist/standalone/index.js');
  const { Ajv2020: Ajv } = ajvModule();
  const gen = new Ajv({ ...CONFIG_AJV_OPTIONS, code: { ...CONFIG_AJV_OPTIONS.code, source: true } });
  return `${standalone.default(gen, gen.compile(factory.configSchema))}\nmodule.exports.schemaSha256 = ${JSON.stringify(configSchemaSha256(factory))};\n`;
}

/** The precompiled validator in `file` when it was made from this very schema; otherwise undefined. */
export function loadPrecompiledConfigValidator(file: string, factory: ProviderFactory): ValidateFunction | undefined {
  try {
    const mod = requireHere(file) as { default?: ValidateFunction; schemaSha256?: string };
    return typeof mod.default === 'function' && mod.schemaSha256 === configSchemaSha256(factory) ? mod.default : undefined;
  } catch {
    return undefined;
  }
}

function configValidator(factory: ProviderFactory): ValidateFunction {
  let validate = compiled.get(factory);
  if (!validate) {
    // Only a plain type name can name a file; the hash check makes a plugin of the same type name
    // with another schema compile its own.
    const pre = /^[a-z][a-z0-9-]*$/.test(factory.type) ? loadPrecompiledConfigValidator(fileURLToPath(new URL(`./${PRECOMPILED_CONFIG_VALIDATORS}/${factory.type}.cjs`, import.meta.url)), factory) : undefined;
    if (pre) validate = pre;
    else {
      ajv ??= new (ajvModule().Ajv2020)(CONFIG_AJV_OPTIONS);
      validate = ajv.compile(factory.configSchema);
    }
    compiled.set(factory, validate);
  }
  return validate;
}
/**
 * Config objects that passed validateProviderConfig, with the factory they passed for: loadFleet
 * validates each config with source positions, and createProvider does not validate it again.
 */
const validated = new WeakMap<object, ProviderFactory>();

/**
 * Problems of a provider's configSchema as a JSON Schema (draft 2020-12 meta-schema, then a
 * compile with the options validateProviderConfig uses): empty when it is usable. For tests.
 */
export function checkConfigSchema(factory: ProviderFactory): string[] {
  const { Ajv2020: Ajv } = ajvModule();
  const strict = new Ajv({ allErrors: true, strict: false });
  if (!strict.validateSchema(factory.configSchema)) return (strict.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? 'is invalid'}`);
  try {
    new Ajv({ allErrors: true, strict: false, useDefaults: true, verbose: true }).compile(factory.configSchema);
  } catch (e) {
    return [e instanceof Error ? e.message : String(e)];
  }
  return [];
}

/**
 * Validates (and fills defaults into) a provider's config. `positionOf` maps a JSON pointer inside
 * the config (`/nodes/0/gpus`) to where it stands in the fleet file; `which` is `key` when the
 * problem is the key itself (an unknown key), else the value.
 */
export function validateProviderConfig(
  factory: ProviderFactory,
  instance: string,
  config: Record<string, unknown>,
  positionOf: (pointer: string, which?: 'key' | 'value') => SourcePos,
): SpecProblem[] {
  const validate = configValidator(factory);
  if (validate(config)) {
    validated.set(config, factory);
    return [];
  }
  return (validate.errors ?? []).map((e) => configProblem(e, instance, factory.type, positionOf));
}

function configProblem(e: ErrorObject, instance: string, type: string, positionOf: (pointer: string, which?: 'key' | 'value') => SourcePos): SpecProblem {
  let pointer = e.instancePath;
  let message = e.message ?? 'is invalid';
  let expected: string | undefined;
  if (e.keyword === 'additionalProperties') {
    const extra = String((e.params as { additionalProperty?: string }).additionalProperty);
    pointer = `${pointer}/${extra.replace(/~/g, '~0').replace(/\//g, '~1')}`;
    const documented = Object.keys((e.parentSchema as { properties?: Record<string, unknown> } | undefined)?.properties ?? {}).sort();
    const near = nearestWord(extra, documented);
    message = `has an unknown key "${extra}"${near ? `; did you mean "${near}"?` : ''}`;
    expected = documented.length > 0 ? `one of the keys the ${type} provider documents: ${documented.join(', ')} (see \`spotfleet providers schema ${type}\`)` : 'no keys here';
  } else if (e.keyword === 'required') {
    const missing = String((e.params as { missingProperty?: string }).missingProperty);
    message = `missing required key "${missing}"`;
    const desc = (e.parentSchema as { properties?: Record<string, { description?: string }> } | undefined)?.properties?.[missing]?.description;
    expected = desc ? `${missing}: ${desc}` : `a "${missing}" key`;
  } else if (e.keyword === 'enum') {
    expected = `one of ${((e.params as { allowedValues?: unknown[] }).allowedValues ?? []).map((v) => JSON.stringify(v)).join(', ')}`;
    message = 'has a value that is not allowed';
  } else if (e.keyword === 'type') {
    expected = String((e.params as { type?: string }).type);
    message = 'has the wrong type';
  }
  const at = e.keyword === 'additionalProperties' ? e.instancePath : pointer;
  expected ??= (e.parentSchema as { description?: string } | undefined)?.description ?? "a value the provider's config schema allows";
  const where = at === '' ? 'config' : `config${at.replace(/\//g, '.')}`;
  const pos = positionOf(pointer, e.keyword === 'additionalProperties' ? 'key' : 'value');
  const p: SpecProblem = { ...pos, severity: 'error', message: `provider "${instance}" (${type}): ${where} ${message}`, path: pointer, rule: 'provider-config' };
  if (expected !== undefined) p.expected = expected;
  return p;
}

export interface CreateProvidersOptions {
  fleet: string;
  specDir: string;
  stateDir: string;
  log: ProviderLogger;
  now?: () => number;
  env?: Readonly<Record<string, string | undefined>>;
  /** The fleet's pools; each provider instance gets those that use it (ProviderContext.pools). */
  pools?: readonly (ProviderPool & { provider: string })[];
}

/** The pools that use one provider instance, as plain data (no source positions). */
export function poolsOf(pools: readonly (ProviderPool & { provider: string })[] | undefined, provider: string): ProviderPool[] {
  return (pools ?? [])
    .filter((p) => p.provider === provider)
    .map((p) => {
      const out: ProviderPool = { name: p.name, capacity: p.capacity };
      if (p.gpuModel !== undefined) out.gpuModel = p.gpuModel;
      if (p.zones !== undefined) out.zones = [...p.zones];
      if (p.maxPricePerHour !== undefined) out.maxPricePerHour = p.maxPricePerHour;
      if (p.node !== undefined) out.node = { ...p.node };
      return out;
    });
}

/** Creates one provider instance; a failure names the instance. */
export async function createProvider(
  spec: { name: string; type: string; package?: string; config: Record<string, unknown> },
  opts: CreateProvidersOptions,
): Promise<Provider> {
  const factory = await loadProviderFactory(spec.type, spec.package, opts.specDir);
  const dataDir = join(opts.stateDir, 'providers', spec.name);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const ctx: ProviderContext = {
    name: spec.name,
    fleet: opts.fleet,
    specDir: opts.specDir,
    dataDir,
    log: opts.log,
    now: opts.now ?? Date.now,
    env: opts.env ?? process.env,
    pools: poolsOf(opts.pools, spec.name),
  };
  const config = structuredClone(spec.config);
  // A config from loadFleet was validated there, with positions; one handed in directly (a test, an
  // embedding program, a fleet loaded with checkProviders: false) is validated here.
  if (validated.get(spec.config) !== factory) {
    const problems = validateProviderConfig(factory, spec.name, config, () => ({ file: '<config>', line: 0, col: 0 }));
    if (problems.length > 0) throw new ProviderError(spec.name, `invalid config: ${problems.map((p) => p.message).join('; ')}`);
  }
  try {
    return await factory.create(config, ctx);
  } catch (e) {
    if (e instanceof SpotfleetError) throw e;
    throw new ProviderError(spec.name, `failed to start: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}

/** A logger that drops everything; for commands that do not log. */
export const silentLogger: ProviderLogger = { debug() {}, info() {}, warn() {}, error() {} };
