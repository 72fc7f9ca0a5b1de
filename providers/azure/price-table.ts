// Pay-as-you-go Linux prices (USD per VM-hour, eastus) of common Azure GPU VM sizes, as the Retail
// Prices API published them on the date below. They stand in, with a warning, only when the API
// cannot be reached and no earlier answer is cached; Spot prices move and are not tabled.
import type { PriceTable } from '../../src/providers/kit/capacity/index.js';

export const AZURE_PRICE_TABLE: PriceTable = {
  date: '2024-06-01',
  region: 'eastus',
  prices: {
    'on-demand|Standard_NC6s_v3': 3.06,
    'on-demand|Standard_NC12s_v3': 6.12,
    'on-demand|Standard_NC24s_v3': 12.24,
    'on-demand|Standard_NC4as_T4_v3': 0.526,
    'on-demand|Standard_NC24ads_A100_v4': 3.673,
  },
};
