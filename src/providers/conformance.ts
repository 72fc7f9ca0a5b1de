// The provider conformance suite: one set of behavioural checks that every provider runs, per
// capability it has (nodes, runtime, storage, capacity, notices). A provider's test file calls
// `describeProviderConformance` with a fixture: the provider plus what only a harness can give
// (a workload that behaves like a trainer, a way to write a checkpoint on a node, nodes to use).
// Checks run against real processes/peers. Every skip says why: a capability the provider lacks
// is skipped as not applicable; a check whose fixture part is missing is skipped naming what is
// missing, and FAILS under CI=true or SPOTFLEET_REAL_PEERS=1 unless the fixture says why in `skips`.
// External provider packages run it too: `import { describeProviderConformance } from
// 'spotfleet/conformance'` (docs/providers.md).
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { randomUUID } from 'node:crypto';
import type { CapacityType, NodeInfo, WorkloadInstance } from '../core/types.js';
import type { AcquireRequest, AlertMessage, Provider, StartRequest } from './sdk.js';

/** The checks a fixture can name in `skips`. */
export type ConformanceCheck =
  | 'nodes'
  | 'runtime'
  | 'runtime.late-signal'
  | 'runtime.exit-code'
  | 'runtime.sigkill'
  | 'storage.verify'
  | 'storage.transfer'
  | 'capacity.prices'
  | 'capacity.acquire'
  | 'capacity.never-ready'
  | 'notices'
  | 'simulation'
  | 'alerts';

/** What a provider's test harness hands to the suite. */
export interface ConformanceFixture {
  provider: Provider;
  /** Fleet name the runtime is scoped to (the provider context's `fleet`). */
  fleet: string;
  /** A ready node to start workloads on and keep checkpoints on; default: the first ready node listed. */
  node?: () => Promise<NodeInfo>;
  /** A second node for storage.transfer (may belong to another provider with compatible storage). */
  otherNode?: () => Promise<NodeInfo>;
  /**
   * A node the suite may post a simulated notice on (it dies at the deadline); the suite gives it
   * back with `cleanupEvictable` afterwards. Needed only when the provider offers `simulation`.
   */
  evictableNode?: () => Promise<NodeInfo>;
  cleanupEvictable?: (node: NodeInfo) => Promise<void>;
  /**
   * A workload that behaves like a trainer: runs until stopped, checkpoints into its checkpoint
   * folder on SIGUSR1 and on SIGTERM, then exits 0.
   */
  trainer: Workload & { checkpointPath?: string };
  /** A workload that ignores SIGTERM (to check the SIGKILL escalation); the check is skipped without one. */
  stubborn?: Workload;
  /**
   * A workload that installs its SIGUSR1 handler only a moment after it starts (until then the
   * default action would end it) and logs `got-usr1` when the handler runs; the check that no
   * signal reaches a default handler is skipped without one.
   */
  lateHandler?: Workload;
  /** A workload that exits on its own with the given code. */
  exits?: (code: number) => Workload;
  /** Writes a checkpoint for `workload` on `node` (needed when the provider has storage). */
  writeCheckpoint?: (node: NodeInfo, workload: string) => Promise<void>;
  /** Capacity to acquire in the capacity checks (needed when the provider has capacity). */
  acquire?: Omit<AcquireRequest, 'idempotencyKey' | 'labels'>;
  /**
   * For a provider whose leases are machines that must become nodes (a bought VM reached over SSH):
   * `arrange` makes the next machine it acquires never become a ready node (no SSH, or SSH with
   * another host key), `acquire` says what to buy in a pool whose ready timeout is `readyTimeoutMs`,
   * and `stillPaid` asks the cloud's own books whether a machine still runs. Without it the check
   * is skipped as not applicable (leases that are not machines to reach, such as a market's).
   */
  neverReady?: {
    arrange: () => void | Promise<void>;
    acquire: Omit<AcquireRequest, 'idempotencyKey' | 'labels'>;
    readyTimeoutMs: number;
    stillPaid?: (leaseId: string) => Promise<boolean>;
  };
  /** Stop grace for the trainer, ms (default 10 s). */
  stopGraceMs?: number;
  /**
   * What an alerts receiver got, as raw bodies, for the alerts check (needed when the provider has
   * alerts): the suite sends one alert and looks for its rule and summary here.
   */
  alertsReceived?: () => Promise<string[]>;
  /** Called after all checks, before provider.close(). */
  teardown?: () => Promise<void>;
  /**
   * Checks this fixture cannot feed, each with the reason (for example `{ 'storage.transfer':
   * 'one host only' }`): they skip with that reason instead of failing in CI.
   */
  skips?: Partial<Record<ConformanceCheck, string>>;
}

/** True where an unexpected skip must fail: CI=true, or SPOTFLEET_REAL_PEERS=1 (this repo's CI). */
export function conformanceIsStrict(env: Readonly<Record<string, string | undefined>> = process.env): boolean {
  return env.CI === 'true' || env.SPOTFLEET_REAL_PEERS === '1';
}

/** A workload for the suite; `readyLog` is text its log shows once its signal handlers are in place. */
export interface Workload {
  /** argv (process runtimes, or a container's command). */
  command?: string[];
  /** Container image (container runtimes). */
  image?: string;
  env?: Record<string, string>;
  readyLog?: string;
}

const NODE_STATES = ['ready', 'provisioning', 'draining', 'terminated', 'unknown'];
const CAPACITY: CapacityType[] = ['spot', 'on-demand'];

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function isIso(s: unknown): boolean {
  return typeof s === 'string' && Number.isFinite(Date.parse(s)) && /\d{4}-\d{2}-\d{2}T/.test(s);
}

export interface ConformanceOptions {
  /**
   * How long `setup` may take (default: vitest's hookTimeout). A fixture that buys its nodes
   * there waits for machines to boot: minutes on a real cloud.
   */
  setupTimeoutMs?: number;
}

/**
 * Registers the conformance checks for one provider under a vitest `describe`.
 * @example
 * describeProviderConformance('local', async () => ({ provider, fleet: 'test', trainer: { command: ['node', trainer] } }));
 */
export function describeProviderConformance(name: string, setup: () => Promise<ConformanceFixture>, options: ConformanceOptions = {}): void {
  describe(`provider conformance: ${name}`, () => {
    let fx: ConformanceFixture;
    let p: Provider;
    const run = randomUUID().slice(0, 8);
    const started: WorkloadInstance[] = [];

    beforeAll(async () => {
      fx = await setup();
      p = fx.provider;
    }, options.setupTimeoutMs);
    afterAll(async () => {
      if (!fx) return;
      for (const i of started) await p.runtime?.stop(i.node, i.id, 0).catch(() => undefined);
      await fx.teardown?.();
      await p.close?.();
    });

    const mainNode = async (): Promise<NodeInfo> => {
      if (fx.node) return fx.node();
      const nodes = (await p.nodes?.list()) ?? [];
      const n = nodes.find((x) => x.state === 'ready');
      if (!n) throw new Error('the fixture has no ready node');
      return n;
    };
    const request = (node: NodeInfo, workload: string, w: Workload, key: string): StartRequest => {
      const r: StartRequest = {
        fleet: fx.fleet,
        workload,
        node: node.id,
        env: { ...(w.env ?? {}) },
        gpus: 1,
        labels: { 'spotfleet.dev/fleet': fx.fleet, 'spotfleet.dev/workload': workload, 'conformance-run': run },
        specHash: `hash-${workload}`,
        idempotencyKey: key,
      };
      if (w.command) r.command = w.command;
      if (w.image) r.image = w.image;
      if (fx.trainer.checkpointPath) r.checkpointPath = fx.trainer.checkpointPath;
      return r;
    };
    /** Signals sent before the workload installed its handlers would kill it (or open Node's inspector). */
    const ready = async (node: NodeInfo, inst: WorkloadInstance, w: Workload): Promise<void> => {
      const rt = p.runtime;
      if (w.readyLog === undefined || !rt?.logs) {
        await new Promise((r) => setTimeout(r, 1000));
        return;
      }
      await waitFor(`"${w.readyLog}" in the log of ${inst.workload}`, async () => ((await rt.logs!(node.id, inst.id)).includes(w.readyLog!) ? true : undefined));
    };
    const instance = async (id: string): Promise<WorkloadInstance | undefined> => (await p.runtime!.list()).find((i) => i.id === id);
    /**
     * Lets a check run, or skips it with the reason: the provider lacks `capability` (not
     * applicable), or the fixture lacks one of `needs` (fails when strict, unless `skips` says why).
     */
    const gate = (ctx: TestContext, check: ConformanceCheck, capability: keyof Provider, needs: Partial<Record<keyof ConformanceFixture, unknown>> = {}): void => {
      if (p[capability] === undefined) ctx.skip(`not applicable: provider "${p.name}" (${p.type}) has no ${capability} capability`);
      const missing = Object.entries(needs)
        .filter(([, v]) => v === undefined)
        .map(([k]) => k);
      if (missing.length === 0) return;
      const why = fx.skips?.[check];
      if (why !== undefined) ctx.skip(`${check}: ${why}`);
      const what = `the fixture lacks ${missing.join(', ')} for the ${check} check`;
      if (conformanceIsStrict()) throw new Error(`${what}: give it, or say why in the fixture's skips['${check}'] (unexpected skips fail under CI=true or SPOTFLEET_REAL_PEERS=1)`);
      ctx.skip(`${what} (this fails under CI=true or SPOTFLEET_REAL_PEERS=1)`);
    };

    it('has a name and a type', () => {
      expect(typeof p.name).toBe('string');
      expect(p.name.length).toBeGreaterThan(0);
      expect(typeof p.type).toBe('string');
    });

    it('nodes: list is well-formed, with unique ids', async (ctx) => {
      gate(ctx, 'nodes', 'nodes');
      if (!p.nodes) return;
      const nodes = await p.nodes.list();
      const ids = nodes.map((n) => n.id).sort();
      expect(new Set(ids).size).toBe(ids.length);
      for (const n of nodes) {
        expect(n.id).toMatch(/\S/);
        expect(n.provider).toBe(p.name);
        expect(n.gpuModel).toMatch(/\S/);
        expect(Number.isInteger(n.gpus) && n.gpus >= 0).toBe(true);
        if (n.gpusFree !== undefined) expect(n.gpusFree >= 0 && n.gpusFree <= n.gpus).toBe(true);
        expect(CAPACITY).toContain(n.capacity);
        expect(Number.isFinite(n.pricePerHour) && n.pricePerHour >= 0).toBe(true);
        expect(NODE_STATES).toContain(n.state);
      }
      // Twice the same answer when nothing changed: output built on it must be deterministic.
      expect((await p.nodes.list()).map((n) => n.id).sort()).toEqual(ids);
    });

    it('runtime: start, list with labels, idempotent start, signal, stop with grace, stop again', async (ctx) => {
      gate(ctx, 'runtime', 'runtime');
      if (!p.runtime) return;
      const node = await mainNode();
      const workload = `conf-train-${run}`;
      const req = request(node, workload, fx.trainer, `${run}-train`);
      const a = await p.runtime.start(req);
      started.push(a);
      expect(a.node).toBe(node.id);
      expect(a.workload).toBe(workload);
      expect(a.fleet).toBe(fx.fleet);
      expect(isIso(a.startedAt)).toBe(true);
      const listed = await waitFor('the instance in list()', () => instance(a.id));
      expect(listed.state).toBe('running');
      expect(listed.labels).toMatchObject(req.labels);
      expect(listed.specHash).toBe(req.specHash);
      expect(listed.gpus).toBe(1);
      // Same key, same instance, and never a second process.
      const b = await p.runtime.start(req);
      expect(b.id).toBe(a.id);
      const [c, d] = await Promise.all([p.runtime.start(req), p.runtime.start(req)]);
      expect(c.id).toBe(a.id);
      expect(d.id).toBe(a.id);
      expect((await p.runtime.list()).filter((i) => i.workload === workload)).toHaveLength(1);

      const since = new Date(Date.now() - 1).toISOString();
      await ready(node, a, fx.trainer);
      await p.runtime.signal(node.id, a.id, 'SIGUSR1');
      if (p.storage) {
        const ck = await waitFor('a checkpoint after SIGUSR1', async () => (await p.storage!.verify({ node, workload, since })) ?? undefined);
        expect(ck.workload).toBe(workload);
        expect(Date.parse(ck.mtime)).toBeGreaterThan(Date.parse(since));
      }
      expect((await instance(a.id))?.state).toBe('running');

      const stopped = await p.runtime.stop(node.id, a.id, fx.stopGraceMs ?? 10_000);
      expect(stopped.exitCode).toBe(0);
      const after = await instance(a.id);
      expect(after?.state).toBe('exited');
      expect(after?.exitCode).toBe(0);
      // Idempotent: stopping a stopped instance succeeds and says the same.
      expect((await p.runtime.stop(node.id, a.id, 1000)).exitCode).toBe(0);
      if (p.runtime.logs) expect(typeof (await p.runtime.logs(node.id, a.id, { tailLines: 5 }))).toBe('string');
    });

    it('runtime: a signal sent right at start never reaches a default handler', async (ctx) => {
      gate(ctx, 'runtime.late-signal', 'runtime', { lateHandler: fx.lateHandler });
      if (!p.runtime || !fx.lateHandler) return;
      const node = await mainNode();
      const a = await p.runtime.start(request(node, `conf-late-${run}`, fx.lateHandler, `${run}-late`));
      started.push(a);
      // Either delivered once the handler is in place, or refused (retryable) without sending.
      const sent = await p.runtime.signal(node.id, a.id, 'SIGUSR1').then(
        () => true,
        (e: unknown) => {
          expect((e as { retryable?: boolean }).retryable).toBe(true);
          return false;
        },
      );
      if (sent && p.runtime.logs) await waitFor('the late handler to run', async () => ((await p.runtime!.logs!(node.id, a.id)).includes('got-usr1') ? true : undefined));
      else await new Promise((r) => setTimeout(r, 1000));
      expect((await instance(a.id))?.state).toBe('running');
      await p.runtime.stop(node.id, a.id, 2000);
    });

    it('runtime: an instance that exits on its own is reported exited with its code', async (ctx) => {
      gate(ctx, 'runtime.exit-code', 'runtime', { exits: fx.exits });
      if (!p.runtime || !fx.exits) return;
      const node = await mainNode();
      const a = await p.runtime.start(request(node, `conf-exit-${run}`, fx.exits(3), `${run}-exit`));
      started.push(a);
      const done = await waitFor('the instance to exit', async () => {
        const i = await instance(a.id);
        return i?.state === 'exited' ? i : undefined;
      });
      expect(done.exitCode).toBe(3);
      if (p.runtime.remove) {
        await p.runtime.remove(node.id, a.id);
        expect(await instance(a.id)).toBeUndefined();
      }
    });

    it('runtime: stop escalates to SIGKILL for a workload that ignores SIGTERM', async (ctx) => {
      gate(ctx, 'runtime.sigkill', 'runtime', { stubborn: fx.stubborn });
      if (!p.runtime || !fx.stubborn) return;
      const node = await mainNode();
      const a = await p.runtime.start(request(node, `conf-stubborn-${run}`, fx.stubborn, `${run}-stubborn`));
      started.push(a);
      await ready(node, a, fx.stubborn);
      const res = await p.runtime.stop(node.id, a.id, 500);
      expect(res.exitCode).toBe(137);
      expect((await instance(a.id))?.state).toBe('exited');
    });

    it('storage: verify finds nothing, then the written checkpoint, and respects since', async (ctx) => {
      gate(ctx, 'storage.verify', 'storage', { writeCheckpoint: fx.writeCheckpoint });
      if (!p.storage || !fx.writeCheckpoint) return;
      const node = await mainNode();
      const workload = `conf-ckpt-${run}`;
      expect(await p.storage.verify({ node, workload })).toBeNull();
      await fx.writeCheckpoint(node, workload);
      const ck = await p.storage.verify({ node, workload });
      expect(ck).not.toBeNull();
      expect(ck!.node).toBe(node.id);
      expect(ck!.workload).toBe(workload);
      expect(ck!.sizeBytes).toBeGreaterThan(0);
      expect(isIso(ck!.mtime)).toBe(true);
      // Only a checkpoint newer than `since` counts (a second of margin: file clocks are coarse).
      expect(await p.storage.verify({ node, workload, since: new Date(Date.parse(ck!.mtime) + 1000).toISOString() })).toBeNull();
      expect(await p.storage.verify({ node, workload, since: new Date(Date.parse(ck!.mtime) - 1000).toISOString() })).not.toBeNull();
      expect(await p.storage.verify({ node, workload, minSizeBytes: ck!.sizeBytes + 1 })).toBeNull();
    });

    it('storage: transfer keeps the source and verifies the target', async (ctx) => {
      gate(ctx, 'storage.transfer', 'storage', { writeCheckpoint: fx.writeCheckpoint, otherNode: fx.otherNode });
      if (!p.storage || !fx.writeCheckpoint || !fx.otherNode) return;
      const from = await mainNode();
      const to = await fx.otherNode();
      const workload = `conf-xfer-${run}`;
      await fx.writeCheckpoint(from, workload);
      const ck = (await p.storage.verify({ node: from, workload }))!;
      expect(ck).not.toBeNull();
      if (p.storage.canTransfer) expect(p.storage.canTransfer(from, to)).toBe(true);
      // Progress is optional to report; what is reported must be sane.
      const reports: { bytes: number; totalBytes?: number; bytesPerSec?: number }[] = [];
      const res = await p.storage.transfer({ workload, from, to, checkpoint: ck, onProgress: (x) => reports.push(x) });
      for (const r of reports) {
        expect(Number.isFinite(r.bytes) && r.bytes >= 0).toBe(true);
        if (r.totalBytes !== undefined) expect(r.bytes).toBeLessThanOrEqual(r.totalBytes);
        if (r.bytesPerSec !== undefined) expect(Number.isFinite(r.bytesPerSec) && r.bytesPerSec >= 0).toBe(true);
      }
      expect(res.checkpoint.node).toBe(to.id);
      expect(res.checkpoint.sizeBytes).toBe(ck.sizeBytes);
      expect(res.durationMs).toBeGreaterThanOrEqual(0);
      // The source copy is still there, and the target verifies on its own.
      expect(await p.storage.verify({ node: from, workload })).toMatchObject({ path: ck.path, sizeBytes: ck.sizeBytes });
      const there = await p.storage.verify({ node: to, workload });
      expect(there).not.toBeNull();
      expect(there!.sizeBytes).toBe(ck.sizeBytes);
      // A repeated transfer is harmless.
      const again = await p.storage.transfer({ workload, from, to, checkpoint: ck });
      expect(again.checkpoint.sizeBytes).toBe(ck.sizeBytes);
    });

    it('capacity: prices are well-formed and sorted by price', async (ctx) => {
      gate(ctx, 'capacity.prices', 'capacity');
      if (!p.capacity) return;
      const quotes = await p.capacity.prices({});
      expect(quotes.length).toBeGreaterThan(0);
      for (const q of quotes) {
        expect(q.provider).toBe(p.name);
        expect(CAPACITY).toContain(q.capacity);
        expect(Number.isFinite(q.pricePerGpuHour) && q.pricePerGpuHour >= 0).toBe(true);
        expect(typeof q.available).toBe('boolean');
        expect(isIso(q.at)).toBe(true);
        if (q.preemptionRatePerHour !== undefined) expect(q.preemptionRatePerHour).toBeGreaterThanOrEqual(0);
      }
      for (let i = 1; i < quotes.length; i++) expect(quotes[i]!.pricePerGpuHour).toBeGreaterThanOrEqual(quotes[i - 1]!.pricePerGpuHour);
      for (const cap of CAPACITY) for (const q of await p.capacity.prices({ capacity: cap })) expect(q.capacity).toBe(cap);
    });

    it('capacity: acquire is idempotent, leases lists it, release is idempotent', async (ctx) => {
      gate(ctx, 'capacity.acquire', 'capacity', { acquire: fx.acquire });
      if (!p.capacity || !fx.acquire) return;
      const req: AcquireRequest = { ...fx.acquire, idempotencyKey: `${run}-lease`, labels: { 'conformance-run': run } };
      const a = await p.capacity.acquire(req);
      const b = await p.capacity.acquire(req);
      expect(b.id).toBe(a.id);
      expect(a.provider).toBe(p.name);
      expect(a.gpus).toBeGreaterThanOrEqual(req.gpus);
      expect(a.capacity).toBe(req.capacity);
      expect(Number.isFinite(a.pricePerHour) && a.pricePerHour >= 0).toBe(true);
      expect(isIso(a.acquiredAt)).toBe(true);
      const leases = await p.capacity.leases();
      expect(leases.filter((l) => l.id === a.id)).toHaveLength(1);
      if (p.nodes && a.node) expect((await p.nodes.list()).some((n) => n.id === a.node)).toBe(true);
      await p.capacity.release(a.id);
      await p.capacity.release(a.id);
      // Gone, released, or terminated: a cloud may list a deleted machine while it stops (GCE's
      // STOPPING); none of these is paid for or given work.
      const left = (await p.capacity.leases()).find((l) => l.id === a.id);
      expect(left === undefined || left.state === 'released' || left.state === 'terminated', JSON.stringify(left)).toBe(true);
    });

    it('capacity: a machine that never becomes a ready node is terminated after the ready timeout, its error naming it', async (ctx) => {
      gate(ctx, 'capacity.never-ready', 'capacity');
      const nr = fx.neverReady;
      if (!nr) ctx.skip('not applicable: the fixture gives no neverReady (its leases are not machines that must become nodes)');
      if (!p.capacity || !nr) return;
      await nr.arrange();
      const a = await p.capacity.acquire({ ...nr.acquire, idempotencyKey: `${run}-never-ready`, labels: { 'conformance-run': run } });
      expect(a.node, 'a machine is a node only once it answers').toBeUndefined();
      // The verdict is due at the ready timeout; a loaded machine may be slow to probe and list.
      const dead = await waitFor(`lease ${a.id} terminated`, async () => (await p.capacity!.leases()).find((l) => l.id === a.id && l.state === 'terminated'), nr.readyTimeoutMs + 120_000);
      expect(dead.node).toBeUndefined();
      expect(dead.error, 'the error names the machine').toContain(a.id);
      expect(dead.error).toMatch(/ready/);
      if (p.nodes) expect((await p.nodes.list()).some((n) => n.id === a.id && n.state === 'ready'), 'never listed as a ready node').toBe(false);
      if (nr.stillPaid) expect(await nr.stillPaid(a.id), 'terminated in the cloud\'s own books').toBe(false);
      await p.capacity.release(a.id);
    }, 300_000);

    it('notices: poll returns nothing for a node without a notice', async (ctx) => {
      gate(ctx, 'notices', 'notices');
      if (!p.notices) return;
      const node = await mainNode();
      expect(await p.notices.poll(node)).toEqual([]);
    });

    it('simulation: a simulated notice is polled until its deadline, once per id', async (ctx) => {
      gate(ctx, 'simulation', 'simulation', { evictableNode: fx.evictableNode });
      if (!p.simulation || !fx.evictableNode) return;
      // A simulated notice is read back through notices.poll, so simulation needs notices.
      expect(p.notices, 'a provider with simulation must have notices').toBeDefined();
      const victim = await fx.evictableNode();
      try {
        const before = Date.now();
        const n = await p.simulation.evict(victim, { inMs: 3_600_000, kind: 'preemption' });
        expect(n.node).toBe(victim.id);
        expect(n.provider).toBe(p.name);
        expect(n.kind).toBe('preemption');
        expect(Date.parse(n.deadline)).toBeGreaterThanOrEqual(before + 3_600_000);
        const polled = await p.notices!.poll(victim);
        expect(polled.map((x) => x.id)).toEqual([n.id]);
        // Seen twice, it is the same notice (same id), so it is handled once.
        expect((await p.notices!.poll(victim)).map((x) => x.id)).toEqual([n.id]);
      } finally {
        await fx.cleanupEvictable?.(victim);
      }
    });

    it('alerts: send delivers the alert, and the receiver sees its rule and summary', async (ctx) => {
      gate(ctx, 'alerts', 'alerts', { alertsReceived: fx.alertsReceived });
      if (!p.alerts || !fx.alertsReceived) return;
      const alert: AlertMessage = {
        fleet: fx.fleet,
        rule: `conformance-${run}`,
        severity: 'warning',
        status: 'firing',
        summary: `conformance check ${run}`,
        address: 'workload.conformance',
        at: new Date().toISOString(),
        fields: { run },
      };
      await p.alerts.send(alert);
      const got = await fx.alertsReceived();
      expect(got.some((b) => b.includes(alert.rule) && b.includes(alert.summary))).toBe(true);
    });
  });
}
