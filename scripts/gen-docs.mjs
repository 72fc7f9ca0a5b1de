// Writes the generated files from the built code (run `npm run gen`, which builds first):
// - schema/fleet.schema.json: the editor schema with every built-in provider's config schema;
// - docs/providers/*.md: each built-in provider's config keys.
// test/spec/generated.test.ts fails when a committed copy differs from what this writes.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { generatedFiles } = await import(join(root, 'dist/src/spec/generated.js'));
for (const [rel, text] of Object.entries(await generatedFiles())) {
  const path = join(root, rel);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
  console.log(`wrote ${rel}`);
}
