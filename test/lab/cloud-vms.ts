// The lab side of the cloud fakes: each machine a fake EC2 / GCE / Azure launches "boots" as a lab
// node. The node's sshd presents the host key and accepts the keys read from the bootstrap script
// the fake received (as a real VM's first boot would install them), it has its own dockerd, a fake
// nvidia-smi with the machine type's GPUs, and the cloud's metadata fake, which listens inside the
// node's own namespace on 169.254.169.254 (a molt host has none: its notices come
// from the marketplace's API). Faults for the next boots: a VM that never answers SSH, or one whose
// sshd presents a different host key than the one injected.
import { loadavg } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseBootScript } from '../fakes/boot-script.js';
import type { Lab, LabCloud, LabNode } from './lab.js';
import { startCloudFake, type CloudFake } from './fixtures.js';

export interface BootedVm {
  /** The cloud's id (instance id, VM name). */
  id: string;
  /** The lab node's name. */
  name: string;
  node: LabNode;
  /** The cloud's metadata fake in the node (none for a marketplace host). */
  metadata: CloudFake | undefined;
  /** The user the bootstrap script named. */
  user: string;
}

/** A container of a machine that ended, as `docker ps -a` and `docker logs` showed it just before. */
export interface ArchivedContainer {
  id: string;
  name: string;
  state: string;
  labels: string;
  log: string;
}

export type BootFault = 'never-boots' | 'wrong-host-key' | 'bad-script';

export interface LabVmsOptions {
  /** Whose metadata fake runs in each machine; `none` for a marketplace (molt) host. */
  cloud: LabCloud | 'none';
  /** GPUs of a machine type. */
  gpusOf(type: string): { gpus: number; gpuModel: string };
}

/** Boots and ends the machines of one cloud fake in a lab. */
export class LabVms {
  private readonly vms = new Map<string, BootedVm>();
  private readonly booting = new Map<string, Promise<unknown>>();
  private readonly faults: BootFault[] = [];
  private readonly ending = new Map<string, Promise<void>>();
  private seq = 0;
  /** Every machine ever booted, by id (also after it ended, with what its containers printed). */
  readonly history: { id: string; name: string; type: string; zone: string | undefined; fault?: BootFault; ended: boolean; containers?: ArchivedContainer[]; stage: string; error?: string; ms?: number }[] = [];

  constructor(
    private readonly lab: Lab,
    private readonly o: LabVmsOptions,
  ) {}

  /** The next boot(s) go wrong this way. */
  failNext(...faults: BootFault[]): void {
    this.faults.push(...faults);
  }

  /**
   * Boots a machine: reads the keys from its bootstrap script, adds a lab node with them, starts
   * the cloud's metadata fake in it, and its sshd last. Resolves with its address on the lab
   * network as soon as it has one, as a cloud reports a VM running with its IP while it still
   * boots: the node is ready for spotfleet only when its sshd answers, which it does once the rest
   * is up. A stage that takes long is reported on stderr, naming the machine and the stage.
   */
  async boot(id: string, type: string, zone: string | undefined, script: string | undefined, extraMetadataArgs: string[] = []): Promise<{ privateIp: string }> {
    const fault = this.faults.shift();
    const name = `vm${++this.seq}`;
    const entry: (typeof this.history)[number] = { id, name, type, zone, ...(fault ? { fault } : {}), ended: false, stage: 'reading its bootstrap script' };
    this.history.push(entry);
    let addressed: (ip: string) => void = () => undefined;
    const address = new Promise<string>((r) => (addressed = r));
    const t0 = Date.now();
    const at = (s: string): void => {
      entry.stage = s;
    };
    const p = (async () => {
      if (script === undefined || fault === 'bad-script') throw new Error('the machine got no bootstrap script');
      const keys = parseBootScript(script);
      if (keys.user !== 'root') throw new Error(`the lab's machines log in as root, the script names ${keys.user}`);
      const { gpus, gpuModel } = this.o.gpusOf(type);
      const cloud = this.o.cloud === 'none' ? undefined : this.o.cloud;
      const spec = { name, ...(cloud ? { cloud } : {}), gpus, gpuModel, authorizedKeys: keys.authorizedKeys, ...(fault === 'wrong-host-key' ? {} : { hostKey: keys.hostKey }), sshd: false };
      at('its namespace, dockerd and image');
      // An impostor answers at once: whatever it shows before the ready timeout is its wrong key.
      let impostor: Promise<void> | undefined;
      const node = await this.lab.addNode(spec, {
        onAddress: (n) => {
          addressed(n.address);
          if (fault === 'wrong-host-key') impostor = this.lab.startSshd(n.name);
        },
      });
      await impostor;
      const args = [...(cloud === 'aws' ? ['--instance-id', id] : ['--name', id]), ...(zone !== undefined ? ['--zone', zone] : []), ...extraMetadataArgs];
      at('its metadata service');
      const metadata = cloud ? await startCloudFake(this.lab, name, cloud, args) : undefined;
      this.vms.set(id, { id, name, node, metadata, user: keys.user });
      at('its sshd');
      if (fault !== 'never-boots' && fault !== 'wrong-host-key') await this.lab.startSshd(name);
      at('booted');
    })();
    // Whether this process could run at all meanwhile (the boot's waits run in it): its event loop's worst delay.
    const lag = monitorEventLoopDelay({ resolution: 50 });
    lag.enable();
    const lagMs = (): number => Math.round(lag.max / 1e6);
    const slow = setTimeout(() => process.stderr.write(`lab: machine ${id} (${name}) still booting after ${Math.round((Date.now() - t0) / 1000)}s, at ${entry.stage} (event loop delayed up to ${lagMs()} ms; load ${loadavg().map((x) => x.toFixed(1)).join(' ')})\n`), 20_000);
    const done = p.then(
      () => {
        entry.ms = Date.now() - t0;
        clearTimeout(slow);
        lag.disable();
      },
      (e: unknown) => {
        entry.error = e instanceof Error ? e.message : String(e);
        entry.ms = Date.now() - t0;
        clearTimeout(slow);
        lag.disable();
        process.stderr.write(`lab: machine ${id} (${name}) failed to boot at ${entry.stage} after ${Math.round((Date.now() - t0) / 1000)}s: ${e instanceof Error ? e.message : String(e)} (event loop delayed up to ${lagMs()} ms; load ${loadavg().map((x) => x.toFixed(1)).join(' ')})\n`);
        throw e;
      },
    );
    this.booting.set(id, done);
    void done.catch(() => undefined).finally(() => this.booting.delete(id));
    // Running once it has an address; a boot that fails before that fails the launch.
    return { privateIp: await Promise.race([address, done.then(() => address)]) };
  }

  /** Ends a machine: its node goes away (after a boot still in flight finishes). */
  async terminate(id: string): Promise<void> {
    await this.booting.get(id)?.catch(() => undefined);
    const vm = this.vms.get(id);
    const h = this.history.find((x) => x.id === id);
    if (h) h.ended = true;
    if (!vm) return;
    this.vms.delete(id);
    const done = (async () => {
      if (h) h.containers = await this.archive(vm.name).catch(() => []);
      await vm.metadata?.stop().catch(() => undefined);
      await this.lab.removeNode(vm.name);
    })();
    this.ending.set(id, done);
    await done;
  }

  /** Resolves once a machine that is ending is gone (its containers archived, its node removed). */
  async gone(id: string): Promise<void> {
    await this.ending.get(id);
  }

  /** What the machine's containers were and printed (read before its node goes away). */
  private async archive(name: string): Promise<ArchivedContainer[]> {
    const ps = await this.lab.docker(name, ['ps', '-a', '--no-trunc', '--format', '{{json .}}']);
    const out: ArchivedContainer[] = [];
    for (const line of ps.stdout.split('\n').filter((l) => l.startsWith('{'))) {
      const j = JSON.parse(line) as { ID: string; Names: string; State: string; Labels: string };
      const logs = await this.lab.docker(name, ['logs', j.ID]);
      out.push({ id: j.ID, name: j.Names, state: j.State, labels: j.Labels, log: logs.stdout + logs.stderr });
    }
    return out;
  }

  /** The containers of a machine that ended. */
  archived(id: string): ArchivedContainer[] {
    const h = this.history.find((x) => x.id === id);
    if (!h?.ended || !h.containers) throw new Error(`machine ${id} has not ended (or had no containers read)`);
    return h.containers;
  }

  vm(id: string): BootedVm {
    const v = this.vms.get(id);
    if (!v) throw new Error(`no booted machine ${id} (booted: ${[...this.vms.keys()].join(', ') || 'none'})`);
    return v;
  }

  /** The metadata fake of a machine (clouds only). */
  metadata(id: string): CloudFake {
    const m = this.vm(id).metadata;
    if (!m) throw new Error(`machine ${id} runs no metadata fake`);
    return m;
  }

  /** One line on a machine for a test's failure message: its boot stage, how long it took, how it failed. */
  describe(id: string): string {
    const h = this.history.find((x) => x.id === id);
    if (!h) return `machine ${id} never booted`;
    return `machine ${id} (${h.name}): ${h.stage}${h.ms !== undefined ? ` after ${h.ms} ms` : ''}${h.error ? `, failed: ${h.error}` : ''}${h.fault ? ` (fault ${h.fault})` : ''}${h.ended ? ', ended' : ''}`;
  }

  /** Machines whose nodes still run. */
  running(): BootedVm[] {
    return [...this.vms.values()];
  }

  /** Waits for boots in flight, then ends every machine. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.booting.values()]);
    await Promise.allSettled([...this.vms.keys()].map((id) => this.terminate(id)));
  }
}
