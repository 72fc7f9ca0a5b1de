// Faults of the aws provider through the built CLI, each a clear error naming the provider (and
// what failed) with nothing paid left running: bad credentials, and a quota exceeded everywhere.
// (A VM that never boots and one whose SSH host key is not the injected one are terminated by the
// provider after its ready timeout: test/capacity/aws-nodes.test.ts, against lab nodes.)
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeEc2, type FakeEc2 } from '../fakes/ec2.js';
import { generateEd25519 } from '../../src/providers/kit/capacity/index.js';
import { runCli, type CliRun } from './crash-helpers.js';

const CREDS = { accessKeyId: 'AKIDFAULTS', secretAccessKey: 'faults-secret' };
const ENV = { AWS_ACCESS_KEY_ID: CREDS.accessKeyId, AWS_SECRET_ACCESS_KEY: CREDS.secretAccessKey };
const show = (r: CliRun): string => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

describe('aws faults through the CLI (fake EC2)', () => {
  let ec2: FakeEc2;
  let dir: string;
  beforeAll(async () => {
    ec2 = await startFakeEc2({ credentials: CREDS, instanceTypes: { 'p3.2xlarge': { spotPrice: 0.918 } } });
    dir = mkdtempSync(join(tmpdir(), 'sf-aws-faults-'));
    writeFileSync(join(dir, 'id_ed25519'), generateEd25519('faults').private, { mode: 0o600 });
    writeFileSync(
      join(dir, 'fleet.yaml'),
      `apiVersion: spotfleet.dev/v1
kind: Fleet
metadata: { name: faults }
providers:
  cloud:
    type: aws
    config: { region: us-east-1, endpoint: ${JSON.stringify(ec2.url)}, imageId: ami-0123456789abcdef0, instanceTypes: { p3.2xlarge: { gpuModel: V100, gpus: 1, onDemandPrice: 3.06 } } }
pools:
  - { name: spot, provider: cloud, capacity: spot, gpuModel: V100, node: { identityFile: ./id_ed25519 } }
  - { name: od, provider: cloud, capacity: on-demand, gpuModel: V100, node: { identityFile: ./id_ed25519 } }
workloads:
  - { name: train, image: busybox, gpus: 1, gpuModel: V100, class: training, capacity: auto, expectedDuration: 8h, checkpoint: { path: /ck } }
`,
    );
  });
  afterAll(async () => {
    await ec2.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const live = () => ec2.control.instances().filter((i) => i.state === 'pending' || i.state === 'running');

  it('bad credentials: plan and apply fail naming the provider and EC2, launch nothing, print no secret or stack', async () => {
    const env = { ...ENV, AWS_SECRET_ACCESS_KEY: 'not-the-secret' };
    for (const cmd of [['plan', dir], ['apply', '--auto-approve', dir]]) {
      const r = await runCli(cmd, { cwd: dir, env });
      expect(r.code, show(r)).toBe(1);
      expect(r.stderr).toMatch(/provider "cloud".*EC2 \w+ \(HTTP 401\): AuthFailure/);
      expect(r.stderr + r.stdout).not.toContain('not-the-secret');
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
    expect(ec2.control.instances()).toEqual([]);
  }, 60_000);

  it('quota exceeded everywhere: apply fails naming the provider, the code and the zones tried; nothing is left running', async () => {
    ec2.control.noCapacity({ code: 'VcpuLimitExceeded', market: 'on-demand' });
    ec2.control.noCapacity({ code: 'MaxSpotInstanceCountExceeded', market: 'spot' });
    try {
      const r = await runCli(['apply', '--auto-approve', dir], { cwd: dir, env: ENV });
      expect(r.code, show(r)).toBe(1);
      const out = r.stdout + r.stderr;
      expect(out).toMatch(/provider "cloud" \(lease\.\w+\): no (spot|on-demand) EC2 capacity for 1× V100 in pool \w+ now: p3\.2xlarge in us-east-1[ab]: (MaxSpotInstanceCountExceeded|VcpuLimitExceeded)/);
      expect(out).toMatch(/workload\.train/);
      expect(live()).toEqual([]);
      // The miss is remembered: the next plan quotes that capacity unavailable instead of trying again at once.
      const nodes = await runCli(['nodes', dir, '--json'], { cwd: dir, env: ENV });
      expect(nodes.code, show(nodes)).toBe(0);
      expect(nodes.stdout).toMatch(/"available": false/);
    } finally {
      ec2.control.clearCapacityFaults();
    }
  }, 60_000);
});
