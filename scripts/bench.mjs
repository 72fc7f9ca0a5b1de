// Runs every benchmark in dist/test/bench/ in its own Node process (so peak memory is its own) and
// lets each print its numbers. `npm run bench -- NAME` runs the ones whose file name contains NAME.
import { readdirSync, existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const dir = 'dist/test/bench';
const filter = process.argv[2];
if (!existsSync(dir)) {
  console.error('no benchmarks built (dist/test/bench missing)');
  process.exit(1);
}
let failed = 0;
for (const f of readdirSync(dir).filter((f) => f.endsWith('.bench.js')).sort()) {
  if (filter && !f.includes(filter)) continue;
  console.log(`\n=== ${f.replace(/\.bench\.js$/, '')}`);
  const r = spawnSync(process.execPath, ['--expose-gc', join(dir, f)], { stdio: 'inherit' });
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
