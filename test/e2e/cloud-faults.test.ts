// Faults of the gcp and azure providers through the built CLI (aws: cloud-aws-faults.test.ts), each
// a clear error naming the provider and the cloud, with nothing paid for left running: bad
// credentials, and a quota exceeded for every offering.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeGce, type FakeGce } from '../fakes/gce.js';
import { startFakeArm, type FakeArm } from '../fakes/arm.js';
import { generateEd25519 } from '../../src/providers/kit/capacity/index.js';
import { selfSignedCert, type TestCert } from '../lab/tls.js';
import { runCli, type CliRun } from './crash-helpers.js';

const show = (r: CliRun): string => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

function fleet(dir: string, type: string, config: string): void {
  writeFileSync(join(dir, 'id_ed25519'), generateEd25519('faults').private, { mode: 0o600 });
  writeFileSync(
    join(dir, 'fleet.yaml'),
    `apiVersion: spotfleet.dev/v1
kind: Fleet
metadata: { name: faults }
providers:
  cloud: { type: ${type}, config: ${config} }
pools:
  - { name: spot, provider: cloud, capacity: spot, gpuModel: V100, node: { user: azureuser, identityFile: ./id_ed25519 } }
  - { name: od, provider: cloud, capacity: on-demand, gpuModel: V100, node: { user: azureuser, identityFile: ./id_ed25519 } }
workloads:
  - { name: train, image: busybox, gpus: 1, gpuModel: V100, class: training, capacity: auto, expectedDuration: 8h, checkpoint: { path: /ck } }
`,
  );
}

describe('gcp faults through the CLI (fake Compute Engine)', () => {
  let gce: FakeGce;
  let dir: string;
  beforeAll(async () => {
    gce = await startFakeGce({ project: 'faults-project', tokens: ['good-token'], machineTypes: { 'n1-standard-8': { gpus: 1, gpuModel: 'V100' } } });
    dir = mkdtempSync(join(tmpdir(), 'sf-gcp-faults-'));
    fleet(dir, 'gcp', `{ project: faults-project, zones: [us-central1-a, us-central1-b], endpoint: ${JSON.stringify(gce.url)}, image: projects/x/global/images/y, machineTypes: { n1-standard-8: { gpuModel: V100, gpus: 1, acceleratorType: nvidia-tesla-v100, onDemandPrice: 2.86, spotPrice: 0.86 } } }`);
  });
  afterAll(async () => {
    await gce.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a bad access token: apply fails naming the provider and GCE (401), launches nothing', async () => {
    const r = await runCli(['apply', '--auto-approve', dir], { cwd: dir, env: { GOOGLE_OAUTH_ACCESS_TOKEN: 'expired-token' } });
    expect(r.code, show(r)).toBe(1);
    expect(r.stderr).toMatch(/provider "cloud".*GCE instances\.list in us-central1-[ab]: .*invalid authentication credentials/);
    expect(r.stderr + r.stdout).not.toContain('expired-token');
    expect(gce.control.instances()).toEqual([]);
  }, 60_000);

  it('GPU quota exceeded everywhere: apply fails naming provider, code and zones; no VM is left', async () => {
    gce.control.noCapacity({ code: 'QUOTA_EXCEEDED' });
    try {
      const r = await runCli(['apply', '--auto-approve', dir], { cwd: dir, env: { GOOGLE_OAUTH_ACCESS_TOKEN: 'good-token' } });
      expect(r.code, show(r)).toBe(1);
      expect(r.stdout + r.stderr).toMatch(/provider "cloud" \(lease\.\w+\): no (spot|on-demand) GCE capacity for 1× V100 in pool \w+ now: n1-standard-8 in us-central1-[ab]: QUOTA_EXCEEDED \(Quota 'V100_GPUS' exceeded/);
      expect(gce.control.instances().filter((i) => !i.deleted)).toEqual([]);
    } finally {
      gce.control.clearCapacityFaults();
    }
  }, 60_000);
});

describe('azure faults through the CLI (fake Resource Manager)', () => {
  let arm: FakeArm;
  let tls: TestCert;
  let dir: string;
  const env = (secret: string): Record<string, string> => ({ AZURE_TENANT_ID: arm.tenantId, AZURE_CLIENT_ID: 'faults-app', AZURE_CLIENT_SECRET: secret, NODE_EXTRA_CA_CERTS: tls.certFile });
  beforeAll(async () => {
    tls = selfSignedCert();
    arm = await startFakeArm({ tls, clients: { 'faults-app': 'right-secret' }, vmSizes: { Standard_NC6s_v3: { gpus: 1, gpuModel: 'V100' } } });
    dir = mkdtempSync(join(tmpdir(), 'sf-azure-faults-'));
    const subnet = `/subscriptions/${arm.subscriptionId}/resourceGroups/${arm.resourceGroup}/providers/Microsoft.Network/virtualNetworks/v/subnets/default`;
    fleet(dir, 'azure', `{ subscriptionId: ${arm.subscriptionId}, resourceGroup: ${arm.resourceGroup}, location: eastus, zones: ["1", "2"], endpoint: ${JSON.stringify(arm.url)}, authorityHost: ${JSON.stringify(arm.authorityHost)}, subnetId: ${subnet}, image: "microsoft-dsvm:ubuntu-hpc:2204:latest", vmSizes: { Standard_NC6s_v3: { gpuModel: V100, gpus: 1, onDemandPrice: 3.06, spotPrice: 0.61 } } }`);
  });
  afterAll(async () => {
    await arm.close();
    rmSync(dir, { recursive: true, force: true });
    rmSync(tls.dir, { recursive: true, force: true });
  });

  it('a wrong client secret: apply fails naming the provider, the application and the tenant; launches nothing; prints no secret', async () => {
    const r = await runCli(['apply', '--auto-approve', dir], { cwd: dir, env: env('wrong-secret') });
    expect(r.code, show(r)).toBe(1);
    expect(r.stderr).toMatch(/provider "cloud".*Azure sign-in of application faults-app in tenant [0-9a-f-]+ failed \(HTTP 401\): AADSTS7000215: Invalid client secret provided/);
    expect(r.stderr + r.stdout).not.toContain('wrong-secret');
    expect(arm.control.vms()).toEqual([]);
  }, 60_000);

  it('cores quota exceeded everywhere: apply fails naming provider, code and zones; no VM is left', async () => {
    arm.control.noCapacity({ code: 'QuotaExceeded' });
    try {
      const r = await runCli(['apply', '--auto-approve', dir], { cwd: dir, env: env('right-secret') });
      expect(r.code, show(r)).toBe(1);
      expect(r.stdout + r.stderr).toMatch(/provider "cloud" \(lease\.\w+\): no (spot|on-demand) Azure capacity for 1× V100 in pool \w+ now: Standard_NC6s_v3 in [12]: QuotaExceeded \(.*Operation could not be completed as it results in exceeding approved/);
      expect(arm.control.vms().filter((v) => !v.deleted)).toEqual([]);
    } finally {
      arm.control.clearCapacityFaults();
    }
  }, 60_000);
});
