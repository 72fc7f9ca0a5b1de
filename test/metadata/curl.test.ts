// curlArgv / parseCurlOutput: the argv the SSH transport runs on a node and the parser of its
// output. Checked as pure functions, then with the real curl binary against the fakes, directly and
// through `sh -c` with every argument quoted, so quotes, `$()` and backticks stay data.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAwsImdsServer, type AwsImdsControl } from '../fakes/aws-imds.js';
import { startAzureEventsServer, type AzureEventsControl } from '../fakes/azure-events.js';
import { startGceMetadataServer, type GceMetadataControl } from '../fakes/gce-metadata.js';
import type { FakeHandle } from '../fakes/http-util.js';
import {
  AwsNoticeReader,
  AzureNoticeReader,
  CURL_SENTINEL,
  GcpNoticeReader,
  MetadataTransportError,
  curlArgv,
  parseCurlOutput,
  type MetadataRequest,
  type MetadataTransport,
} from '../../src/providers/kit/metadata/index.js';

// Only ever turned into argv here (never requested); real requests go to fakes on loopback or inside a node namespace.
const base: MetadataRequest = { method: 'GET', url: 'http://169.254.169.254/latest/meta-data/spot/instance-action', headers: {}, timeoutMs: 2000 }; // argv only, see above: inside-namespace use is the lab's

describe('curlArgv', () => {
  it('puts every value in its own argument, the URL after --url and the body in --data-raw', () => {
    const argv = curlArgv({ ...base, method: 'POST', headers: { Metadata: 'true', 'X-Evil': `'"; $(rm -rf /) \`id\`` }, body: '@/etc/passwd' });
    expect(argv[0]).toBe('curl');
    expect(argv.slice(-2)).toEqual(['--url', base.url]);
    expect(argv).toContain(`X-Evil: '"; $(rm -rf /) \`id\``);
    expect(argv[argv.indexOf('--data-raw') + 1]).toBe('@/etc/passwd');
    expect(argv).toContain('--noproxy');
    expect(argv[1]).toBe('-q');
    expect(argv[argv.indexOf('--max-time') + 1]).toBe('2');
  });

  it('refuses line breaks and NUL in headers, bad header names and non-http URLs', () => {
    expect(() => curlArgv({ ...base, headers: { A: 'x\r\nInjected: 1' } })).toThrow(MetadataTransportError);
    expect(() => curlArgv({ ...base, headers: { A: 'x\ny' } })).toThrow(/line break/);
    expect(() => curlArgv({ ...base, headers: { 'A B': 'x' } })).toThrow(/invalid header name/);
    expect(() => curlArgv({ ...base, url: 'file:///etc/passwd' })).toThrow(/http/);
    expect(() => curlArgv({ ...base, url: 'http://x/a b' })).toThrow();
    expect(() => curlArgv({ ...base, body: 'a\0b' })).toThrow(/NUL/);
  });
});

describe('parseCurlOutput', () => {
  it('reads status, lower-cased headers and the body; the last header block wins', () => {
    const out = `HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nETag: abc\r\nMetadata-Flavor: Google\r\n\r\nTRUE\n${CURL_SENTINEL}200\n`;
    expect(parseCurlOutput(out)).toEqual({ status: 200, headers: { etag: 'abc', 'metadata-flavor': 'Google' }, body: 'TRUE' });
  });

  it('keeps a body that itself contains the sentinel text and newlines', () => {
    const body = `line1\n${CURL_SENTINEL}999\nline3\n`;
    const out = `HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\n${body}\n${CURL_SENTINEL}404\n`;
    expect(parseCurlOutput(out)).toMatchObject({ status: 404, body });
  });

  it('throws a transport error when curl got no HTTP answer or printed nothing', () => {
    expect(() => parseCurlOutput(`\n${CURL_SENTINEL}000\n`, { url: 'http://x', code: 7, stderr: 'curl: (7) Failed to connect' })).toThrow(/could not reach http:\/\/x \(curl exit 7: curl: \(7\) Failed to connect\)/);
    const t = (() => {
      try {
        parseCurlOutput(`\n${CURL_SENTINEL}000\n`, { code: 28 });
      } catch (e) {
        return e as MetadataTransportError;
      }
      return undefined;
    })();
    expect(t?.timedOut).toBe(true);
    expect(() => parseCurlOutput('', { code: 127, stderr: 'sh: curl: not found' })).toThrow(/is curl installed/);
    expect(() => parseCurlOutput(`garbage\n${CURL_SENTINEL}200\n`)).toThrow(/no response headers/);
  });
});

const haveCurl = ['/usr/bin/curl', '/bin/curl', '/usr/local/bin/curl'].some((p) => existsSync(p));
const mustRun = process.env.SPOTFLEET_REAL_PEERS === '1';

function run(file: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { encoding: 'utf8', maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

/** POSIX single-quoting, as the SSH side quotes each argument for the remote shell. */
const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** A transport that runs curl locally: the SSH transport minus SSH. */
function curlTransport(viaShell: boolean): MetadataTransport {
  return {
    async request(req) {
      const argv = curlArgv(req);
      const r = viaShell ? await run('/bin/sh', ['-c', argv.map(q).join(' ')]) : await run(argv[0] as string, argv.slice(1));
      return parseCurlOutput(r.stdout, { url: req.url, code: r.code, stderr: r.stderr });
    },
  };
}

describe.skipIf(!haveCurl && !mustRun)('curl against the fakes', () => {
  let aws: FakeHandle<AwsImdsControl>;
  let gce: FakeHandle<GceMetadataControl>;
  let az: FakeHandle<AzureEventsControl>;
  beforeAll(async () => {
    if (!haveCurl) throw new Error('curl is not installed (SPOTFLEET_REAL_PEERS=1 requires it)');
    [aws, gce, az] = await Promise.all([startAwsImdsServer({}), startGceMetadataServer({}), startAzureEventsServer({ vmName: 'vm-a' })]);
  });
  afterAll(async () => {
    await Promise.all([aws?.close(), gce?.close(), az?.close()]);
  });

  it.each([false, true])('AWS reader through curl (via sh -c: %s): token, 404, notice', async (viaShell) => {
    const r = new AwsNoticeReader({ transport: curlTransport(viaShell), baseUrl: aws.url, provider: 'aws' });
    expect(await r.poll('i-a')).toEqual([]);
    aws.control.triggerSpotInterruption({ action: 'stop' });
    expect((await r.poll('i-a')).map((n) => n.action)).toEqual(['stop']);
    aws.control.clearSpotInterruption();
    aws.control.setFault({ status: 500, paths: ['/latest/meta-data/spot/'] });
    await expect(r.poll('i-a')).rejects.toThrow(/HTTP 500/);
    aws.control.setFault(null);
  });

  it('GCP reader through curl sees the ETag and Metadata-Flavor headers', async () => {
    const t = curlTransport(true);
    const res = await t.request({ method: 'GET', url: `${gce.url}/computeMetadata/v1/instance/preempted`, headers: { 'Metadata-Flavor': 'Google' }, timeoutMs: 3000 });
    expect(res).toMatchObject({ status: 200, body: 'FALSE' });
    expect(res.headers.etag).toMatch(/^[0-9a-f]{16}$/);
    gce.control.preempt();
    const r = new GcpNoticeReader({ transport: t, baseUrl: gce.url, provider: 'gcp' });
    expect((await r.poll('vm-a')).map((n) => n.kind)).toEqual(['preemption']);
  });

  it('Azure acknowledge through sh -c: an EventId full of shell syntax arrives as data', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sf-curl-'));
    const canary = join(dir, 'pwned');
    const evil = `x'"; touch ${canary}; $(touch ${canary}) \`touch ${canary}\`\n' && touch ${canary}`;
    const r = new AzureNoticeReader({ transport: curlTransport(true), baseUrl: az.url, provider: 'az', vmName: 'vm-a' });
    await r.acknowledge({ id: 'i', provider: 'az', node: 'n', source: 'azure', kind: 'preemption', deadline: '', receivedAt: '', detail: { eventId: evil } });
    expect(az.control.state().acks).toEqual([{ EventId: evil, known: false }]);
    expect(existsSync(canary)).toBe(false);
  });

  it('reports an unreachable service as a transport error with curl\'s reason', async () => {
    const t = curlTransport(false);
    await expect(t.request({ method: 'GET', url: 'http://127.0.0.1:1/x', headers: {}, timeoutMs: 2000 })).rejects.toThrow(/could not reach http:\/\/127\.0\.0\.1:1\/x \(curl exit 7/);
  });
});
