// Every file generated from code, by path relative to the package root: the editor schema and the
// provider reference pages. One function, so the generator script and the staleness test agree.
import { providerDocMarkdown, providersIndexMarkdown } from '../providers/docs.js';
import { EDITOR_SCHEMA_PATH } from './assets.js';
import { builtinFactories, editorSchemaText } from './editor-schema.js';

/** path → content of every generated file. */
export async function generatedFiles(): Promise<Record<string, string>> {
  const factories = await builtinFactories();
  const out: Record<string, string> = { [EDITOR_SCHEMA_PATH]: await editorSchemaText(), 'docs/providers/README.md': providersIndexMarkdown(factories) };
  for (const f of factories) out[`docs/providers/${f.type}.md`] = providerDocMarkdown(f);
  return out;
}
