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
      'spotfleet_fleet_cost_usd_per_hour',
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
    const byLabels = Object.fromEntries(notices.metrics.map((s) => [`${s.labels?.['cloud']}/${s.labels?.['kind']}`, s.value]));
    expect(byLabels).toEqual({ 'aws/preemption': '2', 'gcp/maintenance': '1' });

    expect(family(fams, 'spotfleet_notice_to_signal_seconds').type).toBe('HISTOGRAM');
    const sigSum = values('spotfleet_notice_to_signal_seconds').find((v) => v.metricName?.endsWith('_sum'));
    expect(sigSum?.labels['cloud']).toBe('aws');
    expect(sigSum?.value).toBeCloseTo(0.4);

    const mig = family(fams, 'spotfleet_migrations_total').metrics;
    expect(Object.fromEntries(mig.map((s) => [s.labels?.['outcome'], s.value]))).toEqual({
      succeeded: '1',
      'lost-work': '1',
      failed: '1',
    });
    expect(family(fams, 'spotfleet_migration_downtime_seconds').type).toBe('HISTOGRAM');
    const down = values('spotfleet_migration_downtime_seconds').filter((v) => v.metricName?.endsWith('_count'));
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
    expect(family(fams, 'spotfleet_reconcile_errors_total').metrics[0]).toMatchObject({
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
    expect(family(fb, 'spotfleet_notices_received_total').metrics).toEqual([]);
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
