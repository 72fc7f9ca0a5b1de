// `spotfleet fmt [PATH] [--check] [--diff]`: rewrites fleet files in canonical key order with
// 2-space indentation, keeping comments. `--check` lists files that would change and exits 3
// (like `terraform fmt -check`); `--diff` prints a unified diff; neither writes. A file that does
// not parse is never rewritten: the command fails with its problems and touches nothing.
import { renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { SpecError, type SpecProblem } from '../core/errors.js';
import { unifiedDiff } from '../spec/diff.js';
import { formatSpecSource } from '../spec/fmt.js';
import { displayPathFrom, listSpecFiles } from '../spec/load.js';
import { readSpecSource } from '../spec/source.js';
import type { CliApp } from './app.js';
import { ExitCode } from './exit.js';

/** Writes a file atomically: a temp file in the same folder, then rename over the original. */
function writeAtomic(path: string, text: string): void {
  const mode = statSync(path).mode & 0o7777;
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.fmt.tmp`);
  try {
    writeFileSync(tmp, text, { mode });
    renameSync(tmp, path);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      // nothing to clean up
    }
    throw e;
  }
}

export function register(program: Command, app: CliApp): void {
  program
    .command('fmt')
    .description('Rewrite fleet files in canonical key order and indentation, keeping comments.')
    .argument('[path]', 'fleet file, or a folder of *.yaml files', '.')
    .option('--check', 'write nothing; list files that would change and exit 3 if any')
    .option('--diff', 'write nothing; print a unified diff of the changes')
    .action((path: string, opts: { check?: boolean; diff?: boolean }) => {
      const { io } = app;
      const abs = resolve(path);
      const display = displayPathFrom(process.cwd());
      const listed = listSpecFiles(abs);
      if (listed.problem !== undefined) {
        throw new SpecError([{ file: display(abs), line: 1, col: 1, severity: 'error', message: listed.problem, expected: 'a fleet file (*.yaml) or a folder of them', rule: 'io' }]);
      }
      // Parse everything first: one unreadable file means nothing is rewritten.
      const problems: SpecProblem[] = [];
      const formatted: { abs: string; shown: string; before: string; after: string }[] = [];
      for (const file of listed.files) {
        const shown = display(file);
        const r = readSpecSource(file, shown);
        if (!r.source) {
          problems.push(...r.problems);
          continue;
        }
        const before = r.source.text;
        formatted.push({ abs: file, shown, before, after: formatSpecSource(r.source) });
      }
      if (problems.length > 0) throw new SpecError(problems);
      const changed = formatted.filter((f) => f.before !== f.after);
      for (const f of changed) {
        if (opts.diff) io.out(unifiedDiff(f.before, f.after, `${f.shown} (original)`, `${f.shown} (formatted)`).replace(/\n$/, ''));
        if (opts.check) {
          if (!opts.diff) io.out(f.shown);
        } else if (!opts.diff) {
          writeAtomic(f.abs, f.after);
          io.out(f.shown);
        }
      }
      if (opts.check && changed.length > 0) process.exitCode = ExitCode.FmtNeeded;
    });
}
