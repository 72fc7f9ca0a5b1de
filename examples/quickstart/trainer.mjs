#!/usr/bin/env node
// A sample trainer with no dependencies, for the quickstart and the tests. It counts training
// steps (one every STEP_MS, default 200 ms) and follows spotfleet's checkpoint contract:
// - checkpoints to $CHECKPOINT_DIR every CHECKPOINT_EVERY steps (default 25), on SIGUSR1 (and goes
//   on), and on SIGTERM/SIGINT (then exits 0); each checkpoint is written atomically (temp + rename);
// - on start, resumes from $RESUME_FROM_CHECKPOINT (a checkpoint file, or a folder of them) and
//   logs `resumed from step N`; otherwise logs `starting from step 0`;
// - stops with exit 0 after TOTAL_STEPS steps when that is set;
// - takes CHECKPOINT_MS to write a checkpoint asked for by SIGUSR1 (default 0), to act a big model.
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.env.CHECKPOINT_DIR || join(process.cwd(), 'checkpoints');
const every = Math.max(1, Number(process.env.CHECKPOINT_EVERY || 25));
const stepMs = Math.max(1, Number(process.env.STEP_MS || 200));
const total = process.env.TOTAL_STEPS ? Number(process.env.TOTAL_STEPS) : Infinity;
const keep = 3;
// How long a checkpoint asked for by SIGUSR1 takes to write (a large model's save), for tests.
const checkpointMs = Math.max(0, Number(process.env.CHECKPOINT_MS || 0));
const name = process.env.SPOTFLEET_WORKLOAD || 'trainer';

function log(line) {
  process.stdout.write(`${new Date().toISOString()} ${name} ${line}\n`);
}

function newestIn(folder) {
  const files = readdirSync(folder).filter((f) => /^ckpt-step-\d+\.json$/.test(f)).sort();
  return files.length ? join(folder, files[files.length - 1]) : undefined;
}

function readStep(path) {
  let file = path;
  if (statSync(path).isDirectory()) file = newestIn(path);
  if (!file) throw new Error(`no checkpoint in ${path}`);
  const data = JSON.parse(readFileSync(file, 'utf8'));
  if (!Number.isInteger(data.step) || data.step < 0) throw new Error(`${file}: no step in checkpoint`);
  return data.step;
}

let step = 0;
let timer;
// Handlers first: a checkpoint signal that arrives early must not kill the process (or, for
// SIGUSR1, open Node's inspector).
process.on('SIGUSR1', () => (checkpointMs > 0 ? setTimeout(() => checkpoint('SIGUSR1'), checkpointMs) : checkpoint('SIGUSR1')));
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    if (timer) clearInterval(timer);
    checkpoint(sig);
    log(`exiting on ${sig} at step ${step}`);
    process.exit(0);
  });
}

const resume = process.env.RESUME_FROM_CHECKPOINT;
if (resume) {
  try {
    step = readStep(resume);
  } catch (e) {
    log(`cannot resume from ${resume}: ${e.message}`);
    process.exit(2);
  }
  log(`resumed from step ${step}`);
} else {
  log('starting from step 0');
}

function checkpoint(reason) {
  mkdirSync(dir, { recursive: true });
  const final = join(dir, `ckpt-step-${String(step).padStart(9, '0')}.json`);
  const tmp = join(dir, `.ckpt-step-${step}.json.tmp`);
  const fd = openSync(tmp, 'w');
  writeSync(fd, `${JSON.stringify({ step, workload: name, reason, at: new Date().toISOString() })}\n`);
  fsyncSync(fd);
  closeSync(fd);
  renameSync(tmp, final);
  log(`checkpoint step=${step} reason=${reason}`);
  // Keep the newest few so a long run does not fill the disk.
  const all = readdirSync(dir).filter((f) => /^ckpt-step-\d+\.json$/.test(f)).sort();
  for (const f of all.slice(0, Math.max(0, all.length - keep))) rmSync(join(dir, f), { force: true });
}

timer = setInterval(() => {
  step += 1;
  if (step % every === 0) checkpoint('periodic');
  if (step >= total) {
    clearInterval(timer);
    if (step % every !== 0) checkpoint('done');
    log(`training complete at step ${step}`);
    process.exit(0);
  }
}, stepMs);

