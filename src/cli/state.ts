// PLACEHOLDER: the `state` command is being written; this file is replaced by its real implementation.
import type { Command } from 'commander';
import type { CliApp } from './app.js';
import { SpotfleetError } from '../core/errors.js';

export function register(program: Command, _app: CliApp): void {
  program
    .command('state')
    .description('(not available yet)')
    .allowUnknownOption()
    .action(() => {
      throw new SpotfleetError('NOT_AVAILABLE', '`spotfleet state` is not available in this build');
    });
}
