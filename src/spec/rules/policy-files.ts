// Rule: `policies:` paths are relative to the spec folder; they must exist (a local check, still
// offline) and lie inside the fleet's repository, unless the operator allows others: a spec from a
// pull request must not make plan read /etc/shadow or another tenant's files.
import { existsSync, realpathSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve as resolvePath } from 'node:path';
import { positionOf } from '../source.js';
import type { ResolveContext } from './context.js';

export function checkPolicyFiles(ctx: ResolveContext): void {
  const { input, err } = ctx;
  const root = policyRoot(input.dir);
  for (const p of ctx.policyItems) {
    const abs = isAbsolute(p.value) ? p.value : resolvePath(input.dir, p.value);
    if (!existsSync(abs)) err(positionOf(p.src, p.ptr), `policy file not found: ${p.value}`, 'an existing policy file (relative paths start at the spec folder)', 'policy-file', p.ptr);
    else if (!input.allowExternalPolicies && !isInside(root.dir, realPath(abs))) {
      err(positionOf(p.src, p.ptr), `policy file ${p.value} is outside the fleet's ${root.git ? 'repository' : 'folder'} (${root.dir})`, `a policy file inside ${root.dir}; an operator can allow others with --allow-external-policies`, 'policy-file', p.ptr);
    }
    ctx.out.policies.push(abs);
  }
}

/** The fleet's repository: the git work tree the spec folder is in, else the spec folder itself. */
export function policyRoot(specDir: string): { dir: string; git: boolean } {
  const start = realPath(specDir);
  for (let d = start; ; d = dirname(d)) {
    if (existsSync(join(d, '.git'))) return { dir: d, git: true };
    if (dirname(d) === d) return { dir: start, git: false };
  }
}

function realPath(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return resolvePath(p);
  }
}

/** True when `p` is `dir` or below it (both absolute, symlinks resolved). */
function isInside(dir: string, p: string): boolean {
  const rel = relative(dir, p);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}
