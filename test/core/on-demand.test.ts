// The on-demand price per GPU-hour has one definition (src/core/on-demand.ts): per GPU model, from
// on-demand quotes and on-demand nodes, undefined with no basis. The watch alerts read it too, so a
// spot A100 is compared with on-demand A100, the price the savings ledger counts, not with the
// cheapest on-demand GPU of any model.
import { describe, expect, it } from 'vitest';
import { onDemandPricePerGpuHour } from '../../src/core/on-demand.js';
import type { NodeInfo, Observed, PriceQuote } from '../../src/core/types.js';
import { compileAlertRules } from '../../src/policy/alerts.js';
import type { AlertMessage } from '../../src/providers/sdk.js';
import { createSilentLogger } from '../../src/telemetry/logger.js';
import { Alerting } from '../../src/watch/alerting.js';
import type { WatchSession } from '../../src/watch/watch-session.js';

const AT = '2026-06-01T12:00:00Z';
const quote = (gpuModel: string, capacity: PriceQuote['capacity'], pricePerGpuHour: number): PriceQuote => ({ provider: 'market', gpuModel, capacity, pricePerGpuHour, available: true, at: AT });
const node = (gpuModel: string, gpus: number, pricePerHour: number): NodeInfo => ({ id: `n-${gpuModel}`, provider: 'lab', gpuModel, gpus, capacity: 'on-demand', pricePerHour, state: 'ready' });

describe('onDemandPricePerGpuHour', () => {
  const observed = { prices: [quote('V100', 'on-demand', 3.06), quote('A100', 'on-demand', 4.1), quote('A100', 'spot', 1.2)], nodes: [node('A100', 4, 14)] };

  it('is the cheapest on-demand quote or node of the model', () => {
    expect(onDemandPricePerGpuHour(observed, 'V100')).toBe(3.06);
    expect(onDemandPricePerGpuHour(observed, 'A100')).toBe(3.5);
  });

  it('is undefined for a model with nothing on-demand, and the cheapest of any model when the model is unknown', () => {
    expect(onDemandPricePerGpuHour(observed, 'H100')).toBeUndefined();
    expect(onDemandPricePerGpuHour({ prices: [quote('A100', 'spot', 1)], nodes: [] }, 'A100')).toBeUndefined();
    expect(onDemandPricePerGpuHour(observed, undefined)).toBe(3.06);
  });
});

describe('the spot-price alert', () => {
  async function fired(prices: PriceQuote[]): Promise<AlertMessage[]> {
    const sent: AlertMessage[] = [];
    const { rules } = compileAlertRules([{ name: 'spot-spike', when: 'spotPrice > 0.8 * onDemandPrice', severity: 'warning', notify: ['ops'], pos: { file: 'fleet.yaml', line: 1, col: 1 } }]);
    const session = {
      fleet: { name: 'research', workloads: [], defaults: { thresholds: { spotPriceAlertRatio: 0.8 } } },
      rules,
      sinks: new Map([['ops', { send: (m: AlertMessage) => Promise.resolve(void sent.push(m)) }]]),
    } as unknown as WatchSession;
    const observed: Observed = { at: AT, nodes: [], workloads: [], leases: [], prices, offers: [], notices: [], unknown: [] };
    await new Alerting(createSilentLogger()).evaluate(session, observed, { resources: {} } as never);
    return sent;
  }

  it('compares spot with on-demand of the same GPU model', async () => {
    // Spot A100 at $3.00 is under 0.8 × on-demand A100 ($4.10); against the cheaper V100 it would fire.
    expect(await fired([quote('V100', 'on-demand', 3.06), quote('A100', 'on-demand', 4.1), quote('A100', 'spot', 3)])).toEqual([]);
    const m = await fired([quote('A100', 'on-demand', 3.5), quote('A100', 'spot', 3)]);
    expect(m.map((x) => x.summary)).toEqual([expect.stringContaining('on-demand $3.50/GPU-h')]);
  });

  it('does not fire for a model with no on-demand price (no basis, as the ledger claims no savings)', async () => {
    expect(await fired([quote('V100', 'on-demand', 1), quote('A100', 'spot', 3)])).toEqual([]);
  });
});
