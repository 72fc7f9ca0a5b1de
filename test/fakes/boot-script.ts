// What a cloud fake's "guest" reads from the bootstrap script it was launched with (EC2 user-data,
// GCE startup-script, Azure customData), as a booting VM would apply it: the login user, the host
// key sshd must present, and the keys to add to that user's authorized_keys. The script is plain
// POSIX sh with quoted here-documents (`cat > FILE <<'MARKER'`); this reads those bodies back.

export interface BootScriptKeys {
  user: string;
  hostKey: { private: string; public: string };
  authorizedKeys: string[];
}

/** Every quoted here-document body in a shell script, by its marker. */
export function hereDocuments(script: string): Map<string, string> {
  const out = new Map<string, string>();
  const lines = script.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = /<<'([A-Z_][A-Z0-9_]*)'\s*$/.exec(lines[i] as string);
    if (!m) continue;
    const marker = m[1] as string;
    const end = lines.indexOf(marker, i + 1);
    if (end < 0) throw new Error(`here-document ${marker} is not closed`);
    out.set(marker, lines.slice(i + 1, end).join('\n'));
    i = end;
  }
  return out;
}

/**
 * Reads the keys spotfleet's bootstrap script installs.
 * @throws Error when the script does not carry a host key and authorized keys.
 */
export function parseBootScript(script: string): BootScriptKeys {
  if (!script.startsWith('#!')) throw new Error('the bootstrap is not a script (no #! line)');
  const docs = hereDocuments(script);
  const priv = docs.get('SPOTFLEET_HOST_KEY');
  const pub = docs.get('SPOTFLEET_HOST_KEY_PUB');
  const keys = docs.get('SPOTFLEET_AUTHORIZED_KEYS');
  if (priv === undefined || pub === undefined || keys === undefined) throw new Error('the bootstrap script carries no host key or no authorized keys');
  if (!priv.includes('-----BEGIN OPENSSH PRIVATE KEY-----')) throw new Error('the host key is not an OpenSSH private key');
  const user = /^user='([a-z_][a-z0-9_-]*)'$/m.exec(script)?.[1];
  if (user === undefined) throw new Error('the bootstrap script names no user');
  return { user, hostKey: { private: `${priv}\n`, public: pub.trim() }, authorizedKeys: keys.split('\n').map((k) => k.trim()).filter(Boolean) };
}
