// `spotfleet providers lock [PATH]`: pins the external provider packages a fleet names, after an
// `npm install`: their version and a hash of their installed files go into .spotfleet.lock.json
// next to the spec (commit it). Every other command runs a package's code only when the lock pins
// it (src/providers/lock.ts). This command runs none of it: it reads package.json and hashes files.
import type { Command } from 'commander';
import { SpotfleetError } from '../core/errors.js';
import { PROVIDER_LOCK_FILE, findInstalledPackage, hashPackageDir, isPackageName, readProviderLock, writeProviderLock, type ProviderLockEntry } from '../providers/lock.js';
import { loadFleet } from '../spec/load.js';
import { specPathArg, type CliApp } from './app.js';

export function registerProvidersLock(providers: Command, app: CliApp): void {
  providers
    .command('lock')
    .description(`pin the fleet's external provider packages (version and hash of their installed files) in ${PROVIDER_LOCK_FILE}`)
    .argument('[path]', 'fleet file, or a folder of *.yaml files', '.')
    .action(async (path: string) => {
      // The spec alone: loading the providers would run the code this command is about to pin.
      const { fleet } = await loadFleet(specPathArg(path), { checkProviders: false });
      const wanted = [...new Set(fleet.providers.flatMap((p) => (p.package !== undefined ? [p.package] : [])))].sort();
      if (wanted.length === 0) {
        app.io.out('The fleet names no external provider packages (`package:`); there is nothing to lock.');
        return;
      }
      const before = readProviderLock(fleet.dir)?.providers ?? {};
      const entries: Record<string, ProviderLockEntry> = {};
      const problems: string[] = [];
      for (const name of wanted) {
        if (!isPackageName(name)) {
          problems.push(`"${name}" is not an npm package name (a provider is never loaded from a path)`);
          continue;
        }
        const pkg = findInstalledPackage(name, fleet.dir);
        if (!pkg) {
          problems.push(`"${name}" is not installed next to the fleet (npm install ${name})`);
          continue;
        }
        entries[name] = { version: pkg.version, hash: hashPackageDir(pkg.dir) };
      }
      if (problems.length > 0) throw new SpotfleetError('PROVIDER_LOCK_FAILED', `cannot lock ${problems.length} provider package${problems.length === 1 ? '' : 's'}; ${PROVIDER_LOCK_FILE} is unchanged`, problems);
      const file = writeProviderLock(fleet.dir, entries);
      for (const [name, e] of Object.entries(entries)) {
        const old = before[name];
        const what = !old ? 'pinned' : old.version === e.version && old.hash === e.hash ? 'unchanged' : `updated from ${old.version} (${old.hash.slice(0, 19)}…)`;
        app.io.out(`${name} ${e.version} ${e.hash.slice(0, 19)}… ${what}`);
      }
      for (const name of Object.keys(before).filter((n) => !(n in entries)).sort()) app.io.out(`${name} removed (no longer in the spec)`);
      app.io.out(`\nWrote ${file}. Commit it with the fleet: only the pinned packages' code runs.`);
    });
}
