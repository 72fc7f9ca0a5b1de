// Workloads as real, detached child processes on this machine: the runtime capability shared by
// the `local` and `sim` providers (settlingRuntime: as they expose it, nodes settled first). Each instance is a folder in its node's folder
// (`<nodesRoot>/<node>/workloads/<id>/`) holding a JSON record, the supervisor's pids, the output
// log and, once it ended, the exit code; so a later CLI run finds and controls it again.
// A workload gets only the environment workload-env.ts allows, and a signal only once it (and its
// supervisor) catch it: signal-ready.ts.
import { spawn } from 'node:child_process';
import { closeSync, linkSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ProviderError } from '../../core/errors.js';
import type { WorkloadInstance } from '../../core/types.js';
import type { ProviderContext, RuntimeCapability, StartRequest } from '../sdk.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { assertSafeName, isAlive, procStat, readJson, shortHash, trySignal, writeJsonAtomic, type PidRef } from './fs-util.js';
import { processCatches, needsNoHandler, signalName, signalNotReady, waitUntilReady, SIGNAL_READY_TIMEOUT_MS } from './signal-ready.js';
import { SUPERVISOR_READY_WAIT_MS, SUPERVISOR_SOURCE, SUPERVISOR_VERSION } from './supervisor-source.js';
import { passedEnv, processBaseEnv } from './workload-env.js';

/** An unreadable start claim older than this is stale (a live claimant links a complete one at once). */
const STALE_UNREADABLE_CLAIM_MS = 3000;

/** How old a file is (its mtime), or 0 when it is gone. */
function ageMs(path: string): number {
  try {
    return Date.now() - statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

/**
 * The runtime as a provider whose nodes die at a notice's deadline (local, sim) exposes it: each
 * call first settles the nodes it reads or acts on (`all` before a listing, `node` before a signal,
 * stop or inspect), so nothing is read from or sent to a node that is already past its deadline.
 */
export function settlingRuntime(runtime: ProcessRuntime, settle: { all: () => Promise<void>; node: (node: string) => Promise<unknown> }): RuntimeCapability {
  return {
    list: async () => {
      await settle.all();
      return runtime.list();
    },
    start: (req) => runtime.start(req),
    signal: async (node, id, sig) => {
      await settle.node(node);
      return runtime.signal(node, id, sig);
    },
    stop: async (node, id, graceMs) => {
      await settle.node(node);
      return runtime.stop(node, id, graceMs);
    },
    logs: (node, id, opts) => runtime.logs(node, id, opts),
    remove: (node, id) => runtime.remove(node, id),
    inspect: async (node, id) => {
      await settle.node(node);
      return runtime.inspect(node, id);
    },
  };
}

/** What start() and list() need to know from the provider that owns the nodes. */
export interface ProcessRuntimeOptions {
  /** Provider instance name (for errors and WorkloadInstance.provider). */
  provider: string;
  /** Fleet name; list() reports only this fleet's instances. */
  fleet: string;
  /** Provider data folder: holds the supervisor script and the idempotency claims. */
  dataDir: string;
  /** Folder holding one folder per node. */
  nodesRoot: string;
  /** Working directory of workloads (the spec's folder, so relative commands work). */
  cwd: string;
  /**
   * spotfleet's environment. Workloads get only its minimal base (PATH, HOME, LANG...: see
   * workload-env.ts) and the variables a request's `passEnv` names; the request's env is laid over.
   */
  env: Readonly<Record<string, string | undefined>>;
  /** How long signal() waits for a workload to catch the signal before it gives up. Default 10 s. */
  signalReadyTimeoutMs?: number;
  /**
   * Called before a start: throws (a ProviderError) when the node cannot take the workload
   * (unknown, terminated, not enough free GPUs). `usedGpus` counts running instances on the node.
   */
  admit?(node: string, gpus: number, usedGpus: number): Promise<void> | void;
  now?: () => number;
}

/**
 * The options a provider whose nodes are folders on this machine gives its process runtime: all
 * from its context (fleet, data folder, the spec's folder, the environment, the clock), with the
 * folder of its nodes and how it admits a start.
 */
export function processRuntimeFor(provider: string, ctx: ProviderContext, nodesRoot: string, admit: NonNullable<ProcessRuntimeOptions['admit']>): ProcessRuntime {
  return new ProcessRuntime({ provider, fleet: ctx.fleet, dataDir: ctx.dataDir, nodesRoot, cwd: ctx.specDir, env: ctx.env, now: () => ctx.now(), admit });
}

/** The on-disk record of one instance; never holds env values (they may be secrets). */
export interface ProcessRecord {
  version: 1;
  id: string;
  /** The spotfleet process that is starting it: alive, a record without a supervisor is starting, not a phantom. */
  starter?: PidRef;
  provider: string;
  fleet: string;
  workload: string;
  node: string;
  argv: string[];
  envKeys: string[];
  cwd: string;
  gpus: number;
  labels: Record<string, string>;
  specHash: string;
  startedAt: string;
  checkpointDir: string;
  supervisor?: PidRef;
}

interface PidsFile {
  supervisor?: PidRef;
  child?: PidRef;
  /** Written by the supervisor once its handlers are installed and the child is started. */
  ready?: boolean;
}

interface ExitFile {
  code?: number;
  signal?: string;
  error?: string;
  endedAt: string;
}

/** The folder of a node. */
export function nodeDirOf(nodesRoot: string, node: string): string {
  return join(nodesRoot, node);
}

/** Where a workload's checkpoints live on a node folder (CHECKPOINT_DIR for the process). */
export function checkpointDirOf(nodeDir: string, workload: string): string {
  return join(nodeDir, 'checkpoints', workload);
}

/** True when a process whose argv holds `dir` as an argument of its own (a supervisor of that instance) runs. */
function supervisorAlive(dir: string): boolean {
  const needle = `\0${dir}\0`;
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return true; // cannot tell: as before, a fresh instance counts as starting
  }
  for (const pid of pids) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(needle) && isAlive({ pid: Number(pid) })) return true;
    } catch {
      /* gone */
    }
  }
  return false;
}

/**
 * The runtime capability over detached processes. Start is idempotent by `idempotencyKey`; stop is
 * SIGTERM, then SIGKILL of the whole process group after the grace period, and waits until gone.
 */
export class ProcessRuntime implements RuntimeCapability {
  private readonly o: ProcessRuntimeOptions;
  private readonly now: () => number;
  private supervisorPath: string | undefined;
  /** Bumped by every change this runtime makes to an instance: a scan from before it is not shared. */
  private gen = 0;
  private scan: { gen: number; p: Promise<WorkloadInstance[]> } | undefined;

  constructor(opts: ProcessRuntimeOptions) {
    this.o = opts;
    this.now = opts.now ?? Date.now;
    mkdirSync(opts.nodesRoot, { recursive: true, mode: 0o700 });
    mkdirSync(join(opts.dataDir, 'instances'), { recursive: true, mode: 0o700 });
  }

  private err(message: string, opts: { address?: string; retryable?: boolean } = {}): ProviderError {
    return new ProviderError(this.o.provider, message, opts);
  }

  private instanceDir(node: string, id: string): string {
    return join(this.o.nodesRoot, node, 'workloads', id);
  }

  /** Writes the supervisor script once per version; a running one is never rewritten. */
  private supervisor(): string {
    if (this.supervisorPath) return this.supervisorPath;
    const p = join(this.o.dataDir, `supervisor-v${SUPERVISOR_VERSION}.cjs`);
    let current: string | undefined;
    try {
      current = readFileSync(p, 'utf8');
    } catch {
      current = undefined;
    }
    if (current !== SUPERVISOR_SOURCE) writeTextAtomic(p, SUPERVISOR_SOURCE);
    this.supervisorPath = p;
    return p;
  }

  /**
   * Every instance (running or exited) of this fleet, sorted by node then id. Calls that overlap
   * share one scan of the instance folders (a refresh asks for nodes and workloads at once, and both
   * need it), unless this runtime changed an instance since that scan began. The scan yields to the
   * event loop between nodes, so a big fleet's listing never stalls watch's notice polls.
   */
  list(): Promise<WorkloadInstance[]> {
    if (this.scan?.gen !== this.gen) {
      const scan = { gen: this.gen, p: this.scanAll() };
      this.scan = scan;
      const done = (): void => {
        if (this.scan === scan) this.scan = undefined;
      };
      scan.p.then(done, done);
    }
    return this.scan.p.then((list) => [...list]);
  }

  private async scanAll(): Promise<WorkloadInstance[]> {
    await Promise.resolve();
    const out: WorkloadInstance[] = [];
    let read = 0;
    for (const node of listDirs(this.o.nodesRoot)) {
      for (const inst of this.onNode(node)) if (inst.fleet === this.o.fleet) out.push(inst);
      read += 1;
      if (read % 16 === 0) await new Promise<void>((r) => setImmediate(r));
    }
    return out.sort((a, b) => (a.node === b.node ? cmp(a.id, b.id) : cmp(a.node, b.node)));
  }

  /** Every instance recorded in one node's folder, sorted by id. */
  private onNode(node: string): WorkloadInstance[] {
    const out: WorkloadInstance[] = [];
    for (const id of listDirs(join(this.o.nodesRoot, node, 'workloads'))) {
      const inst = this.read(node, id);
      if (inst) out.push(inst);
    }
    return out;
  }

  async inspect(node: string, instanceId: string): Promise<WorkloadInstance | undefined> {
    await Promise.resolve();
    assertSafeName(this.o.provider, 'node', node);
    assertSafeName(this.o.provider, 'instance', instanceId);
    const inst = this.read(node, instanceId);
    return inst && inst.fleet === this.o.fleet ? inst : undefined;
  }

  /** This fleet's running instances on one node. */
  async running(node: string): Promise<WorkloadInstance[]> {
    await Promise.resolve();
    return this.onNode(node).filter((i) => i.fleet === this.o.fleet && i.state === 'running');
  }

  async start(req: StartRequest): Promise<WorkloadInstance> {
    const P = this.o.provider;
    assertSafeName(P, 'node', req.node);
    assertSafeName(P, 'workload', req.workload);
    if (!req.command || req.command.length === 0 || req.command[0] === '') {
      throw this.err(`workload "${req.workload}": the ${this.o.provider} runtime runs processes and needs \`command\` (an argv); images are not supported here`);
    }
    const id = `${req.workload}-${shortHash(`${req.fleet}\u0000${req.idempotencyKey}`)}`;
    // The claim file is the idempotency lock: created exclusively, so two concurrent starts with the
    // same key (in this process or another CLI run) agree on one instance and spawn one process.
    const claim = join(this.o.dataDir, 'instances', `${id}.json`);
    // The claimant's pid and start time let a later start take over a claim whose owner died (a
    // CLI or watch killed between claiming and recording the instance). The claim appears whole or
    // not at all: written to a private file first, then linked into place (link fails on EEXIST).
    const me = procStat(process.pid);
    const tmp = `${claim}.${process.pid}.${shortHash(`${Date.now()}:${Math.random()}`)}.tmp`;
    const fd = openSync(tmp, 'wx', 0o600);
    try {
      writeFileSync(fd, `${JSON.stringify({ id, node: req.node, workload: req.workload, owner: { pid: process.pid, ...(me ? { start: me.start } : {}) } })}\n`);
    } finally {
      closeSync(fd);
    }
    try {
      linkSync(tmp, claim);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      return this.awaitExisting(id, claim, req);
    } finally {
      rmSync(tmp, { force: true });
    }
    try {
      const used = (await this.running(req.node)).reduce((s, i) => s + i.gpus, 0);
      await this.o.admit?.(req.node, req.gpus, used);
    } catch (e) {
      rmSync(claim, { force: true });
      throw e;
    }
    return await this.spawnInstance(id, req);
  }

  private async awaitExisting(id: string, claim: string, req: StartRequest, retried = false): Promise<WorkloadInstance> {
    for (let i = 0; i < 200; i++) {
      const c = readJson<{ node?: string; owner?: PidRef }>(claim);
      if (c?.node) {
        const inst = this.read(c.node, id);
        if (inst) {
          // Its starter died before the workload's environment reached the supervisor (it arrives
          // on a pipe, never on disk): the supervisor ends with "no environment" and the workload
          // never ran. Returning it would make a start that did nothing look like a run that
          // failed at once, and the checkpoint it resumed from look bad. Start it again, afresh.
          if (!retried && c.owner && c.owner.pid !== process.pid && !isAlive(c.owner) && (await this.neverRan(c.node, id))) {
            rmSync(this.instanceDir(c.node, id), { recursive: true, force: true });
            rmSync(claim, { force: true });
            return this.start(req);
          }
          return inst;
        }
      }
      // Nobody will finish this start: its owner is gone and no instance was recorded. Take over.
      if (!retried && c?.owner && c.owner.pid !== process.pid && !isAlive(c.owner)) {
        rmSync(claim, { force: true });
        return this.start(req);
      }
      // A claim nobody can read was cut short by an older spotfleet killed while writing it (claims
      // are now linked into place whole): once it is a few seconds old, nobody is finishing it.
      if (!retried && !c && ageMs(claim) > STALE_UNREADABLE_CLAIM_MS) {
        rmSync(claim, { force: true });
        return this.start(req);
      }
      await sleep(50);
    }
    throw this.err(`instance ${id} is being started by another spotfleet process that has not finished; try again`, { retryable: true });
  }

  /**
   * True when the instance's workload never started because its starter died first: the
   * supervisor ended for want of its environment, or was never spawned. A supervisor still waiting
   * for the environment of a dead starter reads the end of the pipe at once; it is given a moment.
   */
  private async neverRan(node: string, id: string): Promise<boolean> {
    const dir = this.instanceDir(node, id);
    for (let i = 0; i < 60; i++) {
      const exit = readJson<ExitFile>(join(dir, 'exit.json'));
      if (exit) return exit.error === 'no environment';
      const pids = readJson<PidsFile>(join(dir, 'pids.json'));
      if (pids?.ready) return false;
      const rec = readJson<ProcessRecord>(join(dir, 'record.json'));
      if (!pids && rec && !rec.supervisor && !supervisorAlive(dir)) return true;
      await sleep(50);
    }
    return false;
  }

  private async spawnInstance(id: string, req: StartRequest): Promise<WorkloadInstance> {
    const nodeDir = join(this.o.nodesRoot, req.node);
    const dir = this.instanceDir(req.node, id);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const ckpt = checkpointDirOf(nodeDir, req.workload);
    mkdirSync(ckpt, { recursive: true });
    const env: Record<string, string> = { ...processBaseEnv(this.o.env), ...passedEnv(this.o.env, req.passEnv) };
    Object.assign(env, req.env, {
      CHECKPOINT_DIR: ckpt,
      SPOTFLEET_WORKLOAD: req.workload,
      SPOTFLEET_NODE: req.node,
      SPOTFLEET_FLEET: req.fleet,
      SPOTFLEET_INSTANCE: id,
    });
    if (req.resumeFrom) env[req.resumeFrom.env] = req.resumeFrom.path;
    const rec: ProcessRecord = {
      version: 1,
      id,
      provider: this.o.provider,
      fleet: req.fleet,
      workload: req.workload,
      node: req.node,
      argv: [...req.command!],
      envKeys: [...new Set([...Object.keys(req.env), ...Object.keys(passedEnv(this.o.env, req.passEnv))])].sort(),
      cwd: this.o.cwd,
      gpus: req.gpus,
      labels: { ...req.labels },
      specHash: req.specHash,
      startedAt: new Date(this.now()).toISOString(),
      checkpointDir: ckpt,
    };
    const me = procStart(process.pid);
    rec.starter = me === undefined ? { pid: process.pid } : { pid: process.pid, start: me };
    writeJsonAtomic(join(dir, 'record.json'), rec);
    this.gen++;
    const log = openSync(join(dir, 'output.log'), 'a', 0o600);
    let delivered: Promise<void> | undefined;
    try {
      // The supervisor's own environment is empty: nothing of the workload's (NODE_OPTIONS could
      // open an inspector) and nothing of spotfleet's. The workload's arrives on fd 3.
      const child = spawn(process.execPath, [...SUPERVISOR_NODE_FLAGS, this.supervisor(), dir, String(SUPERVISOR_READY_WAIT_MS), ...rec.argv], {
        cwd: this.o.cwd,
        env: {},
        detached: true,
        stdio: ['ignore', log, log, 'pipe'],
      });
      child.on('error', () => undefined);
      const envPipe = child.stdio[3] as NodeJS.WritableStream & { on(e: 'error', f: () => void): void };
      envPipe.on('error', () => undefined); // a supervisor that died says so in exit.json
      // Handed over before start returns: a start that returned has delivered the environment.
      delivered = new Promise<void>((resolve) => {
        envPipe.on('error', () => resolve());
        envPipe.end(`${JSON.stringify(env)}\n`, () => resolve());
      });
      child.unref();
      if (child.pid) {
        const st = procStart(child.pid);
        rec.supervisor = st === undefined ? { pid: child.pid } : { pid: child.pid, start: st };
        writeJsonAtomic(join(dir, 'record.json'), rec);
      }
    } finally {
      closeSync(log);
    }
    // (The bound must not keep the process alive: a CLI that started a workload exits at once.)
    if (delivered !== undefined) await Promise.race([delivered, sleep(5000, undefined, { ref: false })]);
    const inst = this.read(req.node, id);
    if (!inst) throw this.err(`instance ${id} vanished right after it started`);
    return inst;
  }

  /** Reads one instance; undefined when it has no record. */
  read(node: string, id: string): WorkloadInstance | undefined {
    const dir = this.instanceDir(node, id);
    const rec = readJson<ProcessRecord>(join(dir, 'record.json'));
    if (!rec) return undefined;
    const st = this.status(dir, rec);
    const inst: WorkloadInstance = {
      id: rec.id,
      provider: this.o.provider,
      node: rec.node,
      fleet: rec.fleet,
      workload: rec.workload,
      state: st.running ? 'running' : 'exited',
      startedAt: rec.startedAt,
      gpus: rec.gpus,
      specHash: rec.specHash,
      labels: rec.labels,
    };
    if (!st.running && st.exitCode !== undefined) inst.exitCode = st.exitCode;
    if (!st.running && st.endedAt !== undefined) inst.endedAt = st.endedAt;
    return inst;
  }

  private pids(dir: string, rec: ProcessRecord): PidsFile {
    const f = readJson<PidsFile>(join(dir, 'pids.json')) ?? {};
    const out: PidsFile = {};
    const sup = f.supervisor ?? rec.supervisor;
    if (sup) out.supervisor = sup;
    if (f.child) out.child = f.child;
    return out;
  }

  private status(dir: string, rec: ProcessRecord): { running: boolean; exitCode?: number; endedAt?: string } {
    // The recorded supervisor alive is the common case, and needs no other file.
    if (rec.supervisor?.start && isAlive(rec.supervisor)) return { running: true };
    const p = this.pids(dir, rec);
    const alive = isAlive(p.supervisor) || isAlive(p.child);
    if (alive) return { running: true };
    const exit = readJson<ExitFile>(join(dir, 'exit.json'));
    if (exit) return exit.code === undefined ? { running: false, endedAt: exit.endedAt } : { running: false, exitCode: exit.code, endedAt: exit.endedAt };
    // No pids yet: the supervisor may be a few milliseconds from writing them — or was never
    // spawned (the starting process killed between writing the record and the spawn). It is
    // starting while its starter lives or a supervisor of this instance (its argv names the
    // instance folder) runs; neither means a phantom, which must not be adopted as the workload.
    if (!p.supervisor && this.now() - Date.parse(rec.startedAt) < 5000) return { running: process.platform !== 'linux' || isAlive(rec.starter) || supervisorAlive(dir) };
    return { running: false };
  }

  private locate(node: string, id: string): { dir: string; rec: ProcessRecord } | undefined {
    assertSafeName(this.o.provider, 'node', node);
    assertSafeName(this.o.provider, 'instance', id);
    const dir = this.instanceDir(node, id);
    const rec = readJson<ProcessRecord>(join(dir, 'record.json'));
    return rec ? { dir, rec } : undefined;
  }

  async signal(node: string, instanceId: string, signal: string): Promise<void> {
    await Promise.resolve();
    const found = this.locate(node, instanceId);
    if (!found) throw this.err(`no instance ${instanceId} on node ${node}`);
    const sig = signalName(signal);
    if (!sig) throw this.err(`invalid signal "${signal}"`);
    // The supervisor forwards catchable signals to the workload; SIGKILL/SIGSTOP go to the group.
    if (sig === 'SIGKILL' || sig === 'SIGSTOP') {
      const p = this.pids(found.dir, found.rec);
      if (p.supervisor && isAlive(p.supervisor)) trySignal(-p.supervisor.pid, sig);
      if (p.child && isAlive(p.child)) trySignal(p.child.pid, sig);
      return;
    }
    // Sent only once the supervisor and the workload both catch it (signal-ready.ts): a signal
    // right after start would otherwise open the supervisor's inspector or end the workload.
    let target: number | undefined;
    const ready = await waitUntilReady(() => {
      const p = this.pids(found.dir, found.rec);
      const sup = p.supervisor && isAlive(p.supervisor) ? p.supervisor : undefined;
      const child = p.child && isAlive(p.child) ? p.child : undefined;
      if (!sup && !child) return undefined;
      const childReady = child !== undefined && (needsNoHandler(sig) || processCatches(child.pid, sig));
      if (sup) {
        target = sup.pid;
        // (A supervisor of an older version writes no `ready`; its mask says the same.)
        return processCatches(sup.pid, sig) && childReady;
      }
      // The supervisor is gone (killed) but the workload lives on: signal it directly.
      target = child?.pid;
      return childReady;
    }, this.o.signalReadyTimeoutMs ?? SIGNAL_READY_TIMEOUT_MS);
    if (ready === undefined) throw this.err(`instance ${instanceId} on node ${node} is not running`);
    if (!ready || target === undefined) {
      throw signalNotReady(this.err(`instance ${instanceId} on node ${node}: the workload has no handler for ${sig} yet, so it was not sent (it would end the workload or open a debugger); try again once the workload has started`, { retryable: true }));
    }
    if (!trySignal(target, sig as NodeJS.Signals)) throw this.err(`cannot signal instance ${instanceId}: it is gone`);
  }

  async stop(node: string, instanceId: string, graceMs: number): Promise<{ exitCode?: number }> {
    const found = this.locate(node, instanceId);
    if (!found) return {};
    const { dir, rec } = found;
    const gone = (): boolean => {
      const p = this.pids(dir, rec);
      return !isAlive(p.supervisor) && !isAlive(p.child);
    };
    if (!gone()) {
      const until = Date.now() + Math.max(0, graceMs);
      // SIGTERM goes to the supervisor only once it catches it (it forwards it to the workload);
      // one that never gets there within the grace period is killed with its process group.
      let sent = false;
      while (!sent && !gone() && Date.now() < until) {
        const p = this.pids(dir, rec);
        if (p.supervisor && isAlive(p.supervisor)) {
          if (processCatches(p.supervisor.pid, 'SIGTERM')) sent = trySignal(p.supervisor.pid, 'SIGTERM');
        } else if (p.child && isAlive(p.child)) {
          // No supervisor: ending the workload is the point of a stop, handler or not.
          sent = trySignal(p.child.pid, 'SIGTERM');
        }
        if (!sent) await sleep(10);
      }
      while (!gone() && Date.now() < until) await sleep(25);
      if (!gone()) await this.kill(dir, rec);
      this.gen++;
    }
    return this.exitOf(dir, rec);
  }

  /** SIGKILL for the whole process group, wait until gone, and record the exit if nobody did. */
  private async kill(dir: string, rec: ProcessRecord): Promise<void> {
    const p = this.pids(dir, rec);
    const gone = (): boolean => !isAlive(p.supervisor) && !isAlive(p.child);
    for (let i = 0; i < 200 && !gone(); i++) {
      if (p.supervisor && isAlive(p.supervisor)) trySignal(-p.supervisor.pid, 'SIGKILL');
      if (p.supervisor && isAlive(p.supervisor)) trySignal(p.supervisor.pid, 'SIGKILL');
      if (p.child && isAlive(p.child)) trySignal(p.child.pid, 'SIGKILL');
      await sleep(25);
    }
    this.gen++;
    if (!gone()) throw this.err(`instance ${rec.id} on node ${rec.node} survived SIGKILL`);
    try {
      writeFileSync(join(dir, 'exit.json'), `${JSON.stringify({ code: 137, signal: 'SIGKILL', endedAt: new Date(this.now()).toISOString() })}\n`, { flag: 'wx' });
    } catch {
      // the supervisor wrote it first
    }
  }

  private exitOf(dir: string, rec: ProcessRecord): { exitCode?: number } {
    const st = this.status(dir, rec);
    return st.exitCode === undefined ? {} : { exitCode: st.exitCode };
  }

  /** Kills every running instance on a node at once (the node died). */
  async killNode(node: string): Promise<void> {
    const nodeDir = join(this.o.nodesRoot, node, 'workloads');
    await Promise.all(
      listDirs(nodeDir).map(async (id) => {
        const found = this.locate(node, id);
        if (!found) return;
        const p = this.pids(found.dir, found.rec);
        if (isAlive(p.supervisor) || isAlive(p.child)) await this.kill(found.dir, found.rec);
      }),
    );
  }

  async logs(node: string, instanceId: string, opts: { tailLines?: number } = {}): Promise<string> {
    await Promise.resolve();
    const found = this.locate(node, instanceId);
    if (!found) throw this.err(`no instance ${instanceId} on node ${node}`);
    let text: string;
    try {
      text = readFileSync(join(found.dir, 'output.log'), 'utf8');
    } catch {
      return '';
    }
    if (opts.tailLines === undefined) return text;
    const lines = text.split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    return lines.slice(-Math.max(0, opts.tailLines)).map((l) => `${l}\n`).join('');
  }

  async remove(node: string, instanceId: string): Promise<void> {
    await Promise.resolve();
    const found = this.locate(node, instanceId);
    if (!found) return;
    if (this.status(found.dir, found.rec).running) throw this.err(`instance ${instanceId} on node ${node} is still running; stop it first`);
    rmSync(found.dir, { recursive: true, force: true });
    rmSync(join(this.o.dataDir, 'instances', `${instanceId}.json`), { force: true });
    this.gen++;
  }
}

/**
 * Node flags for the supervisor: where Node has it (22.14+, 23.7+), --disable-sigusr1 takes the
 * inspector off SIGUSR1 altogether; on older Node the supervisor's own SIGUSR1 handler, installed
 * first, and the readiness rule of signal() keep it closed.
 */
const SUPERVISOR_NODE_FLAGS: readonly string[] = (() => {
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
  return major >= 24 || (major === 23 && minor >= 7) || (major === 22 && minor >= 14) ? ['--disable-sigusr1'] : [];
})();

function procStart(pid: number): string | undefined {
  try {
    const t = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return t.slice(t.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function writeTextAtomic(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text, { mode: 0o700 });
  // rename is atomic: another CLI run never sees half a script
  renameSync(tmp, path);
}

function listDirs(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
      .sort();
  } catch {
    return [];
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
