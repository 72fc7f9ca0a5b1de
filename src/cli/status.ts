// PLACEHOLDER: the `status` command is being written; this file is replaced by its real implementation.
import type { Command } from 'commander';
import type { CliApp } from './app.js';
import { SpotfleetError } from '../core/errors.js';

export function register(program: Command, _app: CliApp): void {
  program
    .command('status')
    .description('(not available yet)')
    .allowUnknownOption()
    .action(() => {
      throw new SpotfleetError('NOT_AVAILABLE', '`spotfleet status` is not available in this build');
    });
}
