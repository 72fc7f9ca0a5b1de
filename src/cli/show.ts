// `spotfleet show [PLANFILE | PATH] [--json]`: a saved plan as `plan` printed it, or as the plan
// JSON contract (what `terraform show -json PLANFILE` is to Terraform); without a plan file, the
// state's resources as `state show` prints them, or as JSON.
import type { Command } from 'commander';
import { compareAddress } from '../core/address.js';
import { jsonDocument, toSnakeJson } from '../core/json.js';
import { spotfleetVersion } from '../core/version.js';
import { readSavedPlanIfAny } from '../engine/saved-plan.js';
import { addressParts, renderPlanJson, renderPlanText } from '../engine/render.js';
import type { CliApp } from './app.js';
import { addStateOptions, openSession, type StateOptions } from './common.js';
import { renderRecord, withIsoTimes } from './state-view.js';

export function register(program: Command, app: CliApp): void {
  const cmd = program
    .command('show')
    .description('show a saved plan (plan --out FILE), or the state, for people or as JSON')
    .argument('[plan-or-path]', 'a saved plan file, or the fleet file/folder whose state to show', '.')
    .option('--json', 'print as JSON (a plan in the plan JSON contract, see docs/json.md)');
  addStateOptions(cmd).action(async (arg: string, opts: StateOptions & { json?: boolean }) => {
    const saved = readSavedPlanIfAny(arg);
    if (saved) {
      const { plan } = saved;
      app.io.stdout.write(opts.json ? renderPlanJson(plan) : renderPlanText(plan, { color: app.io.color }));
      return;
    }
    const session = await openSession(app, arg, { ...opts, withoutProviders: true });
    try {
      const s = await session.store.read();
      const records = Object.values(s.resources).sort((a, b) => compareAddress(a.address, b.address));
      if (opts.json) {
        app.io.stdout.write(
          jsonDocument({
            spotfleet_version: spotfleetVersion(),
            fleet: session.fleet.name,
            state: { lineage: s.lineage, serial: s.serial },
            values: { resources: records.map((r) => ({ address: r.address, mode: 'managed', ...addressParts(r.address), values: toSnakeJson(withIsoTimes(r)) })) },
          }),
        );
        return;
      }
      if (records.length === 0) {
        app.io.out('The state is empty: nothing has been applied yet.');
        return;
      }
      app.io.stdout.write(records.map(renderRecord).join('\n'));
    } finally {
      await session.close();
    }
  });
}
