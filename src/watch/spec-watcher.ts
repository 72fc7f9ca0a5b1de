// Watches what a fleet is made of and calls back, debounced, when it changes: the spec file (or the
// *.yaml / *.yml files at the top of a spec folder, the ones loadFleet reads) and the policy files
// the spec names. Nothing else: a fleet folder also holds runtime, checkpoint and state folders that
// are written all the time, and neither their files nor their inotify watches are the spec's
// business. A trigger only: the controller re-reads and re-validates the whole spec itself. Files
// are watched through their folder (one level, no recursion), because editors that save atomically
// (write a temporary file, rename it over the original) replace the file's inode, which a watch on
// the file itself loses.
import { existsSync, statSync } from 'node:fs';
import { basename, dirname, extname, resolve } from 'node:path';
import { watch, type FSWatcher } from 'chokidar';

export interface SpecChange {
  /** Absolute paths that changed (added, changed, removed) since the last callback, sorted. */
  paths: string[];
}

export interface SpecWatcherOptions {
  /** Called once a burst of changes has been quiet for `debounceMs`. */
  onChange: (change: SpecChange) => void;
  /** Watcher errors (permissions, too many watches); watching goes on where it can. */
  onError?: (err: unknown) => void;
  /** Quiet time before the callback. Default 300 ms. */
  debounceMs?: number;
  /** Poll the file system instead of using inotify (network file systems). Default false. */
  usePolling?: boolean;
}

export interface SpecWatcher {
  /** The absolute paths being watched (files and folders, as given). */
  readonly targets: readonly string[];
  /**
   * Watches these paths instead (the spec's policy files change with the spec): same rules as
   * watchSpec; resolves once new folders are watched.
   */
  update(paths: readonly string[]): Promise<void>;
  close(): Promise<void>;
}

const SPEC_EXT = new Set(['.yaml', '.yml']);

/** Top-level spec files of a folder, as loadFleet lists them: *.yaml / *.yml, not hidden. */
function isFolderSpecFile(p: string): boolean {
  return SPEC_EXT.has(extname(p).toLowerCase()) && !basename(p).startsWith('.');
}

/**
 * Starts watching and resolves once the initial scan is done (changes after that are reported).
 * Each path is a spec or policy file (its folder is watched, only that file counts) or a spec folder
 * (only its top-level *.yaml / *.yml files count, as loadFleet reads them; subfolders are not
 * watched). A file that does not exist yet is reported when it appears.
 * @example
 * const w = await watchSpec('fleet.yaml', { onChange: () => queue.add('fleet') });
 * await w.update(['fleet.yaml', ...fleet.policies]);
 * await w.close();
 */
export async function watchSpec(paths: string | readonly string[], opts: SpecWatcherOptions): Promise<SpecWatcher> {
  let targets: string[] = [];
  let dirs = new Set<string>();
  let files = new Set<string>();
  let roots = new Set<string>();
  const plan = (ps: string | readonly string[]): { targets: string[]; dirs: Set<string>; files: Set<string>; roots: Set<string> } => {
    const t = [...new Set((typeof ps === 'string' ? [ps] : ps).map((p) => resolve(p)))].sort();
    const d = new Set<string>();
    const f = new Set<string>();
    for (const x of t) {
      if (existsSync(x) && statSync(x).isDirectory()) d.add(x);
      else f.add(x);
    }
    return { targets: t, dirs: d, files: f, roots: new Set([...d, ...[...f].map((x) => dirname(x))]) };
  };
  ({ targets, dirs, files, roots } = plan(paths));

  /** A change that should trigger a reconcile. */
  const relevant = (p: string): boolean => files.has(p) || (dirs.has(dirname(p)) && isFolderSpecFile(p));
  /** Not worth a watch at all: everything below a watched folder but the files that count. */
  const ignored = (p: string): boolean => !(roots.has(p) || relevant(resolve(p)));

  const debounceMs = opts.debounceMs ?? 300;
  let pending = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const fire = (): void => {
    timer = undefined;
    if (closed || pending.size === 0) return;
    const changed = [...pending].sort();
    pending = new Set();
    try {
      opts.onChange({ paths: changed });
    } catch (err) {
      opts.onError?.(err);
    }
  };
  const touch = (p: string): void => {
    const abs = resolve(p);
    if (closed || !relevant(abs)) return;
    pending.add(abs);
    if (timer) clearTimeout(timer);
    timer = setTimeout(fire, debounceMs);
  };

  const startWatcher = async (rootList: string[]): Promise<FSWatcher> => {
    const w: FSWatcher = watch(rootList, {
      ignoreInitial: true,
      ignored,
      // One level: the folders' own entries, never their subfolders.
      depth: 0,
      persistent: true,
      // Folds an unlink followed quickly by an add (atomic save) into one change.
      atomic: true,
      usePolling: opts.usePolling ?? false,
      interval: 200,
    });
    w.on('add', (p) => touch(p));
    w.on('change', (p) => touch(p));
    w.on('unlink', (p) => touch(p));
    w.on('error', (err) => opts.onError?.(err));
    await new Promise<void>((r) => w.once('ready', () => r()));
    return w;
  };
  let watcher = await startWatcher([...roots]);

  return {
    get targets() {
      return targets;
    },
    async update(next) {
      if (closed) return;
      const was = roots;
      ({ targets, dirs, files, roots } = plan(next));
      if (was.size === roots.size && [...roots].every((r) => was.has(r))) return;
      // Other folders: the new watcher is ready before the old one goes, so no edit falls between.
      const old = watcher;
      watcher = await startWatcher([...roots]);
      await old.close();
      if (closed) await watcher.close();
    },
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      await watcher.close();
    },
  };
}
