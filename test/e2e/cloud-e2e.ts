// The e2e story every cloud provider tells through the built CLI, against that cloud's fake API
// whose launches boot as lab nodes (test/lab/cloud-vms.ts):
//   1. `apply` buys a spot VM and the workload runs in a container there;
//   2. an eviction notice, posted on that VM's own metadata fake and read by curl on the node, makes
//      `watch` checkpoint the workload, buy an on-demand VM, rsync the checkpoint and resume there;
//   3. the spot VM is terminated by spotfleet;
//   4. `destroy` leaves no instance of the fleet in the fake's books, and no lab node.
// A cloud plugs in with a CloudHarness; `describeCloudE2e` registers the tests.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeLab } from '../lab/gate.js';
import { startLab, type Lab } from '../lab/lab.js';
import type { LabVms } from '../lab/cloud-vms.js';
import { waitUntil } from '../lab/fixtures.js';
import { describeRun as show, runCli, type CliRun } from './crash-helpers.js';
import { startWatch, type LogLine, type WatchProcess } from './watch-helpers.js';
import { containerLogs, dockerPs, trainerLog } from './lab-cli-helpers.js';
import { CLOUD_FLEET, cloudFleetYaml } from './cloud-fleet.js';

export { CLOUD_FLEET, CLOUD_GPU } from './cloud-fleet.js';

/** One machine in the fake's books. */
export interface BookedInstance {
  id: string;
  capacity: 'spot' | 'on-demand';
  /** live: pending or running (paid for). */
  live: boolean;
}

export interface CloudHarness {
  cloud: 'aws' | 'gcp' | 'azure';
  vms: LabVms;
  /** The `config:` of the provider (YAML flow mapping), pointing at the fake. */
  providerConfig: string;
  /** Environment the CLI needs (credentials for the fake). */
  env: Record<string, string>;
  /** Every machine carrying the fleet's tags/labels in the fake's books. */
  books(): Promise<BookedInstance[]>;
  /** True when spotfleet itself asked the fake to end this machine (not the cloud's reclaim). */
  terminatedBySpotfleet(id: string): boolean;
  /** Posts an eviction notice for the machine on its metadata fake (inside its node). */
  evict(id: string): Promise<void>;
  /** The cloud's notice source in watch's log (`aws`, `gcp`, `azure`). */
  noticeSource: string;
  /** Where `spotfleet nodes` says on-demand prices come from (the cloud's price API). */
  onDemandPriceSource: string;
  /** The cloud has no spot capacity in this zone (until cleared), as it reports a stock-out. */
  stockOut(zone: string): void;
  clearStockOuts(): void;
  /** The zone a machine is in, by the fake's books. */
  zoneOf(id: string): string | undefined;
  close(): Promise<void>;
}

/**
 * Registers the e2e tests for one cloud. `setup` starts the cloud's fake (with the lab booting its
 * machines) and returns the harness.
 */
export function describeCloudE2e(name: string, setup: (lab: Lab) => Promise<CloudHarness>): void {
  describeLab(`spotfleet CLI on ${name}: bought spot VMs run work, evictions move it to bought on-demand VMs`, () => {
    let lab: Lab | undefined;
    let h: CloudHarness | undefined;
    let dir = '';
    let watch: WatchProcess | undefined;
    let spotId = '';
    let odId = '';
    let plannedZone = '';

    beforeAll(async () => {
      lab = await startLab({ nodes: [] });
      h = await setup(lab);
      dir = mkdtempSync(join(tmpdir(), `sf-${h.cloud}-e2e-`));
      writeFileSync(join(dir, 'fleet.yaml'), cloudFleetYaml(lab, h).replace('CLOUD_TYPE', h.cloud));
    }, 120_000);

    afterAll(async () => {
      const problems: string[] = [];
      try {
        if (process.env.SPOTFLEET_CLOUD_E2E_WATCH_LOG && watch) writeFileSync(process.env.SPOTFLEET_CLOUD_E2E_WATCH_LOG, watch.stdout);
        const stuck = await watch?.stop();
        if (stuck) problems.push(stuck);
        // Whatever a failed test left: destroy again, then nothing of the fleet may be paid for.
        if (dir && h && (await h.books()).some((b) => b.live)) {
          const r = await runCli(['destroy', '--auto-approve', dir], { cwd: dir, env: h.env, timeoutMs: 120_000 });
          if (r.code !== 0) problems.push(`destroy in cleanup: ${show(r)}`);
        }
      } finally {
        await h?.close();
        await lab?.close();
      }
      expect(problems, problems.join('\n')).toEqual([]);
      if (dir) rmSync(dir, { recursive: true, force: true });
    }, 180_000);

    it('validate passes and plan shows the spot VM to buy', async () => {
      const v = await runCli(['validate', dir], { cwd: dir, env: h!.env });
      expect(v.code, show(v)).toBe(0);
      const p = await runCli(['plan', dir], { cwd: dir, env: h!.env });
      expect(p.code, show(p)).toBe(0);
      expect(p.stdout).toMatch(/\+ lease\.spot\.train-\S+\n\s+to: +spot\/\S+, spot, \$/);
      expect(p.stdout).toMatch(/\+ workload\.train\n/);
      expect(p.stdout).toContain('Plan: 2 to add, 0 to change, 0 to destroy.');
      plannedZone = /to: +spot\/(\S+), spot/.exec(p.stdout)?.[1] ?? '';
      expect(plannedZone).not.toBe('');
    }, 60_000);

    it('apply buys a spot VM (in the next zone: the planned one is out of stock) and the workload runs in a container there', async () => {
      h!.stockOut(plannedZone);
      let r: CliRun;
      try {
        r = await runCli(['apply', '--auto-approve', dir], { cwd: dir, env: h!.env, timeoutMs: 150_000 });
      } finally {
        h!.clearStockOuts();
      }
      expect(r.code, show(r)).toBe(0);
      const books = await h!.books();
      expect(books.filter((b) => b.live).map((b) => b.capacity), JSON.stringify(books)).toEqual(['spot']);
      spotId = books.find((b) => b.live)!.id;
      const zone = h!.zoneOf(spotId);
      expect(zone, `the spot VM is not in ${plannedZone}, which had no capacity`).not.toBe(plannedZone);
      expect(zone).toBeDefined();
      // The miss is remembered: the planned zone is quoted unavailable for a while.
      const quoted = await runCli(['nodes', dir, '--json'], { cwd: dir, env: h!.env });
      expect(quoted.code, show(quoted)).toBe(0);
      const markets = (JSON.parse(quoted.stdout) as { markets: { pool: string; zone: string | null; available: boolean; price_source: string | null; at: string | null }[] }).markets;
      expect(markets.find((m) => m.pool === 'spot' && m.zone === plannedZone)?.available, JSON.stringify(markets)).toBe(false);
      // Prices come from the cloud's price API, with the time they were read.
      const od = markets.filter((m) => m.pool === 'od');
      expect(od.length).toBeGreaterThan(0);
      for (const m of od) {
        expect(m.price_source).toBe(h!.onDemandPriceSource);
        expect(Number.isFinite(Date.parse(m.at ?? ''))).toBe(true);
      }
      const vm = h!.vms.vm(spotId);
      const ps = await dockerPs(lab!, vm.name, { fleet: CLOUD_FLEET });
      expect(ps, `docker ps on the bought VM ${spotId}`).toHaveLength(1);
      expect(ps[0]).toMatchObject({ state: 'running', labels: { 'spotfleet.fleet': CLOUD_FLEET, 'spotfleet.workload': 'train' } });
      await waitUntil('the trainer started', async () => (await containerLogs(lab!, vm.name, ps[0]!.id)).includes('start at step 0'));
      const status = await runCli(['status', dir], { cwd: dir, env: h!.env });
      expect(status.code, show(status)).toBe(0);
      expect(status.stdout).toContain(spotId);
      const nodes = await runCli(['nodes', dir], { cwd: dir, env: h!.env });
      expect(nodes.code, show(nodes)).toBe(0);
      expect(nodes.stdout).toContain(spotId);
    }, 180_000);

    it('an eviction notice on the spot VM moves the workload to an on-demand VM spotfleet buys, and the spot VM is terminated', async () => {
      expect(spotId, 'apply ran').not.toBe('');
      const vm = h!.vms.vm(spotId);
      watch = startWatch(dir, { noticeInterval: '1s', interval: '30s', env: h!.env });
      await watch.info();
      await watch.waitFor((x) => x.msg === 'reconciled', { what: 'the first reconcile', timeoutMs: 90_000 });
      const from = watch.lines.length;
      await new Promise((r) => setTimeout(r, 1500));
      await h!.evict(spotId);

      const spotNode = vm.node;
      const [notice] = await watch.waitFor((x) => x.msg === 'eviction notice' && x.node === spotId, { from, what: `the ${h!.cloud} notice for ${spotId}`, timeoutMs: 30_000 });
      expect(notice).toMatchObject({ source: h!.noticeSource, provider: 'cloud' });
      const [migrated] = await watch.waitFor((x) => x.msg === 'migration complete' && x.address === 'workload.train', { from, what: "train's migration", timeoutMs: 150_000 });
      const m = migrated as LogLine;
      expect(m).toMatchObject({ from: spotId, outcome: 'succeeded' });
      odId = String(m.to);
      const books = await h!.books();
      expect(books.find((b) => b.id === odId), JSON.stringify(books)).toMatchObject({ capacity: 'on-demand', live: true });

      // Nothing runs on the evicted spot VM any more: spotfleet released it.
      await waitUntil(`spot VM ${spotId} terminated`, async () => !(await h!.books()).find((b) => b.id === spotId)?.live, 60_000);
      expect(h!.terminatedBySpotfleet(spotId), 'spotfleet terminated the spot VM itself').toBe(true);

      // The old container checkpointed on USR1 and TERM (as its VM's last look showed); the new one
      // resumed from the saved step, which rsync brought over; the source copy is kept.
      await waitUntil('the spot VM gone from the lab', async () => !h!.vms.running().some((v) => v.id === spotId), 30_000);
      await h!.vms.gone(spotId);
      const old = h!.vms.archived(spotId);
      expect(old.map((c) => c.state)).toEqual(['exited']);
      const oldLog = trainerLog(old[0]!.log);
      expect(oldLog.checkpoints.map((c) => c.reason)).toEqual(['USR1', 'TERM']);
      const saved = oldLog.checkpoints.at(-1)!.step;
      expect(readFileSync(join(spotNode.srvDir, 'checkpoints', 'train', 'step'), 'utf8').trim()).toBe(String(saved));
      const odVm = h!.vms.vm(odId);
      expect(readFileSync(join(odVm.node.srvDir, 'checkpoints', 'train', 'step'), 'utf8').trim(), 'rsync brought the checkpoint').toBe(String(saved));
      const moved = await dockerPs(lab!, odVm.name, { fleet: CLOUD_FLEET });
      expect(moved).toHaveLength(1);
      expect(moved[0]!.labels).toMatchObject({ 'spotfleet.workload': 'train', 'spotfleet.migrated-from': spotId, 'spotfleet.original-type': 'spot' });
      const resumed = await waitUntil('train resumed on the on-demand VM', async () => trainerLog(await containerLogs(lab!, odVm.name, moved[0]!.id)).resumedFrom);
      expect(resumed).toBe(saved);
      console.info(`${h!.cloud}: train ${spotId} → ${odId} resumed at step ${saved}; downtime ${String(m.downtimeMs)} ms; ${JSON.stringify(m.timings)}`);
    }, 240_000);

    it('destroy leaves no instance of the fleet in the books and no VM running', async () => {
      if (watch?.alive) {
        watch.signal('SIGTERM');
        await watch.exited;
      }
      const r = await runCli(['destroy', '--auto-approve', dir], { cwd: dir, env: h!.env, timeoutMs: 150_000 });
      expect(r.code, show(r)).toBe(0);
      await waitUntil('no live instance in the books', async () => !(await h!.books()).some((b) => b.live), 30_000);
      expect((await h!.books()).filter((b) => b.live)).toEqual([]);
      expect(h!.vms.running().map((v) => v.id)).toEqual([]);
      expect(odId === '' || h!.terminatedBySpotfleet(odId)).toBe(true);
    }, 180_000);
  });
}
