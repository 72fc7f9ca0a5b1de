// Host-key verification: known_hosts files (plain and hashed entries, [host]:port, @revoked) and
// pinned SHA256 fingerprints. An unknown key is refused unless the caller opted in, and then it is
// recorded (trust on first use); a key that CHANGED is always refused.
import { createHash, createHmac } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** `SHA256:base64` (no padding) of a raw public-key blob, as `ssh-keygen -lf` prints it. */
export function fingerprintSha256(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/** The key type written inside a public-key blob (`ssh-ed25519`, `ecdsa-sha2-nistp256`, ...). */
export function keyTypeOf(keyBlob: Buffer): string {
  if (keyBlob.length < 4) return 'unknown';
  const n = keyBlob.readUInt32BE(0);
  return keyBlob.subarray(4, 4 + n).toString('latin1');
}

/** The name known_hosts uses for host:port (`host` on 22, `[host]:port` otherwise). */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** One known_hosts line for a key blob. */
export function knownHostsLine(names: string[], keyBlob: Buffer): string {
  return `${names.join(',')} ${keyTypeOf(keyBlob)} ${keyBlob.toString('base64')}`;
}

interface Entry {
  marker: '' | '@revoked' | '@cert-authority';
  patterns: string[];
  blob: Buffer;
}

function parseKnownHosts(text: string): Entry[] {
  const out: Entry[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const f = line.split(/\s+/);
    let marker: Entry['marker'] = '';
    if (f[0] === '@revoked' || f[0] === '@cert-authority') marker = f.shift() as Entry['marker'];
    const [hosts, , b64] = f;
    if (!hosts || !b64) continue;
    out.push({ marker, patterns: hosts.split(','), blob: Buffer.from(b64, 'base64') });
  }
  return out;
}

function globMatch(pattern: string, name: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
  return re.test(name);
}

function patternMatches(pattern: string, name: string): boolean {
  if (pattern.startsWith('|1|')) {
    const [, , salt, hash] = pattern.split('|');
    if (!salt || !hash) return false;
    return createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash;
  }
  return globMatch(pattern, name);
}

function entryMatches(e: Entry, name: string): boolean {
  let hit = false;
  for (const p of e.patterns) {
    if (p.startsWith('!')) {
      if (patternMatches(p.slice(1), name)) return false;
    } else if (patternMatches(p, name)) hit = true;
  }
  return hit;
}

export type HostKeyVerdict =
  | { ok: true; how: 'known-hosts' | 'fingerprint' | 'recorded' }
  | { ok: false; reason: string };

export interface HostKeyPolicy {
  host: string;
  port: number;
  /** known_hosts file(s) to check (a missing file counts as empty). */
  knownHostsFiles?: string[];
  /** Pinned `SHA256:...` fingerprint(s); when set, only these keys are accepted. */
  fingerprints?: string[];
  /** Accept (and record, when a known_hosts file is given) a key for a host with no entry yet. */
  acceptUnknown?: boolean;
  /** Alias names the host is also known by (e.g. its node name). */
  aliases?: string[];
}

/**
 * Decides whether `keyBlob` is the right key for the host. Order: a pinned fingerprint decides
 * alone; else a @revoked match refuses; else a known_hosts match accepts; a host that has entries
 * but none with this key is a CHANGED key and refused; else unknown: refused unless acceptUnknown.
 */
export function verifyHostKey(policy: HostKeyPolicy, keyBlob: Buffer): HostKeyVerdict {
  const fp = fingerprintSha256(keyBlob);
  const where = knownHostsName(policy.host, policy.port);
  if (policy.fingerprints && policy.fingerprints.length > 0) {
    const want = policy.fingerprints.map((f) => (f.startsWith('SHA256:') ? f : `SHA256:${f}`).replace(/=+$/, ''));
    return want.includes(fp) ? { ok: true, how: 'fingerprint' } : { ok: false, reason: `host key ${fp} of ${where} does not match the pinned fingerprint ${want.join(' or ')}` };
  }
  const names = [where, ...(policy.aliases ?? [])];
  const entries = (policy.knownHostsFiles ?? []).flatMap((f) => (existsSync(f) ? parseKnownHosts(readFileSync(f, 'utf8')) : []));
  const forHost = entries.filter((e) => e.marker !== '@cert-authority' && names.some((n) => entryMatches(e, n)));
  if (forHost.some((e) => e.marker === '@revoked' && e.blob.equals(keyBlob))) return { ok: false, reason: `host key ${fp} of ${where} is marked @revoked` };
  const plain = forHost.filter((e) => e.marker === '');
  if (plain.some((e) => e.blob.equals(keyBlob))) return { ok: true, how: 'known-hosts' };
  if (plain.length > 0) return { ok: false, reason: `host key of ${where} CHANGED: got ${keyTypeOf(keyBlob)} ${fp}, which is not the key in ${(policy.knownHostsFiles ?? []).join(', ')}; refusing (a man-in-the-middle, or a reinstalled host: remove the old entry if you are sure)` };
  if (!policy.acceptUnknown) {
    return { ok: false, reason: `host key ${keyTypeOf(keyBlob)} ${fp} of ${where} is unknown${policy.knownHostsFiles?.length ? ` (not in ${policy.knownHostsFiles.join(', ')})` : ''}; add it to known_hosts, pin hostKeyFingerprint, or set acceptUnknownHostKey: true to trust it on first use` };
  }
  const file = policy.knownHostsFiles?.[0];
  if (file) {
    mkdirSync(dirname(file), { recursive: true });
    appendFileSync(file, `${knownHostsLine([where], keyBlob)}\n`, { mode: 0o600 });
  }
  return { ok: true, how: 'recorded' };
}
