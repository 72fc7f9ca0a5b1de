// Rule: alert sinks: a webhook has a url, a command sink a command, and a provider sink names a
// declared provider.
import type { AlertSinkSpec } from '../types.js';
import { argv, providerChoices, str, type ResolveContext } from './context.js';

export function resolveSinks(ctx: ResolveContext): void {
  const { at, err } = ctx;
  for (const l of ctx.lists.sinks) {
    const v = l.v;
    const name = str(v.name);
    const type = str(v.type);
    if (l.bad || name === undefined || type === undefined) continue;
    const s: AlertSinkSpec = { name, type: type as AlertSinkSpec['type'], pos: at(l) };
    if (typeof v.url === 'string') s.url = v.url;
    const cmd = argv(v.command);
    if (cmd) s.command = cmd;
    if (typeof v.provider === 'string') s.provider = v.provider;
    if (type === 'webhook' && s.url === undefined) err(at(l, '/type'), `sink "${name}" of type webhook has no url`, 'url: https://... (may reference ${VAR})', 'required', l.ptr);
    if (type === 'command' && s.command === undefined) err(at(l, '/type'), `sink "${name}" of type command has no command`, 'command: [argv...]', 'required', l.ptr);
    if (type === 'provider') {
      if (s.provider === undefined) err(at(l, '/type'), `sink "${name}" of type provider names no provider`, `provider: ${providerChoices(ctx)}`, 'required', l.ptr);
      else if (!ctx.providerItems.has(s.provider)) err(at(l, '/provider'), `sink "${name}" uses unknown provider "${s.provider}"`, providerChoices(ctx), 'unknown-reference', `${l.ptr}/provider`);
    }
    ctx.out.sinks.push(s);
  }
}
