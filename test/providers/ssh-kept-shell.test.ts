// The pool's kept shells and forwarded channels against a real sshd whose root login shell is bash
// with a counting ~/.bashrc (the lab's `bashrc` option): commands run exactly as a plain exec
// would run them (argv as data, exit codes, stdout/stderr, NUL bytes, stdin, time limits), while
// the login shell starts once per kept session instead of once per command; a host where the
// kept shell cannot start gets plain execs; direct-tcpip reaches a port as the NODE sees it.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { describeLab } from '../lab/gate.js';
import { startLab, type Lab } from '../lab/lab.js';
import { evil, labContext, labHosts, labTransfer, waitUntil, writeLabCheckpoint } from '../lab/fixtures.js';
import { createSshProvider } from '../../providers/ssh/index.js';
import type { ProviderLogger } from '../../src/providers/sdk.js';
import { SshPool, createSshMetadataTransport, shellLine } from '../../src/providers/kit/ssh/index.js';
import { AwsNoticeReader } from '../../src/providers/kit/metadata/index.js';
import { ProviderError } from '../../src/core/errors.js';

let lab: Lab;
const pools: SshPool[] = [];

function pool(extra: Partial<ConstructorParameters<typeof SshPool>[0]> = {}): SshPool {
  const p = new SshPool({ provider: 'kept', ...extra });
  for (const n of lab.nodes) p.add({ name: n.name, host: n.address, port: n.port, user: 'root', identityFile: lab.clientKeyPath, knownHostsFile: lab.knownHostsPath });
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
    lab = await startLab({ nodes: [{ name: 'a', cloud: 'aws', gpus: 1, gpuModel: 'H100' }, { name: 'b', cloud: 'aws', gpus: 1, gpuModel: 'H100', sshdConfig: ['AllowTcpForwarding no', 'AllowStreamLocalForwarding no'] }], bashrc: {} });
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
    expect((await p.exec('a', ['sh', '-c', 'echo $PWD'])).stdout.trim()).toBe('/root');
    expect((await p.exec('a', ['sh', '-c', 'echo $SPOTFLEET_LAB_NODE'])).stdout.trim()).toBe('a');
    expect((await p.exec('a', ['no-such-program-here'])).code).toBe(127);
    // One kept shell for the commands, and one spare opened beside it.
    await new Promise((r) => setTimeout(r, 1000));
    expect(lab.loginShells('a') - before, 'login shells for eleven commands').toBe(p.stats().keptShellsOpened);
    expect(p.stats()).toMatchObject({ keptShellsOpened: 2, plainExecs: 0 });
  });

  it('runs concurrent commands in as many kept shells, reused afterwards', async () => {
    const p = pool({ maxConcurrentPerHost: 4 });
    const before = lab.loginShells('a');
    const burst = () => Promise.all(Array.from({ length: 8 }, (_, i) => p.exec('a', ['sh', '-c', `sleep 0.2; echo ${i}`])));
    expect((await burst()).map((r) => r.stdout.trim())).toEqual(['0', '1', '2', '3', '4', '5', '6', '7']);
    await burst();
    await new Promise((r) => setTimeout(r, 1000)); // a spare being opened
    expect(p.stats().keptShellsOpened).toBeLessThanOrEqual(4 + 1); // + the spare
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

  it('reads the metadata service through a tunnel from the node, and with curl on a node that refuses forwarding', async () => {
    const p = pool();
    const trigger = (node: string) => join(lab.dir, `spot-${node}.json`);
    // The tiny IMDS binds 169.254.169.254 inside each node's own namespace (see lab.startMetadata).
    const mds = await Promise.all(['a', 'b'].map((n) => lab.startMetadata(n, [process.execPath, lab.tinyImdsPath, '169.254.169.254:80', trigger(n)]))); // inside node n's netns
    try {
      // Checked, not only said: this machine's own namespace has no such address (nor a route the
      // lab added for it), so nothing here could reach it without the SSH hop.
      expect(execFileSync('ip', ['-o', 'addr', 'show']).toString()).not.toContain('169.254.169.254');
      const route = spawnSync('ip', ['route', 'get', '169.254.169.254']).stdout.toString(); // none at all is fine too
      expect(route, 'the lab adds no route to it: not on lo, not over its own links (sf…)').not.toMatch(/\bdev (lo|sf)/);
      const fallbacks: (string | undefined)[] = [];
      const tA = createSshMetadataTransport(p, 'a');
      const tB = createSshMetadataTransport(p, 'b', { onFallback: (why) => fallbacks.push(why) });
      // The URL names the node's own metadata address: every request goes through an SSH channel that
      // the node's sshd opens inside its namespace (or curl on the node); this machine never connects to it.
      const rA = new AwsNoticeReader({ transport: tA, provider: 'kept', baseUrl: 'http://169.254.169.254' });
      const rB = new AwsNoticeReader({ transport: tB, provider: 'kept', baseUrl: 'http://169.254.169.254' });
      await Promise.all([p.connect('a'), p.connect('b')]);
      const before = { a: lab.loginShells('a'), b: lab.loginShells('b') };
      for (let i = 0; i < 3; i++) expect([await rA.poll('a'), await rB.poll('b')]).toEqual([[], []]);
      const action = JSON.stringify({ action: 'terminate', time: new Date(Date.now() + 120_000).toISOString().replace(/\.\d+Z$/, 'Z') });
      for (const n of ['a', 'b']) writeFileSync(trigger(n), action);
      for (const [r, n] of [[rA, 'a'], [rB, 'b']] as const) expect((await r.poll(n)).map((x) => [x.kind, x.action])).toEqual([['preemption', 'terminate']]);
      expect(tA.stats()).toMatchObject({ curled: 0 });
      expect(tA.stats().tunnelled).toBeGreaterThanOrEqual(5);
      expect(lab.loginShells('a') - before.a, 'no shell on the tunnelled node').toBe(0);
      expect(tB.stats()).toMatchObject({ tunnelled: 0 });
      expect(fallbacks).toHaveLength(1);
      expect(fallbacks[0]).toMatch(/cannot open 169\.254\.169\.254:80 from the node/);
      // curl runs in kept shells there: one login shell per concurrent request, not one per request.
      expect(tB.stats().curled).toBeGreaterThanOrEqual(10);
      await new Promise((r) => setTimeout(r, 1000)); // a spare being opened
      expect(lab.loginShells('b') - before.b).toBe(p.stats().keptShellsOpened);
      expect(p.stats().keptShellsOpened).toBeLessThanOrEqual(3 + 1);
    } finally {
      for (const m of mds) await m.stop();
    }
  });

  it('ssh provider: the runtime uses the Engine API over the connection (no shell per call), the docker CLI where forwarding is refused', async () => {
    const warnings: string[] = [];
    const log: ProviderLogger = { debug() {}, info() {}, warn: (m) => void warnings.push(m), error() {} };
    const p = createSshProvider({ hosts: labHosts(lab) }, { ...labContext(lab, 'rt', 'rt'), log });
    try {
      const ids: Record<string, string> = {};
      for (const n of ['a', 'b']) {
        const inst = await p.runtime!.start({ fleet: 'rt', workload: `w-${n}`, node: n, image: lab.image, env: {}, gpus: 1, labels: {}, specHash: 'h', idempotencyKey: `rt-${n}`, checkpointPath: '/checkpoints' });
        ids[n] = inst.id;
        await waitUntil(`trainer on ${n}`, async () => (await p.runtime!.logs!(n, inst.id)).includes('start at step 0'));
        await p.runtime!.signal(n, inst.id, 'SIGUSR1'); // warms the kept shell that reads /proc
      }
      const before = lab.loginShells('a');
      await p.runtime!.signal('a', ids.a as string, 'SIGUSR1');
      await waitUntil('the checkpoint on a', async () => /checkpoint step=\d+ \(USR1\)[\s\S]*checkpoint step=\d+ \(USR1\)/.test(await p.runtime!.logs!('a', ids.a as string)));
      expect((await p.runtime!.list()).filter((i) => i.state === 'running').map((i) => i.node)).toEqual(['a', 'b']);
      expect(await p.runtime!.stop('a', ids.a as string, 5000)).toEqual({ exitCode: 0 });
      await p.runtime!.remove!('a', ids.a as string);
      expect(lab.loginShells('a') - before, 'signal, logs, list, stop and remove on a started no login shell').toBe(0);
      // b refuses streamlocal forwarding: the same operations through the docker CLI, quoted, in a kept shell.
      expect(warnings.filter((w) => /engine API not reachable/.test(w))).toHaveLength(1);
      expect(await p.runtime!.stop('b', ids.b as string, 5000)).toEqual({ exitCode: 0 });
      expect((await p.runtime!.list()).map((i) => [i.node, i.state])).toEqual([['b', 'exited']]);
      await p.runtime!.remove!('b', ids.b as string);
    } finally {
      await p.close?.();
    }
  });

  it('ssh provider: a small checkpoint is copied through the controller (no hop to the source), a large one by rsync', async () => {
    const p = createSshProvider({ hosts: labHosts(lab), transfer: labTransfer(lab) }, labContext(lab, 'tr', 'tr'));
    try {
      const nodes = await p.nodes!.list();
      const [a, b] = ['a', 'b'].map((id) => nodes.find((n) => n.id === id)!);
      const small = `step=7\n${"it's $(not) run\n".repeat(50)}`;
      writeLabCheckpoint(lab, 'a', 'small', small);
      const ck = async (w: string) => (await p.storage!.verify({ node: a!, workload: w }))!;
      const smallCk = await ck('small');
      const before = lab.loginShells('a');
      const r = await p.storage!.transfer({ workload: 'small', from: a!, to: b!, checkpoint: smallCk });
      expect(r).toMatchObject({ skipped: false, bytes: Buffer.byteLength(small) });
      expect(r.checkpoint).toMatchObject({ node: 'b', workload: 'small' });
      expect(readFileSync(join(lab.node('b').srvDir, 'checkpoints', 'small', 'step'), 'utf8')).toBe(small);
      expect(readFileSync(join(lab.node('a').srvDir, 'checkpoints', 'small', 'step'), 'utf8'), 'source untouched').toBe(small);
      const mtime = (n: string) => statSync(join(lab.node(n).srvDir, 'checkpoints', 'small', 'step')).mtimeMs;
      expect(mtime('b'), 'the file time, to the sub-millisecond, as rsync -a keeps it').toBe(mtime('a'));
      expect(lab.loginShells('a') - before, 'no ssh from b to a, so no login shell on a').toBe(0);
      // Above RELAY_MAX_BYTES: rsync, whose ssh from b to a starts a's login shell for rsync --server.
      const big = 'x'.repeat(100_000);
      writeLabCheckpoint(lab, 'a', 'big', big);
      const bigCk = await ck('big');
      const before2 = lab.loginShells('a');
      expect(await p.storage!.transfer({ workload: 'big', from: a!, to: b!, checkpoint: bigCk })).toMatchObject({ skipped: false, bytes: 100_000 });
      expect(readFileSync(join(lab.node('b').srvDir, 'checkpoints', 'big', 'step'), 'utf8')).toBe(big);
      expect(lab.loginShells('a') - before2).toBeGreaterThanOrEqual(1);
    } finally {
      await p.close?.();
    }
  });
});
