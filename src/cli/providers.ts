// `spotfleet providers [PATH] [--json]`: every provider instance of the fleet with its type,
// capabilities, description and a health check (one cheap call, with a timeout). Also home of the
// small helpers that `nodes` and `sim` share: opening the fleet's providers and closing them.
import type { Command } from 'commander';
import { ProviderError, SpotfleetError, UsageError, errorMessage } from '../core/errors.js';
import { JSON_FORMAT_VERSION, jsonDocument } from '../core/json.js';
import { parseDuration } from '../core/units.js';
import { BUILTIN_PROVIDERS, loadProviderFactory } from '../providers/registry.js';
import { providerDocMarkdown } from '../providers/docs.js';
import { capabilitiesOf, type CapabilityName, type Provider } from '../providers/sdk.js';
import { openFleet, type FleetProviders } from '../engine/session.js';
import type { ProviderInstanceSpec } from '../spec/types.js';
import { specPathArg, stateDirOf, type CliApp } from './app.js';
import { printSpecWarnings } from './common.js';
import { formatTable, paint } from '../core/text.js';
import { cmp } from './util.js';
import { withTimeout } from '../engine/refresh.js';
import { registerProvidersLock } from './providers-lock.js';

/** Version of the `--json` output of providers/nodes/sim: the one JSON contract version (docs/json.md). */
export const PROVIDERS_JSON_FORMAT = JSON_FORMAT_VERSION;

/** Options every provider-facing command takes. */
export interface ProviderCommandOptions {
  state?: string;
  timeout?: string;
  json?: boolean;
}

export function addProviderOptions(cmd: Command): Command {
  return cmd
    .option('--state <dir>', 'state folder (default: .spotfleet next to the spec)')
    .option('--timeout <duration>', 'time limit for each provider call', '15s')
    .option('--json', 'print JSON instead of a table');
}

export function timeoutMs(opts: ProviderCommandOptions): number {
  const ms = parseDuration(opts.timeout ?? '15s');
  if (ms === undefined || ms <= 0) throw new UsageError(`--timeout: "${opts.timeout}" is not a duration`, ['Expected a duration such as 5s or 1m.']);
  return ms;
}

/**
 * Opens the fleet's providers for a command that talks to them (no state store). A provider that
 * cannot be created stays out of `providers`, its error in `failed`: the caller decides whether
 * that fails the command.
 */
export async function openFleetProviders(app: CliApp, path: string | undefined, opts: ProviderCommandOptions): Promise<FleetProviders> {
  const spec = specPathArg(path);
  const opened = await openFleet(spec, { stateDir: stateDirOf(spec, opts.state), withoutStore: true, providerErrors: 'keep' });
  printSpecWarnings(app, opened.warnings);
  return opened;
}

/** The fleet's provider instances, by name: the order these commands list and ask them in. */
export function sortedSpecs(opened: FleetProviders): ProviderInstanceSpec[] {
  return [...opened.fleet.providers].sort((a, b) => cmp(a.name, b.name));
}

/** The provider instance `name` of an opened fleet, or a ProviderError naming why it did not start. */
export function created(opened: FleetProviders, name: string): Provider {
  const p = opened.providers.get(name);
  if (!p) throw new ProviderError(name, opened.failed.get(name) ?? 'not available');
  return p;
}

/** `provider "x": message`, without saying the name twice. */
export function named(provider: string, message: string): string {
  return message.startsWith(`provider "${provider}"`) ? message : `provider "${provider}": ${message}`;
}

interface Health {
  ok: boolean;
  detail?: string;
  error?: string;
}

/** One cheap call per provider: market prices, else the node list, else the workload list. */
async function checkHealth(p: Provider, ms: number): Promise<Health> {
  try {
    if (p.capacity) {
      const quotes = await withTimeout(p.name, 'prices', ms, p.capacity.prices({}));
      const at = quotes[0]?.at;
      return { ok: true, detail: `${quotes.length} price${quotes.length === 1 ? '' : 's'}${at ? ` at ${at}` : ''}` };
    }
    if (p.nodes) {
      const nodes = await withTimeout(p.name, 'nodes.list', ms, p.nodes.list());
      return { ok: true, detail: `${nodes.length} node${nodes.length === 1 ? '' : 's'}` };
    }
    if (p.runtime) {
      const w = await withTimeout(p.name, 'runtime.list', ms, p.runtime.list());
      return { ok: true, detail: `${w.length} workload${w.length === 1 ? '' : 's'}` };
    }
    return { ok: true, detail: 'created (no cheap check for its capabilities)' };
  } catch (e) {
    return { ok: false, error: errorMessage(e) };
  }
}

interface ProviderRow {
  name: string;
  type: string;
  package: string | null;
  capabilities: CapabilityName[];
  description: string;
  health: Health;
}

export function register(program: Command, app: CliApp): void {
  const providers = program.command('providers');
  providers
    .command('schema')
    .description("document a provider type's config keys (from its config schema); --json prints the schema")
    .argument('<type>', `provider type: ${BUILTIN_PROVIDERS.join(', ')}, or an external one with --package`)
    .option('--package <name>', 'npm package of an external provider (resolved from the current folder)')
    .option('--json', 'print {format_version, type, description, config_schema} as JSON')
    .action(async (type: string, opts: { package?: string; json?: boolean }) => {
      const factory = await loadProviderFactory(type, opts.package, process.cwd());
      // `providers --json` is also an option of the parent command, which commander may give it.
      if (opts.json || providers.opts<{ json?: boolean }>().json) app.io.stdout.write(jsonDocument({ type: factory.type, description: factory.description, config_schema: factory.configSchema }));
      else app.io.stdout.write(providerDocMarkdown(factory));
    });
  registerProvidersLock(providers, app);
  addProviderOptions(
    providers
      .description("List the fleet's provider instances: type, capabilities, description, and a health check.")
      .argument('[path]', 'fleet file, or a folder of *.yaml files', '.'),
  ).action(async (path: string, opts: ProviderCommandOptions) => {
    const ms = timeoutMs(opts);
    const opened = await openFleetProviders(app, path, opts);
    try {
      const rows: ProviderRow[] = await Promise.all(
        sortedSpecs(opened).map(async (s): Promise<ProviderRow> => {
          let description = '';
          try {
            description = (await loadProviderFactory(s.type, s.package, opened.fleet.dir)).description;
          } catch {
            description = '';
          }
          const base = { name: s.name, type: s.type, package: s.package ?? null, description };
          const p = opened.providers.get(s.name);
          if (!p) return { ...base, capabilities: [], health: { ok: false, error: opened.failed.get(s.name) ?? 'not available' } };
          return { ...base, capabilities: capabilitiesOf(p), health: await checkHealth(p, ms) };
        }),
      );
      const { io } = app;
      if (opts.json) {
        io.out(JSON.stringify({ format_version: PROVIDERS_JSON_FORMAT, fleet: opened.fleet.name, providers: rows }, null, 2));
      } else {
        io.out(
          formatTable([
            ['PROVIDER', 'TYPE', 'CAPABILITIES', 'HEALTH', 'DESCRIPTION'],
            ...rows.map((r) => [
              r.name,
              r.package ? `${r.type} (${r.package})` : r.type,
              r.capabilities.join(',') || '-',
              r.health.ok ? paint(io, 'green', `ok: ${r.health.detail ?? ''}`) : paint(io, 'red', 'failed'),
              r.description,
            ]),
          ]).join('\n'),
        );
        for (const r of rows.filter((x) => !x.health.ok)) io.out(`\n${r.name}: ${r.health.error ?? ''}`);
      }
      const bad = rows.filter((r) => !r.health.ok);
      if (bad.length === 1) throw new SpotfleetError('PROVIDER_FAILED', named(bad[0]!.name, bad[0]!.health.error ?? 'health check failed'));
      if (bad.length > 1) throw new SpotfleetError('PROVIDER_FAILED', `${bad.length} providers failed their health check: ${bad.map((b) => b.name).join(', ')}`, bad.map((b) => `${b.name}: ${b.health.error ?? ''}`));
    } finally {
      await opened.close();
    }
  });
}
