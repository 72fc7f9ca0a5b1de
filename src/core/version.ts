// spotfleet's own version, read once from the package.json that ships with it (the same file from
// the source tree and from dist/, and from an installed package).
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

/** The package version, e.g. `0.1.0`; `0.0.0-unknown` if package.json cannot be found. */
export function spotfleetVersion(): string {
  if (cached !== undefined) return cached;
  // src/core/ from source, dist/src/core/ when built: package.json is two or three levels up.
  for (const rel of ['../../package.json', '../../../package.json']) {
    const p = fileURLToPath(new URL(rel, import.meta.url));
    if (!existsSync(p)) continue;
    try {
      const pkg = JSON.parse(readFileSync(p, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'spotfleet' && typeof pkg.version === 'string') return (cached = pkg.version);
    } catch {
      // Try the next candidate.
    }
  }
  return (cached = '0.0.0-unknown');
}
