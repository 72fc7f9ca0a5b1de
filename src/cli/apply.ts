// PLACEHOLDER: the `apply` command is being written; this file is replaced by its real implementation.
import type { Command } from 'commander';
import type { CliApp } from './app.js';
import { SpotfleetError } from '../core/errors.js';

export function register(program: Command, _app: CliApp): void {
  program
    .command('apply')
    .description('(not available yet)')
    .allowUnknownOption()
    .action(() => {
      throw new SpotfleetError('NOT_AVAILABLE', '`spotfleet apply` is not available in this build');
    });
}
