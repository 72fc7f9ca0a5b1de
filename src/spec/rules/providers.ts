// Rule: the provider instances, each with where it and its `config` stand (for the providers' own
// config checks, which load.ts runs after the rules).
import type { ProviderInstanceSpec } from '../types.js';
import { isObj, str, type ResolveContext } from './context.js';

export function resolveProviders(ctx: ResolveContext): void {
  for (const [name, l] of ctx.providerItems) {
    const p: ProviderInstanceSpec = {
      name,
      type: str(l.v.type) ?? '',
      config: isObj(l.v.config) ? l.v.config : {},
      pos: ctx.at(l, '', 'key'),
      configPos: isObj(l.v.config) ? ctx.at(l, '/config') : ctx.at(l, '', 'key'),
    };
    const pkg = str(l.v.package);
    if (pkg !== undefined) p.package = pkg;
    ctx.out.providers.push(p);
  }
}
