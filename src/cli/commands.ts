// The command modules under src/cli/, by name, and how they are loaded into the program.
import type { Command } from 'commander';
import type { CliApp, RegisterCommand } from './app.js';

/** Every command, in the order `--help` lists them. */
export const COMMANDS: readonly string[] = [
  'init', 'validate', 'fmt', 'providers', 'nodes', 'sim',
  'plan', 'show', 'apply', 'destroy', 'state', 'status', 'import', 'force-unlock',
  'watch', 'drill', 'explain', 'savings', 'report', 'backtest', 'logs', 'rerun', 'version', 'completion',
];

/** Adds the named command modules to the program. */
export async function registerCommands(program: Command, app: CliApp, names: readonly string[]): Promise<void> {
  for (const name of names) {
    const mod = (await import(`./${name}.js`)) as { register: RegisterCommand };
    mod.register(program, app);
  }
}

/**
 * Loads the command modules: only the one being run when the first argument names a command
 * (each module pulls in its own dependencies; loading all of them costs a third of a second on
 * every call), and all of them for help, a misspelt command, or no command.
 */
export async function loadCommands(program: Command, app: CliApp, argv: readonly string[]): Promise<void> {
  const first = argv.find((a) => !a.startsWith('-'));
  const wanted = first !== undefined && COMMANDS.includes(first) && !argv.includes('--help') && !argv.includes('-h') ? [first] : COMMANDS;
  await registerCommands(program, app, wanted);
}
