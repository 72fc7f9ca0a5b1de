// The molt reference server as an HTTP server: every endpoint, auth, idempotent bids, offers that
// come and go, lease expiry and preemption, fault injection.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMoltServer, type MoltLease, type MoltServer } from '../../providers/molt/reference-server.js';
import { parseMoltMainArgs, runMoltMain } from '../../providers/molt/reference-main.js';
import { moltFetch } from './helpers.js';

const TOKEN = 'test-token-123';
const T0 = Date.parse('2026-03-01T10:00:30Z');
const HOUR = 3_600_000;

describe('molt reference server', () => {
  let molt: MoltServer;
  const api = (method: string, path: string, body?: unknown) => moltFetch(molt.url, TOKEN, method, path, body);

  beforeAll(async () => {
    molt = await startMoltServer({ token: TOKEN, seed: 42, now: () => T0 });
  });
  afterAll(async () => {
    await molt.close();
  });

  it('refuses requests without the right bearer token (401, error envelope)', async () => {
    for (const token of [undefined, 'wrong', `${TOKEN}x`]) {
      const r = await moltFetch(molt.url, token, 'GET', '/v1/offers');
      expect(r.status).toBe(401);
      expect(r.body).toEqual({ error: { code: 'unauthorized', message: expect.any(String) } });
    }
  });

  it('quotes spot prices by GPU model, with on-demand reference and offer counts', async () => {
    const r = await api('GET', '/v1/spot-prices?gpuModel=A100');
    expect(r.status).toBe(200);
    expect(r.body.prices.map((p) => `${p.gpuModel}/${p.zone}`)).toEqual(['A100/molt-east-1', 'A100/molt-west-1']);
    for (const p of r.body.prices) {
      expect(p.pricePerGpuHour).toBeGreaterThanOrEqual(1.1 * 0.85);
      expect(p.pricePerGpuHour).toBeLessThanOrEqual(1.1 * 1.15);
      expect(p.onDemandPricePerGpuHour).toBe(3);
      expect(p.offers).toBeGreaterThan(0);
      expect(p.at).toBe(new Date(T0).toISOString());
    }
    const all = await api('GET', '/v1/spot-prices');
    expect(new Set(all.body.prices.map((p) => p.gpuModel))).toEqual(new Set(['A100', 'H100', 'V100']));
  });

  it('lists offers filtered by model, GPUs and price, cheapest first', async () => {
    const all = (await api('GET', '/v1/offers?gpuModel=A100')).body.offers;
    expect(all.length).toBeGreaterThan(0);
    for (const o of all) {
      expect(Object.keys(o).sort()).toEqual(['expiresAt', 'gpuModel', 'id', 'maxGpus', 'minGpus', 'pricePerGpuHour', 'zone']);
      expect(o.gpuModel).toBe('A100');
      expect(o.minGpus).toBeLessThanOrEqual(o.maxGpus);
      expect(Date.parse(o.expiresAt)).toBeGreaterThan(T0);
    }
    expect(all.map((o) => o.pricePerGpuHour)).toEqual([...all.map((o) => o.pricePerGpuHour)].sort((a, b) => a - b));
    const cap = all[Math.floor(all.length / 2)]!.pricePerGpuHour;
    const cheap = (await api('GET', `/v1/offers?gpuModel=A100&maxPricePerHour=${cap}&minGpus=4`)).body.offers;
    expect(cheap.every((o) => o.pricePerGpuHour <= cap && o.maxGpus >= 4)).toBe(true);
    expect(cheap.length).toBe(all.filter((o) => o.pricePerGpuHour <= cap && o.maxGpus >= 4).length);
    expect((await api('GET', '/v1/offers?minGpus=abc')).status).toBe(400);
  });

  it('is deterministic for a seed: the same market from a second server', async () => {
    const twin = await startMoltServer({ token: TOKEN, seed: 42, now: () => T0 });
    try {
      const a = (await api('GET', '/v1/spot-prices')).body;
      const b = (await moltFetch(twin.url, TOKEN, 'GET', '/v1/spot-prices')).body;
      expect(b).toEqual(a);
    } finally {
      await twin.close();
    }
  });

  it('turns an accepted bid into a lease, idempotently by clientToken', async () => {
    const offer = (await api('GET', '/v1/offers?gpuModel=H100')).body.offers[0]!;
    const body = { offerId: offer.id, pricePerGpuHour: offer.pricePerGpuHour, gpus: offer.minGpus, durationHours: 2, clientToken: 'bid-1', labels: { team: 'nlp' } };
    const first = await api('POST', '/v1/bids', body);
    expect(first.status).toBe(201);
    const lease = first.body.lease;
    expect(lease).toMatchObject({ offerId: offer.id, gpuModel: 'H100', gpus: offer.minGpus, status: 'active', clientToken: 'bid-1', labels: { team: 'nlp' } });
    expect(lease.pricePerHour).toBeCloseTo(offer.pricePerGpuHour * offer.minGpus, 4);
    expect(Date.parse(lease.expiresAt) - Date.parse(lease.startsAt)).toBe(2 * HOUR);
    // Replay: the same lease, not a second one.
    const again = await api('POST', '/v1/bids', body);
    expect(again.status).toBe(200);
    expect(again.body.lease.id).toBe(lease.id);
    // The same token for a different bid is a conflict.
    const other = await api('POST', '/v1/bids', { ...body, durationHours: 3 });
    expect(other.status).toBe(409);
    expect(other.body.error.code).toBe('idempotency_conflict');
    // The offer is taken: another client finds it gone.
    const late = await api('POST', '/v1/bids', { ...body, clientToken: 'bid-2' });
    expect(late).toMatchObject({ status: 409, body: { error: { code: 'offer_gone' } } });
    expect((await api('GET', '/v1/offers?gpuModel=H100')).body.offers.map((o) => o.id)).not.toContain(offer.id);
    expect((await api('GET', `/v1/leases/${lease.id}`)).body.lease.id).toBe(lease.id);
    expect((await api('GET', '/v1/leases')).body.leases.filter((l) => l.clientToken === 'bid-1')).toHaveLength(1);
  });

  it('refuses a bid below the asking price (409 outbid) and invalid bids (422)', async () => {
    const offer = (await api('GET', '/v1/offers?gpuModel=V100')).body.offers[0]!;
    const base = { offerId: offer.id, pricePerGpuHour: offer.pricePerGpuHour, gpus: offer.minGpus, durationHours: 1, clientToken: 'low-1' };
    const low = await api('POST', '/v1/bids', { ...base, pricePerGpuHour: offer.pricePerGpuHour - 0.01 });
    expect(low).toMatchObject({ status: 409, body: { error: { code: 'outbid' } } });
    expect(low.body.error.message).toContain(String(offer.pricePerGpuHour));
    expect((await api('POST', '/v1/bids', { ...base, gpus: offer.maxGpus + 1 })).status).toBe(422);
    expect((await api('POST', '/v1/bids', { ...base, durationHours: 0 })).status).toBe(422);
    expect((await api('POST', '/v1/bids', { ...base, clientToken: undefined })).status).toBe(422);
    expect((await api('POST', '/v1/bids', '{not json')).status).toBe(400);
    expect((await api('POST', '/v1/bids', { ...base, offerId: 'of-none' })).body.error.code).toBe('offer_gone');
    // After the refusals the offer is still there and the same token works.
    expect((await api('POST', '/v1/bids', base)).status).toBe(201);
  });

  it('answers 404 and 405 in the error envelope', async () => {
    expect(await api('GET', '/v1/leases/ls-nope')).toMatchObject({ status: 404, body: { error: { code: 'lease_not_found' } } });
    expect(await api('GET', '/v1/nothing')).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } });
    expect(await api('PUT', '/v1/offers')).toMatchObject({ status: 405, body: { error: { code: 'method_not_allowed' } } });
  });
});

describe('molt reference server over time', () => {
  let molt: MoltServer;
  let clock = T0;
  const api = (method: string, path: string, body?: unknown) => moltFetch(molt.url, TOKEN, method, path, body);
  beforeAll(async () => {
    molt = await startMoltServer({ token: TOKEN, seed: 7, now: () => clock, offerIntervalMs: 60_000, offerTtlMs: 300_000, preemptNoticeMs: 30_000 });
  });
  afterAll(async () => {
    await molt.close();
  });

  async function bidCheapest(model: string, hours: number, token: string): Promise<MoltLease> {
    const offer = (await api('GET', `/v1/offers?gpuModel=${model}`)).body.offers[0]!;
    const r = await api('POST', '/v1/bids', { offerId: offer.id, pricePerGpuHour: offer.pricePerGpuHour, gpus: offer.minGpus, durationHours: hours, clientToken: token });
    expect(r.status).toBe(201);
    return r.body.lease;
  }

  it('offers come and go as time passes', async () => {
    const before = new Set<string>((await api('GET', '/v1/offers')).body.offers.map((o) => o.id));
    clock += 10 * 60_000; // two offer lifetimes later
    const after = new Set<string>((await api('GET', '/v1/offers')).body.offers.map((o) => o.id));
    expect(after.size).toBeGreaterThan(0);
    expect([...before].filter((id) => after.has(id))).toEqual([]);
    // Every listed offer is open now.
    for (const o of (await api('GET', '/v1/offers')).body.offers) expect(Date.parse(o.expiresAt)).toBeGreaterThan(clock);
  });

  it('expires a lease at its end, renews before, and releases idempotently', async () => {
    const lease = await bidCheapest('A100', 1, 'exp-1');
    clock += 30 * 60_000;
    // Renew for 2 h from now: the expiry moves to now + 2 h; a retried renew lands on the same time.
    const renewed = await api('POST', `/v1/leases/${lease.id}/renew`, { durationHours: 2 });
    expect(renewed.status).toBe(200);
    expect(renewed.body.lease.expiresAt).toBe(new Date(clock + 2 * HOUR).toISOString());
    const retried = await api('POST', `/v1/leases/${lease.id}/renew`, { durationHours: 2 });
    expect(retried.body.lease.expiresAt).toBe(renewed.body.lease.expiresAt);
    // A shorter renew never shortens it.
    expect((await api('POST', `/v1/leases/${lease.id}/renew`, { durationHours: 0.5 })).body.lease.expiresAt).toBe(renewed.body.lease.expiresAt);
    clock += 2 * HOUR;
    const gone = (await api('GET', `/v1/leases/${lease.id}`)).body.lease;
    expect(gone).toMatchObject({ status: 'expired', endReason: 'expired' });
    expect(await api('POST', `/v1/leases/${lease.id}/renew`, { durationHours: 1 })).toMatchObject({ status: 409, body: { error: { code: 'lease_not_renewable' } } });

    const other = await bidCheapest('A100', 4, 'rel-1');
    const del = await api('DELETE', `/v1/leases/${other.id}`);
    expect(del.body.lease).toMatchObject({ status: 'released', endReason: 'released' });
    expect((await api('DELETE', `/v1/leases/${other.id}`)).status).toBe(200);
    expect((await api('GET', '/v1/leases?status=active')).body.leases.map((l) => l.id)).not.toContain(other.id);
  });

  it('preempts a lease with a notice, then ends it', async () => {
    const lease = await bidCheapest('V100', 8, 'pre-1');
    const p = molt.control.preempt(lease.id);
    expect(p.status).toBe('preempting');
    const during = (await api('GET', `/v1/leases/${lease.id}`)).body.lease;
    expect(during).toMatchObject({ status: 'preempting', preemptAt: new Date(clock + 30_000).toISOString() });
    clock += 31_000;
    expect((await api('GET', `/v1/leases/${lease.id}`)).body.lease).toMatchObject({ status: 'expired', endReason: 'preempted' });
  });

  it('provisions a lease as pending first when configured', async () => {
    const slow = await startMoltServer({ token: TOKEN, seed: 7, now: () => clock, provisionMs: 60_000 });
    try {
      const offer = (await moltFetch(slow.url, TOKEN, 'GET', '/v1/offers?gpuModel=A100')).body.offers[0]!;
      const r = await moltFetch(slow.url, TOKEN, 'POST', '/v1/bids', { offerId: offer.id, pricePerGpuHour: offer.pricePerGpuHour, gpus: offer.minGpus, durationHours: 1, clientToken: 'p' });
      expect(r.body.lease.status).toBe('pending');
      slow.control.advance(60_000);
      expect((await moltFetch(slow.url, TOKEN, 'GET', `/v1/leases/${r.body.lease.id}`)).body.lease.status).toBe('active');
    } finally {
      await slow.close();
    }
  });

  it('injects faults: 5xx, dropped connections, and then answers normally', async () => {
    molt.control.failNext(1, { status: 503 });
    expect(await api('GET', '/v1/offers')).toMatchObject({ status: 503, body: { error: { code: 'injected_fault' } } });
    molt.control.dropNext(1);
    await expect(api('GET', '/v1/offers')).rejects.toThrow();
    expect((await api('GET', '/v1/offers')).status).toBe(200);
  });
});

describe('molt reference server: bids that carry a bootstrap script', () => {
  let molt: MoltServer;
  const booted: { lease: string; script: string }[] = [];
  const ended: string[] = [];
  let refuse = false;
  const api = (method: string, path: string, body?: unknown) => moltFetch(molt.url, TOKEN, method, path, body);
  beforeAll(async () => {
    molt = await startMoltServer({
      token: TOKEN,
      generate: false,
      market: [{ gpuModel: 'V100', spotPrice: 1, onDemandPrice: 3, zones: ['z1'] }],
      offers: [1, 2, 3, 4].map((i) => ({ id: `of-${i}`, gpuModel: 'V100', minGpus: 1, maxGpus: 2, pricePerGpuHour: 1, zone: 'z1' })),
      boot: async (lease, script) => {
        booted.push({ lease: lease.id, script });
        if (refuse) throw new Error('no machine for this image');
        return { address: '10.9.0.7', port: 2222 };
      },
      onEnd: (lease) => {
        ended.push(lease.id);
      },
    });
  });
  afterAll(async () => {
    await molt.close();
  });
  const bid = (offerId: string, clientToken: string, bootstrap?: unknown) => api('POST', '/v1/bids', { offerId, pricePerGpuHour: 1, gpus: 1, durationHours: 1, clientToken, ...(bootstrap !== undefined ? { bootstrap } : {}) });

  it('provisions the machine: the lease gets its SSH host once the seller answers, and loses it when released', async () => {
    const r = await bid('of-1', 'boot-1', '#!/bin/sh\necho hi\n');
    expect(r.status).toBe(201);
    const id = r.body.lease.id;
    expect(booted).toEqual([{ lease: id, script: '#!/bin/sh\necho hi\n' }]);
    const got = (await api('GET', `/v1/leases/${id}`)).body.lease;
    expect(got.host).toEqual({ address: '10.9.0.7', port: 2222 });
    // The same token and the same script answer the same lease; another script is another bid.
    expect((await bid('of-1', 'boot-1', '#!/bin/sh\necho hi\n')).status).toBe(200);
    expect((await bid('of-1', 'boot-1', '#!/bin/sh\necho other\n'))).toMatchObject({ status: 409, body: { error: { code: 'idempotency_conflict' } } });
    expect(booted).toHaveLength(1);
    const del = await api('DELETE', `/v1/leases/${id}`);
    expect(del.body.lease.host).toBeUndefined();
    expect(ended).toEqual([id]);
  });

  it('a machine the seller cannot provision ends the lease as failed, with why', async () => {
    refuse = true;
    try {
      const r = await bid('of-2', 'boot-2', '#!/bin/sh\n');
      expect(r.status).toBe(201);
      await new Promise((res) => setTimeout(res, 20));
      const got = (await api('GET', `/v1/leases/${r.body.lease.id}`)).body.lease;
      expect(got).toMatchObject({ status: 'expired', endReason: 'failed', endMessage: 'the machine could not be provisioned: no machine for this image' });
      expect(got.host).toBeUndefined();
    } finally {
      refuse = false;
    }
  });

  it('refuses a bootstrap that is not a script (422), and provisions nothing for a bid without one', async () => {
    const n = booted.length;
    expect(await bid('of-3', 'boot-3', 'echo no shebang')).toMatchObject({ status: 422, body: { error: { code: 'invalid_request' } } });
    expect(await bid('of-3', 'boot-3', 42)).toMatchObject({ status: 422 });
    const plain = await bid('of-3', 'boot-3');
    expect(plain.status).toBe(201);
    expect(plain.body.lease.host).toBeUndefined();
    expect(booted).toHaveLength(n);
  });
});

describe('molt-main arguments', () => {
  it('parses the documented flags and refuses unknown ones', () => {
    expect(parseMoltMainArgs(['--port', '8089', '--token-env', 'MY_TOKEN'])).toMatchObject({ port: 8089, tokenEnv: 'MY_TOKEN', host: '127.0.0.1' });
    expect(() => parseMoltMainArgs(['--token', 'x'])).toThrow(/unknown argument/);
    expect(() => parseMoltMainArgs(['--port', 'abc'])).toThrow(/non-negative integer/);
  });

  it('takes the token from the named environment variable, and refuses to start without it', async () => {
    const o = parseMoltMainArgs(['--port', '0', '--token-env', 'MY_MOLT_TOKEN', '--http-control']);
    await expect(runMoltMain(o, {})).rejects.toThrow('environment variable MY_MOLT_TOKEN is not set');
    const server = await runMoltMain(o, { MY_MOLT_TOKEN: 'from-env' });
    try {
      expect((await moltFetch(server.url, 'from-env', 'GET', '/v1/spot-prices')).status).toBe(200);
      expect((await moltFetch(server.url, 'other', 'GET', '/v1/spot-prices')).status).toBe(401);
      // The shell control routes: move the clock two hours on.
      const before = server.control.now();
      expect((await moltFetch(server.url, 'from-env', 'POST', '/_control/advance', { ms: 7_200_000 })).status).toBe(200);
      expect(server.control.now() - before).toBeGreaterThanOrEqual(7_200_000);
    } finally {
      await server.close();
    }
  });
});
