// The on-demand price per GPU-hour: the one definition the planner's bid cap, the savings
// ledger's counterfactual and the spot-price alerts read, so "what on-demand costs" has one answer.
import type { Observed } from './types.js';

/**
 * The on-demand price per GPU-hour of a GPU model, as one observation saw it: the cheapest of the
 * on-demand price quotes for that model and of the on-demand nodes of that model (node price / its
 * GPUs). Models are compared exactly as providers name them (`V100`, `A100-80GB`).
 *
 * - A model with nothing on-demand observed: `undefined`. There is no basis, and each caller says
 *   what that means for it: the planner bids without an on-demand cap, the ledger counts the price
 *   paid as the counterfactual (no savings claimed), and the spot-price alert compares spot with
 *   itself (it does not fire).
 * - `gpuModel` undefined (the node is gone and nothing recorded its model): the cheapest on-demand
 *   price of any model, the smallest counterfactual, so savings are never overstated.
 * @example onDemandPricePerGpuHour({ prices: [{ gpuModel: 'V100', capacity: 'on-demand', pricePerGpuHour: 3.06, … }], nodes: [] }, 'V100') // 3.06
 */
export function onDemandPricePerGpuHour(observed: Pick<Observed, 'prices' | 'nodes'>, gpuModel: string | undefined): number | undefined {
  let best = Number.POSITIVE_INFINITY;
  for (const q of observed.prices) if (q.capacity === 'on-demand' && (gpuModel === undefined || q.gpuModel === gpuModel)) best = Math.min(best, q.pricePerGpuHour);
  for (const n of observed.nodes) if (n.capacity === 'on-demand' && (gpuModel === undefined || n.gpuModel === gpuModel) && n.gpus > 0) best = Math.min(best, n.pricePerHour / n.gpus);
  return Number.isFinite(best) ? best : undefined;
}
