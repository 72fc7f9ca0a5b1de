// On-demand Linux prices (USD per instance-hour, us-east-1) of common EC2 GPU instance types, as
// published on https://aws.amazon.com/ec2/pricing/on-demand/ on the date below. They stand in, with
// a warning, only when the Price List API cannot be reached and no earlier answer is cached; a
// region other than the table's gets no stand-in.
import type { PriceTable } from '../../src/providers/kit/capacity/index.js';

export const AWS_PRICE_TABLE: PriceTable = {
  date: '2024-06-01',
  region: 'us-east-1',
  prices: {
    'on-demand|p3.2xlarge': 3.06,
    'on-demand|p3.8xlarge': 12.24,
    'on-demand|p3.16xlarge': 24.48,
    'on-demand|p4d.24xlarge': 32.7726,
    'on-demand|g4dn.xlarge': 0.526,
    'on-demand|g4dn.12xlarge': 3.912,
    'on-demand|g5.xlarge': 1.006,
    'on-demand|g5.12xlarge': 5.672,
  },
};
