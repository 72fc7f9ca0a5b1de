// A fake of the AWS Price List Query API (`AWSPriceListService`, the JSON 1.1 protocol as
// @aws-sdk/client-pricing speaks it: `POST /` with `X-Amz-Target: AWSPriceListService.GetProducts`
// and an `application/x-amz-json-1.1` body) for GetProducts on AmazonEC2: TERM_MATCH / EQUALS /
// ANY_OF filters on product attributes, pagination, and the price list as JSON strings in AWS's
// offer-file shape (`product.attributes`, `terms.OnDemand.<sku>.<term>.priceDimensions`). Every
// request must be SigV4-signed (an Authorization header; with `credentials`, for that key id).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createHash } from 'node:crypto';
import { listen } from './http-util.js';

export interface FakePricingOptions {
  host?: string;
  port?: number;
  /** On-demand Linux USD per hour by region and instance type: { 'us-east-1': { 'p3.2xlarge': 3.06 } }. */
  onDemand?: Record<string, Record<string, number>>;
  /** When given, the SigV4 credential must name this key id. */
  accessKeyId?: string;
}

export interface FakePricing {
  url: string;
  close(): Promise<void>;
  control: {
    readonly requests: readonly { target: string; status: number; body: unknown }[];
    /** Answers every request with this status and AWS error code until cleared (an outage). */
    fail(status: number | null, code?: string): void;
    setPrice(region: string, instanceType: string, price: number): void;
  };
}

interface Product {
  attributes: Record<string, string>;
  sku: string;
  price: number;
}

/** Starts the fake on 127.0.0.1. */
export async function startFakePricing(opts: FakePricingOptions = {}): Promise<FakePricing> {
  const table = structuredClone(opts.onDemand ?? { 'us-east-1': { 'p3.2xlarge': 3.06, 'p3.8xlarge': 12.24 } });
  const requests: { target: string; status: number; body: unknown }[] = [];
  let outage: { status: number; code: string } | null = null;

  /** Every product the offer file would have for a type in a region: Linux and Windows, shared and dedicated, used and reserved. */
  function products(): Product[] {
    const out: Product[] = [];
    for (const [region, types] of Object.entries(table)) {
      for (const [type, price] of Object.entries(types)) {
        for (const [os, mul] of [['Linux', 1], ['Windows', 1.4]] as const) {
          for (const tenancy of ['Shared', 'Dedicated']) {
            for (const capacitystatus of ['Used', 'UnusedCapacityReservation']) {
              const attributes: Record<string, string> = {
                servicecode: 'AmazonEC2',
                productFamily: 'Compute Instance',
                instanceType: type,
                regionCode: region,
                location: region,
                operatingSystem: os,
                tenancy,
                preInstalledSw: 'NA',
                licenseModel: 'No License required',
                capacitystatus,
                usagetype: `${tenancy === 'Shared' ? 'BoxUsage' : 'DedicatedUsage'}:${type}`,
              };
              const sku = createHash('sha1').update(JSON.stringify(attributes)).digest('hex').slice(0, 16).toUpperCase();
              out.push({ attributes, sku, price: Math.round(price * mul * (tenancy === 'Dedicated' ? 1.1 : 1) * 1e6) / 1e6 });
            }
          }
        }
      }
    }
    return out;
  }

  function doc(p: Product): string {
    const term = `${p.sku}.JRTCKXETXF`;
    return JSON.stringify({
      product: { productFamily: p.attributes.productFamily, attributes: p.attributes, sku: p.sku },
      serviceCode: 'AmazonEC2',
      terms: {
        OnDemand: {
          [term]: {
            priceDimensions: { [`${term}.6YS6EN2CT7`]: { unit: 'Hrs', endRange: 'Inf', description: `$${p.price.toFixed(3)} per On Demand ${p.attributes.operatingSystem} ${p.attributes.instanceType} Instance Hour`, appliesTo: [], rateCode: `${term}.6YS6EN2CT7`, beginRange: '0', pricePerUnit: { USD: p.price.toFixed(10) } } },
            sku: p.sku,
            effectiveDate: '2026-01-01T00:00:00Z',
            offerTermCode: 'JRTCKXETXF',
            termAttributes: {},
          },
        },
      },
      version: '20260101000000',
      publicationDate: '2026-01-01T00:00:00Z',
    });
  }

  function getProducts(body: Record<string, unknown>): { status: number; json: unknown } {
    if (body.ServiceCode === undefined) return { status: 400, json: { __type: 'com.amazonaws.pricing#InvalidParameterException', Message: 'ServiceCode is required' } };
    if (body.ServiceCode !== 'AmazonEC2') return { status: 200, json: { FormatVersion: 'aws_v1', PriceList: [] } };
    const filters = (body.Filters ?? []) as { Type?: string; Field?: string; Value?: string }[];
    let list = products();
    for (const f of filters) {
      if (!f.Field || f.Value === undefined || !['TERM_MATCH', 'EQUALS', 'ANY_OF', 'CONTAINS', 'NONE_OF'].includes(f.Type ?? '')) return { status: 400, json: { __type: 'com.amazonaws.pricing#InvalidParameterException', Message: `Invalid filter: ${JSON.stringify(f)}` } };
      const values = f.Type === 'ANY_OF' || f.Type === 'NONE_OF' ? f.Value.split(',') : [f.Value];
      list = list.filter((p) => {
        const v = p.attributes[f.Field as string];
        if (f.Type === 'CONTAINS') return v !== undefined && v.includes(f.Value as string);
        if (f.Type === 'NONE_OF') return v === undefined || !values.includes(v);
        return v !== undefined && values.some((x) => x.toLowerCase() === v.toLowerCase());
      });
    }
    const max = typeof body.MaxResults === 'number' ? body.MaxResults : 100;
    const from = typeof body.NextToken === 'string' ? Number(Buffer.from(body.NextToken, 'base64url').toString()) : 0;
    const page = list.slice(from, from + max);
    const out: Record<string, unknown> = { FormatVersion: 'aws_v1', PriceList: page.map(doc) };
    if (from + max < list.length) out.NextToken = Buffer.from(String(from + max)).toString('base64url');
    return { status: 200, json: out };
  }

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const target = String(req.headers['x-amz-target'] ?? '');
      let body: unknown = {};
      const reply = (status: number, json: unknown): void => {
        requests.push({ target, status, body });
        const text = JSON.stringify(json);
        res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': createHash('sha1').update(String(requests.length)).digest('hex').slice(0, 32), 'content-length': Buffer.byteLength(text) });
        res.end(text);
      };
      const auth = req.headers.authorization ?? '';
      const keyId = /Credential=([^/]+)\//.exec(auth)?.[1];
      if (!auth.startsWith('AWS4-HMAC-SHA256 ') || (opts.accessKeyId !== undefined && keyId !== opts.accessKeyId)) return reply(403, { __type: 'com.amazon.coral.service#UnrecognizedClientException', message: 'The security token included in the request is invalid.' });
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
      } catch {
        return reply(400, { __type: 'com.amazon.coral.service#SerializationException', Message: 'Invalid JSON' });
      }
      if (outage) return reply(outage.status, { __type: `com.amazonaws.pricing#${outage.code}`, Message: `injected ${outage.code}` });
      if (target !== 'AWSPriceListService.GetProducts') return reply(400, { __type: 'com.amazon.coral.service#UnknownOperationException', message: `unknown operation ${target}` });
      const r = getProducts(body as Record<string, unknown>);
      reply(r.status, r.json);
    });
  };
  const srv = await listen(handler, { host: opts.host ?? '127.0.0.1', port: opts.port ?? 0 });
  return {
    url: srv.address,
    close: () => srv.close(),
    control: {
      requests,
      fail: (status, code = 'ServiceUnavailableException') => {
        outage = status === null ? null : { status, code };
      },
      setPrice: (region, type, price) => {
        (table[region] ??= {})[type] = price;
      },
    },
  };
}
