// The `sim` provider against small hand-made traces: preemption exactly when the trace says, at a
// given speed, with the notice window in wall-clock time; the processes on the lease die at the
// deadline; prices and acquire follow the trace; the clock persists across runs and wraps.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Market } from '../../providers/sim/market.js';
import { provider as sim, type SimConfig } from '../../providers/sim/index.js';
import { parseSpotTrace } from '../../src/core/trace.js';
import type { Provider } from '../../src/providers/sdk.js';
import { makeCtx, removeTempDirs, stopAll, tempDir, track, trainer, waitFor } from '../quickstart/harness.js';

afterAll(async () => {
  await stopAll();
  removeTempDirs();
});

const T0 = Date.parse('2023-01-01T00:00:00Z');
const MIN = 60_000;

/** 20 one-minute ticks: z1 available for 10 minutes then gone; z2 gone for 5 minutes then there. */
function traceCsv(): string {
  const rows = ['timestamp_utc,z1_available,z2_available,z1_spot_usd_per_hr,z2_spot_usd_per_hr'];
  for (let i = 0; i < 20; i++) rows.push(`${new Date(T0 + i * MIN).toISOString()},${i < 10 ? 1 : 0},${i < 5 ? 0 : 1},0.9,${i < 12 ? 0.8 : 1.1}`);
  return `${rows.join('\n')}\n`;
}

function setup(cfg: Partial<SimConfig> = {}, now?: () => number): { root: string; make: (c?: Partial<SimConfig>, n?: () => number) => Promise<Provider> } {
  const root = tempDir();
  writeFileSync(join(root, 'trace.csv'), traceCsv());
  const make = async (c: Partial<SimConfig> = {}, n: (() => number) | undefined = now): Promise<Provider> =>
    track(await sim.create({ trace: 'trace.csv', onDemandPrice: 3, noticeWindow: '1s', ...cfg, ...c }, makeCtx('market', root, n ? { now: n } : {})));
  return { root, make };
}

describe('sim provider', () => {
  it('preempts a spot lease when its zone goes away in the trace, and kills its processes at the deadline', async () => {
    const { make } = setup({ speed: 600 }); // ten minutes of trace per wall second
    const p = await make();
    const lease = await p.capacity!.acquire({ pool: 'spot', capacity: 'spot', gpuModel: 'V100', gpus: 1, maxPricePerGpuHour: 2, idempotencyKey: 'a', labels: {} });
    expect(lease).toMatchObject({ zone: 'z1', capacity: 'spot', state: 'active', pricePerHour: 0.9 }); // z2 is unavailable at the start
    const t = trainer();
    const inst = await p.runtime!.start({ fleet: 'test', workload: 'w', node: lease.node!, command: t.command, env: t.env, gpus: 1, labels: {}, specHash: 'h', idempotencyKey: 'w1' });
    const node = (await p.nodes!.list()).find((n) => n.id === lease.node)!;
    expect(node).toMatchObject({ state: 'ready', capacity: 'spot', zone: 'z1', gpus: 1, gpusFree: 0 });
    const [notice] = await waitFor('the trace preemption notice', async () => {
      const ns = await p.notices!.poll(node);
      return ns.length > 0 ? ns : undefined;
    });
    // At the sim moment the trace marks z1 unavailable, with a one-second wall-clock window.
    expect(notice).toMatchObject({ kind: 'preemption', source: 'sim', node: lease.node, detail: { zone: 'z1', simTime: '2023-01-01T00:10:00.000Z' } });
    expect(Date.parse(notice!.deadline) - Date.parse(notice!.receivedAt)).toBe(1000);
    expect((await p.capacity!.leases()).find((l) => l.id === lease.id)?.state).toMatch(/preempting|terminated/);
    await waitFor('the lease terminated', async () => ((await p.capacity!.leases()).find((l) => l.id === lease.id)?.state === 'terminated' ? true : undefined));
    const dead = (await p.runtime!.list()).find((i) => i.id === inst.id)!;
    expect(dead).toMatchObject({ state: 'exited', exitCode: 137 });
    expect((await p.nodes!.list()).find((n) => n.id === lease.node)?.state).toBe('terminated');
    await expect(p.runtime!.start({ fleet: 'test', workload: 'w2', node: lease.node!, command: t.command, env: t.env, gpus: 1, labels: {}, specHash: 'h', idempotencyKey: 'w2' })).rejects.toThrow(/terminated/);
    await p.capacity!.release(lease.id);
    expect((await p.capacity!.leases()).map((l) => l.id)).not.toContain(lease.id);
  });

  it('quotes the trace at the simulated time and acquires within the price cap', async () => {
    const wall = Date.parse('2030-01-01T00:00:00Z');
    const { make } = setup({ start: '2023-01-01T00:05:30Z', speed: 1 }, () => wall);
    const p = await make();
    const quotes = await p.capacity!.prices({});
    expect(quotes.map((q) => [q.capacity, q.zone, q.pricePerGpuHour, q.available])).toEqual([
      ['spot', 'z2', 0.8, true],
      ['spot', 'z1', 0.9, true],
      ['on-demand', 'z1', 3, true],
      ['on-demand', 'z2', 3, true],
    ]);
    expect(quotes.every((q) => q.at === '2023-01-01T00:05:30.000Z')).toBe(true);
    expect(await p.capacity!.prices({ gpuModel: 'A100' })).toEqual([]);
    const cheap = await p.capacity!.acquire({ pool: 's', capacity: 'spot', gpuModel: 'V100', gpus: 2, maxPricePerGpuHour: 0.85, idempotencyKey: 'c', labels: {} });
    expect(cheap).toMatchObject({ zone: 'z2', gpus: 2, pricePerHour: 1.6 });
    expect((await p.capacity!.acquire({ pool: 's', capacity: 'spot', gpuModel: 'V100', gpus: 2, maxPricePerGpuHour: 0.85, idempotencyKey: 'c', labels: {} })).id).toBe(cheap.id);
    await expect(p.capacity!.acquire({ pool: 's', capacity: 'spot', gpuModel: 'V100', gpus: 1, maxPricePerGpuHour: 0.5, idempotencyKey: 'd', labels: {} })).rejects.toThrow(/no spot V100 capacity at or below \$0.5/);
    await expect(p.capacity!.acquire({ pool: 's', capacity: 'spot', gpuModel: 'A100', gpus: 1, idempotencyKey: 'e', labels: {} })).rejects.toThrow(/sells V100/);
    const od = await p.capacity!.acquire({ pool: 'o', capacity: 'on-demand', gpuModel: 'V100', gpus: 1, zone: 'z2', idempotencyKey: 'f', labels: {} });
    expect(od).toMatchObject({ zone: 'z2', capacity: 'on-demand', pricePerHour: 3 });
    expect((await p.capacity!.leases()).map((l) => l.id).sort()).toEqual([cheap.id, od.id].sort());
  });

  it('keeps one clock for every run of the fleet, rebases on a speed change, and wraps at the trace end', async () => {
    let wall = Date.parse('2030-01-01T00:00:00Z');
    const { make } = setup({ speed: 600 }, () => wall);
    const at = async (p: Provider): Promise<string> => (await p.capacity!.prices({}))[0]!.at;
    const a = await make();
    expect(await at(a)).toBe('2023-01-01T00:00:00.000Z');
    wall += 5000; // 50 simulated minutes; the trace is 20 minutes long
    const b = await make(); // a later CLI run
    expect(await at(b)).toBe('2023-01-01T00:10:00.000Z');
    expect(await at(a)).toBe('2023-01-01T00:10:00.000Z');
    const c = await make({ speed: 60 }); // the user slowed the clock: time goes on from here
    wall += 1000;
    expect(await at(c)).toBe('2023-01-01T00:11:00.000Z');
  });

  it('finds the next unavailability across the end of the trace', () => {
    const m = new Market(parseSpotTrace(traceCsv(), 'trace.csv'));
    expect(m.span).toBe(20 * MIN);
    expect(m.firstUnavailable(0, T0, T0 + 60 * MIN)).toBe(T0 + 10 * MIN);
    expect(m.firstUnavailable(1, T0 + 6 * MIN, T0 + 60 * MIN)).toBe(T0 + 20 * MIN); // z2 is gone again at the replay's start
    expect(m.firstUnavailable(1, T0 + 6 * MIN, T0 + 19 * MIN)).toBeUndefined();
    expect(m.firstUnavailable(0, T0 + 12 * MIN, T0 + 13 * MIN)).toBe(T0 + 12 * MIN);
    expect(m.preemptionRate[0]).toBeCloseTo(1 / (10 / 60), 6); // one loss in ten available minutes
  });

  it('rejects a start outside the trace and an unknown zone', async () => {
    const { make } = setup();
    await expect(make({ start: '2024-01-01T00:00:00Z' })).rejects.toThrow(/outside the trace/);
    await expect(make({ zones: ['z9'] })).rejects.toThrow(/zone "z9" is not in the trace/);
  });
});
