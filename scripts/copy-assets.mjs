// Copies the JSON assets (schemas) and SQL migrations next to the compiled modules, so `dist/` runs
// on its own.
import { cpSync, readdirSync, statSync, mkdirSync } from 'node:fs';
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
