// The provider lock file, `.spotfleet.lock.json` next to the fleet spec (commit it, as Terraform's
// .terraform.lock.hcl). External providers are npm packages; their code runs inside spotfleet, so
// it must be code the operator chose: a package is loaded only when it is installed and the lock
// pins its version and the hash of its installed files. `spotfleet providers lock` writes the
// lock after an `npm install`; `validate` and every other command refuse a package that is not
// pinned or whose files changed, without running any of it. A path (`./x.cjs`) is never a package.
//
//   { "format_version": "1",
//     "providers": { "spotfleet-provider-foo": { "version": "1.2.3", "hash": "sha256:..." } } }
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, lstatSync, openSync, readFileSync, readdirSync, readlinkSync, realpathSync, renameSync, writeSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { SpotfleetError } from '../core/errors.js';

export const PROVIDER_LOCK_FILE = '.spotfleet.lock.json';
export const PROVIDER_LOCK_FORMAT = '1';

export interface ProviderLockEntry {
  version: string;
  /** `sha256:` and the hex digest of the installed package's files (hashPackageDir). */
  hash: string;
}

export interface ProviderLock {
  format_version: string;
  providers: Record<string, ProviderLockEntry>;
}

/** An installed package, found without running any of it. */
export interface InstalledPackage {
  name: string;
  version: string;
  /** The package folder (symlinks resolved). */
  dir: string;
}

const PACKAGE_NAME = /^(?:@[a-z0-9][a-z0-9._~-]*\/)?[a-z0-9][a-z0-9._~-]*$/;

/** True for an npm package name (`foo`, `@scope/foo`); false for a path or anything else. */
export function isPackageName(s: string): boolean {
  return s.length <= 214 && PACKAGE_NAME.test(s) && !s.includes('..');
}

/** Where the lock file of a fleet whose spec folder is `specDir` lives. */
export function providerLockPath(specDir: string): string {
  return join(specDir, PROVIDER_LOCK_FILE);
}

/**
 * Finds `node_modules/<name>` from `fromDir` upwards, as Node resolves a bare name; reads its
 * package.json (data only). Undefined when it is not installed.
 */
export function findInstalledPackage(name: string, fromDir: string): InstalledPackage | undefined {
  if (!isPackageName(name)) return undefined;
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', ...name.split('/'));
    if (existsSync(join(candidate, 'package.json'))) {
      let pj: { name?: unknown; version?: unknown };
      try {
        pj = JSON.parse(readFileSync(join(candidate, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown };
      } catch {
        throw new SpotfleetError('PROVIDER_INVALID', `${join(candidate, 'package.json')} is not valid JSON`);
      }
      if (pj.name !== name) throw new SpotfleetError('PROVIDER_INVALID', `${candidate} holds package "${String(pj.name)}", not "${name}"`);
      return { name, version: typeof pj.version === 'string' ? pj.version : '0.0.0', dir: realpathSync(candidate) };
    }
    if (dirname(dir) === dir) return undefined;
  }
}

/**
 * A hash of every file under the package folder (nested node_modules included, symlinks as their
 * target text), independent of timestamps and of the order the file system lists them in.
 */
export function hashPackageDir(dir: string): string {
  const h = createHash('sha256');
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const rel = relative(dir, p).split(sep).join('/');
      const st = lstatSync(p);
      if (st.isSymbolicLink()) h.update(`l\0${rel}\0${readlinkSync(p)}\n`);
      else if (st.isDirectory()) walk(p);
      else if (st.isFile()) h.update(`f\0${rel}\0${createHash('sha256').update(readFileSync(p)).digest('hex')}\n`);
    }
  };
  walk(dir);
  return `sha256:${h.digest('hex')}`;
}

/** Reads the lock; undefined when there is none. Throws on a lock that cannot be read. */
export function readProviderLock(specDir: string): ProviderLock | undefined {
  const path = providerLockPath(specDir);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new SpotfleetError('PROVIDER_LOCK_INVALID', `cannot read ${path}: ${(e as Error).message}`);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new SpotfleetError('PROVIDER_LOCK_INVALID', `${path} is not valid JSON: ${(e as Error).message}`, ['Run `spotfleet providers lock` to write it again.']);
  }
  const lock = v as Partial<ProviderLock>;
  const ok = typeof lock === 'object' && lock !== null && lock.format_version === PROVIDER_LOCK_FORMAT && typeof lock.providers === 'object' && lock.providers !== null &&
    Object.values(lock.providers).every((e) => typeof e?.version === 'string' && typeof e.hash === 'string');
  if (!ok) throw new SpotfleetError('PROVIDER_LOCK_INVALID', `${path} is not a spotfleet provider lock (format_version ${PROVIDER_LOCK_FORMAT})`, ['Run `spotfleet providers lock` to write it again.']);
  return lock as ProviderLock;
}

/** Writes the lock (sorted, atomically). */
export function writeProviderLock(specDir: string, providers: Record<string, ProviderLockEntry>): string {
  const sorted: Record<string, ProviderLockEntry> = {};
  for (const k of Object.keys(providers).sort()) sorted[k] = providers[k] as ProviderLockEntry;
  const path = providerLockPath(specDir);
  // Committed with the spec, so readable like it (0644); written atomically.
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', 0o644);
  try {
    writeSync(fd, `${JSON.stringify({ format_version: PROVIDER_LOCK_FORMAT, providers: sorted }, null, 2)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  return path;
}

/**
 * The installed, pinned package folder of an external provider, checked against the lock before
 * anything of it runs. Throws a SpotfleetError that says what to do otherwise.
 */
export function pinnedPackage(name: string, specDir: string): InstalledPackage {
  if (!isPackageName(name)) {
    throw new SpotfleetError('PROVIDER_NOT_A_PACKAGE', `"${name}" is not an npm package name; providers come from installed packages pinned in ${PROVIDER_LOCK_FILE}, never from a path`, [
      'Publish or pack the provider as a package, `npm install` it next to the fleet, then run `spotfleet providers lock`.',
    ]);
  }
  const installed = findInstalledPackage(name, specDir);
  if (!installed) {
    throw new SpotfleetError('PROVIDER_NOT_FOUND', `provider package "${name}" is not installed`, [`Install it next to the fleet: npm install ${name}, then run \`spotfleet providers lock\`.`]);
  }
  const entry = readProviderLock(specDir)?.providers[name];
  if (!entry) {
    throw new SpotfleetError('PROVIDER_NOT_LOCKED', `provider package "${name}" is not pinned in ${PROVIDER_LOCK_FILE}, so none of its code runs`, [
      `Review it, then pin it: spotfleet providers lock (records ${name} ${installed.version} and the hash of its files).`,
    ]);
  }
  if (entry.version !== installed.version) {
    throw new SpotfleetError('PROVIDER_LOCK_MISMATCH', `provider package "${name}" is installed at version ${installed.version}, but ${PROVIDER_LOCK_FILE} pins ${entry.version}`, [
      `Install the pinned version (npm install ${name}@${entry.version}), or run \`spotfleet providers lock\` to pin the installed one.`,
    ]);
  }
  const hash = hashPackageDir(installed.dir);
  if (hash !== entry.hash) {
    throw new SpotfleetError('PROVIDER_LOCK_MISMATCH', `the files of provider package "${name}" ${installed.version} (${installed.dir}) do not match the hash pinned in ${PROVIDER_LOCK_FILE}`, [
      `Pinned ${entry.hash}, installed ${hash}. Reinstall the package, or review the change and run \`spotfleet providers lock\`.`,
    ]);
  }
  return installed;
}
