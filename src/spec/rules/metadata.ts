// Rule: the fleet has a name (`metadata.name`, in one file of the fleet), and its labels.
import { str, strMap, type ResolveContext } from './context.js';

export function checkMetadata(ctx: ResolveContext): void {
  const meta = ctx.singles.get('metadata');
  if (!meta) {
    const first = ctx.input.sources[0];
    if (first) ctx.err({ file: first.file, line: 1, col: 1 }, 'the fleet has no metadata.name', 'metadata: { name: my-fleet } in one file of the fleet', 'required');
    return;
  }
  ctx.out.name = str(meta.v.name) ?? '';
  ctx.out.labels = strMap(meta.v.labels);
}
