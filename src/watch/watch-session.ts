// What a running watch holds between reconciles: the last good spec, its providers (kept open while
// their config is unchanged, so connections and monitors survive reconciles), its alert rules and
// sinks. An invalid spec is logged with file:line:col and the last good one keeps running.
import { SpecError, formatProblem } from '../core/errors.js';
import { openFleet, type FleetProviders } from '../engine/session.js';
import { loadFleet } from '../spec/load.js';
import type { Fleet } from '../spec/types.js';
import { compileAlertRules, type CompiledAlertRule } from '../policy/alerts.js';
import type { PolicySet } from '../policy/policy-set.js';
import { createAlertSinks, type AlertSink } from '../telemetry/alert-sinks.js';
import { providerLogger, type Logger } from '../telemetry/logger.js';

/** The fleet's providers (openFleet), with what watch adds: the key they were made from, alerting. */
export interface WatchSession extends FleetProviders {
  /** The provider configs the providers were created from: a change recreates them. */
  key: string;
  sinks: Map<string, AlertSink>;
  rules: CompiledAlertRule[];
}

export class WatchSessions {
  private session: WatchSession | undefined;
  private specErrorShown = '';
  /** The last spec that loaded, with the policy set loadFleet compiled for it. */
  private loaded: { fleet: Fleet; policies: PolicySet | undefined } | undefined;

  constructor(
    private readonly o: { specPath: string; stateDir: string; log: Logger; onSpecInvalid: (first: string) => void },
  ) {}

  /** The fleet's name from the last spec that loaded, for log lines before or after a session. */
  private lastFleetName: string | undefined;
  get fleetName(): string | undefined {
    return this.session?.fleet.name ?? this.lastFleetName;
  }

  get current(): WatchSession | undefined {
    return this.session;
  }

  /** Forget the providers' key, so the next `ensure` recreates them (SIGHUP). */
  invalidate(): void {
    if (this.session) this.session.key = '';
  }

  /** Loads the spec; on an invalid spec keeps the last good one (and says so), or fails terminally. */
  async loadSpec(): Promise<Fleet> {
    try {
      const { fleet, warnings, policies } = await loadFleet(this.o.specPath);
      this.loaded = { fleet, policies };
      this.lastFleetName = fleet.name;
      for (const w of warnings) this.o.log.warn(formatProblem(w), { fleet: fleet.name, action: 'validate' });
      this.specErrorShown = '';
      return fleet;
    } catch (e) {
      if (!(e instanceof SpecError)) throw e;
      const text = e.problems.map(formatProblem).join('\n');
      if (text !== this.specErrorShown) {
        for (const p of e.problems) this.o.log.error(formatProblem(p), { fleet: this.fleetName, action: 'validate', file: p.file, line: p.line, col: p.col });
        this.specErrorShown = text;
      }
      if (this.session) {
        this.o.log.warn('the spec is invalid; the last good spec keeps running until it is fixed', { fleet: this.fleetName, action: 'validate' });
        this.o.onSpecInvalid(e.problems[0] ? formatProblem(e.problems[0]) : 'invalid spec');
        return this.session.fleet;
      }
      throw e;
    }
  }

  /** The session for `fleet` (from loadSpec): the same providers while their config is unchanged. */
  async ensure(fleet: Fleet): Promise<WatchSession> {
    // Pools count too: a capacity provider reaches the nodes it bought as its pools' `node:` says.
    const key = JSON.stringify([fleet.providers.map((p) => [p.name, p.type, p.package ?? '', p.config]), fleet.pools.map((p) => [p.name, p.provider, p.capacity, p.gpuModel, p.zones, p.maxPricePerHour, p.node])]);
    const policies = this.policiesOf(fleet);
    if (this.session && this.session.key === key) {
      this.session.fleet = fleet;
      this.session.rules = compileAlertRules(fleet.alerts).rules;
      this.session.sinks = createAlertSinks(fleet.sinks, { providers: this.session.providers });
      this.session.policies = policies;
      return this.session;
    }
    await this.close();
    // A provider that cannot start fails this reconcile with its own error, to be retried.
    const log = this.o.log.child({ fleet: fleet.name });
    const opened = await openFleet({ fleet, warnings: [], policies }, { stateDir: this.o.stateDir, withoutStore: true, providerErrors: 'throw', log: (name) => providerLogger(log, name) });
    const { rules, problems } = compileAlertRules(fleet.alerts);
    for (const p of problems) this.o.log.error(formatProblem(p), { fleet: fleet.name, action: 'alerts' });
    this.session = { ...opened, key, sinks: createAlertSinks(fleet.sinks, { providers: opened.providers }), rules };
    return this.session;
  }

  /** The compiled policy set of a fleet loadSpec returned: the new spec's, or the last good one's. */
  private policiesOf(fleet: Fleet): PolicySet | undefined {
    if (this.loaded?.fleet === fleet) return this.loaded.policies;
    if (this.session?.fleet === fleet) return this.session.policies;
    throw new Error('WatchSessions.ensure takes the fleet loadSpec returned');
  }

  async close(): Promise<void> {
    const s = this.session;
    this.session = undefined;
    await s?.close();
  }
}
