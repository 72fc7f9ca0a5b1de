// Unit tests of the SSH toolkit's pure parts: shell quoting (checked against real shells),
// nvidia-smi parsing, host-key decisions, labels and safe names.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { quoteArg, quoteArgv, parseNvidiaSmi, gpuModelOf, verifyHostKey, fingerprintSha256, knownHostsLine, safeName, checkpointDir, containerName, containerLabels, containerEnv } from '../../src/providers/kit/ssh/index.js';

const SHELLS = ['/bin/sh', '/bin/bash', '/bin/dash'].filter((s) => existsSync(s));

/** What a real shell makes of the quoted command line: the argv it would run, NUL-separated. */
function roundTrip(shell: string, argv: string[]): string[] {
  const out = execFileSync(shell, ['-c', `printf '%s\\0' ${quoteArgv(argv)}`], { cwd: tmpdir() }).toString();
  return out.split('\0').slice(0, -1);
}

describe('quoteArg / quoteArgv', () => {
  const nasty = ['; touch /tmp/x', '$(touch /tmp/x)', '`touch /tmp/x`', "it's", '"double"', 'a\nb', '\n', '*', '~', '$HOME', '${IFS}', '-n', '', ' ', "'", "''", '\\', '!', '#comment', '|', '&&', '>', '<(x)', 'a b\tc', 'é ü 中'];

  it('leaves plain words alone and single-quotes the rest', () => {
    expect(quoteArg('docker')).toBe('docker');
    expect(quoteArg('/srv/spotfleet/x.y-z_1:2,3=4@5%6+7')).toBe('/srv/spotfleet/x.y-z_1:2,3=4@5%6+7');
    expect(quoteArg('')).toBe("''");
    expect(quoteArg("it's")).toBe(`'it'\\''s'`);
    expect(quoteArg('$(x)')).toBe("'$(x)'");
    expect(() => quoteArg('a\0b')).toThrow(/NUL/);
    expect(() => quoteArgv([])).toThrow();
  });

  for (const shell of SHELLS) {
    it(`round-trips metacharacters through ${shell} without executing anything`, () => {
      const dir = mkdtempSync(join(tmpdir(), 'sfq-'));
      const canary = join(dir, 'canary');
      const argv = [...nasty, `; touch ${canary}`, `$(touch ${canary})`, `\`touch ${canary}\``, `'; touch ${canary}; '`, `"; touch ${canary}; "`, `\ntouch ${canary}\n`];
      expect(roundTrip(shell, argv)).toEqual(argv);
      expect(existsSync(canary)).toBe(false);
    });

    it(`round-trips any string through ${shell} (property)`, () => {
      fc.assert(
        fc.property(fc.array(fc.string({ unit: 'binary' }).map((s) => s.replace(/\0/g, '')), { minLength: 1, maxLength: 5 }), (argv) => {
          expect(roundTrip(shell, argv)).toEqual(argv);
        }),
        { numRuns: 60 },
      );
    });
  }
});

describe('parseNvidiaSmi', () => {
  it('reads the documented sample', () => {
    const gpus = parseNvidiaSmi('0, NVIDIA H100 80GB HBM3, 0, 81559, 81004\n1, NVIDIA H100 80GB HBM3, 97, 81559, 2311\n');
    expect(gpus).toEqual([
      { index: 0, name: 'NVIDIA H100 80GB HBM3', utilizationPct: 0, memoryTotalMiB: 81559, memoryFreeMiB: 81004 },
      { index: 1, name: 'NVIDIA H100 80GB HBM3', utilizationPct: 97, memoryTotalMiB: 81559, memoryFreeMiB: 2311 },
    ]);
    expect(gpuModelOf(gpus)).toBe('H100 80GB HBM3');
  });

  it('tolerates [N/A], [Not Supported], trailing spaces, CRLF, blank lines, units and commas in names', () => {
    const gpus = parseNvidiaSmi('\r\n1, NVIDIA A100-SXM4-80GB MIG 3g.40gb, [N/A], 81920 MiB, [Not Supported]   \r\n0, Tesla V100-SXM2-16GB, 5 %, 16160, 15000  \n\n2, Weird, Name, Inc GPU, 1, 2, 3\n');
    expect(gpus.map((g) => g.index)).toEqual([0, 1, 2]);
    expect(gpus[1]).toEqual({ index: 1, name: 'NVIDIA A100-SXM4-80GB MIG 3g.40gb', memoryTotalMiB: 81920 });
    expect(gpus[0]).toMatchObject({ name: 'Tesla V100-SXM2-16GB', utilizationPct: 5 });
    expect(gpus[2]).toMatchObject({ name: 'Weird, Name, Inc GPU', utilizationPct: 1, memoryTotalMiB: 2, memoryFreeMiB: 3 });
    expect(parseNvidiaSmi('')).toEqual([]);
    expect(gpuModelOf([])).toBeUndefined();
  });

  it('names the line it cannot read', () => {
    expect(() => parseNvidiaSmi('0, A, 1, 2, 3\nNo devices were found\n')).toThrow(/line 2/);
    expect(() => parseNvidiaSmi('x, A, 1, 2, 3')).toThrow(/expected a GPU index/);
  });
});

describe('verifyHostKey', () => {
  const blob = (): Buffer => {
    const { publicKey } = generateKeyPairSync('ed25519');
    const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
    const t = Buffer.from('ssh-ed25519');
    const b = Buffer.alloc(4 + t.length + 4 + raw.length);
    b.writeUInt32BE(t.length, 0);
    t.copy(b, 4);
    b.writeUInt32BE(raw.length, 4 + t.length);
    raw.copy(b, 8 + t.length);
    return b;
  };
  const k1 = blob();
  const k2 = blob();
  const dir = mkdtempSync(join(tmpdir(), 'sfkh-'));

  it('refuses an unknown key by default and says how to fix it', () => {
    const v = verifyHostKey({ host: '10.0.0.5', port: 22, knownHostsFiles: [join(dir, 'none')] }, k1);
    expect(v).toMatchObject({ ok: false });
    expect(!v.ok && v.reason).toMatch(/unknown.*acceptUnknownHostKey/);
  });

  it('accepts a known key, also hashed and on a non-standard port; refuses a changed or revoked key', () => {
    const f = join(dir, 'kh');
    const salt = randomBytes(20);
    const hashed = `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update('[10.0.0.6]:2222').digest('base64')}`;
    writeFileSync(f, `# comment\n${knownHostsLine(['10.0.0.5', 'gpu-a'], k1)}\n${hashed} ${knownHostsLine(['x'], k2).split(' ').slice(1).join(' ')}\n@revoked * ${knownHostsLine(['x'], k2).split(' ').slice(1).join(' ')}\n`);
    expect(verifyHostKey({ host: '10.0.0.5', port: 22, knownHostsFiles: [f] }, k1)).toEqual({ ok: true, how: 'known-hosts' });
    expect(verifyHostKey({ host: '10.0.0.5', port: 22, knownHostsFiles: [f] }, k2)).toMatchObject({ ok: false });
    const changed = verifyHostKey({ host: '10.0.0.5', port: 22, knownHostsFiles: [f], acceptUnknown: true }, k2);
    expect(!changed.ok && changed.reason).toMatch(/revoked|CHANGED/);
    const rev = verifyHostKey({ host: '10.0.0.6', port: 2222, knownHostsFiles: [f] }, k2);
    expect(!rev.ok && rev.reason).toMatch(/revoked/);
  });

  it('pins fingerprints, and records a key on first use only when opted in', () => {
    expect(verifyHostKey({ host: 'h', port: 22, fingerprints: [fingerprintSha256(k1)] }, k1)).toEqual({ ok: true, how: 'fingerprint' });
    expect(verifyHostKey({ host: 'h', port: 22, fingerprints: [fingerprintSha256(k1).slice(7)] }, k1)).toEqual({ ok: true, how: 'fingerprint' });
    expect(verifyHostKey({ host: 'h', port: 22, fingerprints: [fingerprintSha256(k2)] }, k1)).toMatchObject({ ok: false });
    const f = join(dir, 'tofu');
    expect(verifyHostKey({ host: 'h', port: 2200, knownHostsFiles: [f], acceptUnknown: true }, k1)).toEqual({ ok: true, how: 'recorded' });
    expect(readFileSync(f, 'utf8')).toBe(`${knownHostsLine(['[h]:2200'], k1)}\n`);
    expect(verifyHostKey({ host: 'h', port: 2200, knownHostsFiles: [f] }, k1)).toEqual({ ok: true, how: 'known-hosts' });
  });
});

describe('container labels and names', () => {
  const req = { fleet: 'f', workload: 'w', node: 'a', env: { A: '1' }, gpus: 2, labels: { team: 'nlp', 'spotfleet.fleet': 'spoof', 'spotfleet.migrated-from': 'b' }, specHash: 'h', idempotencyKey: 'k' };

  it('writes spotfleet labels over the request labels and keeps migrated-from', () => {
    expect(containerLabels(req, 'a')).toEqual({ team: 'nlp', 'spotfleet.fleet': 'f', 'spotfleet.workload': 'w', 'spotfleet.spec-hash': 'h', 'spotfleet.idempotency-key': 'k', 'spotfleet.gpus': '2', 'spotfleet.node': 'a', 'spotfleet.migrated-from': 'b' });
    expect(containerEnv({ ...req, resumeFrom: { env: 'RESUME_FROM_CHECKPOINT', path: '/checkpoints' } })).toEqual({ A: '1', RESUME_FROM_CHECKPOINT: '/checkpoints' });
    expect(() => containerEnv({ ...req, env: { 'A=B': 'x' } })).toThrow(/must be non-empty/);
    expect(() => containerLabels({ ...req, labels: { 'a\nb': 'x' } }, 'a')).toThrow();
  });

  it('makes file-system-safe, distinct names for any workload name', () => {
    expect(safeName('train-a')).toBe('train-a');
    for (const bad of ['../../etc', 'a/b', 'x; rm -rf /', "it's", '', '.hidden', 'a\nb']) {
      const s = safeName(bad);
      expect(s).toMatch(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/);
      expect(s).not.toContain('..');
    }
    expect(safeName('a/b')).not.toBe(safeName('a;b'));
    expect(checkpointDir('/srv/spotfleet/checkpoints/', '../x')).toMatch(/^\/srv\/spotfleet\/checkpoints\/[^/]+$/);
    expect(containerName('f', 'w; x', 'k')).toMatch(/^sf-f-[A-Za-z0-9_.-]+$/);
  });
});
