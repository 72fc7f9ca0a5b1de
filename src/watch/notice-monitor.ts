// The notice monitor: asks every node it is given for eviction notices, every `intervalMs`, through
// its provider's `notices.poll(node)` (or `notices.watch` where a provider can push), and reports
// each notice once. Polls are spread over the interval (a stable phase per node), bounded in number
// at once, never overlap on one node, and time out, so one slow or dead node never delays the news
// from the others: a notice's deadline (30 s on GCP/Azure) is the budget of the whole migration.
// A provider with a fleet-level source (an SQS queue of EC2 events, the Compute API's preemption
// operations) is heard through that one stream instead: its nodes are not polled one by one while
// the stream runs, and are polled again, until the stream is back, when it fails.
import { nodeKey } from '../core/address.js';
import type { NodeInfo, Notice } from '../core/types.js';

/**
 * The part of a provider's `notices` capability the monitor uses. `watch` is optional: a provider
 * that can push notices (a long poll, a stream) calls `onNotice` for each and stops when `signal`
 * aborts; its promise settles when it stops. A provider's NoticesCapability satisfies this.
 */
export interface NoticeSourceCapability {
  poll(node: NodeInfo): Promise<Notice[]>;
  watch?(node: NodeInfo, onNotice: (notice: Notice) => void, signal: AbortSignal): Promise<void> | void;
  /** One stream for every node of the provider; notices name the cloud's instance identity. */
  fleet?: { watch(onNotice: (notice: Notice) => void, signal: AbortSignal): Promise<void> } | undefined;
}

/** Anything with a name and a notices capability: a Provider, or an in-memory fake. */
export interface NoticeProvider {
  readonly name: string;
  readonly notices?: NoticeSourceCapability | undefined;
}

/** One node to monitor and the provider instance that can tell its notices. */
export interface MonitoredNode {
  provider: NoticeProvider;
  node: NodeInfo;
}

/** A notice seen for the first time. */
export interface SeenNotice {
  notice: Notice;
  /** Provider instance name. */
  provider: string;
  node: NodeInfo;
  /** Epoch ms when the monitor got it: the start of notice-to-signal. */
  seenAt: number;
  via: 'poll' | 'watch';
}

/** A poll (or watch) of one node that failed or took too long, or an onNotice callback that threw. */
export interface NoticeMonitorError {
  provider: string;
  node: string;
  error: unknown;
  /** The poll did not answer within `pollTimeoutMs` (it is left to finish; its answer still counts). */
  timedOut: boolean;
  via: 'poll' | 'watch' | 'callback';
}

export interface NoticeMonitorOptions {
  /** Called once per new notice (by provider and notice id). Keep it quick: enqueue and return. */
  onNotice: (seen: SeenNotice) => void;
  /** Called for every failed or timed-out poll, with the provider name and node. */
  onError?: (err: NoticeMonitorError) => void;
  /** Time between two polls of one node. Default 2000 ms. */
  intervalMs?: number;
  /** Polls in flight at once, over all nodes. Default 32. */
  maxInFlight?: number;
  /** A poll that has not answered by then is reported and its slot freed. Default 5000 ms. */
  pollTimeoutMs?: number;
  /** How long a notice id is remembered after it was last returned. Default 1 h. */
  rememberMs?: number;
  /** Clock for `seenAt`; injectable for tests. Default Date.now. */
  now?: () => number;
  /** First wait before a failed fleet-level source is tried again; doubles up to 60 s. Default 2000 ms. */
  fleetRetryMs?: number;
}

export interface NoticeMonitorStats {
  nodes: number;
  /** Nodes followed through `notices.watch` instead of polls. */
  watching: number;
  inFlight: number;
  /** Polls due but waiting for an in-flight slot. */
  waiting: number;
  /** Polls that completed (either way). */
  polls: number;
  errors: number;
  timeouts: number;
  /** Slots skipped because the node's previous poll had not come back. */
  skipped: number;
  noticesEmitted: number;
  maxInFlightSeen: number;
  /** Fleet-level sources running now. */
  fleetSources: number;
  /** Nodes heard through a running fleet-level source (not polled one by one). */
  covered: number;
  /** Fleet-level notices that named no monitored node. */
  unmatched: number;
  /**
   * Nodes heard at least once: a poll answered (or failed), a push watch started, or a fleet-level
   * source running. Watch's start-up benchmark waits for this to equal `nodes`.
   */
  reached: number;
  /** When `reached` first equalled a non-empty `nodes` (ms epoch); undefined until then. */
  allReachedAt?: number;
}

/**
 * Where within the interval a node's polls fall (ms), stable for a node key so that replacing the
 * node set does not move anyone, and spread uniformly so that 1,000 nodes do not all poll at the
 * same instant (FNV-1a hash of the key, with murmur3's finaliser so that keys differing only in
 * their last characters, like sequential instance ids, still land far apart).
 */
export function pollPhase(key: string, intervalMs: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return ((h >>> 0) / 0x1_0000_0000) * intervalMs;
}

interface NodeState {
  key: string;
  provider: NoticeProvider;
  node: NodeInfo;
  phase: number;
  nextDue: number;
  timer: NodeJS.Timeout | undefined;
  queued: boolean;
  removed: boolean;
  watch: AbortController | undefined;
  /** The provider's watch failed or ended: poll this node instead. */
  watchFailed: boolean;
  /** The next poll is an immediate first one, off the node's slot of the grid. */
  offGrid: boolean;
}

interface FleetState {
  provider: NoticeProvider;
  ac: AbortController | undefined;
  live: boolean;
  retry: NodeJS.Timeout | undefined;
  backoffMs: number;
}

/**
 * Polls a changing set of nodes for eviction notices.
 * @example
 * const mon = new NoticeMonitor({ intervalMs: 2000, onNotice: (s) => queue.add(fleet), onError: (e) => log.warn(...) });
 * mon.setNodes(spotNodes.map((node) => ({ provider: providers.get(node.provider)!, node })));
 * mon.start();
 * // ...after each reconcile: mon.setNodes(...); on shutdown: await mon.stop();
 */
export class NoticeMonitor {
  private readonly onNotice: (seen: SeenNotice) => void;
  private readonly onError: ((err: NoticeMonitorError) => void) | undefined;
  private readonly intervalMs: number;
  private readonly maxInFlight: number;
  private readonly pollTimeoutMs: number;
  private readonly rememberMs: number;
  private readonly now: () => number;
  private readonly nodes = new Map<string, NodeState>();
  private waiting: NodeState[] = [];
  /** Notice key -> when it was last returned. */
  private readonly seen = new Map<string, number>();
  private lastPrune = 0;
  private inFlight = 0;
  /**
   * Nodes with a poll outstanding (possibly past its timeout): never start another. Kept by key,
   * not on the node's state, so a node removed and re-added while hung is not polled twice.
   */
  private readonly busy = new Set<string>();
  /** Resolves when an in-flight poll releases its slot; stop() waits for these. */
  private readonly pending = new Set<Promise<void>>();
  private running = false;
  private readonly counters = { polls: 0, errors: 0, timeouts: 0, skipped: 0, noticesEmitted: 0, maxInFlightSeen: 0, unmatched: 0 };
  /** Fleet-level sources by provider name. */
  private readonly fleets = new Map<string, FleetState>();
  /** Cloud identity → nodes: `provider\0id` (id and leaseId) and `\0instanceId` (meta.instanceId). */
  private identities = new Map<string, NodeState[]>();
  private readonly fleetRetryMs: number;
  /** Node keys heard at least once (see stats().reached). */
  /** Keys of current nodes only (a removed node leaves it), so its size says when all are heard. */
  private readonly reached = new Set<string>();
  private allReachedAt: number | undefined;

  constructor(opts: NoticeMonitorOptions) {
    this.onNotice = opts.onNotice;
    this.onError = opts.onError;
    this.intervalMs = Math.max(1, opts.intervalMs ?? 2000);
    this.maxInFlight = Math.max(1, opts.maxInFlight ?? 32);
    this.pollTimeoutMs = Math.max(1, opts.pollTimeoutMs ?? 5000);
    this.rememberMs = opts.rememberMs ?? 3_600_000;
    this.now = opts.now ?? Date.now;
    this.fleetRetryMs = Math.max(1, opts.fleetRetryMs ?? 2000);
  }

  /**
   * Replaces the set of monitored nodes (after each reconcile). Nodes that stay keep their
   * schedule and in-flight poll; removed nodes stop at once (a late answer from them is dropped);
   * new nodes get their first poll within one interval. Entries whose provider has no `notices`
   * capability are ignored.
   */
  setNodes(entries: readonly MonitoredNode[]): void {
    const next = new Map<string, MonitoredNode>();
    for (const e of entries) {
      if (!e.provider.notices) continue;
      next.set(nodeKey(e.provider.name, e.node.id), e);
    }
    for (const [key, st] of this.nodes) {
      if (!next.has(key)) this.remove(st);
    }
    for (const [key, e] of next) {
      const st = this.nodes.get(key);
      if (st) {
        const providerChanged = st.provider !== e.provider;
        st.node = e.node;
        st.provider = e.provider;
        // A reloaded spec builds new provider objects: a watch must follow the new one.
        if (providerChanged && this.running && (st.watch || e.provider.notices?.watch)) {
          this.stopWatch(st);
          st.watchFailed = false;
          this.begin(st);
        }
        continue;
      }
      const fresh: NodeState = {
        key,
        provider: e.provider,
        node: e.node,
        phase: pollPhase(key, this.intervalMs),
        nextDue: 0,
        timer: undefined,
        queued: false,
        removed: false,
        watch: undefined,
        watchFailed: false,
        offGrid: false,
      };
      this.nodes.set(key, fresh);
      if (this.running) this.begin(fresh);
    }
    this.syncFleets();
  }

  /** Rebuilds the identity index and starts or stops fleet-level sources to match the node set. */
  private syncFleets(): void {
    const ids = new Map<string, NodeState[]>();
    const add = (k: string, st: NodeState): void => {
      const list = ids.get(k);
      if (list) list.push(st);
      else ids.set(k, [st]);
    };
    const wanted = new Map<string, NoticeProvider>();
    for (const st of this.nodes.values()) {
      const p = st.provider.name;
      add(`${p}\u0000${st.node.id}`, st);
      if (st.node.leaseId !== undefined && st.node.leaseId !== st.node.id) add(`${p}\u0000${st.node.leaseId}`, st);
      const inst = st.node.meta?.instanceId;
      if (typeof inst === 'string' && inst !== '') add(`\u0000${inst}`, st);
      if (st.provider.notices?.fleet) wanted.set(p, st.provider);
    }
    this.identities = ids;
    for (const [name, fs] of this.fleets) {
      const p = wanted.get(name);
      if (p === fs.provider) continue;
      this.stopFleet(fs);
      this.fleets.delete(name);
    }
    for (const [name, p] of wanted) {
      if (this.fleets.has(name)) continue;
      const fs: FleetState = { provider: p, ac: undefined, live: false, retry: undefined, backoffMs: this.fleetRetryMs };
      this.fleets.set(name, fs);
      if (this.running) this.startFleet(fs);
    }
  }

  /** Whether a node is heard through its provider's running fleet-level source. */
  private covered(st: NodeState): boolean {
    return this.fleets.get(st.provider.name)?.live === true;
  }

  private startFleet(fs: FleetState): void {
    const src = fs.provider.notices?.fleet;
    if (!src || !this.running) return;
    if (fs.retry) clearTimeout(fs.retry);
    fs.retry = undefined;
    const ac = new AbortController();
    fs.ac = ac;
    fs.live = true;
    const name = fs.provider.name;
    const onNotice = (n: Notice): void => {
      if (!this.running || fs.ac !== ac) return;
      const hits = [...(this.identities.get(`${name}\u0000${n.node}`) ?? []), ...(this.identities.get(`\u0000${n.node}`) ?? [])];
      if (hits.length === 0) this.counters.unmatched++;
      for (const st of new Set(hits)) this.accept(st, [n], 'watch');
    };
    const ended = (error: unknown): void => {
      if (fs.ac !== ac) return; // stopped on purpose, or replaced
      fs.ac = undefined;
      fs.live = false;
      if (!this.running) return;
      this.report({ provider: name, node: '*', error, timedOut: false, via: 'watch' });
      // Hear its nodes one by one until the stream is back.
      for (const st of this.nodes.values()) if (st.provider.name === name && !st.timer && !st.watch && !st.removed) this.begin(st);
      fs.retry = setTimeout(() => this.startFleet(fs), fs.backoffMs);
      fs.backoffMs = Math.min(60_000, fs.backoffMs * 2);
    };
    let r: Promise<void>;
    try {
      r = src.watch(onNotice, ac.signal);
    } catch (err) {
      ended(err);
      return;
    }
    Promise.resolve(r).then(
      () => ended(new Error(`the fleet notice source of ${name} ended; polling its nodes instead`)),
      (err: unknown) => ended(err),
    );
    // Running for a while counts as healthy again: the next failure waits the shortest back-off.
    const healthy = setTimeout(() => {
      if (fs.ac === ac) fs.backoffMs = this.fleetRetryMs;
    }, 60_000);
    healthy.unref?.();
  }

  private stopFleet(fs: FleetState): void {
    if (fs.retry) clearTimeout(fs.retry);
    fs.retry = undefined;
    const ac = fs.ac;
    fs.ac = undefined;
    fs.live = false;
    ac?.abort();
  }

  /** Starts polling (idempotent). */
  start(): void {
    if (this.running) return;
    this.running = true;
    for (const fs of this.fleets.values()) this.startFleet(fs);
    for (const st of this.nodes.values()) this.begin(st);
  }

  /**
   * Stops: no new polls, watches aborted, no callbacks after it resolves. Waits for polls in
   * flight to answer or time out.
   */
  async stop(): Promise<void> {
    this.running = false;
    for (const fs of this.fleets.values()) this.stopFleet(fs);
    for (const st of this.nodes.values()) {
      if (st.timer) clearTimeout(st.timer);
      st.timer = undefined;
      st.queued = false;
      this.stopWatch(st);
    }
    this.waiting = [];
    await Promise.all([...this.pending]);
  }

  get isRunning(): boolean {
    return this.running;
  }

  /**
   * Polls every node now instead of at its next slot (a watch replica that just took over must
   * hear the notices at once); resolves when those polls have answered or timed out. Nodes with a
   * long-poll watch are already listening and are left alone. Returns how many were polled.
   */
  async pollAllNow(): Promise<number> {
    if (!this.running) return 0;
    const due = [...this.nodes.values()].filter((st) => !st.removed && !st.watch);
    for (const st of due) {
      if (st.timer) clearTimeout(st.timer);
      st.timer = undefined;
      st.nextDue = this.now();
      this.due(st);
    }
    while (this.running && this.pending.size > 0) await Promise.race([...this.pending]);
    return due.length;
  }

  stats(): NoticeMonitorStats {
    let watching = 0;
    let covered = 0;
    for (const st of this.nodes.values()) {
      if (st.watch) watching++;
      if (this.covered(st)) covered++;
    }
    let fleetSources = 0;
    for (const fs of this.fleets.values()) if (fs.live) fleetSources++;
    let reached = 0;
    for (const st of this.nodes.values()) if (this.reached.has(st.key) || st.watch || this.covered(st)) reached++;
    return {
      nodes: this.nodes.size,
      watching,
      fleetSources,
      covered,
      reached,
      ...(this.allReachedAt !== undefined ? { allReachedAt: this.allReachedAt } : {}),
      inFlight: this.inFlight,
      waiting: this.waiting.length,
      ...this.counters,
    };
  }

  // -------------------------------------------------------------------------------------------

  private begin(st: NodeState): void {
    if (this.covered(st)) return;
    const cap = st.provider.notices;
    if (cap?.watch && !st.watchFailed) {
      this.startWatch(st, cap);
      return;
    }
    // A node not heard yet is polled at once (within the in-flight bound): a starting watch hears
    // every node in its first second, not a phase later. After that, its slot on the grid.
    st.offGrid = !this.reached.has(st.key);
    st.nextDue = st.offGrid ? this.now() : this.nextSlot(st, this.now());
    // Started here and now, not from a timer: a reconcile that starts next and does not yield to
    // timers until it is done (synchronous provider I/O behind async calls) must not hold it back.
    if (st.offGrid && this.running && !st.removed) this.due(st);
    else this.schedule(st);
  }

  /** The first time >= t on this node's grid: phase + k * interval. */
  private nextSlot(st: NodeState, t: number): number {
    const offset = (((st.phase - t) % this.intervalMs) + this.intervalMs) % this.intervalMs;
    return t + offset;
  }

  private schedule(st: NodeState): void {
    if (!this.running || st.removed || st.watch) return;
    if (st.timer) clearTimeout(st.timer);
    const delay = Math.max(0, st.nextDue - this.now());
    st.timer = setTimeout(() => this.due(st), delay);
  }

  private due(st: NodeState): void {
    st.timer = undefined;
    if (!this.running || st.removed || st.watch || this.covered(st)) return;
    if (this.busy.has(st.key)) {
      // The previous poll has not come back (it timed out): do not pile a second one onto it.
      this.counters.skipped++;
      this.advance(st);
      return;
    }
    if (this.inFlight < this.maxInFlight) this.runPoll(st);
    else if (!st.queued) {
      st.queued = true;
      this.waiting.push(st);
    }
  }

  /** Sets the next due time one interval on, skipping slots already past. */
  private advance(st: NodeState): void {
    const now = this.now();
    // After an immediate first poll, back onto the node's own slot of the grid.
    if (st.offGrid) {
      st.offGrid = false;
      // Its first slot at least half an interval on: a slot that falls just after the immediate
      // poll would only ask the same question twice.
      st.nextDue = this.nextSlot(st, now + Math.ceil(this.intervalMs / 2));
      this.schedule(st);
      return;
    }
    st.nextDue += this.intervalMs;
    if (st.nextDue <= now) st.nextDue = this.nextSlot(st, now + 1);
    this.schedule(st);
  }

  private pump(): void {
    while (this.running && this.inFlight < this.maxInFlight && this.waiting.length > 0) {
      const st = this.waiting.shift() as NodeState;
      st.queued = false;
      if (st.removed || st.watch || this.busy.has(st.key)) continue;
      this.runPoll(st);
    }
  }

  private runPoll(st: NodeState): void {
    const cap = st.provider.notices;
    if (!cap) return;
    const node = st.node;
    const providerName = st.provider.name;
    this.inFlight++;
    if (this.inFlight > this.counters.maxInFlightSeen) this.counters.maxInFlightSeen = this.inFlight;
    this.busy.add(st.key);
    let released = false;
    let timedOut = false;
    let releaseResolve!: () => void;
    const releasedP = new Promise<void>((r) => (releaseResolve = r));
    this.pending.add(releasedP);
    const release = (): void => {
      if (released) return;
      released = true;
      this.inFlight--;
      this.pending.delete(releasedP);
      releaseResolve();
      if (!st.removed && this.running) this.advance(st);
      this.pump();
    };
    const timer = setTimeout(() => {
      timedOut = true;
      this.counters.timeouts++;
      if (this.running && !st.removed) {
        this.report({
          provider: providerName,
          node: node.id,
          error: new Error(`notice poll of ${node.id} did not answer within ${this.pollTimeoutMs} ms`),
          timedOut: true,
          via: 'poll',
        });
      }
      release();
    }, this.pollTimeoutMs);

    // The async wrapper turns a poll that throws synchronously into a rejection like any other.
    const p = (async () => cap.poll(node))();
    p.then(
      (notices) => {
        this.counters.polls++;
        // Even a poll that timed out still counts: a late notice is better than none.
        if (this.running && !st.removed) this.accept(st, notices, 'poll');
      },
      (err: unknown) => {
        this.counters.polls++;
        this.counters.errors++;
        if (!timedOut && this.running && !st.removed) {
          this.report({ provider: providerName, node: node.id, error: err, timedOut: false, via: 'poll' });
        }
      },
    ).finally(() => {
      clearTimeout(timer);
      if (!st.removed) {
        this.reached.add(st.key);
        if (this.allReachedAt === undefined && this.reached.size >= this.nodes.size) this.allReachedAt = this.now();
      }
      this.busy.delete(st.key);
      release();
    });
  }

  private startWatch(st: NodeState, cap: NoticeSourceCapability): void {
    if (st.timer) clearTimeout(st.timer);
    st.timer = undefined;
    const ac = new AbortController();
    st.watch = ac;
    const providerName = st.provider.name;
    const nodeId = st.node.id;
    const onNotice = (n: Notice): void => {
      if (this.running && !st.removed && st.watch === ac) this.accept(st, [n], 'watch');
    };
    const fallBack = (error: unknown): void => {
      if (st.watch !== ac) return; // stopped on purpose, or replaced
      st.watch = undefined;
      st.watchFailed = true;
      if (!this.running || st.removed) return;
      this.report({ provider: providerName, node: nodeId, error, timedOut: false, via: 'watch' });
      st.nextDue = this.nextSlot(st, this.now());
      this.schedule(st);
    };
    let r: Promise<void> | void;
    try {
      r = cap.watch?.(st.node, onNotice, ac.signal);
    } catch (err) {
      fallBack(err);
      return;
    }
    Promise.resolve(r).then(
      () => fallBack(new Error(`notice watch of ${nodeId} ended; polling instead`)),
      (err: unknown) => fallBack(err),
    );
  }

  private stopWatch(st: NodeState): void {
    const ac = st.watch;
    st.watch = undefined;
    ac?.abort();
  }

  private remove(st: NodeState): void {
    st.removed = true;
    if (st.timer) clearTimeout(st.timer);
    st.timer = undefined;
    this.stopWatch(st);
    if (st.queued) this.waiting = this.waiting.filter((x) => x !== st);
    st.queued = false;
    this.nodes.delete(st.key);
    this.reached.delete(st.key);
  }

  private accept(st: NodeState, notices: readonly Notice[], via: 'poll' | 'watch'): void {
    const t = this.now();
    const fresh: Notice[] = [];
    for (const n of notices) {
      const k = `${st.provider.name}\u0000${n.id}`;
      if (!this.seen.has(k)) fresh.push(n);
      this.seen.set(k, t);
    }
    if (t - this.lastPrune > Math.min(this.rememberMs, 60_000)) this.prune(t);
    fresh.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    for (const notice of fresh) {
      this.counters.noticesEmitted++;
      try {
        this.onNotice({ notice, provider: st.provider.name, node: st.node, seenAt: t, via });
      } catch (error) {
        this.report({ provider: st.provider.name, node: st.node.id, error, timedOut: false, via: 'callback' });
      }
    }
  }

  private prune(t: number): void {
    this.lastPrune = t;
    for (const [k, last] of this.seen) if (t - last > this.rememberMs) this.seen.delete(k);
  }

  private report(e: NoticeMonitorError): void {
    try {
      this.onError?.(e);
    } catch {
      // An error reporter that throws must not stop the monitor.
    }
  }
}
