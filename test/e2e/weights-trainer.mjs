#!/usr/bin/env node
// A test trainer whose checkpoints are folders, as a model's are: a large `weights.bin` that stays
// the same from one checkpoint to the next (frozen layers) and a small `state.json` with the step.
// It follows the same contract as the quickstart trainer: a checkpoint every CHECKPOINT_EVERY
// steps (one every STEP_MS), on SIGUSR1 (and goes on), and on SIGTERM (then exits 0); each written
// to a dot-named temp folder and renamed; resumes from $RESUME_FROM_CHECKPOINT (one checkpoint
// folder) and logs `resumed from step N`. WEIGHTS_BYTES sets the size of weights.bin.
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.env.CHECKPOINT_DIR || join(process.cwd(), 'checkpoints');
const every = Math.max(1, Number(process.env.CHECKPOINT_EVERY || 40));
const stepMs = Math.max(1, Number(process.env.STEP_MS || 50));
const weightsBytes = Math.max(1, Number(process.env.WEIGHTS_BYTES || 8_000_000));
const name = process.env.SPOTFLEET_WORKLOAD || 'trainer';
const weights = Buffer.alloc(weightsBytes, 42);

function log(line) {
  process.stdout.write(`${new Date().toISOString()} ${name} ${line}\n`);
}

let step = 0;
let timer;
process.on('SIGUSR1', () => checkpoint('SIGUSR1'));
process.on('SIGTERM', () => {
  if (timer) clearInterval(timer);
  checkpoint('SIGTERM');
  log(`exiting on SIGTERM at step ${step}`);
  process.exit(0);
});

const resume = process.env.RESUME_FROM_CHECKPOINT;
if (resume) {
  try {
    step = JSON.parse(readFileSync(join(resume, 'state.json'), 'utf8')).step;
    if (!Number.isInteger(step)) throw new Error('no step');
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
  const final = join(dir, `ckpt-step-${String(step).padStart(9, '0')}`);
  const tmp = join(dir, `.ckpt-step-${step}-${process.pid}.tmp`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  writeFileSync(join(tmp, 'weights.bin'), weights);
  writeFileSync(join(tmp, 'state.json'), `${JSON.stringify({ step, reason, at: new Date().toISOString() })}\n`);
  rmSync(final, { recursive: true, force: true });
  renameSync(tmp, final);
  log(`checkpoint step=${step} reason=${reason}`);
  const all = readdirSync(dir).filter((f) => /^ckpt-step-\d+$/.test(f)).sort();
  for (const f of all.slice(0, Math.max(0, all.length - 3))) rmSync(join(dir, f), { recursive: true, force: true });
}

timer = setInterval(() => {
  step += 1;
  if (step % every === 0) checkpoint('periodic');
}, stepMs);
