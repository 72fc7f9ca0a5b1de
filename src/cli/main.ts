#!/usr/bin/env node
// The CLI entry point. The only place that prints errors and chooses exit codes:
// 0 ok, 1 error (invalid spec, provider failure...), 2 changes present (--detailed-exitcode),
// 3 `fmt --check` found files to reformat, 130 interrupted. A stack trace only for an internal
// error or with --debug.
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { SpecError, SpotfleetError, UsageError, formatProblem } from '../core/errors.js';
import { safeTerminalText } from '../core/text.js';
import { spotfleetVersion } from '../core/version.js';
import { platformName } from './version.js';
import type { CliApp } from './app.js';
import { loadCommands } from './commands.js';
import { makeIo } from './io.js';
import { paint } from '../core/text.js';
import { ExitCode } from './exit.js';

/**
 * Accepts Terraform's single-dash long flags (`-out=plan`, `-detailed-exitcode`, `-auto-approve`)
 * by rewriting them to `--out=plan` etc., so muscle memory works.
 */
export function normaliseArgs(argv: readonly string[]): string[] {
  return argv.map((a) => (/^-[a-z][a-z-]+(=.*)?$/s.test(a) ? `-${a}` : a));
}

/**
 * Takes Terraform's `-input=false` (and `-input=true`, `-input`) out of the arguments, wherever it
 * stands, as CI scripts pass it to every command. With input off, nothing ever prompts: a command
 * that would ask fails and says which flag skips the question.
 */
export function takeInputFlag(argv: readonly string[]): { argv: string[]; input: boolean } {
  let input = true;
  const rest: string[] = [];
  for (const a of argv) {
    const m = /^--input(?:=(.*))?$/.exec(a);
    if (!m) {
      rest.push(a);
      continue;
    }
    const v = (m[1] ?? 'true').toLowerCase();
    if (v === 'false' || v === '0') input = false;
    else if (v === 'true' || v === '1') input = true;
    else throw new UsageError(`-input: expected true or false, got "${m[1] ?? ''}"`);
  }
  return { argv: rest, input };
}

export async function main(rawArgv: readonly string[]): Promise<number> {
  const normalised = normaliseArgs(rawArgv);
  const debug = normalised.includes('--debug');
  // An operator's choice for every spec this process loads (watch reloads included).
  if (normalised.includes('--allow-external-policies')) process.env.SPOTFLEET_ALLOW_EXTERNAL_POLICIES = '1';
  const io = makeIo({ noColor: normalised.includes('--no-color') });
  let argv: string[];
  let input: boolean;
  try {
    ({ argv, input } = takeInputFlag(normalised));
  } catch (e) {
    return reportError(e, { io, debug, input: true, interrupted: false, onInterrupt: () => () => undefined });
  }
  const handlers = new Set<(s: NodeJS.Signals) => void>();
  let interrupts = 0;
  const app: CliApp = {
    io,
    debug,
    input,
    interrupted: false,
    onInterrupt(h) {
      handlers.add(h);
      return () => handlers.delete(h);
    },
  };
  const onSignal = (sig: NodeJS.Signals): void => {
    interrupts += 1;
    app.interrupted = true;
    if (interrupts > 1 || handlers.size === 0) {
      io.err(sig === 'SIGINT' && interrupts > 1 ? 'Two interrupts received. Exiting immediately; state may need `spotfleet apply` to converge.' : `Received ${sig}, exiting.`);
      process.exit(ExitCode.Interrupted);
    }
    for (const h of handlers) h(sig);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const program = new Command('spotfleet')
    .description('Run GPU workloads on the cheapest capacity that is safe for them.')
    .option('--debug', 'show debug logs and stack traces')
    .option('--no-color', 'disable colour (NO_COLOR is honoured too)')
    .option('--input <bool>', 'ask for input when needed (Terraform\'s -input=false: never ask)')
    .option('--allow-external-policies', "accept policies: files outside the fleet's repository (SPOTFLEET_ALLOW_EXTERNAL_POLICIES=1)")
    .version(`spotfleet v${spotfleetVersion()}\non ${platformName()} (node ${process.version})`, '-v, --version', 'print the spotfleet version')
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.write(s), writeErr: (s) => io.writeErr(s) });
  await loadCommands(program, app, argv);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : ExitCode.Ok;
  } catch (e) {
    return reportError(e, app);
  }
}

export function reportError(e: unknown, app: CliApp): number {
  const { io } = app;
  if (e instanceof CommanderError) {
    // commander has already printed its message (or help).
    return e.exitCode === 0 ? ExitCode.Ok : ExitCode.Error;
  }
  if (e instanceof SpecError) {
    for (const p of e.problems) io.err(formatProblem(p));
    const errors = e.problems.filter((p) => p.severity === 'error').length;
    io.err(paint({ color: io.color && Boolean(io.stderr.isTTY) }, 'red', `${errors} error${errors === 1 ? '' : 's'} found.`));
    return ExitCode.Error;
  }
  if (e instanceof SpotfleetError) {
    io.err(`${paint({ color: Boolean(io.stderr.isTTY) && io.color }, 'red', 'Error:')} ${e.message}`);
    for (const d of e.details) io.err(`  ${d}`);
    if (app.debug && e.stack) io.err(e.stack);
    return e.code === 'CANCELLED' ? ExitCode.Interrupted : ExitCode.Error;
  }
  io.err(`Internal error: ${e instanceof Error ? e.message : String(e)}`);
  io.err('This is a bug in spotfleet; please report it with the output of --debug.');
  if (e instanceof Error && e.stack) io.err(e.stack);
  return ExitCode.Error;
}

function isEntryPoint(): boolean {
  const arg = process.argv[1];
  if (!arg) return false;
  try {
    return realpathSync(arg) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}
const isEntry = isEntryPoint();
if (isEntry) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(safeTerminalText(`Internal error: ${String(e)}\n`));
      process.exitCode = 1;
    },
  );
}
