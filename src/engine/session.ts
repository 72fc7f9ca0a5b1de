// Opens a fleet for a command: loads and validates the spec, creates its provider instances and
// its state store. Every command that talks to providers goes through here, and closes it.
import { loadFleet } from '../spec/load.js';
import type { Fleet, ProviderInstanceSpec } from '../spec/types.js';
import type { PolicySet } from '../policy/policy-set.js';
import { SpecError, SpotfleetError, type SpecProblem } from '../core/errors.js';
import { createProvider, silentLogger } from '../providers/registry.js';
import type { Provider, ProviderLogger } from '../providers/sdk.js';
import { chooseBackend, openStateStore, type BackendOverride } from '../state/backend.js';
import type { StateStore } from '../state/store.js';

export interface FleetSession {
  fleet: Fleet;
  warnings: SpecProblem[];
  /** The fleet's compiled policy set (loadFleet compiled it once); undefined when it has none. */
  policies: PolicySet | undefined;
  providers: Map<string, Provider>;
  store: StateStore;
  stateDir: string;
  /** Providers with a capacity capability (markets). */
  marketProviders: Set<string>;
  /** Providers with a runtime capability. */
  runtimeProviders: Set<string>;
  /** Marketplaces that take bids (capacity with offers). */
  bidProviders: Set<string>;
  close(): Promise<void>;
}

/** Which providers play which part in planning: markets, runtimes, marketplaces that take bids. */
export function providerRoles(providers: ReadonlyMap<string, Provider>): { marketProviders: Set<string>; runtimeProviders: Set<string>; bidProviders: Set<string> } {
  const names = (pred: (p: Provider) => unknown): Set<string> => new Set([...providers].filter(([, p]) => pred(p)).map(([n]) => n));
  return { marketProviders: names((p) => p.capacity), runtimeProviders: names((p) => p.runtime), bidProviders: names((p) => p.capacity?.offers) };
}

export interface OpenFleetOptions {
  stateDir: string;
  log?: ProviderLogger;
  now?: () => number;
  /** Skip creating providers (state-only commands). */
  withoutProviders?: boolean;
  /** The CLI's --backend/--backend-url, over the spec's `backend:`. */
  backend?: BackendOverride;
}

/**
 * A provider that cannot even be created failed on its config (a trace or key file that is not
 * there, a folder it cannot make): point at that config in the fleet file, as validate would.
 */
function locateProviderFailure(spec: ProviderInstanceSpec, e: unknown): unknown {
  if (!(e instanceof SpotfleetError) || e instanceof SpecError) return e;
  const message = e.message.startsWith(`provider "${spec.name}"`) ? e.message : `provider "${spec.name}" (${spec.type}) cannot start: ${e.message}`;
  return new SpecError([{ ...spec.configPos, severity: 'error', message, expected: e.details[0] ?? 'a config the provider can start with', rule: 'provider-config' }]);
}

export async function openFleet(specPath: string, opts: OpenFleetOptions): Promise<FleetSession> {
  const { fleet, warnings, policies } = await loadFleet(specPath);
  const providers = new Map<string, Provider>();
  // The store first: a backend that cannot be reached fails the command before providers start.
  const store = await openStateStore(chooseBackend(fleet, opts.backend), { stateDir: opts.stateDir, fleet: fleet.name });
  const close = async (): Promise<void> => {
    await Promise.allSettled([...[...providers.values()].map((p) => p.close?.()), store.close?.()]);
  };
  if (!opts.withoutProviders) {
    try {
      const created = await Promise.all(
        fleet.providers.map(async (spec) => [spec.name, await createProvider(spec, { fleet: fleet.name, specDir: fleet.dir, stateDir: opts.stateDir, log: opts.log ?? silentLogger, pools: fleet.pools, ...(opts.now ? { now: opts.now } : {}) }).catch((e: unknown) => { throw locateProviderFailure(spec, e); })] as const),
      );
      for (const [name, p] of created) providers.set(name, p);
    } catch (e) {
      await close();
      throw e;
    }
  }
  return { fleet, warnings, policies, providers, store, stateDir: opts.stateDir, ...providerRoles(providers), close };
}
