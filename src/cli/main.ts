#!/usr/bin/env node
// The CLI entry point. The only place that prints errors and chooses exit codes:
// 0 ok, 1 error (invalid spec, provider failure...), 2 changes present (--detailed-exitcode),
// 3 `fmt --check` found files to reformat, 130 interrupted. A stack trace only for an internal
// error or with --debug.
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { SpecError, SpotfleetError, formatProblem } from '../core/errors.js';
import { safeTerminalText } from '../core/text.js';
import type { CliApp, RegisterCommand } from './app.js';
import { makeIo, paint } from './io.js';
import { ExitCode } from './exit.js';

const COMMANDS: readonly string[] = [
  'validate', 'fmt', 'providers', 'nodes', 'sim',
  'plan', 'apply', 'destroy', 'state', 'status', 'import', 'force-unlock',
  'watch', 'drill', 'explain', 'savings', 'report', 'backtest',
];

/**
 * Loads the command modules: only the one being run when the first argument names a command
 * (each module pulls in its own dependencies; loading all of them costs a third of a second on
 * every call), and all of them for help, a misspelt command, or no command.
 */
async function loadCommands(program: Command, app: CliApp, argv: readonly string[]): Promise<void> {
  const first = argv.find((a) => !a.startsWith('-'));
  const wanted = first !== undefined && COMMANDS.includes(first) && !argv.includes('--help') && !argv.includes('-h') ? [first] : COMMANDS;
  for (const name of wanted) {
    const mod = (await import(`./${name}.js`)) as { register: RegisterCommand };
    mod.register(program, app);
  }
}

/**
 * Accepts Terraform's single-dash long flags (`-out=plan`, `-detailed-exitcode`, `-auto-approve`)
 * by rewriting them to `--out=plan` etc., so muscle memory works.
 */
export function normaliseArgs(argv: readonly string[]): string[] {
  return argv.map((a) => (/^-[a-z][a-z-]+(=.*)?$/s.test(a) ? `-${a}` : a));
}

export async function main(rawArgv: readonly string[]): Promise<number> {
  const argv = normaliseArgs(rawArgv);
  const debug = argv.includes('--debug');
  // An operator's choice for every spec this process loads (watch reloads included).
  if (argv.includes('--allow-external-policies')) process.env.SPOTFLEET_ALLOW_EXTERNAL_POLICIES = '1';
  const io = makeIo({ noColor: argv.includes('--no-color') });
  const handlers = new Set<(s: NodeJS.Signals) => void>();
  let interrupts = 0;
  const app: CliApp = {
    io,
    debug,
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
    .option('--allow-external-policies', "accept policies: files outside the fleet's repository (SPOTFLEET_ALLOW_EXTERNAL_POLICIES=1)")
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
