import parsePrometheusTextFormat, { type PromFamily } from 'parse-prometheus-text-format';
import { describe, expect, it } from 'vitest';
import { createWatchMetrics } from '../../src/telemetry/metrics.js';

function family(fams: PromFamily[], name: string): PromFamily {
  const f = fams.find((x) => x.name === name);
  if (!f) throw new Error(`metric ${name} missing; have ${fams.map((x) => x.name).join(', ')}`);
  return f;
}

describe('createWatchMetrics', () => {
  it('renders every watch metric in Prometheus text format', async () => {
    const m = createWatchMetrics({ defaultLabels: { fleet: 'research' }, processMetrics: false });
    m.observeReconcile(0.2, true);
    m.observeReconcile(3, false);
    m.reconcileError('provider');
    m.setQueueDepth(2);
    m.noticeReceived('aws', 'preemption');
    m.noticeReceived('aws', 'preemption');
    m.noticeReceived('gcp', 'maintenance');
    m.observeNoticeToSignal(0.4, 'aws');
    m.migrationFinished('succeeded', 42);
    m.migrationFinished('lost-work', 80);
    m.migrationFinished('failed');
    m.setFleetCostPerHour({ spot: 3.5 });
    m.providerPollError('lab', 'notices');

    const fams = parsePrometheusTextFormat(await m.render());
    expect(fams.map((f) => f.name).sort()).toEqual([
      'spotfleet_build_info',
      'spotfleet_fleet_cost_usd_per_hour',
      'spotfleet_last_successful_reconcile_timestamp_seconds',
      'spotfleet_migration_downtime_seconds',
      'spotfleet_migrations_total',
      'spotfleet_notice_to_signal_seconds',
      'spotfleet_notices_received_total',
      'spotfleet_provider_poll_errors_total',
      'spotfleet_queue_depth',
      'spotfleet_reconcile_duration_seconds',
      'spotfleet_reconcile_errors_total',
      'spotfleet_workload_restarts_total',
      'spotfleet_workloads',
    ]);

    // The parser flattens labelled histograms badly (it keeps only the buckets of the last series),
    // so histogram values are read from the registry itself; the parser still checks the text.
    const rec = family(fams, 'spotfleet_reconcile_duration_seconds');
    expect(rec.type).toBe('HISTOGRAM');
    const json = await m.registry.getMetricsAsJSON();
    type Sample = { metricName?: string; labels: Record<string, string | number>; value: number };
    const values = (name: string) => (json.find((x) => x.name === name)?.values ?? []) as Sample[];
    const okCount = values('spotfleet_reconcile_duration_seconds').find(
      (v) => v.metricName === 'spotfleet_reconcile_duration_seconds_count' && v.labels['outcome'] === 'ok',
    );
    expect(okCount?.value).toBe(1);
    expect(okCount?.labels['fleet']).toBe('research');
    const okBucket = (le: number) =>
      values('spotfleet_reconcile_duration_seconds').find(
        (v) => v.metricName?.endsWith('_bucket') && v.labels['outcome'] === 'ok' && v.labels['le'] === le,
      )?.value;
    expect(okBucket(0.25)).toBe(1);
    expect(okBucket(0.1)).toBe(0);

    const notices = family(fams, 'spotfleet_notices_received_total');
    expect(notices.type).toBe('COUNTER');
    const byLabels = Object.fromEntries(notices.metrics.map((s) => [`${s.labels?.['cloud']}/${s.labels?.['kind']}`, s.value]).filter(([, v]) => v !== '0'));
    expect(byLabels).toEqual({ 'aws/preemption': '2', 'gcp/maintenance': '1' });

    expect(family(fams, 'spotfleet_notice_to_signal_seconds').type).toBe('HISTOGRAM');
    const sigSum = values('spotfleet_notice_to_signal_seconds').find((v) => v.metricName?.endsWith('_sum') && v.value > 0);
    expect(sigSum?.labels['cloud']).toBe('aws');
    expect(sigSum?.value).toBeCloseTo(0.4);

    const mig = family(fams, 'spotfleet_migrations_total').metrics;
    expect(Object.fromEntries(mig.map((s) => [s.labels?.['outcome'], s.value]))).toEqual({
      succeeded: '1',
      'lost-work': '1',
      failed: '1',
      aborted: '0',
    });
    expect(family(fams, 'spotfleet_migration_downtime_seconds').type).toBe('HISTOGRAM');
    const down = values('spotfleet_migration_downtime_seconds').filter((v) => v.metricName?.endsWith('_count') && v.value > 0);
    expect(down.map((v) => [v.labels['outcome'], v.value]).sort()).toEqual([
      ['lost-work', 1],
      ['succeeded', 1],
    ]);

    const cost = family(fams, 'spotfleet_fleet_cost_usd_per_hour');
    expect(cost.type).toBe('GAUGE');
    expect(Object.fromEntries(cost.metrics.map((s) => [s.labels?.['capacity'], s.value]))).toEqual({
      spot: '3.5',
      'on-demand': '0',
    });
    expect(family(fams, 'spotfleet_queue_depth').metrics[0]?.value).toBe('2');
    expect(family(fams, 'spotfleet_reconcile_errors_total').metrics.find((x) => x.labels?.['reason'] === 'provider')).toMatchObject({
      labels: { reason: 'provider', fleet: 'research' },
      value: '1',
    });
    expect(family(fams, 'spotfleet_provider_poll_errors_total').metrics[0]?.labels).toMatchObject({
      provider: 'lab',
      capability: 'notices',
    });
  });

  it('uses a private registry: two instances do not share counts', async () => {
    const a = createWatchMetrics({ processMetrics: false });
    const b = createWatchMetrics({ processMetrics: false });
    a.noticeReceived('aws', 'preemption');
    const fb = parsePrometheusTextFormat(await b.render());
    expect(family(fb, 'spotfleet_notices_received_total').metrics.filter((x) => x.value !== '0')).toEqual([]);
  });

  it('describeFleet: the fleet label and the polled providers\' series once the spec is loaded', async () => {
    const m = createWatchMetrics({ processMetrics: false });
    expect(await m.render()).not.toMatch(/fleet="/);
    m.describeFleet('research', [{ name: 'aws-east', capabilities: ['notices', 'capacity.prices'] }]);
    m.describeFleet('research', [{ name: 'aws-east', capabilities: ['notices', 'capacity.prices'] }]);
    const fams = parsePrometheusTextFormat(await m.render());
    for (const f of fams) if (f.type !== 'HISTOGRAM') for (const x of f.metrics) expect(x.labels?.['fleet'], f.name).toBe('research');
    expect(family(fams, 'spotfleet_provider_poll_errors_total').metrics.map((x) => `${x.labels?.['provider']}/${x.labels?.['capability']}=${x.value}`).sort()).toEqual(['aws-east/capacity.prices=0', 'aws-east/notices=0']);
  });

  it('a fleet label, build info, the last successful reconcile, and every counter at 0 before its first event', async () => {
    let t = 1_800_000_000_000;
    const m = createWatchMetrics({ fleet: 'research', processMetrics: false, version: '9.8.7', noticeSources: ['aws', 'sim'], providers: [{ name: 'lab', capabilities: ['notices'] }], now: () => t });
    let fams = parsePrometheusTextFormat(await m.render());
    // Every series carries the fleet.
    for (const f of fams) if (f.type !== 'HISTOGRAM') for (const x of f.metrics) expect(x.labels?.['fleet'], f.name).toBe('research');
    expect(family(fams, 'spotfleet_build_info').metrics).toEqual([{ labels: { fleet: 'research', version: '9.8.7', node_version: process.version }, value: '1' }]);
    expect(family(fams, 'spotfleet_last_successful_reconcile_timestamp_seconds').metrics[0]?.value).toBe('0');
    // Counters exist at 0: every outcome, every notice source and kind, every polled provider.
    const series = (name: string, key: string): Record<string, string> => Object.fromEntries(family(fams, name).metrics.map((x) => [x.labels?.[key] ?? '', x.value ?? '']));
    expect(series('spotfleet_migrations_total', 'outcome')).toEqual({ succeeded: '0', 'lost-work': '0', failed: '0', aborted: '0' });
    expect(family(fams, 'spotfleet_notices_received_total').metrics.map((x) => `${x.labels?.['cloud']}/${x.labels?.['kind']}=${x.value}`).sort()).toEqual(
      ['aws', 'sim'].flatMap((c) => ['maintenance', 'preemption', 'rebalance', 'termination'].map((k) => `${c}/${k}=0`)).sort(),
    );
    expect(series('spotfleet_provider_poll_errors_total', 'provider')).toEqual({ lab: '0' });
    expect(series('spotfleet_reconcile_errors_total', 'reason')).toMatchObject({ spec: '0', internal: '0' });
    const text = await m.render();
    expect(text).toMatch(/^spotfleet_reconcile_duration_seconds_count\{fleet="research",outcome="ok"\} 0$/m);
    expect(text).toMatch(/^spotfleet_migration_downtime_seconds_count\{fleet="research",outcome="succeeded"\} 0$/m);
    // A failed reconcile leaves the timestamp; a successful one sets it to now.
    m.observeReconcile(1, false);
    fams = parsePrometheusTextFormat(await m.render());
    expect(family(fams, 'spotfleet_last_successful_reconcile_timestamp_seconds').metrics[0]?.value).toBe('0');
    m.observeReconcile(1, true);
    t += 5000;
    m.observeReconcile(1, false);
    fams = parsePrometheusTextFormat(await m.render());
    expect(family(fams, 'spotfleet_last_successful_reconcile_timestamp_seconds').metrics[0]?.value).toBe('1800000000');
  });

  it('adds process metrics when asked (default)', async () => {
    const m = createWatchMetrics();
    const names = parsePrometheusTextFormat(await m.render()).map((f) => f.name);
    expect(names).toContain('process_cpu_user_seconds_total');
    expect(names).toContain('nodejs_heap_size_used_bytes');
  });

  it('ignores nonsense numbers instead of throwing', async () => {
    const m = createWatchMetrics({ processMetrics: false });
    m.observeReconcile(Number.NaN, true);
    m.setQueueDepth(-1);
    m.setFleetCostPerHour({ spot: Number.POSITIVE_INFINITY });
    const fams = parsePrometheusTextFormat(await m.render());
    const json = await m.registry.getMetricsAsJSON();
    expect(json.find((x) => x.name === 'spotfleet_reconcile_duration_seconds')?.values.filter((v) => (v.value) > 0)).toEqual([]);
    expect(family(fams, 'spotfleet_queue_depth').metrics[0]?.value).toBe('0');
  });
});
