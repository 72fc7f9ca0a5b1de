// Prices from the clouds' price APIs, each against a wire-exact fake: AWS on-demand from the Price
// List API (GetProducts through @aws-sdk/client-pricing, spot from DescribeSpotPriceHistory), Azure
// from the Retail Prices API, GCP from the Cloud Billing Catalog (GPU + vCPU + RAM SKUs). Each is
// cached with its time in the provider's data folder; when the API cannot be reached the cached
// copy, else the dated table shipped with spotfleet, stands in, and the quote says which.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFakeEc2, type FakeEc2 } from '../fakes/ec2.js';
import { startFakePricing, type FakePricing } from '../fakes/aws-pricing.js';
import { startFakeAzurePrices, type FakeAzurePrices } from '../fakes/azure-prices.js';
import { startFakeBilling, type FakeBilling } from '../fakes/gcp-billing.js';
import { createAwsProvider } from '../../providers/aws/index.js';
import { createAzureProvider } from '../../providers/azure/index.js';
import { createGcpProvider } from '../../providers/gcp/index.js';
import type { PriceQuote } from '../../src/core/types.js';
import { makeCtx } from '../markets/helpers.js';

const CREDS = { accessKeyId: 'AKIDPRICES', secretAccessKey: 'prices-secret' };
const AWS_ENV = { AWS_ACCESS_KEY_ID: CREDS.accessKeyId, AWS_SECRET_ACCESS_KEY: CREDS.secretAccessKey };
const od = (qs: PriceQuote[]) => qs.filter((q) => q.capacity === 'on-demand');

describe('prices from the clouds', () => {
  let tmp: string;
  let ec2: FakeEc2;
  let pricing: FakePricing;
  let azure: FakeAzurePrices;
  let billing: FakeBilling;
  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'sf-prices-'));
    ec2 = await startFakeEc2({ credentials: CREDS, instanceTypes: { 'p3.2xlarge': { spotPrice: 0.918 }, 'p3.8xlarge': { spotPrice: 3.67 } } });
    pricing = await startFakePricing({ accessKeyId: CREDS.accessKeyId, onDemand: { 'us-east-1': { 'p3.2xlarge': 3.06, 'p3.8xlarge': 12.24 }, 'eu-west-1': { 'p3.2xlarge': 3.305 } } });
    azure = await startFakeAzurePrices({ prices: { eastus: { Standard_NC6s_v3: { payg: 3.06, spot: 0.612 } }, westeurope: { Standard_NC6s_v3: { payg: 3.366, spot: 0.7 } } } });
    billing = await startFakeBilling({ tokens: ['billing-token'] });
  });
  afterAll(async () => {
    await Promise.all([ec2.close(), pricing.close(), azure.close(), billing.close()]);
    rmSync(tmp, { recursive: true, force: true });
  });

  const aws = (dir: string, region = 'us-east-1', now?: () => number) =>
    createAwsProvider(
      { region, endpoint: ec2.url, pricingEndpoint: pricing.url, imageId: 'ami-0123456789abcdef0', instanceTypes: { 'p3.2xlarge': { gpuModel: 'V100', gpus: 1 }, 'p3.8xlarge': { gpuModel: 'V100', gpus: 4 } } },
      makeCtx({ name: 'cloud', fleet: 'prices', env: AWS_ENV, dataDir: join(tmp, dir), ...(now ? { now } : {}) }),
    );

  it('AWS: on-demand from the Price List API (Linux, shared, no pre-installed software), spot from the spot price history, both with their time and source', async () => {
    const p = aws('aws-1');
    const quotes = await p.capacity!.prices({ gpuModel: 'V100' });
    expect(od(quotes).map((q) => [q.zone, q.pricePerGpuHour, q.source])).toEqual([
      ['us-east-1a', 3.06, 'AWS Price List API'],
      ['us-east-1b', 3.06, 'AWS Price List API'],
    ]);
    expect(quotes.filter((q) => q.capacity === 'spot').every((q) => q.source === 'EC2 spot price history')).toBe(true);
    const req = pricing.control.requests.find((r) => (r.body as { Filters?: { Field: string; Value: string }[] }).Filters?.some((f) => f.Field === 'instanceType' && f.Value === 'p3.2xlarge'));
    expect(req?.target).toBe('AWSPriceListService.GetProducts');
    expect((req?.body as { ServiceCode: string; Filters: { Field: string; Value: string }[] }).Filters.map((f) => `${f.Field}=${f.Value}`).sort()).toEqual(['capacitystatus=Used', 'instanceType=p3.2xlarge', 'licenseModel=No License required', 'operatingSystem=Linux', 'preInstalledSw=NA', 'regionCode=us-east-1', 'tenancy=Shared']);
    // Cached with its time: a second look does not ask the API.
    const before = pricing.control.requests.length;
    const again = await p.capacity!.prices({ gpuModel: 'V100', capacity: 'on-demand' });
    expect(pricing.control.requests.length).toBe(before);
    expect(again[0]!.at).toBe(quotes.find((q) => q.capacity === 'on-demand')!.at);
    expect(readdirSync(join(tmp, 'aws-1'))).toContain('prices-ec2-us-east-1.json');
    await p.close?.();
  });

  it('AWS: the API down and nothing cached: the dated table stands in and says so; another region has no stand-in', async () => {
    pricing.control.fail(503);
    try {
      const p = aws('aws-2');
      const quotes = od(await p.capacity!.prices({ gpuModel: 'V100' }));
      expect(quotes[0]).toMatchObject({ pricePerGpuHour: 3.06, source: 'spotfleet table of 2024-06-01 (AWS Price List API unreachable)', at: '2024-06-01T00:00:00.000Z' });
      await p.close?.();
      const eu = aws('aws-3', 'eu-west-1');
      await expect(eu.capacity!.prices({ gpuModel: 'V100', capacity: 'on-demand' })).rejects.toThrow(/^provider "cloud": AWS Price List API unreachable and no prices known: EC2 Price List GetProducts \(HTTP 503\)/);
      await eu.close?.();
    } finally {
      pricing.control.fail(null);
    }
  });

  it('AWS: stale cached prices are read again; when the API is down then, the old copy stands in with its time', async () => {
    let t = Date.now();
    const p = aws('aws-4', 'us-east-1', () => t);
    const first = od(await p.capacity!.prices({ gpuModel: 'V100' }))[0]!;
    t += 7 * 3_600_000;
    pricing.control.setPrice('us-east-1', 'p3.2xlarge', 2.9);
    const fresh = od(await p.capacity!.prices({ gpuModel: 'V100' }))[0]!;
    expect(fresh.pricePerGpuHour).toBe(2.9);
    expect(Date.parse(fresh.at)).toBeGreaterThan(Date.parse(first.at));
    t += 7 * 3_600_000;
    pricing.control.fail(500);
    try {
      const old = od(await p.capacity!.prices({ gpuModel: 'V100' }))[0]!;
      expect(old).toMatchObject({ pricePerGpuHour: 2.9, at: fresh.at, source: `AWS Price List API, read ${fresh.at} (unreachable now)` });
    } finally {
      pricing.control.fail(null);
      pricing.control.setPrice('us-east-1', 'p3.2xlarge', 3.06);
    }
    await p.close?.();
  });

  const az = async (dir: string, location = 'eastus') =>
    createAzureProvider(
      { subscriptionId: '00000000-0000-4000-8000-000000000001', resourceGroup: 'rg', location, subnetId: '/subscriptions/x/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/s', pricesEndpoint: azure.url, vmSizes: { Standard_NC6s_v3: { gpuModel: 'V100', gpus: 1 } } },
      makeCtx({ name: 'az', fleet: 'prices', dataDir: join(tmp, dir) }),
    );

  it('Azure: pay-as-you-go and Spot from the Retail Prices API (Linux, not Low Priority, not Windows, not DevTest)', async () => {
    const p = await az('az-1');
    const quotes = await p.capacity!.prices({ gpuModel: 'V100' });
    expect(quotes.map((q) => [q.capacity, q.pricePerGpuHour, q.source])).toEqual([
      ['spot', 0.612, 'Azure Retail Prices API'],
      ['on-demand', 3.06, 'Azure Retail Prices API'],
    ]);
    expect(azure.control.requests.at(-1)!.filter).toBe("serviceName eq 'Virtual Machines' and armRegionName eq 'eastus' and armSkuName eq 'Standard_NC6s_v3' and priceType eq 'Consumption'");
    const we = await az('az-2', 'westeurope');
    expect((await we.capacity!.prices({ capacity: 'on-demand' }))[0]!.pricePerGpuHour).toBe(3.366);
    await Promise.all([p.close?.(), we.close?.()]);
  });

  it('Azure: the API down: the table stands in for pay-as-you-go, and Spot (not tabled) is not quoted', async () => {
    azure.control.fail(503);
    try {
      const p = await az('az-3');
      const quotes = await p.capacity!.prices({ gpuModel: 'V100' });
      expect(quotes.map((q) => [q.capacity, q.pricePerGpuHour, q.source])).toEqual([['on-demand', 3.06, 'spotfleet table of 2024-06-01 (Azure Retail Prices API unreachable)']]);
      await p.close?.();
    } finally {
      azure.control.fail(null);
    }
  });

  const gcp = async (dir: string, token = 'billing-token') =>
    createGcpProvider(
      {
        project: 'prices-project',
        zones: ['us-central1-a'],
        endpoint: 'http://127.0.0.1:9',
        billingEndpoint: billing.url,
        image: 'projects/x/global/images/y',
        machineTypes: {
          'n1-standard-8': { gpuModel: 'V100', gpus: 1, vcpus: 8, memoryGiB: 30, acceleratorType: 'nvidia-tesla-v100' },
          'a2-highgpu-1g': { gpuModel: 'A100', gpus: 1, vcpus: 12, memoryGiB: 85 },
        },
      },
      makeCtx({ name: 'gcp', fleet: 'prices', env: { GOOGLE_OAUTH_ACCESS_TOKEN: token }, dataDir: join(tmp, dir) }),
    );

  it('GCP: a machine priced from its GPU, vCPU and RAM SKUs in the region (not the 80GB A100, not a commitment, not another region)', async () => {
    const p = await gcp('gcp-1');
    const quotes = await p.capacity!.prices({});
    const price = (model: string, cap: string) => quotes.find((q) => q.gpuModel === model && q.capacity === cap)?.pricePerGpuHour;
    // n1-standard-8 + 1 V100: 2.48 + 8 × 0.031611 + 30 × 0.004237 = 2.859998
    expect(price('V100', 'on-demand')).toBeCloseTo(2.86, 2);
    // spot: 0.74 + 8 × 0.00664 + 30 × 0.00089 = 0.81982
    expect(price('V100', 'spot')).toBeCloseTo(0.82, 2);
    // a2-highgpu-1g: 2.933908 + 12 × 0.031611 + 85 × 0.004237 = 3.673385
    expect(price('A100', 'on-demand')).toBeCloseTo(3.673, 3);
    expect(quotes.every((q) => q.source === 'Cloud Billing Catalog')).toBe(true);
    await p.close?.();
  });

  it('GCP: the catalog refusing the token, nothing cached: the table stands in for on-demand', async () => {
    const p = await gcp('gcp-2', 'not-a-token');
    const quotes = await p.capacity!.prices({ gpuModel: 'V100' });
    expect(quotes.map((q) => [q.capacity, q.pricePerGpuHour, q.source])).toEqual([['on-demand', 2.86, 'spotfleet table of 2024-06-01 (Cloud Billing Catalog unreachable)']]);
    await p.close?.();
  });
});
