// Canonical formatting of fleet files: a fixed key order for the known mappings and 2-space
// indentation. Pairs are reordered inside the parsed yaml Document, so comments, quoting, flow
// style and number formats travel with their nodes; nothing is re-serialised from plain data.
import { YAMLMap, YAMLSeq, isCollection, isMap, isPair, isScalar, isSeq, visit, type Document } from 'yaml';
import { SpecError, SpotfleetError } from '../core/errors.js';
import { parseSpecText, type SpecSource } from './source.js';

/** Canonical key orders; unknown keys keep their relative order after the known ones. */
export const KEY_ORDER = {
  top: ['apiVersion', 'kind', 'metadata', 'providers', 'pools', 'defaults', 'workloads', 'alerts', 'sinks', 'policies', 'budgetPerHour'],
  metadata: ['name', 'labels'],
  provider: ['type', 'package', 'config'],
  pool: ['name', 'provider', 'capacity', 'gpuModel', 'maxPricePerHour', 'zones', 'warmStandby', 'idleRelease', 'onWarning', 'labels', 'node'],
  node: ['via', 'user', 'identityFile', 'port', 'runtime', 'address', 'readyTimeout', 'image', 'checkpointRoot', 'nvidiaRuntime', 'metadataUrl'],
  defaults: ['checkpoint', 'thresholds', 'fallback', 'overhead', 'passEnv'],
  workload: ['name', 'image', 'command', 'gpus', 'gpuModel', 'class', 'capacity', 'expectedDuration', 'deadline', 'pools', 'fallback', 'restartPolicy', 'backoffLimit', 'checkpoint', 'overhead', 'env', 'passEnv', 'labels', 'critical'],
  checkpoint: ['path', 'signal', 'stopGrace', 'resumeEnv', 'maxAge', 'marker', 'minSize', 'shared', 'sizeGB', 'verify', 'keep'],
  thresholds: ['minSavingsPerHour', 'minRuntime', 'spotPriceAlertRatio', 'maxPreemptions', 'preemptionWindow', 'cooldown'],
  fallback: ['to', 'revertToSpot', 'minDwell'],
  overhead: ['checkpoint', 'transfer', 'restart'],
  alert: ['name', 'when', 'severity', 'notify'],
  sink: ['name', 'type', 'url', 'command', 'provider'],
} as const;

function keyOf(item: unknown): string | undefined {
  return isPair(item) && isScalar(item.key) ? String(item.key.value) : undefined;
}

/** The key node when it can carry a comment (a scalar or collection node). */
function commentable(key: unknown): { commentBefore?: string | null } | undefined {
  return key !== null && typeof key === 'object' && 'range' in key ? (key as { commentBefore?: string | null }) : undefined;
}

/** Stable sort of a mapping's pairs by `order`; returns the value node of each pair by key. */
function sortMap(map: unknown, order: readonly string[]): void {
  if (!isMap(map)) return;
  const rank = new Map(order.map((k, i) => [k, i] as const));
  const ranked = map.items.map((item, i) => ({ item, i, r: rank.get(keyOf(item) ?? '\u0000') ?? order.length }));
  ranked.sort((a, b) => a.r - b.r || a.i - b.i);
  const changed = ranked.some((x, i) => x.i !== i);
  if (!changed) return;
  // The comment above the first pair belongs to the mapping's first line, not to whichever pair
  // used to come first; keep it at the top.
  const firstKey = commentable(map.items[0]?.key);
  const lead = firstKey?.commentBefore;
  if (firstKey && lead) firstKey.commentBefore = null;
  map.items = ranked.map((x) => x.item);
  const newFirst = commentable(map.items[0]?.key);
  if (lead && newFirst) newFirst.commentBefore = newFirst.commentBefore ? `${lead}\n${newFirst.commentBefore}` : lead;
}

function valueOf(map: unknown, key: string): unknown {
  if (!isMap(map)) return undefined;
  const pair = map.items.find((p) => keyOf(p) === key);
  return pair?.value ?? undefined;
}

function eachItem(seq: unknown, fn: (item: unknown) => void): void {
  if (isSeq(seq)) for (const it of seq.items) fn(it);
}

function sortWorkloadLike(map: unknown, order: readonly string[]): void {
  sortMap(map, order);
  sortMap(valueOf(map, 'fallback'), KEY_ORDER.fallback);
  sortMap(valueOf(map, 'checkpoint'), KEY_ORDER.checkpoint);
  sortMap(valueOf(map, 'overhead'), KEY_ORDER.overhead);
}

/** Reorders a parsed fleet Document in place. */
export function canonicaliseDocument(doc: Document): void {
  const top = doc.contents;
  if (!isMap(top)) return;
  sortMap(top, KEY_ORDER.top);
  sortMap(valueOf(top, 'metadata'), KEY_ORDER.metadata);
  const providers = valueOf(top, 'providers');
  if (isMap(providers)) for (const p of providers.items) if (isPair(p)) sortMap(p.value, KEY_ORDER.provider);
  eachItem(valueOf(top, 'pools'), (p) => {
    sortMap(p, KEY_ORDER.pool);
    sortMap(valueOf(p, 'node'), KEY_ORDER.node);
  });
  const defaults = valueOf(top, 'defaults');
  sortWorkloadLike(defaults, KEY_ORDER.defaults);
  sortMap(valueOf(defaults, 'thresholds'), KEY_ORDER.thresholds);
  eachItem(valueOf(top, 'workloads'), (w) => sortWorkloadLike(w, KEY_ORDER.workload));
  eachItem(valueOf(top, 'alerts'), (a) => sortMap(a, KEY_ORDER.alert));
  eachItem(valueOf(top, 'sinks'), (s) => sortMap(s, KEY_ORDER.sink));
}

/**
 * Formats the text of one fleet file. Throws SpecError when it does not parse (fmt never rewrites
 * a file it cannot read).
 * @example formatFleetText('kind: Fleet\napiVersion: spotfleet.dev/v1\n', 'fleet.yaml')
 * // 'apiVersion: spotfleet.dev/v1\nkind: Fleet\n'
 */
export function formatFleetText(text: string, file: string): string {
  const r = parseSpecText(text, file, file);
  if (!r.source) throw new SpecError(r.problems);
  return formatSpecSource(r.source);
}

type StringifyCtx = { flowCollectionPadding?: string } & Record<string, unknown>;

/**
 * Flow collections in the canonical style of the examples: `{ name: od-1 }` padded, lists bare
 * like JSON arrays (`["node", "./trainer.mjs"]`). The yaml package has one padding setting for
 * both, so each flow collection gets its own.
 */
function flowPadding(doc: Document): void {
  visit(doc, {
    Node(_, node) {
      if (!isCollection(node) || !node.flow) return;
      const padding = isMap(node) ? ' ' : '';
      const proto = (isMap(node) ? YAMLMap.prototype : YAMLSeq.prototype) as unknown as { toString(ctx?: StringifyCtx, ...rest: unknown[]): string };
      Object.defineProperty(node, 'toString', {
        value: (ctx?: StringifyCtx, ...rest: unknown[]) => proto.toString.call(node, ctx ? { ...ctx, flowCollectionPadding: padding } : ctx, ...rest),
        configurable: true,
      });
    },
  });
}

/** `content  # comment` → [content, spaces, comment], when the `#` starts a comment (outside quotes). */
function splitComment(line: string): [string, string, string] | undefined {
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i] as string;
    if (quote) {
      if (ch === '\\' && quote === '"') i++;
      else if (ch === quote) quote = undefined;
    } else if (ch === '"' || ch === "'") quote = ch;
    else if (ch === '#' && i > 0 && /\s/.test(line[i - 1] as string)) {
      const content = line.slice(0, i).trimEnd();
      if (content.trim() === '') return undefined;
      return [content, line.slice(content.length, i), line.slice(i)];
    }
  }
  return undefined;
}

/** A line's content without its indentation, list dashes or spacing, with its comment. */
function commentKey(parts: [string, string, string]): string {
  return `${parts[0].replace(/^[\s-]*/, '').replace(/\s+/g, '')}\u0000${parts[2]}`;
}

/**
 * Puts back the spaces each end-of-line comment had before its `#`: the yaml package writes one,
 * which would undo a file's aligned comments (`speed: 60      # one trace hour...`). Lines that
 * move together (a re-indented block) keep their comments aligned with each other.
 */
function keepCommentGaps(original: string, formatted: string): string {
  const gaps = new Map<string, string>();
  for (const line of original.split('\n')) {
    const parts = splitComment(line);
    if (parts && parts[1].length > 1) gaps.set(commentKey(parts), parts[1]);
  }
  if (gaps.size === 0) return formatted;
  return formatted
    .split('\n')
    .map((line) => {
      const parts = splitComment(line);
      const gap = parts ? gaps.get(commentKey(parts)) : undefined;
      return parts && gap !== undefined ? `${parts[0]}${gap}${parts[2]}` : line;
    })
    .join('\n');
}

/** Formats an already parsed file (its Document is reordered in place). */
export function formatSpecSource(src: SpecSource): string {
  canonicaliseDocument(src.doc);
  flowPadding(src.doc);
  try {
    return keepCommentGaps(src.text, src.doc.toString({ indent: 2, indentSeq: true, lineWidth: 0, minContentWidth: 0 }));
  } catch (e) {
    throw new SpotfleetError('FMT_FAILED', `${src.file}: cannot format: ${e instanceof Error ? e.message : String(e)}`);
  }
}
