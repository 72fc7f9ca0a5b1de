// Benchmark: eviction-to-resumed time on the quickstart, through the built CLI as a user runs it.
// A temp copy of examples/quickstart (its trainer, trace and fleet.yaml: two trainers, 200 ms steps,
// speed 60) runs under `spotfleet watch` with its default intervals; each round evicts the nodes both
// trainers run on with `spotfleet sim evict NODE --in 30s` and measures, per trainer:
//   - eviction-to-resumed: from the notice's receivedAt to the trainer's own `resumed from step N`
//     line on the target (its timestamp);
//   - the move record's step timings (watch's `migration complete` line): checkpoint, acquire,
//     stop, transfer, start, and the downtime;
//   - notice-to-signal: from the notice to watch's `checkpoint signal sent` (the poll wait); `-` when
//     a reconcile saw the notice first and its checkpoint step sent the signal instead.
// Two phases: (1) the quickstart as shipped (fallback.to: on-demand; the on-demand nodes od-1/od-2
// exist, so there is no acquire): spot → od-1, od-1 → od-2, od-2 → od-1 (an evicted node is restored
// with `sim restore` once empty); (2) the same copy with `fallback.to: spot-v100`, so each move
// acquires a new spot lease in parallel with the checkpoint.
// Target: eviction-to-resumed no more than the checkpoint time plus 5 s.
// Usage: node dist/test/bench/eviction.bench.js [--rounds 3]
import { setTimeout as sleep } from 'node:timers/promises';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Provider } from '../../src/providers/sdk.js';
import { ROOT, openProviders } from '../e2e/helpers.js';
import { runCli } from '../e2e/crash-helpers.js';
import { startWatch, type MoveLogLine, type WatchProcess } from '../e2e/watch-process.js';
import { benchArg, report } from './util.js';

const ROUNDS = Math.round(benchArg('rounds', 3));
const TRAINERS = ['train-a', 'train-b'];

async function cli(args: string[], cwd: string): Promise<{ code: number; out: string }> {
  const r = await runCli(args, { cwd, timeoutMs: 600_000 });
  return { code: r.code, out: `${r.stdout}${r.stderr}` };
}

interface Sample {
  phase: string;
  workload: string;
  from: string;
  to: string;
  evictionToResumedS: number;
  noticeToSignalS: number;
  downtimeS: number;
  timings: Record<string, number>;
}

const STEPS = ['checkpoint', 'acquire', 'stop', 'transfer', 'start'];

/** The time of the trainer's `resumed from step N` line on the target instance. */
async function resumedAt(providers: Map<string, Provider>, node: string, id: string): Promise<number> {
  const p = providers.get(node.startsWith('sim-') ? 'market' : 'lab');
  const until = Date.now() + 15_000;
  for (;;) {
    const log = (await p?.runtime?.logs?.(node, id)) ?? '';
    const m = /^(\S+) \S+ resumed from step \d+/m.exec(log);
    if (m?.[1]) return Date.parse(m[1]);
    if (Date.now() > until) throw new Error(`${id} on ${node} did not log "resumed from step"\n${log}`);
    await sleep(50);
  }
}

/** Where each trainer runs now, from watch's `start ok` lines. */
function placements(w: WatchProcess<MoveLogLine>): Map<string, { node: string; instance: string }> {
  const out = new Map<string, { node: string; instance: string }>();
  for (const l of w.lines) if (l.msg === 'start ok' && l.address?.startsWith('workload.') && l.node && l.instance) out.set(l.address.slice('workload.'.length), { node: l.node, instance: l.instance });
  return out;
}

async function runPhase(phase: string, dir: string, rounds: number): Promise<Sample[]> {
  const samples: Sample[] = [];
  const w = startWatch<MoveLogLine>(dir, { cliIntervals: true });
  const opened = await openProviders(dir);
  const providers = opened.providers;
  try {
    await w.waitFor((l) => l.msg === 'start ok', { count: TRAINERS.length, timeoutMs: 120_000, what: 'both trainers started' });
    await sleep(3000); // some training first
    for (let r = 1; r <= rounds; r++) {
      const where = placements(w);
      const nodes = [...new Set(TRAINERS.map((t) => where.get(t)?.node as string))];
      const from = w.lines.length;
      const notices = await Promise.all(
        nodes.map(async (node) => {
          const res = await cli(['sim', 'evict', node, dir, '--in', '30s', '--json'], dir);
          if (res.code !== 0) throw new Error(`sim evict ${node}: ${res.out}`);
          const n = (JSON.parse(res.out) as { notice: { node: string; received_at: string } }).notice;
          return { node: n.node, receivedAt: n.received_at };
        }),
      );
      const moved = await w.waitFor((l) => l.msg === 'migration complete', { count: TRAINERS.length, from, timeoutMs: 60_000, what: `round ${r}: both migrations` });
      const now = placements(w);
      for (const t of TRAINERS) {
        const m = moved.find((l) => l.address === `workload.${t}`);
        const target = now.get(t);
        if (!m || !target) throw new Error(`round ${r}: no migration of ${t}`);
        const notice = notices.find((n) => n.node === m.from);
        const postedAt = Date.parse(notice?.receivedAt ?? '');
        const signal = w.lines.slice(from).find((l) => l.msg === 'checkpoint signal sent' && l.address === `workload.${t}`);
        let resumed: number;
        try {
          resumed = await resumedAt(providers, target.node, target.instance);
        } catch (e) {
          throw new Error(`round ${r}, ${t}: ${e instanceof Error ? e.message : String(e)}\n${w.lines.slice(from).map((l) => JSON.stringify(l)).join('\n')}`);
        }
        samples.push({
          phase,
          workload: t,
          from: m.from ?? '?',
          to: m.to ?? '?',
          evictionToResumedS: (resumed - postedAt) / 1000,
          noticeToSignalS: signal ? (Date.parse(signal.time) - postedAt) / 1000 : NaN,
          downtimeS: (m.downtimeMs ?? NaN) / 1000,
          timings: m.timings ?? {},
        });
      }
      // Bring evicted static nodes back once empty, so the next round has somewhere to go.
      for (const n of nodes) if (!n.startsWith('sim-')) await cli(['sim', 'restore', `lab/${n}`, dir], dir);
      await sleep(1500);
    }
  } finally {
    await w.stop(60_000);
    await opened.close();
  }
  return samples;
}

const s = (ms: number | undefined): string => (ms === undefined ? '   -  ' : (ms / 1000).toFixed(2).padStart(6));
function print(samples: Sample[]): void {
  console.log('phase        workload  from → to                             evict→resumed  signal  checkpoint acquire  stop  transfer start  downtime');
  for (const x of samples) {
    console.log(
      `${x.phase.padEnd(12)} ${x.workload.padEnd(9)} ${`${x.from} → ${x.to}`.padEnd(37)} ${x.evictionToResumedS.toFixed(2).padStart(8)} s  ${Number.isFinite(x.noticeToSignalS) ? x.noticeToSignalS.toFixed(2).padStart(6) : '     -'} ${s(x.timings.checkpoint)}     ${s(x.timings.acquire)} ${s(x.timings.stop)} ${s(x.timings.transfer)} ${s(x.timings.start)}  ${x.downtimeS.toFixed(2).padStart(6)}`,
    );
  }
}

const mean = (xs: number[]): number => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);

const all: Sample[] = [];
const dirs: string[] = [];
try {
  for (const phase of ['on-demand', 'spot-pool'] as const) {
    const dir = mkdtempSync(join(tmpdir(), 'sf-bench-evict-'));
    dirs.push(dir);
    // The spec, trainer and trace only: a quickstart run in place leaves its own .spotfleet state there.
    cpSync(join(ROOT, 'examples', 'quickstart'), dir, { recursive: true, filter: (src) => !src.split(/[\\/]/).includes('.spotfleet') });
    if (phase === 'spot-pool') {
      const f = join(dir, 'fleet.yaml');
      writeFileSync(f, readFileSync(f, 'utf8').replaceAll('fallback: { to: on-demand,', 'fallback: { to: spot-v100,'));
    }
    all.push(...(await runPhase(phase, dir, ROUNDS)));
  }
  console.log(`quickstart copy (trainer with 200 ms steps, stopGrace 20s), watch with default intervals (notice 2s), ${ROUNDS} rounds per phase, both trainers evicted at once each round\n`);
  print(all);
  console.log('');
  for (const phase of ['on-demand', 'spot-pool']) {
    const xs = all.filter((x) => x.phase === phase);
    const ck = mean(xs.map((x) => (x.timings.checkpoint ?? 0) / 1000));
    report(`[${phase}] eviction -> resumed, mean`, mean(xs.map((x) => x.evictionToResumedS)), 's', `<= checkpoint + 5 s = ${(ck + 5).toFixed(2)} s`);
    report(`[${phase}] eviction -> resumed, max`, Math.max(...xs.map((x) => x.evictionToResumedS)), 's');
    report(`[${phase}] notice -> signal sent, mean`, mean(xs.map((x) => x.noticeToSignalS).filter(Number.isFinite)), 's');
    for (const step of STEPS) {
      const v = xs.map((x) => x.timings[step]).filter((t): t is number => t !== undefined);
      if (v.length) report(`[${phase}] ${step}, mean (${v.length} moves)`, mean(v) / 1000, 's');
      else console.log(`[${phase}] ${step}: not on the path (target node already there)`);
    }
    report(`[${phase}] downtime, mean`, mean(xs.map((x) => x.downtimeS)), 's');
  }
} catch (e) {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
} finally {
  for (const d of dirs) {
    const r = await cli(['destroy', '--auto-approve', d], d);
    if (r.code !== 0) {
      console.error(`destroy failed in ${d}:\n${r.out}`);
      process.exitCode = 1;
    } else rmSync(d, { recursive: true, force: true });
  }
}
