// Helpers the provider tests share on top of the lab: a provider context, host entries for the
// ssh provider, waiting for a log line, and the processes of a node (to cut things off by PID).
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import type { ProviderContext, ProviderLogger } from '../../src/providers/sdk.js';
import { safeName } from '../../src/providers/kit/ssh/index.js';
import type { SshHostEntry } from '../../providers/ssh/index.js';
import { LAB_ASSETS, type Lab } from './lab.js';

export const quietLog: ProviderLogger = { debug() {}, info() {}, warn() {}, error() {} };

export function labContext(lab: Lab, name: string, fleet: string): ProviderContext {
  const dataDir = join(lab.dir, 'ctx', name);
  mkdirSync(dataDir, { recursive: true });
  return { name, fleet, specDir: lab.dir, dataDir, log: quietLog, now: Date.now, env: process.env };
}

/** ssh provider host entries for every lab node. */
export function labHosts(lab: Lab, extra: Partial<SshHostEntry> = {}): SshHostEntry[] {
  return lab.nodes.map((n) => {
    const h: SshHostEntry = { name: n.name, host: n.address, port: n.port, user: 'root', identityFile: lab.clientKeyPath, knownHostsFile: lab.knownHostsPath, capacity: n.cloud ? 'spot' : 'on-demand', zone: `lab-${n.name}`, pricePerHour: 1.5, ...extra };
    if (n.cloud) h.cloud = n.cloud;
    return h;
  });
}

/** Transfer settings that work in the lab (the client key is readable from every node). */
export function labTransfer(lab: Lab): { identityFile: string; knownHostsFile: string } {
  return { identityFile: lab.clientKeyPath, knownHostsFile: '/srv/spotfleet/.spotfleet/known_hosts' };
}

/** Writes a small checkpoint for a workload straight into a node's private folder. */
export function writeLabCheckpoint(lab: Lab, node: string, workload: string, content = 'step=42\n'): string {
  const dir = join(lab.node(node).srvDir, 'checkpoints', safeName(workload));
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'step'), content);
  return dir;
}

/**
 * Polls fn until it gives a value. On timeout the error says what the last try threw, and what
 * `seen` says (the state the test was watching), so a failure on a loaded CI box can be read.
 */
export async function waitUntil<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 20_000, seen?: () => string): Promise<T> {
  const until = Date.now() + timeoutMs;
  let threw: string | undefined;
  for (;;) {
    const v = await fn().then(
      (x) => {
        threw = undefined;
        return x;
      },
      (e: unknown) => {
        threw = e instanceof Error ? e.message : String(e);
        return undefined;
      },
    );
    if (v !== undefined && v !== false) return v;
    if (Date.now() > until) {
      const also = [threw !== undefined ? `the last try threw: ${threw}` : '', seen ? `last seen: ${seen()}` : ''].filter(Boolean).join('; ');
      throw new Error(`timed out waiting for ${what} after ${Math.round(timeoutMs / 1000)}s${also ? ` (${also})` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 150));
  }
}

/** PIDs of processes named `comm` inside the node's network namespace. */
export function nodePids(lab: Lab, node: string, comm: string): number[] {
  const out = execFileSync('ip', ['netns', 'pids', lab.node(node).netns]).toString();
  return out.split('\n').filter((l) => /^\d+$/.test(l.trim())).map(Number).filter((p) => {
    try {
      return execFileSync('cat', [`/proc/${p}/comm`]).toString().trim() === comm;
    } catch {
      return false;
    }
  });
}

/** The shell metacharacters every security test throws at the node. */
export function evil(canary: string): string {
  return `x; touch ${canary}-1 $(touch ${canary}-2) \`touch ${canary}-3\` ' " \n touch ${canary}-4 && echo pwned`;
}

/** The repository root (also when this file runs from dist/). */
export function repoRoot(): string {
  return join(LAB_ASSETS, '..', '..');
}

/** The built entry of the in-repo metadata fakes, when `npm run build` has run. */
export function metadataFakeEntry(): string | undefined {
  const p = join(repoRoot(), 'dist', 'test', 'fakes', 'metadata-main.js');
  return existsSync(p) ? p : undefined;
}

export interface CloudFake {
  stop(): Promise<void>;
  /** Calls a method of the fake's control API (POST /control/<method> on its unix socket). */
  control<T = unknown>(method: string, ...args: unknown[]): Promise<T>;
}

/**
 * Starts the in-repo metadata fake for `cloud` inside the node's namespace on 169.254.169.254:80,
 * with its control API on a unix socket in the lab folder (reachable from the controller).
 */
export async function startCloudFake(lab: Lab, node: string, cloud: 'aws' | 'gcp' | 'azure', extra: string[] = []): Promise<CloudFake> {
  const entry = metadataFakeEntry();
  if (!entry) throw new Error('metadata fakes are not built (run `npm run build`)');
  const sock = join(lab.dir, `md-${node}-${cloud}.sock`);
  // startMetadata runs it inside the node's own network namespace, where the lab bound the address.
  const bindInsideNodeNetns = '169.254.169.254'; // never reached from the root namespace
  const h = await lab.startMetadata(node, [process.execPath, entry, '--cloud', cloud, '--host', bindInsideNodeNetns, '--port', '80', '--control-socket', sock, ...extra]);
  return {
    stop: () => h.stop(),
    control: <T>(method: string, ...args: unknown[]) =>
      new Promise<T>((resolve, reject) => {
        const body = JSON.stringify(args);
        const req = httpRequest({ socketPath: sock, method: 'POST', path: `/control/${method}`, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString();
            if ((res.statusCode ?? 500) >= 300) reject(new Error(`control ${method}: HTTP ${res.statusCode}: ${text}`));
            else resolve((text ? JSON.parse(text) : undefined) as T);
          });
        });
        req.on('error', reject);
        req.end(body);
      }),
  };
}
