// The process supervisor, as source text. process-runtime writes it to a file once per data folder
// and runs it with process.execPath; shipping it as a string keeps it working from both the
// TypeScript sources (tests) and dist/ without an asset-copy step.
//
// The supervisor runs one workload's argv without a shell, forwards catchable signals to it, and
// writes the exit code into the instance folder when it ends, so that a detached workload's exit
// code is known to a later CLI run. It records its own and the child's pid and start time first
// thing, so a caller that crashes right after spawning still leaves a findable process.
//
// No signal may reach a default handler (see signal-ready.ts):
// - its signal handlers are the first statements it runs. Until they are installed Node treats
//   SIGUSR1 as "open the inspector on 127.0.0.1:9229", which is local code execution; runtimes
//   send a signal only once /proc/PID/status says the supervisor catches it.
// - it forwards a signal whose default action would end the workload (SIGUSR1, SIGUSR2, SIGALRM,
//   SIGHUP...) only once the workload catches it too, waiting up to `readyWaitMs`; a signal the
//   workload never becomes ready for is dropped and said in the log, never delivered to kill it.
//   SIGTERM and SIGINT (a stop) are forwarded at once: ending the workload is what they ask for.
// - its own environment holds nothing of the workload's (no NODE_OPTIONS to open an inspector
//   with): the workload's environment arrives as JSON on file descriptor 3.

/** Version tag in the file name: a changed supervisor never overwrites one that is running. */
export const SUPERVISOR_VERSION = 2;

/** How long the supervisor holds a forwarded signal for a workload that does not catch it yet. */
export const SUPERVISOR_READY_WAIT_MS = 30_000;

export const SUPERVISOR_SOURCE = String.raw`'use strict';
// spotfleet supervisor v2: node supervisor.cjs INSTANCE_DIR READY_WAIT_MS ARGV...   (env JSON on fd 3)
const FORWARD = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH', 'SIGCONT', 'SIGALRM'];
const pending = [];
let forward = (s) => pending.push(s);
// Handlers before anything else: from here on no signal reaches Node's defaults (SIGUSR1 opens
// the inspector, the others end the process).
for (const s of FORWARD) process.on(s, () => forward(s));

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const dir = process.argv[2];
const readyWaitMs = Number(process.argv[3]) || 0;
const argv = process.argv.slice(4);

function startOf(pid) {
  try {
    const t = fs.readFileSync('/proc/' + pid + '/stat', 'utf8');
    return t.slice(t.lastIndexOf(')') + 2).split(' ')[19] || '';
  } catch (e) {
    return '';
  }
}
function writeJson(name, value) {
  const p = path.join(dir, name);
  const tmp = p + '.tmp-' + process.pid;
  fs.writeFileSync(tmp, JSON.stringify(value) + '\n');
  fs.renameSync(tmp, p);
}
function writeOnce(name, value) {
  // exit.json may also be written by a runtime that had to SIGKILL us; never overwrite it.
  try {
    fs.writeFileSync(path.join(dir, name), JSON.stringify(value) + '\n', { flag: 'wx' });
  } catch (e) {}
}
function say(line) {
  try {
    process.stderr.write('spotfleet supervisor: ' + line + '\n');
  } catch (e) {}
}
// True when the process has a handler of its own for the signal (SigCgt in /proc/PID/status).
function catches(pid, sig) {
  const num = os.constants.signals[sig];
  if (!num) return false;
  try {
    const m = /^SigCgt:\s*([0-9a-fA-F]+)$/m.exec(fs.readFileSync('/proc/' + pid + '/status', 'utf8'));
    return m !== null && ((BigInt('0x' + m[1]) >> BigInt(num - 1)) & 1n) === 1n;
  } catch (e) {
    return false;
  }
}

const pids = { supervisor: { pid: process.pid, start: startOf(process.pid) } };
writeJson('pids.json', pids);

let done = false;
function finish(code, signal, error) {
  if (done) return;
  done = true;
  const rec = { code: code, endedAt: new Date().toISOString() };
  if (signal) rec.signal = signal;
  if (error) rec.error = error;
  writeOnce('exit.json', rec);
  process.exit(0);
}

let env;
try {
  env = JSON.parse(fs.readFileSync(3, 'utf8'));
  fs.closeSync(3);
} catch (e) {
  say('no environment for the workload on fd 3: ' + (e && e.message));
  finish(127, undefined, 'no environment');
}
if (argv.length === 0) finish(127, undefined, 'empty command');
let child;
try {
  child = spawn(argv[0], argv.slice(1), { stdio: 'inherit', env: env, shell: false });
} catch (e) {
  say('cannot start ' + argv[0] + ': ' + (e && e.message));
  finish(127, undefined, String(e && e.message));
}
child.on('error', (e) => {
  say('cannot start ' + argv[0] + ': ' + e.message);
  finish(127, undefined, e.message);
});
child.on('exit', (code, signal) => {
  const num = signal ? (os.constants.signals[signal] || 0) : 0;
  finish(code === null ? 128 + num : code, signal || undefined);
});

// A stop ends the workload whatever it catches; SIGWINCH and SIGCONT do nothing by default.
const ALWAYS = new Set(['SIGTERM', 'SIGINT', 'SIGWINCH', 'SIGCONT']);
const waiting = new Map();
function deliver(s) {
  try {
    child.kill(s);
  } catch (e) {}
}
forward = (s) => {
  if (!child || !child.pid) return;
  if (ALWAYS.has(s) || catches(child.pid, s)) return deliver(s);
  if (waiting.has(s)) return; // one held signal of a kind is enough
  const until = Date.now() + readyWaitMs;
  const timer = setInterval(() => {
    if (done) return clearInterval(timer);
    if (catches(child.pid, s)) {
      clearInterval(timer);
      waiting.delete(s);
      deliver(s);
    } else if (Date.now() >= until) {
      clearInterval(timer);
      waiting.delete(s);
      say(s + ' not delivered: the workload has no handler for it (it would have ended the workload)');
    }
  }, 20);
  waiting.set(s, timer);
};
if (child.pid) {
  pids.child = { pid: child.pid, start: startOf(child.pid) };
  pids.ready = true;
  writeJson('pids.json', pids);
}
for (const s of pending.splice(0)) forward(s);
`;
