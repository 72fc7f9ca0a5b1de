// On-demand prices (USD per VM-hour, us-central1) of common GCE GPU machine shapes, as Google's
// pricing pages published them on the date below. They stand in, with a warning, only when the
// Cloud Billing Catalog cannot be reached and no earlier answer is cached; Spot prices move and are
// not tabled.
import type { PriceTable } from '../../src/providers/kit/capacity/index.js';

export const GCP_PRICE_TABLE: PriceTable = {
  date: '2024-06-01',
  region: 'us-central1',
  prices: {
    'on-demand|n1-standard-8+nvidia-tesla-v100x1@us-central1': 2.859998,
    'on-demand|n1-standard-8+nvidia-tesla-t4x1@us-central1': 0.729998,
    'on-demand|a2-highgpu-1g@us-central1': 3.673385,
    'on-demand|a2-highgpu-2g@us-central1': 7.34677,
    'on-demand|g2-standard-4@us-central1': 0.70683,
  },
};
