// A fake of the Cloud Billing Catalog API (`GET /v1/services/6F81-5844-456A/skus`, Compute
// Engine's SKUs) as it answers: a bearer token or an API key required (401 otherwise), pages of
// `skus` with `nextPageToken`, and the SKU shape it publishes (description, category with
// resourceGroup and usageType OnDemand / Preemptible, serviceRegions, pricingInfo with tiered rates
// in units + nanos). GPUs, cores and RAM are separate SKUs, as on GCE, and the list holds SKUs a
// naive reader trips on (commitments, other regions, the 80GB A100 beside the 40GB one).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createHash } from 'node:crypto';
import { listen } from './http-util.js';

export const COMPUTE_SERVICE_ID = '6F81-5844-456A';

/** One priced resource: `Nvidia Tesla V100 GPU`, `N1 Predefined Instance Core`, `N1 Predefined Instance Ram`. */
export interface FakeSkuPrice {
  /** What precedes ` running in <region group>` in the description. */
  name: string;
  resourceGroup: string;
  /** USD per hour (per GPU, per vCPU, per GiB). */
  onDemand: number;
  spot: number;
  unit: 'h' | 'GiBy.h';
}

export interface FakeBillingOptions {
  host?: string;
  port?: number;
  tokens?: string[];
  /** Regions the SKUs serve. Default us-central1, us-east1. */
  regions?: string[];
  skus?: FakeSkuPrice[];
  pageSize?: number;
}

export interface FakeBilling {
  url: string;
  close(): Promise<void>;
  control: {
    readonly requests: readonly { path: string; status: number }[];
    fail(status: number | null): void;
  };
}

export const DEFAULT_FAKE_SKUS: FakeSkuPrice[] = [
  { name: 'Nvidia Tesla V100 GPU', resourceGroup: 'GPU', onDemand: 2.48, spot: 0.74, unit: 'h' },
  { name: 'Nvidia Tesla A100 GPU', resourceGroup: 'GPU', onDemand: 2.933908, spot: 0.88, unit: 'h' },
  { name: 'Nvidia Tesla A100 80GB GPU', resourceGroup: 'GPU', onDemand: 3.92808, spot: 1.57, unit: 'h' },
  { name: 'N1 Predefined Instance Core', resourceGroup: 'N1Standard', onDemand: 0.031611, spot: 0.00664, unit: 'h' },
  { name: 'N1 Predefined Instance Ram', resourceGroup: 'N1Standard', onDemand: 0.004237, spot: 0.00089, unit: 'GiBy.h' },
  { name: 'A2 Instance Core', resourceGroup: 'CPU', onDemand: 0.031611, spot: 0.00948, unit: 'h' },
  { name: 'A2 Instance Ram', resourceGroup: 'RAM', onDemand: 0.004237, spot: 0.00127, unit: 'GiBy.h' },
];

function money(usd: number): { currencyCode: string; units: string; nanos: number } {
  const units = Math.floor(usd);
  return { currencyCode: 'USD', units: String(units), nanos: Math.round((usd - units) * 1e9) };
}

/** Starts the fake on 127.0.0.1. */
export async function startFakeBilling(opts: FakeBillingOptions = {}): Promise<FakeBilling> {
  const tokens = new Set(opts.tokens ?? ['fake-gce-token']);
  const regions = opts.regions ?? ['us-central1', 'us-east1'];
  const defs = opts.skus ?? DEFAULT_FAKE_SKUS;
  const pageSize = opts.pageSize ?? 5000;
  const requests: { path: string; status: number }[] = [];
  let outage: number | null = null;

  const skus: Record<string, unknown>[] = [];
  const add = (description: string, resourceGroup: string, usageType: string, serviceRegions: string[], price: number, unit: string): void => {
    const h = createHash('sha1').update(`${description}|${usageType}|${serviceRegions.join(',')}`).digest('hex').toUpperCase();
    const skuId = `${h.slice(0, 4)}-${h.slice(4, 8)}-${h.slice(8, 12)}`;
    skus.push({
      name: `services/${COMPUTE_SERVICE_ID}/skus/${skuId}`,
      skuId,
      description,
      category: { serviceDisplayName: 'Compute Engine', resourceFamily: 'Compute', resourceGroup, usageType },
      serviceRegions,
      pricingInfo: [{ summary: '', pricingExpression: { usageUnit: unit, displayQuantity: 1, tieredRates: [{ startUsageAmount: 0, unitPrice: money(price) }], usageUnitDescription: unit === 'h' ? 'hour' : 'gibibyte hour', baseUnit: unit === 'h' ? 's' : 'By.s', baseUnitDescription: 'second', baseUnitConversionFactor: 3600 }, currencyConversionRate: 1, effectiveTime: '2026-01-01T00:00:00Z' }],
      serviceProviderName: 'Google',
    });
  };
  for (const d of defs) {
    add(`${d.name} running in Americas`, d.resourceGroup, 'OnDemand', regions, d.onDemand, d.unit);
    add(`Spot Preemptible ${d.name} running in Americas`, d.resourceGroup, 'Preemptible', regions, d.spot, d.unit);
    add(`Commitment v1: ${d.name.replace(/ GPU$/, '')} in Americas for 1 Year`, d.resourceGroup, 'Commit1Yr', regions, d.onDemand * 0.63, d.unit);
    add(`${d.name} running in Belgium`, d.resourceGroup, 'OnDemand', ['europe-west1'], d.onDemand * 1.1, d.unit);
  }

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://x');
    const send = (status: number, json: unknown): void => {
      requests.push({ path: url.pathname, status });
      const text = JSON.stringify(json);
      res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if ((bearer === undefined || !tokens.has(bearer)) && !url.searchParams.get('key')) {
      return send(401, { error: { code: 401, message: 'Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential.', status: 'UNAUTHENTICATED' } });
    }
    if (outage !== null) return send(outage, { error: { code: outage, message: 'The service is currently unavailable.', status: 'UNAVAILABLE' } });
    if (req.method !== 'GET' || url.pathname !== `/v1/services/${COMPUTE_SERVICE_ID}/skus`) return send(404, { error: { code: 404, message: 'Not found', status: 'NOT_FOUND' } });
    const size = Math.min(Number(url.searchParams.get('pageSize') ?? pageSize), pageSize);
    const from = Number(url.searchParams.get('pageToken') || '0');
    const page = skus.slice(from, from + size);
    send(200, { skus: page, nextPageToken: from + size < skus.length ? String(from + size) : '' });
  };
  const srv = await listen(handler, { host: opts.host ?? '127.0.0.1', port: opts.port ?? 0 });
  return {
    url: srv.address,
    close: () => srv.close(),
    control: { requests, fail: (s) => void (outage = s) },
  };
}
