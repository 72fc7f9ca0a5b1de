// The cloud e2e story (cloud-e2e.ts) on GCP (cloud-gcp-harness.ts): the eviction is a Spot
// preemption on the VM's own metadata server, read over SSH.
import { gcpHarness } from './cloud-gcp-harness.js';
import { describeCloudE2e } from './cloud-e2e.js';

describeCloudE2e('GCP (fake Compute Engine)', (lab) => gcpHarness(lab));
