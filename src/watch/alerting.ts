// Watch's alerts: gathers the facts of one reconcile (notices, one-shot events, workloads, markets,
// spend), evaluates the fleet's rules on them (pure, src/policy/alerts.ts) and delivers what fires
// or resolves to the rules' sinks.
import { onDemandPricePerGpuHour } from '../core/on-demand.js';
import type { Observed } from '../core/types.js';
import { roundUsd } from '../core/units.js';
import { evaluateAlerts, sinksFor, type AlertFacts, type AlertState } from '../policy/alerts.js';
import type { AlertMessage } from '../providers/sdk.js';
import type { StateFile, WorkloadRecord } from '../state/types.js';
import { deliverAlert } from '../telemetry/alert-sinks.js';
import type { Logger } from '../telemetry/logger.js';
import type { WatchSession } from './watch-session.js';

export class Alerting {
  private state: AlertState = { firing: {} };
  /** One-shot events since the last evaluation (work lost, failed migrations, failed workloads). */
  events: AlertFacts['events'] = [];

  constructor(private readonly log: Logger) {}

  async evaluate(session: WatchSession, observed: Observed, state: StateFile): Promise<void> {
    if (session.rules.length === 0) {
      this.events = [];
      return;
    }
    const workloads = Object.values(state.resources).filter((r): r is WorkloadRecord => r.type === 'workload');
    const charging = (w: WorkloadRecord): boolean => w.since !== undefined && w.instanceId !== undefined;
    const costPerHour = workloads.reduce((s, w) => s + (charging(w) ? (w.pricePerGpuHour ?? 0) * w.gpus : 0), 0);
    const facts: AlertFacts = {
      fleet: session.fleet.name,
      now: Date.now(),
      notices: observed.notices.map((n) => ({ node: n.node, kind: n.kind, deadline: n.deadline, provider: n.provider, workloads: observed.workloads.filter((w) => w.node === n.node && w.provider === n.provider).map((w) => w.workload) })),
      events: this.events,
      // Only workloads that run now can have a stale checkpoint: finished, failed and pending ones cannot.
      workloads: workloads.filter(charging).map((w) => {
        const spec = session.fleet.workloads.find((x) => x.name === w.name);
        // A workload that has only just started has had no time to write one: age counts from its start.
        return {
          name: w.name,
          ...(w.lastCheckpoint ? { lastCheckpointAt: Date.parse(w.lastCheckpoint.mtime) } : {}),
          ...(w.since !== undefined ? { startedAt: w.since } : {}),
          ...(spec?.checkpoint?.maxAgeMs !== undefined ? { checkpointMaxAgeMs: spec.checkpoint.maxAgeMs } : {}),
          ...(w.capacity ? { capacity: w.capacity } : {}),
          costPerHour: roundUsd((w.pricePerGpuHour ?? 0) * w.gpus),
        };
      }),
      markets: observed.prices
        .filter((q) => q.capacity === 'spot')
        .map((q) => {
          const od = onDemandPricePerGpuHour(observed, q.gpuModel);
          return { pool: q.provider, ...(q.zone ? { zone: q.zone } : {}), gpuModel: q.gpuModel, spotPrice: q.pricePerGpuHour, ...(od !== undefined ? { onDemandPrice: od } : {}), available: q.available };
        }),
      fleetCostPerHour: roundUsd(costPerHour),
      ...(session.fleet.budgetPerHour !== undefined ? { budgetPerHour: session.fleet.budgetPerHour } : {}),
      spotPriceAlertRatio: session.fleet.defaults.thresholds.spotPriceAlertRatio,
    };
    this.events = [];
    const { messages, state: next } = evaluateAlerts(session.rules, facts, this.state);
    this.state = next;
    await Promise.all(
      messages.map(async (m: AlertMessage) => {
        this.log.warn(`alert ${m.status}: ${m.summary}`, { fleet: session.fleet.name, action: 'alert', rule: m.rule, severity: m.severity, ...(m.address ? { address: m.address } : {}) });
        const failures = await deliverAlert(session.sinks, sinksFor(session.rules, m), m);
        for (const f of failures) this.log.error(`alert delivery to ${f.sink} failed: ${f.error}`, { fleet: session.fleet.name, action: 'alert' });
      }),
    );
  }
}
