// `spotfleet init [DIR]`: scaffolds a fleet that runs on this machine with nothing else installed:
// the `local` provider's virtual nodes (one on-demand, one billed as spot), a sample trainer that
// follows the checkpoint contract, and the editor modeline pointing at the schema that ships with
// this spotfleet. `spotfleet plan DIR` works on it at once. Existing files are never overwritten.
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { basename, join, relative, resolve, sep } from 'node:path';
import type { Command } from 'commander';
import { SpotfleetError, UsageError } from '../core/errors.js';
import { fleetSchemaPath, sampleTrainerPath } from '../spec/assets.js';
import type { CliApp } from './app.js';

/** A fleet name from a folder name: lowercase letters, digits and dashes. */
export function fleetNameFor(dir: string): string {
  const n = basename(resolve(dir)).toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '');
  return /^[a-z]/.test(n) ? n.slice(0, 40) : `fleet${n ? `-${n}` : ''}`.slice(0, 40);
}

/** The scaffolded fleet.yaml. `schemaRef` is the modeline's path to fleet.schema.json. */
export function scaffoldFleetYaml(name: string, schemaRef: string): string {
  return `# yaml-language-server: $schema=${schemaRef}
# A fleet made by \`spotfleet init\`. It runs on this machine: the \`local\` provider's nodes are
# folders under .spotfleet/, and workloads are real processes. Next:
#   spotfleet validate     check it offline
#   spotfleet plan         see what apply would do and what it costs
#   spotfleet apply        start it (spotfleet destroy stops it)
apiVersion: spotfleet.dev/v1
kind: Fleet
metadata:
  name: ${name}
providers:
  local:
    type: local
    config:
      nodes:
        - { name: od-1, gpuModel: V100, gpus: 4, capacity: on-demand, zone: local, pricePerHour: 12.24 }
        - { name: spot-1, gpuModel: V100, gpus: 4, capacity: spot, zone: local, pricePerHour: 3.67 }
pools:
  - { name: spot, provider: local, capacity: spot, gpuModel: V100, maxPricePerHour: 2.0 }
  - { name: on-demand, provider: local, capacity: on-demand, gpuModel: V100 }
defaults:
  checkpoint:
    path: /checkpoints
    signal: SIGUSR1
    stopGrace: 20s
    resumeEnv: RESUME_FROM_CHECKPOINT
workloads:
  - name: train
    command: ["node", "./trainer.mjs"]
    gpus: 1
    gpuModel: V100
    class: training
    capacity: auto
    expectedDuration: 8h
    fallback: { to: on-demand, revertToSpot: true, minDwell: 30m }
`;
}

export function register(program: Command, app: CliApp): void {
  program
    .command('init')
    .description('create a fleet in a folder that runs on this machine (fleet.yaml and a sample trainer)')
    .argument('[dir]', 'folder to create the fleet in', '.')
    .option('--name <name>', 'fleet name (default: from the folder name)')
    .action((dir: string, opts: { name?: string }) => {
      const root = resolve(dir);
      const name = opts.name ?? fleetNameFor(root);
      if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(name)) throw new UsageError(`--name: "${name}" is not a valid fleet name`, ['Expected lowercase letters, digits and dashes, starting and ending with a letter or digit.']);
      const fleetFile = join(root, 'fleet.yaml');
      const trainer = join(root, 'trainer.mjs');
      const taken = [fleetFile, trainer].filter((p) => existsSync(p));
      if (taken.length > 0) {
        throw new SpotfleetError('INIT_EXISTS', `${taken.map((p) => relative(process.cwd(), p) || p).join(' and ')} already exist${taken.length === 1 ? 's' : ''}; nothing was written`, ['spotfleet init never overwrites files: pick an empty folder, or move them away first.']);
      }
      mkdirSync(root, { recursive: true });
      let schemaRef = relative(root, fleetSchemaPath()).split(sep).join('/');
      if (!schemaRef.startsWith('.')) schemaRef = `./${schemaRef}`;
      writeFileSync(fleetFile, scaffoldFleetYaml(name, schemaRef));
      copyFileSync(sampleTrainerPath(), trainer);
      const shown = relative(process.cwd(), root) || '.';
      app.io.out(`Created fleet "${name}" in ${shown}:\n  fleet.yaml   one training workload, local nodes (on-demand and spot)\n  trainer.mjs  a sample trainer that follows the checkpoint contract\n\nNext: spotfleet validate ${shown} && spotfleet plan ${shown}`);
    });
}
