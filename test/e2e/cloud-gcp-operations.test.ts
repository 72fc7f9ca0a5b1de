// The cloud e2e story (cloud-e2e.ts) on GCP (cloud-gcp-harness.ts) with the fleet-level notice
// source: the preemption shows only in the project's operations list (compute.instances.preempted),
// which the provider lists for every VM it bought, and watch moves the workload off that VM.
import { gcpHarness } from './cloud-gcp-harness.js';
import { describeCloudE2e } from './cloud-e2e.js';

describeCloudE2e('GCP (fake Compute Engine) with the preemption operations as notice source', (lab) => gcpHarness(lab, { preemptionOperations: true }));
