// `spotfleet providers [PATH] [--json]`: every provider instance of the fleet with its type,
// capabilities, description and a health check (one cheap call, with a timeout). Also home of the
// small helpers that `nodes` and `sim` share: opening the fleet's providers and closing them.
import type { Command } from 'commander';
import { ProviderError, SpotfleetError, UsageError, errorMessage } from '../core/errors.js';
import { JSON_FORMAT_VERSION, jsonDocument } from '../core/json.js';
import { parseDuration } from '../core/units.js';
import { BUILTIN_PROVIDERS, createProvider, loadProviderFactory, silentLogger } from '../providers/registry.js';
import { providerDocMarkdown } from '../providers/docs.js';
import { capabilitiesOf, type CapabilityName, type Provider } from '../providers/sdk.js';
import { loadFleet } from '../spec/load.js';
import type { Fleet, ProviderInstanceSpec } from '../spec/types.js';
import { specPathArg, stateDirOf, type CliApp } from './app.js';
import { formatTable, paint } from '../core/text.js';
import { cmp } from './util.js';
import { withTimeout } from '../engine/refresh.js';
import { registerProvidersLock } from './providers-lock.js';

/** Version of the `--json` output of providers/nodes/sim: the one JSON contract version (docs/json.md). */
export const PROVIDERS_JSON_FORMAT = JSON_FORMAT_VERSION;

export interface OpenedProvider {
  spec: ProviderInstanceSpec;
  provider?: Provider;
  /** Why it could not be created. */
  error?: string;
}

export interface OpenedFleet {
  fleet: Fleet;
  providers: OpenedProvider[];
  close(): Promise<void>;
}

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
 * Loads the fleet and creates every provider instance (sorted by name). A provider that cannot be
 * created is returned with its error, so the caller decides whether that fails the command.
 */
export async function openFleetProviders(app: CliApp, path: string | undefined, opts: ProviderCommandOptions): Promise<OpenedFleet> {
  const spec = specPathArg(path);
  const { fleet, warnings } = await loadFleet(spec);
  for (const w of warnings) app.io.err(`${w.file}:${w.line}:${w.col}: warning: ${w.message}`);
  const stateDir = stateDirOf(spec, opts.state);
  const specs = [...fleet.providers].sort((a, b) => cmp(a.name, b.name));
  const providers = await Promise.all(
    specs.map(async (s): Promise<OpenedProvider> => {
      try {
        return { spec: s, provider: await createProvider(s, { fleet: fleet.name, specDir: fleet.dir, stateDir, log: silentLogger, pools: fleet.pools }) };
      } catch (e) {
        return { spec: s, error: errorMessage(e) };
      }
    }),
  );
  return {
    fleet,
    providers,
    close: async () => {
      await Promise.all(providers.map(async (p) => p.provider?.close?.().catch(() => undefined)));
    },
  };
}

/** A provider that was created, or a ProviderError naming why not. */
export function created(p: OpenedProvider): Provider {
  if (!p.provider) throw new ProviderError(p.spec.name, p.error ?? 'not available');
  return p.provider;
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
        opened.providers.map(async (o): Promise<ProviderRow> => {
          let description = '';
          try {
            description = (await loadProviderFactory(o.spec.type, o.spec.package, opened.fleet.dir)).description;
          } catch {
            description = '';
          }
          const base = { name: o.spec.name, type: o.spec.type, package: o.spec.package ?? null, description };
          if (!o.provider) return { ...base, capabilities: [], health: { ok: false, error: o.error ?? 'not available' } };
          return { ...base, capabilities: capabilitiesOf(o.provider), health: await checkHealth(o.provider, ms) };
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
