// The molt reference server: a real HTTP server that implements the molt GPU marketplace API
// (docs/molt-api.md) in memory. Offers come and go over time from a seeded generator, leases
// expire, and tests drive preemption, time and faults (5xx, slow answers, dropped connections)
// through `control`. Used by the tests, by examples/molt/ and by `reference-main.ts`.
// Shipped in the package on purpose, as the reference implementation of the molt API (unlike the
// cloud fakes in test/fakes/); the molt provider never imports it.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import type { ApiLease, ApiOffer } from './api.js';

const HOUR = 3_600_000;

/** One GPU model the generated market trades. Prices are USD per GPU-hour. */
export interface MoltMarketModel {
  gpuModel: string;
  /** Mean spot price; each tick moves it within ±`volatility`. */
  spotPrice: number;
  onDemandPrice: number;
  zones: string[];
  /** Fraction the spot price moves around its mean (default 0.15). */
  volatility?: number;
  /** Largest offer in GPUs (default 8). */
  maxGpus?: number;
  /** Expected preemptions per lease-hour, reported with the price (default 0.05). */
  preemptionRatePerHour?: number;
}

/** An offer as the API returns it: the one wire type the client reads too (docs/molt-api.md). */
export type MoltOffer = ApiOffer;

export type MoltLeaseStatus = ApiLease['status'];

/** A lease as the server holds and returns it: the API's lease (api.ts), with what this server always sets. */
export interface MoltLease extends ApiLease {
  endReason?: 'expired' | 'preempted' | 'released' | 'failed';
  labels: Record<string, string>;
  host?: { address: string; port: number };
}

export interface MoltServerOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (any free port). */
  port?: number;
  /** Bearer token every request must carry. */
  token: string;
  /** Seed of the offer and price generator (default 1). Same seed + same clock = same market. */
  seed?: number;
  /** Extra fixed offers (expiresAt absent = they never expire). */
  offers?: (Omit<MoltOffer, 'expiresAt'> & { expiresAt?: string })[];
  /** Generate offers from `market` (default true). */
  generate?: boolean;
  /** The generated market (default: A100, H100, V100 in two zones). */
  market?: MoltMarketModel[];
  /** A new batch of offers every this many ms (default 60 s). */
  offerIntervalMs?: number;
  /** Each generated offer lives this long (default 5 min). */
  offerTtlMs?: number;
  /** Offers per model and zone per interval (default 2). */
  offersPerInterval?: number;
  /** A lease stays `pending` this long after the bid (default 0: active at once). */
  provisionMs?: number;
  /** Preemption notice: a preempted lease stays `preempting` this long (default 30 s). */
  preemptNoticeMs?: number;
  /** Wall clock (ms); `control.advance` adds to it. Default Date.now. */
  now?: () => number;
  /** Serve `/_control/*` over HTTP (same token) for shell use; default false. */
  httpControl?: boolean;
  /**
   * Provisions the machine of a bid that carried a `bootstrap` script (the seller's side; the test
   * lab makes it a node): gets the lease and the script, answers with the SSH address. Until it
   * answers the lease has no `host`; a rejection ends the lease (`endReason: failed`, its message
   * in `endMessage`).
   */
  boot?: (lease: MoltLease, bootstrap: string) => Promise<{ address: string; port?: number }>;
  /** Called once when a lease whose machine was provisioned ends (released, expired, preempted). */
  onEnd?: (lease: MoltLease) => void | Promise<void>;
}

/** One request the server saw, for tests that count retries. */
export interface MoltRequestRecord {
  method: string;
  path: string;
  status: number;
}

type Fault = { kind: 'status'; status: number; path?: string } | { kind: 'delay'; ms: number; path?: string } | { kind: 'drop'; path?: string };

/** Test and shell controls of a running reference server. */
export interface MoltControl {
  /** Moves the server clock forward (offers expire, leases expire, new offers appear). */
  advance(ms: number): void;
  now(): number;
  /** Starts preempting a lease: `preempting` for `noticeMs`, then `expired` (endReason preempted). */
  preempt(leaseId: string, noticeMs?: number): MoltLease;
  /** Fixes the spot price of a model (all zones, or one); `undefined` returns to the generator. */
  setSpotPrice(gpuModel: string, price: number | undefined, zone?: string): void;
  addOffer(offer: Omit<MoltOffer, 'expiresAt'> & { expiresAt?: string }): void;
  removeOffer(id: string): void;
  /** The next `count` requests (to paths starting with `path`, when given) answer `status` (default 500). */
  failNext(count: number, opts?: { status?: number; path?: string }): void;
  /** The next `count` requests wait `ms` before they are handled. */
  delayNext(count: number, ms: number, opts?: { path?: string }): void;
  /** The next `count` requests get their connection closed with no answer. */
  dropNext(count: number, opts?: { path?: string }): void;
  /** Clears pending faults. */
  clearFaults(): void;
  /** Every request so far, oldest first. */
  readonly requests: readonly MoltRequestRecord[];
  leases(): MoltLease[];
  offers(): MoltOffer[];
}

export interface MoltServer {
  url: string;
  port: number;
  close(): Promise<void>;
  control: MoltControl;
}

/** The default generated market. */
export const DEFAULT_MOLT_MARKET: MoltMarketModel[] = [
  { gpuModel: 'A100', spotPrice: 1.1, onDemandPrice: 3.0, zones: ['molt-east-1', 'molt-west-1'] },
  { gpuModel: 'H100', spotPrice: 2.2, onDemandPrice: 5.5, zones: ['molt-east-1', 'molt-west-1'] },
  { gpuModel: 'V100', spotPrice: 0.75, onDemandPrice: 2.48, zones: ['molt-east-1', 'molt-west-1'] },
];

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** A small deterministic hash → [0, 1): the generator is a function of (seed, key), so it needs no state. */
function rand(seed: number, ...key: (string | number)[]): number {
  let h = (2166136261 ^ seed) >>> 0;
  for (const part of key.join('|')) {
    h ^= part.charCodeAt(0);
    h = Math.imul(h, 16777619) >>> 0;
  }
  // xorshift finaliser for better low bits
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return (h >>> 0) / 4294967296;
}

function round4(n: number): number {
  return Math.round(n * 10_000) / 10_000;
}

const iso = (ms: number): string => new Date(ms).toISOString();

/**
 * Starts the molt reference server on `host:port` (default 127.0.0.1, any free port).
 * @example
 * const molt = await startMoltServer({ token: 'secret', seed: 7 });
 * // fetch(`${molt.url}/v1/offers?gpuModel=A100`, { headers: { authorization: 'Bearer secret' } })
 * await molt.close();
 */
export async function startMoltServer(opts: MoltServerOptions): Promise<MoltServer> {
  const seed = opts.seed ?? 1;
  const market = opts.market ?? DEFAULT_MOLT_MARKET;
  const generate = opts.generate ?? true;
  const interval = opts.offerIntervalMs ?? 60_000;
  const ttl = opts.offerTtlMs ?? 5 * 60_000;
  const perInterval = opts.offersPerInterval ?? 2;
  const provisionMs = opts.provisionMs ?? 0;
  const defaultNoticeMs = opts.preemptNoticeMs ?? 30_000;
  const baseNow = opts.now ?? Date.now;
  let offset = 0;
  const now = (): number => baseNow() + offset;

  const fixedOffers = new Map<string, MoltOffer & { never: boolean }>();
  for (const o of opts.offers ?? []) fixedOffers.set(o.id, { ...o, expiresAt: o.expiresAt ?? iso(8.64e15), never: o.expiresAt === undefined });
  /** Offers taken by a bid or removed by control: they never come back. */
  const gone = new Set<string>();
  const priceOverride = new Map<string, number>();
  const leases = new Map<string, MoltLease>();
  const byToken = new Map<string, { leaseId: string; fingerprint: string }>();
  /** Leases whose machine the `boot` hook provisioned (and that have not ended yet). */
  const provisioned = new Set<string>();
  const faults: Fault[] = [];
  const requests: MoltRequestRecord[] = [];
  let leaseSeq = 0;
  const tokenBuf = Buffer.from(opts.token);

  function spotPrice(m: MoltMarketModel, zone: string, t: number): number {
    const o = priceOverride.get(`${m.gpuModel}|${zone}`) ?? priceOverride.get(`${m.gpuModel}|*`);
    if (o !== undefined) return o;
    const tick = Math.floor(t / interval);
    const vol = m.volatility ?? 0.15;
    return round4(m.spotPrice * (1 + vol * (2 * rand(seed, 'price', m.gpuModel, zone, tick) - 1)));
  }

  /** Generated offers open at time t: from the ticks whose offers have not yet expired. */
  function generatedOffers(t: number): MoltOffer[] {
    if (!generate) return [];
    const out: MoltOffer[] = [];
    const last = Math.floor(t / interval);
    const first = Math.floor((t - ttl) / interval);
    for (let tick = Math.max(first, 0); tick <= last; tick++) {
      const born = tick * interval;
      // Each offer's lifetime varies (50%..100% of ttl), so offers do not all vanish together.
      for (const m of market) {
        for (const zone of m.zones) {
          for (let i = 0; i < perInterval; i++) {
            const id = `of-${m.gpuModel.toLowerCase()}-${zone}-${tick}-${i}`;
            if (gone.has(id)) continue;
            const life = ttl * (0.5 + 0.5 * rand(seed, 'life', id));
            const expires = born + life;
            if (t < born || t >= expires) continue;
            const maxGpus = m.maxGpus ?? 8;
            const sizes = [1, 2, 4, 8].filter((s) => s <= maxGpus);
            const max = sizes[Math.floor(rand(seed, 'max', id) * sizes.length)] ?? maxGpus;
            const minChoices = sizes.filter((s) => s <= max);
            const min = minChoices[Math.floor(rand(seed, 'min', id) * minChoices.length)] ?? 1;
            const ask = round4(spotPrice(m, zone, born) * (0.95 + 0.15 * rand(seed, 'ask', id)));
            out.push({ id, gpuModel: m.gpuModel, minGpus: min, maxGpus: max, pricePerGpuHour: ask, zone, expiresAt: iso(expires) });
          }
        }
      }
    }
    return out;
  }

  function openOffers(t: number): MoltOffer[] {
    const fixed = [...fixedOffers.values()]
      .filter((o) => !gone.has(o.id) && (o.never || Date.parse(o.expiresAt) > t))
      .map(({ never: _n, ...o }) => o);
    return [...fixed, ...generatedOffers(t)].sort((a, b) => a.pricePerGpuHour - b.pricePerGpuHour || a.id.localeCompare(b.id));
  }

  /** Brings a lease's status up to date with the clock (leases change lazily, on read). */
  function settle(l: MoltLease, t: number): MoltLease {
    if (l.status === 'pending' && Date.parse(l.startsAt) <= t) l.status = 'active';
    if (l.status === 'preempting' && l.preemptAt !== undefined && Date.parse(l.preemptAt) <= t) {
      l.status = 'expired';
      l.endReason = 'preempted';
      l.endedAt = l.preemptAt;
    }
    if ((l.status === 'active' || l.status === 'pending') && Date.parse(l.expiresAt) <= t) {
      l.status = 'expired';
      l.endReason = 'expired';
      l.endedAt = l.expiresAt;
    }
    if (l.status === 'expired') ended(l);
    return l;
  }

  function getLease(id: string): MoltLease {
    const l = leases.get(id);
    if (!l) throw new HttpError(404, 'lease_not_found', `no lease "${id}"`);
    return settle(l, now());
  }

  function num(v: unknown, field: string, { min, integer }: { min: number; integer?: boolean }): number {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || (integer === true && !Number.isInteger(v))) {
      throw new HttpError(422, 'invalid_request', `${field} must be ${integer === true ? 'an integer' : 'a number'} >= ${min}`);
    }
    return v;
  }

  function queryNumber(q: URLSearchParams, name: string): number | undefined {
    const v = q.get(name);
    if (v === null || v === '') return undefined;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new HttpError(400, 'bad_request', `query parameter ${name} must be a non-negative number`);
    return n;
  }

  function bid(body: Record<string, unknown>): { status: number; lease: MoltLease } {
    const offerId = body.offerId;
    const clientToken = body.clientToken;
    if (typeof offerId !== 'string' || offerId === '') throw new HttpError(422, 'invalid_request', 'offerId must be a non-empty string');
    if (typeof clientToken !== 'string' || clientToken === '' || clientToken.length > 128) {
      throw new HttpError(422, 'invalid_request', 'clientToken must be a string of 1 to 128 characters');
    }
    const price = num(body.pricePerGpuHour, 'pricePerGpuHour', { min: 0 });
    const gpus = num(body.gpus, 'gpus', { min: 1, integer: true });
    const hours = num(body.durationHours, 'durationHours', { min: 0 });
    if (hours <= 0) throw new HttpError(422, 'invalid_request', 'durationHours must be > 0');
    const labels: Record<string, string> = {};
    if (body.labels !== undefined) {
      if (typeof body.labels !== 'object' || body.labels === null || Array.isArray(body.labels)) throw new HttpError(422, 'invalid_request', 'labels must be an object of strings');
      for (const [k, v] of Object.entries(body.labels)) {
        if (typeof v !== 'string') throw new HttpError(422, 'invalid_request', `labels.${k} must be a string`);
        labels[k] = v;
      }
    }
    let bootstrap: string | undefined;
    if (body.bootstrap !== undefined) {
      if (typeof body.bootstrap !== 'string' || !body.bootstrap.startsWith('#!') || body.bootstrap.length > 65_536) throw new HttpError(422, 'invalid_request', 'bootstrap must be a script (starting with #!) of at most 64 KiB');
      bootstrap = body.bootstrap;
    }
    const fingerprint = JSON.stringify([offerId, price, gpus, hours, bootstrap ?? null]);
    const seen = byToken.get(clientToken);
    if (seen) {
      if (seen.fingerprint !== fingerprint) {
        throw new HttpError(409, 'idempotency_conflict', `clientToken "${clientToken}" was already used for a different bid (lease ${seen.leaseId})`);
      }
      return { status: 200, lease: getLease(seen.leaseId) };
    }
    const t = now();
    const offer = openOffers(t).find((o) => o.id === offerId);
    if (!offer) throw new HttpError(409, 'offer_gone', `offer "${offerId}" is no longer available (taken or expired)`);
    if (gpus < offer.minGpus || gpus > offer.maxGpus) {
      throw new HttpError(422, 'invalid_request', `offer "${offerId}" sells ${offer.minGpus} to ${offer.maxGpus} GPUs, not ${gpus}`);
    }
    if (price < offer.pricePerGpuHour) {
      throw new HttpError(409, 'outbid', `bid $${price}/GPU-h is below the offer's asking price $${offer.pricePerGpuHour}/GPU-h`);
    }
    // An accepted bid takes the whole offer: a second bid on it finds it gone.
    gone.add(offer.id);
    leaseSeq++;
    const id = `ls-${String(leaseSeq).padStart(6, '0')}`;
    const startsAt = t + provisionMs;
    const lease: MoltLease = {
      id,
      offerId,
      gpuModel: offer.gpuModel,
      gpus,
      zone: offer.zone,
      pricePerGpuHour: price,
      pricePerHour: round4(price * gpus),
      status: provisionMs > 0 ? 'pending' : 'active',
      createdAt: iso(t),
      startsAt: iso(startsAt),
      expiresAt: iso(startsAt + hours * HOUR),
      clientToken,
      labels,
    };
    leases.set(id, lease);
    byToken.set(clientToken, { leaseId: id, fingerprint });
    if (bootstrap !== undefined && opts.boot) {
      provisioned.add(id);
      opts.boot({ ...lease }, bootstrap).then(
        (h) => {
          if (lease.status === 'released' || lease.status === 'expired') return;
          lease.host = { address: h.address, port: h.port ?? 22 };
        },
        (e: unknown) => {
          if (lease.status === 'released' || lease.status === 'expired') return;
          lease.status = 'expired';
          lease.endReason = 'failed';
          lease.endMessage = `the machine could not be provisioned: ${e instanceof Error ? e.message : String(e)}`.slice(0, 300);
          lease.endedAt = iso(now());
          ended(lease);
        },
      );
    }
    return { status: 201, lease: { ...lease } };
  }

  function renew(id: string, body: Record<string, unknown>): MoltLease {
    const hours = num(body.durationHours, 'durationHours', { min: 0 });
    if (hours <= 0) throw new HttpError(422, 'invalid_request', 'durationHours must be > 0');
    const l = getLease(id);
    if (l.status !== 'active' && l.status !== 'pending') throw new HttpError(409, 'lease_not_renewable', `lease "${id}" is ${l.status}`);
    // max(): a retried renew lands on the same expiry, and a renew never shortens a lease.
    const target = Math.max(Date.parse(l.expiresAt), now() + hours * HOUR);
    l.expiresAt = iso(target);
    return { ...l };
  }

  function release(id: string): MoltLease {
    const l = getLease(id);
    if (l.status === 'released' || l.status === 'expired') return { ...l };
    l.status = 'released';
    l.endReason = 'released';
    l.endedAt = iso(now());
    ended(l);
    return { ...l };
  }

  /** A provisioned machine goes away with its lease, once. */
  function ended(l: MoltLease): void {
    if (!provisioned.delete(l.id)) return;
    delete l.host;
    void Promise.resolve(opts.onEnd?.({ ...l })).catch(() => undefined);
  }

  function spotPrices(gpuModel: string | null): unknown[] {
    const t = now();
    const open = openOffers(t);
    const out = [];
    for (const m of market) {
      if (gpuModel !== null && gpuModel !== '' && m.gpuModel.toLowerCase() !== gpuModel.toLowerCase()) continue;
      for (const zone of m.zones) {
        out.push({
          gpuModel: m.gpuModel,
          zone,
          pricePerGpuHour: spotPrice(m, zone, t),
          onDemandPricePerGpuHour: m.onDemandPrice,
          preemptionRatePerHour: m.preemptionRatePerHour ?? 0.05,
          offers: open.filter((o) => o.gpuModel === m.gpuModel && o.zone === zone).length,
          at: iso(t),
        });
      }
    }
    return out;
  }

  async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of req) {
      size += (c as Buffer).length;
      if (size > 1_000_000) throw new HttpError(413, 'too_large', 'request body over 1 MB');
      chunks.push(c as Buffer);
    }
    const text = Buffer.concat(chunks).toString('utf8');
    if (text.trim() === '') return {};
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      throw new HttpError(400, 'bad_request', 'body is not valid JSON');
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new HttpError(400, 'bad_request', 'body must be a JSON object');
    return v as Record<string, unknown>;
  }

  function authorised(req: IncomingMessage): boolean {
    const h = req.headers.authorization ?? '';
    const m = /^Bearer (.+)$/.exec(h);
    if (!m) return false;
    const got = Buffer.from(m[1] as string);
    return got.length === tokenBuf.length && timingSafeEqual(got, tokenBuf);
  }

  function takeFault(path: string): Fault | undefined {
    const i = faults.findIndex((f) => f.path === undefined || path.startsWith(f.path));
    if (i < 0) return undefined;
    return faults.splice(i, 1)[0];
  }

  async function route(req: IncomingMessage, url: URL): Promise<{ status: number; body: unknown }> {
    const method = req.method ?? 'GET';
    const p = url.pathname;
    if (p === '/v1/spot-prices' && method === 'GET') return { status: 200, body: { prices: spotPrices(url.searchParams.get('gpuModel')) } };
    if (p === '/v1/offers' && method === 'GET') {
      const q = url.searchParams;
      const model = q.get('gpuModel');
      const minGpus = queryNumber(q, 'minGpus');
      const maxPrice = queryNumber(q, 'maxPricePerHour');
      const zone = q.get('zone');
      const offers = openOffers(now()).filter(
        (o) =>
          (model === null || model === '' || o.gpuModel.toLowerCase() === model.toLowerCase()) &&
          (minGpus === undefined || o.maxGpus >= minGpus) &&
          (maxPrice === undefined || o.pricePerGpuHour <= maxPrice) &&
          (zone === null || zone === '' || o.zone === zone),
      );
      return { status: 200, body: { offers } };
    }
    if (p === '/v1/bids' && method === 'POST') {
      const r = bid(await readJson(req));
      return { status: r.status, body: { lease: r.lease } };
    }
    if (p === '/v1/leases' && method === 'GET') {
      const t = now();
      const status = url.searchParams.get('status');
      const list = [...leases.values()].map((l) => ({ ...settle(l, t) })).filter((l) => status === null || status === '' || status.split(',').includes(l.status));
      return { status: 200, body: { leases: list.sort((a, b) => a.id.localeCompare(b.id)) } };
    }
    const lm = /^\/v1\/leases\/([^/]+)(\/renew)?$/.exec(p);
    if (lm) {
      const id = decodeURIComponent(lm[1] as string);
      if (lm[2] === '/renew') {
        if (method !== 'POST') throw new HttpError(405, 'method_not_allowed', `${method} is not allowed on ${p}`);
        return { status: 200, body: { lease: renew(id, await readJson(req)) } };
      }
      if (method === 'GET') return { status: 200, body: { lease: { ...getLease(id) } } };
      if (method === 'DELETE') return { status: 200, body: { lease: release(id) } };
      throw new HttpError(405, 'method_not_allowed', `${method} is not allowed on ${p}`);
    }
    if (opts.httpControl === true && p.startsWith('/_control/') && method === 'POST') {
      const b = await readJson(req);
      const what = p.slice('/_control/'.length);
      if (what === 'advance') control.advance(num(b.ms, 'ms', { min: 0 }));
      else if (what === 'preempt') return { status: 200, body: { lease: control.preempt(String(b.leaseId), typeof b.noticeMs === 'number' ? b.noticeMs : undefined) } };
      else if (what === 'spot-price') control.setSpotPrice(String(b.gpuModel), typeof b.price === 'number' ? b.price : undefined, typeof b.zone === 'string' ? b.zone : undefined);
      else if (what === 'fail') control.failNext(num(b.count, 'count', { min: 0, integer: true }), typeof b.status === 'number' ? { status: b.status } : {});
      else throw new HttpError(404, 'not_found', `no control action "${what}"`);
      return { status: 200, body: { ok: true, now: iso(now()) } };
    }
    if (['/v1/spot-prices', '/v1/offers', '/v1/bids', '/v1/leases'].includes(p)) throw new HttpError(405, 'method_not_allowed', `${method} is not allowed on ${p}`);
    throw new HttpError(404, 'not_found', `no route ${method} ${p}`);
  }

  function send(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
    res.end(text);
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://molt.invalid');
    const record: MoltRequestRecord = { method: req.method ?? 'GET', path: url.pathname, status: 0 };
    requests.push(record);
    const finish = (status: number, body: unknown): void => {
      record.status = status;
      if (!res.destroyed) send(res, status, body);
    };
    void (async () => {
      const fault = takeFault(url.pathname);
      if (fault?.kind === 'drop') {
        record.status = -1;
        req.socket.destroy();
        return;
      }
      if (fault?.kind === 'delay') await new Promise((r) => setTimeout(r, fault.ms));
      if (fault?.kind === 'status') {
        // Drain the body so the client sees the answer rather than a reset.
        req.resume();
        finish(fault.status, { error: { code: 'injected_fault', message: `injected ${fault.status}` } });
        return;
      }
      if (!authorised(req)) {
        req.resume();
        res.setHeader('www-authenticate', 'Bearer realm="molt"');
        finish(401, { error: { code: 'unauthorized', message: 'missing or invalid bearer token' } });
        return;
      }
      try {
        const r = await route(req, url);
        finish(r.status, r.body);
      } catch (e) {
        if (e instanceof HttpError) finish(e.status, { error: { code: e.code, message: e.message } });
        else finish(500, { error: { code: 'internal', message: e instanceof Error ? e.message : String(e) } });
      }
    })();
  });

  const control: MoltControl = {
    advance(ms) {
      offset += ms;
    },
    now,
    preempt(leaseId, noticeMs) {
      const l = getLease(leaseId);
      if (l.status !== 'active' && l.status !== 'pending') return { ...l };
      l.status = 'preempting';
      l.preemptAt = iso(now() + (noticeMs ?? defaultNoticeMs));
      return { ...l };
    },
    setSpotPrice(gpuModel, price, zone) {
      const key = `${gpuModel}|${zone ?? '*'}`;
      if (price === undefined) priceOverride.delete(key);
      else priceOverride.set(key, price);
    },
    addOffer(o) {
      gone.delete(o.id);
      fixedOffers.set(o.id, { ...o, expiresAt: o.expiresAt ?? iso(8.64e15), never: o.expiresAt === undefined });
    },
    removeOffer(id) {
      gone.add(id);
    },
    failNext(count, o = {}) {
      for (let i = 0; i < count; i++) faults.push(o.path !== undefined ? { kind: 'status', status: o.status ?? 500, path: o.path } : { kind: 'status', status: o.status ?? 500 });
    },
    delayNext(count, ms, o = {}) {
      for (let i = 0; i < count; i++) faults.push(o.path !== undefined ? { kind: 'delay', ms, path: o.path } : { kind: 'delay', ms });
    },
    dropNext(count, o = {}) {
      for (let i = 0; i < count; i++) faults.push(o.path !== undefined ? { kind: 'drop', path: o.path } : { kind: 'drop' });
    },
    clearFaults() {
      faults.length = 0;
    },
    requests,
    leases: () => [...leases.values()].map((l) => ({ ...settle(l, now()) })),
    offers: () => openOffers(now()),
  };

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${host}:${addr.port}`,
    port: addr.port,
    control,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
