// The `webhook` provider runs the shared conformance suite (the alerts check) against a real HTTP
// receiver on loopback that records each body it is posted, the URL given as ${VAR} as in a fleet.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { provider as webhook } from '../../providers/webhook/index.js';
import { describeProviderConformance } from '../../src/providers/conformance.js';
import { makeCtx } from '../markets/helpers.js';

describeProviderConformance('webhook', async () => {
  const bodies: string[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      bodies.push(body);
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const provider = await webhook.create({ url: 'http://127.0.0.1:${HOOK_PORT}/services/conformance', attempts: 1 }, makeCtx({ name: 'hook', fleet: 'conf', env: { HOOK_PORT: String(port) } }));
  return {
    provider,
    fleet: 'conf',
    trainer: { command: ['true'], env: {} },
    alertsReceived: async () => [...bodies],
    teardown: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
});
