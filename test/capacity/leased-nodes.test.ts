// The capacity kit's verdicts across processes, with an in-memory cloud driver (no network): a
// machine that one process (a watch) found never ready and terminated is still reported, by another
// process (an apply waiting on it) sharing the data folder, as a terminated lease with the reason,
// after the cloud stopped listing it; and a capacity miss one process met is skipped by the next.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { NodeAccess } from '../../src/core/types.js';
import type { AcquireRequest, ProviderContext } from '../../src/providers/sdk.js';
import { generateEd25519, LeasedNodes, type CloudDriver, type CloudInstance, type CloudOffering } from '../../src/providers/kit/capacity/index.js';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

/** A cloud in memory: launches are `pending` machines with no address (they never boot). */
class MemoryCloud implements CloudDriver {
  readonly label = 'MEM';
  readonly machines = new Map<string, CloudInstance>();
  readonly terminated: string[] = [];
  /** Zones with no capacity now. */
  readonly stockOut = new Set<string>();
  private seq = 0;
  constructor(private readonly now: () => number) {}
  /** When set, a listing takes its snapshot at once and answers only when this resolves. */
  hold: Promise<void> | undefined;
  listings = 0;
  list(): Promise<CloudInstance[]> {
    this.listings++;
    // Like GCE and Azure: a deleted machine is gone from the listing at once.
    const snapshot = [...this.machines.values()].filter((m) => m.state !== 'terminated').map((m) => ({ ...m }));
    return (this.hold ?? Promise.resolve()).then(() => snapshot);
  }
  offerings(): Promise<CloudOffering[]> {
    return Promise.resolve(['z1', 'z2'].map((zone) => ({ type: 'g1', zone, capacity: 'spot' as const, gpuModel: 'V100', gpus: 1, pricePerHour: zone === 'z1' ? 1 : 1.2, at: new Date(this.now()).toISOString() })));
  }
  launch(l: Parameters<CloudDriver['launch']>[0]): Promise<CloudInstance> {
    if (this.stockOut.has(l.option.zone ?? '')) return Promise.reject(Object.assign(new Error(`no g1 in ${l.option.zone}`), { code: 'Stockout' }));
    const m: CloudInstance = { id: `m-${++this.seq}`, pool: l.req.pool, capacity: l.option.capacity, gpuModel: 'V100', gpus: 1, pricePerHour: l.option.pricePerHour, launchedAt: this.now(), state: 'pending', hostKey: l.hostKeyPublic, labels: {}, meta: {}, idempotencyKey: 'k' };
    if (l.option.zone !== undefined) m.zone = l.option.zone;
    this.machines.set(m.id, m);
    return Promise.resolve({ ...m });
  }
  terminate(id: string): Promise<void> {
    const m = this.machines.get(id);
    if (m) m.state = 'terminated';
    this.terminated.push(id);
    return Promise.resolve();
  }
  capacityError(e: unknown) {
    return (e as { code?: string }).code === 'Stockout' ? { code: 'Stockout', message: (e as Error).message, scope: 'zone' as const } : undefined;
  }
}

describe('the capacity kit across processes (in-memory cloud)', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  function setup() {
    const dir = mkdtempSync(join(tmpdir(), 'sf-kit-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'id'), generateEd25519('kit').private, { mode: 0o600 });
    let clock = Date.parse('2026-03-01T10:00:00Z');
    const now = () => clock;
    const node: NodeAccess = { via: 'ssh', user: 'root', identityFile: './id', port: 22, runtime: 'docker', address: 'auto', readyTimeoutMs: 60_000 };
    const ctx: ProviderContext = { name: 'mem', fleet: 'f', specDir: dir, dataDir: join(dir, 'data'), log: quiet, now, env: {}, pools: [{ name: 'spot', capacity: 'spot', gpuModel: 'V100', zones: ['z1', 'z2'], node }] };
    const cloud = new MemoryCloud(now);
    // Two processes: each its own kit over the same cloud and data folder.
    const watch = new LeasedNodes({ ctx, driver: cloud });
    const apply = new LeasedNodes({ ctx, driver: cloud });
    const req: AcquireRequest = { pool: 'spot', capacity: 'spot', gpuModel: 'V100', gpus: 1, idempotencyKey: 'f:train:i1:g1', labels: {} };
    return { cloud, watch, apply, req, advance: (ms: number) => (clock += ms) };
  }

  it('a machine another process terminated for never becoming ready is still a terminated lease, with why', async () => {
    const { cloud, watch, apply, req, advance } = setup();
    const lease = await apply.capacity().acquire(req);
    expect(lease).toMatchObject({ state: 'pending', zone: 'z1' });
    advance(61_000);
    // The watch lists first: past the ready timeout, it terminates the machine, which the cloud then no longer lists.
    const seen = (await watch.capacity().leases()).find((l) => l.id === lease.id);
    expect(seen?.state).toBe('terminated');
    expect(cloud.terminated).toEqual([lease.id]);
    expect((await cloud.list()).map((m) => m.id)).not.toContain(lease.id);
    // The apply waiting on it learns why instead of waiting for its own timeout.
    const after = (await apply.capacity().leases()).find((l) => l.id === lease.id);
    expect(after).toMatchObject({ state: 'terminated' });
    expect(after?.error).toMatch(new RegExp(`^MEM instance ${lease.id} \\(pool spot, z1\\) did not become a ready node within 1m of its launch: it is still pending; spotfleet terminated it$`));
    // Releasing it again is harmless, and the same key buys anew.
    await apply.capacity().release(lease.id);
    const again = await apply.capacity().acquire(req);
    expect(again.id).not.toBe(lease.id);
    await Promise.all([watch.close(), apply.close()]);
  });

  it('a capacity miss one process met is skipped by the next process, and quoted unavailable, until it expires', async () => {
    const { cloud, watch, apply, req, advance } = setup();
    cloud.stockOut.add('z1');
    const first = await watch.capacity().acquire({ ...req, zone: 'z1' });
    expect(first.zone).toBe('z2');
    cloud.stockOut.clear();
    // Another process: z1 is still remembered as out of stock, so it buys in z2 without trying z1.
    const second = await apply.capacity().acquire({ ...req, idempotencyKey: 'f:other:i1:g1', zone: 'z1' });
    expect(second.zone).toBe('z2');
    expect((await apply.capacity().prices({ gpuModel: 'V100' })).find((q) => q.zone === 'z1')?.available).toBe(false);
    advance(181_000);
    expect((await apply.capacity().prices({ gpuModel: 'V100' })).find((q) => q.zone === 'z1')?.available).toBe(true);
    const third = await apply.capacity().acquire({ ...req, idempotencyKey: 'f:third:i1:g1', zone: 'z1' });
    expect(third.zone).toBe('z1');
    await Promise.all([watch.close(), apply.close()]);
  });

  it('a caller that asks while a listing is under way is not answered by it (it may predate the caller\'s release)', async () => {
    const { cloud, apply, req } = setup();
    const lease = await apply.capacity().acquire(req);
    expect((await apply.capacity().leases()).map((l) => l.id)).toContain(lease.id);
    let open!: () => void;
    cloud.hold = new Promise<void>((r) => (open = r));
    const before = cloud.listings;
    // A listing starts (a watch's poll), and takes its snapshot while the machine still runs.
    const early = apply.capacity().leases();
    await apply.capacity().release(lease.id);
    const after = apply.capacity().leases();
    const also = apply.capacity().leases();
    open();
    cloud.hold = undefined;
    expect((await early).map((l) => l.id)).toContain(lease.id);
    const left = (await after).find((l) => l.id === lease.id);
    expect(left === undefined || left.state === 'terminated').toBe(true);
    // The two who asked after the release share one fresh listing.
    expect(await also).toEqual(await after);
    expect(cloud.listings - before).toBe(2);
    await apply.close();
  });
});
