// `spotfleet plan`: refresh, decide, diff, and show what apply would do and what it costs.
// -out saves the plan for apply; --detailed-exitcode gives 0 (no changes), 1 (error), 2 (changes).
import type { Command } from 'commander';
import { UsageError } from '../core/errors.js';
import { parseBool } from './util.js';
import { makePlan } from '../engine/make-plan.js';
import { savePlan } from '../engine/saved-plan.js';
import { renderPlanJson, renderPlanMarkdown, renderPlanText } from '../engine/render.js';
import { planHasChanges } from '../engine/types.js';
import { specPathArg, type CliApp } from './app.js';
import { addStateOptions, openSession, takeLock, type StateOptions } from './common.js';
import { ExitCode } from './exit.js';

interface PlanCliOptions extends StateOptions {
  out?: string;
  detailedExitcode?: boolean;
  target?: string[];
  refresh: string;
  json?: boolean;
  format?: string;
  destroy?: boolean;
}

export function register(program: Command, app: CliApp): void {
  const cmd = program
    .command('plan')
    .description('show what apply would change in the fleet, why, and what it costs')
    .argument('[path]', 'fleet file or folder', '.')
    .option('--out <file>', 'save the plan to a file for `spotfleet apply FILE`')
    .option('--detailed-exitcode', 'exit 0 when there are no changes, 2 when there are, 1 on error')
    .option('--target <address...>', 'plan only these addresses (not for routine use)')
    .option('--refresh <bool>', 'refresh from providers first (false: use the state as it is)', 'true')
    .option('--json', 'print the plan as JSON (same as --format json)')
    .option('--format <format>', 'text, json or markdown', 'text')
    .option('--destroy', 'plan to stop everything the fleet runs');
  addStateOptions(cmd).action(async (path: string, opts: PlanCliOptions) => {
    const format = opts.json ? 'json' : opts.format ?? 'text';
    if (!['text', 'json', 'markdown'].includes(format)) throw new UsageError(`--format: expected text, json or markdown, got "${format}"`);
    const session = await openSession(app, path, opts);
    const lock = await takeLock(session, 'plan', opts).catch(async (e: unknown) => {
      await session.close();
      throw e;
    });
    try {
      const state = await session.store.read();
      if (opts.target && opts.target.length > 0) {
        app.io.err('Warning: resource targeting is in effect. The plan may be incomplete; --target is for exceptional situations, not routine use.');
      }
      const { plan } = await makePlan(session, state, {
        now: Date.now(),
        refresh: parseBool('refresh', opts.refresh, true),
        ...(opts.target ? { targets: opts.target } : {}),
        ...(opts.destroy ? { destroy: true } : {}),
      });
      if (format === 'json') app.io.write(renderPlanJson(plan));
      else if (format === 'markdown') app.io.write(renderPlanMarkdown(plan));
      else app.io.write(renderPlanText(plan, { color: app.io.color }));
      if (opts.out) {
        savePlan(opts.out, plan, specPathArg(path));
        if (format === 'text') app.io.out(`\nSaved the plan to: ${opts.out}\nTo perform exactly these actions, run: spotfleet apply ${opts.out}`);
      }
      if (opts.detailedExitcode && planHasChanges(plan)) process.exitCode = ExitCode.Changes;
    } finally {
      await lock?.release();
      await session.close();
    }
  });
}
