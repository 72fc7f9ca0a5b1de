// Benchmark: validate a fleet of 10,000 workloads (generated into a temp file) with loadFleet, the
// same call `spotfleet validate` makes (no restart hashes: validate has no use for them). Targets: under 500 ms (first and second run) and 300 MB
// peak RSS. Next to wall time it prints CPU time, all threads and the main thread alone (Linux):
// on a busy shared machine the wall clock counts waiting too, and V8's GC and compiler threads run
// beside the main thread.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadFleet } from '../../src/spec/load.js';
import { readSpecFile } from '../../src/spec/source.js';
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

/** CPU ms of the main thread so far (from /proc; undefined elsewhere). */
function mainThreadCpuMs(): number | undefined {
  try {
    const fields = (readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8').split(') ')[1] ?? '').split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10; // utime + stime, in 10 ms ticks
  } catch {
    return undefined;
  }
}

async function measure(label: string, file: string): Promise<number> {
  const cpu0 = process.cpuUsage();
  const main0 = mainThreadCpuMs();
  const run = await timeIt(() => loadFleet(file, { specHashes: false }));
  const cpu = process.cpuUsage(cpu0);
  const main1 = mainThreadCpuMs();
  if (run.value.fleet.workloads.length !== WORKLOADS) throw new Error(`expected ${WORKLOADS} workloads, got ${run.value.fleet.workloads.length}`);
  report(label, run.ms, 'ms', '< 500 ms');
  report('  CPU time, all threads', (cpu.user + cpu.system) / 1000, 'ms');
  if (main0 !== undefined && main1 !== undefined) report('  CPU time, main thread', main1 - main0, 'ms');
  return run.ms;
}

const dir = mkdtempSync(join(tmpdir(), 'spotfleet-bench-'));
try {
  const file = join(dir, 'fleet.yaml');
  const text = generate(WORKLOADS);
  writeFileSync(file, text);
  await measure(`validate ${WORKLOADS} workloads (${(text.length / 1024 / 1024).toFixed(1)} MB), first run`, file);
  report('peak RSS after one validation', peakRssMb(), 'MB', '< 300 MB');
  // A second run: module loading and schema compilation are paid already.
  await measure(`validate ${WORKLOADS} workloads, second run`, file);
  // The numbers above are only the plain-YAML scanner's if the generated fleet takes it.
  const src = readSpecFile(file, 'fleet.yaml').source;
  const parsedBy = src?.parser === 'fast' ? src.via : src?.parser;
  if (parsedBy !== 'plain') throw new Error(`the benchmark fleet took the ${parsedBy ?? 'no'} parser, not the plain-YAML scanner`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
