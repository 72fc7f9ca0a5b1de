// A fake of the Azure Retail Prices API (`GET /api/retail/prices?$filter=…`, public, no auth): the
// OData `$filter` subset it documents (`field eq 'value'` joined by `and`, fields case-sensitive,
// values case-insensitive), pages of `Items` with `NextPageLink`, and the item shape it publishes,
// including what a naive reader trips on: a Windows meter and a Low Priority meter beside the Linux
// pay-as-you-go and Spot ones, and DevTestConsumption items.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createHash } from 'node:crypto';
import { listen } from './http-util.js';

export interface FakeAzurePricesOptions {
  host?: string;
  port?: number;
  /** Linux prices by region and VM size: { eastus: { Standard_NC6s_v3: { payg: 3.06, spot: 0.612 } } }. */
  prices?: Record<string, Record<string, { payg: number; spot?: number }>>;
  pageSize?: number;
}

export interface FakeAzurePrices {
  url: string;
  close(): Promise<void>;
  control: {
    readonly requests: readonly { filter: string; status: number }[];
    fail(status: number | null): void;
  };
}

interface Item {
  currencyCode: string;
  tierMinimumUnits: number;
  retailPrice: number;
  unitPrice: number;
  armRegionName: string;
  location: string;
  effectiveStartDate: string;
  meterId: string;
  meterName: string;
  productId: string;
  skuId: string;
  productName: string;
  skuName: string;
  serviceName: string;
  serviceId: string;
  serviceFamily: string;
  unitOfMeasure: string;
  type: string;
  isPrimaryMeterRegion: boolean;
  armSkuName: string;
}

/** Starts the fake on 127.0.0.1. */
export async function startFakeAzurePrices(opts: FakeAzurePricesOptions = {}): Promise<FakeAzurePrices> {
  const prices = opts.prices ?? { eastus: { Standard_NC6s_v3: { payg: 3.06, spot: 0.612 } } };
  const pageSize = opts.pageSize ?? 100;
  const requests: { filter: string; status: number }[] = [];
  let outage: number | null = null;
  let base = '';

  function items(): Item[] {
    const out: Item[] = [];
    for (const [region, sizes] of Object.entries(prices)) {
      for (const [size, p] of Object.entries(sizes)) {
        const short = size.replace(/^Standard_/, '').replace(/_/g, ' ');
        const series = `Virtual Machines ${short.replace(/^([A-Z]+)\d+[a-z]*/, '$1')} Series`;
        const variants: [string, string, number, string][] = [
          [short, series, p.payg, 'Consumption'],
          [short, `${series} Windows`, Math.round(p.payg * 1.35 * 1e4) / 1e4, 'Consumption'],
          [`${short} Low Priority`, series, Math.round(p.payg * 0.2 * 1e4) / 1e4, 'Consumption'],
          [short, series, Math.round(p.payg * 0.9 * 1e4) / 1e4, 'DevTestConsumption'],
        ];
        if (p.spot !== undefined) variants.push([`${short} Spot`, series, p.spot, 'Consumption'], [`${short} Spot`, `${series} Windows`, Math.round(p.spot * 1.5 * 1e4) / 1e4, 'Consumption']);
        for (const [skuName, productName, price, type] of variants) {
          const id = createHash('sha1').update(`${region}|${skuName}|${productName}|${type}`).digest('hex').toUpperCase();
          out.push({
            currencyCode: 'USD',
            tierMinimumUnits: 0,
            retailPrice: price,
            unitPrice: price,
            armRegionName: region,
            location: region === 'eastus' ? 'US East' : region,
            effectiveStartDate: '2026-01-01T00:00:00Z',
            meterId: `${id.slice(0, 8)}-${id.slice(8, 12)}-${id.slice(12, 16)}-${id.slice(16, 20)}-${id.slice(20, 32)}`.toLowerCase(),
            meterName: skuName,
            productId: `DZH318Z0${id.slice(0, 4)}`,
            skuId: `DZH318Z0${id.slice(0, 4)}/${id.slice(4, 8)}`,
            productName,
            skuName,
            serviceName: 'Virtual Machines',
            serviceId: 'DZH313Z7MMC8',
            serviceFamily: 'Compute',
            unitOfMeasure: '1 Hour',
            type,
            isPrimaryMeterRegion: true,
            armSkuName: size,
          });
        }
      }
    }
    return out;
  }

  /** `a eq 'x' and b eq 'y'`: the conjunction of equalities the API documents. */
  function matcher(filter: string): (i: Item) => boolean {
    if (filter.trim() === '') return () => true;
    const terms = filter.split(/\s+and\s+/i).map((t) => {
      const m = /^\s*(\w+)\s+eq\s+'([^']*)'\s*$/.exec(t);
      if (!m) throw new Error(`Invalid OData filter: ${t}`);
      // The documented filter field for the item's `type` is `priceType`.
      const field = (m[1] === 'priceType' ? 'type' : m[1]) as keyof Item;
      return [field, (m[2] as string).toLowerCase()] as const;
    });
    return (i) => terms.every(([f, v]) => String(i[f] ?? '').toLowerCase() === v);
  }

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://x');
    const filter = url.searchParams.get('$filter') ?? '';
    const send = (status: number, json: unknown): void => {
      requests.push({ filter, status });
      const text = JSON.stringify(json);
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    if (outage !== null) return send(outage, { error: { code: 'ServiceUnavailable', message: 'injected outage' } });
    if (req.method !== 'GET' || url.pathname !== '/api/retail/prices') return send(404, { error: { code: 'NotFound', message: 'Not found' } });
    let pred: (i: Item) => boolean;
    try {
      pred = matcher(filter);
    } catch (e) {
      return send(400, { error: { code: 'BadRequest', message: (e as Error).message } });
    }
    const all = items().filter(pred);
    const skip = Number(url.searchParams.get('$skip') ?? '0');
    const page = all.slice(skip, skip + pageSize);
    const next = skip + pageSize < all.length ? `${base}/api/retail/prices?${new URLSearchParams({ ...(url.searchParams.get('api-version') ? { 'api-version': url.searchParams.get('api-version') as string } : {}), $filter: filter, $skip: String(skip + pageSize) }).toString()}` : null;
    send(200, { BillingCurrency: 'USD', CustomerEntityId: 'Default', CustomerEntityType: 'Retail', Items: page, NextPageLink: next, Count: page.length });
  };
  const srv = await listen(handler, { host: opts.host ?? '127.0.0.1', port: opts.port ?? 0 });
  base = srv.address;
  return {
    url: base,
    close: () => srv.close(),
    control: { requests, fail: (s) => void (outage = s) },
  };
}
