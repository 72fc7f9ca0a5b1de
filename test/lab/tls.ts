// A self-signed TLS certificate for a fake on 127.0.0.1 (made with the openssl CLI), for fakes of
// services whose clients insist on HTTPS (Azure's SDK refuses bearer tokens over HTTP). A child
// process trusts it through NODE_EXTRA_CA_CERTS; this process through trustInProcess.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { join } from 'node:path';

export interface TestCert {
  key: string;
  cert: string;
  /** The certificate's file: NODE_EXTRA_CA_CERTS for a CLI that talks to the fake. */
  certFile: string;
  dir: string;
}

export function selfSignedCert(): TestCert {
  const dir = mkdtempSync(join(tmpdir(), 'sf-tls-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
  return { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert: readFileSync(join(dir, 'cert.pem'), 'utf8'), certFile: join(dir, 'cert.pem'), dir };
}

/**
 * Trusts `cert` in this process as well (NODE_EXTRA_CA_CERTS is read only at start), for tests that
 * run a provider in process against a TLS fake: every TLS context made from now on also trusts it.
 * Returns the undo.
 */
export function trustInProcess(cert: string): () => void {
  // The CommonJS exports object: node's TLS sockets (https, fetch) call createSecureContext on it.
  const tls = createRequire(import.meta.url)('node:tls') as { createSecureContext: (o?: object) => { context: { addCACert(c: string): void } } };
  const original = tls.createSecureContext;
  tls.createSecureContext = (o?: object) => {
    const ctx = original(o);
    ctx.context.addCACert(cert);
    return ctx;
  };
  return () => {
    tls.createSecureContext = original;
  };
}
