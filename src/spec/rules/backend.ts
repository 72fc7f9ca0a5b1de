// Rule: the `backend:` block. A postgres URL is either one environment reference
// (`${SPOTFLEET_PG_URL}`) or a literal URL without a password (the password then comes from
// PGPASSWORD or ~/.pgpass, as libpq does it): a password in the spec would be committed to git.
// Messages never echo the URL.
import type { SourcePos } from '../../core/errors.js';
import type { BackendSpec } from '../types.js';
import type { ResolveContext } from './context.js';

/** `${NAME}`: the one form a secret-bearing value takes in a spec. */
export const ENV_REF = /^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$/;

export function resolveBackendBlock(ctx: ResolveContext): void {
  const loc = ctx.singles.get('backend');
  if (!loc || loc.bad) return;
  const b = resolveBackend(loc.v, (sub, which) => ctx.at(loc, sub, which), (sub, message, expected) => ctx.err(ctx.at(loc, sub), message, expected, 'backend', `/backend${sub}`));
  if (b) ctx.out.backend = b;
}

/** The backend block's fields; `err` reports a problem at a pointer inside it. */
function resolveBackend(
  v: Record<string, unknown>,
  pos: (sub: string, which?: 'key' | 'value') => SourcePos,
  err: (sub: string, message: string, expected: string) => void,
): BackendSpec | undefined {
  const type = v.type;
  if (type === 'local') {
    for (const k of ['url', 'schema'] as const) if (k in v) err(`/${k}`, `backend.${k} is only for the postgres backend`, 'no url or schema with type: local');
    return { type: 'local', pos: pos('') };
  }
  if (type !== 'postgres') return undefined;
  const url = typeof v.url === 'string' ? v.url.trim() : undefined;
  if (url === undefined) {
    err('', 'the postgres backend needs a url', 'url: ${SPOTFLEET_PG_URL} (an environment variable that holds the connection URL)');
    return undefined;
  }
  if (!ENV_REF.test(url)) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(url);
    } catch {
      parsed = undefined;
    }
    if (!parsed || (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:')) {
      err('/url', 'backend.url is neither an environment reference nor a postgres:// URL', 'url: ${SPOTFLEET_PG_URL}, or postgres://USER@HOST:PORT/DB with the password in PGPASSWORD');
      return undefined;
    }
    if (parsed.password !== '' || parsed.searchParams.has('password')) {
      err('/url', 'backend.url holds a password, which would be committed with the spec', 'url: ${SPOTFLEET_PG_URL}, with the full URL in that environment variable');
      return undefined;
    }
  }
  const out: BackendSpec = { type: 'postgres', url, pos: pos(''), urlPos: pos('/url') };
  if (typeof v.schema === 'string') out.schema = v.schema;
  return out;
}
