// One contract, every backend: the file store and the PostgreSQL store (against a real server this
// suite starts) must behave the same for read, compare-and-swap writes, update retries, the named
// lock, force-unlock and the saved observation.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LockError, StateConflictError } from '../../src/core/errors.js';
import type { Observed } from '../../src/core/types.js';
import { openPgStateStore } from '../../src/state/postgres.js';
import { LocalStateStore, type StateStore } from '../../src/state/store.js';
import { describePostgres } from '../lab/gate.js';
import { PgServer } from '../lab/postgres.js';

interface Backend {
  name: string;
  /** A fresh store for fleet `fleet`; two calls with the same fleet share one state. */
  open(fleet: string): Promise<StateStore>;
}

function contract(b: () => Backend): void {
  const opened: StateStore[] = [];
  const open = async (fleet: string): Promise<StateStore> => {
    const s = await b().open(fleet);
    opened.push(s);
    return s;
  };
  afterAll(async () => {
    await Promise.all(opened.map(async (s) => s.close?.()));
  });

  it('starts empty with a persisted lineage at serial 0', async () => {
    const a = await open('c-empty');
    const s1 = await a.read();
    expect(s1).toMatchObject({ serial: 0, fleet: 'c-empty', resources: {}, pending: [], ledger: [] });
    const b2 = await open('c-empty');
    expect((await b2.read()).lineage).toBe(s1.lineage);
  });

  it('writes with compare-and-swap on the serial: the second writer from the same serial loses', async () => {
    const a = await open('c-cas');
    const b2 = await open('c-cas');
    const sa = await a.read();
    const sb = await b2.read();
    sa.resources['workload.x'] = { type: 'workload', address: 'workload.x', name: 'x', phase: 'running', gpus: 1, doneMs: 0, generation: 1, failures: 0, recoveries: 0, preemptions: [], moves: [] };
    const written = await a.write(sa);
    expect(written.serial).toBe(sa.serial + 1);
    await expect(b2.write(sb)).rejects.toBeInstanceOf(StateConflictError);
    const again = await b2.read();
    expect(again.serial).toBe(written.serial);
    expect(again.resources['workload.x']).toBeDefined();
  });

  it('update() re-reads and re-applies when it lost the race: no lost update, serial +1 each', async () => {
    const stores = await Promise.all(Array.from({ length: 5 }, () => open('c-update')));
    const before = (await stores[0]!.read()).serial;
    await Promise.all(
      stores.flatMap((s, i) =>
        Array.from({ length: 4 }, (_, j) =>
          s.update((st) => {
            st.ledger.push({ workload: `w${i}-${j}`, capacity: 'spot', from: 0, to: 1, gpus: 1, pricePerGpuHour: 1, onDemandPricePerGpuHour: 2 });
          }),
        ),
      ),
    );
    const after = await stores[0]!.read();
    expect(after.serial).toBe(before + 20);
    expect(after.ledger.map((l) => l.workload).sort()).toHaveLength(20);
  });

  it('names the lock holder, waits for it, and force-unlock removes it by id', async () => {
    const a = await open('c-lock');
    const b2 = await open('c-lock');
    const h = await a.lock('apply', 0);
    expect(await b2.holder()).toMatchObject({ id: h.holder.id, command: 'apply', pid: process.pid });
    const err = await b2.lock('plan', 300).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LockError);
    expect((err as LockError).message).toContain('running "apply"');
    expect((err as LockError).holder?.id).toBe(h.holder.id);
    await expect(b2.forceUnlock('not-the-id')).rejects.toBeInstanceOf(LockError);
    await b2.forceUnlock(h.holder.id);
    expect(await b2.holder()).toBeUndefined();
    const h2 = await b2.lock('plan', 2000);
    await h2.release();
    await h.release();
    expect(await a.holder()).toBeUndefined();
  });

  it('a waiting lock is granted when the holder releases it', async () => {
    const a = await open('c-lock-wait');
    const b2 = await open('c-lock-wait');
    const h = await a.lock('apply', 0);
    setTimeout(() => void h.release(), 300);
    const t = Date.now();
    const h2 = await b2.lock('apply', 5000);
    expect(Date.now() - t).toBeGreaterThanOrEqual(250);
    await h2.release();
  });

  it('saves and reads the last observation', async () => {
    const a = await open('c-obs');
    expect(await a.readObservation()).toBeUndefined();
    const obs: Observed = { at: '2026-01-01T00:00:00.000Z', nodes: [], workloads: [], leases: [], prices: [], offers: [], notices: [], unknown: [] };
    await a.saveObservation(obs);
    const b2 = await open('c-obs');
    expect(await b2.readObservation()).toEqual(obs);
  });
}

describe('StateStore contract: local file', () => {
  const dirs = new Map<string, string>();
  const root = mkdtempSync(join(tmpdir(), 'sf-store-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  contract(() => ({
    name: 'local',
    open: async (fleet) => {
      if (!dirs.has(fleet)) dirs.set(fleet, join(root, fleet));
      return new LocalStateStore(dirs.get(fleet) as string, fleet);
    },
  }));
});

describePostgres('StateStore contract: PostgreSQL', () => {
  let server: PgServer;
  beforeAll(async () => {
    server = await PgServer.create();
  }, 60_000);
  afterAll(async () => {
    await server?.close();
  });
  contract(() => ({ name: 'postgres', open: (fleet) => openPgStateStore({ url: server.url(), fleet }) }));
});
