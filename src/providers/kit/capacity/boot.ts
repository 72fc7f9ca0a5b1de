// What a bought VM is given at launch so spotfleet can reach it without trusting on first use: an
// ed25519 host key spotfleet generates for that VM, and the public keys spotfleet logs in with, in a
// POSIX shell script that EC2 runs as user-data, GCE as its startup-script and Azure (cloud-init) as
// customData. The host key's private half exists only in that script (and, until the VM is ready,
// in a 0600 file so a retried launch sends the same script); its public half is recorded on the
// instance (a tag, metadata item) and pinned when spotfleet connects.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import ssh2 from 'ssh2';
import { fingerprintSha256 } from '../ssh/host-keys.js';

export interface KeyPair {
  /** OpenSSH private key (`-----BEGIN OPENSSH PRIVATE KEY-----`). */
  private: string;
  /** `ssh-ed25519 AAAA… comment`. */
  public: string;
}

/** A fresh ed25519 key pair in OpenSSH formats. */
export function generateEd25519(comment: string): KeyPair {
  const k = ssh2.utils.generateKeyPairSync('ed25519', { comment });
  return { private: k.private, public: k.public.trim() };
}

/** `ssh-ed25519 AAAA…` without the comment: what host-key tags and authorized_keys compare. */
export function publicKeyBody(line: string): string {
  return line.trim().split(/\s+/).slice(0, 2).join(' ');
}

/** The SHA256 fingerprint of a public key line (`ssh-ed25519 AAAA…`). */
export function fingerprintOfPublicKey(line: string): string {
  const b64 = line.trim().split(/\s+/)[1] ?? '';
  return fingerprintSha256(Buffer.from(b64, 'base64'));
}

/** Resolves a key path the way the spec means it: `~/…` from home, relative from the spec folder. */
export function resolveKeyPath(p: string, specDir: string): string {
  if (p === '~' || p.startsWith('~/')) return join(homedir(), p.slice(2));
  return isAbsolute(p) ? p : resolve(specDir, p);
}

/**
 * The public key (`ssh-ed25519 AAAA… spotfleet`) of the private key spotfleet logs in with: derived
 * from the key itself, or read from `<file>.pub` when the key is encrypted.
 * @throws Error with a message naming the file when neither works.
 */
export function publicKeyOfIdentity(path: string): string {
  let text: Buffer;
  try {
    text = readFileSync(path);
  } catch (e) {
    throw new Error(`cannot read the identity file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const parsed = ssh2.utils.parseKey(text);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (key && !(key instanceof Error) && key.isPrivateKey()) return `${key.type} ${key.getPublicSSH().toString('base64')} spotfleet`;
  if (existsSync(`${path}.pub`)) {
    const pub = readFileSync(`${path}.pub`, 'utf8').trim();
    if (/^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp\d+) [A-Za-z0-9+/=]+/.test(pub)) return pub;
  }
  const why = key instanceof Error ? key.message : 'not a private key';
  throw new Error(`${path} is not a usable private key (${why}); give an unencrypted OpenSSH key, or put its public key next to it as ${path}.pub`);
}

/** Markers of the script's sections; the in-repo cloud fakes read the keys back from them. */
export const BOOT_MARKERS = { hostKey: 'SPOTFLEET_HOST_KEY', hostKeyPublic: 'SPOTFLEET_HOST_KEY_PUB', authorizedKeys: 'SPOTFLEET_AUTHORIZED_KEYS' } as const;

export interface BootScriptOptions {
  fleet: string;
  pool: string;
  /** Login user; must exist on the image. */
  user: string;
  hostKey: KeyPair;
  /** Lines for the user's authorized_keys (spotfleet's login key, the fleet's transfer key). */
  authorizedKeys: string[];
}

const SAFE_USER = /^[a-z_][a-z0-9_-]{0,31}$/;
const SAFE_WORD = /^[A-Za-z0-9_.:@-]{1,80}$/;

/**
 * The bootstrap script. Idempotent (GCE runs a startup-script at every boot): it rewrites the host
 * key, adds each authorized key once, and restarts sshd so it presents the new key.
 */
export function bootScript(o: BootScriptOptions): string {
  if (!SAFE_USER.test(o.user)) throw new Error(`node user ${JSON.stringify(o.user)} must match ${SAFE_USER.source}`);
  const label = (s: string): string => (SAFE_WORD.test(s) ? s : createHash('sha256').update(s).digest('hex').slice(0, 12));
  for (const k of [o.hostKey.private, o.hostKey.public, ...o.authorizedKeys]) {
    if (Object.values(BOOT_MARKERS).some((m) => k.split('\n').includes(m)) || k.includes("'")) throw new Error('a key contains a line the bootstrap script cannot carry');
  }
  const keys = o.authorizedKeys.map((k) => k.trim()).filter(Boolean);
  return [
    '#!/bin/sh',
    `# spotfleet node bootstrap (fleet ${label(o.fleet)}, pool ${label(o.pool)}).`,
    '# Installs the SSH host key spotfleet generated for this VM, so spotfleet verifies the host',
    '# without trusting on first use, and the public keys it logs in with; then restarts sshd.',
    '# Safe to run again at every boot.',
    'set -eu',
    'umask 077',
    `user='${o.user}'`,
    'mkdir -p /etc/ssh',
    `cat > /etc/ssh/ssh_host_ed25519_key <<'${BOOT_MARKERS.hostKey}'`,
    o.hostKey.private.trim(),
    BOOT_MARKERS.hostKey,
    `cat > /etc/ssh/ssh_host_ed25519_key.pub <<'${BOOT_MARKERS.hostKeyPublic}'`,
    o.hostKey.public.trim(),
    BOOT_MARKERS.hostKeyPublic,
    'chmod 0600 /etc/ssh/ssh_host_ed25519_key',
    'chmod 0644 /etc/ssh/ssh_host_ed25519_key.pub',
    'home=$(getent passwd "$user" | cut -d: -f6)',
    '[ -n "$home" ] || { echo "spotfleet: user $user does not exist on this image" >&2; exit 1; }',
    'mkdir -p "$home/.ssh"',
    'touch "$home/.ssh/authorized_keys"',
    'while IFS= read -r key; do',
    '  [ -z "$key" ] || grep -qxF "$key" "$home/.ssh/authorized_keys" || printf \'%s\\n\' "$key" >> "$home/.ssh/authorized_keys"',
    `done <<'${BOOT_MARKERS.authorizedKeys}'`,
    ...keys,
    BOOT_MARKERS.authorizedKeys,
    'chown -R "$user" "$home/.ssh"',
    'chmod 0700 "$home/.ssh"',
    'chmod 0600 "$home/.ssh/authorized_keys"',
    'if getent group docker >/dev/null 2>&1; then usermod -aG docker "$user" 2>/dev/null || true; fi',
    'systemctl restart ssh 2>/dev/null || systemctl restart sshd 2>/dev/null || service ssh restart 2>/dev/null || service sshd restart 2>/dev/null || true',
    '',
  ].join('\n');
}

/** What one launch of one idempotency key carries: its host key, and a nonce for the cloud's token. */
export interface LaunchMaterial {
  hostKey: KeyPair;
  /**
   * Random per launch: the cloud's idempotency token (EC2 ClientToken, GCE requestId, the Azure VM
   * name) is made from the key AND this, so a retried launch is the same launch, while the same key
   * buying again later (after a destroy, or an eviction) is a new one: EC2 would otherwise answer
   * with the old, terminated instance, or refuse the token as reused with other parameters.
   */
  nonce: string;
}

/**
 * Launch material per idempotency key, kept (0600) until the VM is ready, so a retried launch sends
 * the very same script and token (EC2 refuses a ClientToken reused with different parameters).
 */
export class BootStore {
  constructor(private readonly dir: string) {}

  /** Files are named by the key's digest (what the machine records), so either finds them. */
  private file(digest: string): string {
    return join(this.dir, `${digest.replace(/[^A-Za-z0-9_-]/g, '_')}.json`);
  }

  /** The material for a key (by its digest): what an earlier try made, or new (written before it is used). */
  materialFor(digest: string, comment: string): LaunchMaterial {
    const f = this.file(digest);
    if (existsSync(f)) {
      try {
        const m = JSON.parse(readFileSync(f, 'utf8')) as LaunchMaterial;
        if (typeof m.hostKey?.private === 'string' && typeof m.hostKey.public === 'string' && typeof m.nonce === 'string') return m;
      } catch {
        // A torn file: make new material (nothing was launched with it, or the launch is found by tag).
      }
    }
    const m: LaunchMaterial = { hostKey: generateEd25519(comment), nonce: randomBytes(12).toString('hex') };
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    writeFileSync(f, JSON.stringify(m), { mode: 0o600 });
    return m;
  }

  /** Forgets the material once the VM is ready or gone (by the key's digest). */
  forget(digest: string): void {
    rmSync(this.file(digest), { force: true });
  }
}
