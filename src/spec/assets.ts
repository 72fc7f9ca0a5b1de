// Files that ship with spotfleet next to its code, found the same way from the source tree, from
// dist/ and from an installed package: the published editor schema and the sample trainer.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The package root: two levels above src/spec/, three above dist/src/spec/. */
function packageFile(rel: string): string {
  const fromSource = fileURLToPath(new URL(`../../${rel}`, import.meta.url));
  return existsSync(fromSource) ? fromSource : fileURLToPath(new URL(`../../../${rel}`, import.meta.url));
}

/** Where the editor schema lives in the package: `schema/fleet.schema.json` (see editor-schema.ts). */
export const EDITOR_SCHEMA_PATH = 'schema/fleet.schema.json';

/** The published editor schema (with every built-in provider's config), as installed. */
export function fleetSchemaPath(): string {
  return packageFile(EDITOR_SCHEMA_PATH);
}

/** The sample trainer that `spotfleet init` copies (examples/quickstart/trainer.mjs). */
export function sampleTrainerPath(): string {
  return packageFile('examples/quickstart/trainer.mjs');
}
