// The real-peer lab: GPU "nodes" as network namespaces on one bridge, each with its own sshd, its
// own dockerd, a private /srv/spotfleet, a fake nvidia-smi and a busybox trainer image, following
// shared/reference/lab-example.sh. Everything it starts is recorded by PID and stopped by PID in
// `close()`; every namespace it made is deleted and its temp folder removed.
//
// Layout of one lab (W = mktemp -d /tmp/sflab.XXXXXX):
//   W/client, W/client.pub, W/authorized_keys, W/known_hosts   controller identity + known hosts
//   W/rootfs.tar                                               busybox image rootfs (built once)
//   W/n/<name>/srv            bind-mounted at /srv/spotfleet inside the node (checkpoints/ in it)
//   W/n/<name>/bin            first on the node's PATH (sshd SetEnv): the fake nvidia-smi
//   W/n/<name>/gpus.csv       what the fake nvidia-smi prints; `lab.setGpus` rewrites it
//   W/n/<name>/d/             dockerd: sock, root, exec, pid
import { setTimeout as sleep } from 'node:timers/promises';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, rmSync, existsSync, readdirSync, readlinkSync, chmodSync, copyFileSync, symlinkSync, accessSync, constants, openSync, closeSync, unlinkSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { createHash } from 'node:crypto';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isAlive, procStat, trySignal, type PidRef } from '../../src/providers/kit/fs-util.js';

export type LabCloud = 'aws' | 'gcp' | 'azure';

export interface LabNodeSpec {
  name: string;
  cloud?: LabCloud;
  gpus: number;
  gpuModel: string;
  /** MiB per GPU reported by the fake nvidia-smi; default 81559 (H100 80GB). */
  gpuMemoryMiB?: number;
  /** Host key the node's sshd presents (OpenSSH private key and public line); default a fresh one. */
  hostKey?: { private: string; public: string };
  /**
   * The node gets a home of its own (bound over /root inside its mount namespace) whose
   * ~/.ssh/authorized_keys, seeded with these keys, is what its sshd accepts; default: the lab's
   * shared authorized_keys (the lab's client key).
   */
  authorizedKeys?: string[];
  /** Start sshd (default true); false makes a machine that never answers SSH. */
  sshd?: boolean;
  /** Extra sshd_config lines for this node, e.g. `AllowTcpForwarding no`. */
  sshdConfig?: string[];
}

export interface LabOptions {
  nodes: LabNodeSpec[];
  /** Image tag imported into every node's engine; default `spotfleet/busybox:test`. */
  image?: string;
  /**
   * Root's login shell on the nodes becomes bash, and every node's /root a lab home (its own, or
   * one they share) whose ~/.bashrc (which bash run by sshd reads for every command) waits
   * `delayMs` (default 0) and counts itself, like a GPU host's `conda init` or `pyenv init`. See
   * `Lab.loginShells`. Default: root's shell is /bin/sh.
   */
  bashrc?: { delayMs?: number };
}

export interface LabNode {
  name: string;
  cloud?: LabCloud;
  gpus: number;
  gpuModel: string;
  netns: string;
  /** Address on the lab bridge (reachable from the controller and from the other nodes). */
  address: string;
  port: number;
  /** What the node sees as /srv/spotfleet, on the controller's file system. */
  srvDir: string;
  /** The node's checkpoint root as the node sees it. */
  checkpointRoot: string;
  /** The node's engine socket (a file, so reachable from the root namespace too). */
  dockerSocket: string;
  hostKeyPublic: string;
  /** `SHA256:...` as `ssh-keygen -lf` prints it. */
  hostKeyFingerprint: string;
  gpusFile: string;
  /** The node's own home (what it sees as /root), when it has one. */
  homeDir?: string;
}

export interface MetadataHandle {
  pid: number;
  stop(): Promise<void>;
  output(): string;
}

export interface Lab {
  dir: string;
  image: string;
  clientKeyPath: string;
  clientKey: Buffer;
  /** A tiny IMDSv2-like server script (see TINY_IMDS) for `startMetadata`. */
  tinyImdsPath: string;
  /** known_hosts listing every node's host key under its address. */
  knownHostsPath: string;
  nodes: LabNode[];
  node(name: string): LabNode;
  /**
   * How many login shells read ~/.bashrc on the node so far (every exec, every session), with
   * `bashrc` set; 0 without it. The lab's own `ssh` calls count too.
   */
  loginShells(node: string): number;
  /** Runs a shell command on the node with the ssh CLI (for test assertions only). */
  ssh(node: string, command: string): Promise<{ code: number; stdout: string; stderr: string }>;
  /** Runs the docker CLI against the node's engine socket from the controller. */
  docker(node: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  /** Replaces what the node's nvidia-smi prints (lines `index, name, util, total, free`). */
  setGpus(node: string, lines: string[]): void;
  /**
   * Runs argv inside the node's network namespace, where 169.254.169.254 is bound to `lo`, and waits
   * until `probe` (default `http://169.254.169.254:80/`) answers from inside that namespace.
   */
  startMetadata(node: string, argv: string[], opts?: { probe?: string; env?: Record<string, string> }): Promise<MetadataHandle>;
  /** Kills the node's sshd listener (existing sessions keep running, as on a real host). */
  stopSshd(node: string): Promise<void>;
  startSshd(node: string): Promise<void>;
  stopDocker(node: string): Promise<void>;
  startDocker(node: string): Promise<void>;
  /** A docker-registry inside the node's namespace on 127.0.0.1:5000 (the node's own loopback). */
  startRegistry(node: string): Promise<{ url: string; storageDir: string }>;
  /**
   * Adds a node while the lab runs (a VM a cloud fake boots): namespace, sshd, dockerd, image.
   * `onAddress` is called once the node has its address on the lab network, before its services
   * start (a VM is `running`, with an IP, well before its sshd answers).
   */
  addNode(spec: LabNodeSpec, o?: { onAddress?: (node: LabNode) => void }): Promise<LabNode>;
  /** Takes a node away (a terminated VM): its containers, processes and namespace. */
  removeNode(name: string): Promise<void>;
  close(): Promise<void>;
}

const HERE = dirname(fileURLToPath(import.meta.url));
/** Source folder of the lab assets (trainer.sh), also when running from dist/. */
export const LAB_ASSETS = existsSync(join(HERE, 'trainer.sh')) ? HERE : join(HERE, '..', '..', '..', 'test', 'lab');

/**
 * A tiny IMDSv2-like server for `startMetadata` smoke tests (the real fakes live in test/fakes):
 * argv `host:port triggerFile`; PUT /latest/api/token gives a token; spot/instance-action answers
 * 404 until the trigger file exists, then its content. Written into the lab folder at bring-up.
 */
const TINY_IMDS = [
  "import { createServer } from 'node:http';",
  "import { existsSync, readFileSync } from 'node:fs';",
  "const [host, port] = (process.argv[2] || '127.0.0.1:80').split(':'); // the lab passes the address to bind inside a node netns",
  "const trigger = process.argv[3] || '';",
  "createServer((req, res) => {",
  "  if (req.method === 'PUT' && req.url === '/latest/api/token') return void res.writeHead(200).end('lab-token');",
  "  if (req.headers['x-aws-ec2-metadata-token'] !== 'lab-token') return void res.writeHead(401).end();",
  "  if (req.url === '/latest/meta-data/spot/instance-action' && trigger && existsSync(trigger)) return void res.writeHead(200, { 'content-type': 'application/json' }).end(readFileSync(trigger));",
  "  res.writeHead(404).end();",
  "}).listen(Number(port), host, () => console.log('listening ' + host + ':' + port));",
  '',
].join('\n');

const REQUIRED_BINARIES = ['sshd', 'ssh', 'ssh-keygen', 'dockerd', 'docker', 'rsync', 'ip', 'unshare', 'curl', 'busybox', 'nsenter'];

/** Why the lab cannot run here (not root, a missing binary), or undefined when it can. */
export function labUnavailableReason(): string | undefined {
  if (process.platform !== 'linux') return 'the lab needs Linux network namespaces';
  if (process.getuid?.() !== 0) return 'the lab needs root (network namespaces, sshd, dockerd)';
  const path = (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin', '/usr/bin', '/bin']);
  const missing = REQUIRED_BINARIES.filter((b) => !path.some((d) => canExec(join(d, b))));
  if (missing.length > 0) return `missing binaries: ${missing.join(', ')} (apt-get install openssh-server openssh-client rsync busybox-static docker.io iproute2 curl)`;
  return undefined;
}

function canExec(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], opts: { input?: string | Buffer; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 64 << 20, encoding: 'buffer' }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1) : 0;
      if (err && err.code === 'ENOENT') return reject(new Error(`lab: ${cmd} not found`));
      resolve({ code, stdout: stdout.toString(), stderr: stderr.toString() });
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

async function must(cmd: string, args: string[], opts: { input?: string | Buffer; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`lab: \`${cmd} ${args.join(' ')}\` failed (${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout;
}


/**
 * Thrown by a waitFor check when what it waits for has failed for good (its process ended): the
 * wait ends at once with this error, not with a timeout that hides why.
 */
class WaitAborted extends Error {}

/** Whether a child has ended, by exit or by a signal (then exitCode stays null). */
function ended(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

function endedHow(child: ChildProcess): string {
  return child.signalCode !== null ? `killed by ${child.signalCode}` : `exit ${child.exitCode}`;
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 20_000, everyMs = 25): Promise<void> {
  const t0 = Date.now();
  const until = t0 + timeoutMs;
  let tries = 0;
  for (;;) {
    tries++;
    let ok = false;
    try {
      ok = await check();
    } catch (e) {
      if (e instanceof WaitAborted) throw e;
    }
    if (ok) return;
    if (Date.now() > until) throw new Error(`lab: timed out waiting for ${what} (${tries} tries in ${Date.now() - t0} ms)`);
    await sleep(everyMs);
  }
}

/**
 * SIGTERM each, wait up to graceMs for all, then SIGKILL what is left. Each process is known by its
 * PID and start time, taken now: a PID that has ended and been reused (by another lab's dockerd
 * extracting an image, say, while labs run side by side) is never signalled.
 */
async function killPids(pids: number[], graceMs = 10_000): Promise<void> {
  const live = pids.map((pid) => ({ pid, start: procStat(pid)?.start ?? '' })).filter((r) => r.start !== '' && isAlive(r));
  const signal = (sig: NodeJS.Signals) => {
    for (const r of live) if (isAlive(r)) trySignal(r.pid, sig);
  };
  signal('SIGTERM');
  const until = Date.now() + graceMs;
  while (live.some(isAlive) && Date.now() < until) await sleep(50);
  signal('SIGKILL');
  const until2 = Date.now() + 5000;
  while (live.some(isAlive) && Date.now() < until2) await sleep(20);
}

/**
 * Kills `pids` (ours), then every process left in the mount namespaces of `owners` (a node's
 * dockerd, whose containerd and shims share its namespace). The namespaces are pinned by an open
 * descriptor before anything is killed: a namespace's id (`mnt:[4026532…]`) is freed when its last
 * process ends and the kernel hands out the lowest free id next, so without the pin the sweep
 * would match the fresh namespace of whatever started meanwhile (every `ip netns exec`, here or in
 * a lab running beside this one, makes one) and kill it. An owner no longer alive, or whose PID now
 * belongs to another process, pins nothing.
 */
async function killWithMountNamespaces(pids: number[], owners: PidRef[], graceMs?: number): Promise<void> {
  const pinned: number[] = [];
  const ids = new Set<string>();
  for (const o of owners) {
    if (!isAlive(o)) continue;
    try {
      const fd = openSync(`/proc/${o.pid}/ns/mnt`, 'r');
      pinned.push(fd);
      // Read after the pin, and only while the owner is still the same process.
      const id = readlinkSync(`/proc/${o.pid}/ns/mnt`);
      if (isAlive(o)) ids.add(id);
    } catch {
      /* gone */
    }
  }
  try {
    await killPids(pids, graceMs);
    const stragglers: number[] = [];
    if (ids.size > 0) {
      for (const d of readdirSync('/proc')) {
        if (!/^\d+$/.test(d)) continue;
        try {
          if (ids.has(readlinkSync(`/proc/${d}/ns/mnt`))) stragglers.push(Number(d));
        } catch {
          /* gone */
        }
      }
    }
    await killPids(stragglers, 3000);
  } finally {
    for (const fd of pinned) closeSync(fd);
  }
}

function tcpBanner(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(1000, () => done(false));
    s.once('data', (d) => done(d.toString().startsWith('SSH-')));
    s.once('error', () => done(false));
  });
}

function dockerPing(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/_ping', method: 'GET', timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
    req.end();
  });
}

function fingerprintOf(pubLine: string): string {
  const b64 = pubLine.trim().split(/\s+/)[1] ?? '';
  return `SHA256:${createHash('sha256').update(Buffer.from(b64, 'base64')).digest('base64').replace(/=+$/, '')}`;
}

/** Where labs claim their subnets (see pickSubnet). */
const SUBNET_CLAIMS = '/run/spotfleet-lab-subnets';

/**
 * Picks a /24 in 10.231-10.250 that no interface in the root namespace uses yet, and claims it: a
 * file named after it, made exclusively, holds the claiming process's PID. Labs in other test processes start at the same moment, and a subnet
 * that `ip addr` shows free can be picked by two of them before either adds its address (the host
 * would then route one lab's traffic into the other's bridge). A claim whose process is gone (a
 * test process killed before its lab closed) is taken over.
 */
async function pickSubnet(): Promise<{ net: string; release: () => void }> {
  mkdirSync(SUBNET_CLAIMS, { recursive: true });
  const used = await must('ip', ['-o', '-4', 'addr', 'show']);
  for (let i = 0; i < 5000; i++) {
    const n = (process.pid + i) % 5000;
    const net = `10.${231 + Math.floor(n / 250)}.${n % 250}`;
    if (used.includes(` ${net}.`)) continue;
    const claim = join(SUBNET_CLAIMS, net);
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        writeFileSync(claim, String(process.pid), { flag: 'wx' });
        return {
          net,
          release: () => {
            try {
              if (readFileSync(claim, 'utf8') === String(process.pid)) unlinkSync(claim);
            } catch {
              /* already gone */
            }
          },
        };
      } catch {
        let owner: number | undefined;
        try {
          owner = Number(readFileSync(claim, 'utf8'));
        } catch {
          continue; // released meanwhile: try again
        }
        // Empty: its claimer is between creating and writing it. Alive: taken.
        if (!(Number.isInteger(owner) && owner > 0) || trySignal(owner, 0)) break;
        try {
          unlinkSync(claim);
        } catch {
          /* someone else took it over */
        }
      }
    }
  }
  throw new Error('lab: no free 10.231-10.250 /24 subnet');
}

function gpuLines(spec: LabNodeSpec): string[] {
  const mem = spec.gpuMemoryMiB ?? 81559;
  return Array.from({ length: spec.gpus }, (_, i) => `${i}, NVIDIA ${spec.gpuModel}, 0, ${mem}, ${mem - 555}`);
}

const NVIDIA_SMI = `#!/bin/sh
# Fake nvidia-smi for the spotfleet lab: prints the node's canned GPU CSV for the one query spotfleet makes.
case "$*" in
  *--query-gpu=*--format=csv,noheader,nounits*) exec cat "$(dirname "$0")/../gpus.csv" ;;
  *) echo "fake nvidia-smi: unsupported arguments: $*" >&2; exit 2 ;;
esac
`;

/**
 * Starts a lab: one network namespace per node on a private bridge, with sshd, dockerd, a fake
 * nvidia-smi and the trainer image on each. Bring-up runs the nodes in parallel.
 * @example const lab = await startLab({ nodes: [{ name: 'a', cloud: 'aws', gpus: 2, gpuModel: 'H100' }] });
 */
export async function startLab(options: LabOptions): Promise<Lab> {
  const reason = labUnavailableReason();
  if (reason) throw new Error(`lab unavailable: ${reason}`);
  const image = options.image ?? 'spotfleet/busybox:test';
  const W = mkdtempSync('/tmp/sflab.');
  // The bashrc option's rc file: counts itself into the node's folder (sshd sets SPOTFLEET_LAB_NODE),
  // then waits; `sleep`, so it costs the same wall time idle or loaded.
  const delayS = Math.max(0, options.bashrc?.delayMs ?? 0) / 1000;
  const slowBashrc = `# spotfleet lab: a slow rc file, as conda/pyenv init make it\necho . >> "${W}/n/\${SPOTFLEET_LAB_NODE:-unknown}/login-shells"\n${delayS > 0 ? `sleep ${delayS.toFixed(3)}\n` : ''}`;
  const tag = `${process.pid.toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`.slice(-7);
  const pids = new Set<number>();
  const children = new Map<number, ChildProcess>();
  const namespaces: string[] = [];
  const sshdPid = new Map<string, number>();
  const dockerdPid = new Map<string, PidRef>();
  const nodes: LabNode[] = [];
  const specs = new Map<string, LabNodeSpec>();
  let closed = false;
  let releaseSubnet = (): void => undefined;

  /** PIDs started for each node, so removeNode stops exactly those. */
  const nodePids = new Map<string, Set<number>>();
  let nextIndex = 0;
  const spawnTracked = (argv: string[], logFile: string, env?: NodeJS.ProcessEnv, node?: string): ChildProcess => {
    const [cmd, ...args] = argv as [string, ...string[]];
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env });
    const chunks: Buffer[] = [];
    const keep = (d: Buffer) => {
      chunks.push(d);
      if (chunks.length > 2000) chunks.splice(0, 1000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    child.on('exit', () => {
      try {
        writeFileSync(logFile, Buffer.concat(chunks));
      } catch {
        /* the lab dir may be gone */
      }
    });
    (child as ChildProcess & { logChunks?: Buffer[] }).logChunks = chunks;
    if (child.pid !== undefined) {
      pids.add(child.pid);
      children.set(child.pid, child);
      // An ended child leaves every set at once: its PID may be reused by anyone from now on
      // (another lab's processes), and the lab signals only what is in them.
      const pid = child.pid;
      child.on('exit', () => {
        children.delete(pid);
        pids.delete(pid);
        if (node !== undefined) nodePids.get(node)?.delete(pid);
      });
      if (node !== undefined) {
        const set = nodePids.get(node) ?? new Set<number>();
        set.add(pid);
        nodePids.set(node, set);
      }
    }
    return child;
  };

  // `ip netns exec` remounts /sys (hiding the cgroup mounts dockerd needs), so enter the network
  // namespace with nsenter; a private mount namespace then binds this node's srv at /srv/spotfleet.
  // The exec chain keeps the spawned PID equal to the daemon's own PID.
  // sshd also gets its own /etc/passwd in which root's shell is /bin/sh: every exec runs through
  // the login shell, and this machine's root .bashrc (pyenv init) costs ~0.6 s a command.
  // A node with its own home (a VM a cloud fake booted) sees that folder as /root; with the bashrc
  // option the others see the lab's shared home there (so the .bashrc is the lab's).
  const inNode = (ns: string, passwd = false): string[] => {
    const name = nodeByNs.get(ns) ?? '';
    const nd = join(W, 'n', name);
    const pw = passwd ? ` && mount --bind ${join(W, 'passwd')} /etc/passwd` : '';
    const ownHome = specs.get(name)?.authorizedKeys !== undefined;
    const home = ownHome || options.bashrc ? ` && mount --bind ${ownHome ? join(nd, 'home') : join(W, 'home')} /root` : '';
    return ['nsenter', `--net=/run/netns/${ns}`, 'unshare', '--mount', '--propagation', 'private', 'sh', '-c', `mount --bind "$0" /srv/spotfleet${pw}${home} && exec "$@"`, join(nd, 'srv')];
  };
  const nodeByNs = new Map<string, string>();

  const close = async () => {
    if (closed) return;
    closed = true;
    // Containers first (so their shims go with them), then every process we started, then
    // whatever is still inside our namespaces (all of it started by us), then the namespaces.
    await Promise.all(
      nodes.map(async (n) => {
        if (!existsSync(n.dockerSocket)) return;
        const ids = await run('docker', ['-H', `unix://${n.dockerSocket}`, 'ps', '-aq'], { timeoutMs: 10_000 }).catch(() => undefined);
        const list = ids?.stdout.split('\n').filter(Boolean) ?? [];
        if (list.length > 0) await run('docker', ['-H', `unix://${n.dockerSocket}`, 'rm', '-f', ...list], { timeoutMs: 20_000 }).catch(() => undefined);
      }),
    );
    await killWithMountNamespaces([...pids], [...dockerdPid.values()]);
    // Whatever is still inside our network namespaces (named, so pinned until `ip netns del`).
    const stragglers: number[] = [];
    for (const ns of namespaces) {
      const r = await run('ip', ['netns', 'pids', ns]).catch(() => undefined);
      for (const l of r?.stdout.split('\n') ?? []) if (/^\d+$/.test(l.trim())) stragglers.push(Number(l));
    }
    await killPids([...new Set(stragglers)], 3000);
    for (const ns of [...namespaces].reverse()) await run('ip', ['netns', 'del', ns]).catch(() => undefined);
    await run('ip', ['link', 'del', `sfh${tag}`]).catch(() => undefined);
    releaseSubnet();
    rmSync(W, { recursive: true, force: true });
  };

  try {
    mkdirSync('/run/sshd', { recursive: true });
    mkdirSync('/srv/spotfleet', { recursive: true });
    await must('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'spotfleet-lab', '-f', join(W, 'client')]);
    copyFileSync(join(W, 'client.pub'), join(W, 'authorized_keys'));
    writeFileSync(join(W, 'tiny-imds.mjs'), TINY_IMDS);
    writeFileSync(join(W, 'passwd'), readFileSync('/etc/passwd', 'utf8').replace(/^(root:[^:]*:0:0:[^:]*:[^:]*):[^\n]*$/m, `$1:${options.bashrc ? '/bin/bash' : '/bin/sh'}`));
    if (options.bashrc) {
      mkdirSync(join(W, 'home'), { recursive: true, mode: 0o700 });
      writeFileSync(join(W, 'home', '.bashrc'), slowBashrc);
    }
    const subnet = await pickSubnet();
    releaseSubnet = subnet.release;
    const net = subnet.net;

    // The switch: a bridge in its own namespace; the controller plugs in at .1.
    const sw = `sfsw${tag}`;
    await must('ip', ['netns', 'add', sw]);
    namespaces.push(sw);
    await must('ip', ['netns', 'exec', sw, 'ip', 'link', 'add', 'br0', 'type', 'bridge']);
    await must('ip', ['netns', 'exec', sw, 'ip', 'link', 'set', 'br0', 'up']);
    const plug = async (ns: string | undefined, short: string, addr: string) => {
      const a = `sf${short}${tag}`;
      const b = `sw${short}${tag}`;
      await must('ip', ['link', 'add', a, 'type', 'veth', 'peer', 'name', b]);
      await must('ip', ['link', 'set', b, 'netns', sw]);
      await must('ip', ['netns', 'exec', sw, 'ip', 'link', 'set', b, 'master', 'br0', 'up']);
      if (ns === undefined) {
        await must('ip', ['addr', 'add', `${addr}/24`, 'dev', a]);
        await must('ip', ['link', 'set', a, 'up']);
      } else {
        await must('ip', ['link', 'set', a, 'netns', ns]);
        await must('ip', ['netns', 'exec', ns, 'ip', 'addr', 'add', `${addr}/24`, 'dev', a]);
        await must('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', a, 'up']);
      }
    };
    await plug(undefined, 'h', `${net}.1`);

    // The trainer image's rootfs, built once per lab.
    const R = join(W, 'rootfs');
    for (const d of ['bin', 'tmp', 'proc', 'sys', 'dev', 'etc', 'checkpoints']) mkdirSync(join(R, d), { recursive: true });
    copyFileSync('/bin/busybox', join(R, 'bin', 'busybox'));
    const applets = (await must('/bin/busybox', ['--list'])).split('\n').filter((a) => a && a !== 'busybox');
    for (const a of applets) symlinkSync('busybox', join(R, 'bin', a));
    writeFileSync(join(R, 'etc', 'passwd'), 'root:x:0:0:root:/:/bin/sh\n');
    copyFileSync(join(LAB_ASSETS, 'trainer.sh'), join(R, 'bin', 'workload'));
    chmodSync(join(R, 'bin', 'workload'), 0o755);
    await must('tar', ['-C', R, '-cf', join(W, 'rootfs.tar'), '.']);

    const known: string[] = [];
    /** Namespace, address, host key, sshd config, fake nvidia-smi and folders of one node. */
    const setupNode = async (spec: LabNodeSpec): Promise<LabNode> => {
      if (!/^[a-z0-9][a-z0-9-]{0,15}$/.test(spec.name)) throw new Error(`lab: node name "${spec.name}" must be short lowercase [a-z0-9-]`);
      if (specs.has(spec.name)) throw new Error(`lab: node "${spec.name}" exists already`);
      const i = nextIndex++;
      if (i > 230) throw new Error('lab: out of node addresses');
      specs.set(spec.name, spec);
      const ns = `sfn${i}${tag}`;
      nodeByNs.set(ns, spec.name);
      const nd = join(W, 'n', spec.name);
      for (const d of ['srv/checkpoints', 'bin', 'd']) mkdirSync(join(nd, d), { recursive: true });
      await must('ip', ['netns', 'add', ns]);
      namespaces.push(ns);
      await must('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up']);
      await must('ip', ['netns', 'exec', ns, 'ip', 'addr', 'add', '169.254.169.254/32', 'dev', 'lo']);
      const address = `${net}.${11 + i}`;
      await plug(ns, `${i}`, address);
      if (spec.hostKey) {
        writeFileSync(join(nd, 'host_key'), spec.hostKey.private.endsWith('\n') ? spec.hostKey.private : `${spec.hostKey.private}\n`, { mode: 0o600 });
        writeFileSync(join(nd, 'host_key.pub'), `${spec.hostKey.public.trim()}\n`);
      } else {
        await must('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `host-${spec.name}`, '-f', join(nd, 'host_key')]);
      }
      const hostPub = readFileSync(join(nd, 'host_key.pub'), 'utf8').trim();
      let authorizedKeysFile = join(W, 'authorized_keys');
      if (spec.authorizedKeys !== undefined) {
        mkdirSync(join(nd, 'home', '.ssh'), { recursive: true, mode: 0o700 });
        writeFileSync(join(nd, 'home', '.ssh', 'authorized_keys'), spec.authorizedKeys.map((k) => `${k.trim()}\n`).join(''), { mode: 0o600 });
        authorizedKeysFile = '%h/.ssh/authorized_keys';
      }
      if (options.bashrc && spec.authorizedKeys !== undefined) writeFileSync(join(nd, 'home', '.bashrc'), slowBashrc);
      writeFileSync(join(nd, 'bin', 'nvidia-smi'), NVIDIA_SMI, { mode: 0o755 });
      writeFileSync(join(nd, 'gpus.csv'), gpuLines(spec).map((l) => `${l}\n`).join(''));
      const sock = join(nd, 'd', 'docker.sock');
      writeFileSync(
        join(nd, 'sshd_config'),
        [
          `ListenAddress ${address}`,
          'Port 22',
          `HostKey ${join(nd, 'host_key')}`,
          'PidFile none',
          `AuthorizedKeysFile ${authorizedKeysFile}`,
          'PasswordAuthentication no',
          'KbdInteractiveAuthentication no',
          'PubkeyAuthentication yes',
          'PermitRootLogin prohibit-password',
          'StrictModes no',
          'UsePAM no',
          'MaxStartups 200',
          'MaxSessions 200',
          'AllowStreamLocalForwarding yes',
          'Subsystem sftp internal-sftp',
          `SetEnv DOCKER_HOST=unix://${sock} SPOTFLEET_LAB_NODE=${spec.name} PATH=${join(nd, 'bin')}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
          'LogLevel ERROR',
          ...(spec.sshdConfig ?? []),
          '',
        ].join('\n'),
      );
      known.push(`${address} ${hostPub.split(/\s+/).slice(0, 2).join(' ')}`);
      const node: LabNode = {
        name: spec.name,
        gpus: spec.gpus,
        gpuModel: spec.gpuModel,
        netns: ns,
        address,
        port: 22,
        srvDir: join(nd, 'srv'),
        checkpointRoot: '/srv/spotfleet/checkpoints',
        dockerSocket: sock,
        hostKeyPublic: hostPub,
        hostKeyFingerprint: fingerprintOf(hostPub),
        gpusFile: join(nd, 'gpus.csv'),
      };
      if (spec.cloud) node.cloud = spec.cloud;
      if (spec.authorizedKeys !== undefined) node.homeDir = join(nd, 'home');
      nodes.push(node);
      return node;
    };
    for (const spec of options.nodes) await setupNode(spec);
    nodes.sort((a, b) => options.nodes.findIndex((s) => s.name === a.name) - options.nodes.findIndex((s) => s.name === b.name));
    const writeKnownHosts = (): void => writeFileSync(join(W, 'known_hosts'), [...known].sort().map((l) => `${l}\n`).join(''));
    writeKnownHosts();
    /** sshd (unless the spec says not), dockerd and the trainer image on a node. */
    const bringUp = async (n: LabNode): Promise<void> => {
      await Promise.all([specs.get(n.name)?.sshd === false ? Promise.resolve() : lab.startSshd(n.name), lab.startDocker(n.name)]);
      const r = await run('docker', ['-H', `unix://${n.dockerSocket}`, 'import', '--change', 'CMD ["/bin/workload"]', join(W, 'rootfs.tar'), image]);
      if (r.code !== 0) throw new Error(`lab: docker import on ${n.name} failed: ${r.stderr}`);
    };

    const lab: Lab = {
      dir: W,
      image,
      clientKeyPath: join(W, 'client'),
      clientKey: readFileSync(join(W, 'client')),
      tinyImdsPath: join(W, 'tiny-imds.mjs'),
      knownHostsPath: join(W, 'known_hosts'),
      nodes,
      node(name) {
        const n = nodes.find((x) => x.name === name);
        if (!n) throw new Error(`lab: no node "${name}"`);
        return n;
      },
      loginShells(name) {
        lab.node(name);
        try {
          return readFileSync(join(W, 'n', name, 'login-shells'), 'utf8').length / 2;
        } catch {
          return 0;
        }
      },
      ssh(name, command) {
        const n = lab.node(name);
        return run('ssh', ['-i', lab.clientKeyPath, '-o', `UserKnownHostsFile=${lab.knownHostsPath}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR', '-p', String(n.port), `root@${n.address}`, command]);
      },
      docker(name, args) {
        return run('docker', ['-H', `unix://${lab.node(name).dockerSocket}`, ...args]);
      },
      setGpus(name, lines) {
        writeFileSync(lab.node(name).gpusFile, lines.map((l) => `${l}\n`).join(''));
      },
      async startMetadata(name, argv, opts = {}) {
        const n = lab.node(name);
        const child = spawnTracked(['ip', 'netns', 'exec', n.netns, ...argv], join(W, 'n', name, `metadata-${Date.now()}.log`), { ...process.env, ...(opts.env ?? {}) }, name);
        const chunks = (child as ChildProcess & { logChunks: Buffer[] }).logChunks;
        const probe = opts.probe ?? 'http://169.254.169.254:80/'; // probed with `ip netns exec` inside the node namespace only
        await waitFor(`metadata service in node ${name}`, async () => {
          if (ended(child)) throw new WaitAborted(`lab: metadata command ended (${endedHow(child)}): ${Buffer.concat(chunks).toString()}`);
          const r = await run('ip', ['netns', 'exec', n.netns, 'curl', '-s', '-o', '/dev/null', '-m', '1', '-w', '%{http_code}', probe]);
          return r.stdout.trim() !== '000' && r.stdout.trim() !== '';
        }, 45_000, 50); // a node process starting on a loaded machine can take a while
        const pid = child.pid as number;
        return {
          pid,
          output: () => Buffer.concat(chunks).toString(),
          async stop() {
            await killPids([pid], 3000);
            pids.delete(pid);
          },
        };
      },
      async stopSshd(name) {
        const p = sshdPid.get(name);
        if (p !== undefined) {
          await killPids([p], 3000);
          pids.delete(p);
          sshdPid.delete(name);
        }
      },
      async startSshd(name) {
        const n = lab.node(name);
        const nd = join(W, 'n', name);
        // Like dockerd, an sshd that has not answered in 30 s, or has ended, is started once more
        // (once in CI a bought lab VM's sshd ended at start and the wait said only "timed out");
        // what it logged (-e: to stderr) goes with the error either way.
        for (let attempt = 1; ; attempt++) {
          const child = spawnTracked(
            [...inNode(n.netns, true), '/usr/sbin/sshd', '-D', '-e', '-f', join(nd, 'sshd_config')],
            join(nd, attempt === 1 ? 'sshd.log' : `sshd.${attempt}.log`),
            undefined,
            name,
          );
          sshdPid.set(name, child.pid as number);
          const log = (): string => Buffer.concat((child as ChildProcess & { logChunks: Buffer[] }).logChunks).toString().slice(-2000).trim() || 'empty';
          try {
            await waitFor(`sshd on node ${name}`, async () => {
              if (ended(child)) throw new WaitAborted(`lab: sshd on node ${name} ended (${endedHow(child)})`);
              return tcpBanner(n.address, n.port);
            }, attempt === 1 ? 30_000 : 60_000); // readiness, not a timing check
            return;
          } catch (e) {
            if (attempt >= 2) throw new Error(`${(e as Error).message}; its log: ${log()}`);
            process.stderr.write(`lab: sshd on node ${name} did not come up (${(e as Error).message}; its log: ${log()}); starting it again\n`);
            if (!ended(child)) await killPids([child.pid as number], 3000);
            pids.delete(child.pid as number);
          }
        }
      },
      async stopDocker(name) {
        const p = dockerdPid.get(name);
        if (p !== undefined) {
          await killPids([p.pid], 15_000);
          pids.delete(p.pid);
          dockerdPid.delete(name);
        }
      },
      async startDocker(name) {
        const n = lab.node(name);
        const nd = join(W, 'n', name);
        const d = join(nd, 'd');
        // A dockerd that has not answered in 40 s (seen now and then on a loaded machine: it never
        // answers) is stopped, with its containerd, and started once more.
        for (let attempt = 1; ; attempt++) {
          const child = spawnTracked(
            [
              ...inNode(n.netns),
              'dockerd', '--host', `unix://${n.dockerSocket}`, '--data-root', join(d, 'root'), '--exec-root', join(d, 'exec'), '--pidfile', join(d, 'dockerd.pid'),
              '--bridge=none', '--iptables=false', '--ip6tables=false', '--ip-masq=false', '--log-level=warn',
            ],
            join(nd, attempt === 1 ? 'dockerd.log' : `dockerd.${attempt}.log`),
            undefined,
            name,
          );
          dockerdPid.set(name, { pid: child.pid as number, start: procStat(child.pid as number)?.start ?? '' });
          const log = (): string => Buffer.concat((child as ChildProcess & { logChunks: Buffer[] }).logChunks).toString().slice(-2000);
          try {
            await waitFor(`dockerd on node ${name}`, async () => {
              if (ended(child)) throw new WaitAborted(`lab: dockerd on ${name} ended (${endedHow(child)}): ${log()}`);
              return dockerPing(n.dockerSocket);
            }, attempt === 1 ? 40_000 : 60_000); // readiness, not a timing check
            return;
          } catch (e) {
            if (attempt >= 2 || ended(child)) throw new Error(`${(e as Error).message}; its log: ${log()}`);
            process.stderr.write(`lab: dockerd on node ${name} did not answer in 40 s; starting it again (its log: ${log().trim() || 'empty'})\n`);
            const containerd = (await run('pgrep', ['-f', join(d, 'exec', 'containerd')]).catch(() => undefined))?.stdout.split('\n').filter((l) => /^\d+$/.test(l.trim())).map(Number) ?? [];
            await killPids([child.pid as number, ...containerd], 5000);
            pids.delete(child.pid as number);
            rmSync(join(d, 'dockerd.pid'), { force: true });
          }
        }
      },
      async startRegistry(name) {
        lab.node(name);
        const storageDir = join(W, 'n', name, 'registry');
        mkdirSync(storageDir, { recursive: true });
        const cfg = join(W, 'n', name, 'registry.yml');
        writeFileSync(cfg, `version: 0.1\nlog: {level: error}\nstorage: {filesystem: {rootdirectory: ${storageDir}}, delete: {enabled: true}}\nhttp: {addr: 127.0.0.1:5000}\n`);
        await lab.startMetadata(name, ['docker-registry', 'serve', cfg], { probe: 'http://127.0.0.1:5000/v2/' });
        return { url: '127.0.0.1:5000', storageDir };
      },
      async addNode(spec, o = {}) {
        if (closed) throw new Error('lab: closed');
        const n = await setupNode(spec);
        writeKnownHosts();
        o.onAddress?.(n);
        await bringUp(n);
        return n;
      },
      async removeNode(name) {
        const n = nodes.find((x) => x.name === name);
        if (!n) return;
        if (existsSync(n.dockerSocket)) {
          const ids = await run('docker', ['-H', `unix://${n.dockerSocket}`, 'ps', '-aq'], { timeoutMs: 10_000 }).catch(() => undefined);
          const list = ids?.stdout.split('\n').filter(Boolean) ?? [];
          if (list.length > 0) await run('docker', ['-H', `unix://${n.dockerSocket}`, 'rm', '-f', ...list], { timeoutMs: 20_000 }).catch(() => undefined);
        }
        const mine = [...(nodePids.get(name) ?? [])];
        const dp = dockerdPid.get(name);
        await killWithMountNamespaces(mine, dp ? [dp] : [], 10_000);
        for (const p of mine) pids.delete(p);
        nodePids.delete(name);
        sshdPid.delete(name);
        dockerdPid.delete(name);
        const stragglers: number[] = [];
        const r = await run('ip', ['netns', 'pids', n.netns]).catch(() => undefined);
        for (const l of r?.stdout.split('\n') ?? []) if (/^\d+$/.test(l.trim())) stragglers.push(Number(l));
        await killPids([...new Set(stragglers)], 3000);
        await run('ip', ['netns', 'del', n.netns]).catch(() => undefined);
        namespaces.splice(namespaces.indexOf(n.netns), 1);
        nodes.splice(nodes.indexOf(n), 1);
        specs.delete(name);
        nodeByNs.delete(n.netns);
        const line = known.findIndex((l) => l.startsWith(`${n.address} `));
        if (line >= 0) known.splice(line, 1);
        writeKnownHosts();
      },
      close,
    };

    await Promise.all(nodes.map((n) => bringUp(n)));
    return lab;
  } catch (e) {
    await close();
    throw e;
  }
}
