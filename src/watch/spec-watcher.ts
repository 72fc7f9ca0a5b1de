// Watches the fleet spec (a file, or a folder of *.yaml files) and calls back, debounced, when it
// changes. A trigger only: the controller re-reads and re-validates the whole spec itself. Files
// are watched through their folder, because editors that save atomically (write a temporary file,
// rename it over the original) replace the file's inode, which a watch on the file itself loses.
import { existsSync, statSync } from 'node:fs';
import { dirname, extname, relative, resolve, sep } from 'node:path';
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
  close(): Promise<void>;
}

const SPEC_EXT = new Set(['.yaml', '.yml']);

/**
 * Starts watching and resolves once the initial scan is done (changes after that are reported).
 * Each path is a spec file (its folder is watched, only that file counts) or a folder (watched
 * recursively for *.yaml / *.yml, skipping hidden folders such as `.spotfleet` and `.git`, and
 * `node_modules`). A file that does not exist yet is reported when it appears.
 * @example
 * const w = await watchSpec(['fleet.yaml', 'policies'], { onChange: () => queue.add('fleet') });
 * // ...
 * await w.close();
 */
export async function watchSpec(paths: string | readonly string[], opts: SpecWatcherOptions): Promise<SpecWatcher> {
  const targets = [...new Set((typeof paths === 'string' ? [paths] : paths).map((p) => resolve(p)))].sort();
  const dirs: string[] = [];
  const files = new Set<string>();
  for (const t of targets) {
    if (existsSync(t) && statSync(t).isDirectory()) dirs.push(t);
    else files.add(t);
  }
  const fileParents = new Set([...files].map((f) => dirname(f)));
  const roots = [...new Set([...dirs, ...fileParents])].sort();

  const underDir = (p: string): string | undefined => dirs.find((d) => p === d || p.startsWith(d + sep));
  const hiddenBelow = (root: string, p: string): boolean =>
    relative(root, p)
      .split(sep)
      .some((seg) => (seg.startsWith('.') && seg !== '.' && seg !== '..') || seg === 'node_modules');

  /** Not worth an inotify watch at all: below a file's folder, or hidden parts of a spec folder. */
  const ignored = (p: string): boolean => {
    if (roots.includes(p) || files.has(p)) return false;
    const d = underDir(p);
    if (d) return hiddenBelow(d, p);
    return true;
  };
  /** A change that should trigger a reconcile. */
  const relevant = (p: string, isDir: boolean): boolean => {
    if (files.has(p)) return true;
    const d = underDir(p);
    if (!d || hiddenBelow(d, p)) return false;
    return isDir ? p !== d : SPEC_EXT.has(extname(p).toLowerCase());
  };

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
  const touch = (p: string, isDir = false): void => {
    const abs = resolve(p);
    if (closed || !relevant(abs, isDir)) return;
    pending.add(abs);
    if (timer) clearTimeout(timer);
    timer = setTimeout(fire, debounceMs);
  };

  const watcher: FSWatcher = watch(roots, {
    ignoreInitial: true,
    ignored,
    persistent: true,
    // Folds an unlink followed quickly by an add (atomic save) into one change.
    atomic: true,
    usePolling: opts.usePolling ?? false,
    interval: 200,
  });
  watcher.on('add', (p) => touch(p));
  watcher.on('change', (p) => touch(p));
  watcher.on('unlink', (p) => touch(p));
  watcher.on('addDir', (p) => touch(p, true));
  watcher.on('unlinkDir', (p) => touch(p, true));
  watcher.on('error', (err) => opts.onError?.(err));
  await new Promise<void>((r) => watcher.once('ready', () => r()));

  return {
    targets,
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      await watcher.close();
    },
  };
}
