// The quickstart tour (`npm run quickstart`): runs the quickstart fleet on the embedded providers
// (local nodes + a replayed AWS V100 spot market) through the real CLI, as a user would:
// validate, look at nodes and prices, plan, apply, then `watch` while a spot node gets an eviction
// notice, and finally destroy. Everything runs on this machine; nothing to install.
import { spawn, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const fleet = join(root, 'examples/quickstart');
const cli = join(root, 'dist/src/cli/main.js');
const keep = process.argv.includes('--keep');

function step(title) {
  console.log(`\n\x1b[1m━━ ${title}\x1b[0m`);
}
function run(args, { quiet = false } = {}) {
  console.log(`\x1b[2m$ spotfleet ${args.join(' ')}\x1b[0m`);
  const r = spawnSync(process.execPath, [cli, ...args], { cwd: fleet, encoding: 'utf8', env: { ...process.env } });
  if (!quiet) process.stdout.write(r.stdout);
  process.stderr.write(r.stderr);
  if (r.status !== 0 && r.status !== 2) {
    console.error(`spotfleet ${args[0]} exited with ${r.status}`);
    process.exit(1);
  }
  return r.stdout;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

rmSync(join(fleet, '.spotfleet'), { recursive: true, force: true });
step('1. Validate the fleet spec (offline)');
run(['validate', '.']);
step('2. The providers and what they offer: nodes, spot and on-demand prices per zone');
run(['providers', '.']);
run(['nodes', '.']);
step('3. Plan: what spotfleet would do, why, and what it costs');
run(['plan', '.']);
step('4. Apply: the trainers start as real processes on spot capacity');
run(['apply', '--auto-approve', '.']);
run(['status', '.']);
step('5. Watch: a spot node gets an eviction notice; the trainer checkpoints, moves and resumes');
const status = JSON.parse(run(['status', '--json', '.'], { quiet: true }));
const victim = status.workloads.find((w) => w.phase === 'running' && w.capacity === 'spot') ?? status.workloads[0];
const watch = spawn(process.execPath, [cli, 'watch', '.', '--listen', '127.0.0.1:0', '--notice-interval', '1s'], { cwd: fleet, stdio: ['ignore', 'pipe', 'inherit'] });
let moved = false;
watch.stdout.on('data', (d) => {
  for (const line of d.toString().split('\n')) {
    if (!line.trim()) continue;
    try {
      const e = JSON.parse(line);
      if (['notice', 'signal', 'migrate', 'checkpoint', 'acquire', 'stop', 'transfer', 'start', 'release'].includes(e.action) || e.level === 'error') {
        const extra = e.timings ? ` ${JSON.stringify(e.timings)} downtime ${e.downtimeMs} ms` : e.durationMs !== undefined ? ` (${e.durationMs} ms)` : '';
        console.log(`  watch: ${e.address ?? e.node ?? ''} ${e.msg}${extra}`);
        if (e.action === 'migrate') moved = true;
      }
    } catch {
      // not a log line
    }
  }
});
await sleep(3000);
run(['sim', 'evict', victim.node, '.', '--in', '30s']);
for (let i = 0; i < 60 && !moved; i++) await sleep(500);
await sleep(1500);
run(['status', '.']);
console.log("The trainer's own output, across its move (both instances):");
run(['logs', `workload.${victim.name}`, '.', '--all-instances', '--tail', '3']);
watch.kill('SIGTERM');
await new Promise((r) => watch.on('close', r));
if (keep) {
  console.log('\nLeft running (--keep). Stop everything with: spotfleet destroy --auto-approve examples/quickstart');
} else {
  step('6. Destroy: checkpoint and stop everything, release the leases');
  run(['destroy', '--auto-approve', '.']);
}
console.log(moved ? '\nQuickstart complete: the workload survived an eviction without losing work.' : '\nQuickstart complete (no migration was observed; see the watch lines above).');
