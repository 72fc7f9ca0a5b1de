// `spotfleet validate [PATH] [--json]`: loads the fleet offline (no provider calls) and prints
// every problem as `file:line:col: message (expected ...)`. Exit 0 when valid (warnings allowed),
// 1 when not. `--json` prints one machine-readable object for CI.
import type { Command } from 'commander';
import { SpecError, formatProblem, type SpecProblem } from '../core/errors.js';
import { JSON_FORMAT_VERSION } from '../core/json.js';
import { loadFleet } from '../spec/load.js';
import type { SkippedFile } from '../spec/types.js';
import type { CliApp } from './app.js';
import { ExitCode } from './exit.js';
import { paint } from '../core/text.js';

/** Version of the `--json` output: the one JSON contract version (docs/json.md). */
export const VALIDATE_JSON_FORMAT = JSON_FORMAT_VERSION;

interface JsonProblem {
  file: string;
  line: number;
  col: number;
  message: string;
  expected: string | null;
  path: string | null;
  rule: string | null;
}

function toJson(p: SpecProblem): JsonProblem {
  return { file: p.file, line: p.line, col: p.col, message: p.message, expected: p.expected ?? null, path: p.path ?? null, rule: p.rule ?? null };
}

export function register(program: Command, app: CliApp): void {
  program
    .command('validate')
    .description('Check a fleet spec offline: YAML, schema, references, provider configs. Exit 0 valid, 1 invalid.')
    .argument('[path]', 'fleet file, or a folder of *.yaml files', '.')
    .option('--json', 'print {format_version, valid, errors, warnings} as JSON')
    .action(async (path: string, opts: { json?: boolean }) => {
      const { io } = app;
      let warnings: SpecProblem[];
      let errors: SpecProblem[] = [];
      let name = '';
      let skipped: SkippedFile[] = [];
      try {
        // validate checks and prints; it has no use for the restart hashes plan computes.
        const r = await loadFleet(path, { specHashes: false });
        warnings = r.warnings;
        name = r.fleet.name;
        skipped = r.skipped;
      } catch (e) {
        if (!(e instanceof SpecError) || !opts.json) throw e;
        errors = e.problems.filter((p) => p.severity === 'error');
        warnings = e.problems.filter((p) => p.severity !== 'error');
      }
      if (opts.json) {
        io.out(JSON.stringify({ format_version: VALIDATE_JSON_FORMAT, valid: errors.length === 0, errors: errors.map(toJson), warnings: warnings.map(toJson), skipped }, null, 2));
        if (errors.length > 0) process.exitCode = ExitCode.Error;
        return;
      }
      for (const w of warnings) io.err(formatProblem(w));
      for (const f of skipped) io.out(`Skipped ${f.file}: ${f.reason}.`);
      const color = { color: io.color };
      const tail = warnings.length > 0 ? ` (${warnings.length} warning${warnings.length === 1 ? '' : 's'})` : '';
      io.out(paint(color, 'green', `The fleet "${name}" is valid${tail}.`));
    });
}
