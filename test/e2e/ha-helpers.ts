// e2e helpers for the PostgreSQL backend and HA watch: temp fleets whose spec keeps the state in
// PostgreSQL (`backend: { type: postgres, url: ${SPOTFLEET_PG_URL} }`, each under its own fleet
// name on one server), watch replicas (the built CLI's `spotfleet watch`, each with its own
// /healthz), and the state read through the CLI (`state pull`). Nothing here imports vitest, so
// benchmarks reuse it.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StateFile } from '../../src/state/types.js';
import type { TestWorkload } from './helpers.js';
import type { PgServer } from '../lab/postgres.js';
import { startWatch, watchFleetYaml, type LogLine, type StartWatchOptions, type WatchFleetOptions, type WatchProcess } from './watch-helpers.js';

let counter = 0;

/** A fleet spec like the watch tests' (quickstart providers, trainers), named `name`, state in PostgreSQL. */
export function pgFleetYaml(name: string, workloads: TestWorkload[], o: WatchFleetOptions = {}): string {
  return `${watchFleetYaml(workloads, o).replace('metadata: { name: e2e }', `metadata: { name: ${name} }`)}backend:\n  type: postgres\n  url: \${SPOTFLEET_PG_URL}\n`;
}

/** A temp folder with such a fleet; returns the folder and the fleet name. */
export function tempPgFleet(workloads: TestWorkload[], o: WatchFleetOptions & { name?: string } = {}): { dir: string; name: string } {
  const name = o.name ?? `ha-${process.pid}-${++counter}`;
  const dir = mkdtempSync(join(tmpdir(), 'sf-pg-e2e-'));
  writeFileSync(join(dir, 'fleet.yaml'), pgFleetYaml(name, workloads, o));
  return { dir, name };
}

/** The state of `fleet` as the PostgreSQL server holds it (serial and lineage from their columns). */
export async function pgState(server: PgServer, fleet: string, schema = 'spotfleet'): Promise<StateFile> {
  const rows = await server.sql<{ state: StateFile; serial: string; lineage: string }>(`SELECT state, serial, lineage FROM "${schema}".fleets WHERE fleet = $1`, [fleet]);
  const row = rows[0];
  if (!row) throw new Error(`no state for fleet ${fleet} in ${schema}.fleets`);
  return { ...row.state, serial: Number(row.serial), lineage: row.lineage };
}

/** One `spotfleet watch` replica: its process and its listen address (from its log). */
export interface Replica {
  w: WatchProcess;
  listen: string;
}

/** Starts a watch replica on `dir` and waits until it serves /healthz. */
export async function startReplica(dir: string, o: StartWatchOptions = {}): Promise<Replica> {
  const w = startWatch(dir, { ...o, extraArgs: [...(o.extraArgs ?? [])] });
  const [line] = await w.waitFor((l) => l.action === 'listen' && typeof l.url === 'string', { what: 'the listen address', timeoutMs: 30_000 });
  return { w, listen: String(line?.url).replace(/^http:\/\//, '') };
}

export const isElected = (l: LogLine): boolean => l.action === 'leader' && (l.msg === 'elected leader' || l.msg === 'leading again');
export const isSwept = (l: LogLine): boolean => l.action === 'leader' && l.msg === 'polled every monitored node after taking over';
export const isSteppedDown = (l: LogLine): boolean => l.action === 'leader' && typeof l.msg === 'string' && l.msg.startsWith('stopped leading');

/** Waits until one of `replicas` logs that it leads (from line `from` of each); returns it. */
export async function waitLeader(replicas: readonly Replica[], o: { from?: number[]; timeoutMs?: number } = {}): Promise<{ r: Replica; line: LogLine }> {
  const until = Date.now() + (o.timeoutMs ?? 30_000);
  for (;;) {
    for (const [i, r] of replicas.entries()) {
      if (!r.w.alive) continue;
      const hit = r.w.find(isElected, o.from?.[i] ?? 0)[0];
      if (hit) return { r, line: hit };
    }
    if (Date.now() > until) throw new Error(`no replica became leader within ${o.timeoutMs ?? 30_000} ms\n${replicas.map((r) => r.w.tail(15)).join('\n')}`);
    await new Promise((res) => setTimeout(res, 50));
  }
}
