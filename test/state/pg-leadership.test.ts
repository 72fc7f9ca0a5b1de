// The PostgreSQL backend's leader lease and fencing, the fenced store watch writes through, and
// state migration between backends, against a real server this suite starts.
import { setTimeout as sleep } from 'node:timers/promises';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { FencedError, SpotfleetError } from '../../src/core/errors.js';
import { migrateState } from '../../src/state/migrate.js';
import { openPgStateStore, type PgStateStore } from '../../src/state/postgres.js';
import { LocalStateStore } from '../../src/state/store.js';
import { LeaderElector, LeaderStore, createLeaderMetrics } from '../../src/watch/leader.js';
import type { Logger } from '../../src/telemetry/logger.js';
import { describePostgres } from '../lab/gate.js';
import { PgServer } from '../lab/postgres.js';


function memoryLog(): Logger & { lines: { level: string; msg: string; fields?: Record<string, unknown> }[] } {
  const lines: { level: string; msg: string; fields?: Record<string, unknown> }[] = [];
  const add = (level: string) => (msg: string, fields?: Record<string, unknown>): void => void lines.push({ level, msg, ...(fields ? { fields } : {}) });
  return { lines, trace: add('trace'), debug: add('debug'), info: add('info'), warn: add('warn'), error: add('error'), child: () => memoryLog(), flush: () => undefined } as unknown as Logger & { lines: typeof lines };
}

describePostgres('PostgreSQL leader lease, fencing and migration', () => {
  let server: PgServer;
  const stores: PgStateStore[] = [];
  const open = async (fleet: string): Promise<PgStateStore> => {
    const s = await openPgStateStore({ url: server.url(), fleet });
    stores.push(s);
    return s;
  };
  beforeAll(async () => {
    server = await PgServer.create();
  }, 60_000);
  afterAll(async () => {
    await Promise.all(stores.map(async (s) => s.close()));
    await server?.close();
  });

  it('one holder at a time; a takeover raises the epoch; a deposed or expired holder\'s writes are refused whole', async () => {
    const x = await open('lease');
    const y = await open('lease');
    const gx = await x.acquireLeadership('x', { pid: 1 }, 60_000);
    expect(gx?.epoch).toBe(1);
    expect(await y.acquireLeadership('y', { pid: 2 }, 60_000)).toBeUndefined();
    x.setFence(1);
    const s = await x.update((st) => void st.ledger.push({ workload: 'a', capacity: 'spot', from: 0, to: 1, gpus: 1, pricePerGpuHour: 1, onDemandPricePerGpuHour: 2 }));
    expect(s.ledger).toHaveLength(1);
    expect((await server.sql<{ epoch: string }>(`SELECT epoch FROM spotfleet.fleets WHERE fleet = 'lease'`))[0]?.epoch).toBe('1');

    // Expired (nobody took over): refused as expired; renewing the same epoch brings the writes back.
    await x.releaseLeadership('x', 1);
    const e1 = await x.update((st) => void (st.ledger = [])).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(FencedError);
    expect((e1 as FencedError).deposed).toBe(false);
    expect(await x.renewLeadership('x', 1, 60_000)).toBe(true);
    await x.update((st) => void st.pending.push({ id: 'p1', address: 'workload.a', action: 'start', startedAt: 0, pid: 1, data: {} }));

    // Taken over: x's writes are refused, its renewal fails, and the state is what y wrote.
    await x.releaseLeadership('x', 1);
    const gy = await y.acquireLeadership('y', { pid: 2 }, 60_000);
    expect(gy?.epoch).toBe(2);
    const before = await y.read();
    const e2 = await x.update((st) => void (st.pending = [])).catch((e: unknown) => e);
    expect(e2).toBeInstanceOf(FencedError);
    expect((e2 as FencedError).deposed).toBe(true);
    expect((e2 as Error).message).toMatch(/this watch led at epoch 1, but replica y leads at epoch 2/);
    expect(await x.renewLeadership('x', 1, 60_000)).toBe(false);
    expect((await y.read()).serial).toBe(before.serial);
    const lead = await y.currentLeader();
    expect(lead).toMatchObject({ epoch: 2, holder: 'y', live: true, changes: 2 });
  });

  it('LeaderStore counts and logs refused writes, stamps pending records with the epoch, and queues writes while the server is away', async () => {
    const inner = await open('leader-store');
    const registry = new Registry();
    const metrics = createLeaderMetrics(registry);
    const log = memoryLog();
    let leading = true;
    const elector = { isLeading: () => leading, currentEpoch: 1 } as unknown as LeaderElector;
    const store = new LeaderStore({ inner, elector: () => elector, log, metrics, retryMs: 100 });
    await inner.acquireLeadership('me', {}, 60_000);
    inner.setFence(1);
    const s = await store.update((st) => void st.pending.push({ id: 'p', address: 'workload.a', action: 'start', startedAt: 0, pid: 1, data: {} }));
    expect(s.pending[0]?.epoch).toBe(1);

    // The server goes away: writes apply to the state held here and wait in a queue.
    await server.stop();
    try {
      const q = await store.update((st) => void (st.pending = []));
      expect(q.pending).toEqual([]);
      await store.update((st) => void st.ledger.push({ workload: 'a', capacity: 'spot', from: 0, to: 1, gpus: 1, pricePerGpuHour: 1, onDemandPricePerGpuHour: 2 }));
      expect(store.queued).toBe(2);
      expect((await store.read()).ledger).toHaveLength(1);
      leading = false;
      await expect(store.update(() => undefined)).rejects.toBeInstanceOf(SpotfleetError);
      leading = true;
    } finally {
      await server.start();
    }
    expect(await store.drain(15_000)).toBe(true);
    const back = await inner.read();
    expect(back.pending).toEqual([]);
    expect(back.ledger).toHaveLength(1);

    // Deposed: the write is refused, logged and counted.
    await inner.releaseLeadership('me', 1);
    const other = await open('leader-store');
    await other.acquireLeadership('other', {}, 60_000);
    await expect(store.update(() => undefined)).rejects.toBeInstanceOf(FencedError);
    expect(await registry.getSingleMetricAsString('spotfleet_fenced_writes_total')).toMatch(/spotfleet_fenced_writes_total 1/);
    expect(log.lines.some((l) => l.fields?.action === 'fenced')).toBe(true);
  }, 60_000);

  it('a new leader takes the state lock from a deposed leader\'s reconcile, never from a person\'s command', async () => {
    const old = await open('lock-takeover');
    const mine = await open('lock-takeover');
    const log = memoryLog();
    const elector = { isLeading: () => true, currentEpoch: 2 } as unknown as LeaderElector;
    const store = new LeaderStore({ inner: mine, elector: () => elector, log, metrics: createLeaderMetrics(new Registry()) });
    // A leader at epoch 1, paused in the middle of a reconcile: its session (and lock) live on.
    const held = await old.lock('watch (leader epoch 1)', 0);
    const got = await store.lock('watch', 0);
    expect(got.holder.command).toBe('watch (leader epoch 2)');
    expect((await mine.holder())?.id).toBe(got.holder.id);
    expect(log.lines.some((l) => /taking the state lock from a deposed leader \(epoch 1, pid \d+ on \S+\)/.test(l.msg))).toBe(true);
    await got.release();
    await held.release();
    // An apply holds it: the leader waits like anyone else, and is told who holds it.
    const apply = await old.lock('apply', 0);
    await expect(store.lock('watch', 300)).rejects.toThrow(/locked by another spotfleet \(pid \d+ on \S+, running "apply"\)/);
    expect((await mine.holder())?.id).toBe(apply.holder.id);
    await apply.release();
  });

  it('LeaderElector: one of two leads; a clean stop hands over at once; the deadline comes before the server\'s expiry', async () => {
    const a = await open('elect');
    const b = await open('elect');
    const registry = new Registry();
    const mk = (backend: PgStateStore): { e: LeaderElector; elected: number[]; deposed: string[] } => {
      const elected: number[] = [];
      const deposed: string[] = [];
      const e = new LeaderElector({ backend, log: memoryLog(), metrics: createLeaderMetrics(new Registry()), ttlMs: 1500, retryMs: 50, info: () => ({}), onElected: (ep) => elected.push(ep), onDeposed: (r) => deposed.push(r) });
      return { e, elected, deposed };
    };
    void registry;
    const ea = mk(a);
    ea.e.start();
    await sleep(300);
    const eb = mk(b);
    eb.e.start();
    await sleep(500);
    expect(ea.e.isLeading()).toBe(true);
    expect(eb.e.isLeading()).toBe(false);
    expect(eb.e.view()).toMatchObject({ role: 'standby', holder: ea.e.identity, epoch: 1 });
    const t = Date.now();
    await ea.e.stop();
    while (!eb.e.isLeading() && Date.now() - t < 3000) await sleep(20);
    expect(eb.e.isLeading()).toBe(true);
    expect(Date.now() - t).toBeLessThan(1000);
    expect(eb.elected).toEqual([2]);
    expect(ea.deposed).toEqual(['shutting down']);
    await eb.e.stop();
  }, 30_000);

  it('migrates a local state into PostgreSQL and back, keeping lineage and serial; refuses another lineage', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sf-migrate-'));
    try {
      const local = new LocalStateStore(dir, 'mig');
      const ls = await local.update((st) => {
        st.resources['workload.a'] = { type: 'workload', address: 'workload.a', name: 'a', phase: 'running', gpus: 1, doneMs: 5, generation: 1, failures: 0, recoveries: 0, preemptions: [], moves: [] };
      });
      const pg = await open('mig');
      const r = await migrateState(local, pg, { localDir: dir });
      expect(r).toMatchObject({ moved: true, resources: 1, lineage: ls.lineage });
      const there = await pg.read();
      expect(there.lineage).toBe(ls.lineage);
      expect(there.serial).toBe(ls.serial);
      expect(there.resources['workload.a']).toBeDefined();
      expect(existsSync(join(dir, 'state.json'))).toBe(false);
      expect(existsSync(join(dir, 'state.json.migrated'))).toBe(true);

      // Another checkout's state of the same fleet is refused.
      const other = mkdtempSync(join(tmpdir(), 'sf-migrate-other-'));
      const ol = new LocalStateStore(other, 'mig');
      await ol.update((st) => void (st.resources['workload.b'] = { type: 'workload', address: 'workload.b', name: 'b', phase: 'running', gpus: 1, doneMs: 0, generation: 1, failures: 0, recoveries: 0, preemptions: [], moves: [] }));
      await expect(migrateState(ol, pg, { localDir: other })).rejects.toThrow(/has lineage .* they are different states/);
      expect((await pg.read()).resources['workload.b']).toBeUndefined();
      rmSync(other, { recursive: true, force: true });

      // And back into a fresh local file.
      const back = mkdtempSync(join(tmpdir(), 'sf-migrate-back-'));
      const r2 = await migrateState(pg, new LocalStateStore(back, 'mig'), { localDir: back });
      expect(r2.moved).toBe(true);
      const lb = await new LocalStateStore(back, 'mig').read();
      expect(lb.lineage).toBe(ls.lineage);
      expect(lb.resources['workload.a']).toBeDefined();
      rmSync(back, { recursive: true, force: true });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
