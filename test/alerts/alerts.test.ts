// Alert rules (pure transitions) and their delivery to real peers: a node:http receiver on
// 127.0.0.1 and a real child process.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileAlertRules, evaluateAlerts, type AlertFacts, type AlertState } from '../../src/policy/alerts.js';
import { createAlertSinks, deliverAlert } from '../../src/telemetry/alert-sinks.js';
import { provider as webhookProvider } from '../../providers/webhook/index.js';
import type { AlertRuleSpec, AlertSinkSpec } from '../../src/spec/types.js';
import type { AlertMessage } from '../../src/providers/sdk.js';
import { silentLogger } from '../../src/providers/registry.js';

const pos = { file: 'fleet.yaml', line: 30, col: 5 };
const T0 = Date.parse('2026-06-01T12:00:00Z');
const rule = (name: string, when: string): AlertRuleSpec => ({ name, when, severity: 'warning', notify: ['ops'], pos });

function facts(over: Partial<AlertFacts> = {}): AlertFacts {
  return {
    fleet: 'research',
    now: T0,
    notices: [],
    events: [],
    workloads: [{ name: 'train-a', lastCheckpointAt: T0 - 5 * 60_000, checkpointMaxAgeMs: 15 * 60_000, capacity: 'spot', costPerHour: 3.6 }],
    markets: [{ pool: 'spot-a100', zone: 'us-east-1a', gpuModel: 'A100', spotPrice: 0.9, onDemandPrice: 3.0 }],
    fleetCostPerHour: 3.6,
    budgetPerHour: 10,
    spotPriceAlertRatio: 0.8,
    ...over,
  };
}

describe('alert rules', () => {
  it('CEL condition from DESIGN.md: fires once, dedupes while firing, resolves', () => {
    const { rules, problems } = compileAlertRules([rule('spot-price-spike', 'spotPrice > 0.8 * onDemandPrice')]);
    expect(problems).toEqual([]);
    let state: AlertState = { firing: {} };
    let r = evaluateAlerts(rules, facts(), state);
    expect(r.messages).toEqual([]);
    const spike = facts({ markets: [{ pool: 'spot-a100', zone: 'us-east-1a', gpuModel: 'A100', spotPrice: 2.7, onDemandPrice: 3.0 }] });
    r = evaluateAlerts(rules, spike, r.state);
    expect(r.messages.map((m) => `${m.status} ${m.rule} ${m.address}`)).toEqual(['firing spot-price-spike pool.spot-a100.us-east-1a']);
    state = r.state;
    r = evaluateAlerts(rules, { ...spike, now: T0 + 60_000 }, state);
    expect(r.messages).toEqual([]); // deduplicated
    r = evaluateAlerts(rules, facts({ now: T0 + 120_000 }), r.state);
    expect(r.messages.map((m) => m.status)).toEqual(['resolved']);
    expect(r.messages[0]?.fields).toEqual({ firingSince: '2026-06-01T12:00:00.000Z' });
    expect(r.state).toEqual({ firing: {} });
  });

  it('built-ins: checkpoint-stale, budget-exceeded, spot-price-high, preemption-notice, one-shot events', () => {
    const { rules } = compileAlertRules(['checkpoint-stale', 'budget-exceeded', 'spot-price-high', 'preemption-notice', 'migration-failed', 'work-lost', 'deadline-at-risk'].map((w) => rule(w, w)));
    const f = facts({
      now: T0 + 20 * 60_000, // checkpoint now 25 min old > 15 min
      fleetCostPerHour: 12,
      markets: [{ pool: 'spot-a100', gpuModel: 'A100', spotPrice: 2.5, onDemandPrice: 3.0 }], // 2.5 > 0.8 × 3.0 = 2.4
      notices: [{ node: 'i-1', provider: 'aws', kind: 'preemption', deadline: '2026-06-01T12:22:00Z', workloads: ['train-a'] }],
      events: [{ kind: 'migration-failed', id: 'm1', address: 'workload.train-a', message: 'no checkpoint before the deadline' }],
    });
    const r = evaluateAlerts(rules, f, { firing: {} });
    expect(r.messages.map((m) => `${m.rule} ${m.address}`)).toEqual([
      'budget-exceeded fleet.research',
      'checkpoint-stale workload.train-a',
      'migration-failed workload.train-a',
      'preemption-notice node.aws.i-1',
      'spot-price-high pool.spot-a100',
    ]);
    expect(r.messages.find((m) => m.rule === 'checkpoint-stale')?.summary).toBe('newest checkpoint of train-a is 25m old, maxAge 15m');
    // next evaluation without the one-shot event and with the notice gone: those two resolve
    const r2 = evaluateAlerts(rules, { ...f, events: [], notices: [] }, r.state);
    expect(r2.messages.map((m) => `${m.status} ${m.rule}`)).toEqual(['resolved migration-failed', 'resolved preemption-notice']);
  });

  it('checkpoint-stale measures from the later of the last checkpoint and the start on the current placement', () => {
    const { rules } = compileAlertRules([rule('stale', 'checkpoint-stale')]);
    const at = (w: AlertFacts['workloads'][number]): string[] => evaluateAlerts(rules, facts({ now: T0, workloads: [w] }), { firing: {} }).messages.map((m) => m.summary);
    const maxAge = 15 * 60_000;
    // Just started (a minute ago), no checkpoint yet, or resumed from an hour-old one: not stale.
    expect(at({ name: 'w', startedAt: T0 - 60_000, checkpointMaxAgeMs: maxAge })).toEqual([]);
    expect(at({ name: 'w', startedAt: T0 - 60_000, lastCheckpointAt: T0 - 3_600_000, checkpointMaxAgeMs: maxAge })).toEqual([]);
    // Running 20 minutes without one: stale, and said so.
    expect(at({ name: 'w', startedAt: T0 - 20 * 60_000, checkpointMaxAgeMs: maxAge })).toEqual(['w has written no checkpoint in the 20m since it started, maxAge 15m']);
    expect(at({ name: 'w', startedAt: T0 - 60 * 60_000, lastCheckpointAt: T0 - 20 * 60_000, checkpointMaxAgeMs: maxAge })).toEqual(['newest checkpoint of w is 20m old, maxAge 15m']);
    // Nothing known at all (no start, no checkpoint): missing.
    expect(at({ name: 'w', checkpointMaxAgeMs: maxAge })).toEqual(['newest checkpoint of w is missing, maxAge 15m']);
  });

  it('the documented default sink `log` exists without being declared', async () => {
    const lines: string[] = [];
    const sinks = createAlertSinks([], { write: (l) => lines.push(l) });
    const alert = { rule: 'r', severity: 'warning' as const, status: 'firing' as const, summary: 's', fleet: 'f', at: new Date(T0).toISOString() };
    expect(await deliverAlert(sinks, ['log'], alert)).toEqual([]);
    expect(JSON.parse(lines[0] ?? '')).toEqual({ alert });
  });

  it('bad conditions are problems positioned at the rule; workload-scoped conditions work', () => {
    const { rules, problems } = compileAlertRules([
      rule('typo', 'spotPrise > 1.0'),
      rule('mixed', 'spotPrice > 1.0 && workload.costPerHour > 1.0'),
      { ...rule('at', 'spotPrice >'), whenPos: { file: 'fleet.yaml', line: 31, col: 12 } },
      rule('expensive', 'workload.costPerHour > 3.0'),
    ]);
    expect(problems.map((p) => `${p.line}:${p.col} ${p.message}`)).toEqual([
      '30:5 alert "typo" when: Unknown variable: spotPrise',
      '30:5 alert "mixed": a condition reads market facts or a workload, not both',
      '31:23 alert "at" when: Unexpected token: EOF',
    ]);
    expect(evaluateAlerts(rules, facts(), { firing: {} }).messages.map((m) => m.address)).toEqual(['workload.train-a']);
  });
});

interface Received {
  body: unknown;
  path: string;
}

describe('alert delivery (real peers)', () => {
  let server: Server;
  let base = '';
  const received: Received[] = [];
  let failNext = 0;
  beforeAll(async () => {
    server = createServer((req: IncomingMessage, res) => {
      let data = '';
      req.on('data', (d: Buffer) => (data += d.toString()));
      req.on('end', () => {
        if (failNext > 0) {
          failNext--;
          res.writeHead(503).end('busy');
          return;
        }
        received.push({ body: JSON.parse(data), path: req.url ?? '' });
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const addr = server.address();
    if (addr === null || typeof addr === 'string') throw new Error('no address');
    base = `http://127.0.0.1:${addr.port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const alert: AlertMessage = { rule: 'spot-price-spike', severity: 'warning', status: 'firing', summary: 'spot at $2.70', address: 'pool.spot-a100', fleet: 'research', at: '2026-06-01T12:00:00.000Z', fields: { spotPrice: 2.7 } };
  const sink = (over: Partial<AlertSinkSpec>): AlertSinkSpec => ({ name: 'ops', type: 'log', pos, ...over });

  it('webhook sink: Slack-compatible JSON, ${VAR} in the URL, retries on 5xx', async () => {
    received.length = 0;
    failNext = 2;
    const sinks = createAlertSinks([sink({ type: 'webhook', url: `${base}/hooks/\${HOOK_SECRET}` })], { env: { HOOK_SECRET: 's3cr3t' }, webhook: { backoffMs: 10 } });
    expect(await deliverAlert(sinks, ['ops'], alert)).toEqual([]);
    expect(received).toHaveLength(1);
    expect(received[0]?.path).toBe('/hooks/s3cr3t');
    const body = received[0]?.body as { text: string; attachments: { title: string; fields: { title: string; value: string }[] }[] };
    expect(body.text).toBe('[WARNING] spot-price-spike: spot at $2.70');
    expect(body.attachments[0]?.title).toBe('spot-price-spike (firing)');
    expect(body.attachments[0]?.fields).toEqual([
      { title: 'fleet', value: 'research', short: true },
      { title: 'address', value: 'pool.spot-a100', short: true },
      { title: 'spotPrice', value: '2.7', short: true },
    ]);
  });

  it('webhook sink: a failure never shows the secret', async () => {
    failNext = 5;
    const sinks = createAlertSinks([sink({ type: 'webhook', url: `${base}/hooks/\${HOOK_SECRET}` })], { env: { HOOK_SECRET: 's3cr3t' }, webhook: { backoffMs: 1, attempts: 2 } });
    const failed = await deliverAlert(sinks, ['ops'], alert);
    failNext = 0;
    expect(failed).toHaveLength(1);
    expect(failed[0]?.error).toContain('HTTP 503');
    expect(failed[0]?.error).not.toContain('s3cr3t');
    const missing = createAlertSinks([sink({ type: 'webhook', url: `${base}/\${NOPE}` })], { env: {} });
    expect((await deliverAlert(missing, ['ops'], alert))[0]?.error).toContain('environment variable NOPE');
  });

  it('webhook provider: the alerts capability posts the same payload', async () => {
    received.length = 0;
    const p = await webhookProvider.create({ url: `${base}/provider` }, { name: 'slack', fleet: 'research', specDir: '.', dataDir: '.', log: silentLogger, now: Date.now, env: {} });
    await p.alerts?.send({ ...alert, status: 'resolved' });
    expect(received[0]?.path).toBe('/provider');
    expect((received[0]?.body as { text: string }).text).toBe('[RESOLVED] spot-price-spike: spot at $2.70');
  });

  it('command sink: argv without a shell, the alert JSON on stdin; log sink: one JSON line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sf-alert-'));
    const out = join(dir, 'alert; rm -rf x.json'); // a path a shell would split; argv keeps it whole
    const script = 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>require("fs").writeFileSync(process.argv[1],s))';
    const lines: string[] = [];
    const sinks = createAlertSinks([sink({ name: 'cmd', type: 'command', command: [process.execPath, '-e', script, out] }), sink({ name: 'log', type: 'log' })], { write: (l) => lines.push(l) });
    expect(await deliverAlert(sinks, ['cmd', 'log'], alert)).toEqual([]);
    expect(JSON.parse(readFileSync(out, 'utf8'))).toEqual(alert);
    expect(lines).toEqual([`${JSON.stringify({ alert })}\n`]);
    const bad = createAlertSinks([sink({ name: 'cmd', type: 'command', command: [process.execPath, '-e', 'process.exit(3)'] })]);
    expect((await deliverAlert(bad, ['cmd'], alert))[0]?.error).toMatch(/exited with 3/);
  });
});
