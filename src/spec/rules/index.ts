// The semantic rules a JSON Schema cannot express, in the order they run. Each is `(ctx) => void`
// and reports through ctx.err / ctx.warn; a later rule may read what an earlier one resolved (the
// merge, the defaults, the names index, the pools, the workloads). A new rule is a new file here.
import { resolveAlerts } from './alerts.js';
import { resolveBackendBlock } from './backend.js';
import { resolveBudget } from './budget.js';
import type { Rule } from './context.js';
import { resolveDefaultCheckpoint } from './default-checkpoint.js';
import { checkDefaultFallback } from './default-fallback.js';
import { resolveDefaults } from './defaults.js';
import { checkDuplicateNames } from './duplicate-names.js';
import { mergeFiles } from './merge.js';
import { checkMetadata } from './metadata.js';
import { checkPolicyFiles } from './policy-files.js';
import { resolvePools } from './pools.js';
import { resolveProviders } from './providers.js';
import { resolveSinks } from './sinks.js';
import { resolveWorkloadCheckpoints } from './workload-checkpoints.js';
import { checkWorkloadsFitPools } from './workload-fits-pool.js';
import { resolveWorkloadOverhead } from './workload-overhead.js';
import { checkWorkloadReferences } from './workload-references.js';
import { resolveWorkloads } from './workloads.js';

export const RULES: readonly Rule[] = [
  mergeFiles,
  checkMetadata,
  resolveDefaults,
  resolveProviders,
  checkDuplicateNames,
  resolvePools,
  checkWorkloadReferences,
  resolveWorkloads,
  resolveWorkloadCheckpoints,
  resolveWorkloadOverhead,
  checkWorkloadsFitPools,
  checkDefaultFallback,
  resolveSinks,
  resolveAlerts,
  checkPolicyFiles,
  resolveBudget,
  resolveBackendBlock,
  resolveDefaultCheckpoint,
];
