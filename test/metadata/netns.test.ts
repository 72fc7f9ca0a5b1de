// The metadata fake as the test lab runs it: inside a network namespace this test creates, bound
// to 169.254.169.254:80 on that namespace's loopback, driven over its control socket from outside,
// and read with curl run inside the namespace (the shape of the SSH transport). Nothing here
// touches 169.254.169.254 in the root namespace. Needs root and iproute2; skips without them
// unless SPOTFLEET_REAL_PEERS=1, where it fails instead.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callControl, type ControlTarget } from '../fakes/http-util.js';
import { AwsNoticeReader, AzureNoticeReader, GcpNoticeReader, curlArgv, parseCurlOutput, type MetadataTransport } from '../../src/providers/kit/metadata/index.js';

const MAIN = resolve('dist/test/fakes/metadata-main.js');
const IP = ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip'].find((p) => existsSync(p));
const CURL = ['/usr/bin/curl', '/bin/curl'].find((p) => existsSync(p));
const canRun = process.getuid?.() === 0 && IP !== undefined && CURL !== undefined;
const mustRun = process.env.SPOTFLEET_REAL_PEERS === '1';

function run(file: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((ok) => {
    execFile(file, args, { encoding: 'utf8' }, (err, stdout, stderr) => ok({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
  });
}

async function must(file: string, args: string[]): Promise<void> {
  const r = await run(file, args);
  if (r.code !== 0) throw new Error(`${file} ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
}

describe.skipIf(!canRun && !mustRun)('metadata fakes inside a network namespace on 169.254.169.254:80', () => {
  const ns = `sfmeta${process.pid}`;
  const dir = mkdtempSync(join(tmpdir(), 'sf-netns-'));
  const children: ChildProcess[] = [];
  /** Runs curlArgv inside the namespace, as the SSH transport runs it on a node. */
  const inNs: MetadataTransport = {
    async request(req) {
      const r = await run(IP as string, ['netns', 'exec', ns, ...curlArgv(req)]);
      return parseCurlOutput(r.stdout, { url: req.url, code: r.code, stderr: r.stderr });
    },
  };

  async function startFake(cloud: string, extra: string[]): Promise<{ child: ChildProcess; control: ControlTarget }> {
    const sock = join(dir, `${cloud}.sock`);
    const child = spawn(IP as string, ['netns', 'exec', ns, process.execPath, MAIN, '--cloud', cloud, '--host', '169.254.169.254', '--port', '80', '--control-socket', sock, ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let err = '';
    child.stderr?.on('data', (c: Buffer) => (err += c.toString()));
    const line = await new Promise<string>((ok, fail) => {
      createInterface({ input: child.stdout as NodeJS.ReadableStream }).once('line', ok);
      child.once('exit', (code) => fail(new Error(`fake exited ${String(code)}: ${err}`)));
    });
    const ready = JSON.parse(line) as { url: string; control: ControlTarget };
    expect(ready.url).toBe('http://169.254.169.254:80');
    return { child, control: ready.control };
  }

  async function stop(child: ChildProcess): Promise<void> {
    if (child.exitCode !== null || child.pid === undefined) return;
    const exited = new Promise((ok) => child.once('exit', ok));
    process.kill(child.pid, 'SIGTERM');
    await exited;
  }

  beforeAll(async () => {
    if (!canRun) throw new Error('SPOTFLEET_REAL_PEERS=1 but this needs root, iproute2 and curl');
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npm run build\` first`);
    await must(IP, ['netns', 'add', ns]);
    await must(IP, ['netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up']);
    await must(IP, ['netns', 'exec', ns, 'ip', 'addr', 'add', '169.254.169.254/32', 'dev', 'lo']);
  });
  afterAll(async () => {
    for (const c of children) await stop(c);
    if (IP) await run(IP, ['netns', 'del', ns]);
  });

  it('AWS: token, 404, then the interruption set over the control socket', async () => {
    const { child, control } = await startFake('aws', ['--instance-id', 'i-0ns']);
    const r = new AwsNoticeReader({ transport: inNs, baseUrl: 'http://169.254.169.254', provider: 'aws' });
    expect(await r.poll('node-a')).toEqual([]);
    await callControl(control, 'triggerSpotInterruption', [{ action: 'terminate' }]);
    expect((await r.poll('node-a')).map((n) => n.kind)).toEqual(['preemption']);
    await stop(child);
  });

  it('GCP and Azure the same way', async () => {
    const g = await startFake('gcp', ['--name', 'node-g']);
    await callControl(g.control, 'preempt');
    const gr = new GcpNoticeReader({ transport: inNs, baseUrl: 'http://169.254.169.254', provider: 'gcp' });
    expect((await gr.poll('node-g')).map((n) => n.kind)).toEqual(['preemption']);
    await stop(g.child);
    const a = await startFake('azure', ['--name', 'node-z']);
    await callControl(a.control, 'addEvent', [{ EventType: 'Preempt' }]);
    const ar = new AzureNoticeReader({ transport: inNs, baseUrl: 'http://169.254.169.254', provider: 'azure' });
    const [n] = await ar.poll('node-z');
    expect(n?.kind).toBe('preemption');
    await ar.acknowledge(n as NonNullable<typeof n>);
    expect(((await callControl(a.control, 'state')) as { acks: unknown[] }).acks).toHaveLength(1);
    await stop(a.child);
  });
});
