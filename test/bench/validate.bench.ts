// Benchmark: validate a fleet of 10,000 workloads (generated into a temp file) with loadFleet, the
// same path `spotfleet validate` takes. Targets: under 1 s and 300 MB peak RSS.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadFleet } from '../../src/spec/load.js';
import { peakRssMb, report, timeIt } from './util.js';

const WORKLOADS = 10_000;

function generate(n: number): string {
  const lines = [
    'apiVersion: spotfleet.dev/v1',
    'kind: Fleet',
    'metadata: { name: bench }',
    'providers:',
    '  market: { type: sim, config: { trace: ./trace.csv } }',
    '  lab:',
    '    type: local',
    '    config:',
    '      nodes:',
    '        - { name: n1, gpuModel: A100, gpus: 8, capacity: on-demand, pricePerHour: 12 }',
    'pools:',
    '  - { name: spot-v100, provider: market, capacity: spot, gpuModel: V100, maxPricePerHour: 2.0 }',
    '  - { name: od-v100, provider: market, capacity: on-demand, gpuModel: V100 }',
    '  - { name: lab-a100, provider: lab, capacity: on-demand, gpuModel: A100 }',
    'defaults:',
    '  checkpoint: { path: /checkpoints, signal: SIGUSR1, stopGrace: 60s }',
    'workloads:',
  ];
  for (let i = 0; i < n; i++) {
    const a100 = i % 5 === 0;
    lines.push(
      `  - name: train-${i}`,
      `    image: registry.local/train:${i % 17}`,
      `    gpus: ${a100 ? 4 : 1}`,
      `    gpuModel: ${a100 ? 'A100' : 'V100'}`,
      `    class: ${i % 3 === 0 ? 'batch' : 'training'}`,
      `    capacity: ${a100 ? 'on-demand' : 'auto'}`,
      '    expectedDuration: 8h',
      `    fallback: { to: on-demand, minDwell: 30m }`,
      `    env: { SEED: "${i}", MODE: train }`,
      `    labels: { team: t${i % 10} }`,
    );
  }
  lines.push('alerts:', '  - { name: spike, when: "spotPrice > 0.8 * onDemandPrice", notify: [log] }', '');
  return lines.join('\n');
}

const dir = mkdtempSync(join(tmpdir(), 'spotfleet-bench-'));
try {
  const file = join(dir, 'fleet.yaml');
  const text = generate(WORKLOADS);
  writeFileSync(file, text);
  const cold = await timeIt(() => loadFleet(file));
  if (cold.value.fleet.workloads.length !== WORKLOADS) throw new Error(`expected ${WORKLOADS} workloads, got ${cold.value.fleet.workloads.length}`);
  report(`validate ${WORKLOADS} workloads (${(text.length / 1024 / 1024).toFixed(1)} MB), first run`, cold.ms, 'ms', '< 1000 ms');
  report('peak RSS after one validation', peakRssMb(), 'MB', '< 300 MB');
  // A second run: module loading and schema compilation are paid already.
  const warm = await timeIt(() => loadFleet(file));
  report(`validate ${WORKLOADS} workloads, second run`, warm.ms, 'ms', '< 1000 ms');
} finally {
  rmSync(dir, { recursive: true, force: true });
}
