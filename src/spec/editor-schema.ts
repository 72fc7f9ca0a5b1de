// The editor schema: fleet.schema.json (what `validate` checks the document shape with) plus every
// built-in provider's own config schema, chosen by the instance's `type`, so an editor completes
// and checks `config:` keys as you type. Published at schema/fleet.schema.json in the package;
// `scripts/gen-docs.mjs` writes it, and test/spec/generated.test.ts fails when it is stale.
import { BUILTIN_PROVIDERS, loadProviderFactory } from '../providers/registry.js';
import type { ProviderFactory } from '../providers/sdk.js';
import { fleetSchema } from './schema.js';

const PROVIDER_SCHEMA_ID = 'https://spotfleet.dev/schemas/providers/';

/** The built-in provider factories, in BUILTIN_PROVIDERS order. */
export async function builtinFactories(): Promise<ProviderFactory[]> {
  return Promise.all(BUILTIN_PROVIDERS.map((t) => loadProviderFactory(t, undefined, process.cwd())));
}

/** A provider's config schema as an embedded resource: its own `$id`, no `$schema`. */
export function embeddedConfigSchema(f: ProviderFactory): Record<string, unknown> {
  const { $schema: _schema, $id: _id, ...rest } = f.configSchema as Record<string, unknown>;
  return { $id: `${PROVIDER_SCHEMA_ID}${f.type}.json`, ...rest };
}

/** Builds the editor schema from the base schema and the given providers. Pure. */
export function buildEditorSchema(base: Record<string, unknown>, factories: readonly ProviderFactory[]): Record<string, unknown> {
  const schema = structuredClone(base);
  const defs = schema.$defs as Record<string, Record<string, unknown>>;
  const provider = structuredClone(defs.provider) as Record<string, unknown> & { properties: Record<string, Record<string, unknown>> };
  provider.properties.type = { ...provider.properties.type, examples: factories.map((f) => f.type) };
  const configs: Record<string, unknown> = {};
  const cases: Record<string, unknown>[] = [];
  for (const f of factories) {
    configs[f.type] = embeddedConfigSchema(f);
    // A built-in type without `package:` takes that provider's config; an external package's
    // config is checked by its own schema when the fleet loads.
    cases.push({
      if: { required: ['type'], properties: { type: { const: f.type } }, not: { required: ['package'] } },
      then: { properties: { config: { $ref: `#/$defs/providerConfig/${f.type}`, description: `${f.type}: ${f.description}` } } },
    });
  }
  provider.allOf = cases;
  defs.provider = provider;
  defs.providerConfig = configs;
  schema.description = `${typeof schema.description === 'string' ? schema.description : ''} This is the editor schema: it includes the config schema of every built-in provider (${factories.map((f) => f.type).join(', ')}).`.trim();
  return schema;
}

/** The editor schema of this spotfleet, as `schema/fleet.schema.json` holds it. */
export async function editorSchema(): Promise<Record<string, unknown>> {
  return buildEditorSchema(fleetSchema(), await builtinFactories());
}

/** The file text: pretty JSON with a final newline. */
export async function editorSchemaText(): Promise<string> {
  return `${JSON.stringify(await editorSchema(), null, 2)}\n`;
}
