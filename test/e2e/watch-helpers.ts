// e2e helpers for `spotfleet watch`: start the built CLI's watch on a temp fleet and follow its JSON
// log lines (wait for one, read fields), read the controller's watch.json, fetch and parse
// /metrics, and stop every watch a test started by its PID, even when the test failed.
// Nothing here imports vitest, so benchmarks can reuse it.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import parsePrometheusTextFormat, { type PromFamily } from 'parse-prometheus-text-format';
import { CLI, fleetYaml, type TestWorkload } from './helpers.js';
import { runCli, runningInstances, type CliRun } from './crash-helpers.js';

/** One JSON log line of watch (pino): level, time, msg, and the event's fields. */
export interface LogLine {
  level: string;
  time: string;
  msg: string;
  action?: string;
  address?: string;
  [field: string]: unknown;
}

export interface WatchFleetOptions {
  speed?: number;
  stopGrace?: string;
  noticeWindow?: string;
  /** fallback.minDwell of every workload. Default 2m (as the quickstart). */
  minDwell?: string;
}

/** A fleet like tempFleet's (quickstart providers and trace, 50 ms trainer steps), with a chosen minDwell. */
export function watchFleetYaml(workloads: TestWorkload[], o: WatchFleetOptions = {}): string {
  const base = fleetYaml(workloads, { ...(o.speed !== undefined ? { speed: o.speed } : {}), ...(o.stopGrace !== undefined ? { stopGrace: o.stopGrace } : {}), ...(o.noticeWindow !== undefined ? { noticeWindow: o.noticeWindow } : {}) });
  return o.minDwell ? base.replaceAll('minDwell: 2m', `minDwell: ${o.minDwell}`) : base;
}

export function tempWatchFleet(workloads: TestWorkload[], o: WatchFleetOptions = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'sf-watch-'));
  writeFileSync(join(dir, 'fleet.yaml'), watchFleetYaml(workloads, o));
  return dir;
}

export interface WatchInfo {
  pid: number;
  listen: string;
  startedAt: string;
}

export interface StartWatchOptions {
  /** Default 30s (so reconciles come from triggers, not the timer). */
  interval?: string;
  /** Default 1s. */
  noticeInterval?: string;
  /** Default 5m: market moves should not trigger reconciles the test did not ask for. */
  priceInterval?: string;
  /** Pass none of the interval flags: watch runs with the CLI's own defaults, as a user's does (benchmarks). */
  cliIntervals?: boolean;
  env?: Record<string, string>;
  extraArgs?: string[];
}

/**
 * A running `spotfleet watch` child process and its log. `L` types the fields a caller reads of
 * the lines (a benchmark's timings); they are parsed as they come.
 */
export class WatchProcess<L extends LogLine = LogLine> {
  readonly child: ChildProcess;
  /** Parsed JSON log lines, in order. */
  readonly lines: L[] = [];
  /** When the process was started (ms epoch). */
  readonly startedAt = Date.now();
  stdout = '';
  stderr = '';
  readonly exited: Promise<CliRun>;
  private partial = '';
  private readonly waiters = new Set<() => void>();

  constructor(
    readonly dir: string,
    o: StartWatchOptions = {},
  ) {
    const intervals = o.cliIntervals ? [] : ['--notice-interval', o.noticeInterval ?? '1s', '--interval', o.interval ?? '30s', '--price-interval', o.priceInterval ?? '5m'];
    const args = [CLI, 'watch', dir, '--listen', '127.0.0.1:0', ...intervals, ...(o.extraArgs ?? [])];
    this.child = spawn(process.execPath, args, { cwd: dir, env: { ...process.env, NO_COLOR: '1', ...o.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout?.on('data', (d: Buffer) => this.onData(d.toString()));
    this.child.stderr?.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise<CliRun>((res) =>
      this.child.on('close', (code, sig) => {
        this.wake();
        res({ code: code ?? (sig ? 128 : 1), stdout: this.stdout, stderr: this.stderr, signal: sig });
      }),
    );
    running.add(this);
    void this.exited.then(() => running.delete(this));
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  private onData(s: string): void {
    this.stdout += s;
    const text = this.partial + s;
    const parts = text.split('\n');
    this.partial = parts.pop() ?? '';
    for (const p of parts) {
      if (!p.startsWith('{')) continue;
      try {
        this.lines.push(JSON.parse(p) as L);
      } catch {
        // Not a log line.
      }
    }
    this.wake();
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  /** Lines matching `pred`, from index `from` on. */
  find(pred: (l: L) => boolean, from = 0): L[] {
    return this.lines.slice(from).filter(pred);
  }

  /**
   * Waits until `count` lines from index `from` on match `pred` and returns them; rejects with the
   * log tail when the process exits first or `timeoutMs` passes.
   */
  async waitFor(pred: (l: L) => boolean, o: { from?: number; count?: number; timeoutMs?: number; what?: string } = {}): Promise<L[]> {
    const count = o.count ?? 1;
    const timeoutMs = o.timeoutMs ?? 30_000;
    return new Promise<L[]>((resolve, reject) => {
      const check = (): boolean => {
        const hits = this.find(pred, o.from ?? 0);
        if (hits.length >= count) {
          done();
          resolve(hits.slice(0, count));
          return true;
        }
        if (!this.alive) {
          done();
          reject(new Error(`watch exited before ${o.what ?? 'the expected log line'} (${hits.length}/${count})\n${this.tail()}`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no ${o.what ?? 'expected log line'} within ${timeoutMs} ms (${this.find(pred, o.from ?? 0).length}/${count})\n${this.tail()}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
      };
      const waiter = (): void => void check();
      this.waiters.add(waiter);
      check();
    });
  }

  /** The last log lines and stderr, for failure messages. */
  tail(n = 40): string {
    return `--- watch stdout (last ${n} lines)\n${this.stdout.split('\n').slice(-n).join('\n')}\n--- watch stderr\n${this.stderr}`;
  }

  /** Waits for watch.json naming this process (the listen address is there). */
  async info(timeoutMs = 30_000): Promise<WatchInfo> {
    const path = join(this.dir, '.spotfleet', 'watch.json');
    const until = Date.now() + timeoutMs;
    for (;;) {
      if (existsSync(path)) {
        try {
          const i = JSON.parse(readFileSync(path, 'utf8')) as WatchInfo;
          if (i.pid === this.pid && i.listen) return i;
        } catch {
          // Being written.
        }
      }
      if (!this.alive) throw new Error(`watch exited before writing watch.json\n${this.tail()}`);
      if (Date.now() > until) throw new Error(`no watch.json for pid ${this.pid} within ${timeoutMs} ms\n${this.tail()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Sends a signal to the process by its PID. */
  signal(sig: NodeJS.Signals): void {
    if (this.alive && this.pid > 0) {
      try {
        process.kill(this.pid, sig);
      } catch {
        // Already gone.
      }
    }
  }

  /**
   * Stops the process by its PID: SIGTERM, then SIGKILL if it has not exited within `graceMs`.
   * Returns what went wrong (it had to be killed), or undefined when it stopped on SIGTERM.
   */
  async stop(graceMs = 20_000): Promise<string | undefined> {
    if (!this.alive) return undefined;
    this.signal('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const stopped = await Promise.race([this.exited, new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), graceMs)))]);
    clearTimeout(timer);
    if (stopped) return undefined;
    this.signal('SIGKILL');
    await this.exited;
    return `watch did not stop within ${graceMs / 1000} s of SIGTERM`;
  }
}

const running = new Set<WatchProcess<LogLine>>();

/** Starts `spotfleet watch DIR --listen 127.0.0.1:0 --notice-interval 1s --interval 30s`. */
export function startWatch<L extends LogLine = LogLine>(dir: string, o: StartWatchOptions = {}): WatchProcess<L> {
  return new WatchProcess<L>(dir, o);
}

/** Kills every watch the tests started and that still runs (SIGKILL by PID), and waits for them. */
export async function killAllWatches(): Promise<void> {
  const all = [...running];
  for (const w of all) w.signal('SIGKILL');
  await Promise.all(all.map((w) => w.exited));
}

/**
 * `destroy --auto-approve` for each folder (after the watches are gone), then removes the folders
 * that nothing runs from any more; returns the failures (those folders stay, to look at).
 */
export async function destroyAll(dirs: readonly string[]): Promise<string[]> {
  const failures: string[] = [];
  for (const d of dirs) {
    const r = await runCli(['destroy', '--auto-approve', d], { cwd: d });
    if (r.code !== 0) {
      failures.push(`${d}: destroy exit ${r.code}\n${r.stdout}\n${r.stderr}`);
      continue;
    }
    const left = await runningInstances(d);
    if (left.length > 0) failures.push(`${d}: processes left after destroy: ${JSON.stringify(left)}`);
    else rmSync(d, { recursive: true, force: true });
  }
  return failures;
}

/** Posts an eviction notice through the CLI; returns the notice (id, deadline, receivedAt). */
export async function simEvict(dir: string, node: string, inDuration = '30s'): Promise<{ id: string; node: string; deadline: string; receivedAt: string }> {
  const r = await runCli(['sim', 'evict', node, dir, '--in', inDuration, '--json'], { cwd: dir });
  if (r.code !== 0) throw new Error(`sim evict ${node}: exit ${r.code}\n${r.stdout}\n${r.stderr}`);
  // `sim evict --json` follows the JSON contract (snake_case); the tests read it as a Notice.
  const n = (JSON.parse(r.stdout) as { notice: { id: string; node: string; deadline: string; received_at: string } }).notice;
  return { id: n.id, node: n.node, deadline: n.deadline, receivedAt: n.received_at };
}

/** GETs a path on the controller's listen address. */
export async function httpGet(listen: string, path: string): Promise<{ status: number; body: string; contentType: string }> {
  const res = await fetch(`http://${listen}${path}`, { signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: await res.text(), contentType: res.headers.get('content-type') ?? '' };
}

/** /metrics: the text, and its families as a Prometheus text-format parser reads them. */
export async function fetchMetrics(listen: string): Promise<{ text: string; families: PromFamily[] }> {
  const r = await httpGet(listen, '/metrics');
  if (r.status !== 200) throw new Error(`/metrics answered ${r.status}`);
  return { text: r.body, families: parsePrometheusTextFormat(r.body) };
}

/** Sum of a counter's or gauge's samples whose labels include `labels` (from the parsed families). */
export function metricSum(families: readonly PromFamily[], name: string, labels: Record<string, string> = {}): number {
  const f = families.find((x) => x.name === name);
  if (!f) return 0;
  let sum = 0;
  for (const m of f.metrics) if (Object.entries(labels).every(([k, v]) => m.labels?.[k] === v)) sum += Number(m.value);
  return sum;
}

function labelsOf(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of s.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) out[m[1] as string] = m[2] as string;
  return out;
}

/**
 * A histogram's count and cumulative buckets (upper bound → count), summed over the series whose
 * labels include `labels`, read from the exposition text. parse-prometheus-text-format 1.1.1
 * flattens a histogram into one series and drops `_count`/`_sum` when they carry labels, so
 * labelled histograms are read here (the whole text is still parsed by it, to check the format).
 */
export function histogram(text: string, name: string, labels: Record<string, string> = {}): { count: number; sum: number; buckets: { le: number; count: number }[] } {
  const acc = new Map<number, number>();
  let count = 0;
  let sum = 0;
  const want = (l: Record<string, string>): boolean => Object.entries(labels).every(([k, v]) => l[k] === v);
  for (const line of text.split('\n')) {
    const m = /^(\w+?)(_bucket|_count|_sum)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const l = labelsOf(m[3] ?? '');
    if (!want(l)) continue;
    const v = Number(m[4]);
    if (m[2] === '_count') count += v;
    else if (m[2] === '_sum') sum += v;
    else {
      const le = l.le === '+Inf' ? Infinity : Number(l.le);
      acc.set(le, (acc.get(le) ?? 0) + v);
    }
  }
  return { count, sum, buckets: [...acc].map(([le, c]) => ({ le, count: c })).sort((a, b) => a.le - b.le) };
}

/** The q-quantile (0..1) of a histogram as the upper bound of the bucket that holds it (Prometheus-style, no interpolation). */
export function histogramQuantile(h: { count: number; buckets: { le: number; count: number }[] }, q: number): number {
  const rank = q * h.count;
  for (const b of h.buckets) if (b.count >= rank) return b.le;
  return NaN;
}

/** Checkpoint and exit steps in a trainer's log (the quickstart trainer's lines). */
export function trainerSteps(log: string): { checkpoints: { step: number; reason: string }[]; resumedFrom?: number; exitedAt?: number } {
  const checkpoints = [...log.matchAll(/checkpoint step=(\d+) reason=(\w+)/g)].map((m) => ({ step: Number(m[1]), reason: m[2] ?? '' }));
  const resumed = /resumed from step (\d+)/.exec(log)?.[1];
  const exited = [...log.matchAll(/exiting on \w+ at step (\d+)/g)].at(-1)?.[1];
  return { checkpoints, ...(resumed !== undefined ? { resumedFrom: Number(resumed) } : {}), ...(exited !== undefined ? { exitedAt: Number(exited) } : {}) };
}
