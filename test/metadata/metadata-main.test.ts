// The standalone fake entry (dist/test/fakes/metadata-main.js) as the lab runs it: a child process
// per cloud, driven over its unix control socket, read by the notice readers, stopped by PID.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { callControl, type ControlTarget } from '../fakes/http-util.js';
import { AwsNoticeReader, AzureNoticeReader, GcpNoticeReader, createHttpTransport } from '../../src/providers/kit/metadata/index.js';

const MAIN = resolve('dist/test/fakes/metadata-main.js');

interface Ready {
  ready: true;
  url: string;
  control: ControlTarget;
  pid: number;
}

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.pid !== undefined) process.kill(c.pid, 'SIGKILL');
});

function startMain(args: string[]): Promise<{ child: ChildProcess; ready: Ready }> {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npm run build\` first`);
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((ok, fail) => {
    const rl = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    rl.once('line', (line) => ok({ child, ready: JSON.parse(line) as Ready }));
    child.once('exit', (code) => fail(new Error(`metadata-main exited ${String(code)}: ${stderr}`)));
  });
}

function exitOf(child: ChildProcess): Promise<number | null> {
  return new Promise((ok) => (child.exitCode !== null ? ok(child.exitCode) : child.once('exit', (c) => ok(c))));
}

describe('metadata-main (standalone fake process)', () => {
  const transport = createHttpTransport({ keepAlive: false });

  it('serves AWS IMDS and takes a spot interruption over the control socket', async () => {
    const sock = join(mkdtempSync(join(tmpdir(), 'sf-mm-')), 'aws.sock');
    const { child, ready } = await startMain(['--cloud', 'aws', '--host', '127.0.0.1', '--port', '0', '--control-socket', sock, '--instance-id', 'i-0lab']);
    expect(ready.control).toEqual({ socketPath: sock });
    const r = new AwsNoticeReader({ transport, baseUrl: ready.url, provider: 'aws' });
    expect(await r.poll('a')).toEqual([]);
    expect(await r.identity('a', 'instance-id')).toBe('i-0lab');
    const t = (await callControl(ready.control, 'triggerSpotInterruption', [{ action: 'terminate' }])) as { time: string };
    expect((await r.poll('a')).map((n) => [n.kind, n.deadline])).toEqual([['preemption', new Date(t.time).toISOString()]]);
    await expect(callControl(ready.control, 'noSuchThing')).rejects.toThrow(/unknown control method/);
    await expect(callControl(ready.control, 'setMaintenanceShape', ['round'])).rejects.toThrow(/array/);
    process.kill(child.pid as number, 'SIGTERM');
    expect(await exitOf(child)).toBe(0);
    expect(existsSync(sock)).toBe(false);
  });

  it('serves GCE metadata and takes a preemption over the control socket', async () => {
    const sock = join(mkdtempSync(join(tmpdir(), 'sf-mm-')), 'gcp.sock');
    const { child, ready } = await startMain(['--cloud', 'gcp', '--control-socket', sock, '--name', 'vm-lab']);
    const r = new GcpNoticeReader({ transport, baseUrl: ready.url, provider: 'gcp' });
    expect(await r.identity('vm-lab', 'instance/name')).toBe('vm-lab');
    await callControl(ready.control, 'preempt');
    expect((await r.poll('vm-lab')).map((n) => n.kind)).toEqual(['preemption']);
    process.kill(child.pid as number, 'SIGTERM');
    expect(await exitOf(child)).toBe(0);
  });

  it('serves Azure Scheduled Events; the acknowledgement shows in state over a control port', async () => {
    const { child, ready } = await startMain(['--cloud', 'azure', '--control-port', '0', '--name', 'vm-lab']);
    expect('url' in ready.control).toBe(true);
    const ev = (await callControl(ready.control, 'addEvent', [{ EventType: 'Preempt' }])) as { EventId: string };
    const r = new AzureNoticeReader({ transport, baseUrl: ready.url, provider: 'azure' });
    const [n] = await r.poll('vm-lab');
    expect(n?.kind).toBe('preemption');
    await r.acknowledge(n as NonNullable<typeof n>);
    const st = (await callControl(ready.control, 'state')) as { acks: unknown[] };
    expect(st.acks).toEqual([{ EventId: ev.EventId, known: true }]);
    process.kill(child.pid as number, 'SIGTERM');
    expect(await exitOf(child)).toBe(0);
  });

  it('exits 2 with the usage on bad arguments', async () => {
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npm run build\` first`);
    const child = spawn(process.execPath, [MAIN, '--cloud', 'oracle'], { stdio: ['ignore', 'ignore', 'pipe'] });
    children.push(child);
    let err = '';
    child.stderr?.on('data', (c: Buffer) => (err += c.toString()));
    expect(await exitOf(child)).toBe(2);
    expect(err).toContain('--cloud must be aws, gcp or azure');
  });
});
