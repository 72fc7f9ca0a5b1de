// `spotfleet sim ...`: drive the simulated parts of a fleet by hand.
//   sim evict NODE [PATH] [--in 30s] [--kind preemption]  posts an eviction notice on a node
//   sim restore NODE [PATH]                               brings a terminated static node back
//   sim clock [PATH]                                      prints each sim market's simulated time
// NODE is a node id, or `provider/node` when two providers have a node of that name.
import type { Command } from 'commander';
import { nodeKey, splitProviderKey } from '../core/address.js';
import { SpotfleetError, UsageError } from '../core/errors.js';
import type { NodeInfo, NoticeKind } from '../core/types.js';
import { formatDuration, parseDuration } from '../core/units.js';
import type { Provider } from '../providers/sdk.js';
import type { FleetProviders } from '../engine/session.js';
import type { CliApp } from './app.js';
import { toSnakeJson } from '../core/json.js';
import { PROVIDERS_JSON_FORMAT, addProviderOptions, openFleetProviders, sortedSpecs, timeoutMs, type ProviderCommandOptions } from './providers.js';
import { cmp } from './util.js';
import { withTimeout } from '../engine/refresh.js';

const KINDS: NoticeKind[] = ['preemption', 'rebalance', 'maintenance', 'termination'];

/** Finds the one node called `ref` (`node` or `provider/node`) among providers that can `need`. */
async function findNode(opened: FleetProviders, ref: string, need: 'evict' | 'restore', ms: number): Promise<{ provider: Provider; node: NodeInfo }> {
  const { provider: wantProvider, id } = splitProviderKey(ref);
  const hits: { provider: Provider; node: NodeInfo }[] = [];
  const known: string[] = [];
  for (const s of sortedSpecs(opened)) {
    if (wantProvider !== undefined && s.name !== wantProvider) continue;
    const p = opened.providers.get(s.name);
    if (!p?.nodes) continue;
    const nodes = await withTimeout(p.name, 'nodes.list', ms, p.nodes.list());
    for (const n of nodes) {
      known.push(nodeKey(p.name, n.id));
      if (n.id === id) hits.push({ provider: p, node: n });
    }
  }
  if (hits.length === 0) {
    throw new SpotfleetError('NODE_NOT_FOUND', `no node "${ref}" in fleet "${opened.fleet.name}"`, [known.length ? `Nodes: ${known.sort().join(', ')}` : 'The fleet has no nodes yet (a market node appears once a lease is acquired).']);
  }
  if (hits.length > 1) throw new UsageError(`node "${ref}" is ambiguous`, [`Say which: ${hits.map((h) => nodeKey(h.provider.name, h.node.id)).sort().join(', ')}`]);
  const hit = hits[0]!;
  if (!hit.provider.simulation?.[need]) {
    throw new SpotfleetError('NOT_SUPPORTED', `provider "${hit.provider.name}" (${hit.provider.type}) cannot ${need === 'evict' ? 'simulate an eviction' : 'restore a node'}`, need === 'restore' ? ['Only static nodes (local) come back; a sim lease that died is gone: acquire a new one.'] : []);
  }
  return hit;
}

export function register(program: Command, app: CliApp): void {
  const sim = program.command('sim').description('Drive simulated capacity by hand: post eviction notices, restore nodes, read the market clock.');

  addProviderOptions(
    sim
      .command('evict')
      .description('Post an eviction notice on a node; the node dies at the deadline (its processes are killed).')
      .argument('<node>', 'node id, or provider/node')
      .argument('[path]', 'fleet file, or a folder of *.yaml files', '.')
      .option('--in <duration>', 'time from now to the deadline', '30s')
      .option('--kind <kind>', `notice kind: ${KINDS.join(', ')}`, 'preemption'),
  ).action(async (ref: string, path: string, opts: ProviderCommandOptions & { in: string; kind: string }) => {
    const inMs = parseDuration(opts.in);
    if (inMs === undefined) throw new UsageError(`--in: "${opts.in}" is not a duration`, ['Expected a duration such as 30s or 2m.']);
    if (!(KINDS as string[]).includes(opts.kind)) throw new UsageError(`--kind: "${opts.kind}" is not a notice kind`, [`Expected one of ${KINDS.join(', ')}.`]);
    const ms = timeoutMs(opts);
    const opened = await openFleetProviders(app, path, opts);
    try {
      const { provider, node } = await findNode(opened, ref, 'evict', ms);
      const notice = await withTimeout(provider.name, 'simulation.evict', ms, provider.simulation!.evict(node, { inMs, kind: opts.kind as NoticeKind }));
      if (opts.json) app.io.out(JSON.stringify({ format_version: PROVIDERS_JSON_FORMAT, notice: toSnakeJson(notice) }, null, 2));
      else app.io.out(`Posted a ${notice.kind} notice on ${provider.name}/${node.id}: deadline ${notice.deadline} (in ${formatDuration(Date.parse(notice.deadline) - Date.now() > 0 ? Math.round((Date.parse(notice.deadline) - Date.now()) / 1000) * 1000 : 0)}). Notice id ${notice.id}.`);
    } finally {
      await opened.close();
    }
  });

  addProviderOptions(
    sim
      .command('restore')
      .description('Bring a static node that a simulated eviction terminated back to ready.')
      .argument('<node>', 'node id, or provider/node')
      .argument('[path]', 'fleet file, or a folder of *.yaml files', '.'),
  ).action(async (ref: string, path: string, opts: ProviderCommandOptions) => {
    const ms = timeoutMs(opts);
    const opened = await openFleetProviders(app, path, opts);
    try {
      const { provider, node } = await findNode(opened, ref, 'restore', ms);
      await withTimeout(provider.name, 'simulation.restore', ms, provider.simulation!.restore!(node));
      if (opts.json) app.io.out(JSON.stringify({ format_version: PROVIDERS_JSON_FORMAT, restored: { provider: provider.name, node: node.id } }, null, 2));
      else app.io.out(`Restored ${provider.name}/${node.id}: no notice, ready for workloads.`);
    } finally {
      await opened.close();
    }
  });

  addProviderOptions(
    sim
      .command('clock')
      .description("Print each sim market's simulated time (every CLI run of this fleet agrees on it).")
      .argument('[path]', 'fleet file, or a folder of *.yaml files', '.'),
  ).action(async (path: string, opts: ProviderCommandOptions) => {
    const ms = timeoutMs(opts);
    const opened = await openFleetProviders(app, path, opts);
    try {
      const rows: { provider: string; at: string }[] = [];
      for (const s of sortedSpecs(opened)) {
        const p = opened.providers.get(s.name);
        if (s.type !== 'sim' || !p?.capacity) continue;
        // The market's quotes carry its simulated time: no extra SDK surface needed.
        const quotes = await withTimeout(s.name, 'prices', ms, p.capacity.prices({}));
        const at = quotes[0]?.at;
        if (at) rows.push({ provider: s.name, at });
      }
      rows.sort((a, b) => cmp(a.provider, b.provider));
      if (rows.length === 0) throw new SpotfleetError('NOT_FOUND', `fleet "${opened.fleet.name}" has no sim provider`);
      if (opts.json) app.io.out(JSON.stringify({ format_version: PROVIDERS_JSON_FORMAT, clocks: rows }, null, 2));
      else for (const r of rows) app.io.out(`${r.provider}: ${r.at}`);
    } finally {
      await opened.close();
    }
  });
}
