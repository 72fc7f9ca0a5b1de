// `spotfleet version [--json]` (also `--version` and `-v`): the spotfleet version and the platform,
// as `terraform version` prints them.
import type { Command } from 'commander';
import { jsonDocument } from '../core/json.js';
import { spotfleetVersion } from '../core/version.js';
import type { CliApp } from './app.js';

/** `linux_amd64`, in Terraform's words. */
export function platformName(): string {
  const arch = process.arch === 'x64' ? 'amd64' : process.arch === 'ia32' ? '386' : process.arch;
  return `${process.platform}_${arch}`;
}

export function register(program: Command, app: CliApp): void {
  program
    .command('version')
    .description('print the spotfleet version')
    .option('--json', 'print as JSON')
    .action((opts: { json?: boolean }) => {
      if (opts.json) {
        app.io.stdout.write(jsonDocument({ spotfleet_version: spotfleetVersion(), platform: platformName(), node_version: process.version }));
        return;
      }
      app.io.out(`spotfleet v${spotfleetVersion()}\non ${platformName()} (node ${process.version})`);
    });
}
