import { createServer } from 'node:net';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { afterEach, describe, expect, it } from 'vitest';
import { UsageError } from '../../src/core/errors.js';
import { HealthTracker, parseListen, startTelemetryServer, type TelemetryServer } from '../../src/telemetry/http-server.js';
import { createWatchMetrics } from '../../src/telemetry/metrics.js';

const servers: TelemetryServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

async function start(opts: Partial<Parameters<typeof startTelemetryServer>[0]> = {}) {
  let now = Date.UTC(2026, 4, 1, 10, 0, 0);
  const clock = { advance: (ms: number) => (now += ms), now: () => now };
  const health = new HealthTracker({ intervalMs: 30_000, now: clock.now });
  const metrics = createWatchMetrics({ processMetrics: false, defaultLabels: { fleet: 'research' } });
  const srv = await startTelemetryServer({ listen: '127.0.0.1:0', metrics, health, ...opts });
  servers.push(srv);
  return { srv, health, metrics, clock };
}

describe('parseListen', () => {
  it('accepts host:port, [v6]:port, :port and a bare port', () => {
    expect(parseListen('0.0.0.0:9464')).toEqual({ host: '0.0.0.0', port: 9464 });
    expect(parseListen('localhost:0')).toEqual({ host: 'localhost', port: 0 });
    expect(parseListen('[::1]:8080')).toEqual({ host: '::1', port: 8080 });
    expect(parseListen(':9000')).toEqual({ host: '127.0.0.1', port: 9000 });
    expect(parseListen('9000')).toEqual({ host: '127.0.0.1', port: 9000 });
  });
  it('rejects anything else with a usage error', () => {
    for (const bad of ['', 'host', 'host:', 'host:99999', 'a:b:1', 'host:12x', '::1:80']) {
      expect(() => parseListen(bad), bad).toThrow(UsageError);
    }
  });
});

describe('startTelemetryServer', () => {
  it('listens on 127.0.0.1 with a random port when asked for port 0', async () => {
    const { srv } = await start();
    expect(srv.address.host).toBe('127.0.0.1');
    expect(srv.address.port).toBeGreaterThan(0);
    expect(srv.url).toBe(`http://127.0.0.1:${srv.address.port}`);
  });

  it('serves /metrics in Prometheus text format', async () => {
    const { srv, metrics } = await start();
    metrics.noticeReceived('gcp', 'preemption');
    metrics.setFleetCostPerHour({ spot: 1.25, 'on-demand': 3 });
    const res = await fetch(`${srv.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const fams = parsePrometheusTextFormat(await res.text());
    const notices = fams.find((f) => f.name === 'spotfleet_notices_received_total');
    expect(notices?.metrics.filter((x) => x.value !== '0')).toEqual([{ labels: { cloud: 'gcp', kind: 'preemption', fleet: 'research' }, value: '1' }]);
    const cost = fams.find((f) => f.name === 'spotfleet_fleet_cost_usd_per_hour');
    expect(cost?.metrics.map((s) => [s.labels?.['capacity'], s.value]).sort()).toEqual([
      ['on-demand', '3'],
      ['spot', '1.25'],
    ]);
  });

  it('/healthz: starting, ok, still ok on a failure, 503 after 3 intervals without success', async () => {
    const { srv, health, clock } = await start();
    const get = async () => {
      const r = await fetch(`${srv.url}/healthz`);
      return { code: r.status, body: (await r.json()) as Record<string, unknown> };
    };
    let h = await get();
    expect(h.code).toBe(200);
    expect(h.body).toMatchObject({ status: 'starting', lastReconcileAt: null, lastError: null });

    health.reconcileSucceeded();
    h = await get();
    expect(h.body).toMatchObject({ status: 'ok', lastReconcileAt: '2026-05-01T10:00:00.000Z', consecutiveErrors: 0 });

    clock.advance(30_000);
    health.reconcileFailed(new Error('provider "market": GET https://u:hunter2@api/x?token=t0k failed'));
    h = await get();
    expect(h.code).toBe(200);
    expect(h.body['status']).toBe('ok');
    expect(h.body['lastReconcileAt']).toBe('2026-05-01T10:00:30.000Z');
    expect(h.body['lastSuccessAt']).toBe('2026-05-01T10:00:00.000Z');
    expect(String(h.body['lastError'])).toContain('provider "market"');
    expect(JSON.stringify(h.body)).not.toMatch(/hunter2|t0k/);

    clock.advance(60_001);
    h = await get();
    expect(h.code).toBe(503);
    expect(h.body['status']).toBe('unhealthy');
    expect(String(h.body['reason'])).toContain('no successful reconcile');

    health.reconcileSucceeded();
    expect((await get()).code).toBe(200);

    health.setStopping();
    h = await get();
    expect(h.code).toBe(503);
    expect(h.body['status']).toBe('stopping');
  });

  it('/healthz is 503 when the controller never succeeded within 3 intervals of starting', async () => {
    const { srv, clock } = await start();
    clock.advance(90_001);
    expect((await fetch(`${srv.url}/healthz`)).status).toBe(503);
  });

  it('/status returns the live view from the provider function, redacted', async () => {
    let n = 0;
    const { srv } = await start({
      status: async () => ({ fleet: 'research', reconciles: ++n, workloads: [{ address: 'workload.a', node: 'n1' }], apiToken: 'x' }),
    });
    const r1 = await fetch(`${srv.url}/status`);
    expect(r1.status).toBe(200);
    expect(await r1.json()).toEqual({
      fleet: 'research',
      reconciles: 1,
      workloads: [{ address: 'workload.a', node: 'n1' }],
      apiToken: '[REDACTED]',
    });
    expect(((await (await fetch(`${srv.url}/status`)).json()) as { reconciles: number }).reconciles).toBe(2);
  });

  it('/status is 404 without a provider, 500 when it throws; unknown paths 404; POST 405', async () => {
    const { srv } = await start();
    expect((await fetch(`${srv.url}/status`)).status).toBe(404);
    expect((await fetch(`${srv.url}/nope`)).status).toBe(404);
    expect((await fetch(`${srv.url}/metrics`, { method: 'POST' })).status).toBe(405);
    const { srv: s2 } = await start({
      status: () => {
        throw new Error('view broken');
      },
    });
    const r = await fetch(`${s2.url}/status`);
    expect(r.status).toBe(500);
    expect(await r.json()).toEqual({ error: 'view broken' });
  });

  it('fails to start when the port is taken', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    try {
      await expect(start({ listen: `127.0.0.1:${port}` })).rejects.toThrow(/EADDRINUSE/);
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  });

  it('close() stops listening', async () => {
    const { srv } = await start();
    await srv.close();
    servers.pop();
    await expect(fetch(`${srv.url}/healthz`)).rejects.toThrow();
  });
});
