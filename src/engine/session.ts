// Opens a fleet: loads and validates the spec (or takes one already loaded), creates its provider
// instances and opens its state store. The one way to open a fleet's providers: the commands
// (through cli/common.ts and cli/providers.ts) and the watch's sessions come here, and close it.
import { loadFleet } from '../spec/load.js';
import type { Fleet, ProviderInstanceSpec } from '../spec/types.js';
import type { PolicySet } from '../policy/policy-set.js';
import { SpecError, SpotfleetError, errorMessage, type SpecProblem } from '../core/errors.js';
import { createProvider, silentLogger } from '../providers/registry.js';
import type { Provider, ProviderLogger } from '../providers/sdk.js';
import { chooseBackend, openStateStore, type BackendOverride } from '../state/backend.js';
import type { StateStore } from '../state/store.js';

/** A fleet loadFleet has loaded (watch loads its own, to keep the last good spec). */
export interface LoadedFleet {
  fleet: Fleet;
  warnings: SpecProblem[];
  policies?: PolicySet | undefined;
}

/** A fleet with its providers open, without a state store (`withoutStore`). */
export interface FleetProviders {
  fleet: Fleet;
  warnings: SpecProblem[];
  /** The fleet's compiled policy set (loadFleet compiled it once); undefined when it has none. */
  policies: PolicySet | undefined;
  providers: Map<string, Provider>;
  /** Providers that failed to start, by instance name, with why: only with `providerErrors: 'keep'`. */
  failed: Map<string, string>;
  stateDir: string;
  /** Providers with a capacity capability (markets). */
  marketProviders: Set<string>;
  /** Providers with a runtime capability. */
  runtimeProviders: Set<string>;
  /** Marketplaces that take bids (capacity with offers). */
  bidProviders: Set<string>;
  /** Providers whose runtime can remove an exited instance (`runtime.remove`). */
  removableProviders: Set<string>;
  close(): Promise<void>;
}

/** A fleet with its providers and its state store open: what a command plans and applies with. */
export interface FleetSession extends FleetProviders {
  store: StateStore;
}

/** Which providers play which part in planning: markets, runtimes, marketplaces that take bids. */
export function providerRoles(providers: ReadonlyMap<string, Provider>): { marketProviders: Set<string>; runtimeProviders: Set<string>; bidProviders: Set<string>; removableProviders: Set<string> } {
  const names = (pred: (p: Provider) => boolean): Set<string> => new Set([...providers].filter(([, p]) => pred(p)).map(([n]) => n));
  return { marketProviders: names((p) => p.capacity !== undefined), runtimeProviders: names((p) => p.runtime !== undefined), bidProviders: names((p) => p.capacity?.offers !== undefined), removableProviders: names((p) => p.runtime?.remove !== undefined) };
}

export interface OpenFleetOptions {
  stateDir: string;
  /** Each provider instance's logger, by its name. Default: silent. */
  log?: (provider: string) => ProviderLogger;
  now?: () => number;
  /** Skip creating providers (state-only commands). */
  withoutProviders?: boolean;
  /** Skip opening the state store (commands that only talk to providers, and watch, which opens its own). */
  withoutStore?: boolean;
  /**
   * What a provider that fails to start does. Default 'spec': the open fails with a SpecError at
   * that provider's config in the fleet file, as validate would. 'throw': the open fails with the
   * provider's own error (watch: a ProviderError is retried, a SpecError waits for a new spec).
   * 'keep': the fleet opens without it and `failed` says why (`providers` reports it as unhealthy).
   */
  providerErrors?: 'spec' | 'throw' | 'keep';
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

/**
 * Opens the fleet at `spec` (a path, or what loadFleet returned for it): its providers, created
 * concurrently, and its state store. The store opens first, so a backend that cannot be reached
 * fails before any provider starts. Whatever opened is closed again when the open fails.
 * @example const s = await openFleet('fleet.yaml', { stateDir: '.spotfleet' }); try { … } finally { await s.close(); }
 */
export async function openFleet(spec: string | LoadedFleet, opts: OpenFleetOptions & { withoutStore: true }): Promise<FleetProviders>;
export async function openFleet(spec: string | LoadedFleet, opts: OpenFleetOptions & { withoutStore?: false }): Promise<FleetSession>;
export async function openFleet(spec: string | LoadedFleet, opts: OpenFleetOptions): Promise<FleetProviders | FleetSession> {
  const { fleet, warnings, policies } = typeof spec === 'string' ? await loadFleet(spec) : spec;
  const providers = new Map<string, Provider>();
  const failed = new Map<string, string>();
  const store = opts.withoutStore ? undefined : await openStateStore(chooseBackend(fleet, opts.backend), { stateDir: opts.stateDir, fleet: fleet.name });
  const close = async (): Promise<void> => {
    await Promise.allSettled([...[...providers.values()].map(async (p) => p.close?.()), store?.close?.()]);
  };
  if (!opts.withoutProviders) {
    const onError = opts.providerErrors ?? 'spec';
    const started = await Promise.allSettled(
      fleet.providers.map(async (s) => {
        const log = opts.log?.(s.name) ?? silentLogger;
        return createProvider(s, { fleet: fleet.name, specDir: fleet.dir, stateDir: opts.stateDir, log, pools: fleet.pools, ...(opts.now ? { now: opts.now } : {}) });
      }),
    );
    // In the spec's order, whichever started first; every one that started is closed on failure.
    const errors: { spec: ProviderInstanceSpec; error: unknown }[] = [];
    started.forEach((r, i) => {
      const s = fleet.providers[i]!;
      if (r.status === 'fulfilled') providers.set(s.name, r.value);
      else errors.push({ spec: s, error: r.reason });
    });
    if (onError === 'keep') for (const e of errors) failed.set(e.spec.name, errorMessage(e.error));
    else if (errors[0]) {
      await close();
      throw onError === 'spec' ? locateProviderFailure(errors[0].spec, errors[0].error) : errors[0].error;
    }
  }
  const base: FleetProviders = { fleet, warnings, policies, providers, failed, stateDir: opts.stateDir, ...providerRoles(providers), close };
  return store ? { ...base, store } : base;
}
