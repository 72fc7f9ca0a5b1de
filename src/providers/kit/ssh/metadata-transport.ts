// A MetadataTransport (src/providers/kit/metadata) that runs curl ON THE NODE over the pooled SSH
// connection, as the procedures do by hand: the metadata service answers on the node's own
// 169.254.169.254, which the controller must never contact itself. The argv comes from the
// metadata kit's curlArgv and is quoted element by element by the pool.
import { curlArgv, parseCurlOutput, MetadataTransportError, type MetadataTransport } from '../metadata/index.js';
import type { SshPool } from './pool.js';

/** Transport for one node: every request is one `curl` exec on that node. */
export function createSshCurlTransport(pool: SshPool, node: string): MetadataTransport {
  return {
    async request(req) {
      if (req.signal?.aborted) throw new MetadataTransportError(req.url, `request to ${req.url} aborted`, { aborted: true });
      const argv = curlArgv(req);
      // curl's own --max-time ends the exchange; the exec limit only guards a hung session.
      const r = await pool.exec(node, argv, { timeoutMs: req.timeoutMs + 5000 });
      return parseCurlOutput(r.stdout, { url: req.url, code: r.code, stderr: r.stderr });
    },
  };
}
