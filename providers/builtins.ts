// The built-in providers: each type a fleet may name without `package:`, mapped to the module that
// implements it. One line per provider, so `grep` finds where a type comes from; each module loads
// only when a fleet uses it (the cloud SDKs are heavy). The registry (src/providers/registry.ts)
// reads this map; an external provider is an npm package instead (see docs/providers.md).

/** Loads one built-in provider's module; the registry takes its `provider` export. */
export type BuiltinProviderLoader = () => Promise<{ provider: unknown }>;

/** Built-in provider type → its module, in the order `spotfleet providers` lists them. */
export const builtinProviders = {
  local: () => import('./local/index.js'),
  sim: () => import('./sim/index.js'),
  ssh: () => import('./ssh/index.js'),
  docker: () => import('./docker/index.js'),
  aws: () => import('./aws/index.js'),
  gcp: () => import('./gcp/index.js'),
  azure: () => import('./azure/index.js'),
  molt: () => import('./molt/index.js'),
  webhook: () => import('./webhook/index.js'),
} as const satisfies Record<string, BuiltinProviderLoader>;

export type BuiltinProviderType = keyof typeof builtinProviders;
