// Validation of pools whose provider sells capacity: how their nodes are reached (`pools[].node`,
// with defaults), and the provider's own checks of the pool (no instance types, no node access,
// no machine image, a GPU model no instance type has) reported at file:line:col, not as a silent
// "No changes" later.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SpecError, formatProblem } from '../../src/core/errors.js';
import { loadFleet } from '../../src/spec/load.js';
import { formatFleetText } from '../../src/spec/fmt.js';

const tmp = mkdtempSync(join(tmpdir(), 'spotfleet-cap-pools-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
function write(text: string): string {
  const p = join(tmp, `f${n++}.yaml`);
  writeFileSync(p, text);
  return p;
}

const AWS = `apiVersion: spotfleet.dev/v1
kind: Fleet
metadata: { name: t }
providers:
  cloud:
    type: aws
    config:
      region: us-east-1
      imageId: ami-0123456789abcdef0
      instanceTypes:
        p3.2xlarge: { gpuModel: V100, gpus: 1, onDemandPrice: 3.06 }
`;
const WORKLOAD = `workloads:
  - { name: w, image: busybox, gpus: 1, gpuModel: V100, capacity: spot }
`;

async function errors(text: string): Promise<string[]> {
  try {
    await loadFleet(write(text), { cwd: tmp });
  } catch (e) {
    if (e instanceof SpecError) return e.problems.filter((p) => p.severity === 'error').map(formatProblem);
    throw e;
  }
  return [];
}

describe('pools of capacity providers', () => {
  it('takes node access with its defaults', async () => {
    const { fleet } = await loadFleet(
      write(`${AWS}pools:
  - name: spot
    provider: cloud
    capacity: spot
    gpuModel: V100
    node: { identityFile: ./id_ed25519, user: ubuntu, readyTimeout: 4m, nvidiaRuntime: true }
${WORKLOAD}`),
      { cwd: tmp },
    );
    expect(fleet.pools[0]!.node).toEqual({ via: 'ssh', user: 'ubuntu', identityFile: './id_ed25519', port: 22, runtime: 'docker', address: 'auto', readyTimeoutMs: 240_000, nvidiaRuntime: true });
  });

  it('an aws pool that does not say how its nodes are reached is an error at the pool', async () => {
    const errs = await errors(`${AWS}pools:
  - { name: spot, provider: cloud, capacity: spot, gpuModel: V100 }
${WORKLOAD}`);
    expect(errs).toHaveLength(1);
    expect(errs[0]).toMatch(/^f\d+\.yaml:13:5: pool "spot" \(provider "cloud", aws\): does not say how the nodes it buys are reached \(expected node: \{ via: ssh, user: ubuntu, identityFile: .*\}\)$/);
  });

  it('an aws provider without instance types cannot back a pool; a GPU model no type has; no image', async () => {
    const noTypes = await errors(`apiVersion: spotfleet.dev/v1
kind: Fleet
metadata: { name: t }
providers:
  cloud: { type: aws, config: { region: us-east-1 } }
pools:
  - { name: spot, provider: cloud, capacity: spot, node: { identityFile: ./k } }
${WORKLOAD}`);
    expect(noTypes.join('\n')).toMatch(/:7:29: pool "spot" \(provider "cloud", aws\): the provider has no instanceTypes, so it cannot buy nodes/);

    const model = await errors(`${AWS}pools:
  - { name: spot, provider: cloud, capacity: spot, gpuModel: H100, node: { identityFile: ./k } }
workloads:
  - { name: w, image: busybox, gpus: 1, gpuModel: H100, capacity: spot }
`);
    expect(model.join('\n')).toMatch(/:13:62: pool "spot" \(provider "cloud", aws\): no instance type in the provider's instanceTypes has GPU model "H100" \(expected one of V100\)/);

    const image = await errors(`${AWS.replace('      imageId: ami-0123456789abcdef0\n', '')}pools:
  - { name: spot, provider: cloud, capacity: spot, gpuModel: V100, node: { identityFile: ./k } }
${WORKLOAD}`);
    expect(image.join('\n')).toMatch(/pool "spot" \(provider "cloud", aws\): names no machine image to launch \(expected node\.image: ami-… in the pool, or imageId: ami-… in the aws provider config\)/);
  });

  it('node keys are checked by the schema and the semantic rules', async () => {
    const errs = await errors(`${AWS}pools:
  - name: spot
    provider: cloud
    capacity: spot
    gpuModel: V100
    node: { identityFile: ./k, via: telnet, readyTimeout: 2s }
${WORKLOAD}`);
    expect(errs.join('\n')).toMatch(/node\.via|via/);
    const short = await errors(`${AWS}pools:
  - name: spot
    provider: cloud
    capacity: spot
    gpuModel: V100
    node: { identityFile: ./k, readyTimeout: 2s }
${WORKLOAD}`);
    expect(short).toEqual([expect.stringMatching(/:17:46: node\.readyTimeout of 2s is too short for a VM to boot/)]);
  });

  it('takes idleRelease as a duration (absent or 0s: release at once), and names a bad one at file:line:col', async () => {
    const pools = (idle: string) => `${AWS}pools:
  - name: spot
    provider: cloud
    capacity: spot
    gpuModel: V100
    idleRelease: ${idle}
    node: { identityFile: ./k }
${WORKLOAD}`;
    expect((await loadFleet(write(pools('15m')), { cwd: tmp })).fleet.pools[0]!.idleReleaseMs).toBe(900_000);
    expect((await loadFleet(write(pools('0s')), { cwd: tmp })).fleet.pools[0]!.idleReleaseMs).toBeUndefined();
    const bad = await errors(pools('soon'));
    expect(bad.join('\n')).toMatch(/:17:18: .*idleRelease/);
    const out = formatFleetText(pools('5m').replace('    idleRelease: 5m\n', '').replace('    capacity: spot\n', '    idleRelease: 5m\n    capacity: spot\n'), 'f.yaml');
    expect(out).toContain('    gpuModel: V100\n    idleRelease: 5m\n    node:');
  });

  it('fmt puts node keys in their canonical order', () => {
    const out = formatFleetText(`${AWS}pools:
  - node:
      readyTimeout: 5m
      identityFile: ./k
      via: ssh
    capacity: spot
    name: spot
    provider: cloud
`, 'f.yaml');
    expect(out).toContain(`  - name: spot
    provider: cloud
    capacity: spot
    node:
      via: ssh
      identityFile: ./k
      readyTimeout: 5m`);
  });
});

describe('the cloud examples', () => {
  it.each(['aws', 'gcp', 'azure'])('examples/%s validates and is formatted', async (cloud) => {
    const { fleet } = await loadFleet(join(import.meta.dirname, '..', '..', 'examples', cloud));
    expect(fleet.pools.every((p) => p.node !== undefined)).toBe(true);
    const text = readFileSync(join(import.meta.dirname, '..', '..', 'examples', cloud, 'fleet.yaml'), 'utf8');
    expect(formatFleetText(text, 'fleet.yaml')).toBe(text);
  });

  it('the permission files are valid JSON', () => {
    const policy = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'examples', 'aws', 'iam-policy.json'), 'utf8')) as { Statement: { Action: string | string[] }[] };
    const actions = policy.Statement.flatMap((s) => ([] as string[]).concat(s.Action));
    for (const a of ['ec2:RunInstances', 'ec2:TerminateInstances', 'ec2:DescribeInstances', 'ec2:DescribeSpotPriceHistory', 'pricing:GetProducts']) expect(actions).toContain(a);
    const role = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'examples', 'azure', 'role.json'), 'utf8')) as { Actions: string[] };
    for (const a of ['Microsoft.Compute/virtualMachines/write', 'Microsoft.Compute/virtualMachines/delete', 'Microsoft.Network/virtualNetworks/subnets/join/action']) expect(role.Actions).toContain(a);
  });
});
