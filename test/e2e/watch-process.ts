// A running `spotfleet watch` (the built CLI) as the e2e tests and the benchmarks start it: its
// JSON log lines as they come (wait for one, read fields), its watch.json, and stopping it by its
// PID, every one a test started included, even when the test failed. Nothing here imports vitest
// or what only the tests have, so the benchmarks (built into dist/) use it too.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI } from './helpers.js';
import type { CliRun } from './crash-helpers.js';

/** One JSON log line of watch (pino): level, time, msg, and the event's fields. */
export interface LogLine {
  level: string;
  time: string;
  msg: string;
  action?: string;
  address?: string;
  [field: string]: unknown;
}

/** The fields of watch's `start ok` and `migration complete` lines that tests and benchmarks read. */
export interface MoveLogLine extends LogLine {
  node?: string;
  instance?: string;
  from?: string;
  to?: string;
  downtimeMs?: number;
  timings?: Record<string, number>;
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
