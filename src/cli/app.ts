// What every command gets: I/O, global flags, and the shared way to find the fleet and its state.
import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import type { Io } from './io.js';

export interface CliApp {
  io: Io;
  /** --debug: stack traces for every error, debug logs. */
  debug: boolean;
  /** False with `-input=false`: never prompt; a question that must be asked is an error instead. */
  input: boolean;
  /** Resolves when the process is asked to stop (first SIGINT/SIGTERM); commands may poll `app.interrupted`. */
  interrupted: boolean;
  /** Registers a handler for the first Ctrl-C / SIGTERM; returns an unregister function. */
  onInterrupt(handler: (signal: NodeJS.Signals) => void): () => void;
}

/** A module under src/cli/ that adds one command (or a group) to the program. */
export type RegisterCommand = (program: Command, app: CliApp) => void;

/** The spec path a command was given, defaulting to the current folder. */
export function specPathArg(path: string | undefined): string {
  return resolve(path ?? '.');
}

/** The folder that holds `.spotfleet/` for a spec path: the folder itself, or the file's folder. */
export function fleetDirOf(specPath: string): string {
  const abs = resolve(specPath);
  return existsSync(abs) && statSync(abs).isDirectory() ? abs : dirname(abs);
}

/** Default state folder for a spec path (`.spotfleet` next to the spec), overridable by `--state`. */
export function stateDirOf(specPath: string, override?: string): string {
  return override ? resolve(override) : join(fleetDirOf(specPath), '.spotfleet');
}
