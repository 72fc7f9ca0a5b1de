// Rule: alert rules notify declared sinks (or the built-in `log`); the position of each `when`
// expression is kept so a CEL error points inside it (load.ts compiles them after the rules).
import type { SourcePos } from '../../core/errors.js';
import { BUILTIN_SINKS } from '../defaults.js';
import type { SpecFile } from '../source.js';
import type { AlertRuleSpec, Severity } from '../types.js';
import { str, type ResolveContext } from './context.js';

export function resolveAlerts(ctx: ResolveContext): void {
  const { at, err, sinkByName } = ctx;
  const sinkChoices = (): string => `one of the sinks: ${[...new Set([...BUILTIN_SINKS, ...sinkByName.keys()])].sort().join(', ')}`;
  for (const l of ctx.lists.alerts) {
    const v = l.v;
    const name = str(v.name);
    const notify = Array.isArray(v.notify) ? v.notify : undefined;
    notify?.forEach((n, i) => {
      if (typeof n === 'string' && !sinkByName.has(n) && !(BUILTIN_SINKS as readonly string[]).includes(n)) {
        err(at(l, `/notify/${i}`), `alert "${name ?? '?'}" notifies unknown sink "${n}"`, sinkChoices(), 'unknown-reference', `${l.ptr}/notify/${i}`);
      }
    });
    if (l.bad || name === undefined) continue;
    const rule: AlertRuleSpec = {
      name,
      when: str(v.when) ?? '',
      severity: (str(v.severity) ?? 'warning') as Severity,
      notify: notify ? notify.filter((x): x is string => typeof x === 'string') : ['log'],
      pos: at(l),
    };
    if (typeof v.when === 'string') rule.whenPos = scalarStart(l.src, at(l, '/when'));
    ctx.out.alerts.push(rule);
  }
}

/** Where a one-line scalar's text starts: after its opening quote when it is quoted. */
function scalarStart(src: SpecFile, pos: SourcePos): SourcePos {
  // The parsers' line starts, not a walk from the top of the file for each alert.
  const start = (src.parser === 'fast' ? src.index.lines : src.lineCounter).lineStarts[pos.line - 1];
  if (start === undefined) return pos;
  const ch = src.text.charAt(start + pos.col - 1);
  return ch === '"' || ch === "'" ? { ...pos, col: pos.col + 1 } : pos;
}
