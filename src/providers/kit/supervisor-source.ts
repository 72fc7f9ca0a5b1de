// The process supervisor, as source text. process-runtime writes it to a file once per data folder
// and runs it with process.execPath; shipping it as a string keeps it working from both the
// TypeScript sources (tests) and dist/ without an asset-copy step.
//
// The supervisor runs one workload's argv without a shell, forwards catchable signals to it, and
// writes the exit code into the instance folder when it ends, so that a detached workload's exit
// code is known to a later CLI run. It records its own and the child's pid and start time first
// thing, so a caller that crashes right after spawning still leaves a findable process.

/** Version tag in the file name: a changed supervisor never overwrites one that is running. */
export const SUPERVISOR_VERSION = 1;

export const SUPERVISOR_SOURCE = String.raw`'use strict';
// spotfleet supervisor v1: node supervisor.cjs INSTANCE_DIR ARGV...
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const dir = process.argv[2];
const argv = process.argv.slice(3);

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

if (argv.length === 0) finish(127, undefined, 'empty command');
let child;
try {
  child = spawn(argv[0], argv.slice(1), { stdio: 'inherit', env: process.env, shell: false });
} catch (e) {
  process.stderr.write('spotfleet: cannot start ' + argv[0] + ': ' + (e && e.message) + '\n');
  finish(127, undefined, String(e && e.message));
}
if (child.pid) {
  pids.child = { pid: child.pid, start: startOf(child.pid) };
  writeJson('pids.json', pids);
}
child.on('error', (e) => {
  process.stderr.write('spotfleet: cannot start ' + argv[0] + ': ' + e.message + '\n');
  finish(127, undefined, e.message);
});
child.on('exit', (code, signal) => {
  const num = signal ? (os.constants.signals[signal] || 0) : 0;
  finish(code === null ? 128 + num : code, signal || undefined);
});
for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH', 'SIGCONT', 'SIGALRM']) {
  process.on(s, () => {
    try {
      child.kill(s);
    } catch (e) {}
  });
}
`;
