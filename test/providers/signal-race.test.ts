// No signal reaches a default handler (issue #11): a checkpoint signal sent right at start, through
// the real local runtime and its real supervisor, never opens Node's inspector (in the supervisor
// or in a Node workload) and never ends a workload that has not installed its handler yet. The
// runtime waits until both catch the signal, or says it was not sent.
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ProviderError } from '../../src/core/errors.js';
import { provider as local, type LocalConfig } from '../../providers/local/index.js';
import { ProcessRuntime } from '../../src/providers/kit/process-runtime.js';
import { catchesIn } from '../../src/providers/kit/signal-ready.js';
import type { Provider, StartRequest } from '../../src/providers/sdk.js';
import { readJson } from '../../src/providers/kit/fs-util.js';
import { makeCtx, pidAlive, removeTempDirs, stopAll, tempDir, track, waitFor } from '../quickstart/harness.js';

afterAll(async () => {
  await stopAll();
  removeTempDirs();
});

const config: LocalConfig = { nodes: [{ name: 'n1', gpuModel: 'V100', gpus: 64, capacity: 'on-demand', zone: 'lab', pricePerHour: 1 }] };

/** Socket inodes that are listening on TCP (v4 and v6). */
function listeningInodes(): Set<string> {
  const out = new Set<string>();
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[3] === '0A' && cols[9]) out.add(cols[9]);
    }
  }
  return out;
}

/** TCP ports a process listens on (an open inspector is one). */
function listeningSocketsOf(pid: number): string[] {
  const listening = listeningInodes();
  const out: string[] = [];
  let fds: string[] = [];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return out;
  }
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m && listening.has(m[1] as string)) out.push(m[1] as string);
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

function pidsOf(root: string, id: string): { supervisor?: { pid: number }; child?: { pid: number } } {
  return readJson(join(root, '.spotfleet/providers/lab/nodes/n1/workloads', id, 'pids.json')) ?? {};
}

function req(workload: string, command: string[], env: Record<string, string> = {}): StartRequest {
  return { fleet: 'test', workload, node: 'n1', command, env, gpus: 1, labels: {}, specHash: 'h', idempotencyKey: `${workload}-${Math.random()}` };
}

describe('checkpoint signals and readiness', () => {
  it('catchesIn reads the SigCgt mask', () => {
    expect(catchesIn('Name:\tx\nSigCgt:\t0000000000000200\n', 'SIGUSR1')).toBe(true);
    expect(catchesIn('SigCgt:\t0000000000000200\n', 'USR2')).toBe(false);
    expect(catchesIn('SigCgt:\t0000000000004000\n', 'SIGTERM')).toBe(true);
    expect(catchesIn('no mask here', 'SIGUSR1')).toBeUndefined();
  });

  it('50 starts each signalled at once: no inspector port, no workload ended, every delivered signal handled', async () => {
    const root = tempDir();
    const p: Provider = track(await local.create(structuredClone(config), makeCtx('lab', root)));
    // Like a Python trainer: it installs its handler a moment after it starts, and the default
    // action of SIGUSR1 would end it. The supervisor in front of it is Node.js.
    const workload = ['sh', '-c', 'sleep 0.1; trap \'echo "checkpoint reason=SIGUSR1"\' USR1; echo ready; while :; do sleep 0.05; done'];
    const seen: { id: string; pids: number[]; sent: boolean }[] = [];
    // In batches of 10 (the machine running the tests may have two cores).
    for (let batch = 0; batch < 5; batch++) {
      const started = await Promise.all(Array.from({ length: 10 }, (_, i) => p.runtime!.start(req(`race-${batch}-${i}`, workload))));
      const results = await Promise.all(
        started.map((inst) =>
          p.runtime!.signal('n1', inst.id, 'SIGUSR1').then(
            () => true,
            (e: unknown) => {
              // Not sent is allowed (and retryable); sent to a process without a handler is not.
              expect(e).toBeInstanceOf(ProviderError);
              expect((e as ProviderError).retryable).toBe(true);
              return false;
            },
          ),
        ),
      );
      for (const [i, inst] of started.entries()) {
        const pp = pidsOf(root, inst.id);
        seen.push({ id: inst.id, pids: [pp.supervisor?.pid, pp.child?.pid].filter((x): x is number => typeof x === 'number'), sent: results[i] as boolean });
      }
      // Give an inspector time to open, had a signal reached one.
      await new Promise((r) => setTimeout(r, 300));
      for (const s of seen.slice(-10)) {
        expect(s.pids).toHaveLength(2);
        for (const pid of s.pids) {
          expect(pidAlive(pid)).toBe(true);
          expect(listeningSocketsOf(pid)).toEqual([]);
        }
        if (s.sent) await waitFor(`the SIGUSR1 handler of ${s.id}`, async () => /reason=SIGUSR1/.test(await p.runtime!.logs!('n1', s.id)));
        expect(await p.runtime!.logs!('n1', s.id)).not.toMatch(/Debugger listening|inspector/i);
      }
      for (const inst of started) await p.runtime!.stop('n1', inst.id, 5000);
    }
    expect(seen).toHaveLength(50);
    expect(seen.every((s) => s.sent)).toBe(true);
  }, 120_000);

  it('waits for a workload that installs its handler late, and delivers then', async () => {
    const root = tempDir();
    const p: Provider = track(await local.create(structuredClone(config), makeCtx('lab', root)));
    const late = ['sh', '-c', 'sleep 0.5; trap \'echo got-usr1\' USR1; echo ready; while :; do sleep 0.05; done'];
    const inst = await p.runtime!.start(req('late', late));
    await p.runtime!.signal('n1', inst.id, 'SIGUSR1');
    await waitFor('the late handler to run', async () => (await p.runtime!.logs!('n1', inst.id)).includes('got-usr1'));
    expect((await p.runtime!.list()).find((i) => i.id === inst.id)?.state).toBe('running');
    await p.runtime!.stop('n1', inst.id, 2000);
  }, 30_000);

  it('never sends to a workload without a handler: it says so and the workload lives on', async () => {
    const root = tempDir();
    const ctx = makeCtx('lab', root);
    const rt = new ProcessRuntime({ provider: 'lab', fleet: 'test', dataDir: ctx.dataDir, nodesRoot: join(ctx.dataDir, 'nodes'), cwd: root, env: process.env, signalReadyTimeoutMs: 700 });
    const inst = await rt.start(req('deaf', ['sh', '-c', 'echo ready; while :; do sleep 0.05; done']));
    const err = await rt.signal('n1', inst.id, 'SIGUSR1').then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect((err as ProviderError).message).toMatch(/no handler for SIGUSR1.*not sent/);
    expect((err as ProviderError).retryable).toBe(true);
    await new Promise((r) => setTimeout(r, 200));
    expect((await rt.list()).find((i) => i.id === inst.id)?.state).toBe('running');
    // A stop still ends it (SIGTERM through the supervisor: ending it is the point).
    expect((await rt.stop('n1', inst.id, 3000)).exitCode).toBe(143);
  }, 30_000);
});
