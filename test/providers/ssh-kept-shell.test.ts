// The pool's kept shells and forwarded channels against a real sshd whose root login shell is bash
// with a counting ~/.bashrc (the lab's `bashrc` option): commands run exactly as a plain exec
// would run them (argv as data, exit codes, stdout/stderr, NUL bytes, stdin, time limits), while
// the login shell starts once per kept session instead of once per command; a host where the
// kept shell cannot start gets plain execs; direct-tcpip reaches a port as the NODE sees it.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describeLab } from '../lab/gate.js';
import { startLab, type Lab } from '../lab/lab.js';
import { evil } from '../lab/fixtures.js';
import { SshPool, shellLine } from '../../src/providers/kit/ssh/index.js';
import { ProviderError } from '../../src/core/errors.js';

let lab: Lab;
const pools: SshPool[] = [];

function pool(extra: Partial<ConstructorParameters<typeof SshPool>[0]> = {}): SshPool {
  const p = new SshPool({ provider: 'kept', ...extra });
  const n = lab.node('a');
  p.add({ name: 'a', host: n.address, port: n.port, user: 'root', identityFile: lab.clientKeyPath, knownHostsFile: lab.knownHostsPath });
  pools.push(p);
  return p;
}

it('writes a newline inside an argument as the node\'s "$N", so each command is one line', () => {
  expect(shellLine(['printf', '%s', 'a\nb'])).toBe(`printf %s 'a'"$N"'b'`);
  expect(shellLine(['echo', 'x'], 'in\nput')).not.toContain('\n');
  expect(shellLine(['cat'], Buffer.from([0, 1, 2]))).toBeUndefined();
});

describeLab('ssh pool: kept shells and forwarded channels (lab)', () => {
  beforeAll(async () => {
    lab = await startLab({ nodes: [{ name: 'a', gpus: 1, gpuModel: 'H100' }], bashrc: {} });
  }, 120_000);
  afterAll(async () => {
    for (const p of pools) await p.close();
    await lab?.close();
  });

  it('runs commands as exec would, with the login shell started once', async () => {
    const p = pool();
    const before = lab.loginShells('a');
    const canary = join(lab.node('a').srvDir, `canary-${Date.now()}`);
    const nodeCanary = `/srv/spotfleet/${canary.split('/').pop() as string}`;
    const e = evil(nodeCanary);
    const echoed = await p.exec('a', ['printf', '%s', e]);
    expect(echoed).toEqual({ code: 0, stdout: e, stderr: '' });
    for (const i of [1, 2, 3, 4]) expect(existsSync(`${canary}-${i}`), `canary ${i}`).toBe(false);
    expect(await p.exec('a', ['sh', '-c', 'echo out; echo err >&2; exit 7'])).toEqual({ code: 7, stdout: 'out\n', stderr: 'err\n' });
    const nul = await p.exec('a', ['printf', 'a\\0b\\0no-newline']);
    expect(nul.stdout).toBe('a\0b\0no-newline');
    const big = await p.exec('a', ['sh', '-c', 'head -c 3000000 /dev/zero | tr "\\0" x']);
    expect(big.stdout.length).toBe(3_000_000);
    expect(await p.exec('a', ['sh', '-c', 'cat; echo "|$#"', 'sh'], { stdin: "it's\nstdin $(x)\n" })).toMatchObject({ code: 0, stdout: "it's\nstdin $(x)\n|0\n" });
    // A command that reads stdin gets EOF, not the next command.
    expect(await p.exec('a', ['cat'])).toMatchObject({ code: 0, stdout: '' });
    expect((await p.exec('a', ['sh', '-c', 'echo $PWD'])).stdout.trim()).toBe(join(lab.dir, 'home'));
    expect((await p.exec('a', ['sh', '-c', 'echo $SPOTFLEET_LAB_NODE'])).stdout.trim()).toBe('a');
    expect((await p.exec('a', ['no-such-program-here'])).code).toBe(127);
    expect(lab.loginShells('a') - before, 'one login shell for eleven commands').toBe(1);
    expect(p.stats()).toMatchObject({ keptShellsOpened: 1, plainExecs: 0 });
  });

  it('runs concurrent commands in as many kept shells, reused afterwards', async () => {
    const p = pool({ maxConcurrentPerHost: 4 });
    const before = lab.loginShells('a');
    const burst = () => Promise.all(Array.from({ length: 8 }, (_, i) => p.exec('a', ['sh', '-c', `sleep 0.2; echo ${i}`])));
    expect((await burst()).map((r) => r.stdout.trim())).toEqual(['0', '1', '2', '3', '4', '5', '6', '7']);
    await burst();
    expect(p.stats().keptShellsOpened).toBeLessThanOrEqual(4);
    expect(lab.loginShells('a') - before).toBe(p.stats().keptShellsOpened);
  });

  it('gives up on a command past its time limit, and the next command gets a fresh shell', async () => {
    const p = pool();
    const err = await p.exec('a', ['sleep', '5'], { timeoutMs: 300 }).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(ProviderError);
    expect((err as Error).message).toMatch(/node "a" .*`sleep` did not finish within 300 ms/);
    expect((await p.exec('a', ['echo', 'after'])).stdout).toBe('after\n');
  });

  it('falls back to plain execs on a host whose kept shell does not start', async () => {
    const p = pool({ keptShellStartTimeoutMs: 1 });
    const before = lab.loginShells('a');
    for (let i = 0; i < 3; i++) expect((await p.exec('a', ['echo', String(i)])).stdout).toBe(`${i}\n`);
    expect(p.stats()).toMatchObject({ keptShellsOpened: 0, plainExecs: 3 });
    // The failed try started a login shell too (then gave up on it within 1 ms).
    expect(lab.loginShells('a') - before).toBeGreaterThanOrEqual(3);
  });

  it('runs every command as a plain exec with keptShells: false', async () => {
    const p = pool({ keptShells: false });
    const before = lab.loginShells('a');
    for (let i = 0; i < 3; i++) await p.exec('a', ['true']);
    expect(lab.loginShells('a') - before).toBe(3);
  });

  it('opens a TCP port as the node sees it (direct-tcpip), starting no shell', async () => {
    const p = pool();
    await p.connect('a');
    const before = lab.loginShells('a');
    // Docker-free peer inside the node's namespace: its sshd on the node's own address.
    const s = await p.openTcp('a', lab.node('a').address, 22);
    const banner = await new Promise<string>((resolve, reject) => {
      s.once('data', (d: Buffer) => resolve(d.toString()));
      s.once('error', reject);
    });
    s.destroy();
    expect(banner).toMatch(/^SSH-2\.0-/);
    const refused = await p.openTcp('a', '127.0.0.1', 1).catch((x: unknown) => x);
    expect(refused).toBeInstanceOf(ProviderError);
    expect((refused as Error).message).toMatch(/node "a" .*cannot open 127\.0\.0\.1:1 from the node/);
    expect(lab.loginShells('a') - before).toBe(0);
  });
});
