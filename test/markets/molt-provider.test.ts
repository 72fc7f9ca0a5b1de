// The molt provider against the reference server over HTTP: prices, offers, bid → lease → renew →
// release, nodes, retries on injected 5xx / time-outs / dropped connections, no retry on 4xx, and
// the token kept out of logs and errors.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ProviderError } from '../../src/core/errors.js';
import { createProvider, silentLogger } from '../../src/providers/registry.js';
import type { Provider } from '../../src/providers/sdk.js';
import { startMoltServer, type MoltServer } from '../../providers/molt/reference-server.js';
import { createMoltProvider, type MoltConfig } from '../../providers/molt/index.js';
import { makeCtx } from './helpers.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const TOKEN = 'molt-secret-4f9a';
const T0 = Date.parse('2026-03-01T10:00:30Z');

describe('molt provider', () => {
  let molt: MoltServer;
  beforeAll(async () => {
    molt = await startMoltServer({ token: TOKEN, seed: 3, now: () => T0 });
  });
  afterAll(async () => {
    await molt.close();
  });
  afterEach(() => {
    molt.control.clearFaults();
    molt.control.setSpotPrice('A100', undefined);
  });

  function make(config: Partial<MoltConfig> = {}, env: Record<string, string> = { MOLT_TOKEN: TOKEN }) {
    const ctx = makeCtx({ env });
    const p = createMoltProvider({ url: molt.url, retryBaseMs: 5, ...config }, ctx);
    return { p, ctx, cap: p.capacity!, nodes: p.nodes! };
  }
  const count = (path: string) => molt.control.requests.filter((r) => r.path === path).length;

  it('quotes spot prices per GPU model and zone, and no on-demand', async () => {
    const { cap } = make();
    const q = await cap.prices({ gpuModel: 'A100' });
    expect(q.map((x) => `${x.gpuModel}/${x.zone}/${x.capacity}`).sort()).toEqual(['A100/molt-east-1/spot', 'A100/molt-west-1/spot']);
    expect(q[0]!.pricePerGpuHour).toBeLessThanOrEqual(q[1]!.pricePerGpuHour);
    expect(q.every((x) => x.provider === 'market' && x.available && x.preemptionRatePerHour === 0.05 && x.pricePerGpuHour > 0)).toBe(true);
    expect(await cap.prices({ gpuModel: 'A100', capacity: 'on-demand' })).toEqual([]);
    expect((await cap.prices({ zones: ['molt-west-1'] })).every((x) => x.zone === 'molt-west-1')).toBe(true);
  });

  it('lists offers with the filters passed to the API', async () => {
    const { cap } = make();
    const offers = await cap.offers!({ gpuModel: 'H100', minGpus: 4, maxPricePerGpuHour: 2.4 });
    expect(offers.length).toBeGreaterThan(0);
    for (const o of offers) expect(o).toMatchObject({ provider: 'market', gpuModel: 'H100', capacity: 'spot' });
    expect(offers.every((o) => o.pricePerGpuHour <= 2.4 && (o.maxGpus ?? 0) >= 4)).toBe(true);
  });

  it('bids on the cheapest fitting offer at spot + 5%, then renews, lists and releases the lease', async () => {
    molt.control.setSpotPrice('A100', 1.0);
    // Asking prices of offers born under the fixed price lie in 0.95..1.10; the bid is 1.05.
    molt.control.addOffer({ id: 'of-fixed-a', gpuModel: 'A100', minGpus: 2, maxGpus: 8, pricePerGpuHour: 0.97, zone: 'molt-east-1' });
    molt.control.addOffer({ id: 'of-fixed-b', gpuModel: 'A100', minGpus: 2, maxGpus: 8, pricePerGpuHour: 0.96, zone: 'molt-west-1' });
    const { cap, nodes, ctx } = make();
    const offers = await cap.offers!({ gpuModel: 'A100', minGpus: 4 });
    const expected = offers.filter((o) => o.minGpus <= 4 && (o.maxGpus ?? 0) >= 4 && o.pricePerGpuHour <= 1.05)[0]!;
    const lease = await cap.acquire({ pool: 'spot-a100', capacity: 'spot', gpuModel: 'A100', gpus: 4, durationHours: 2, idempotencyKey: 'apply-1/spot-a100/0', labels: { team: 'nlp' }, maxPricePerGpuHour: 2 });
    expect(lease).toMatchObject({ provider: 'market', pool: 'spot-a100', capacity: 'spot', gpuModel: 'A100', gpus: 4, state: 'active', pricePerHour: 4.2, node: lease.id });
    const server = molt.control.leases().find((l) => l.id === lease.id)!;
    expect(server).toMatchObject({ offerId: expected.id, pricePerGpuHour: 1.05, labels: { team: 'nlp', 'spotfleet.dev/fleet': 'research', 'spotfleet.dev/pool': 'spot-a100' } });

    // Same key, same lease.
    const again = await cap.acquire({ pool: 'spot-a100', capacity: 'spot', gpuModel: 'A100', gpus: 4, durationHours: 2, idempotencyKey: 'apply-1/spot-a100/0', labels: { team: 'nlp' } });
    expect(again.id).toBe(lease.id);
    expect(molt.control.leases().filter((l) => l.clientToken === 'apply-1/spot-a100/0')).toHaveLength(1);

    expect((await cap.leases()).map((l) => l.id)).toContain(lease.id);
    const listed = (await nodes.list()).find((n) => n.id === lease.id);
    expect(listed).toMatchObject({ provider: 'market', gpuModel: 'A100', gpus: 4, capacity: 'spot', state: 'ready', leaseId: lease.id, pool: 'spot-a100', pricePerHour: 4.2 });

    const renewed = await cap.renew!(lease.id, 6);
    expect(Date.parse(renewed.expiresAt!)).toBe(T0 + 6 * 3_600_000);

    await cap.release(lease.id);
    expect((await cap.leases()).map((l) => l.id)).not.toContain(lease.id);
    await cap.release(lease.id); // idempotent
    await cap.release('ls-never-existed'); // unknown is released too
    expect(JSON.stringify(ctx.logs)).not.toContain(TOKEN);
  });

  it('reports a preempting lease as a preemption notice with its deadline, and nothing before', async () => {
    molt.control.addOffer({ id: 'of-pre', gpuModel: 'V100', minGpus: 1, maxGpus: 2, pricePerGpuHour: 0.3, zone: 'molt-west-1' });
    const { cap, nodes, p } = make();
    const lease = await cap.acquire({ pool: 'spot-v100', capacity: 'spot', gpuModel: 'V100', gpus: 2, offerId: 'of-pre', idempotencyKey: 'pre-1', labels: {} });
    const node = (await nodes.list()).find((n) => n.id === lease.id)!;
    expect(await p.notices!.poll(node)).toEqual([]);
    molt.control.preempt(lease.id, 45_000);
    const [n, ...more] = await p.notices!.poll(node);
    expect(more).toEqual([]);
    expect(n).toMatchObject({ provider: 'market', node: lease.id, source: 'molt', kind: 'preemption', deadline: new Date(T0 + 45_000).toISOString() });
    expect((await p.notices!.poll(node))[0]!.id).toBe(n!.id);
    expect((await nodes.list()).find((x) => x.id === lease.id)!.state).toBe('draining');
    expect(await p.notices!.poll({ ...node, id: 'ls-unknown', leaseId: 'ls-unknown' })).toEqual([]);
    await cap.release(lease.id);
  });

  it('does not bid when the pool cap is below the spot price, and says why', async () => {
    molt.control.setSpotPrice('A100', 1.5);
    molt.control.addOffer({ id: 'of-cheap', gpuModel: 'A100', minGpus: 1, maxGpus: 8, pricePerGpuHour: 1.2, zone: 'molt-east-1' });
    const { cap } = make();
    const err = await cap.acquire({ pool: 'spot-a100', capacity: 'spot', gpuModel: 'A100', gpus: 1, maxPricePerGpuHour: 1.3, idempotencyKey: 'k-cap', labels: {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect((err as Error).message).toMatch(/provider "market".*no bid: the pool maxPricePerHour \$1\.3\/GPU-h is below the spot price \$1\.5/);
    molt.control.removeOffer('of-cheap');
  });

  it('refuses on-demand acquires: molt sells spot only', async () => {
    const { cap } = make();
    await expect(cap.acquire({ pool: 'od', capacity: 'on-demand', gpuModel: 'A100', gpus: 1, idempotencyKey: 'od', labels: {} })).rejects.toThrow(/spot capacity only/);
  });

  it('retries injected 500s with back-off and succeeds', async () => {
    const { cap, ctx } = make({ retries: 3 });
    const before = count('/v1/spot-prices');
    molt.control.failNext(2, { status: 500, path: '/v1/spot-prices' });
    expect((await cap.prices({ gpuModel: 'V100' })).length).toBe(2);
    expect(count('/v1/spot-prices') - before).toBe(3);
    expect(ctx.logs.filter((l) => l.msg === 'molt: retrying')).toHaveLength(2);
  });

  it('gives up after the retries with a ProviderError naming the provider and the path', async () => {
    const { cap } = make({ retries: 2 });
    const before = count('/v1/offers');
    molt.control.failNext(10, { status: 502, path: '/v1/offers' });
    const err = await cap.offers!({ gpuModel: 'A100' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect((err as ProviderError).provider).toBe('market');
    expect((err as Error).message).toBe('provider "market": molt GET /v1/offers: 502 injected_fault: injected 502 (gave up after 3 attempts)');
    expect(count('/v1/offers') - before).toBe(3);
  });

  it('retries a time-out and a dropped connection, then succeeds', async () => {
    const { cap } = make({ retries: 3, timeoutMs: 200 });
    const before = count('/v1/spot-prices');
    molt.control.delayNext(1, 1000, { path: '/v1/spot-prices' });
    molt.control.dropNext(1, { path: '/v1/spot-prices' });
    expect((await cap.prices({ gpuModel: 'H100' })).length).toBe(2);
    expect(count('/v1/spot-prices') - before).toBe(3);
  });

  it('ends repeated time-outs in a clear error', async () => {
    const { cap } = make({ retries: 1, timeoutMs: 100 });
    molt.control.delayNext(2, 600, { path: '/v1/leases' });
    await expect(cap.leases()).rejects.toThrow('provider "market": molt GET /v1/leases: timed out after 100 ms (gave up after 2 attempts)');
  });

  it('never retries a 4xx: a wrong token is one request and a 401 error', async () => {
    const { cap } = make({ retries: 5 }, { MOLT_TOKEN: 'not-the-token' });
    const before = count('/v1/spot-prices');
    const err = await cap.prices({}).catch((e: unknown) => e);
    expect((err as Error).message).toBe('provider "market": molt GET /v1/spot-prices: 401 unauthorized: missing or invalid bearer token');
    expect(count('/v1/spot-prices') - before).toBe(1);
    expect((err as Error).message).not.toContain('not-the-token');
  });

  it('a bid whose answer is lost is retried with the same clientToken and buys once', async () => {
    molt.control.addOffer({ id: 'of-retry', gpuModel: 'V100', minGpus: 1, maxGpus: 1, pricePerGpuHour: 0.1, zone: 'molt-east-1' });
    const { cap } = make({ retries: 3, timeoutMs: 150 });
    molt.control.delayNext(1, 400, { path: '/v1/bids' });
    molt.control.failNext(1, { status: 503, path: '/v1/bids' });
    const lease = await cap.acquire({ pool: 'spot-v100', capacity: 'spot', gpuModel: 'V100', gpus: 1, offerId: 'of-retry', bidPerGpuHour: 0.2, idempotencyKey: 'lost-answer', labels: {} });
    await new Promise((r) => setTimeout(r, 400)); // let the delayed original finish on the server
    expect(molt.control.leases().filter((l) => l.clientToken === 'lost-answer').map((l) => l.id)).toEqual([lease.id]);
  });

  it('names the missing token variable instead of calling without one', async () => {
    const { cap } = make({ tokenEnv: 'MY_MOLT' }, {});
    await expect(cap.prices({})).rejects.toThrow('provider "market": environment variable MY_MOLT is not set (it holds the molt API token)');
  });

  it('loads through the registry with its config schema (defaults filled, unknown keys refused)', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'molt-reg-'));
    try {
      const opts = { fleet: 'research', specDir: stateDir, stateDir, log: silentLogger, env: { MOLT_TOKEN: TOKEN } };
      const p: Provider = await createProvider({ name: 'market', type: 'molt', config: { url: molt.url } }, opts);
      expect(p.type).toBe('molt');
      expect((await p.capacity!.prices({ gpuModel: 'A100' })).length).toBe(2);
      await expect(createProvider({ name: 'market', type: 'molt', config: { url: molt.url, token: 'x' } }, opts)).rejects.toThrow(/unknown key "token"/);
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
    }
  });
});
